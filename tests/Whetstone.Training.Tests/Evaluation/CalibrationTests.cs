using Whetstone.Tensors;
using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tests.Evaluation;

public class CalibrationTests
{
    // confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.55 (wrong), 0.88 (right): 15 bins of width 1/15
    private static readonly float[] P = [0.9f, 0.1f, 0.2f, 0.8f, 0.3f, 0.7f, 0.45f, 0.55f, 0.88f, 0.12f];
    private static readonly int[] Y = [0, 0, 1, 0, 0];

    [Fact]
    public void BinsAndEceMatchAHandComputation()
    {
        var bins = Calibration.Bins(P, 2, Y);
        Assert.Equal(15, bins.Length);
        Assert.Equal(5, bins.Sum(b => b.Count));
        var b13 = bins[13];                                   // (13/15, 14/15] = (0.867, 0.933]: 0.9 and 0.88, both right
        Assert.Equal(2, b13.Count);
        Assert.Equal(0.89, b13.MeanConfidence, 6);
        Assert.Equal(1.0, b13.Accuracy);
        Assert.Equal(1, bins[8].Count);                       // (0.533, 0.6]: 0.55, wrong
        Assert.Equal(0.0, bins[8].Accuracy);
        Assert.Equal(1, bins[10].Count);                      // (0.667, 0.733]: 0.7, right
        // ECE = (2·|1 − 0.89| + |0 − 0.8| + |1 − 0.7| + |0 − 0.55|) / 5 = 1.87 / 5
        Assert.Equal(0.374, Calibration.ExpectedCalibrationError(P, 2, Y), 6);
        Assert.Equal(0.374, Calibration.ExpectedCalibrationError(bins), 6);
    }

    [Fact]
    public void APerfectlyCalibratedBinHasNoGapAndOneBinGivesTheMeanGap()
    {
        // four examples at confidence 0.75, three right: accuracy 0.75 = confidence → ECE 0
        float[] p = [0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f];
        Assert.Equal(0, Calibration.ExpectedCalibrationError(p, 2, [0, 0, 0, 1]), 6);
        Assert.Equal(0.25, Calibration.ExpectedCalibrationError(p, 2, [0, 0, 1, 1]), 6);
        Assert.Equal(0, Calibration.ExpectedCalibrationError(p, 2, [0, 0, 0, 1], bins: 1), 6);      // one bin (0, 1]: the same
    }

    [Fact]
    public void TemperatureScalingRecoversAKnownTemperature()
    {
        // labels drawn from softmax(z); the model reports z·2.5 (over-confident), so the best T is 2.5
        const int n = 20000, k = 5;
        const double trueT = 2.5;
        var rng = new Rng(7);
        var logits = new double[n * k];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            var z = new double[k];
            for (int j = 0; j < k; j++) z[j] = 2 * (rng.NextDouble() * 2 - 1);
            double s = z.Sum(Math.Exp), u = rng.NextDouble() * s, acc = 0;
            y[i] = k - 1;
            for (int j = 0; j < k; j++) { acc += Math.Exp(z[j]); if (u < acc) { y[i] = j; break; } }
            for (int j = 0; j < k; j++) logits[i * k + j] = z[j] * trueT;
        }
        var fit = Calibration.FitTemperature(logits, k, y);
        Assert.InRange(fit.Temperature, trueT - 0.05, trueT + 0.05);
        Assert.True(fit.NllAfter < fit.NllBefore);
        Assert.Equal(fit.NllAfter, Calibration.NegativeLogLikelihood(logits, k, y, fit.Temperature), 12);
        // through probabilities (what an evaluation keeps): the same T
        var probs = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            double m = Enumerable.Range(0, k).Max(j => logits[i * k + j]), s = Enumerable.Range(0, k).Sum(j => Math.Exp(logits[i * k + j] - m));
            for (int j = 0; j < k; j++) probs[i * k + j] = (float)(Math.Exp(logits[i * k + j] - m) / s);
        }
        var fromProbs = Calibration.FitTemperature(probs, k, y);
        Assert.Equal(fit.Temperature, fromProbs.Temperature, 2);
        // and it lowers the ECE of the over-confident probabilities
        var scaled = Calibration.Apply(probs, k, fromProbs.Temperature);
        Assert.True(Calibration.ExpectedCalibrationError(scaled, k, y) < 0.02);
        Assert.True(Calibration.ExpectedCalibrationError(probs, k, y) > 0.1);
    }

    [Fact]
    public void ApplyKeepsRowsNormalisedAndTheArgmax()
    {
        float[] p = [0.7f, 0.2f, 0.1f, 0.05f, 0.05f, 0.9f];
        var q = Calibration.Apply(p, 3, 2.0);
        Assert.Equal(1.0, q[0] + q[1] + q[2], 5);
        Assert.True(q[0] > q[1] && q[1] > q[2] && q[0] < p[0]);   // softer, same order
        Assert.Equal(Math.Sqrt(0.7) / (Math.Sqrt(0.7) + Math.Sqrt(0.2) + Math.Sqrt(0.1)), q[0], 5);
        Assert.Equal(p, Calibration.Apply(p, 3, 1.0), (a, b) => Math.Abs(a - b) < 1e-6);
    }
}
