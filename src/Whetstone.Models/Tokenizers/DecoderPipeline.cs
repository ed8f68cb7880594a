using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Whetstone.Models.Tokenizers;

// The parts of a tokenizers-library pipeline that run on the text between added tokens: normalizers, pre-tokenizers
// and the BPE model (over Microsoft.ML.Tokenizers' BpeTokenizer). Each is built from tokenizer.json by
// TokenizerJsonReader, or directly for vocab.json + merges.txt.

/// <summary>A piece of a segment on its way to the model, with where it starts in the input text.</summary>
internal readonly record struct Piece(string Text, int Start);

/// <summary>Turns the text of one segment (no added tokens in it) into ids.</summary>
internal abstract class SegmentEncoder
{
    /// <param name="segment">the text</param>
    /// <param name="start">where it starts in the input (0 for the first segment: "prepend only at the start" rules)</param>
    public abstract void Encode(string segment, int start, List<int> ids);
}

/// <summary>A normalizer: text → text.</summary>
internal abstract class TextNormalizer
{
    public abstract string Apply(string text);

    public sealed class Sequence(IReadOnlyList<TextNormalizer> parts) : TextNormalizer
    {
        public override string Apply(string text) { foreach (var p in parts) text = p.Apply(text); return text; }
    }

    /// <summary>Prepends a string to a non-empty text (Llama-2's "▁").</summary>
    public sealed class Prepend(string prefix) : TextNormalizer
    {
        public override string Apply(string text) => text.Length == 0 ? text : prefix + text;
    }

    public sealed class Replace(Regex pattern, string content) : TextNormalizer
    {
        public override string Apply(string text) => pattern.Replace(text, content.Replace("$", "$$", StringComparison.Ordinal));
    }

    public sealed class Lowercase : TextNormalizer
    {
        public override string Apply(string text) => text.ToLowerInvariant();
    }

    public sealed class Nfc : TextNormalizer
    {
        public override string Apply(string text) => Unicode.ToNfc(text);
    }
}

/// <summary>A pre-tokenizer step: rewrites the list of pieces.</summary>
internal abstract class PreTokenizerStep
{
    public abstract void Apply(List<Piece> pieces);

    /// <summary>How the pieces a pattern matches and the gaps between them become pieces (tokenizers' SplitDelimiterBehavior).</summary>
    public enum SplitBehavior { Isolated, Removed, MergedWithPrevious, MergedWithNext }

    /// <summary>Splits every piece by a pattern (tokenizers' Split; also ByteLevel's regex and Digits).</summary>
    public sealed class Split(Regex pattern, SplitBehavior behavior, bool invert) : PreTokenizerStep
    {
        public override void Apply(List<Piece> pieces)
        {
            var result = new List<Piece>(pieces.Count * 4);
            foreach (var p in pieces) SplitOne(p, result);
            pieces.Clear();
            pieces.AddRange(result);
        }

