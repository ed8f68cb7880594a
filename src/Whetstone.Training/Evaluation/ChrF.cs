using System.Globalization;

namespace Whetstone.Training.Evaluation;

/// <summary>
/// chrF settings, named as sacreBLEU's <c>CHRF(...)</c> arguments. The defaults give chrF2 (<c>nc:6|nw:0|space:no</c>,
/// β = 2, sacreBLEU's default averaging: <c>eps_smoothing=False</c>, signature <c>eff:yes</c>); <see cref="ChrFPlusPlus"/>
/// adds word unigrams and bigrams.
/// </summary>
public sealed record ChrFOptions
{
    public static readonly ChrFOptions Default = new();
    /// <summary>chrF++: <see cref="WordOrder"/> 2.</summary>
    public static readonly ChrFOptions ChrFPlusPlus = new() { WordOrder = 2 };

    /// <summary>The highest character n-gram order (6).</summary>
    public int CharOrder { get; init; } = 6;
    /// <summary>The highest word n-gram order (0 for chrF, 2 for chrF++).</summary>
    public int WordOrder { get; init; }
    /// <summary>Recall counts β times as much as precision (2).</summary>
    public int Beta { get; init; } = 2;
    /// <summary>Lowercase both sides first (<c>case:lc</c>).</summary>
    public bool Lowercase { get; init; }
    /// <summary>Keep whitespace inside character n-grams (<c>space:yes</c>); by default it is removed first.</summary>
    public bool Whitespace { get; init; }
    /// <summary>
    /// chrF++.py / NLTK / Moses averaging (the mean of per-order F scores, an order without statistics counting
    /// 1e-16) instead of sacreBLEU's default: the F score of the precisions and recalls averaged over the orders
    /// that both sides have n-grams of.
    /// </summary>
    public bool EpsSmoothing { get; init; }

    internal int Orders => CharOrder + WordOrder;

    internal string Name => $"chrF{Beta}" + new string('+', WordOrder);

    internal string Signature(int references) =>
        $"nrefs:{references}|case:{(Lowercase ? "lc" : "mixed")}|eff:{(EpsSmoothing ? "no" : "yes")}|nc:{CharOrder}|nw:{WordOrder}|space:{(Whitespace ? "yes" : "no")}|version:{SacreBleu.Version}";
}

/// <summary>A chrF score (0–100) with its name (<c>chrF2</c>, <c>chrF2++</c>) and sacreBLEU signature.</summary>
public sealed record ChrFScore(double Score, string Name, string Signature)
{
    /// <summary>sacreBLEU's line: <c>chrF2|nrefs:1|… = 59.73</c>.</summary>
    public override string ToString() => $"{Name}|{Signature} = {Score.ToString("F2", CultureInfo.InvariantCulture)}";
}

