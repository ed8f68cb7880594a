using System.Globalization;

namespace Whetstone.Training.Evaluation;

/// <summary>
/// How a binary decision threshold is chosen: <c>max_f1</c> (the threshold with the highest F1), <c>recall:R</c>
/// (the highest-precision threshold whose recall is at least R) or <c>cost:FP,FN</c> (the threshold minimising
/// FP·cost_FP + FN·cost_FN). Parsed from and printed as those strings (config key <c>train.threshold</c>).
/// </summary>
public sealed record ThresholdRule
{
    public string Kind { get; }
    /// <summary>The recall to reach (<c>recall</c> rule).</summary>
    public double TargetRecall { get; }
    public double CostFalsePositive { get; }
    public double CostFalseNegative { get; }

    private ThresholdRule(string kind, double recall, double fp, double fn) => (Kind, TargetRecall, CostFalsePositive, CostFalseNegative) = (kind, recall, fp, fn);

    public static readonly ThresholdRule MaxF1 = new("max_f1", 0, 0, 0);

    public static ThresholdRule Recall(double target) =>
        target is > 0 and <= 1 ? new("recall", target, 0, 0) : throw new ArgumentOutOfRangeException(nameof(target), target, "The target recall must be in (0, 1].");

    public static ThresholdRule Cost(double falsePositive, double falseNegative) =>
        falsePositive >= 0 && falseNegative >= 0 && falsePositive + falseNegative > 0 && double.IsFinite(falsePositive + falseNegative)
            ? new("cost", 0, falsePositive, falseNegative)
            : throw new ArgumentException($"Costs must be finite, ≥ 0 and not both 0 (got FP {falsePositive}, FN {falseNegative}).");

    /// <summary>Parses <c>max_f1</c>, <c>recall:0.95</c> or <c>cost:1,5</c>; anything else is an <see cref="ArgumentException"/> naming the forms.</summary>
    public static ThresholdRule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim();
        var inv = CultureInfo.InvariantCulture;
        const NumberStyles num = NumberStyles.Float;
        if (s == "max_f1") return MaxF1;
        if (s.StartsWith("recall:", StringComparison.Ordinal) && double.TryParse(s["recall:".Length..], num, inv, out var r) && r is > 0 and <= 1)
            return Recall(r);
        if (s.StartsWith("cost:", StringComparison.Ordinal) && s["cost:".Length..].Split(',') is [var a, var b]
            && double.TryParse(a, num, inv, out var fp) && double.TryParse(b, num, inv, out var fn) && fp >= 0 && fn >= 0 && fp + fn > 0 && double.IsFinite(fp + fn))
            return Cost(fp, fn);
        throw new ArgumentException($"Threshold rule '{text}' is not one of: max_f1, recall:R (0 < R ≤ 1, e.g. recall:0.95), cost:FP,FN (costs ≥ 0, e.g. cost:1,5).");
    }

    public override string ToString() => Kind switch
    {
        "recall" => "recall:" + TargetRecall.ToString("R", CultureInfo.InvariantCulture),
        "cost" => "cost:" + CostFalsePositive.ToString("R", CultureInfo.InvariantCulture) + "," + CostFalseNegative.ToString("R", CultureInfo.InvariantCulture),
        _ => Kind,
    };

    /// <summary>The rule in words, for reports.</summary>
    public string Describe() => Kind switch
    {
        "recall" => $"highest precision with recall ≥ {TargetRecall.ToString("0.###", CultureInfo.InvariantCulture)}",
        "cost" => $"lowest cost {CostFalsePositive.ToString("0.###", CultureInfo.InvariantCulture)}·FP + {CostFalseNegative.ToString("0.###", CultureInfo.InvariantCulture)}·FN",
        _ => "highest F1",
    };
}

/// <summary>A chosen threshold (predict positive when score ≥ <see cref="Threshold"/>), the rule, and the counts it gives.</summary>
public sealed record ThresholdChoice(double Threshold, ThresholdRule Rule, ThresholdPoint Point, bool Reached = true)
{
    /// <summary>FP·cost_FP + FN·cost_FN under a cost rule (otherwise FP + FN).</summary>
    public double Cost => Rule.Kind == "cost"
        ? Point.FalsePositives * Rule.CostFalsePositive + Point.FalseNegatives * Rule.CostFalseNegative
        : Point.FalsePositives + Point.FalseNegatives;
}

