namespace Whetstone.Training.Evaluation;

/// <summary>A corpus metric for <see cref="PairedBootstrap"/>: BLEU or chrF with their options.</summary>
public sealed class TranslationMetric
{
    internal Func<IReadOnlyList<string>, IReadOnlyList<IReadOnlyList<string>>, long[][]> Statistics { get; }
    internal Func<long[], double> Score { get; }
    private readonly Func<int, string> _signature;

    /// <summary>The metric's name as sacreBLEU prints it: BLEU, chrF2, chrF2++.</summary>
    public string Name { get; }

    private TranslationMetric(string name, Func<IReadOnlyList<string>, IReadOnlyList<IReadOnlyList<string>>, long[][]> statistics,
        Func<long[], double> score, Func<int, string> signature)
    {
        Name = name;
        Statistics = statistics;
        Score = score;
        _signature = signature;
    }

    public static TranslationMetric Bleu(BleuOptions? options = null)
    {
        var o = options ?? BleuOptions.Default;
        return new("BLEU", (h, r) => Evaluation.Bleu.Statistics(h, r, o), s => Evaluation.Bleu.ScoreOf(s, o), o.Signature);
    }

    public static TranslationMetric ChrF(ChrFOptions? options = null)
    {
        var o = options ?? ChrFOptions.Default;
        return new(o.Name, (h, r) => Evaluation.ChrF.Statistics(h, r, o), s => Evaluation.ChrF.FScore(s, o), o.Signature);
    }

    internal string Signature(int references) => _signature(references);
}

/// <summary>
/// One system under the paired bootstrap: its score on the whole test set, the mean of its resampled scores and
/// sacreBLEU's 95 % interval — the 1/40 and 39/40 order statistics of the sorted resampled scores (no
/// interpolation) — with <see cref="HalfWidth"/> = (upper − lower) / 2, the "± x" sacreBLEU prints after "μ =".
/// </summary>
public sealed record BootstrapEstimate(double Score, double Mean, double Lower, double Upper)
{
    public double HalfWidth => 0.5 * (Upper - Lower);
}

/// <summary>
/// Result of <see cref="PairedBootstrap.Compare"/>. <see cref="Difference"/> is system − baseline (its score,
/// and the mean and interval of the per-resample differences, same order statistics). <see cref="PValue"/> is
/// sacreBLEU's: with d_r = |system_r − baseline_r| and d̄ their mean, (#{r : d_r − d̄ &gt; |system − baseline|} + 1) / (R + 1).
/// <see cref="Signature"/> is the metric's with sacreBLEU's <c>bs:</c> and <c>seed:</c> entries.
/// </summary>
public sealed record PairedBootstrapResult(string Metric, string Signature, BootstrapEstimate Baseline, BootstrapEstimate System,
    BootstrapEstimate Difference, double PValue, int Resamples, ulong Seed);

/// <summary>
/// Paired bootstrap resampling (Koehn 2004) as sacreBLEU's <c>--paired-bs</c> does it: per-sentence sufficient
/// statistics are computed once for each system; each of the R resamples draws n sentence indices with
/// replacement, the same indices for both systems, and recomputes both corpus scores from the summed statistics.
/// The indices are drawn as sacreBLEU draws them — <c>np.random.default_rng(seed).choice(n, size=(R, n))</c>, row by
/// row, reproduced by <see cref="NumPyRandom"/> — with sacreBLEU's default seed 12345 (<c>SACREBLEU_SEED</c>), so for
/// the same seed the resamples are sacreBLEU's own. (sacreBLEU sums the statistics in float32, exact below 2^24
/// n-grams per resample; here they are summed as integers.)
/// </summary>
public static class PairedBootstrap
{
    public const int DefaultResamples = 1000;
    public const ulong DefaultSeed = 12345;

    /// <summary>Compares <paramref name="system"/> against <paramref name="baseline"/> on one reference per sentence (BLEU by default).</summary>
    public static PairedBootstrapResult Compare(IReadOnlyList<string> baseline, IReadOnlyList<string> system, IReadOnlyList<string> references,
        TranslationMetric? metric = null, int resamples = DefaultResamples, ulong seed = DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(references);
        return Compare(baseline, system, [references], metric, resamples, seed);
    }

    /// <summary>Compares two systems against reference streams (<c>referenceStreams[k][i]</c> is the k-th reference of sentence i).</summary>
    public static PairedBootstrapResult Compare(IReadOnlyList<string> baseline, IReadOnlyList<string> system, IReadOnlyList<IReadOnlyList<string>> referenceStreams,
        TranslationMetric? metric = null, int resamples = DefaultResamples, ulong seed = DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(referenceStreams);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(resamples);
        if (baseline.Count != system.Count)
            throw new ArgumentException($"The baseline has {baseline.Count} hypotheses but the system has {system.Count}.", nameof(system));
        metric ??= TranslationMetric.Bleu();
        var baseStats = metric.Statistics(baseline, referenceStreams);
        var sysStats = metric.Statistics(system, referenceStreams);
        int n = baseStats.Length, width = baseStats[0].Length;
        double baseScore = metric.Score(Bleu.Sum(baseStats)), sysScore = metric.Score(Bleu.Sum(sysStats));

        var rng = new NumPyRandom(seed);
        var baseScores = new double[resamples];
        var sysScores = new double[resamples];
        var sumBase = new long[width];
        var sumSys = new long[width];
        for (int r = 0; r < resamples; r++)
        {
            Array.Clear(sumBase);
            Array.Clear(sumSys);
            for (int i = 0; i < n; i++)
            {
                int j = rng.NextIndex(n);
                var b = baseStats[j];
                var s = sysStats[j];
                for (int c = 0; c < width; c++) { sumBase[c] += b[c]; sumSys[c] += s[c]; }
            }
            baseScores[r] = metric.Score(sumBase);
            sysScores[r] = metric.Score(sumSys);
        }

        var differences = new double[resamples];
        var absolute = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            differences[r] = sysScores[r] - baseScores[r];
            absolute[r] = Math.Abs(differences[r]);
        }
        double observed = Math.Abs(baseScore - sysScore);
        double meanAbsolute = absolute.Average();
        int exceed = absolute.Count(d => d - meanAbsolute > observed);
        double p = (exceed + 1.0) / (resamples + 1.0);

        return new PairedBootstrapResult(metric.Name,
            $"{SignatureHead(metric.Signature(referenceStreams.Count), resamples, seed)}",
            Estimate(baseScore, baseScores), Estimate(sysScore, sysScores), Estimate(sysScore - baseScore, differences),
            p, resamples, seed);
    }

    /// <summary>sacreBLEU's <c>estimate_ci</c> bounds: sorted values at n // 40 and n − n // 40 − 1, and the mean.</summary>
    internal static BootstrapEstimate Estimate(double score, double[] samples)
    {
        var sorted = (double[])samples.Clone();
        Array.Sort(sorted);
        int lower = sorted.Length / 40;
        return new BootstrapEstimate(score, samples.Average(), sorted[lower], sorted[sorted.Length - lower - 1]);
    }

    /// <summary>Inserts <c>bs:R|seed:S</c> after <c>nrefs:k</c>, where sacreBLEU puts them.</summary>
    private static string SignatureHead(string signature, int resamples, ulong seed)
    {
        int bar = signature.IndexOf('|', StringComparison.Ordinal);
        return $"{signature[..bar]}|bs:{resamples}|seed:{seed}{signature[bar..]}";
    }
}
