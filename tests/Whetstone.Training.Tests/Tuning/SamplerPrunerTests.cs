using System.Globalization;
using Whetstone.Training.Config;
using Whetstone.Training.Tuning;

namespace Whetstone.Training.Tests.Tuning;

public class SamplerPrunerTests
{
    private static StudyDefinition Study(string space, string settings = "") =>
        StudyDefinition.Parse("name: s\nsearch:\n  space:\n" + space + settings, "t.yaml", "/tmp/whet-sampler");

    private static TrialRecord Done(int n, IReadOnlyDictionary<string, string?> p, double value) =>
        new() { Number = n, State = TrialState.Complete, Params = p, Value = value };

    [Fact]
    public void GridEnumeratesEveryPointOnceInOrderThenStops()
    {
        var s = Study("    train.batch_size: choice(8, 16)\n    train.epochs: int(1, 3)\n    model.head_hidden: choice(0, 32)\n    model.head_dropout: choice(0.1, 0.3) if model.head_hidden > 0\n", "  sampler: grid\n");
        var grid = s.CreateSampler();
        var history = new List<TrialRecord>();
        for (int n = 0; ; n++)
        {
            var p = grid.Sample(history, n);
            if (p is null) break;
            history.Add(Done(n, p, 0));
        }
        // 2 × 3 × (1 + 2): head_dropout only exists with a hidden layer, so head_hidden=0 is one point, not two
        Assert.Equal(18, history.Count);
        Assert.Equal(18, history.Select(t => string.Join(",", t.Params.OrderBy(kv => kv.Key).Select(kv => kv.Key + "=" + kv.Value))).Distinct().Count());
        Assert.Equal(new Dictionary<string, string?> { ["train.batch_size"] = "8", ["train.epochs"] = "1", ["model.head_hidden"] = "0" }, history[0].Params);
        Assert.Equal(new Dictionary<string, string?> { ["train.batch_size"] = "8", ["train.epochs"] = "1", ["model.head_hidden"] = "32", ["model.head_dropout"] = "0.1" }, history[1].Params);
        Assert.Equal(new Dictionary<string, string?> { ["train.batch_size"] = "16", ["train.epochs"] = "3", ["model.head_hidden"] = "32", ["model.head_dropout"] = "0.3" }, history[^1].Params);
        // a point already taken (by another worker) is skipped
        var fresh = grid.Sample([history[0]], 1)!;
        Assert.Equal(history[1].Params, fresh);
    }

    [Fact]
    public void RandomIsSeededReproducibleAndInRange()
    {
        var s = Study("    train.lr: loguniform(1e-5, 1e-2)\n    train.epochs: int(2, 4)\n    train.batch_size: choice(8, 16, 32)\n    train.warmup: uniform(0, 0.2)\n", "  sampler: random\n  seed: 7\n");
        var a = Enumerable.Range(0, 200).Select(n => s.CreateSampler().Sample([], n)!).ToList();
        var b = Enumerable.Range(0, 200).Select(n => s.CreateSampler().Sample([], n)!).ToList();
        Assert.Equal(a, b);
        var other = Study("    train.lr: loguniform(1e-5, 1e-2)\n    train.epochs: int(2, 4)\n    train.batch_size: choice(8, 16, 32)\n    train.warmup: uniform(0, 0.2)\n", "  sampler: random\n  seed: 8\n");
        Assert.NotEqual(a[0]["train.lr"], other.CreateSampler().Sample([], 0)!["train.lr"]);
        double D(IReadOnlyDictionary<string, string?> p, string k) => double.Parse(p[k]!, CultureInfo.InvariantCulture);
        Assert.All(a, p => Assert.InRange(D(p, "train.lr"), 1e-5, 1e-2));
        Assert.Equal([2.0, 3.0, 4.0], a.Select(p => D(p, "train.epochs")).Distinct().Order());
        Assert.Equal(["16", "32", "8"], a.Select(p => p["train.batch_size"]!).Distinct().Order());
        // log-uniform: about half the draws fall below the geometric middle (1e-3.5)
        Assert.InRange(a.Count(p => D(p, "train.lr") < Math.Pow(10, -3.5)), 70, 130);
    }

    /// <summary>A cheap objective with its optimum at lr = 1e-3, batch 32, warmup 0.05 (maximise; best 0).</summary>
    private static double Objective(IReadOnlyDictionary<string, string?> p)
    {
        double lr = double.Parse(p["train.lr"]!, CultureInfo.InvariantCulture), w = double.Parse(p["train.warmup"]!, CultureInfo.InvariantCulture);
        return -Math.Pow(Math.Log10(lr) + 3, 2) - (p["train.batch_size"] == "32" ? 0 : 0.3) - 10 * Math.Pow(w - 0.05, 2);
    }

    private static double BestAfter(string sampler, ulong seed, int trials)
    {
        var s = Study("    train.lr: loguniform(1e-6, 1e-1)\n    train.batch_size: choice(8, 16, 32, 64, 128)\n    train.warmup: uniform(0, 0.5)\n",
            $"  sampler: {sampler}\n  seed: {seed}\n  startup_trials: 8\n");
        var sm = s.CreateSampler();
        var history = new List<TrialRecord>();
        for (int n = 0; n < trials; n++)
        {
            var p = sm.Sample(history, n)!;
            history.Add(Done(n, p, Objective(p)));
        }
        return history.Max(t => t.Value!.Value);
    }

