using Whetstone.Tensors;
using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests.Evaluation;

public class BootstrapTests
{
    private static (int[] Truth, int[] Predicted) Sample(int n, int k, double accuracy, ulong seed)
    {
        var rng = new Rng(seed);
        var t = new int[n];
        var p = new int[n];
        for (int i = 0; i < n; i++)
        {
            t[i] = (int)(rng.NextUInt64() % (ulong)k);
            p[i] = rng.NextDouble() < accuracy ? t[i] : (t[i] + 1 + (int)(rng.NextUInt64() % (ulong)(k - 1))) % k;
        }
        return (t, p);
    }

    [Fact]
    public void IntervalsContainThePointEstimateAndHaveTheExpectedWidth()
    {
        var (t, p) = Sample(500, 4, 0.8, 3);
        var r = Bootstrap.Classification(t, p, 4);
        var report = ClassificationReport.From(t, p, ["a", "b", "c", "d"]);
        Assert.Equal(report.Accuracy, r.Accuracy.Estimate, 12);
        Assert.Equal(report.MacroF1, r.MacroF1.Estimate, 12);
        foreach (var ci in new[] { r.Accuracy, r.MacroF1 })
        {
            Assert.InRange(ci.Estimate, ci.Lower, ci.Upper);
            // binomial standard error √(0.8·0.2/500) ≈ 0.018 → a 95% interval ≈ 0.07 wide
            Assert.InRange(ci.Upper - ci.Lower, 0.05, 0.10);
        }
        Assert.Equal(1000, r.Resamples);
    }

    [Fact]
    public void TheSameSeedGivesTheSameIntervalAndAnotherSeedAnother()
    {
        var (t, p) = Sample(300, 3, 0.7, 5);
        var a = Bootstrap.Classification(t, p, 3, seed: 11);
        var b = Bootstrap.Classification(t, p, 3, seed: 11);
        var c = Bootstrap.Classification(t, p, 3, seed: 12);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Accuracy, c.Accuracy);
    }

    [Fact]
    public void PercentilesInterpolateLikeNumPy()
    {
        double[] s = [1, 2, 3, 4, 5];
        Assert.Equal(1.1, Bootstrap.Quantile(s, 0.025), 12);    // numpy.percentile([1..5], 2.5) = 1.1
        Assert.Equal(4.9, Bootstrap.Quantile(s, 0.975), 12);
        var ci = Bootstrap.Interval(3, [5, 1, 4, 2, 3]);
        Assert.Equal((1.1, 4.9), (Math.Round(ci.Lower, 12), Math.Round(ci.Upper, 12)));
    }
}
