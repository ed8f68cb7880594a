using System.Buffers;

namespace Whetstone.Models.Tokenizers;

/// <summary>
/// A token that the tokenizer matches in the text before the model runs (tokenizer.json <c>added_tokens</c>,
/// tokenizer_config.json <c>added_tokens_decoder</c>): chat markers such as <c>&lt;|im_end|&gt;</c>, BOS/EOS.
/// </summary>
/// <param name="Special">a special token: left out by decoding with skipSpecialTokens, and matched in text only when asked</param>
/// <param name="LStrip">the match takes the whitespace before it</param>
/// <param name="RStrip">the match takes the whitespace after it</param>
/// <param name="SingleWord">matched only when not inside a word</param>
public sealed record DecoderAddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false);

/// <summary>Splits text into runs of plain text and added tokens (leftmost match, longest first, as the tokenizers library does).</summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<string, DecoderAddedToken> _byContent;
    private readonly SearchValues<string>? _all;
    private readonly SearchValues<string>? _nonSpecial;
    private readonly int _maxLength;

    public AddedTokenSplitter(IEnumerable<DecoderAddedToken> tokens)
    {
        _byContent = new Dictionary<string, DecoderAddedToken>(StringComparer.Ordinal);
        foreach (var t in tokens)
            if (t.Content.Length > 0) _byContent[t.Content] = t;
        _maxLength = _byContent.Count == 0 ? 0 : _byContent.Keys.Max(k => k.Length);
        if (_byContent.Count > 0) _all = SearchValues.Create(_byContent.Keys.ToArray(), StringComparison.Ordinal);
        var plain = _byContent.Values.Where(t => !t.Special).Select(t => t.Content).ToArray();
        if (plain.Length > 0) _nonSpecial = SearchValues.Create(plain, StringComparison.Ordinal);
    }

    /// <summary>One run: an added token (<paramref name="Token"/> set) or plain text from <paramref name="Start"/>.</summary>
    public readonly record struct Run(DecoderAddedToken? Token, string? Text, int Start);

    public IEnumerable<Run> Split(string text, bool matchSpecial)
    {
        var search = matchSpecial ? _all : _nonSpecial;
        if (search is null) { if (text.Length > 0) yield return new Run(null, text, 0); yield break; }
        int plainStart = 0, from = 0;
        while (from < text.Length)
        {
            int rel = text.AsSpan(from).IndexOfAny(search);
            if (rel < 0) break;
            int at = from + rel;
            var token = Longest(text, at, matchSpecial);
            if (token is null || (token.SingleWord && !IsWordBoundary(text, at, at + token.Content.Length))) { from = at + 1; continue; }
            int start = at, end = at + token.Content.Length;
            if (token.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > plainStart) yield return new Run(null, text[plainStart..start], plainStart);
            yield return new Run(token, null, start);
            plainStart = from = end;
        }
        if (plainStart < text.Length) yield return new Run(null, text[plainStart..], plainStart);
    }

    private DecoderAddedToken? Longest(string text, int at, bool matchSpecial)
    {
        var lookup = _byContent.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int len = Math.Min(_maxLength, text.Length - at); len > 0; len--)
            if (lookup.TryGetValue(text.AsSpan(at, len), out var t) && (matchSpecial || !t.Special))
                return t;
        return null;
    }

    private static bool IsWordBoundary(string text, int start, int end) =>
        (start == 0 || !IsWordChar(text[start - 1])) && (end == text.Length || !IsWordChar(text[end]));

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
