using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests;

public class ClassificationMetricsTests
{
    [Fact]
    public void MatchesHandComputedScores()
    {
        // truth:     a a a b b c
        // predicted: a a b b c c
        int[] truth = [0, 0, 0, 1, 1, 2];
        int[] pred = [0, 0, 1, 1, 2, 2];
        var r = ClassificationReport.From(truth, pred, ["a", "b", "c"]);
        Assert.Equal(4.0 / 6, r.Accuracy, 12);
        // a: P=2/2 R=2/3 F1=0.8 ; b: P=1/2 R=1/2 F1=0.5 ; c: P=1/2 R=1/1 F1=2/3
        Assert.Equal(0.8, r.PerClass[0].F1, 12);
        Assert.Equal(0.5, r.PerClass[1].F1, 12);
        Assert.Equal(2.0 / 3, r.PerClass[2].F1, 12);
        Assert.Equal((0.8 + 0.5 + 2.0 / 3) / 3, r.MacroF1, 12);
        Assert.Equal(1, r.ConfusionMatrix[0, 1]);
        Assert.Equal(3, r.PerClass[0].Support);
    }

    [Fact]
    public void ClassNeverPredictedScoresZeroNotNaN()
    {
        var r = ClassificationReport.From([0, 1], [0, 0], ["x", "y"]);
        Assert.Equal(0, r.PerClass[1].F1);
        Assert.Equal(0, r.PerClass[1].Precision);
        Assert.Equal(0.5, r.Accuracy);
    }

    [Fact]
    public void RejectsOutOfRangeClass() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassificationReport.From([0, 3], [0, 0], ["x", "y"]));
}
