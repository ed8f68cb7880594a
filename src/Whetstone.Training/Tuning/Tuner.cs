using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Tasks;

namespace Whetstone.Training.Tuning;

/// <summary>What one trial's training produced (the tuner records the per-epoch values itself).</summary>
public sealed record TrialOutcome(string? RunDir, bool Stopped, double? TestAccuracy = null, double? TestMacroF1 = null);

/// <summary>Trains one trial's config, calling <paramref name="onEpoch"/> after each epoch's validation.</summary>
public delegate TrialOutcome TrialFunction(TrainConfig config, EpochCallback onEpoch, TextWriter log);

/// <summary>
/// Runs trials of a study: claims the next one from the store, trains it with its parameters applied as <c>--set</c>
/// overrides, records every epoch's validation metric, lets the pruner stop it, and records how it ended. Any number
/// of tuners (processes) may share one study file.
/// </summary>
public sealed class Tuner(StudyDefinition study, StudyStore store, StudyInfo info, TextWriter progress, TrialFunction? train = null)
{
    private readonly TrialFunction _train = train ?? TrainTrial;

    /// <summary>One trial: the config's task (see <see cref="TaskRegistry"/>) through the trainer, with the epoch callback.</summary>
    public static TrialOutcome TrainTrial(TrainConfig config, EpochCallback onEpoch, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(config);
        var result = TaskRegistry.Train(config, log, onEpoch);
        var after = result.Outcome?.After;
        // classification tasks report accuracy and macro-F1 on the test set; others (causal-lm, chat) have neither
        double? Metric(string key) => after is not null && after.TryGetValue(key, out var v) ? v : null;
        return new TrialOutcome(result.RunDir, result.Stopped, Metric("accuracy"), Metric("macro_f1"));
    }

    /// <summary>Runs trials until the study has <paramref name="budget"/> finished (or running) trials, the sampler is exhausted, or <paramref name="deadline"/> passes.</summary>
    public int Run(int budget, DateTime? deadline, string worker = "")
    {
        var sampler = study.CreateSampler();
        var pruner = study.CreatePruner();
        bool retry = study.Search.OnInterrupted == "retry";
        int ran = 0, failedInARow = 0;
        Directory.CreateDirectory(study.StudyDir);
        while (deadline is null || DateTime.UtcNow < deadline)
        {
            var trial = store.Claim(info.Id, budget, retry, sampler.Sample);
            if (trial is null) break;
            ran++;
            string who = $"trial {trial.Number}{worker}";
            Say($"{who} started{(trial.RetryOf is int r ? $" (retry of interrupted trial {r})" : "")}: {Describe(trial.Params)}");
            var logPath = Path.Combine(study.StudyDir, $"trial-{trial.Number:D3}.log");
            using var log = new StreamWriter(logPath, append: true, new UTF8Encoding(false)) { AutoFlush = true };
            double? best = null;
            int epochs = 0;
            try
            {
                var cfg = study.TrialConfig(trial);
                int last = cfg.Train.Epochs;
                bool OnEpoch(int epoch, IReadOnlyDictionary<string, double> validation)
                {
                    double v = study.MetricOf(validation);
                    store.Report(trial.Id, epoch, v);
                    epochs = epoch;
                    if (best is null || study.Direction.Better(v, best.Value)) best = v;
                    if (epoch >= last) return true;
                    bool prune = pruner.ShouldPrune(epoch, v, store.Trials(info.Id).Where(t => t.Id != trial.Id));
                    Say($"{who} epoch {epoch}/{last}: {study.Metric} {v:F4}{(prune ? " → pruned" : "")}");
                    return !prune;
                }
                var outcome = _train(cfg, OnEpoch, log);
                var state = outcome.Stopped ? TrialState.Pruned : TrialState.Complete;
                store.Finish(trial.Id, state, best, outcome.RunDir, null, outcome.TestAccuracy, outcome.TestMacroF1);
                failedInARow = 0;
                Say($"{who} {TrialRecord.StateName(state)} after {epochs} epoch{(epochs == 1 ? "" : "s")}: {study.Metric} {best:F4}{BestSoFar()}");
            }
            catch (Exception e) when (e is ConfigException or DataException or InvalidOperationException or ArgumentException or IOException or KeyNotFoundException
                                          || e.GetType().Name.EndsWith("ImportException", StringComparison.Ordinal))
            {
                store.Finish(trial.Id, TrialState.Fail, best, null, e.Message);
                log.WriteLine($"error: {e}");
                Say($"{who} FAIL: {e.Message}");
                if (++failedInARow >= 3) throw new StudyException($"3 trials failed in a row; the last: {e.Message} (logs in {study.StudyDir}).", e);
            }
        }
        return ran;
    }

