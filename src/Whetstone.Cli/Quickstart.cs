using System.Diagnostics;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Tasks;

namespace Whetstone.Cli;

internal sealed record QuickstartOptions(string Runs = "runs", int PerClass = 100, int TestLimit = 0, double EpochsScale = 1.0);

/// <summary>
/// <c>whet quickstart</c>: transfer learning on real pre-trained weights. MobileNetV2 (ImageNet-pre-trained backbone
/// from nsfwjs, TF.js layers format) is fine-tuned on 100 Fashion-MNIST images per class three ways — frozen backbone +
/// new head, top blocks fine-tuned, and the same network from scratch — each scored on the Fashion-MNIST test set next
/// to the model before fine-tuning. The configs are those of <c>examples/fashion-mnist*.yaml</c>.
/// </summary>
internal static class Quickstart
{
    /// <summary>One row of the result table.</summary>
    internal sealed record Row(string Name, long Trainable, EvalResult Result, int Epochs, double TrainSeconds, double SecondsPerEpoch, string RunDir);

    /// <summary>The shared config: MobileNetV2 cut at out_relu, a linear head, 96×96 inputs, 100 images per class.</summary>
    internal static TrainConfig BaseConfig(QuickstartOptions o) => new()
    {
        Name = "quickstart",
        Runs = o.Runs,
        BaseDirectory = Directory.GetCurrentDirectory(),
        Source = "whet quickstart",
        Model = new ModelConfig { Path = "asset:mobilenet_v2", Features = "out_relu" },
        Data = new DataConfig { Format = "idx", Train = "asset:fashion_mnist", PerClass = o.PerClass, TestLimit = o.TestLimit, Validation = 0.1, ImageSize = 96 },
        Train = new TrainSection { BatchSize = 32, Lr = 1e-3, WeightDecay = 0.01, Schedule = "cosine", Warmup = 0.05 },
    };

    internal static IReadOnlyList<(string Name, TrainConfig Config)> Configs(QuickstartOptions o)
    {
        var b = BaseConfig(o);
        int E(int epochs) => Math.Max(1, (int)Math.Round(epochs * o.EpochsScale));
        return
        [
            ("frozen backbone + new head", b with
            {
                Name = "quickstart-head",
                Freeze = new FreezeConfig { Backbone = true },
                Train = b.Train with { Epochs = E(40), Lr = 3e-3 },
            }),
            ("fine-tuned top blocks (14-16) + head", b with
            {
                Name = "quickstart-top",
                Freeze = new FreezeConfig { Below = "block_14_expand" },
                Train = b.Train with { Epochs = E(12), Lr = 1e-3 },
            }),
            ("same network from scratch", b with
            {
                Name = "quickstart-scratch",
                Model = b.Model with { Scratch = true },
                Train = b.Train with { Epochs = E(15), Lr = 2e-3 },
            }),
        ];
    }

    public static int Run(TextWriter output, QuickstartOptions options)
    {
        Compare(output, options);
        return 0;
    }

    internal static IReadOnlyList<Row> Compare(TextWriter output, QuickstartOptions options)
    {
        var total = Stopwatch.StartNew();
        output.WriteLine($"whet quickstart — MobileNetV2 (pre-trained, TF.js) fine-tuned on Fashion-MNIST, {options.PerClass} images per class ({Par.Threads} threads)");
        var rows = new List<Row>();
        EvalResult? before = null;
        string evalName = "test";
        foreach (var (name, cfg) in Configs(options))
        {
            output.WriteLine();
            output.WriteLine($"── {name} ──");
            var recipe = ImageClassification.Prepare(cfg, output);
            var result = recipe.Run();
            evalName = result.EvaluatedOn;
            before ??= result.Before;
            int epochs = result.EpochSeconds.Count;
            rows.Add(new Row(name, result.TrainableParameters, result.After!, epochs, result.TrainSeconds, result.EpochSeconds.Average(), result.RunDir));
        }
        rows.Insert(0, new Row("before fine-tuning (new head, 0 steps)", 0, before!, 0, 0, 0, ""));

        output.WriteLine();
        output.WriteLine($"Fashion-MNIST {evalName} set ({before!.Count:N0} images), trained on {options.PerClass} images per class (10% held out for validation):");
        output.WriteLine($"  {"model",-40} {"trainable",11} {"accuracy",9} {"macro-F1",9} {"epochs",7} {"s/epoch",8} {"train time",11}");
        foreach (var r in rows)
            output.WriteLine($"  {r.Name,-40} {(r.Epochs == 0 ? "-" : r.Trainable.ToString("N0")),11} {r.Result.Report.Accuracy,9:P1} {r.Result.Report.MacroF1,9:F3} {(r.Epochs == 0 ? "-" : r.Epochs.ToString()),7} {(r.Epochs == 0 ? "-" : r.SecondsPerEpoch.ToString("F2")),8} {(r.Epochs == 0 ? "-" : r.TrainSeconds.ToString("F1") + " s"),11}");
        output.WriteLine();
        output.WriteLine($"  total {total.Elapsed.TotalSeconds:F0} s. Runs (metrics.jsonl, checkpoints, model bundle): {string.Join(", ", rows.Where(r => r.RunDir.Length > 0).Select(r => Path.GetRelativePath(Directory.GetCurrentDirectory(), r.RunDir)))}");
        output.WriteLine($"  next: whet evaluate {Path.GetRelativePath(Directory.GetCurrentDirectory(), rows[2].RunDir)} --data ~/.cache/whetstone/assets/fashion_mnist/usr/share/datasets/fashion-mnist");
        return rows;
    }
}
