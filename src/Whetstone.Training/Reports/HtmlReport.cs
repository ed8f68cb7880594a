using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Reports;

/// <summary>
/// The evaluation report: one self-contained HTML file (inline CSS, every chart and thumbnail a base64 PNG data URI,
/// no script, a Content-Security-Policy that forbids any request) with: a before/after summary with bootstrap 95%
/// intervals, training curves and the learning rate from <c>metrics.jsonl</c>, confusion matrices, the per-class table,
/// ROC/PR curves and the decision threshold (two-class tasks), calibration (reliability diagrams, ECE before/after
/// temperature scaling fitted on validation), the most confident mistakes, and an optional hyperparameter study.
/// </summary>
public static class HtmlReport
{
    /// <summary>Section ids, in page order (the anchors of the table of contents).</summary>
    public static readonly IReadOnlyList<string> SectionIds = ["summary", "training", "confusion", "per-class", "binary", "calibration", "mistakes", "study"];

    /// <summary>The report as an HTML string.</summary>
    public static string Render(ReportData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var a = Analysis.Of(data);
        var body = new StringBuilder();
        body.Append(Summary(data, a));
        body.Append(Training(data));
        body.Append(Confusion(data));
        body.Append(PerClass(data));
        if (a.Binary) body.Append(BinarySection(data, a));
        body.Append(CalibrationSection(data, a));
        body.Append(MistakesSection(data));
        if (data.Study is not null) body.Append(StudySection(data.Study));
        return Page(data.Title, data.RunInfo, body.ToString(), a.Binary, data.Study is not null);
    }

    /// <summary>Writes the report to <paramref name="path"/> (atomically) and returns the full path.</summary>
    public static string Write(ReportData data, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var html = Render(data);
        var full = Path.GetFullPath(path);
        RunDirectory.WriteAtomic(full, html);
        return full;
    }

    /// <summary>A page with only a study's section (for a tuner without a single best-model evaluation).</summary>
    public static string RenderStudy(string title, StudyData study, IReadOnlyList<KeyValuePair<string, string>>? info = null)
    {
        ArgumentNullException.ThrowIfNull(study);
        return Page(title, info ?? [], StudySection(study), binary: false, study: true, onlyStudy: true);
    }

    /// <summary>Thumbnails of an image dataset's examples for <see cref="ReportData.Example"/> (the label is shown separately).</summary>
    public static Func<int, (string? Text, byte[]? Png)> ImageExamples(ImageDataset data, int maxSize = 96)
    {
        ArgumentNullException.ThrowIfNull(data);
        return i => (data.Describe(i), Thumbnails.Png(data.GetImage(i), maxSize));
    }

    // ------------------------------------------------------------------ analysis