    private string BestSoFar()
    {
        var best = Leaderboard.Best(store.Trials(info.Id), study.Direction);
        return best is null ? "" : $" (best: trial {best.Number}, {best.Value:F4})";
    }

    private void Say(string line)
    {
        lock (progress) progress.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");
        progress.Flush();
    }

    public static string Describe(IReadOnlyDictionary<string, string?> p) =>
        p.Count == 0 ? "(no parameters)" : string.Join(", ", p.Select(kv => $"{kv.Key}={Short(kv.Value)}"));

    internal static string Short(string? v)
    {
        if (v is null) return "null";
        if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && v.Length > 8)
            return d.ToString("G4", CultureInfo.InvariantCulture);
        return v;
    }
}

/// <summary>Trials ranked best first, as a table or JSON; the best trial's bundle linked as <c>{study}/best</c>.</summary>
public static class Leaderboard
{
    /// <summary>The best COMPLETE trial by value, or null.</summary>
    public static TrialRecord? Best(IEnumerable<TrialRecord> trials, Direction direction)
    {
        TrialRecord? best = null;
        foreach (var t in trials)
            if (t.State == TrialState.Complete && t.Value is double v && (best is null || direction.Better(v, best.Value!.Value))) best = t;
        return best;
    }

    /// <summary>Complete trials by value, then pruned ones by epochs reached and best value, then failed and interrupted.</summary>
    public static IReadOnlyList<TrialRecord> Rank(IEnumerable<TrialRecord> trials, Direction direction)
    {
        static int Group(TrialState s) => s switch { TrialState.Complete => 0, TrialState.Pruned => 1, TrialState.Running => 2, TrialState.Fail => 3, _ => 4 };
        double Key(TrialRecord t) => t.Value is double v ? (direction.Maximize ? -v : v) : double.PositiveInfinity;
        return trials.OrderBy(t => Group(t.State)).ThenBy(t => t.State == TrialState.Pruned ? -t.EpochsRun : 0).ThenBy(Key).ThenBy(t => t.Number).ToList();
    }

    /// <summary>Epochs spent vs. what every counted trial would have spent at <paramref name="maxEpochs"/>.</summary>
    public static (int Spent, int Full) Epochs(IEnumerable<TrialRecord> trials, int maxEpochs)
    {
        var counted = trials.Where(t => t.State is TrialState.Complete or TrialState.Pruned).ToList();
        return (counted.Sum(t => t.EpochsRun), counted.Count * maxEpochs);
    }

