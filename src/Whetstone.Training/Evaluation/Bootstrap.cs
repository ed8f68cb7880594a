using Whetstone.Tensors;

namespace Whetstone.Training.Evaluation;

/// <summary>A point estimate with a confidence interval [<see cref="Lower"/>, <see cref="Upper"/>].</summary>
public readonly record struct ConfidenceInterval(double Estimate, double Lower, double Upper, double Level);

/// <summary>Bootstrap intervals of accuracy and macro-F1 on one evaluation.</summary>
public sealed record BootstrapResult(ConfidenceInterval Accuracy, ConfidenceInterval MacroF1, int Resamples, ulong Seed);

/// <summary>
/// Non-parametric bootstrap: resample the examples with replacement <c>resamples</c> times (seeded, so the same seed
/// gives the same interval), recompute the statistic, and take the percentile interval — the (1−level)/2 and
/// (1+level)/2 quantiles of the resampled statistics, linearly interpolated. Macro-F1 averages over every label, as
/// <see cref="ClassificationReport"/> does (a class absent from a resample scores 0).
/// </summary>
public static class Bootstrap
{
    public const int DefaultResamples = 1000;
    public const ulong DefaultSeed = 42;

    /// <summary>Accuracy and macro-F1 intervals for true/predicted class indices over <paramref name="classes"/> labels.</summary>
    public static BootstrapResult Classification(ReadOnlySpan<int> truth, ReadOnlySpan<int> predicted, int classes,
        int resamples = DefaultResamples, ulong seed = DefaultSeed, double level = 0.95)
    {
        if (truth.Length != predicted.Length) throw new ArgumentException($"{truth.Length} true labels but {predicted.Length} predictions.");
        if (truth.Length == 0) throw new ArgumentException("Bootstrapping needs at least one example.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(resamples);
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "The level is in (0, 1).");
        int n = truth.Length;
        var t = truth.ToArray();
        var p = predicted.ToArray();
        for (int i = 0; i < n; i++)
            if ((uint)t[i] >= (uint)classes || (uint)p[i] >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(truth), $"Class index out of range at item {i}.");
        var all = new int[n];
        for (int i = 0; i < n; i++) all[i] = i;
        var (acc0, f10) = Scores(t, p, all, classes, new int[3 * classes]);

        var rng = new Rng(seed);
        var idx = new int[n];
        var counts = new int[3 * classes];
        var accs = new double[resamples];
        var f1s = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < n; i++) idx[i] = (int)(rng.NextUInt64() % (ulong)n);
            (accs[r], f1s[r]) = Scores(t, p, idx, classes, counts);
        }
        return new BootstrapResult(Interval(acc0, accs, level), Interval(f10, f1s, level), resamples, seed);
    }

    /// <summary>Intervals for an evaluation that kept its per-example predictions.</summary>
    public static BootstrapResult Classification(EvalResult e, int resamples = DefaultResamples, ulong seed = DefaultSeed, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Truth is null || e.Predicted is null) throw new ArgumentException("The evaluation kept no per-example predictions.");
        return Classification(e.Truth, e.Predicted, e.Report.Labels.Count, resamples, seed, level);
    }

    /// <summary>The percentile interval of <paramref name="samples"/> around <paramref name="estimate"/> (sorts a copy).</summary>
    public static ConfidenceInterval Interval(double estimate, IReadOnlyList<double> samples, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0) throw new ArgumentException("No bootstrap samples.");
        var s = samples.ToArray();
        Array.Sort(s);
        return new ConfidenceInterval(estimate, Quantile(s, (1 - level) / 2), Quantile(s, (1 + level) / 2), level);
    }

    /// <summary>The q-quantile of sorted values with linear interpolation between order statistics (NumPy's default).</summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        if (sorted.Length == 0) throw new ArgumentException("No values.");
        double h = (sorted.Length - 1) * Math.Clamp(q, 0, 1);
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Accuracy and macro-F1 of the examples at <paramref name="idx"/>; <paramref name="counts"/> is scratch (tp, fp, fn per class).</summary>
    private static (double Accuracy, double MacroF1) Scores(int[] truth, int[] predicted, int[] idx, int classes, int[] counts)
    {
        Array.Clear(counts);
        int correct = 0;
        foreach (int i in idx)
        {
            int y = truth[i], p = predicted[i];
            if (y == p) { correct++; counts[3 * y]++; }
            else { counts[3 * p + 1]++; counts[3 * y + 2]++; }
        }
        double f1 = 0;
        for (int c = 0; c < classes; c++)
        {
            int tp = counts[3 * c], fp = counts[3 * c + 1], fn = counts[3 * c + 2];
            f1 += tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
        }
        return ((double)correct / idx.Length, f1 / classes);
    }
}
