using System.Text.Json.Nodes;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Tasks;
using Whetstone.Training.Runs;

namespace Whetstone.Cli;

/// <summary><c>whet evaluate</c> and <c>whet predict</c> for text-classification bundles.</summary>
internal static class TextCommands
{
    /// <summary>A text bundle or run folder, else a raw checkpoint scored with its own head (<see cref="TextBundle.FromCheckpoint"/>).</summary>
    public static LoadedTextBundle Open(string modelPath, IReadOnlyList<string>? labels, TextWriter? log) =>
        Bundle.InfoPath(modelPath) is not null ? TextBundle.Load(modelPath, log) : TextBundle.FromCheckpoint(modelPath, labels, log);

    public static int Evaluate(string modelPath, string dataPath, string? format, bool json, bool noBefore, IReadOnlyList<string>? labels)
    {
        var bundle = Open(modelPath, labels, json ? null : Console.Out);
        bool raw = bundle.Info["source"]?.GetValue<string>() == "checkpoint";     // a raw checkpoint is the model before fine-tuning
        var path = Path.GetFullPath(dataPath);
        // read the data as the run did (columns, label map, bad rows) from the run's resolved config when there is one
        var runConfig = Path.Combine(Path.GetDirectoryName(bundle.Path)!, "config.yaml");
        var text = File.Exists(runConfig) ? ConfigLoader.Parse(string.Join('\n', File.ReadAllLines(runConfig).Skip(1)), runConfig).Text : new TextConfig();
        var set = TextFiles.Read(path, new TextReadOptions
        {
            Format = format ?? "auto", TextColumn = text.TextColumn, PairColumn = text.PairColumn, LabelColumn = text.LabelColumn,
            LabelMap = text.LabelMap, BadRows = text.BadRows, FilePattern = text.FilePattern,
        }).WithLabels(bundle.Labels, "evaluation data");
        var ids = set.Rows.Select(r => bundle.Net.Tokenize(r.Text, r.Pair, bundle.MaxLength)).ToArray();
        var after = TextClassification.Score(bundle.Net, ids, set.Labels, set.LabelNames);
        EvalResult? before = noBefore || raw ? null : TextClassification.Score(TextBundle.BeforeFineTuning(bundle), ids, set.Labels, set.LabelNames);
        Console.WriteLine(json ? EvalJson.Write(after, before, Path.GetFileName(path)) : EvalJson.Text(after, before));
        return 0;
    }

    public static int Predict(string modelPath, IReadOnlyList<string> texts, int top, bool json, IReadOnlyList<string>? labels)
    {
        var bundle = Open(modelPath, labels, null);
        int k = Math.Clamp(top, 1, bundle.Labels.Count);
        var probs = bundle.Predict(texts);
        for (int t = 0; t < texts.Count; t++)
        {
            var p = bundle.Temperature == 1 ? probs[t] : Calibration.Apply(probs[t], probs[t].Length, bundle.Temperature);
            var best = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).Take(k).ToArray();
            int label = bundle.Threshold is double th && p.Length == 2 ? Thresholds.Decide(p[1], th) : best[0];
            if (json)
                Console.WriteLine(new JsonObject
                {
                    ["text"] = texts[t], ["label"] = bundle.Labels[label],
                    ["top"] = new JsonArray(best.Select(i => (JsonNode)new JsonObject { ["label"] = bundle.Labels[i], ["probability"] = Math.Round(p[i], 6) }).ToArray()),
                }.ToJsonString());
            else Console.WriteLine($"{(texts[t].Length > 60 ? texts[t][..57] + "..." : texts[t])}: {bundle.Labels[label]} ({string.Join(", ", best.Select(i => $"{bundle.Labels[i]} {p[i]:P1}"))})");
        }
        return 0;
    }
}
