using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Whetstone.Training.Data;

/// <summary>One aligned verse: its reference and its text in both languages.</summary>
public sealed record BiblePair(string Book, int Chapter, int Verse, string English, string Spanish)
{
    public string Ref => $"{Book}.{Chapter}.{Verse}";
}

/// <summary>
/// The aligned verses and what was dropped, per reason (each verse counted once, in this order):
/// <list type="bullet">
/// <item><see cref="OnlyInEnglish"/>/<see cref="OnlyInSpanish"/>: a reference of one module's versification that the
/// other's has not (the WEB's NRSVA deuterocanon, 3 John 1:15 and Revelation 12:18 against the KJV of RV1909);</item>
/// <item><see cref="EmptyInEnglish"/>, <see cref="EmptyInSpanish"/>, <see cref="EmptyInBoth"/>: no text (a verse the
/// translation omits or merged into its neighbour);</item>
/// <item><see cref="MisalignedRuns"/> (verses: <see cref="InMisalignedRuns"/>): chapters, or the ends of chapters,
/// whose source numbered its verses differently, so the module holds them shifted (RV1909's Numbers 13: its 13:1 is
/// KJV 12:16; its 1 Kings 22 from verse 43 on), as "Book.Chapter.First-Last";</item>
/// <item><see cref="LengthMismatch"/>: a pair one side of which is over 2.5 times as long as the other (a verse that
/// carries its neighbour's text, an epistle's subscription).</item>
/// </list>
/// </summary>
public sealed record BiblePairsResult(
    IReadOnlyList<BiblePair> Pairs,
    int OnlyInEnglish,
    int OnlyInSpanish,
    int EmptyInEnglish,
    int EmptyInSpanish,
    int EmptyInBoth,
    IReadOnlyList<string> MisalignedRuns,
    int InMisalignedRuns,
    int LengthMismatch)
{
    public int Dropped => OnlyInEnglish + OnlyInSpanish + EmptyInEnglish + EmptyInSpanish + EmptyInBoth + InMisalignedRuns + LengthMismatch;
}

/// <summary>Train / validation / test pairs, split by whole books (see <see cref="BiblePairs.Split"/>).</summary>
public sealed record BibleSplit(IReadOnlyList<BiblePair> Train, IReadOnlyList<BiblePair> Validation, IReadOnlyList<BiblePair> Test);

/// <summary>
/// English–Spanish translation pairs from two SWORD Bible modules (Debian's <c>sword-text-web</c>, World English
/// Bible, and <c>sword-text-sparv</c>, Reina-Valera 1909: assets <c>bible_web</c>, <c>bible_sparv</c>), aligned by
/// verse reference (book, chapter, verse). Held-out sets are whole books so no chapter of a test book is seen in
/// training.
/// </summary>
public static class BiblePairs
{
    /// <summary>Test books: small books from both testaments and several genres (narrative, poetry, prophecy,
    /// gospel-era letters), 539 verses in KJV.</summary>
    public static IReadOnlyList<string> TestBooks { get; } = ["Ruth", "Lam", "Joel", "Jonah", "Titus", "Phlm", "Jas"];

    /// <summary>Validation books, 239 verses in KJV.</summary>
    public static IReadOnlyList<string> ValidationBooks { get; } = ["Obad", "Nah", "Hag", "Col", "2John", "Jude"];

    /// <summary>
    /// Aligns two modules verse by verse. Each argument is a module's .conf or a SWORD folder holding <c>mods.d/</c>
    /// (e.g. <c>Assets.Root("bible_web")</c>). Pairs come in the English module's book order.
    /// </summary>
    public static BiblePairsResult Align(string englishModuleDir, string spanishModuleDir) =>
        Align(SwordModule.Open(englishModuleDir), SwordModule.Open(spanishModuleDir));

    public static BiblePairsResult Align(SwordModule english, SwordModule spanish)
    {
        int onlyEn = 0, emptyEn = 0, emptyEs = 0, emptyBoth = 0, matched = 0;
        var es = spanish.Verses().ToDictionary(v => (v.Book, v.Chapter, v.Verse), v => v.Text);
        var candidates = new List<BiblePair>();
        foreach (var v in english.Verses())
        {
            if (!es.TryGetValue((v.Book, v.Chapter, v.Verse), out var target)) { onlyEn++; continue; }
            matched++;
            bool e = v.Text.Length == 0, s = target.Length == 0;
            if (e && s) emptyBoth++;
            else if (e) emptyEn++;
            else if (s) emptyEs++;
            else candidates.Add(new BiblePair(v.Book, v.Chapter, v.Verse, v.Text, target));
        }
        var shifted = ShiftedRuns(candidates);
        var pairs = new List<BiblePair>(candidates.Count);
        int inShifted = 0, lengthMismatch = 0;
        foreach (var p in candidates)
        {
            if (shifted.TryGetValue((p.Book, p.Chapter), out int from) && p.Verse >= from) inShifted++;
            else if (Math.Max(p.English.Length, p.Spanish.Length) > MaxLengthRatio * Math.Min(p.English.Length, p.Spanish.Length)) lengthMismatch++;
            else pairs.Add(p);
        }
        var runs = candidates.GroupBy(p => (p.Book, p.Chapter)).Where(c => shifted.ContainsKey(c.Key))
            .Select(c => $"{c.Key.Book}.{c.Key.Chapter}.{shifted[c.Key]}-{c.Max(p => p.Verse)}").ToArray();
        return new BiblePairsResult(pairs, onlyEn, es.Count - matched, emptyEn, emptyEs, emptyBoth, runs, inShifted, lengthMismatch);
    }

    private const double MaxLengthRatio = 2.5;
    private static readonly int[] Shifts = [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5];