    /// <summary>The derived numbers: bootstrap intervals, temperature, calibrated probabilities, threshold, ECEs.</summary>
    internal sealed record Analysis(bool Binary, BootstrapResult? AfterCi, BootstrapResult? BeforeCi, CalibratedDecision Decision,
        EvalResult? AfterCalibrated, double? EceAfter, double? EceAfterCalibrated, double? EceBefore, double? EceValidation, double? EceValidationCalibrated)
    {
        public static Analysis Of(ReportData d)
        {
            if (d.Labels.Count != d.After.Report.Labels.Count) throw new ArgumentException($"The report has {d.Labels.Count} labels but the evaluation {d.After.Report.Labels.Count}.");
            bool binary = d.Labels.Count == 2 && d.After.Probabilities is not null && d.After.Truth is not null;
            BootstrapResult? Ci(EvalResult? e) => e is { Truth: not null, Predicted: not null, Count: > 0 } ? Bootstrap.Classification(e, seed: d.Seed) : null;
            double? Ece(EvalResult? e) => e is { Probabilities: not null, Truth: not null, Count: > 0 } ? Calibration.ExpectedCalibrationError(e) : null;
            var rule = Evaluation.ThresholdRule.Parse(d.ThresholdRule);
            CalibratedDecision decision;
            if (d.Validation is not null) decision = CalibratedDecision.Fit(d.Validation, rule);
            else
            {
                // no validation set: the bundle's stored temperature/threshold, else a threshold chosen on the evaluation itself
                var stored = d.Temperature is double tt ? new TemperatureFit(tt, double.NaN, double.NaN, 0) : null;
                ThresholdChoice? th = null;
                if (binary)
                {
                    var scaled = stored is null ? d.After : Calibration.Apply(d.After, stored.Temperature);
                    th = d.Threshold is double at
                        ? new ThresholdChoice(at, rule, Thresholds.PointAt(scaled.Truth!, BinaryMetrics.PositiveScores(scaled.Probabilities!, 2), at))
                        : Thresholds.Choose(scaled, rule);
                }
                decision = new CalibratedDecision(stored, th);
            }
            var afterCal = decision.Temperature is { } t && d.After.Probabilities is not null ? Calibration.Apply(d.After, t.Temperature) : null;
            var valCal = decision.Temperature is { } tv && d.Validation?.Probabilities is not null ? Calibration.Apply(d.Validation, tv.Temperature) : null;
            return new Analysis(binary, Ci(d.After), Ci(d.Before), decision, afterCal, Ece(d.After), Ece(afterCal), Ece(d.Before), Ece(d.Validation), Ece(valCal));
        }
    }

    // ------------------------------------------------------------------ sections

