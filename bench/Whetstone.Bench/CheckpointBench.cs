using System.Diagnostics;
using Whetstone.Models.Importers.Hf;
using Whetstone.Nn.Optimizers;
using Whetstone.Tensors;
using Whetstone.Training;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;

namespace Whetstone.Bench;

/// <summary>
/// `checkpoint`: what exact-resume checkpoints cost.
/// <list type="bullet">
/// <item><c>bert-base</c>: a resume checkpoint of a fully trainable bert-base classifier with its AdamW moments (110M
/// parameters × 3 tensors, 1.3 GB): the training thread's share (snapshot copy), the whole write (SHA-256, write,
/// fsync, rename), reading it back verified (what a resume adds), next to loading the pre-trained checkpoint itself.</item>
/// <item><c>epoch</c>: the quickstart's top-blocks run (MobileNetV2, Fashion-MNIST, 100 per class) at the default cadence:
/// seconds the training thread spent on checkpoints per epoch, as a share of the epoch.</item>
/// </list>
/// </summary>
internal static class CheckpointBench
{
    public static int Run(string[] args)
    {
        var cases = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).DefaultIfEmpty("bert-base").ToList();
        if (cases.Contains("all")) cases = ["bert-base", "epoch"];
        foreach (var c in cases)
        {
            if (c == "bert-base") BertBase(args);
            else if (c == "epoch") Epoch(args);
            else { Console.Error.WriteLine($"unknown case '{c}': bert-base, epoch or all"); return 2; }
        }
        return 0;
    }

    private static void BertBase(string[] args)
    {
        int reps = args.SkipWhile(a => a != "--reps").Skip(1).Select(int.Parse).FirstOrDefault(3);
        var dir = Path.Combine(Path.GetTempPath(), "whet-bench-bert-base");
        HfLoadBench.Generate(dir);
        var sw = Stopwatch.StartNew();
        var (model, _) = HfModel.Load(dir);
        double loadMs = sw.Elapsed.TotalMilliseconds;
        model.Train();
        // AdamW with both moments for every parameter: one step on small gradients
        var opt = new AdamW([new ParamGroup(model.NamedTrainableParameters())], 1e-5);
        foreach (var p in model.Parameters()) p.GradBufferZeroed().Span.Fill(1e-6f);
        opt.Step();
        var state = opt.StateDict();
        var trained = Trainer.TrainedState(model).ToList();
        long bytes = (trained.Sum(t => (long)t.Tensor.Size) + state.Buffers.Sum(b => (long)b.Value.Size)) * 4;

        var ckptDir = Path.Combine(Path.GetTempPath(), "whet-bench-checkpoints");
        if (Directory.Exists(ckptDir)) Directory.Delete(ckptDir, recursive: true);
        using var store = new CheckpointStore(ckptDir);
        var snapshot = new List<double>();
        var whole = new List<double>();
        var load = new List<double>();
        for (int i = 0; i < reps + 1; i++)
        {
            var resume = new ResumeState { Task = "bench", Step = i + 1, OptimizerSteps = state.Steps.ToDictionary() };
            sw.Restart();
            var path = store.Save(resume, trained, state.Buffers.Select(kv => (kv.Key, kv.Value)));
            double snap = sw.Elapsed.TotalMilliseconds;
            store.Flush();
            double all = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var back = CheckpointStore.Load(path);
            double read = sw.Elapsed.TotalMilliseconds;
            GC.KeepAlive(back);
            if (i == 0) continue;                  // the first one also faults the snapshot buffers in
            snapshot.Add(snap); whole.Add(all); load.Add(read);
        }
        double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
        BenchUtil.Emit("checkpoint", "bert-base", new Dictionary<string, object?>
        {
            ["threads"] = Par.Threads, ["params"] = model.ParameterCount(), ["mb"] = Math.Round(bytes / 1048576.0, 1), ["reps"] = reps,
            ["snapshot_ms"] = BenchUtil.Round6(Median(snapshot)), ["write_ms"] = BenchUtil.Round6(Median(whole)),
            ["load_verified_ms"] = BenchUtil.Round6(Median(load)), ["hf_load_ms"] = BenchUtil.Round6(loadMs),
            ["write_mb_s"] = Math.Round(bytes / 1048576.0 / (Median(whole) / 1000), 0),
        });
        Directory.Delete(ckptDir, recursive: true);
    }

    private static void Epoch(string[] args)
    {
        int epochs = args.SkipWhile(a => a != "--epochs").Skip(1).Select(int.Parse).FirstOrDefault(4);
        var runs = Path.Combine(Path.GetTempPath(), "whet-bench-runs");
        var cfg = new TrainConfig
        {
            Name = "checkpoint-bench", Runs = runs, BaseDirectory = Directory.GetCurrentDirectory(), Source = "bench checkpoint epoch",
            Model = new ModelConfig { Path = "asset:mobilenet_v2", Features = "out_relu" },
            Data = new DataConfig { Format = "idx", Train = "asset:fashion_mnist", PerClass = 100, TestLimit = 1000, Validation = 0.1, ImageSize = 96 },
            Freeze = new FreezeConfig { Below = "block_14_expand" },
            Train = new TrainSection { Epochs = epochs, BatchSize = 32, Lr = 1e-3 },
        };
        var task = ImageClassification.Prepare(cfg, TextWriter.Null);
        var trainer = new Trainer(task, cfg, TextWriter.Null);
        var r = trainer.Run();
        double epoch = r.EpochSeconds.Skip(1).Average();       // the first epoch also builds the feature cache
        BenchUtil.Emit("checkpoint", "epoch", new Dictionary<string, object?>
        {
            ["threads"] = Par.Threads, ["trainable"] = r.TrainableParameters, ["epochs"] = r.EpochSeconds.Count,
            ["epoch_s"] = BenchUtil.Round6(epoch), ["checkpoints"] = trainer.CheckpointCount,
            ["checkpoint_s_per_epoch"] = BenchUtil.Round6(trainer.CheckpointSeconds / r.EpochSeconds.Count),
            ["overhead"] = BenchUtil.Round6(trainer.CheckpointSeconds / r.EpochSeconds.Count / epoch),
        });
        Directory.Delete(runs, recursive: true);
    }
}
