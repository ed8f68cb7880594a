using System.CommandLine;
using System.Diagnostics;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Tuning;

namespace Whetstone.Cli;

/// <summary>
/// <c>whet tune CONFIG</c>: a hyperparameter search over the config's <c>search:</c> block, kept in an SQLite study
/// that survives crashes (run it again to continue); <c>whet tune show STUDY</c> prints the leaderboard again.
/// </summary>
internal static class TuneCommand
{
    public static Command Create(Option<int> threads)
    {
        var cmd = new Command("tune", "Search hyperparameters over a config's search: block (TPE/random/grid, ASHA/median pruning); the study lives in SQLite and continues where it stopped");
        var config = new Argument<string>("config") { Description = "The YAML config with a search: block (see examples/fashion-mnist-tune.yaml)" };
        var set = new Option<string[]>("--set") { Description = "Override a base config value: --set data.per_class=50 (repeatable)" };
        var workers = new Option<int>("--workers") { Description = "Trials at once, each in its own process sharing the study; --threads is split between them", DefaultValueFactory = _ => 1 };
        var trials = new Option<int?>("--trials") { Description = "Finish this many trials in the study (default: search.trials)" };
        var timeout = new Option<double?>("--timeout") { Description = "Start no trial after this many seconds (default: search.timeout; 0 = none)" };
        var storage = new Option<string?>("--storage") { Description = "The study's SQLite file (default: search.storage or {runs}/tune/{study}.db)" };
        var json = new Option<bool>("--json") { Description = "End with the leaderboard as JSON" };
        foreach (var o in new Option[] { set, workers, trials, timeout, storage, json }) cmd.Options.Add(o);
        cmd.Arguments.Add(config);
        cmd.SetAction(r => Guard(() =>
        {
            int total = r.GetValue(threads) is > 0 and var t ? t : Par.Threads;
            var study = StudyDefinition.Load(r.GetValue(config)!, r.GetValue(set) ?? [], r.GetValue(storage));
            int budget = r.GetValue(trials) ?? study.Search.Trials;
            double seconds = r.GetValue(timeout) ?? study.Search.Timeout;
            int n = r.GetValue(workers);
            if (budget < 1) throw new ConfigException("--trials must be ≥ 1.");
            if (n < 1) throw new ConfigException("--workers must be ≥ 1.");
            if (seconds < 0) throw new ConfigException("--timeout is seconds ≥ 0.");
            using var store = StudyStore.Open(study.StoragePath);
            var info = store.EnsureStudy(study.Name, study.Space.ToJson(), study.Space.Hash(), study.Metric, study.Direction.ToString(), study.ConfigText);
            foreach (var num in store.MarkInterrupted(info.Id))
                Console.WriteLine($"trial {num} was running when tune stopped: marked INTERRUPTED ({(study.Search.OnInterrupted == "retry" ? "it runs again" : "skipped")})");
            var before = store.Trials(info.Id);
            Console.WriteLine($"study {study.Name} ({study.StoragePath}): {before.Count(x => x.Finished)} of {budget} trials done; {study.Search.Sampler} sampler, {study.Search.Pruner} pruner, {study.Metric} ({study.Direction}); {n} worker{(n == 1 ? "" : "s")} × {Math.Max(1, total / n)} threads");
            DateTime? deadline = seconds > 0 ? DateTime.UtcNow.AddSeconds(seconds) : null;
            int code = 0;
            if (n == 1)
            {
                Par.Threads = total;
                new Tuner(study, store, info, Console.Out).Run(budget, deadline);
            }
            else code = RunWorkers(r.GetValue(config)!, r.GetValue(set) ?? [], study.StoragePath, budget, deadline, n, Math.Max(1, total / n));
            var all = store.Trials(info.Id);
            Console.WriteLine();
            Console.WriteLine(Leaderboard.Text(info, all, Leaderboard.MaxEpochs(study)));
            var link = Leaderboard.LinkBest(study.StudyDir, Leaderboard.Best(all, study.Direction));
            if (link is not null) Console.WriteLine($"best model: {link}");
            Console.WriteLine($"report: {StudyReport(study, info, all)}");
            if (r.GetValue(json)) Console.WriteLine(Leaderboard.Json(info, all, Leaderboard.MaxEpochs(study)).ToJsonString());
            return code;
        }));

        var show = new Command("show", "Print a study's leaderboard: a study name (looked up as runs/tune/NAME.db) or the path of its .db file");
        var which = new Argument<string>("study") { Description = "Study name or .db path" };
        var showJson = new Option<bool>("--json") { Description = "Print JSON (trials with params, per-epoch values, states)" };
        var runs = new Option<string>("--runs") { Description = "The runs folder to look names up in", DefaultValueFactory = _ => "runs" };
        show.Arguments.Add(which);
        show.Options.Add(showJson);
        show.Options.Add(runs);
        show.SetAction(r => Guard(() =>
        {
            var arg = r.GetValue(which)!;
            var path = File.Exists(arg) ? arg : Path.Combine(r.GetValue(runs)!, "tune", arg + ".db");
            if (!File.Exists(path)) throw new StudyException($"No study '{arg}': neither a file nor {Path.GetFullPath(path)}.");
            using var store = StudyStore.Open(path, create: false);
            var studies = store.Studies();
            var chosen = studies.Where(s => s.Name == arg).ToList() is { Count: > 0 } named ? named : studies.ToList();
            foreach (var info in chosen)
            {
                int? max = MaxEpochsOf(info, path);
                var trials = store.Trials(info.Id);
                Console.WriteLine(r.GetValue(showJson) ? Leaderboard.Json(info, trials, max).ToJsonString() : Leaderboard.Text(info, trials, max));
            }
            return 0;
        }));
        cmd.Subcommands.Add(show);

        var worker = new Command("worker", "A worker process of whet tune --workers (internal)") { Hidden = true };
        var wConfig = new Argument<string>("config");
        var wSet = new Option<string[]>("--set");
        var wStorage = new Option<string>("--storage") { Required = true };
        var wTrials = new Option<int>("--trials") { Required = true };
        var wDeadline = new Option<long>("--deadline");
        var wName = new Option<int>("--index");
        worker.Arguments.Add(wConfig);
        foreach (var o in new Option[] { wSet, wStorage, wTrials, wDeadline, wName }) worker.Options.Add(o);
        worker.SetAction(r => Guard(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Par.Threads = t;
            var study = StudyDefinition.Load(r.GetValue(wConfig)!, r.GetValue(wSet) ?? [], r.GetValue(wStorage));
            using var store = StudyStore.Open(study.StoragePath, create: false);
            var info = store.EnsureStudy(study.Name, study.Space.ToJson(), study.Space.Hash(), study.Metric, study.Direction.ToString(), study.ConfigText);
            long d = r.GetValue(wDeadline);
            new Tuner(study, store, info, Console.Out).Run(r.GetValue(wTrials), d > 0 ? new DateTime(d, DateTimeKind.Utc) : null, $" [worker {r.GetValue(wName)}]");
            return 0;
        }));
        cmd.Subcommands.Add(worker);
        return cmd;
    }

    private static int? MaxEpochsOf(StudyInfo info, string dbPath)
    {
        try { return Leaderboard.MaxEpochs(StudyDefinition.Parse(info.ConfigText, dbPath, Path.GetDirectoryName(Path.GetFullPath(dbPath))!)); }
        catch (ConfigException) { return null; }
    }

    /// <summary>Starts <paramref name="n"/> worker processes (this program again) on the same study and waits for them.</summary>
    private static int RunWorkers(string config, string[] sets, string storage, int budget, DateTime? deadline, int n, int threadsEach)
    {
        var exe = Environment.ProcessPath ?? "dotnet";
        var procs = new List<Process>();
        for (int i = 1; i <= n; i++)
        {
            var psi = new ProcessStartInfo(exe) { UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(exe) == "dotnet") psi.ArgumentList.Add(typeof(TuneCommand).Assembly.Location);
            foreach (var a in new[] { "tune", "worker", Path.GetFullPath(config), "--storage", storage, "--trials", budget.ToString(System.Globalization.CultureInfo.InvariantCulture),
                                      "--threads", threadsEach.ToString(System.Globalization.CultureInfo.InvariantCulture), "--index", i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                                      "--deadline", (deadline?.Ticks ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture) })
                psi.ArgumentList.Add(a);
            foreach (var s in sets) { psi.ArgumentList.Add("--set"); psi.ArgumentList.Add(s); }
            procs.Add(Process.Start(psi) ?? throw new InvalidOperationException("could not start a worker process"));
        }
        int code = 0;
        foreach (var p in procs)
        {
            p.WaitForExit();
            if (p.ExitCode != 0) { Console.Error.WriteLine($"worker (pid {p.Id}) ended with exit code {p.ExitCode}"); code = 1; }
            p.Dispose();
        }
        return code;
    }

    /// <summary>Known failures print one "error:" line on stderr and exit 1.</summary>
    private static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is ConfigException or StudyException or DataException or FileNotFoundException or DirectoryNotFoundException
                                      or InvalidOperationException or ArgumentException or KeyNotFoundException)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Writes the study's HTML report (trial history, best so far, each parameter against the objective) next to its trials.</summary>
    private static string StudyReport(StudyDefinition study, StudyInfo info, IReadOnlyList<TrialRecord> trials)
    {
        var data = new Training.Reports.StudyData(info.Name, info.Metric, study.Direction.Maximize,
            trials.Select(t => new Training.Reports.StudyTrial(t.Number, t.Params.ToDictionary(p => p.Key, p => (object?)p.Value), t.Value, TrialRecord.StateName(t.State))).ToArray());
        var path = Path.Combine(study.StudyDir, "report.html");
        Directory.CreateDirectory(study.StudyDir);
        Training.Runs.RunDirectory.WriteAtomic(path, Training.Reports.HtmlReport.RenderStudy($"Study {info.Name}", data));
        return path;
    }
}