    /// <summary>
    /// Runs of verses whose lengths fit the other side markedly better shifted by 1 to 5 verses than as numbered.
    /// A pair's cost is |log(Spanish length / English length) − μ| (μ the mean over all pairs); per chapter and per
    /// suffix (the verses from some verse on) the mean cost as numbered (cost₀) is compared with the mean cost with
    /// the Spanish side shifted by s ∈ ±{1, …, 5} (costₛ). A whole chapter (3 or more pairs) is shifted when
    /// cost₀ &gt; 0.2 and costₛ &lt; 0.8·cost₀; a chapter's end (4 or more pairs), when cost₀ &gt; 0.25 and
    /// costₛ &lt; 0.6·cost₀ (of those the one saving the most in total, (cost₀ − costₛ)·pairs; a shifted whole chapter
    /// is dropped whole).
    /// Aligned chapters cost about 0.1–0.16 as numbered; RV1909's shifted ones 0.25–0.52, and a quarter to four
    /// fifths of that shifted. Returns, per chapter, the first verse of its shifted run.
    /// </summary>
    private static Dictionary<(string Book, int Chapter), int> ShiftedRuns(IReadOnlyList<BiblePair> pairs)
    {
        var shifted = new Dictionary<(string, int), int>();
        if (pairs.Count == 0) return shifted;
        double mu = pairs.Average(p => Math.Log((p.Spanish.Length + 1.0) / (p.English.Length + 1.0)));
        foreach (var chapter in pairs.GroupBy(p => (p.Book, p.Chapter)))
        {
            var verses = chapter.OrderBy(p => p.Verse).ToArray();
            var es = chapter.ToDictionary(p => p.Verse, p => p.Spanish.Length);
            if (verses.Length < 3) continue;
            double Cost(int le, int ls) => Math.Abs(Math.Log((ls + 1.0) / (le + 1.0)) - mu);
            double bestGain = 0;
            int bestFrom = -1;
            for (int k = 0; k <= verses.Length - 3; k++)
            {
                int n = verses.Length - k;
                bool whole = k == 0;
                if (!whole && n < 4) break;
                double c0 = 0;
                for (int i = k; i < verses.Length; i++) c0 += Cost(verses[i].English.Length, verses[i].Spanish.Length);
                c0 /= n;
                if (c0 <= (whole ? 0.2 : 0.25)) continue;
                foreach (int s in Shifts)
                {
                    double cs = 0;
                    int m = 0;
                    for (int i = k; i < verses.Length; i++)
                        if (es.TryGetValue(verses[i].Verse + s, out int ls)) { cs += Cost(verses[i].English.Length, ls); m++; }
                    if (m < 2) continue;
                    cs /= m;
                    double gain = (c0 - cs) * n;
                    if (cs < (whole ? 0.8 : 0.6) * c0 && gain > bestGain) (bestGain, bestFrom) = (gain, verses[k].Verse);
                }
                if (whole && bestFrom >= 0) break;   // the whole chapter is shifted: no need to look for where
            }
            if (bestFrom >= 0) shifted[chapter.Key] = bestFrom;
        }
        return shifted;
    }

    /// <summary>
    /// Splits pairs by book: those of <paramref name="testBooks"/> (default <see cref="TestBooks"/>) to test, of
    /// <paramref name="validationBooks"/> (default <see cref="ValidationBooks"/>; pass [] for none) to validation,
    /// the rest to training. Order within each set is kept.
    /// </summary>
    public static BibleSplit Split(IEnumerable<BiblePair> pairs, IEnumerable<string>? testBooks = null, IEnumerable<string>? validationBooks = null)
    {
        var test = new HashSet<string>(testBooks ?? TestBooks, StringComparer.OrdinalIgnoreCase);
        var validation = new HashSet<string>(validationBooks ?? ValidationBooks, StringComparer.OrdinalIgnoreCase);
        var both = test.Intersect(validation, StringComparer.OrdinalIgnoreCase).ToArray();
        if (both.Length > 0) throw new ArgumentException($"Books in both the test and validation sets: {string.Join(", ", both)}.");
        List<BiblePair> tr = [], va = [], te = [];
        foreach (var p in pairs) (test.Contains(p.Book) ? te : validation.Contains(p.Book) ? va : tr).Add(p);
        return new BibleSplit(tr, va, te);
    }

    /// <summary>Writes a TSV with header <c>ref	source	target</c> (no quoting: verse text has no tabs or line
    /// breaks). Source is English unless <paramref name="spanishToEnglish"/>.</summary>
    public static void WriteTsv(string path, IEnumerable<BiblePair> pairs, bool spanishToEnglish = false)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false));
        w.NewLine = "\n";
        w.WriteLine("ref\tsource\ttarget");
        foreach (var p in pairs)
        {
            var (src, tgt) = spanishToEnglish ? (p.Spanish, p.English) : (p.English, p.Spanish);
            if (src.AsSpan().IndexOfAny('\t', '\n', '\r') >= 0 || tgt.AsSpan().IndexOfAny('\t', '\n', '\r') >= 0)
                throw new ArgumentException($"{p.Ref}: text holds a tab or line break, which TSV cannot carry; write JSONL instead.");
            w.WriteLine($"{p.Ref}\t{src}\t{tgt}");
        }
    }

    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes JSON lines <c>{"ref": "Gen.1.1", "source": …, "target": …}</c>.</summary>
    public static void WriteJsonl(string path, IEnumerable<BiblePair> pairs, bool spanishToEnglish = false)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false));
        w.NewLine = "\n";
        foreach (var p in pairs)
        {
            var (src, tgt) = spanishToEnglish ? (p.Spanish, p.English) : (p.English, p.Spanish);
            w.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["ref"] = p.Ref, ["source"] = src, ["target"] = tgt }, Json));
        }
    }
}