    [Fact]
    public void TpeFindsABetterRegionThanRandomAtEqualBudget()
    {
        ulong[] seeds = [1, 2, 3, 4, 5, 6];
        var tpe = seeds.Select(sd => BestAfter("tpe", sd, 40)).ToArray();
        var random = seeds.Select(sd => BestAfter("random", sd, 40)).ToArray();
        // deterministic: the same seeds give the same numbers every run
        Assert.Equal(tpe, seeds.Select(sd => BestAfter("tpe", sd, 40)).ToArray());
        Assert.True(tpe.Average() > random.Average(), $"tpe {string.Join(", ", tpe.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))} vs random {string.Join(", ", random.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))}");
        Assert.True(tpe.Count(v => v > -0.05) > random.Count(v => v > -0.05), "TPE reaches the optimum's neighbourhood more often");
    }

    [Fact]
    public void TpeIsRandomDuringStartupAndFollowsConditions()
    {
        var s = Study("    model.head_hidden: choice(0, 64)\n    model.head_dropout: uniform(0, 0.5) if model.head_hidden > 0\n", "  startup_trials: 3\n");
        var tpe = s.CreateSampler();
        var rnd = new RandomSampler(s.Space, s.Base, s.Seed);
        Assert.Equal(rnd.Sample([], 0), tpe.Sample([], 0));
        var history = new List<TrialRecord>();
        for (int n = 0; n < 30; n++)
        {
            var p = tpe.Sample(history, n)!;
            Assert.Equal(p["model.head_hidden"] != "0", p.ContainsKey("model.head_dropout"));
            history.Add(Done(n, p, p["model.head_hidden"] == "64" ? 1 - double.Parse(p["model.head_dropout"]!, CultureInfo.InvariantCulture) : 0));
        }
        Assert.True(history.Skip(10).Count(t => t.Params["model.head_hidden"] == "64") >= 15, "TPE settles on the better branch");
    }

    private static TrialRecord Curve(int n, params double[] values) =>
        new() { Number = n, State = TrialState.Running, Intermediate = values.Select((v, i) => (i + 1, v)).ToDictionary(x => x.Item1, x => x.v) };

    [Fact]
    public void MedianPrunerComparesWithTheMedianAtTheSameEpochAfterWarmUp()
    {
        var p = new MedianPruner(new Direction(true), warmupEpochs: 1, minTrials: 3);
        TrialRecord[] others = [Curve(0, 0.5, 0.6, 0.7), Curve(1, 0.4, 0.5, 0.9), Curve(2, 0.3, 0.8)];
        Assert.False(p.ShouldPrune(1, 0.0, others));                 // warm-up
        Assert.True(p.ShouldPrune(2, 0.59, others));                 // median at 2 of {0.6, 0.5, 0.8} = 0.6
        Assert.False(p.ShouldPrune(2, 0.6, others));                 // equal to the median: keeps going
        Assert.False(p.ShouldPrune(3, 0.1, others));                 // only 2 trials reached epoch 3
        Assert.False(p.ShouldPrune(2, 0.58, [.. others, Curve(3, 0, 0.55)]));   // even count: median of {0.5, 0.55, 0.6, 0.8} = 0.575
        Assert.True(p.ShouldPrune(2, 0.57, [.. others, Curve(3, 0, 0.55)]));
        var loss = new MedianPruner(new Direction(false), 0, 1);
        Assert.True(loss.ShouldPrune(1, 0.9, [Curve(0, 0.5)]));
        Assert.False(loss.ShouldPrune(1, 0.4, [Curve(0, 0.5)]));
    }

    [Fact]
    public void AshaStopsAtRungsUnlessInTheTopOneOverEta()
    {
        var asha = new AshaPruner(new Direction(true), minResource: 1, reductionFactor: 3);
        Assert.Equal([1, 3, 9, 27], Enumerable.Range(1, 30).Where(asha.IsRung));
        var two = new AshaPruner(new Direction(true), minResource: 2, reductionFactor: 2);
        Assert.Equal([2, 4, 8, 16], Enumerable.Range(1, 20).Where(two.IsRung));

        Assert.False(asha.ShouldPrune(2, 0.0, [Curve(0, 0.9, 0.9)]));     // not a rung
        Assert.False(asha.ShouldPrune(1, 0.1, []));                       // first at the rung: n = 1, keep 1
        Assert.True(asha.ShouldPrune(1, 0.1, [Curve(0, 0.5)]));           // n = 2: keep max(1, 0) = 1, one is better
        Assert.False(asha.ShouldPrune(1, 0.6, [Curve(0, 0.5)]));          // the best so far continues
        TrialRecord[] five = [Curve(0, 0.9), Curve(1, 0.8), Curve(2, 0.3), Curve(3, 0.2), Curve(4, 0.1)];
        Assert.False(asha.ShouldPrune(1, 0.85, five));                    // n = 6: keep 2; one better → continues
        Assert.True(asha.ShouldPrune(1, 0.7, five));                      // two better → stops
        Assert.False(asha.ShouldPrune(1, 0.8, five));                     // a tie is not better
        // rung 3 counts only trials that reached epoch 3
        TrialRecord[] deep = [Curve(0, 0.9, 0.9, 0.9), Curve(1, 0.5, 0.5, 0.5), Curve(2, 0.1)];
        Assert.True(asha.ShouldPrune(3, 0.6, deep));                      // n = 3 at rung 3: keep 1; 0.9 is better
        Assert.False(asha.ShouldPrune(3, 0.95, deep));
        var loss = new AshaPruner(new Direction(false), 1, 3);
        Assert.True(loss.ShouldPrune(1, 0.7, [Curve(0, 0.5)]));
        Assert.False(loss.ShouldPrune(1, 0.3, [Curve(0, 0.5)]));
    }
}