        private void SplitOne(Piece piece, List<Piece> output)
        {
            string text = piece.Text;
            // spans covering the piece: (start, length, matched)
            var spans = new List<(int Start, int Length, bool Match)>();
            int at = 0;
            // the pattern runs over code points (as the tokenizers library's regex engine does): a character outside
            // the BMP is matched as one stand-in character of its Unicode category
            var shadow = Unicode.CodePointShadow(text, out var toText);
            for (var m = pattern.Match(shadow); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0) continue;
                int from = toText is null ? m.Index : toText[m.Index], to = toText is null ? m.Index + m.Length : toText[m.Index + m.Length];
                if (from > at) spans.Add((at, from - at, invert));
                spans.Add((from, to - from, !invert));
                at = to;
            }
            if (at < text.Length) spans.Add((at, text.Length - at, invert));
            Piece Of(int start, int length) => new(text.Substring(start, length), piece.Start + start);
            switch (behavior)
            {
                case SplitBehavior.Isolated:
                    foreach (var s in spans) output.Add(Of(s.Start, s.Length));
                    break;
                case SplitBehavior.Removed:
                    foreach (var s in spans) if (!s.Match) output.Add(Of(s.Start, s.Length));
                    break;
                case SplitBehavior.MergedWithPrevious:
                {
                    // a match joins the piece before it, unless that piece ended with a match itself
                    int start = -1, end = 0;
                    bool previousMatch = false;
                    foreach (var s in spans)
                    {
                        if (s.Match && start >= 0 && !previousMatch) { end = s.Start + s.Length; previousMatch = true; continue; }
                        if (start >= 0) output.Add(Of(start, end - start));
                        (start, end, previousMatch) = (s.Start, s.Start + s.Length, s.Match);
                    }
                    if (start >= 0) output.Add(Of(start, end - start));
                    break;
                }
                case SplitBehavior.MergedWithNext:
                {
                    // a match starts a piece that takes the gap after it
                    int start = -1, end = 0;
                    foreach (var s in spans)
                    {
                        if (s.Match)
                        {
                            if (start >= 0) output.Add(Of(start, end - start));
                            (start, end) = (s.Start, s.Start + s.Length);
                        }
                        else if (start >= 0) { output.Add(Of(start, s.Start + s.Length - start)); start = -1; }
                        else output.Add(Of(s.Start, s.Length));
                    }
                    if (start >= 0) output.Add(Of(start, end - start));
                    break;
                }
            }
        }
    }

    /// <summary>GPT-2's ByteLevel pre-tokenizer: optional prefix space, the GPT-2 split pattern, then the byte alphabet.</summary>
    public sealed class ByteLevel(bool addPrefixSpace, bool useRegex) : PreTokenizerStep
    {
        /// <summary>GPT-2's pattern (contractions, letter runs, digit runs, other symbols, each with one leading space; whitespace runs).</summary>
        public static readonly Regex Gpt2Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
            RegexOptions.Compiled | RegexOptions.CultureInvariant);
        private static readonly Split Gpt2Split = new(Gpt2Pattern, SplitBehavior.Isolated, false);

        public override void Apply(List<Piece> pieces)
        {
            if (addPrefixSpace)
                for (int i = 0; i < pieces.Count; i++)
                    if (!pieces[i].Text.StartsWith(' ')) pieces[i] = pieces[i] with { Text = " " + pieces[i].Text };
            if (useRegex) Gpt2Split.Apply(pieces);
            for (int i = 0; i < pieces.Count; i++) pieces[i] = pieces[i] with { Text = ByteLevelAlphabet.Map(pieces[i].Text) };
        }
    }

    /// <summary>SentencePiece-style Metaspace: spaces become '▁', a '▁' is prepended (always, or to the input's first piece), optionally split before each '▁'.</summary>
    public sealed class Metaspace(char replacement, MetaspacePrepend prepend, bool split) : PreTokenizerStep
    {
        private readonly Split _split = new(new Regex(Regex.Escape(replacement.ToString()), RegexOptions.CultureInvariant), SplitBehavior.MergedWithNext, false);

        public override void Apply(List<Piece> pieces)
        {
            for (int i = 0; i < pieces.Count; i++)
            {
                var t = pieces[i].Text.Replace(' ', replacement);
                bool add = prepend == MetaspacePrepend.Always || (prepend == MetaspacePrepend.First && pieces[i].Start == 0);
                if (add && t.Length > 0 && t[0] != replacement) t = replacement + t;
                pieces[i] = pieces[i] with { Text = t };
            }
            if (split) _split.Apply(pieces);
        }
    }

    public enum MetaspacePrepend { Always, First, Never }

    public sealed class Sequence(IReadOnlyList<PreTokenizerStep> steps) : PreTokenizerStep
    {
        public override void Apply(List<Piece> pieces) { foreach (var s in steps) s.Apply(pieces); }
    }
}

/// <summary>A pre-tokenizer that leaves a text whole: the pipeline splits before Microsoft.ML.Tokenizers' BPE runs.</summary>
internal sealed class WholeTextPreTokenizer : PreTokenizer
{
    public static readonly WholeTextPreTokenizer Instance = new();
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => text.IsEmpty ? [] : [(0, text.Length)];
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => string.IsNullOrEmpty(text) ? [] : [(0, text.Length)];
}

/// <summary>
/// tokenizers' BPE model over Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>: normalizers and pre-tokenizers
/// first, then each piece through BPE; with <c>ignore_merges</c> a piece that is a vocabulary entry is taken whole
/// (Llama-3), and with <c>byte_fallback</c> characters outside the vocabulary become their UTF-8 bytes as
/// <c>&lt;0xNN&gt;</c> tokens (Llama-2, Mistral).
/// </summary>
internal sealed class BpeSegmentEncoder : SegmentEncoder
{
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizerStep? _preTokenizer;
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly bool _ignoreMerges;
    private readonly bool _byteFallback;
    private readonly string? _unkToken;
    private readonly int _unkId = -1;
    private readonly bool _fuseUnk;
    private readonly int[]? _byteIds;   // <0xNN> → id, when every byte token exists
    private readonly char _wordStart;     // '▁' where no vocabulary entry has one after another character, else '\0'

