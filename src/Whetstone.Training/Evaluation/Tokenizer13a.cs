using System.Text;
using System.Text.RegularExpressions;

namespace Whetstone.Training.Evaluation;

/// <summary>
/// sacreBLEU's <c>13a</c> tokenizer: the tokenization of mteval-v13a.pl, used by WMT. In order: drop
/// <c>&lt;skipped&gt;</c>, join <c>-\n</c> hyphenations, turn the remaining newlines into spaces, unescape
/// <c>&amp;quot; &amp;amp; &amp;lt; &amp;gt;</c> (in that order, so <c>&amp;amp;lt;</c> becomes <c>&lt;</c>), pad with one
/// space on each side, then four substitutions — every symbol in <c>{|}~ [\]^_` space!"#$%&amp; ()*+ :;&lt;=&gt;?@ /</c>
/// gets spaces around it; a period or comma gets spaces unless preceded by a digit, and unless followed by one;
/// a dash after a digit gets spaces — and finally whitespace runs collapse to one space, none at the ends.
/// </summary>
internal static class Tokenizer13a
{
    // The four substitutions, applied in order to the whole line (leftmost, non-overlapping, as Python's re.sub).
    private static readonly (Regex Pattern, string Replacement)[] Rules =
    [
        (new Regex(@"([{-~\[-` -&(-+:-@/])", RegexOptions.CultureInvariant | RegexOptions.Compiled), " ${1} "),
        (new Regex(@"([^0-9])([.,])", RegexOptions.CultureInvariant | RegexOptions.Compiled), "${1} ${2} "),
        (new Regex(@"([.,])([^0-9])", RegexOptions.CultureInvariant | RegexOptions.Compiled), " ${1} ${2}"),
        (new Regex(@"([0-9])(-)", RegexOptions.CultureInvariant | RegexOptions.Compiled), "${1} ${2} "),
    ];

    public static string Tokenize(string line)
    {
        line = line.Replace("<skipped>", "", StringComparison.Ordinal)
                   .Replace("-\n", "", StringComparison.Ordinal)
                   .Replace("\n", " ", StringComparison.Ordinal);
        if (line.Contains('&', StringComparison.Ordinal))
            line = line.Replace("&quot;", "\"", StringComparison.Ordinal)
                       .Replace("&amp;", "&", StringComparison.Ordinal)
                       .Replace("&lt;", "<", StringComparison.Ordinal)
                       .Replace("&gt;", ">", StringComparison.Ordinal);
        line = " " + line + " ";
        foreach (var (pattern, replacement) in Rules) line = pattern.Replace(line, replacement);
        return string.Join(' ', PyText.Split(line));
    }
}

/// <summary>Python's string whitespace rules, which sacreBLEU's <c>str.split()</c>, <c>rstrip()</c> and <c>''.join(line.split())</c> follow.</summary>
internal static class PyText
{
    /// <summary><c>str.isspace</c> for one UTF-16 unit: .NET's white space plus U+001C–U+001F, which Python also counts.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary><c>str.split()</c> with no argument: the non-empty runs between whitespace.</summary>
    public static List<string> Split(string s)
    {
        var words = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsSpace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsSpace(s[i])) i++;
            if (i > start) words.Add(s[start..i]);
        }
        return words;
    }

    /// <summary><c>str.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(s[end - 1])) end--;
        return end == s.Length ? s : s[..end];
    }

    /// <summary><c>''.join(s.split())</c>: the string with every whitespace character removed.</summary>
    public static string RemoveSpaces(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (char c in s) if (!IsSpace(c)) b.Append(c);
        return b.ToString();
    }

    /// <summary>
    /// Start offsets of the code points of <paramref name="s"/> plus its length at the end, so that the k-th Python
    /// character is <c>s[starts[k]..starts[k + 1]]</c> (a surrogate pair is one character, as in Python).
    /// </summary>
    public static int[] CodePointStarts(string s)
    {
        var starts = new List<int>(s.Length + 1);
        for (int i = 0; i < s.Length; i++)
        {
            starts.Add(i);
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        starts.Add(s.Length);
        return [.. starts];
    }
}
