using System.Text.Json.Nodes;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;
using Whetstone.Training.Tests.Text;

namespace Whetstone.Training.Tests.Trainer;

/// <summary>
/// Exact resume: a run stopped at a random micro-batch (a simulated crash: an exception out of the loop, leaving the
/// files exactly as a kill would — the checkpoint store writes atomically) and resumed writes the same metrics.jsonl,
/// every loss to the last bit, as the run that was never stopped. The configs make every kind of state matter:
/// dropout (generator state), augmentation and shuffling (seeded per epoch), gradient accumulation with checkpoints
/// between steps that fall inside an epoch, AdamW moments, a cosine schedule.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class ResumeTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private sealed class SimulatedCrash : Exception;

    private TrainConfig ImageConfig(string name)
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail($"Asset ppocr_cls is not cached in {Assets.CacheDir}: run scripts/fetch-assets ppocr_cls (scripts/test does).");
        var train = Directory.Exists(Path.Combine(_dir.Path, "train")) ? Path.Combine(_dir.Path, "train") : TestImages.Stripes(_dir, "train", 12, 1);
        var yaml = $$"""
            name: {{name}}
            runs: {{Path.Combine(_dir.Path, "runs")}}
            seed: 5
            model: { path: "asset:ppocr_cls", head_hidden: 16, head_dropout: 0.3 }
            data: { format: folder, train: {{train}}, validation: 0.25, image_size: 48, augment: { flip: true } }
            freeze: { backbone: true }
            train: { epochs: 3, batch_size: 4, grad_accum: 2, lr: 0.01, checkpoint_every: 2, log_every: 1, threads: 2 }
            """;
        return ConfigLoader.Parse(yaml, "image.yaml") with { BaseDirectory = _dir.Path, Source = "image.yaml" };
    }

    private TrainConfig TextConfig(string name)
    {
        TinyVectors.Write(_dir.File("vec.json"));
        TextTestData.Sentences(_dir, "train.jsonl", 120, 1);
        var yaml = $$"""
            name: {{name}}
            task: text-classification
            runs: {{Path.Combine(_dir.Path, "runs")}}
            model: { head_hidden: 8, head_dropout: 0.2 }
            data: { train: train.jsonl, validation: 0.25 }
            text: { vectors: vec.json, encoder: cnn, filters: 6, dropout: 0.3, tune_vectors: true, text_column: review, label_column: stars, label_map: {"5": positive, "1": negative} }
            train: { epochs: 3, batch_size: 16, grad_accum: 2, lr: 0.01, checkpoint_every: 1, log_every: 1, threads: 2, label_smoothing: 0.1 }
            """;
        return ConfigLoader.Parse(yaml, "text.yaml") with { BaseDirectory = _dir.Path, Source = "text.yaml" };
    }

    private static ClassificationTask Prepare(TrainConfig cfg, TextWriter? log = null) => (ClassificationTask)TaskRegistry.Get(cfg.Task).Prepare(cfg, log ?? TextWriter.Null);

    /// <summary>metrics.jsonl without the wall-clock fields: everything else must match exactly.</summary>
    private static string[] Metrics(string runDir) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            o.Remove("seconds");
            return o.ToJsonString();
        }).ToArray();

    /// <summary>Runs <paramref name="cfg"/> crashing at each global micro-batch of <paramref name="crashAt"/> in turn, resuming after each.</summary>
    private static (string RunDir, int Resumes) RunWithCrashes(TrainConfig cfg, int[] crashAt, Action<string>? afterCrash = null, TextWriter? log = null)
    {
        string? runDir = null;
        int resumes = 0, micro = 0;
        foreach (var k in crashAt.Append(-1))
        {
            var hooks = new TrainerHooks { RunFolder = d => runDir = d, AfterMicroBatch = (_, _) => { if (micro++ == k) throw new SimulatedCrash(); } };
            try
            {
                var r = Prepare(cfg, log).Run(resume: runDir, hooks: hooks);
                Assert.Equal(-1, k);                     // finished: no crash point was left
                return (r.RunDir, resumes);
            }
            catch (SimulatedCrash)
            {
                afterCrash?.Invoke(runDir!);
                resumes++;
                micro = 0;                               // the resumed run counts its own micro-batches
            }
        }
        throw new InvalidOperationException("unreachable");
    }

    public static TheoryData<string, int[]> Cases => new()
    {
        { "image", [1] },            // mid-accumulation, before the first checkpoint: resume from the start
        { "image", [6, 2] },         // mid-epoch after a step checkpoint, then again inside the resumed part
        { "image", [10] },           // second epoch, mid-accumulation
        { "text", [3] },
        { "text", [5, 4] },
        { "text", [9] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_run_crashed_anywhere_and_resumed_logs_the_same_losses_bit_for_bit(string kind, int[] crashAt)
    {
        TrainConfig Cfg(string name) => kind == "image" ? ImageConfig(name) : TextConfig(name);
        var reference = Prepare(Cfg("ref")).Run();
        var expected = Metrics(reference.RunDir);
        Assert.Contains(expected, l => l.Contains("\"event\":\"checkpoint\"", StringComparison.Ordinal) && !l.Contains("\"batch\":0", StringComparison.Ordinal));   // some checkpoints fall mid-epoch

        var (runDir, resumes) = RunWithCrashes(Cfg("crashed"), crashAt);
        Assert.Equal(crashAt.Length, resumes);
        Assert.Equal(expected, Metrics(runDir));
        // the bundles agree too: the same selected weights
        var a = File.ReadAllBytes(Path.Combine(reference.RunDir, "model", kind == "image" ? "model.safetensors" : "model.safetensors"));
        var b = File.ReadAllBytes(Path.Combine(runDir, "model", "model.safetensors"));
        Assert.Equal(a, b);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("flipped")]
    public void A_damaged_newest_checkpoint_is_refused_with_its_name_and_the_previous_one_is_used(string damage)
    {
        var reference = Prepare(TextConfig("ref")).Run();
        string? damaged = null;
        var log = new StringWriter();
        var (runDir, _) = RunWithCrashes(TextConfig("crashed"), [7], log: log, afterCrash: dir =>
        {
            damaged = Directory.GetFiles(Path.Combine(dir, "checkpoints"), "step-*.safetensors").Order(StringComparer.Ordinal).Last();
            var bytes = File.ReadAllBytes(damaged);
            if (damage == "truncated") File.WriteAllBytes(damaged, bytes[..(bytes.Length * 2 / 3)]);
            else { bytes[^5] ^= 0x40; File.WriteAllBytes(damaged, bytes); }
            File.Copy(damaged, _dir.File("damaged.safetensors"));    // the resumed run writes that step again
        });
        Assert.Equal(Metrics(reference.RunDir), Metrics(runDir));
        var e = Assert.Throws<CheckpointException>(() => CheckpointStore.Load(_dir.File("damaged.safetensors")));
        Assert.Contains("damaged.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains(damage == "truncated" ? "unreadable" : "checksum", e.Message, StringComparison.Ordinal);
        Assert.Contains($"warning: checkpoint {damaged}", log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_stop_request_ends_the_run_after_the_step_with_a_checkpoint_and_resume_finishes_it_identically()
    {
        var reference = Prepare(TextConfig("ref")).Run();
        var stop = new StopSignal();
        int micro = 0;
        var hooks = new TrainerHooks { AfterMicroBatch = (_, _) => { if (++micro == 3) stop.Request(); } };
        var cfg = TextConfig("stopped");
        var first = Prepare(cfg).Run(stop: stop, hooks: hooks);
        Assert.True(first.Interrupted);
        Assert.Null(first.BundleDir);
        Assert.NotNull(first.Checkpoint);
        Assert.Equal(4, micro);                              // the step in progress (micro-batches 3 and 4) was finished
        var state = CheckpointStore.Load(first.Checkpoint!).State;
        Assert.Equal((1, 4, 2L, 0), (state.Epoch, state.Batch, state.Step, state.MicroStep));
        var second = Prepare(cfg).Run(resume: first.RunDir);
        Assert.False(second.Interrupted);
        Assert.Equal(Metrics(reference.RunDir), Metrics(second.RunDir));
    }

    [Fact]
    public void Resume_refuses_a_finished_run_and_changed_base_weights_and_restarts_a_run_without_checkpoints()
    {
        var cfg = TextConfig("done");
        var done = Prepare(cfg).Run();
        var expected = Metrics(done.RunDir);
        var e = Assert.Throws<ConfigException>(() => Prepare(cfg).Run(resume: done.RunDir));
        Assert.Contains("has finished", e.Message, StringComparison.Ordinal);

        // no checkpoint at all (stopped before the first one): the run starts again in its folder and ends the same
        Directory.Delete(done.BundleDir!, recursive: true);
        foreach (var f in Directory.GetFiles(Path.Combine(done.RunDir, "checkpoints"), "step-*")) File.Delete(f);
        var again = Prepare(cfg).Run(resume: done.RunDir);
        Assert.Equal(done.RunDir, again.RunDir);
        Assert.Equal(expected, Metrics(again.RunDir));

        var other = TextConfig("other-base");
        string? crashed = null;
        var hooks = new TrainerHooks { RunFolder = d => crashed = d, AfterMicroBatch = (_, b) => { if (b == 4) throw new SimulatedCrash(); } };
        Assert.Throws<SimulatedCrash>(() => Prepare(other).Run(hooks: hooks));
        var vec = _dir.File("vec.json");                     // the resumed run must start from the same pre-trained weights
        File.WriteAllText(vec, File.ReadAllText(vec).Replace("0.1", "0.3", StringComparison.Ordinal));
        e = Assert.Throws<ConfigException>(() => Prepare(other).Run(resume: crashed));
        Assert.Contains("base weights", e.Message, StringComparison.Ordinal);
    }
}
