using System.Text.Json.Nodes;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Evaluation;

/// <summary>
/// Scores of a model on one dataset, with the per-example outcome when the scorer kept it: true and predicted class
/// indices and the class probabilities (row-major, examples × classes).
/// </summary>
public sealed record EvalResult(ClassificationReport Report, double Loss, int Count)
{
    public int[]? Truth { get; init; }
    public int[]? Predicted { get; init; }
    public float[]? Probabilities { get; init; }
}

/// <summary>
/// The JSON form of an evaluation (<c>whet evaluate --json</c>, <c>eval.json</c>): <c>accuracy</c>, <c>macro_f1</c>,
/// <c>loss</c>, <c>count</c>, <c>labels</c>, <c>per_class</c> (precision, recall, f1, support), <c>confusion_matrix</c>
/// (rows: true class), and the same for the model before fine-tuning under <c>before</c>.
/// </summary>
public static class EvalJson
{
    public static JsonObject ToJson(EvalResult e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var r = e.Report;
        int k = r.Labels.Count;
        var cm = new JsonArray();
        for (int i = 0; i < k; i++)
        {
            var row = new JsonArray();
            for (int j = 0; j < k; j++) row.Add(r.ConfusionMatrix[i, j]);
            cm.Add(row);
        }
        var per = new JsonObject();
        foreach (var c in r.PerClass)
            per[c.Label] = new JsonObject { ["precision"] = RunDirectory.Num(c.Precision), ["recall"] = RunDirectory.Num(c.Recall), ["f1"] = RunDirectory.Num(c.F1), ["support"] = c.Support };
        return new JsonObject
        {
            ["accuracy"] = RunDirectory.Num(r.Accuracy),
            ["macro_f1"] = RunDirectory.Num(r.MacroF1),
            ["loss"] = RunDirectory.Num(e.Loss),
            ["count"] = e.Count,
            ["labels"] = new JsonArray(r.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["per_class"] = per,
            ["confusion_matrix"] = cm,
        }.Also(o =>
        {
            if (Binary(e) is var (auc, ap)) { o["roc_auc"] = RunDirectory.Num(auc); o["pr_auc"] = RunDirectory.Num(ap); }
        });
    }

    /// <summary>ROC-AUC and average precision (positive class: the second label) when the task is binary and probabilities were kept.</summary>
    public static (double RocAuc, double PrAuc)? Binary(EvalResult e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Report.Labels.Count != 2 || e.Probabilities is null || e.Truth is null) return null;
        var scores = BinaryMetrics.PositiveScores(e.Probabilities, 2);
        return (BinaryMetrics.RocAuc(e.Truth, scores), BinaryMetrics.AveragePrecision(e.Truth, scores));
    }

    private static JsonObject Also(this JsonObject o, Action<JsonObject> add)
    {
        add(o);
        return o;
    }

    public static string Write(EvalResult after, EvalResult? before, string split)
    {
        var o = ToJson(after);
        o["split"] = split;
        if (before is not null) o["before"] = ToJson(before);
        return o.ToJsonString(RunDirectory.Json);
    }

    /// <summary>A plain-text report: accuracy, macro-F1, per-class table and confusion matrix, next to the "before" scores.</summary>
    public static string Text(EvalResult after, EvalResult? before)
    {
        ArgumentNullException.ThrowIfNull(after);
        var r = after.Report;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"examples: {after.Count}");
        sb.AppendLine($"accuracy: {r.Accuracy:P2}" + (before is null ? "" : $"   (before fine-tuning: {before.Report.Accuracy:P2})"));
        sb.AppendLine($"macro-F1: {r.MacroF1:F4}" + (before is null ? "" : $"   (before fine-tuning: {before.Report.MacroF1:F4})"));
        sb.AppendLine($"loss:     {after.Loss:F4}" + (before is null ? "" : $"   (before fine-tuning: {before.Loss:F4})"));
        if (Binary(after) is var (auc, ap))
        {
            var b = before is null ? null : Binary(before);
            sb.AppendLine($"ROC-AUC:  {auc:F4}" + (b is null ? "" : $"   (before fine-tuning: {b.Value.RocAuc:F4})"));
            sb.AppendLine($"PR-AUC:   {ap:F4}" + (b is null ? "" : $"   (before fine-tuning: {b.Value.PrAuc:F4})") + $"   (positive class: {r.Labels[1]})");
        }
        int w = Math.Max(8, r.Labels.Max(l => l.Length));
        sb.AppendLine();
        sb.AppendLine($"{"class".PadRight(w)}  precision  recall     f1  support");
        foreach (var c in r.PerClass) sb.AppendLine($"{c.Label.PadRight(w)}  {c.Precision,9:F3}  {c.Recall,6:F3}  {c.F1,5:F3}  {c.Support,7}");
        sb.AppendLine();
        sb.AppendLine("confusion matrix (rows: true, columns: predicted)");
        int k = r.Labels.Count;
        int wl = w + 1 + (k - 1).ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        sb.Append("".PadRight(wl));
        for (int j = 0; j < k; j++) sb.Append($" {j,5}");
        sb.AppendLine();
        for (int i = 0; i < k; i++)
        {
            sb.Append($"{i} {r.Labels[i]}".PadRight(wl));
            for (int j = 0; j < k; j++) sb.Append($" {r.ConfusionMatrix[i, j],5}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>Every score of an evaluation (truth, prediction and probabilities per example, loss) as JSON, to read back with <see cref="ReadScores"/>.</summary>
    public static string WriteScores(EvalResult e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new JsonObject
        {
            ["loss"] = e.Loss, ["count"] = e.Count,
            ["labels"] = new JsonArray(e.Report.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["truth"] = new JsonArray((e.Truth ?? []).Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            ["predicted"] = new JsonArray((e.Predicted ?? []).Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            ["probabilities"] = new JsonArray((e.Probabilities ?? []).Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
        }.ToJsonString();
    }

    /// <summary>An evaluation written by <see cref="WriteScores"/>; its labels must be <paramref name="labels"/>.</summary>
    public static EvalResult ReadScores(string path, IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path}: empty."); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e); }
        var own = o["labels"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray();
        if (!own.SequenceEqual(labels, StringComparer.Ordinal)) throw new InvalidDataException($"{path}: scores for labels {string.Join(", ", own)}, not {string.Join(", ", labels)}.");
        var truth = o["truth"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        var predicted = o["predicted"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        return new EvalResult(ClassificationReport.From(truth, predicted, labels), o["loss"]!.GetValue<double>(), o["count"]!.GetValue<int>())
        {
            Truth = truth, Predicted = predicted, Probabilities = o["probabilities"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray(),
        };
    }
}