    public BpeSegmentEncoder(Dictionary<string, int> vocab, IReadOnlyList<string> merges, TextNormalizer? normalizer, PreTokenizerStep? preTokenizer,
        string? unkToken, bool byteFallback, bool ignoreMerges, bool fuseUnk, string? continuingSubwordPrefix, string? endOfWordSuffix,
        char? wordStart = null)
    {
        _vocab = vocab;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _byteFallback = byteFallback;
        _fuseUnk = fuseUnk;
        if (unkToken is not null && vocab.TryGetValue(unkToken, out int u)) { _unkToken = unkToken; _unkId = u; }
        if (byteFallback)
        {
            var ids = new int[256];
            bool all = true;
            for (int b = 0; b < 256 && all; b++) all = vocab.TryGetValue($"<0x{b:X2}>", out ids[b]);
            _byteIds = all ? ids : null;
        }
        // SentencePiece-style models without a pre-tokenizer hand BPE the whole text as one word, and BPE over one long
        // word costs quadratic time in Microsoft.ML.Tokenizers. When no vocabulary entry holds the word-start mark after
        // another character, no merge can cross the place before a mark that follows a character, so BPE over the
        // pieces cut there gives the same ids (merges in separate pieces do not interact).
        // (The mark must be a token itself, or an unknown mark could fuse with an unknown character before it.)
        if (wordStart is char w && vocab.ContainsKey(w.ToString()) && !vocab.Keys.Any(k => HasMarkAfterOther(k, w))) _wordStart = w;
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            PreTokenizer = WholeTextPreTokenizer.Instance,
            UnknownToken = _unkToken,
            FuseUnknownTokens = false,
            ContinuingSubwordPrefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix,
            EndOfWordSuffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix,
        });
    }

    public override void Encode(string segment, int start, List<int> ids)
    {
        var text = _normalizer?.Apply(segment) ?? segment;
        if (text.Length == 0) return;
        var pieces = new List<Piece> { new(text, start) };
        _preTokenizer?.Apply(pieces);
        foreach (var p in pieces) EncodePiece(p.Text, ids);
    }

    private static bool HasMarkAfterOther(string token, char mark)
    {
        for (int i = 1; i < token.Length; i++)
            if (token[i] == mark && token[i - 1] != mark) return true;
        return false;
    }

    private void EncodePiece(string piece, List<int> ids)
    {
        if (piece.Length == 0) return;
        if (_wordStart != '\0' && piece.Length > 64)
        {
            int from = 0;
            for (int i = 1; i < piece.Length; i++)
                if (piece[i] == _wordStart && piece[i - 1] != _wordStart) { EncodeWord(piece[from..i], ids); from = i; }
            EncodeWord(piece[from..], ids);
            return;
        }
        EncodeWord(piece, ids);
    }

    private void EncodeWord(string piece, List<int> ids)
    {
        if (_ignoreMerges && _vocab.TryGetValue(piece, out int whole)) { ids.Add(whole); return; }
        if (_unkToken is null) { ids.AddRange(_bpe.EncodeToIds(piece)); return; }
        // characters outside the vocabulary come back as <unk> covering them: bytes (byte_fallback) or one <unk> each
        // (consecutive ones fused when fuse_unk)
        var tokens = _bpe.EncodeToTokens(piece, out _);
        bool lastWasUnk = false;
        foreach (var t in tokens)
        {
            var (from, to) = (t.Offset.Start.Value, t.Offset.End.Value);
            bool unknown = t.Id == _unkId && piece.AsSpan(from, to - from).SequenceCompareTo(_unkToken) != 0;
            if (!unknown) { ids.Add(t.Id); lastWasUnk = false; continue; }
            if (_byteFallback && _byteIds is not null)
            {
                foreach (byte b in Encoding.UTF8.GetBytes(piece.Substring(from, to - from))) ids.Add(_byteIds[b]);
                lastWasUnk = false;
                continue;
            }
            if (!(_fuseUnk && lastWasUnk)) ids.Add(_unkId);
            lastWasUnk = true;
        }
    }
}
