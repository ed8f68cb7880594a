using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Reports;

/// <summary>The report <c>whet evaluate</c> writes: the new data's scores with the bundle's stored temperature and threshold.</summary>
internal static class EvaluateReport
{
    /// <summary>Writes the report to <paramref name="path"/> or, by default, <c>report.html</c> in the bundle's run folder; returns the path.</summary>
    public static string Write(Tasks.LoadedImageBundle bundle, ImageDataset data, EvalResult after, EvalResult? before, string dataName, string? path)
    {
        var runDir = Path.GetDirectoryName(Path.GetFullPath(bundle.Path))!;   // a bundle lives in runs/<name>/model
        var info = bundle.Info;
        var report = new ReportData
        {
            Title = $"{Path.GetFileName(runDir)}: evaluation on {dataName}",
            RunInfo =
            [
                new("bundle", bundle.Path),
                new("model", info["source"]?["original"]?.ToString() ?? "?"),
                new("data", $"{dataName}: {data.Count:N0} examples, {bundle.Labels.Count} classes"),
            ],
            Metrics = ReportData.ReadMetrics(Path.Combine(runDir, "metrics.jsonl")),
            Labels = bundle.Labels,
            After = after,
            Before = before,
            EvaluatedOn = dataName,
            Temperature = info["temperature"] is null ? null : bundle.Temperature,
            Threshold = bundle.Threshold,
            ThresholdRule = bundle.ThresholdRule ?? "max_f1",
            Example = HtmlReport.ImageExamples(data),
        };
        return HtmlReport.Write(report, path ?? Path.Combine(runDir, "report.html"));
    }
}
