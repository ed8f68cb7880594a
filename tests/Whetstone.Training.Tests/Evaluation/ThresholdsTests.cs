using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests.Evaluation;

public class ThresholdsTests
{
    //                                  F1 at each threshold (tp, fp, fn):
    private static readonly int[] Y = [1, 1, 0, 1, 0, 0, 1, 0];
    private static readonly float[] S = [0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f];
    // ≥.9: 1,0,3 F1 .4 | ≥.8: 2,0,2 .667 | ≥.7: 2,1,2 .571 | ≥.6: 3,1,1 .75 | ≥.5: 3,2,1 .667 | ≥.4: 3,3,1 .6 | ≥.3: 4,3,0 .727 | ≥.2: 4,4,0 .667

    [Fact]
    public void MaxF1PicksTheBestF1()
    {
        var c = Thresholds.Choose(Y, S, ThresholdRule.MaxF1);
        Assert.Equal(0.55, c.Threshold, 6);                  // midway between 0.6 and the next score, 0.5
        Assert.Equal(0.75, c.Point.F1, 12);
        Assert.Equal((3, 1, 1, 3), (c.Point.TruePositives, c.Point.FalsePositives, c.Point.FalseNegatives, c.Point.TrueNegatives));
        Assert.Equal(c.Point with { Threshold = c.Threshold }, Thresholds.PointAt(Y, S, c.Threshold));   // the threshold makes the chosen point's decisions
    }

    [Fact]
    public void ARecallTargetTakesTheMostPreciseThresholdThatReachesIt()
    {
        var r75 = Thresholds.Choose(Y, S, ThresholdRule.Parse("recall:0.75"));
        Assert.Equal(0.55, r75.Threshold, 6);
        Assert.Equal(0.75, r75.Point.Precision, 12);
        var r100 = Thresholds.Choose(Y, S, ThresholdRule.Recall(1));
        Assert.Equal(0.25, r100.Threshold, 6);                  // recall 1 with precision 4/7 (≥ 0.2 gives only 1/2)
        Assert.Equal(4.0 / 7, r100.Point.Precision, 12);
        Assert.True(r100.Reached);
    }

    [Fact]
    public void ACostMatrixIsMinimised()
    {
        var fnExpensive = Thresholds.Choose(Y, S, ThresholdRule.Parse("cost:1,5"));   // ≥.3: 3 FP, 0 FN → 3
        Assert.Equal(0.25, fnExpensive.Threshold, 6);
        Assert.Equal(3, fnExpensive.Cost, 12);
        var fpExpensive = Thresholds.Choose(Y, S, ThresholdRule.Parse("cost:5,1"));   // ≥.8: 0 FP, 2 FN → 2
        Assert.Equal(0.75, fpExpensive.Threshold, 6);
        Assert.Equal(2, fpExpensive.Cost, 12);
        // a negative on top and FP very costly: predicting nothing positive wins, expressed as a finite threshold
        var none = Thresholds.Choose([0, 1], [0.9f, 0.1f], ThresholdRule.Cost(100, 1));
        Assert.True(none.Threshold > 0.9f && double.IsFinite(none.Threshold));
        Assert.Equal(0, Thresholds.Decide(0.9f, none.Threshold));
    }

    [Fact]
    public void RulesParseAndPrintTheirForms()
    {
        Assert.Equal("max_f1", ThresholdRule.Parse("max_f1").ToString());
        Assert.Equal("recall:0.95", ThresholdRule.Parse("recall:0.95").ToString());
        Assert.Equal("cost:1,5", ThresholdRule.Parse(" cost:1,5 ").ToString());
        foreach (var bad in new[] { "f1", "recall:1.5", "recall:", "cost:1", "cost:-1,2", "cost:0,0", "cost:a,b" })
            Assert.Contains("max_f1, recall:R", Assert.Throws<ArgumentException>(() => ThresholdRule.Parse(bad)).Message);
    }
}
