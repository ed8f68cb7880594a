namespace Whetstone.Training.Evaluation;

/// <summary>One point of a threshold sweep: predicting positive when score ≥ <see cref="Threshold"/>.</summary>
public readonly record struct ThresholdPoint(double Threshold, int TruePositives, int FalsePositives, int FalseNegatives, int TrueNegatives)
{
    public double Recall => TruePositives + FalseNegatives == 0 ? 0 : (double)TruePositives / (TruePositives + FalseNegatives);
    public double FalsePositiveRate => FalsePositives + TrueNegatives == 0 ? 0 : (double)FalsePositives / (FalsePositives + TrueNegatives);
    /// <summary>Precision, 1 when nothing is predicted positive (scikit-learn's convention for the curve's start).</summary>
    public double Precision => TruePositives + FalsePositives == 0 ? 1 : (double)TruePositives / (TruePositives + FalsePositives);
    public double F1 => TruePositives == 0 ? 0 : 2.0 * TruePositives / (2.0 * TruePositives + FalsePositives + FalseNegatives);
}

/// <summary>
/// Threshold-free scores of a binary classifier from the positive-class score of each example (a probability or any
/// monotone score): the ROC and precision–recall curves, ROC-AUC and average precision, with scikit-learn's
/// definitions (<c>roc_curve</c>/<c>roc_auc_score</c> with trapezoids, <c>average_precision_score</c> as
/// Σ (Rₙ − Rₙ₋₁)·Pₙ without interpolation). Ties share one threshold.
/// </summary>
public static class BinaryMetrics
{
    /// <summary>
    /// The sweep over every distinct score, highest first, starting from "nothing positive" (threshold +∞).
    /// <paramref name="truth"/> holds 1 for positives and 0 for negatives.
    /// </summary>
    public static IReadOnlyList<ThresholdPoint> Sweep(ReadOnlySpan<int> truth, ReadOnlySpan<float> scores)
    {
        if (truth.Length != scores.Length) throw new ArgumentException($"{truth.Length} labels but {scores.Length} scores.");
        int n = truth.Length, positives = 0;
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (truth[i] is not (0 or 1)) throw new ArgumentException($"Binary labels must be 0 or 1; item {i} is {truth[i]}.");
            if (float.IsNaN(scores[i])) throw new ArgumentException($"Score {i} is NaN.");
            positives += truth[i];
            order[i] = i;
        }
        var s = scores.ToArray();
        Array.Sort(order, (a, b) => s[b].CompareTo(s[a]));
        var points = new List<ThresholdPoint> { new(double.PositiveInfinity, 0, 0, positives, n - positives) };
        int tp = 0, fp = 0;
        var t = truth.ToArray();
        for (int i = 0; i < n; i++)
        {
            if (t[order[i]] == 1) tp++; else fp++;
            if (i + 1 < n && s[order[i + 1]] == s[order[i]]) continue;   // ties: one point after the whole group
            points.Add(new(s[order[i]], tp, fp, positives - tp, n - positives - fp));
        }
        return points;
    }

    /// <summary>Area under the ROC curve (trapezoids); NaN when only one class is present.</summary>
    public static double RocAuc(ReadOnlySpan<int> truth, ReadOnlySpan<float> scores)
    {
        var p = Sweep(truth, scores);
        if (p[0].FalseNegatives == 0 || p[0].TrueNegatives == 0) return double.NaN;
        double area = 0;
        for (int i = 1; i < p.Count; i++)
            area += (p[i].FalsePositiveRate - p[i - 1].FalsePositiveRate) * (p[i].Recall + p[i - 1].Recall) / 2;
        return area;
    }

    /// <summary>Average precision Σ (Rₙ − Rₙ₋₁)·Pₙ (the area under the step PR curve); NaN without positives.</summary>
    public static double AveragePrecision(ReadOnlySpan<int> truth, ReadOnlySpan<float> scores)
    {
        var p = Sweep(truth, scores);
        if (p[0].FalseNegatives == 0) return double.NaN;
        double ap = 0;
        for (int i = 1; i < p.Count; i++) ap += (p[i].Recall - p[i - 1].Recall) * p[i].Precision;
        return ap;
    }

    /// <summary>The positive-class column of row-major probabilities (examples × classes).</summary>
    public static float[] PositiveScores(ReadOnlySpan<float> probabilities, int classes, int positive = 1)
    {
        if (classes < 2 || probabilities.Length % classes != 0) throw new ArgumentException($"{probabilities.Length} probabilities do not divide into rows of {classes} classes.");
        var s = new float[probabilities.Length / classes];
        for (int i = 0; i < s.Length; i++) s[i] = probabilities[i * classes + positive];
        return s;
    }
}
