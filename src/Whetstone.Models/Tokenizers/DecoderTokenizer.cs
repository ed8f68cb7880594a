using System.Text;

namespace Whetstone.Models.Tokenizers;

/// <summary>How a decoder tokenizer turns text into tokens.</summary>
public enum DecoderTokenizerKind
{
    /// <summary>GPT-2-style byte-level BPE (vocab.json + merges.txt, or tokenizer.json with a ByteLevel pre-tokenizer: GPT-2, Llama-3, Qwen2).</summary>
    ByteLevelBpe,
    /// <summary>SentencePiece-style BPE exported as tokenizer.json: '▁' for spaces, &lt;0xNN&gt; byte fallback (Llama-2, Mistral, TinyLlama).</summary>
    SentencePieceBpe,
    /// <summary>A SentencePiece tokenizer.model (Llama-2 style BPE with byte fallback), encoded as sentencepiece does.</summary>
    SentencePieceModel,
}

/// <summary>
/// The tokenizer of a decoder language model folder (GPT-2, Llama-2, Llama-3, Qwen2, Mistral) as transformers runs it:
/// added and special tokens matched in the text before the model (so <c>&lt;|im_end|&gt;</c> is one id), the
/// checkpoint's BOS/EOS, decoding back to text, and an <see cref="IncrementalDecoder"/> for streaming. Files, in the
/// order transformers prefers them: tokenizer.json, vocab.json + merges.txt, tokenizer.model; options and special
/// tokens from tokenizer_config.json (and special_tokens_map.json), stop ids from generation_config.json.
/// <see cref="Encode"/> and <see cref="Decode"/> may be called from several threads at once; an
/// <see cref="IncrementalDecoder"/> belongs to one stream.
/// </summary>
public sealed partial class DecoderTokenizer
{
    public DecoderTokenizerKind Kind { get; }
    /// <summary>The file the model came from.</summary>
    public string Source { get; }
    /// <summary>One more than the largest id of the vocabulary and the added tokens.</summary>
    public int VocabSize { get; }
    public int? BosId { get; private set; }
    public int? EosId { get; private set; }
    public int? PadId { get; private set; }
    public int? UnkId { get; private set; }
    /// <summary>Every id that ends generation: generation_config.json's eos_token_id (a number or a list) and the tokenizer's EOS.</summary>
    public IReadOnlyList<int> EosIds { get; private set; } = [];
    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens starts with BOS.</summary>
    public bool AddBosToken { get; private set; }
    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens ends with EOS.</summary>
    public bool AddEosToken { get; private set; }
    /// <summary>tokenizer_config.json's clean_up_tokenization_spaces; <see cref="Decode"/> is lossless and leaves it to <see cref="CleanUpTokenizationSpaces"/>.</summary>
    public bool CleanUpSpaces { get; private set; }
    /// <summary>tokenizer_config.json's model_max_length when it is a real limit.</summary>
    public int? ModelMaxLength { get; private set; }
    public IReadOnlyList<DecoderAddedToken> AddedTokens { get; }

    private readonly SegmentEncoder _encoder;
    private readonly AddedTokenSplitter _splitter;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly byte[]?[] _bytes;     // what each id decodes to
    private readonly bool[] _special;
    private readonly bool _stripLeadingSpace;
    private int[] _prefix = [];
    private int[] _suffix = [];

