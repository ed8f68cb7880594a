using Whetstone.Training.Config;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Reports;

/// <summary>The report a training run writes as <c>runs/&lt;name&gt;/report.html</c>.</summary>
internal static class RunReport
{
    public static void Write(RunDirectory run, TrainConfig cfg, IReadOnlyList<string> labels, EvalResult before, EvalResult after,
        string evalName, EvalResult validation, Func<int, (string? Text, byte[]? Png)> example, TextWriter log, string? model = null)
    {
        var data = new ReportData
        {
            Title = $"{cfg.Name}: evaluation report",
            RunInfo =
            [
                new("run folder", run.Path),
                new("model", model ?? cfg.Model.Path + (cfg.Model.Features is null ? "" : $" (features: {cfg.Model.Features})")),
                new("data", $"{cfg.Data.Train} ({cfg.Data.Format}), {labels.Count} classes"),
                new("training", $"{cfg.Train.Epochs} epochs, {cfg.Train.Optimizer}, lr {cfg.Train.Lr}, batch {cfg.Train.BatchSize}, {cfg.Train.Schedule} schedule"),
            ],
            Metrics = ReportData.ReadMetrics(run.MetricsPath),
            Labels = labels,
            After = after,
            Before = before,
            EvaluatedOn = evalName,
            Validation = validation,
            Example = example,
            ThresholdRule = cfg.Train.Threshold,
            Seed = cfg.Seed,
        };
        try
        {
            var path = HtmlReport.Write(data, Path.Combine(run.Path, "report.html"));
            log.WriteLine($"report: {path}");
        }
        catch (InvalidOperationException e)
        {
            // the run's results are saved already; a missing plotting library must not lose them
            log.WriteLine($"warning: report.html not written: {e.Message}");
        }
    }
}
