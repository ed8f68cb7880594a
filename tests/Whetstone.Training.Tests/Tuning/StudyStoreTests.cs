using Whetstone.Training.Config;
using Whetstone.Training.Tuning;

namespace Whetstone.Training.Tests.Tuning;

public sealed class StudyStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-study-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Db(string name = "s.db") => Path.Combine(_dir, name);

    private static Dictionary<string, string?> P(string lr) => new() { ["train.lr"] = lr, ["freeze.below"] = null };

    [Fact]
    public void TrialsRoundTripInWalMode()
    {
        long id;
        using (var store = StudyStore.Open(Db()))
        {
            Assert.Equal("wal", store.JournalMode);
            var info = store.EnsureStudy("s", "[{\"key\":\"train.lr\"}]", "h1", "val_macro_f1", "maximize", "name: s\n");
            id = info.Id;
            var t = store.Claim(id, 5, retry: true, (_, _) => P("0.001"))!;
            Assert.Equal((0, TrialState.Running), (t.Number, t.State));
            store.Report(t.Id, 1, 0.5);
            store.Report(t.Id, 2, 0.75);
            store.Finish(t.Id, TrialState.Complete, 0.75, "/runs/trial-000", null, 0.8, 0.79);
            var u = store.Claim(id, 5, retry: true, (_, _) => P("0.01"))!;
            store.Report(u.Id, 1, 0.25);
            store.Finish(u.Id, TrialState.Pruned, 0.25, null, null);
        }
        using (var again = StudyStore.Open(Db(), create: false))
        {
            Assert.Equal("s", again.Studies().Single().Name);
            var trials = again.Trials(id);
            Assert.Equal(2, trials.Count);
            var a = trials[0];
            Assert.Equal((TrialState.Complete, 0.75, "/runs/trial-000", 0.8, 0.79), (a.State, a.Value!.Value, a.RunDir, a.TestAccuracy!.Value, a.TestMacroF1!.Value));
            Assert.Equal(P("0.001"), a.Params);
            Assert.Equal(new Dictionary<int, double> { [1] = 0.5, [2] = 0.75 }, a.Intermediate);
            Assert.Equal((TrialState.Pruned, 1), (trials[1].State, trials[1].EpochsRun));
            Assert.NotNull(a.Started);
            Assert.NotNull(a.Ended);
            // the same name with the same space continues; another space is refused
            Assert.Equal(id, again.EnsureStudy("s", "[{\"key\":\"train.lr\"}]", "h1", "val_macro_f1", "maximize", "name: s\n").Id);
            var e = Assert.Throws<StudyException>(() => again.EnsureStudy("s", "[{\"key\":\"train.wd\",\"distribution\":\"uniform(0, 1)\"}]", "h2", "val_macro_f1", "maximize", ""));
            Assert.Contains("already exists with another search space", e.Message);
            Assert.Contains("val_loss", Assert.Throws<StudyException>(() => again.EnsureStudy("s", "[]", "h1", "val_loss", "minimize", "")).Message);
        }
    }

    [Fact]
    public void ClaimsRespectTheBudgetAndRetryInterruptedTrialsOnce()
    {
        using var store = StudyStore.Open(Db());
        var id = store.EnsureStudy("s", "[]", "h", "val_macro_f1", "maximize", "").Id;
        int sampled = 0;
        IReadOnlyDictionary<string, string?> Sample(IReadOnlyList<TrialRecord> h, int n) => P((++sampled).ToString(System.Globalization.CultureInfo.InvariantCulture));
        var a = store.Claim(id, 3, true, Sample)!;
        var b = store.Claim(id, 3, true, Sample)!;
        store.Finish(a.Id, TrialState.Complete, 1, null, null);
        // b's process "died": the next claim marks it INTERRUPTED and runs its parameters again
        bool Alive(int pid, long start) => false;
        var c = store.Claim(id, 3, true, Sample, Alive)!;
        Assert.Equal((2, 1), (c.Number, c.RetryOf!.Value));
        Assert.Equal(b.Params, c.Params);
        Assert.Equal(TrialState.Interrupted, store.Trials(id)[1].State);
        store.Finish(c.Id, TrialState.Complete, 2, null, null);
        var d = store.Claim(id, 3, true, Sample)!;
        Assert.Null(d.RetryOf);                                       // retried once only
        Assert.Null(store.Claim(id, 3, true, Sample));               // 2 finished + 1 running = budget
        store.Finish(d.Id, TrialState.Fail, null, null, "boom");
        Assert.Null(store.Claim(id, 3, true, Sample));
        Assert.Equal(3, store.Trials(id).Count(t => t.Finished));
        Assert.Equal(3, sampled);
        // skip: an interrupted trial is not run again
        var id2 = store.EnsureStudy("t", "[]", "h", "val_macro_f1", "maximize", "").Id;
        var x = store.Claim(id2, 5, false, Sample)!;
        Assert.Equal([x.Number], store.MarkInterrupted(id2, (_, _) => false));
        Assert.Null(store.Claim(id2, 5, false, Sample)!.RetryOf);
        // a live process's trial stays RUNNING
        Assert.Empty(store.MarkInterrupted(id2));
    }

    [Fact]
    public void ForeignOrDamagedFilesAreClearErrors()
    {
        File.WriteAllText(Db("text.db"), "name: not a database\n");
        Assert.Contains("is not an SQLite study database", Assert.Throws<StudyException>(() => StudyStore.Open(Db("text.db"))).Message);

        using (var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Db("other.db")};Pooling=False"))
        {
            other.Open();
            using var cmd = other.CreateCommand();
            cmd.CommandText = "CREATE TABLE customers (id INTEGER)";
            cmd.ExecuteNonQuery();
        }
        Assert.Contains("not a Whetstone study (its tables: customers)", Assert.Throws<StudyException>(() => StudyStore.Open(Db("other.db"))).Message);

        using (var s = StudyStore.Open(Db("good.db"))) s.EnsureStudy("s", "[]", "h", "val_macro_f1", "maximize", "");
        var bytes = File.ReadAllBytes(Db("good.db"));
        for (int i = 100; i < bytes.Length; i++) bytes[i] = (byte)(i * 31 + 7);   // keep the header, scramble every page
        File.WriteAllBytes(Db("bad.db"), bytes);
        var e = Assert.Throws<StudyException>(() => StudyStore.Open(Db("bad.db")));
        Assert.Contains("bad.db", e.Message);

        Assert.Contains("No study file", Assert.Throws<StudyException>(() => StudyStore.Open(Db("none.db"), create: false)).Message);
    }

    [Fact]
    public void TunerRunsAStudyWithASyntheticObjectiveAndPrunes()
    {
        var study = StudyDefinition.Parse($"""
            name: synth
            runs: {Path.Combine(_dir, "runs")}
            train:
              epochs: 9
            search:
              space:
                train.lr: loguniform(1e-4, 1e-1)
              trials: 12
              sampler: tpe
              startup_trials: 4
              pruner: asha
            """, "synth.yaml", _dir);
        using var store = StudyStore.Open(study.StoragePath);
        var info = store.EnsureStudy(study.Name, study.Space.ToJson(), study.Space.Hash(), study.Metric, study.Direction.ToString(), study.ConfigText);
        // curves rise to a plateau that is highest at lr = 1e-2
        TrialOutcome Train(TrainConfig cfg, Whetstone.Training.EpochCallback onEpoch, TextWriter log)
        {
            double q = 1 - Math.Abs(Math.Log10(cfg.Train.Lr) + 2) / 3;
            for (int e = 1; e <= cfg.Train.Epochs; e++)
            {
                double v = q * (1 - Math.Exp(-e / 2.0));
                var validation = new Dictionary<string, double> { ["val_macro_f1"] = v, ["val_accuracy"] = v, ["val_loss"] = 1 - q };
                if (!onEpoch(e, validation)) return new TrialOutcome(null, true);
            }
            return new TrialOutcome(null, false);
        }
        var output = new StringWriter();
        int ran = new Tuner(study, store, info, output, Train).Run(12, null);
        var trials = store.Trials(info.Id);
        Assert.Equal(12, ran);
        Assert.Equal(12, trials.Count(t => t.Finished));
        Assert.Contains(trials, t => t.State == TrialState.Pruned);
        var (spent, full) = Leaderboard.Epochs(trials, 9);
        Assert.True(spent < 0.7 * full, $"{spent} of {full}");
        var best = Leaderboard.Best(trials, study.Direction)!;
        Assert.InRange(double.Parse(best.Params["train.lr"]!, System.Globalization.CultureInfo.InvariantCulture), 1e-3, 1e-1);
        Assert.Contains("trial 0 started", output.ToString());
        Assert.Contains("PRUNED after", output.ToString());
        var table = Leaderboard.Text(info, trials, 9);
        Assert.Contains("% saved", table);
        Assert.Contains($"best: trial {best.Number}", table);
        Assert.Equal(best.Number, Leaderboard.Json(info, trials, 9)["best"]!.GetValue<int>());
        // running it again with the study complete starts nothing
        Assert.Equal(0, new Tuner(study, store, info, output, Train).Run(12, null));
    }
}
