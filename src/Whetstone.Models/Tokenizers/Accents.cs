using System.Globalization;
using System.Text;

namespace Whetstone.Models.Tokenizers;

/// <summary>
/// BERT's accent stripping (NFD, then drop non-spacing marks) without ICU: the process runs with invariant
/// globalization, where <see cref="string.Normalize()"/> leaves text unchanged. Decompositions come from a generated
/// table (<c>Accents.Table.cs</c>), Hangul syllables from the Unicode algorithm; marks by <see cref="CharUnicodeInfo"/>.
/// </summary>
internal static partial class Accents
{
    /// <summary><paramref name="text"/> decomposed with its non-spacing marks removed.</summary>
    public static string Decompose(string text)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            int cp = CodePoint(text, i, out int width);
            string? replacement = null;
            if (cp is >= 0xAC00 and <= 0xD7A3) replacement = Hangul(cp);
            else if (Stripped.TryGetValue(cp, out var s)) replacement = s;
            else if (CharUnicodeInfo.GetUnicodeCategory(cp) == UnicodeCategory.NonSpacingMark) replacement = "";
            if (replacement is not null)
            {
                sb ??= new StringBuilder(text, 0, i, text.Length + 8);
                sb.Append(replacement);
            }
            else sb?.Append(text, i, width);
            i += width - 1;
        }
        return sb?.ToString() ?? text;
    }

    private static int CodePoint(string text, int i, out int width)
    {
        if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(text[i], text[i + 1]);
        }
        width = 1;
        return text[i];
    }

    /// <summary>A Hangul syllable as its leading consonant, vowel and optional trailing consonant jamo.</summary>
    private static string Hangul(int cp)
    {
        int s = cp - 0xAC00;
        int l = 0x1100 + s / (21 * 28), v = 0x1161 + s % (21 * 28) / 28, t = 0x11A7 + s % 28;
        return t == 0x11A7 ? $"{(char)l}{(char)v}" : $"{(char)l}{(char)v}{(char)t}";
    }
}