    public static string Text(StudyInfo info, IReadOnlyList<TrialRecord> trials, int? maxEpochs = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        var direction = new Direction(info.Direction == "maximize");
        var ranked = Rank(trials, direction);
        var keys = trials.SelectMany(t => t.Params.Keys).Distinct().ToList();
        var sb = new StringBuilder();
        sb.AppendLine($"study {info.Name}: {info.Metric} ({info.Direction}), {trials.Count(t => t.State == TrialState.Complete)} complete, {trials.Count(t => t.State == TrialState.Pruned)} pruned, {trials.Count(t => t.State == TrialState.Fail)} failed, {trials.Count(t => t.State == TrialState.Interrupted)} interrupted, {trials.Count(t => t.State == TrialState.Running)} running");
        var header = new List<string> { "rank", "trial", "state", info.Metric, "epochs", "test acc", "test F1" };
        header.AddRange(keys);
        var rows = new List<string[]>();
        int rank = 0;
        foreach (var t in ranked)
        {
            var row = new List<string>
            {
                t.State == TrialState.Complete ? (++rank).ToString(CultureInfo.InvariantCulture) : "-",
                t.Number.ToString(CultureInfo.InvariantCulture) + (t.RetryOf is int r ? $" (↻{r})" : ""),
                TrialRecord.StateName(t.State),
                t.Value is double v ? v.ToString("F4", CultureInfo.InvariantCulture) : "-",
                t.EpochsRun.ToString(CultureInfo.InvariantCulture),
                t.TestAccuracy is double a ? a.ToString("P1", CultureInfo.InvariantCulture) : "-",
                t.TestMacroF1 is double f ? f.ToString("F3", CultureInfo.InvariantCulture) : "-",
            };
            row.AddRange(keys.Select(k => t.Params.TryGetValue(k, out var pv) ? Tuner.Short(pv) : "·"));
            rows.Add([.. row]);
        }
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        sb.AppendLine(string.Join("  ", header.Select((h, i) => i < 7 && i != 2 ? h.PadLeft(widths[i]) : h.PadRight(widths[i]))).TrimEnd());
        foreach (var r in rows)
            sb.AppendLine(string.Join("  ", r.Select((c, i) => i < 7 && i != 2 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd());
        if (maxEpochs is int max && max > 0)
        {
            var (spent, full) = Epochs(trials, max);
            if (full > 0) sb.AppendLine($"epochs: {spent} run of {full} without pruning ({100.0 * (full - spent) / full:F1}% saved)");
        }
        var best = Best(trials, direction);
        if (best is not null) sb.AppendLine($"best: trial {best.Number}, {info.Metric} {best.Value:F4}: {Tuner.Describe(best.Params)}{(best.RunDir is null ? "" : $"\n      {best.RunDir}")}");
        return sb.ToString().TrimEnd();
    }

    public static JsonObject Json(StudyInfo info, IReadOnlyList<TrialRecord> trials, int? maxEpochs = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        var direction = new Direction(info.Direction == "maximize");
        var best = Best(trials, direction);
        var arr = new JsonArray();
        foreach (var t in Rank(trials, direction))
        {
            var p = new JsonObject();
            foreach (var (k, v) in t.Params) p[k] = v;
            var inter = new JsonObject();
            foreach (var (e, v) in t.Intermediate.OrderBy(kv => kv.Key)) inter[e.ToString(CultureInfo.InvariantCulture)] = v;
            arr.Add(new JsonObject
            {
                ["number"] = t.Number, ["state"] = TrialRecord.StateName(t.State), ["value"] = t.Value, ["epochs"] = t.EpochsRun, ["params"] = p,
                ["intermediate"] = inter, ["test_accuracy"] = t.TestAccuracy, ["test_macro_f1"] = t.TestMacroF1, ["run_dir"] = t.RunDir,
                ["retry_of"] = t.RetryOf, ["message"] = t.Message,
                ["started"] = t.Started?.ToString("O", CultureInfo.InvariantCulture), ["ended"] = t.Ended?.ToString("O", CultureInfo.InvariantCulture),
            });
        }
        var o = new JsonObject
        {
            ["study"] = info.Name, ["metric"] = info.Metric, ["direction"] = info.Direction, ["space"] = JsonNode.Parse(info.SpaceJson),
            ["best"] = best is null ? null : best.Number, ["best_value"] = best?.Value, ["trials"] = arr,
        };
        if (maxEpochs is int max && max > 0)
        {
            var (spent, full) = Epochs(trials, max);
            o["epochs_run"] = spent;
            o["epochs_without_pruning"] = full;
        }
        return o;
    }

    /// <summary>Points <c>{studyDir}/best</c> at the best trial's run folder (a symbolic link; a copy where links fail). Returns the path or null.</summary>
    public static string? LinkBest(string studyDir, TrialRecord? best)
    {
        if (best?.RunDir is null || !Directory.Exists(best.RunDir)) return null;
        var link = Path.Combine(studyDir, "best");
        var info = new FileInfo(link);
        if (info.LinkTarget is not null) info.Delete();
        else if (Directory.Exists(link)) Directory.Delete(link, recursive: true);
        try { Directory.CreateSymbolicLink(link, Path.GetRelativePath(studyDir, best.RunDir)); }
        catch (IOException) { CopyDir(best.RunDir, link); }
        catch (UnauthorizedAccessException) { CopyDir(best.RunDir, link); }
        return link;
    }

    private static void CopyDir(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)), overwrite: true);
    }

    /// <summary>The max epochs a trial of the study could run (the searched train.epochs' upper bound, or the base value).</summary>
    public static int MaxEpochs(StudyDefinition study)
    {
        ArgumentNullException.ThrowIfNull(study);
        var d = study.Space.Parameters.FirstOrDefault(p => p.Key == "train.epochs");
        return d is null ? study.Base.Train.Epochs
            : d.Kind == DistributionKind.Choice ? d.Choices.Max(c => int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0) : (int)d.High;
    }
}