/// <summary>Chooses binary decision thresholds from the sweep of <see cref="BinaryMetrics.Sweep"/>.</summary>
public static class Thresholds
{
    /// <summary>
    /// The threshold <paramref name="rule"/> picks on (<paramref name="truth"/>, <paramref name="scores"/>). Ties go to
    /// the higher threshold. The threshold returned lies midway between the chosen point's score and the next lower
    /// distinct score, so it makes the same decisions on these examples as the chosen point while leaving a margin for
    /// new ones (a threshold at the lowest validation positive would call many unseen positives negative). A recall target no threshold reaches gives the lowest threshold (everything positive) with
    /// <see cref="ThresholdChoice.Reached"/> false. "Nothing positive" is expressed as the next double above the highest
    /// score, so the threshold is always a finite number.
    /// </summary>
    public static ThresholdChoice Choose(ReadOnlySpan<int> truth, ReadOnlySpan<float> scores, ThresholdRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (truth.Length == 0) throw new ArgumentException("Choosing a threshold needs at least one example.");
        var sweep = BinaryMetrics.Sweep(truth, scores);
        int best = 0;
        bool reached = true;
        switch (rule.Kind)
        {
            case "recall":
                best = -1;
                for (int i = 0; i < sweep.Count; i++)
                    if (sweep[i].Recall >= rule.TargetRecall - 1e-12 && (best < 0 || sweep[i].Precision > sweep[best].Precision)) best = i;
                if (best < 0) { best = sweep.Count - 1; reached = false; }
                break;
            case "cost":
                double Cost(ThresholdPoint p) => p.FalsePositives * rule.CostFalsePositive + p.FalseNegatives * rule.CostFalseNegative;
                for (int i = 1; i < sweep.Count; i++) if (Cost(sweep[i]) < Cost(sweep[best])) best = i;
                break;
            default:
                for (int i = 1; i < sweep.Count; i++) if (sweep[i].F1 > sweep[best].F1) best = i;
                break;
        }
        // midway to the next lower score: the same decisions on these examples, with a margin on both sides
        double threshold = best + 1 < sweep.Count && double.IsFinite(sweep[best].Threshold) ? (sweep[best].Threshold + sweep[best + 1].Threshold) / 2 : sweep[best].Threshold;
        if (double.IsPositiveInfinity(threshold))
        {
            float max = float.NegativeInfinity;
            foreach (float s in scores) max = Math.Max(max, s);
            threshold = Math.BitIncrement((double)max);
        }
        return new ThresholdChoice(threshold, rule, sweep[best], reached);
    }

    /// <summary>Chooses on the positive-class probabilities (class index 1) of a two-class evaluation.</summary>
    public static ThresholdChoice Choose(EvalResult e, ThresholdRule rule)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Report.Labels.Count != 2 || e.Probabilities is null || e.Truth is null)
            throw new ArgumentException("A decision threshold needs a two-class evaluation that kept its probabilities.");
        return Choose(e.Truth, BinaryMetrics.PositiveScores(e.Probabilities, 2), rule);
    }

    /// <summary>The counts when predicting positive for score ≥ <paramref name="threshold"/>.</summary>
    public static ThresholdPoint PointAt(ReadOnlySpan<int> truth, ReadOnlySpan<float> scores, double threshold)
    {
        if (truth.Length != scores.Length) throw new ArgumentException($"{truth.Length} labels but {scores.Length} scores.");
        int tp = 0, fp = 0, fn = 0, tn = 0;
        for (int i = 0; i < truth.Length; i++)
        {
            if (Decide(scores[i], threshold) == 1) { if (truth[i] == 1) tp++; else fp++; }
            else if (truth[i] == 1) fn++; else tn++;
        }
        return new ThresholdPoint(threshold, tp, fp, fn, tn);
    }

    /// <summary>The label index for a positive-class probability: 1 when p ≥ threshold.</summary>
    public static int Decide(double positiveProbability, double threshold) => positiveProbability >= threshold ? 1 : 0;
}

/// <summary>
/// What a bundle stores to turn logits into decisions: the temperature fitted on validation (null when none was
/// fitted) and, for two-class tasks, the threshold on the temperature-scaled positive-class probability.
/// </summary>
public sealed record CalibratedDecision(TemperatureFit? Temperature, ThresholdChoice? Threshold)
{
    /// <summary>
    /// Fits the temperature on <paramref name="validation"/> (when <paramref name="fitTemperature"/>) and, for a
    /// two-class task, chooses the threshold with <paramref name="rule"/> on its temperature-scaled probabilities.
    /// </summary>
    public static CalibratedDecision Fit(EvalResult validation, ThresholdRule rule, bool fitTemperature = true)
    {
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(rule);
        if (validation.Probabilities is null || validation.Truth is null || validation.Count == 0) return new(null, null);
        var t = fitTemperature ? Calibration.FitTemperature(validation) : null;
        var scaled = t is null ? validation : Calibration.Apply(validation, t.Temperature);
        var th = validation.Report.Labels.Count == 2 ? Thresholds.Choose(scaled, rule) : null;
        return new(t, th);
    }
}
