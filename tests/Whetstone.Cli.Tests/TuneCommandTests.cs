using System.Diagnostics;
using System.Text.Json.Nodes;
using Whetstone.Training;
using Whetstone.Training.Tuning;

namespace Whetstone.Cli.Tests;

/// <summary>
/// <c>whet tune</c> as a user runs it, on PaddleOCR's ONNX classifier and a generated two-class image folder: killed
/// (the whole process tree, like kill -9) in the middle of a study and started again, it continues the same study.
/// </summary>
public sealed class TuneCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-tune-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Config = """
        # whet tune tune.yaml
        name: stripes
        seed: 5
        model:
          path: asset:ppocr_cls
        data:
          format: folder
          train: train
          validation: 0.25
          image_size: 48
        freeze:
          backbone: true
        train:
          epochs: 3
          batch_size: 4
        search:
          space:
            train.lr: loguniform(1e-4, 1e-1)
            train.batch_size: choice(4, 8)
          trials: 6
          sampler: tpe
          startup_trials: 2
          pruner: asha
          reduction_factor: 2
        """;

    private ProcessStartInfo Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "whet.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["WHETSTONE_THREADS"] = "1";
        return psi;
    }

    private (int Code, string Out, string Err) Whet(params string[] args)
    {
        using var p = Process.Start(Start(args))!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    private void Setup()
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail("Asset ppocr_cls is not cached: run scripts/fetch-assets ppocr_cls (scripts/test does).");
        CommandTests.Stripes(Path.Combine(_dir, "train"), 8);
        File.WriteAllText(Path.Combine(_dir, "tune.yaml"), Config);
    }

    private string Db => Path.Combine(_dir, "runs", "tune", "stripes.db");

    [Fact]
    public void KilledMidStudyAndStartedAgainItContinuesTheSameStudy()
    {
        Setup();
        // ---- start, wait until two trials have finished and another is running, kill the whole tree
        var output = new System.Text.StringBuilder();
        var first = Process.Start(Start("tune", "tune.yaml", "--threads", "1"))!;
        first.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        first.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        first.BeginOutputReadLine();
        first.BeginErrorReadLine();
        string Snapshot() { lock (output) return output.ToString(); }
        var clock = Stopwatch.StartNew();
        while (!Snapshot().Contains("study stripes", StringComparison.Ordinal))
        {
            Assert.False(first.HasExited, Snapshot());
            Assert.True(clock.Elapsed.TotalSeconds < 40, Snapshot());
            Thread.Sleep(20);
        }
        using var store = StudyStore.Open(Db, create: false);
        long id = store.Studies().Single().Id;
        IReadOnlyList<TrialRecord> before;
        while (true)
        {
            before = store.Trials(id);
            if (before.Count(t => t.Finished) >= 2 && before.Any(t => t.State == TrialState.Running)) break;
            Assert.False(first.HasExited, "the study ended before it could be killed:\n" + Snapshot());
            Assert.True(clock.Elapsed.TotalSeconds < 50, Snapshot());
            Thread.Sleep(10);
        }
        first.Kill(entireProcessTree: true);
        first.WaitForExit();
        var atKill = store.Trials(id);
        var finishedBefore = atKill.Where(t => t.Finished).ToList();
        var running = atKill.Where(t => t.State == TrialState.Running).ToList();
        Assert.Single(running);                      // killed mid-trial: still marked RUNNING, its process gone
        Assert.InRange(finishedBefore.Count, 2, 5);

        // ---- again: the dead trial is marked INTERRUPTED and retried; finished ones are kept as they were
        var second = Whet("tune", "tune.yaml", "--threads", "1");
        Assert.True(second.Code == 0, second.Err + second.Out);
        Assert.Contains($"trial {running[0].Number} was running when tune stopped: marked INTERRUPTED (it runs again)", second.Out);
        Assert.Contains($"(retry of interrupted trial {running[0].Number})", second.Out);
        var after = store.Trials(id);
        foreach (var t in finishedBefore)
        {
            var now = after.Single(a => a.Number == t.Number);
            Assert.Equal((t.State, t.Value, t.RunDir), (now.State, now.Value, now.RunDir));
            Assert.Equal(t.Intermediate, now.Intermediate);
            Assert.DoesNotContain($"trial {t.Number} started", second.Out);        // not repeated
        }
        Assert.Equal(TrialState.Interrupted, after.Single(a => a.Number == running[0].Number).State);
        var retry = after.Single(a => a.RetryOf == running[0].Number);
        Assert.Equal(running[0].Params, retry.Params);
        Assert.True(retry.Finished);
        Assert.Equal(6, after.Count(t => t.Finished));
        Assert.DoesNotContain(after, t => t.State is TrialState.Fail or TrialState.Running);
        Assert.Equal(after.Count, after.Select(t => t.Number).Distinct().Count());
        Assert.Contains("best model:", second.Out);
        Assert.True(File.Exists(Path.Combine(_dir, "runs", "tune", "stripes", "best", "model", "whetstone.json")));
        var report = File.ReadAllText(Path.Combine(_dir, "runs", "tune", "stripes", "report.html"));   // the study's report
        Assert.Contains("data:image/png;base64,", report);
        Assert.Contains("stripes", report);

        // ---- a third run has nothing left to do; show prints the same leaderboard
        var third = Whet("tune", "tune.yaml");
        Assert.True(third.Code == 0, third.Err);
        Assert.DoesNotContain("started", third.Out);
        var show = Whet("tune", "show", "stripes");
        Assert.True(show.Code == 0, show.Err);
        Assert.Contains("1 interrupted", show.Out);
        Assert.Contains("% saved", show.Out);
        var json = JsonNode.Parse(Whet("tune", "show", Db, "--json").Out)!;
        Assert.Equal(7, json["trials"]!.AsArray().Count);
        Assert.Equal(Leaderboard.Best(after, new Direction(true))!.Number, json["best"]!.GetValue<int>());
    }

    [Fact]
    public void WorkersShareTheStudyInSeparateProcesses()
    {
        Setup();
        var r = Whet("tune", "tune.yaml", "--workers", "2", "--trials", "4", "--threads", "2");
        Assert.True(r.Code == 0, r.Err + r.Out);
        Assert.Contains("2 workers × 1 threads", r.Out);
        Assert.Contains("[worker 1]", r.Out);
        Assert.Contains("[worker 2]", r.Out);
        using var store = StudyStore.Open(Db, create: false);
        var trials = store.Trials(store.Studies().Single().Id);
        Assert.Equal(4, trials.Count);
        Assert.All(trials, t => Assert.True(t.Finished, t.State.ToString()));
        Assert.Equal(2, trials.Select(t => t.Pid).Distinct().Count());
    }

    [Fact]
    public void BadStudiesFailBeforeAnyTrial()
    {
        Setup();
        var typo = Whet("tune", "tune.yaml", "--set", "search.space={train.lrr: 'uniform(0.1, 0.2)'}");
        Assert.Equal(1, typo.Code);
        Assert.Contains("search.space.train.lrr", typo.Err);
        Assert.Contains("unknown key 'lrr'", typo.Err);
        Assert.DoesNotContain("   at ", typo.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "runs")), "nothing was started");

        File.WriteAllText(Path.Combine(_dir, "notes.db"), "hello");
        var foreign = Whet("tune", "tune.yaml", "--storage", "notes.db");
        Assert.Equal(1, foreign.Code);
        Assert.Contains("is not an SQLite study database", foreign.Err);

        Assert.Equal(0, Whet("tune", "tune.yaml", "--trials", "1").Code);
        var other = Whet("tune", "tune.yaml", "--set", "search.space={train.lr: 'uniform(0.01, 0.02)'}");
        Assert.Equal(1, other.Code);
        Assert.Contains("already exists with another search space", other.Err);
    }
}
