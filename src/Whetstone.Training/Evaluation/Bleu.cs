using System.Globalization;

namespace Whetstone.Training.Evaluation;

/// <summary>How BLEU treats an n-gram order with no match (Chen &amp; Cherry 2014, as sacreBLEU names them).</summary>
public enum BleuSmoothing
{
    /// <summary>No smoothing: one order without a match makes the score 0.</summary>
    None,
    /// <summary>Method 1: an order without a match counts <see cref="BleuOptions.SmoothValue"/> matches (default 0.1).</summary>
    Floor,
    /// <summary>Method 2: orders 2 and up get <see cref="BleuOptions.SmoothValue"/> added to matches and totals (default 1).</summary>
    AddK,
    /// <summary>Method 3, mteval-v13a's (sacreBLEU's default): the k-th order without a match gets precision 1 / (2^k · total).</summary>
    Exp,
}

/// <summary>How hypotheses and references are split into words before counting n-grams.</summary>
public enum BleuTokenizer
{
    /// <summary>sacreBLEU's default <c>13a</c>: mteval-v13a's punctuation splitting.</summary>
    Mteval13a,
    /// <summary>sacreBLEU's <c>none</c>: the text is split on whitespace as it is (for text tokenized already).</summary>
    None,
}

/// <summary>
/// BLEU settings, named as sacreBLEU's <c>BLEU(...)</c> arguments. The defaults are sacreBLEU's corpus defaults
/// (<c>case:mixed|eff:no|tok:13a|smooth:exp</c>); <see cref="SentenceDefault"/> is <c>sentence_bleu</c>'s, which turns
/// effective order on.
/// </summary>
public sealed record BleuOptions
{
    public static readonly BleuOptions Default = new();
    /// <summary>sacreBLEU's <c>sentence_bleu</c> defaults: as <see cref="Default"/> with <see cref="EffectiveOrder"/> on.</summary>
    public static readonly BleuOptions SentenceDefault = new() { EffectiveOrder = true };

    public BleuSmoothing Smoothing { get; init; } = BleuSmoothing.Exp;
    /// <summary>The value for <see cref="BleuSmoothing.Floor"/> (default 0.1) and <see cref="BleuSmoothing.AddK"/> (default 1); null for the default.</summary>
    public double? SmoothValue { get; init; }
    public BleuTokenizer Tokenizer { get; init; } = BleuTokenizer.Mteval13a;
    /// <summary>Lowercase both sides first (<c>case:lc</c>); .NET's invariant lowercasing, which matches Python's <c>str.lower</c> except for a few characters (İ).</summary>
    public bool Lowercase { get; init; }
    /// <summary>Average only the orders the hypothesis has n-grams of (needed for short single sentences).</summary>
    public bool EffectiveOrder { get; init; }
    /// <summary>The highest n-gram order (4).</summary>
    public int MaxOrder { get; init; } = 4;

    internal double ResolvedSmoothValue => SmoothValue ?? Smoothing switch
    {
        BleuSmoothing.Floor => 0.1,
        BleuSmoothing.AddK => 1,
        _ => 0,
    };

    internal string Signature(int references)
    {
        string smooth = Smoothing switch
        {
            BleuSmoothing.None => "none",
            BleuSmoothing.Exp => "exp",
            BleuSmoothing.Floor => $"floor[{ResolvedSmoothValue.ToString("F2", CultureInfo.InvariantCulture)}]",
            _ => $"add-k[{ResolvedSmoothValue.ToString("F2", CultureInfo.InvariantCulture)}]",
        };
        string tok = Tokenizer == BleuTokenizer.Mteval13a ? "13a" : "none";
        return $"nrefs:{references}|case:{(Lowercase ? "lc" : "mixed")}|eff:{(EffectiveOrder ? "yes" : "no")}|tok:{tok}|smooth:{smooth}|version:{SacreBleu.Version}";
    }
}

/// <summary>
/// A BLEU score (0–100) with what sacreBLEU prints beside it: the n-gram precisions (percent), the clipped matches
/// and the hypothesis n-grams per order (before any add-k smoothing), the brevity penalty, the length ratio and the
/// summed hypothesis and (closest) reference lengths.
/// </summary>
public sealed record BleuScore(double Score, IReadOnlyList<double> Precisions, IReadOnlyList<long> Counts, IReadOnlyList<long> Totals,
    double BrevityPenalty, double Ratio, long HypothesisLength, long ReferenceLength, string Signature)
{
    /// <summary>sacreBLEU's line: <c>BLEU|nrefs:1|… = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)</c>.</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        string precisions = string.Join('/', Precisions.Select(p => p.ToString("F1", c)));
        return $"BLEU|{Signature} = {Score.ToString("F2", c)} {precisions} (BP = {BrevityPenalty.ToString("F3", c)} " +
               $"ratio = {Ratio.ToString("F3", c)} hyp_len = {HypothesisLength} ref_len = {ReferenceLength})";
    }
}

