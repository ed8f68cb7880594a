using System.Text;

namespace Whetstone.Models.WordVectors;

/// <summary>
/// The tokenizer that fits GloVe-style vocabularies: lower-case, words are runs of letters and digits (an apostrophe
/// inside a word is kept), everything else separates. A word with an apostrophe that the vocabulary lacks is split as
/// GloVe's Stanford tokenization would: <c>don't</c> → <c>do not</c>, <c>can't</c> → <c>can not</c>,
/// <c>it's</c> → <c>it 's</c> → <c>it</c> (clitics the vocabulary lacks are dropped; <c>'re/'ve/'ll/'m/'d</c> become
/// are/have/will/am/would).
/// </summary>
public static class WordTokenizer
{
    /// <summary>The words of <paramref name="text"/>, in order.</summary>
    public static List<string> Words(string text, Func<string, bool>? known = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        var sb = new StringBuilder();
        for (int i = 0; i <= text.Length; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            bool inWord = char.IsLetterOrDigit(c) || ((c == '\'' || c == '’') && sb.Length > 0 && i + 1 < text.Length && char.IsLetterOrDigit(text[i + 1]));
            if (inWord) { sb.Append(c == '’' ? '\'' : char.ToLowerInvariant(c)); continue; }
            if (sb.Length > 0) { Add(sb.ToString(), words, known); sb.Clear(); }
        }
        return words;
    }

    private static void Add(string word, List<string> words, Func<string, bool>? known)
    {
        int apo = word.IndexOf('\'', StringComparison.Ordinal);
        if (apo < 0 || (known is not null && known(word))) { words.Add(word); return; }
        if (word.EndsWith("n't", StringComparison.Ordinal) && word.Length > 3)
        {
            var stem = word[..^3];
            words.Add(stem switch { "ca" => "can", "wo" => "will", "sha" => "shall", _ => stem });
            words.Add("not");
            return;
        }
        var head = word[..apo];
        var clitic = word[(apo + 1)..];
        if (head.Length > 0) words.Add(head);
        string? expanded = clitic switch { "re" => "are", "ve" => "have", "ll" => "will", "m" => "am", "d" => "would", "s" or "t" => null, _ => clitic };
        if (expanded is not null) words.AddRange(expanded.Split('\'', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Row ids of <paramref name="text"/>'s words in <paramref name="vectors"/> (unknown → <see cref="WordVectors.UnkId"/>), at most <paramref name="maxLength"/>.</summary>
    public static int[] Encode(WordVectors vectors, string text, int maxLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        var words = Words(text, vectors.Contains);
        int n = Math.Min(words.Count, maxLength);
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = vectors.Id(words[i]);
        return ids;
    }
}
