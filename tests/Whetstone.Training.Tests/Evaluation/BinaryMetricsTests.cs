using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests.Evaluation;

public class BinaryMetricsTests
{
    // scikit-learn's documentation example: roc_auc_score = 0.75, average_precision_score = 0.8333…
    private static readonly int[] Y = [0, 0, 1, 1];
    private static readonly float[] S = [0.1f, 0.4f, 0.35f, 0.8f];

    [Fact]
    public void RocAucAndAveragePrecisionMatchTheReferenceExample()
    {
        Assert.Equal(0.75, BinaryMetrics.RocAuc(Y, S), 12);
        Assert.Equal(5.0 / 6, BinaryMetrics.AveragePrecision(Y, S), 12);
    }

    [Fact]
    public void TheSweepStartsAtNothingPositiveAndVisitsEachDistinctScore()
    {
        var p = BinaryMetrics.Sweep(Y, S);
        Assert.Equal([double.PositiveInfinity, 0.8, 0.4, 0.35, 0.1], p.Select(x => Math.Round(x.Threshold, 6)));
        Assert.Equal([0.0, 0.5, 0.5, 1, 1], p.Select(x => x.Recall));
        Assert.Equal([0.0, 0, 0.5, 0.5, 1], p.Select(x => x.FalsePositiveRate));
        Assert.Equal(2.0 / 3, p[3].Precision, 12);
        Assert.Equal(0.8, p[3].F1, 12);                       // tp 2, fp 1, fn 0
    }

    [Fact]
    public void TiesShareAThresholdAndPerfectOrInvertedRankingsGiveOneAndZero()
    {
        Assert.Equal(0.5, BinaryMetrics.RocAuc([1, 0], [0.5f, 0.5f]), 12);
        Assert.Equal(3, BinaryMetrics.Sweep([1, 0, 1], [0.5f, 0.5f, 0.2f]).Count);
        Assert.Equal(1.0, BinaryMetrics.RocAuc([0, 0, 1, 1], [0.1f, 0.2f, 0.8f, 0.9f]), 12);
        Assert.Equal(0.0, BinaryMetrics.RocAuc([1, 1, 0, 0], [0.1f, 0.2f, 0.8f, 0.9f]), 12);
        Assert.Equal(1.0, BinaryMetrics.AveragePrecision([0, 0, 1, 1], [0.1f, 0.2f, 0.8f, 0.9f]), 12);
    }

    [Fact]
    public void UndefinedCasesAreNaNAndBadInputThrows()
    {
        Assert.True(double.IsNaN(BinaryMetrics.RocAuc([1, 1], [0.2f, 0.3f])));
        Assert.True(double.IsNaN(BinaryMetrics.AveragePrecision([0, 0], [0.2f, 0.3f])));
        Assert.Throws<ArgumentException>(() => BinaryMetrics.RocAuc([0, 2], [0.2f, 0.3f]));
        Assert.Throws<ArgumentException>(() => BinaryMetrics.RocAuc([0, 1], [0.2f]));
        Assert.Equal([0.9f, 0.25f], BinaryMetrics.PositiveScores([0.1f, 0.9f, 0.75f, 0.25f], 2));
    }
}