/// <summary>The sacreBLEU release whose computations these metrics reproduce, printed as the signatures' <c>version:</c> part.</summary>
public static class SacreBleu
{
    /// <summary>
    /// "2.6.0": BLEU, chrF and the paired bootstrap follow sacreBLEU 2.6.0's source (unchanged in those files up to
    /// its master of 2025), and the signature says so, so that a score printed here can be set beside sacreBLEU's.
    /// </summary>
    public const string Version = "2.6.0";
}

/// <summary>
/// Corpus and sentence BLEU (Papineni et al. 2002) exactly as sacreBLEU 2.x computes it: each segment is
/// right-stripped, optionally lowercased and tokenized (13a by default); per segment the hypothesis n-grams of
/// orders 1..4 are counted and clipped by the reference counts (with several references, by the largest count
/// in any of them), and the reference length is the one closest to the hypothesis length (the shorter on a tie).
/// The corpus score comes from the summed counts: BP · exp(mean log precision), BP = exp(1 − r/c) when c &lt; r.
/// No match at any order gives 0. A log of 0 is taken as −9,999,999,999, as sacreBLEU's <c>my_log</c> does.
/// </summary>
public static class Bleu
{
    /// <summary>Corpus BLEU with one reference per hypothesis.</summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references, BleuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(references);
        return Corpus(hypotheses, [references], options);
    }

    /// <summary>
    /// Corpus BLEU against one or more reference streams, sacreBLEU's <c>refs</c> layout: <c>referenceStreams[k][i]</c>
    /// is the k-th reference of hypothesis i.
    /// </summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams, BleuOptions? options = null)
    {
        var o = options ?? BleuOptions.Default;
        var stats = Statistics(hypotheses, referenceStreams, o);
        return FromStatistics(Sum(stats), o, referenceStreams.Count);
    }

    /// <summary>Sentence BLEU; by default with sacreBLEU's <c>sentence_bleu</c> settings (effective order on).</summary>
    public static BleuScore Sentence(string hypothesis, string reference, BleuOptions? options = null) =>
        Sentence(hypothesis, [reference], options);

    /// <summary>Sentence BLEU against several references of the same sentence.</summary>
    public static BleuScore Sentence(string hypothesis, IReadOnlyList<string> references, BleuOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0) throw new ArgumentException("Sentence BLEU needs at least one reference.", nameof(references));
        var streams = references.Select(r => (IReadOnlyList<string>)[r]).ToArray();
        return Corpus([hypothesis], streams, options ?? BleuOptions.SentenceDefault);
    }

    /// <summary>
    /// Per-segment sufficient statistics, one row per hypothesis: [hypothesis length, reference length,
    /// matches of order 1..N, hypothesis n-grams of order 1..N]. Summed rows give the corpus score.
    /// </summary>
    internal static long[][] Statistics(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams, BleuOptions o)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referenceStreams);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(o.MaxOrder);
        TranslationInputs.Check(hypotheses, referenceStreams);
        int n = o.MaxOrder;
        var rows = new long[hypotheses.Count][];
        for (int i = 0; i < hypotheses.Count; i++)
        {
            Dictionary<string, int>? refCounts = null;
            var refLengths = new List<int>(referenceStreams.Count);
            foreach (var stream in referenceStreams)
            {
                var (counts, length) = NGrams(Preprocess(stream[i], o), n);
                refLengths.Add(length);
                if (refCounts is null) { refCounts = counts; continue; }
                foreach (var (gram, count) in counts)
                    refCounts[gram] = Math.Max(refCounts.GetValueOrDefault(gram), count);
            }
            var (hypCounts, hypLength) = NGrams(Preprocess(hypotheses[i], o), n);
            var row = new long[2 + 2 * n];
            row[0] = hypLength;
            row[1] = ClosestLength(hypLength, refLengths);
            foreach (var (gram, count) in hypCounts)
            {
                int order = gram.Count(c => c == ' ');   // order − 1: words never contain a space
                row[2 + n + order] += count;
                if (refCounts!.TryGetValue(gram, out int r)) row[2 + order] += Math.Min(count, r);
            }
            rows[i] = row;
        }
        return rows;
    }

    /// <summary>sacreBLEU's <c>compute_bleu</c> on summed statistics laid out as <see cref="Statistics"/>'s rows.</summary>
    internal static BleuScore FromStatistics(ReadOnlySpan<long> stats, BleuOptions o, int references)
    {
        int n = o.MaxOrder;
        if (stats.Length != 2 + 2 * n) throw new ArgumentException($"Expected {2 + 2 * n} statistics for order {n}, got {stats.Length}.");
        var counts = stats.Slice(2, n).ToArray();
        var totals = stats.Slice(2 + n, n).ToArray();
        double score = Compute(counts, totals, stats[0], stats[1], o, out var precisions, out double bp);
        double ratio = stats[1] == 0 ? 0 : (double)stats[0] / stats[1];
        return new BleuScore(score, precisions, counts, totals, bp, ratio, stats[0], stats[1], o.Signature(references));
    }

    /// <summary>The score only, from summed statistics (the bootstrap's inner loop).</summary>
    internal static double ScoreOf(ReadOnlySpan<long> stats, BleuOptions o) =>
        Compute(stats.Slice(2, o.MaxOrder), stats.Slice(2 + o.MaxOrder, o.MaxOrder), stats[0], stats[1], o, out _, out _);

    /// <summary>
    /// BLEU from matches and totals per order and the two lengths. Orders are visited from 1 up; add-k adds its
    /// value to matches and totals from order 2; the first order with no hypothesis n-grams ends the loop (the
    /// orders after it keep precision 0); with effective order only the visited orders are averaged.
    /// </summary>
    internal static double Compute(ReadOnlySpan<long> counts, ReadOnlySpan<long> totals, long hypLength, long refLength, BleuOptions o,
        out double[] precisions, out double brevityPenalty)
    {
        int n = counts.Length;
        brevityPenalty = 1.0;
        if (hypLength < refLength) brevityPenalty = hypLength > 0 ? Math.Exp(1 - (double)refLength / hypLength) : 0.0;
        precisions = new double[n];
        bool anyMatch = false;
        foreach (long c in counts) anyMatch |= c != 0;
        if (!anyMatch) return 0.0;

        double k = o.ResolvedSmoothValue;
        double smoothMteval = 1;
        int effectiveOrder = n;
        for (int i = 0; i < n; i++)
        {
            double correct = counts[i], total = totals[i];
            if (o.Smoothing == BleuSmoothing.AddK && i > 0) { correct += k; total += k; }
            if (total == 0) break;
            if (o.EffectiveOrder) effectiveOrder = i + 1;
            if (correct == 0)
            {
                if (o.Smoothing == BleuSmoothing.Exp) { smoothMteval *= 2; precisions[i] = 100.0 / (smoothMteval * total); }
                else if (o.Smoothing == BleuSmoothing.Floor) precisions[i] = 100.0 * k / total;
            }
            else precisions[i] = 100.0 * correct / total;
        }
        double logSum = 0;
        for (int i = 0; i < effectiveOrder; i++) logSum += precisions[i] == 0 ? -9999999999.0 : Math.Log(precisions[i]);
        return brevityPenalty * Math.Exp(logSum / effectiveOrder);
    }

    /// <summary>What sacreBLEU counts: the segment right-stripped, lowercased if asked, then tokenized.</summary>
    internal static string Preprocess(string segment, BleuOptions o)
    {
        if (o.Lowercase) segment = segment.ToLowerInvariant();
        segment = PyText.RStrip(segment);
        return o.Tokenizer == BleuTokenizer.Mteval13a ? Tokenizer13a.Tokenize(segment) : segment;
    }

    /// <summary>Counts of the word n-grams of orders 1..<paramref name="maxOrder"/> (words joined by one space) and the word count.</summary>
    internal static (Dictionary<string, int> Counts, int Length) NGrams(string line, int maxOrder)
    {
        var words = PyText.Split(line);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int order = 1; order <= maxOrder; order++)
            for (int i = 0; i + order <= words.Count; i++)
            {
                string gram = order == 1 ? words[i] : string.Join(' ', words.Skip(i).Take(order));
                counts[gram] = counts.GetValueOrDefault(gram) + 1;
            }
        return (counts, words.Count);
    }

    /// <summary>The reference length closest to the hypothesis length; the shorter one on a tie.</summary>
    private static int ClosestLength(int hypLength, List<int> refLengths)
    {
        int best = -1, bestDiff = -1;
        foreach (int r in refLengths)
        {
            int diff = Math.Abs(hypLength - r);
            if (bestDiff == -1 || diff < bestDiff || (diff == bestDiff && r < best)) { bestDiff = diff; best = r; }
        }
        return best;
    }

    internal static long[] Sum(long[][] rows)
    {
        if (rows.Length == 0) throw new ArgumentException("No segments to score.");
        var sum = new long[rows[0].Length];
        foreach (var row in rows)
            for (int j = 0; j < sum.Length; j++) sum[j] += row[j];
        return sum;
    }
}

/// <summary>Input checks shared by the translation metrics.</summary>
internal static class TranslationInputs
{
    public static void Check(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams)
    {
        if (hypotheses.Count == 0) throw new ArgumentException("There are no hypotheses to score.", nameof(hypotheses));
        if (referenceStreams.Count == 0) throw new ArgumentException("There are no reference streams.", nameof(referenceStreams));
        for (int k = 0; k < referenceStreams.Count; k++)
        {
            var stream = referenceStreams[k] ?? throw new ArgumentException($"Reference stream {k} is null.", nameof(referenceStreams));
            if (stream.Count != hypotheses.Count)
                throw new ArgumentException(
                    $"{hypotheses.Count} hypotheses but {stream.Count} references" + (referenceStreams.Count > 1 ? $" in reference stream {k}." : "."),
                    nameof(referenceStreams));
            for (int i = 0; i < stream.Count; i++)
                if (stream[i] is null) throw new ArgumentException($"Reference {i} of stream {k} is null.", nameof(referenceStreams));
        }
        for (int i = 0; i < hypotheses.Count; i++)
            if (hypotheses[i] is null) throw new ArgumentException($"Hypothesis {i} is null.", nameof(hypotheses));
    }
}
