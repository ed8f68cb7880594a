using System.Text.Json.Nodes;
using Whetstone.Tensors;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Reports;

namespace Whetstone.Training.Tests.Reports;

/// <summary>Synthetic but complete report inputs: over-confident probabilities, a weaker "before" model, metrics lines, thumbnails.</summary>
internal static class ReportFixtures
{
    public static EvalResult Eval(int n, string[] labels, double skill, double sharpness, ulong seed)
    {
        int k = labels.Length;
        var rng = new Rng(seed);
        var truth = new int[n];
        var pred = new int[n];
        var probs = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            truth[i] = i % k;
            var z = new double[k];
            for (int j = 0; j < k; j++) z[j] = rng.NextDouble() * 2 + (j == truth[i] ? skill : 0);
            double m = z.Max(), s = z.Sum(v => Math.Exp(sharpness * (v - m)));
            for (int j = 0; j < k; j++) probs[i * k + j] = (float)(Math.Exp(sharpness * (z[j] - m)) / s);
            pred[i] = Array.IndexOf(z, m);
        }
        double loss = Enumerable.Range(0, n).Average(i => -Math.Log(Math.Max(probs[i * k + truth[i]], 1e-12)));
        return new EvalResult(ClassificationReport.From(truth, pred, labels), loss, n) { Truth = truth, Predicted = pred, Probabilities = probs };
    }

    public static IReadOnlyList<JsonObject> Metrics(int epochs = 6, int stepsPerEpoch = 20)
    {
        var lines = new List<JsonObject> { new() { ["event"] = "before", ["accuracy"] = 0.3 } };
        int step = 0;
        for (int e = 1; e <= epochs; e++)
        {
            for (int s = 0; s < stepsPerEpoch; s++)
                if (++step % 10 == 0)
                    lines.Add(new JsonObject { ["step"] = step, ["epoch"] = e, ["loss"] = 2.0 / (1 + step * 0.05), ["lr"] = 1e-3 * Math.Cos(Math.PI / 2 * step / (epochs * stepsPerEpoch)), ["grad_norm"] = 1.0 / Math.Sqrt(step) });
            lines.Add(new JsonObject { ["epoch"] = e, ["train_loss"] = 1.5 / e, ["val_loss"] = 1.2 / e + 0.2, ["val_accuracy"] = 0.5 + 0.06 * e, ["val_macro_f1"] = 0.45 + 0.06 * e, ["seconds"] = 1.5 });
        }
        lines.Add(new JsonObject { ["event"] = "after", ["best_epoch"] = epochs });
        return lines;
    }

    /// <summary>A 28×28 grey "image" per example (a bar whose position depends on the index), as the mistakes gallery gets it.</summary>
    public static (string? Text, byte[]? Png) Example(int i)
    {
        var px = new float[28 * 28];
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) px[y * 28 + x] = Math.Abs(x - i % 28) < 3 ? 255 : 30 + 4 * y;
        return ($"example {i}", Thumbnails.Png(new ImageData(28, 28, 1, px)));
    }

    public static StudyData Study()
    {
        var rng = new Rng(9);
        var trials = new List<StudyTrial>();
        for (int t = 0; t < 16; t++)
        {
            double lr = Math.Pow(10, -4 + 2 * rng.NextDouble());
            string opt = t % 3 == 0 ? "sgd" : "adamw";
            double v = 0.8 - Math.Abs(Math.Log10(lr) + 3) * 0.1 - (opt == "sgd" ? 0.05 : 0) + 0.02 * rng.NextDouble();
            string state = t % 5 == 4 ? "pruned" : "complete";
            trials.Add(new StudyTrial(t, new Dictionary<string, object?> { ["lr"] = lr, ["optimizer"] = opt, ["batch_size"] = 16 << (t % 3) }, v, state));
        }
        trials.Add(new StudyTrial(16, new Dictionary<string, object?> { ["lr"] = 0.5, ["optimizer"] = "sgd", ["batch_size"] = 16 }, null, "failed"));
        return new StudyData("fashion-lr", "val_macro_f1", true, trials);
    }

    public static ReportData Data(int classes, bool withStudy = false)
    {
        var labels = classes == 2 ? new[] { "negative", "positive" } : Enumerable.Range(0, classes).Select(c => $"class <{c}>").ToArray();
        return new ReportData
        {
            Title = $"Synthetic {classes}-class report",
            RunInfo = [new("model", "synthetic"), new("run", "/tmp/nowhere")],
            Metrics = Metrics(),
            Labels = labels,
            After = Eval(600, labels, 1.2, 10, 1),         // sharpness 10: about 2.5× over-confident
            Before = Eval(600, labels, 0.3, 1, 2),
            Validation = Eval(400, labels, 1.2, 10, 3),
            EvaluatedOn = "test",
            Example = Example,
            Study = withStudy ? Study() : null,
        };
    }
}