/// <summary>
/// chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacreBLEU 2.x computes them. Character n-grams of
/// orders 1..6 come from the segment with its whitespace removed; chrF++ adds word n-grams of orders 1..2 over
/// words split on whitespace, where a word longer than one character loses a final ASCII punctuation mark to a
/// word of its own, or else an initial one (so "(hi)" gives "(hi" and ")"). Per segment and order the statistics
/// are [hypothesis n-grams, reference n-grams, clipped matches] (hypothesis n-grams count 0 when the reference
/// has none of that order); with several references the one with the best sentence F score is kept. The corpus
/// score comes from the summed statistics.
/// </summary>
public static class ChrF
{
    private const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>Corpus chrF (chrF++ with <see cref="ChrFOptions.ChrFPlusPlus"/>) with one reference per hypothesis.</summary>
    public static ChrFScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references, ChrFOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(references);
        return Corpus(hypotheses, [references], options);
    }

    /// <summary>Corpus chrF against reference streams: <c>referenceStreams[k][i]</c> is the k-th reference of hypothesis i.</summary>
    public static ChrFScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams, ChrFOptions? options = null)
    {
        var o = options ?? ChrFOptions.Default;
        var stats = Statistics(hypotheses, referenceStreams, o);
        return new ChrFScore(FScore(Bleu.Sum(stats), o), o.Name, o.Signature(referenceStreams.Count));
    }

    /// <summary>Sentence chrF (sacreBLEU's <c>sentence_chrf</c>: the same settings as the corpus score).</summary>
    public static ChrFScore Sentence(string hypothesis, string reference, ChrFOptions? options = null) =>
        Sentence(hypothesis, [reference], options);

    /// <summary>Sentence chrF against several references of the same sentence.</summary>
    public static ChrFScore Sentence(string hypothesis, IReadOnlyList<string> references, ChrFOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0) throw new ArgumentException("Sentence chrF needs at least one reference.", nameof(references));
        return Corpus([hypothesis], references.Select(r => (IReadOnlyList<string>)[r]).ToArray(), options);
    }

    /// <summary>Per-segment statistics: one row per hypothesis of 3 · (char order + word order) counts, [hyp, ref, match] per order.</summary>
    internal static long[][] Statistics(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams, ChrFOptions o)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referenceStreams);
        ArgumentOutOfRangeException.ThrowIfNegative(o.CharOrder);
        ArgumentOutOfRangeException.ThrowIfNegative(o.WordOrder);
        if (o.Orders == 0) throw new ArgumentException("chrF needs at least one character or word n-gram order.");
        TranslationInputs.Check(hypotheses, referenceStreams);
        var rows = new long[hypotheses.Count][];
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var hyp = NGrams(hypotheses[i], o);
            long[]? best = null;
            double bestF = -1;
            foreach (var stream in referenceStreams)
            {
                var reference = NGrams(stream[i], o);
                var row = new long[3 * o.Orders];
                for (int k = 0; k < o.Orders; k++)
                {
                    long hypCount = 0, refCount = 0, match = 0;
                    foreach (var (gram, count) in hyp[k])
                    {
                        hypCount += count;
                        if (reference[k].TryGetValue(gram, out int r)) match += Math.Min(count, r);
                    }
                    foreach (int count in reference[k].Values) refCount += count;
                    row[3 * k] = reference[k].Count > 0 ? hypCount : 0;
                    row[3 * k + 1] = refCount;
                    row[3 * k + 2] = match;
                }
                double f = FScore(row, o);
                if (f > bestF) { bestF = f; best = row; }
            }
            rows[i] = best!;
        }
        return rows;
    }

    /// <summary>sacreBLEU's <c>_compute_f_score</c> on statistics laid out as <see cref="Statistics"/>'s rows (0–100).</summary>
    internal static double FScore(ReadOnlySpan<long> stats, ChrFOptions o)
    {
        const double eps = 1e-16;
        double factor = (double)o.Beta * o.Beta;
        double score = 0, avgPrecision = 0, avgRecall = 0;
        int effectiveOrder = 0;
        for (int k = 0; k < o.Orders; k++)
        {
            long nHyp = stats[3 * k], nRef = stats[3 * k + 1], nMatch = stats[3 * k + 2];
            double precision = nHyp > 0 ? (double)nMatch / nHyp : eps;
            double recall = nRef > 0 ? (double)nMatch / nRef : eps;
            double denominator = factor * precision + recall;
            score += denominator > 0 ? (1 + factor) * precision * recall / denominator : eps;
            if (nHyp > 0 && nRef > 0)
            {
                avgPrecision += precision;
                avgRecall += recall;
                effectiveOrder++;
            }
        }
        if (o.EpsSmoothing) return 100 * score / o.Orders;
        if (effectiveOrder == 0) return 0.0;
        avgPrecision /= effectiveOrder;
        avgRecall /= effectiveOrder;
        if (avgPrecision + avgRecall == 0) return 0.0;
        return 100 * (1 + factor) * avgPrecision * avgRecall / (factor * avgPrecision + avgRecall);
    }

    /// <summary>Character n-gram counts of orders 1..CharOrder, then word n-gram counts of orders 1..WordOrder.</summary>
    internal static Dictionary<string, int>[] NGrams(string segment, ChrFOptions o)
    {
        if (o.Lowercase) segment = segment.ToLowerInvariant();
        var result = new Dictionary<string, int>[o.Orders];
        string chars = o.Whitespace ? segment : PyText.RemoveSpaces(segment);
        int[] starts = PyText.CodePointStarts(chars);
        int length = starts.Length - 1;   // in code points, as Python indexes
        for (int n = 1; n <= o.CharOrder; n++)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= length; i++)
            {
                string gram = chars[starts[i]..starts[i + n]];
                counts[gram] = counts.GetValueOrDefault(gram) + 1;
            }
            result[n - 1] = counts;
        }
        if (o.WordOrder > 0)
        {
            var words = SplitPunctuation(segment);
            for (int n = 1; n <= o.WordOrder; n++)
            {
                var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                for (int i = 0; i + n <= words.Count; i++)
                {
                    string gram = string.Join(' ', words.Skip(i).Take(n));
                    counts[gram] = counts.GetValueOrDefault(gram) + 1;
                }
                result[o.CharOrder + n - 1] = counts;
            }
        }
        return result;
    }

    /// <summary>chrF++'s words: whitespace-split, a final (else an initial) ASCII punctuation mark of a longer word split off.</summary>
    internal static List<string> SplitPunctuation(string segment)
    {
        var words = new List<string>();
        foreach (string w in PyText.Split(segment))
        {
            if (PyText.CodePointStarts(w).Length == 2) words.Add(w);   // one character
            else if (Punctuation.Contains(w[^1], StringComparison.Ordinal)) { words.Add(w[..^1]); words.Add(w[^1..]); }
            else if (Punctuation.Contains(w[0], StringComparison.Ordinal)) { words.Add(w[..1]); words.Add(w[1..]); }
            else words.Add(w);
        }
        return words;
    }
}
