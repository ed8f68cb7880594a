using System.Globalization;
using System.Net;
using System.Text;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;

namespace Whetstone.Training.Reports;

/// <summary>
/// The report of a causal-lm or chat run: held-out loss, perplexity and token accuracy before and after fine-tuning,
/// the training curves, and sample replies to held-out prompts before and after. Self-contained HTML (no fetches).
/// </summary>
internal static class LmReport
{
    public static void Write(string path, CausalLmTask task, RunDirectory run, LmScore before, IReadOnlyList<LmSample> beforeSamples, LmScore after, IReadOnlyList<LmSample> afterSamples)
    {
        static string H(string s) => WebUtility.HtmlEncode(s);
        static string F(double v, string f) => double.IsFinite(v) ? v.ToString(f, CultureInfo.InvariantCulture) : "–";
        var title = $"{Path.GetFileName(run.Path)}: {task.Name} fine-tuning";
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        sb.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">");
        sb.Append("<link rel=\"icon\" href=\"data:,\"><title>").Append(H(title)).Append("</title><style>").Append(HtmlReport.Css)
          .Append(".sample td{vertical-align:top;white-space:pre-wrap;font-family:\"DejaVu Sans Mono\",monospace;font-size:12px;max-width:360px}</style></head><body><main>");
        sb.Append("<h1>").Append(H(title)).Append("</h1><table class=\"info\">");
        foreach (var (k, v) in new[]
        {
            ("model", $"{task.Lm.ModelType} from {task.ModelFolder}"),
            ("trainable", $"{task.Lm.NamedParameters().Where(p => p.Tensor.RequiresGrad).Sum(p => (long)p.Tensor.Size):N0} of {task.Lm.ParameterCount():N0} parameters{(task.Lora is null ? "" : $" (LoRA r={task.Lora.Rank}, merged into the bundle)")}"),
            ("data", $"{task.TrainSet.Format}: {task.TrainSet.Examples.Count:N0} training sequences ({task.TrainSet.TargetTokens:N0} target tokens)"),
            ("held out", $"{(task.TestSet is null ? "validation" : "test")}: {before.Tokens:N0} target tokens"),
        })
            sb.Append("<tr><td>").Append(H(k)).Append("</td><td>").Append(H(v)).Append("</td></tr>");
        sb.Append("</table>");

        sb.Append("<section id=\"summary\"><h2>before vs after</h2><table><tr><th></th><th>loss</th><th>perplexity</th><th>token accuracy</th></tr>");
        foreach (var (name, s) in new[] { ("before fine-tuning", before), ("after fine-tuning", after) })
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{name}</td><td>{F(s.Loss, "F4")}</td><td>{F(s.Perplexity, "F2")}</td><td>{F(100 * s.TokenAccuracy, "F1")}%</td></tr>");
        sb.Append("</table><p>Loss is the mean next-token cross-entropy over the target tokens (assistant turns for chat, completions for prompt/completion rows, every token for plain text); perplexity is its exponential.</p></section>");

        var epochs = ReportData.ReadMetrics(run.MetricsPath).Where(m => m["train_loss"] is not null && m["epoch"] is not null).ToList();
        if (epochs.Count > 0)
        {
            double[] x = epochs.Select(e => e["epoch"]!.GetValue<double>()).ToArray();
            var series = new List<Series> { new("train loss", x, epochs.Select(e => e["train_loss"]!.GetValue<double>()).ToArray(), Markers: true) };
            if (epochs.All(e => e["val_loss"] is not null)) series.Add(new("validation loss", x, epochs.Select(e => e["val_loss"]!.GetValue<double>()).ToArray(), Markers: true));
            sb.Append("<section id=\"training\"><h2>training</h2><img alt=\"loss per epoch\" src=\"data:image/png;base64,")
              .Append(Convert.ToBase64String(Plots.Lines("loss per epoch", "epoch", "loss", series))).Append("\"></section>");
        }

        if (beforeSamples.Count > 0 || afterSamples.Count > 0)
        {
            sb.Append("<section id=\"samples\"><h2>sample replies (greedy)</h2><table class=\"sample\"><tr><th>prompt</th><th>reference</th><th>before</th><th>after</th></tr>");
            for (int i = 0; i < Math.Max(beforeSamples.Count, afterSamples.Count); i++)
            {
                var b = i < beforeSamples.Count ? beforeSamples[i] : null;
                var a = i < afterSamples.Count ? afterSamples[i] : null;
                var prompt = (a ?? b)!.Prompt;
                sb.Append("<tr><td>").Append(H(prompt.Length > 600 ? "…" + prompt[^600..] : prompt)).Append("</td><td>").Append(H((a ?? b)!.Reference))
                  .Append("</td><td>").Append(H(b?.Reply ?? "")).Append("</td><td>").Append(H(a?.Reply ?? "")).Append("</td></tr>");
            }
            sb.Append("</table></section>");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<footer>Whetstone training report, written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.</footer></main></body></html>\n");
        RunDirectory.WriteAtomic(path, sb.ToString());
    }
}
