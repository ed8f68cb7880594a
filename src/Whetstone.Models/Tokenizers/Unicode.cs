using System.Globalization;

namespace Whetstone.Models.Tokenizers;

/// <summary>Code-point level helpers for the tokenizer pipelines (the process runs with invariant globalization).</summary>
internal static partial class Unicode
{
    /// <summary>
    /// <paramref name="text"/> with every character outside the BMP (a surrogate pair) replaced by one BMP character of
    /// the same Unicode category, so a .NET regex sees one character per code point, as the Rust regex engine of the
    /// tokenizers library does (an emoji then cannot be cut in half, and an astral letter is a letter).
    /// <paramref name="toText"/> maps each index of the result (and its length) to the index in <paramref name="text"/>;
    /// null when the text has no surrogate pair and is returned as is.
    /// </summary>
    public static string CodePointShadow(string text, out int[]? toText)
    {
        toText = null;
        int first = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDBFF');
        if (first < 0) return text;
        var chars = new char[text.Length];
        var map = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                chars[n++] = StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1])));
                i++;
            }
            else chars[n++] = text[i];
        }
        map[n] = text.Length;
        toText = map;
        return new string(chars, 0, n);
    }

    private static char StandIn(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter => 'A',
        UnicodeCategory.LowercaseLetter => 'a',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '0',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '_',
        UnicodeCategory.DashPunctuation => '-',
        UnicodeCategory.OpenPunctuation => '(',
        UnicodeCategory.ClosePunctuation => ')',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '!',
        UnicodeCategory.MathSymbol => '+',
        UnicodeCategory.CurrencySymbol => '$',
        UnicodeCategory.ModifierSymbol => '^',
        UnicodeCategory.OtherSymbol => '\u00A9',
        UnicodeCategory.Format => '\u200B',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\uFFFF',
    };

    // ------------------------------------------------------------------ NFC (tables in Unicode.Nfc.cs)

    private static readonly Lazy<(Dictionary<int, int[]> Nfd, Dictionary<int, int> Ccc, Dictionary<long, int> Compose)> Nfc = new(() =>
    {
        var nfd = new Dictionary<int, int[]>();
        for (int i = 0; i < NfdData.Length; i += 2 + NfdData[i + 1]) nfd[NfdData[i]] = NfdData.AsSpan(i + 2, NfdData[i + 1]).ToArray();
        var ccc = new Dictionary<int, int>();
        for (int i = 0; i < CccData.Length; i += 2) ccc[CccData[i]] = CccData[i + 1];
        var compose = new Dictionary<long, int>();
        for (int i = 0; i < CompositionData.Length; i += 3) compose[((long)CompositionData[i] << 21) | (uint)CompositionData[i + 1]] = CompositionData[i + 2];
        return (nfd, ccc, compose);
    });

    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    /// <summary>Unicode Normalization Form C: canonical decomposition, canonical ordering, canonical composition.</summary>
    public static string ToNfc(string text)
    {
        // below U+0300 every character is NFC and none composes with a later one (marks and jamo lie above)
        if (text.AsSpan().IndexOfAnyExceptInRange('\0', '\u02FF') < 0) return text;
        var (nfd, cccOf, compose) = Nfc.Value;
        int Ccc(int cp) => cccOf.TryGetValue(cp, out int k) ? k : 0;
        var cps = new List<int>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? char.ConvertToUtf32(text[i], text[++i]) : text[i];
            if (cp is >= SBase and < SBase + SCount)
            {
                int s = cp - SBase;
                cps.Add(LBase + s / NCount);
                cps.Add(VBase + s % NCount / TCount);
                if (s % TCount != 0) cps.Add(TBase + s % TCount);
            }
            else if (nfd.TryGetValue(cp, out var d)) cps.AddRange(d);
            else cps.Add(cp);
        }
        // canonical ordering: a stable sort of each run of marks by combining class
        for (int i = 1; i < cps.Count; i++)
        {
            int k = Ccc(cps[i]);
            if (k == 0) continue;
            for (int j = i; j > 0 && Ccc(cps[j - 1]) > k; j--) (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
        }
        // canonical composition
        var result = new List<int>(cps.Count);
        int starter = -1, lastCcc = 0;
        foreach (int cp in cps)
        {
            int k = Ccc(cp);
            if (starter >= 0)
            {
                int st = result[starter];
                bool blocked = result.Count - 1 > starter && (lastCcc == 0 || lastCcc >= k);
                if (!blocked)
                {
                    if (st is >= LBase and < LBase + LCount && cp is >= VBase and < VBase + VCount && result.Count - 1 == starter)
                    { result[starter] = SBase + ((st - LBase) * VCount + (cp - VBase)) * TCount; continue; }
                    if (st is >= SBase and < SBase + SCount && (st - SBase) % TCount == 0 && cp is > TBase and < TBase + TCount && result.Count - 1 == starter)
                    { result[starter] = st + (cp - TBase); continue; }
                    if (compose.TryGetValue(((long)st << 21) | (uint)cp, out int composite)) { result[starter] = composite; continue; }
                }
            }
            if (k == 0) { starter = result.Count; lastCcc = 0; }
            else lastCcc = k;
            result.Add(cp);
        }
        var sb = new System.Text.StringBuilder(result.Count + 4);
        foreach (int cp in result)
        {
            if (cp >= 0x10000) sb.Append(char.ConvertFromUtf32(cp));
            else sb.Append((char)cp);
        }
        return sb.ToString();
    }
}