    private DecoderTokenizer(DecoderTokenizerKind kind, string source, SegmentEncoder encoder, Dictionary<string, int> vocab,
        IReadOnlyList<DecoderAddedToken> added, Func<string, byte[]> tokenBytes, bool stripLeadingSpace)
    {
        Kind = kind; Source = source; _encoder = encoder; _stripLeadingSpace = stripLeadingSpace;
        AddedTokens = added;
        _tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var t in added) _tokenToId[t.Content] = t.Id;
        VocabSize = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        _idToToken = new string?[VocabSize];
        _bytes = new byte[]?[VocabSize];
        _special = new bool[VocabSize];
        foreach (var (token, id) in vocab)
            if (id >= 0) { _idToToken[id] = token; _bytes[id] = tokenBytes(token); }
        foreach (var t in added)
        {
            _idToToken[t.Id] = t.Content;
            _bytes[t.Id] = Encoding.UTF8.GetBytes(t.Content);
            _special[t.Id] = t.Special;
        }
        _splitter = new AddedTokenSplitter(added);
    }

    // ------------------------------------------------------------------ encoding

    /// <summary>
    /// The ids of <paramref name="text"/>: added tokens are matched first (special ones only when
    /// <paramref name="parseSpecialTokens"/>, so user text can be kept from forging chat markers), the rest goes through
    /// the model; with <paramref name="addSpecialTokens"/> BOS/EOS are added as the checkpoint asks.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = true, bool parseSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefix);
        foreach (var run in _splitter.Split(text, parseSpecialTokens))
        {
            if (run.Token is { } t) ids.Add(t.Id);
            else _encoder.Encode(run.Text!, run.Start, ids);
        }
        if (addSpecialTokens) ids.AddRange(_suffix);
        return [.. ids];
    }

    // ------------------------------------------------------------------ decoding

    /// <summary>
    /// The text of <paramref name="ids"/>: byte-level tokens back to their bytes, '▁' to spaces and &lt;0xNN&gt; to bytes
    /// (with the first leading space dropped, as SentencePiece adds it), the bytes read as UTF-8 (invalid sequences become
    /// U+FFFD). Added tokens are their text; with <paramref name="skipSpecialTokens"/> special ones are left out.
    /// On invalid UTF-8 (a stray byte token) the text can differ from the tokenizers library's ByteFallback decoder, which
    /// turns every byte token of an invalid run into U+FFFD where this gives one U+FFFD per invalid sequence (as its
    /// byte-level decoder does); valid text is the same.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var decoder = new IncrementalDecoder(this, skipSpecialTokens);
        var sb = new StringBuilder();
        foreach (int id in ids) sb.Append(decoder.Add(id));
        sb.Append(decoder.Flush());
        return sb.ToString();
    }

    /// <summary>A decoder that takes ids one at a time and returns only whole characters (for streaming generated text).</summary>
    public IncrementalDecoder CreateIncrementalDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    internal bool StripsLeadingSpace => _stripLeadingSpace;

    /// <summary>
    /// The bytes <paramref name="id"/> stands for; empty when it is special and skipped, and for an id that is no token
    /// (a model's embedding rows past the vocabulary, e.g. Qwen2's 151,936 for 151,669 tokens), which the tokenizers
    /// library skips too.
    /// </summary>
    internal ReadOnlySpan<byte> BytesOf(int id, bool skipSpecial)
    {
        if ((uint)id >= (uint)_bytes.Length || _bytes[id] is not { } bytes) return default;
        return skipSpecial && _special[id] ? default : bytes;
    }

    /// <summary>transformers' clean_up_tokenization: drops the space before punctuation and English contractions.</summary>
    public static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);

    // ------------------------------------------------------------------ vocabulary

    /// <summary>The id of a vocabulary entry or added token, or null.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    /// <summary>The vocabulary entry (in the model's alphabet: 'Ġ', '▁', &lt;0xNN&gt;) or added token of an id, or null.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>Whether <paramref name="id"/> is a special token (left out by skipSpecialTokens).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_special.Length && _special[id];
}

/// <summary>
/// Streaming decoding: ids go in one at a time, text comes out as soon as it is whole characters; a UTF-8 sequence split
/// over several byte tokens is held back until it completes. The pieces returned, followed by <see cref="Flush"/>,
/// concatenate to <see cref="DecoderTokenizer.Decode"/> of the same ids.
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly DecoderTokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    private bool _stripPending;
    private char[] _chars = new char[64];

    internal IncrementalDecoder(DecoderTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecialTokens;
        _stripPending = tokenizer.StripsLeadingSpace;
    }

    /// <summary>The text that <paramref name="id"/> completes (often empty while a multi-byte character is incomplete).</summary>
    public string Add(int id) => Emit(_tokenizer.BytesOf(id, _skipSpecial), flush: false);

    /// <summary>The text that <paramref name="ids"/> complete.</summary>
    public string Add(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        foreach (int id in ids) sb.Append(Add(id));
        return sb.ToString();
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush() => Emit(default, flush: true);

    private string Emit(ReadOnlySpan<byte> bytes, bool flush)
    {
        int max = bytes.Length + 8;
        if (_chars.Length < max) _chars = new char[Math.Max(max, _chars.Length * 2)];
        int n = _utf8.GetChars(bytes, _chars, flush);
        if (n == 0) return "";
        int from = 0;
        if (_stripPending)
        {
            _stripPending = false;
            if (_chars[0] == ' ') from = 1;
        }
        return new string(_chars, from, n - from);
    }
}