    private static string Summary(ReportData d, Analysis a)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<p>Evaluated on <b>{H(d.EvaluatedOn)}</b>: {d.After.Count:N0} examples, {d.Labels.Count} classes. ");
        sb.Append("Intervals: bootstrap 95% (percentile, 1,000 resamples of the examples, seed ").Append(d.Seed).Append(").</p>");
        sb.Append("<table class=\"num\"><tr><th>metric</th><th>before fine-tuning</th><th>after fine-tuning</th><th>change</th></tr>");
        void Row(string name, double? before, double? after, Func<double, string> fmt, ConfidenceInterval? bci = null, ConfidenceInterval? aci = null, bool lowerIsBetter = false)
        {
            string Cell(double? v, ConfidenceInterval? ci) => v is null ? "–" : fmt(v.Value) + (ci is { } c ? $" <span class=\"ci\">[{fmt(c.Lower)}, {fmt(c.Upper)}]</span>" : "");
            string change = before is null || after is null ? "–" : Delta(after.Value - before.Value, fmt, lowerIsBetter);
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{name}</td><td>{Cell(before, bci)}</td><td>{Cell(after, aci)}</td><td>{change}</td></tr>");
        }
        Row("accuracy", d.Before?.Report.Accuracy, d.After.Report.Accuracy, Pct, a.BeforeCi?.Accuracy, a.AfterCi?.Accuracy);
        Row("macro-F1", d.Before?.Report.MacroF1, d.After.Report.MacroF1, F3, a.BeforeCi?.MacroF1, a.AfterCi?.MacroF1);
        Row("loss (cross-entropy)", d.Before?.Loss, d.After.Loss, F3, lowerIsBetter: true);
        Row("ECE (15 bins)", a.EceBefore, a.EceAfter, F3, lowerIsBetter: true);
        if (a.Binary && EvalJson.Binary(d.After) is var (auc, ap))
        {
            var bb = d.Before is null ? null : EvalJson.Binary(d.Before);
            Row("ROC-AUC", bb?.RocAuc, auc, F3);
            Row("PR-AUC (average precision)", bb?.PrAuc, ap, F3);
        }
        sb.Append("</table>");
        if (a.Decision.Temperature is { } t)
            sb.Append(CultureInfo.InvariantCulture, $"<p>Temperature scaling (T = {t.Temperature:F3}, {(t.Count > 0 ? "fitted on validation" : "from the bundle")}) changes the ECE from {F3(a.EceAfter ?? double.NaN)} to {F3(a.EceAfterCalibrated ?? double.NaN)}; accuracy is unchanged.</p>");
        return Section("summary", "Before vs after fine-tuning", sb.ToString());
    }

    private static string Training(ReportData d)
    {
        var steps = d.Metrics.Where(m => m["step"] is not null && m["loss"] is not null).ToArray();
        var epochs = d.Metrics.Where(m => m["step"] is null && m["event"] is null && m["epoch"] is not null).ToArray();
        if (steps.Length == 0 && epochs.Length == 0) return Section("training", "Training curves", "<p class=\"note\">No training metrics (metrics.jsonl) were given.</p>");
        static (double[] X, double[] Y) Xy(JsonObject[] lines, string x, string y)
        {
            var pts = lines.Select(l => (X: Num(l[x]), Y: Num(l[y]))).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray();
            return (pts.Select(p => p.X).ToArray(), pts.Select(p => p.Y).ToArray());
        }
        Series S(JsonObject[] lines, string x, string y, string name, bool markers = false, bool dashed = false)
        {
            var (xs, ys) = Xy(lines, x, y);
            return new Series(name, xs, ys, markers, dashed);
        }
        var imgs = new List<string>();
        if (steps.Length > 0)
        {
            imgs.Add(Img(Plots.Lines("training loss per step", "optimizer step", "loss", [S(steps, "step", "loss", "batch loss")]), "training loss per step"));
            imgs.Add(Img(Plots.Lines("learning rate", "optimizer step", "learning rate", [S(steps, "step", "lr", "lr")]), "learning rate per step"));
        }
        if (epochs.Length > 0)
        {
            imgs.Add(Img(Plots.Lines("loss per epoch", "epoch", "loss", [S(epochs, "epoch", "train_loss", "train", true), S(epochs, "epoch", "val_loss", "validation", true)]), "loss per epoch"));
            imgs.Add(Img(Plots.Lines("validation metrics per epoch", "epoch", "score", [S(epochs, "epoch", "val_accuracy", "accuracy", true), S(epochs, "epoch", "val_macro_f1", "macro-F1", true)]), "validation metrics per epoch"));
        }
        if (steps.Any(s => double.IsFinite(Num(s["grad_norm"]))))
            imgs.Add(Img(Plots.Lines("gradient norm (before clipping)", "optimizer step", "‖g‖", [S(steps, "step", "grad_norm", "grad norm")]), "gradient norm per step"));
        var sb = new StringBuilder("<div class=\"grid\">").AppendJoin("", imgs).Append("</div>");
        var best = d.Metrics.FirstOrDefault(m => m["event"]?.GetValue<string>() == "after")?["best_epoch"];
        var stopped = d.Metrics.FirstOrDefault(m => m["event"]?.GetValue<string>() == "stopped")?["epoch"];
        if (epochs.Length > 0)
        {
            double sec = epochs.Sum(e => Num(e["seconds"]) is var s && double.IsFinite(s) ? s : 0);
            sb.Append(CultureInfo.InvariantCulture, $"<p>{epochs.Length} epochs, {sec:F1} s in all");
            if (best is not null) sb.Append(CultureInfo.InvariantCulture, $"; best epoch by validation macro-F1: {best}");
            if (stopped is not null) sb.Append(CultureInfo.InvariantCulture, $"; stopped (pruned) after epoch {stopped}");
            sb.Append(".</p>");
        }
        return Section("training", "Training curves", sb.ToString());
    }

    private static string Confusion(ReportData d)
    {
        var sb = new StringBuilder("<p>Rows: true class, columns: predicted class; shading is the fraction of the row.</p><div class=\"side\">");
        if (d.Before is not null) sb.Append("<div><h3>before fine-tuning</h3>").Append(ConfusionTable(d.Before.Report)).Append("</div>");
        sb.Append("<div><h3>after fine-tuning</h3>").Append(ConfusionTable(d.After.Report)).Append("</div></div>");
        return Section("confusion", "Confusion matrix", sb.ToString());
    }

    private static string ConfusionTable(ClassificationReport r)
    {
        int k = r.Labels.Count;
        var sb = new StringBuilder("<table class=\"cm\"><tr><th></th>");
        for (int j = 0; j < k; j++) sb.Append(CultureInfo.InvariantCulture, $"<th title=\"{H(r.Labels[j])}\">{j}</th>");
        sb.Append("</tr>");
        for (int i = 0; i < k; i++)
        {
            int total = 0;
            for (int j = 0; j < k; j++) total += r.ConfusionMatrix[i, j];
            sb.Append(CultureInfo.InvariantCulture, $"<tr><th class=\"lbl\">{i} {H(r.Labels[i])}</th>");
            for (int j = 0; j < k; j++)
            {
                int n = r.ConfusionMatrix[i, j];
                double f = total == 0 ? 0 : (double)n / total;
                string hue = i == j ? "31,119,180" : "214,39,40";
                string fg = f > 0.55 ? "#fff" : "#222";
                sb.Append(CultureInfo.InvariantCulture, $"<td style=\"background:rgba({hue},{0.08 + 0.92 * f:F2});color:{fg}\" title=\"true {H(r.Labels[i])}, predicted {H(r.Labels[j])}: {n}\">{(n == 0 ? "" : n)}</td>");
            }
            sb.Append("</tr>");
        }
        return sb.Append("</table>").ToString();
    }

    private static string PerClass(ReportData d)
    {
        var r = d.After.Report;
        var b = d.Before?.Report;
        var sb = new StringBuilder("<table class=\"num\"><tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th>");
        if (b is not null) sb.Append("<th>F1 before</th><th>change</th>");
        sb.Append("</tr>");
        for (int c = 0; c < r.PerClass.Count; c++)
        {
            var s = r.PerClass[c];
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{c} {H(s.Label)}</td><td>{s.Support:N0}</td><td>{F3(s.Precision)}</td><td>{F3(s.Recall)}</td><td><b>{F3(s.F1)}</b></td>");
            if (b is not null) sb.Append(CultureInfo.InvariantCulture, $"<td>{F3(b.PerClass[c].F1)}</td><td>{Delta(s.F1 - b.PerClass[c].F1, F3, false)}</td>");
            sb.Append("</tr>");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<tr class=\"total\"><td>macro average</td><td>{d.After.Count:N0}</td><td>{F3(r.PerClass.Average(p => p.Precision))}</td><td>{F3(r.PerClass.Average(p => p.Recall))}</td><td><b>{F3(r.MacroF1)}</b></td>");
        if (b is not null) sb.Append(CultureInfo.InvariantCulture, $"<td>{F3(b.MacroF1)}</td><td>{Delta(r.MacroF1 - b.MacroF1, F3, false)}</td>");
        sb.Append("</tr></table>");
        return Section("per-class", "Per-class precision, recall and F1", sb.ToString());
    }

    private static string BinarySection(ReportData d, Analysis a)
    {
        string positive = d.Labels[1];
        var curves = new List<(string Name, EvalResult E, bool Dashed)> { ("after", d.After, false) };
        if (d.Before is { Probabilities: not null, Truth: not null }) curves.Add(("before", d.Before, true));
        var roc = new List<Series>();
        var pr = new List<Series>();
        foreach (var (name, e, dashed) in curves)
        {
            var scores = BinaryMetrics.PositiveScores(e.Probabilities!, 2);
            var sweep = BinaryMetrics.Sweep(e.Truth!, scores);
            var (auc, ap) = EvalJson.Binary(e)!.Value;
            roc.Add(new Series($"{name} (AUC {F3(auc)})", sweep.Select(p => p.FalsePositiveRate).ToArray(), sweep.Select(p => p.Recall).ToArray(), Dashed: dashed));
            var prPts = sweep.Skip(1).ToArray();
            pr.Add(new Series($"{name} (AP {F3(ap)})", prPts.Select(p => p.Recall).ToArray(), prPts.Select(p => p.Precision).ToArray(), Dashed: dashed));
        }
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<p>Positive class: <b>{H(positive)}</b> (label 1).</p>");
        (double, double, string)? rocMark = null, prMark = null;
        if (a.Decision.Threshold is { } th)
        {
            // the threshold applies to temperature-scaled probabilities; its counts on the evaluation set:
            var p = Thresholds.PointAt(d.After.Truth!, BinaryMetrics.PositiveScores((a.AfterCalibrated ?? d.After).Probabilities!, 2), th.Threshold);
            rocMark = (p.FalsePositiveRate, p.Recall, $"threshold {th.Threshold:F3}");
            prMark = (p.Recall, p.Precision, $"threshold {th.Threshold:F3}");
            string where = d.Validation is not null ? "the validation set" : d.Threshold is not null ? "the validation set at training time (stored in the bundle)"
                : "the evaluation set itself (no validation set was given, so it is optimistic)";
            sb.Append(CultureInfo.InvariantCulture, $"<p>Decision threshold <b>{th.Threshold:F4}</b> on the {(a.Decision.Temperature is null ? "" : "temperature-scaled ")}probability of <b>{H(positive)}</b>: rule <code>{H(th.Rule.ToString())}</code> ({H(th.Rule.Describe())}), chosen on {where}");
            if (!th.Reached) sb.Append(" — the target recall was not reached; every example is predicted positive");
            sb.Append(".</p><table class=\"num\"><tr><th></th><th>TP</th><th>FP</th><th>FN</th><th>TN</th><th>precision</th><th>recall</th><th>F1</th></tr>");
            void Row(string name, ThresholdPoint q) => sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{name}</td><td>{q.TruePositives}</td><td>{q.FalsePositives}</td><td>{q.FalseNegatives}</td><td>{q.TrueNegatives}</td><td>{F3(q.Precision)}</td><td>{F3(q.Recall)}</td><td>{F3(q.F1)}</td></tr>");
            if (d.Validation is not null) Row("validation", th.Point);
            Row($"{H(d.EvaluatedOn)} at this threshold", p);
            sb.Append("</table>");
        }
        sb.Append("<div class=\"grid\">")
          .Append(Img(Plots.Curve("ROC curve", "false positive rate", "true positive rate (recall)", roc, rocMark, diagonal: true), "ROC curve"))
          .Append(Img(Plots.Curve("precision–recall curve", "recall", "precision", pr, prMark, diagonal: false), "precision-recall curve"))
          .Append("</div>");
        return Section("binary", "ROC and precision–recall", sb.ToString());
    }

    private static string CalibrationSection(ReportData d, Analysis a)
    {
        if (d.After.Probabilities is null || d.After.Truth is null)
            return Section("calibration", "Calibration", "<p class=\"note\">The evaluation kept no probabilities.</p>");
        var sb = new StringBuilder();
        sb.Append("<p>Confidence is the top-class probability; ECE = Σ (n<sub>bin</sub>/N)·|accuracy − mean confidence| over 15 equal-width bins. ");
        if (a.Decision.Temperature is { } t)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Temperature scaling divides the logits by T = <b>{t.Temperature:F3}</b>, ");
            sb.Append(t.Count > 0
                ? string.Create(CultureInfo.InvariantCulture, $"fitted on {t.Count:N0} validation examples by minimising their negative log-likelihood ({t.NllBefore:F4} → {t.NllAfter:F4}).</p>")
                : "stored in the bundle (fitted on the validation set when the model was trained).</p>");
            sb.Append("<table class=\"num\"><tr><th>ECE</th><th>before temperature scaling</th><th>after temperature scaling</th></tr>");
            if (d.Validation is not null) sb.Append(CultureInfo.InvariantCulture, $"<tr><td>validation</td><td>{F4(a.EceValidation)}</td><td>{F4(a.EceValidationCalibrated)}</td></tr>");
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(d.EvaluatedOn)}</td><td>{F4(a.EceAfter)}</td><td><b>{F4(a.EceAfterCalibrated)}</b></td></tr>");
            if (a.EceBefore is { } eb) sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(d.EvaluatedOn)}, model before fine-tuning</td><td>{F4(eb)}</td><td>–</td></tr>");
            sb.Append("</table>");
        }
        else sb.Append("No validation set (or stored temperature) was given, so no temperature was fitted.</p>");
        var (p, truth, k) = (d.After.Probabilities, d.After.Truth, d.Labels.Count);
        sb.Append("<div class=\"grid\">");
        sb.Append(Img(Plots.Reliability($"{d.EvaluatedOn}: as trained (ECE {F4(a.EceAfter)})", Calibration.Bins(p, k, truth)), "reliability diagram before temperature scaling"));
        if (a.AfterCalibrated is { Probabilities: { } pc })
            sb.Append(Img(Plots.Reliability($"{d.EvaluatedOn}: temperature-scaled, T = {a.Decision.Temperature!.Temperature:F2} (ECE {F4(a.EceAfterCalibrated)})", Calibration.Bins(pc, k, truth)), "reliability diagram after temperature scaling"));
        sb.Append("</div>");
        return Section("calibration", "Calibration", sb.ToString());
    }

    private static string MistakesSection(ReportData d)
    {
        var e = d.After;
        if (e.Truth is null || e.Predicted is null || e.Probabilities is null)
            return Section("mistakes", "Most confident mistakes", "<p class=\"note\">The evaluation kept no per-example predictions.</p>");
        int k = d.Labels.Count;
        var wrong = Enumerable.Range(0, e.Truth.Length).Where(i => e.Truth[i] != e.Predicted[i])
            .OrderByDescending(i => e.Probabilities[i * k + e.Predicted[i]]).ThenBy(i => i).Take(Math.Max(0, d.Mistakes)).ToArray();
        int total = Enumerable.Range(0, e.Truth.Length).Count(i => e.Truth[i] != e.Predicted[i]);
        if (wrong.Length == 0) return Section("mistakes", "Most confident mistakes", "<p>No mistakes on this set.</p>");
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<p>The {wrong.Length} mistakes (of {total:N0}) the fine-tuned model was surest of, by the probability it gave its wrong answer.</p><div class=\"cards\">");
        foreach (int i in wrong)
        {
            sb.Append("<div class=\"card\">");
            var (text, png) = d.Example?.Invoke(i) ?? (null, null);
            if (png is not null) sb.Append(Img(png, $"example {i}", cls: "thumb"));
            if (text is not null) sb.Append("<div class=\"text\">").Append(H(text.Length > 400 ? text[..400] + "…" : text)).Append("</div>");
            double pp = e.Probabilities[i * k + e.Predicted[i]], pt = e.Probabilities[i * k + e.Truth[i]];
            sb.Append(CultureInfo.InvariantCulture, $"<div>#{i}</div><div>true: <b>{H(d.Labels[e.Truth[i]])}</b> ({Pct(pt)})</div><div class=\"bad\">predicted: <b>{H(d.Labels[e.Predicted[i]])}</b> ({Pct(pp)})</div></div>");
        }
        sb.Append("</div>");
        return Section("mistakes", "Most confident mistakes", sb.ToString());
    }

    private static string StudySection(StudyData s)
    {
        var sb = new StringBuilder();
        var trials = s.Trials;
        int complete = trials.Count(t => t.IsComplete);
        var scored = trials.Where(t => t.Value is double v && double.IsFinite(v)).ToArray();
        var best = trials.Where(t => t.IsComplete && t.Value is double v && double.IsFinite(v))
            .OrderBy(t => s.Maximize ? -t.Value!.Value : t.Value!.Value).ThenBy(t => t.Number).ToArray();
        sb.Append(CultureInfo.InvariantCulture, $"<p>Study <b>{H(s.Name)}</b>: {trials.Count} trials ({complete} complete, {trials.Count(t => t.State.Equals("pruned", StringComparison.OrdinalIgnoreCase))} pruned, {trials.Count(t => t.State.Equals("failed", StringComparison.OrdinalIgnoreCase))} failed); objective <b>{H(s.Objective)}</b>, {(s.Maximize ? "maximised" : "minimised")}.");
        if (best.Length > 0) sb.Append(CultureInfo.InvariantCulture, $" Best: trial {best[0].Number}, {H(s.Objective)} = {G4(best[0].Value!.Value)}.");
        sb.Append("</p>");
        if (scored.Length > 0)
        {
            sb.Append("<div class=\"grid\">").Append(Img(Plots.StudyHistory(s.Objective, s.Maximize, trials), "trial history and best so far")).Append("</div>");
            var names = trials.SelectMany(t => t.Params.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
            sb.Append("<div class=\"grid small\">");
            foreach (var name in names)
            {
                var pts = scored.Where(t => t.Params.ContainsKey(name)).Select(t => (t.Params[name], t.Value!.Value, t.IsComplete)).ToArray();
                if (pts.Length > 0) sb.Append(Img(Plots.ParameterVsObjective(name, s.Objective, pts), $"{name} against {s.Objective}"));
            }
            sb.Append("</div>");
        }
        var names2 = trials.SelectMany(t => t.Params.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        sb.Append("<table class=\"num\"><tr><th>trial</th><th>state</th><th>").Append(H(s.Objective)).Append("</th>");
        foreach (var n in names2) sb.Append("<th>").Append(H(n)).Append("</th>");
        sb.Append("</tr>");
        var ordered = best.Concat(trials.Except(best).OrderBy(t => t.Number)).Take(50);
        foreach (var t in ordered)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr{(best.Length > 0 && t == best[0] ? " class=\"best\"" : "")}><td>{t.Number}</td><td>{H(t.State)}</td><td>{(t.Value is double v ? G4(v) : "–")}</td>");
            foreach (var n in names2) sb.Append("<td>").Append(t.Params.TryGetValue(n, out var pv) ? H(FormatValue(pv)) : "–").Append("</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>");
        if (trials.Count > 50) sb.Append(CultureInfo.InvariantCulture, $"<p class=\"note\">{trials.Count - 50} more trials not listed.</p>");
        return Section("study", "Hyperparameter study", sb.ToString());
    }

    // ------------------------------------------------------------------ page and helpers

    internal const string Css = """
        body{font:14px/1.45 "DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f7f9}
        main{max-width:1180px;margin:0 auto;padding:16px 24px 48px;background:#fff}
        h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;border-bottom:2px solid #1f77b4;padding-bottom:3px;margin-top:30px}
        h3{font-size:15px;margin:6px 0}
        nav a{margin-right:12px;color:#1f77b4;text-decoration:none}
        table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px}th{background:#f0f3f6}
        table.num td{text-align:right}table.num td:first-child{text-align:left}
        table.info td:first-child{color:#555;padding-right:16px}table.info td{border:none;padding:1px 8px 1px 0;text-align:left}
        table.cm td{width:30px;height:22px;padding:2px 3px;font-size:12px;text-align:center;font-variant-numeric:tabular-nums;border:1px solid #fff}
        table.cm th{font-size:12px}table.cm th.lbl{text-align:left;white-space:nowrap;font-weight:normal}
        tr.total td{border-top:2px solid #888}tr.best td{background:#eaf4ea}
        .ci{color:#666;font-size:12px}.up{color:#2a7d2a}.down{color:#b22}.note{color:#777;font-style:italic}
        .grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{border:1px solid #e3e3e3}
        .side{display:flex;flex-wrap:wrap;gap:32px}
        .cards{display:flex;flex-wrap:wrap;gap:10px}
        .card{border:1px solid #ddd;border-radius:4px;padding:6px;width:170px;font-size:12px;background:#fafafa}
        .card img.thumb{width:96px;height:auto;image-rendering:pixelated;display:block;margin:0 auto 4px;background:#000}
        .card .text{font-family:"DejaVu Sans Mono",monospace;white-space:pre-wrap;max-height:120px;overflow:hidden;margin-bottom:4px}
        .bad b{color:#b22}
        footer{color:#888;font-size:12px;margin-top:32px}
        """;

    private static string Page(string title, IReadOnlyList<KeyValuePair<string, string>> info, string body, bool binary, bool study, bool onlyStudy = false)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        // nothing may be fetched: images are data URIs, the style is inline, there is no script
        sb.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">");
        sb.Append("<link rel=\"icon\" href=\"data:,\">");
        sb.Append("<title>").Append(H(title)).Append("</title><style>").Append(Css).Append("</style></head><body><main>");
        sb.Append("<h1>").Append(H(title)).Append("</h1>");
        if (info.Count > 0)
        {
            sb.Append("<table class=\"info\">");
            foreach (var (k, v) in info) sb.Append("<tr><td>").Append(H(k)).Append("</td><td>").Append(H(v)).Append("</td></tr>");
            sb.Append("</table>");
        }
        var titles = new Dictionary<string, string>
        {
            ["summary"] = "summary", ["training"] = "training", ["confusion"] = "confusion matrix", ["per-class"] = "per class",
            ["binary"] = "ROC / PR", ["calibration"] = "calibration", ["mistakes"] = "mistakes", ["study"] = "study",
        };
        sb.Append("<nav>");
        foreach (var id in SectionIds)
            if ((id != "binary" || binary) && (id != "study" || study) && (!onlyStudy || id == "study"))
                sb.Append(CultureInfo.InvariantCulture, $"<a href=\"#{id}\">{titles[id]}</a>");
        sb.Append("</nav>").Append(body);
        sb.Append(CultureInfo.InvariantCulture, $"<footer>Whetstone evaluation report, written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.</footer></main></body></html>\n");
        return sb.ToString();
    }

    private static string Section(string id, string title, string body) => $"<section id=\"{id}\"><h2>{H(title)}</h2>{body}</section>\n";

    private static string Img(byte[] png, string alt, string? cls = null) =>
        $"<img{(cls is null ? "" : $" class=\"{cls}\"")} alt=\"{H(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\">";

    private static string H(string s) => WebUtility.HtmlEncode(s);
    private static string Pct(double v) => (100 * v).ToString("F1", CultureInfo.InvariantCulture) + "%";
    private static string F3(double v) => double.IsFinite(v) ? v.ToString("F3", CultureInfo.InvariantCulture) : "–";
    private static string F4(double? v) => v is double x && double.IsFinite(x) ? x.ToString("F4", CultureInfo.InvariantCulture) : "–";
    private static string G4(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    private static string Delta(double d, Func<double, string> fmt, bool lowerIsBetter)
    {
        if (!double.IsFinite(d)) return "–";
        string cls = d == 0 ? "" : (d > 0) ^ lowerIsBetter ? "up" : "down";
        string text = fmt(Math.Abs(d));
        return $"<span class=\"{cls}\">{(d > 0 ? "+" : d < 0 ? "−" : "±")}{text}</span>";
    }

    private static double Num(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN;

    private static string FormatValue(object? v) => v switch
    {
        null => "–",
        double d => d.ToString("G4", CultureInfo.InvariantCulture),
        float f => f.ToString("G4", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
