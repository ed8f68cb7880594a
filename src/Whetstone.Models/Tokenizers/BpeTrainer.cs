using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Whetstone.Models.Tokenizers;

/// <summary>Options of <see cref="BpeTrainer.Train"/>.</summary>
/// <param name="VocabSize">the vocabulary to reach: special tokens + the 256 byte symbols + merged tokens</param>
/// <param name="MinFrequency">a pair seen fewer times in the corpus is not merged; training stops at the first such pair</param>
/// <param name="SpecialTokens">tokens that take ids 0..n-1 in this order, saved as special added tokens; their text in a
/// document is cut out before counting, so no merge learns from it</param>
public sealed record BpeTrainerOptions(int VocabSize, int MinFrequency = 2, IReadOnlyList<string>? SpecialTokens = null);

/// <summary>The phase a <see cref="BpeTrainerProgress"/> reports.</summary>
public enum BpeTrainerStage
{
    /// <summary>Reading documents and counting their words (the last such report comes when every document is read).</summary>
    CountingWords,
    /// <summary>Merging pairs.</summary>
    Merging,
    /// <summary>Training has finished.</summary>
    Done,
}

/// <summary>Where training is.</summary>
/// <param name="Documents">documents read</param>
/// <param name="Words">pre-tokenized words counted, repeats included</param>
/// <param name="DistinctWords">distinct words counted</param>
/// <param name="Merges">merges done</param>
/// <param name="MaxMerges">the merges that would fill the vocabulary</param>
public readonly record struct BpeTrainerProgress(BpeTrainerStage Stage, long Documents, long Words, int DistinctWords, int Merges, int MaxMerges);

/// <summary>
/// Trains a GPT-2 / Llama-3 style byte-level BPE tokenizer from text, as the tokenizers library's BpeTrainer does with a
/// ByteLevel pre-tokenizer: each document is cut at special tokens and split by GPT-2's pattern (contractions, letter
/// runs, digit runs, other symbols, each with one leading space; whitespace runs), the words are counted, each word
/// starts as its UTF-8 bytes (the 256 symbols of GPT-2's byte alphabet: 'Ġ' for a space, 'Ċ' for a newline), and the
/// most frequent adjacent pair is merged, again and again,
/// until the vocabulary holds <see cref="BpeTrainerOptions.VocabSize"/> tokens or no pair is seen
/// <see cref="BpeTrainerOptions.MinFrequency"/> times.
/// Ids: special tokens 0..n-1, the byte symbols n..n+255 in the code-point order of their characters ('!'..'~',
/// '¡'..'¬', '®'..'ÿ', then 'Ā'.. for the other bytes: GPT-2's order), merged tokens after them in merge order.
/// Ties between pairs of equal frequency go to the smaller left id, then the smaller right id (the tokenizers
/// library's rule), so the same corpus always gives the same tokenizer.
/// </summary>
public static class BpeTrainer
{
    private const long ProgressWords = 1 << 20;
    private const int ProgressMerges = 100;

    /// <summary>Trains on <paramref name="documents"/>, read once, one at a time.</summary>
    /// <param name="progress">called now and then while words are counted and pairs merged, and once at the end</param>
    /// <exception cref="ArgumentException">the vocabulary cannot hold the byte symbols and special tokens, a special
    /// token is empty, repeated or a byte symbol, or a document is null</exception>
    public static TrainedBpe Train(IEnumerable<string> documents, BpeTrainerOptions options, Action<BpeTrainerProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(options);
        var specials = options.SpecialTokens ?? [];
        if (options.MinFrequency < 0) throw new ArgumentException($"MinFrequency is {options.MinFrequency}; it must not be negative.", nameof(options));
        if (options.VocabSize < 256 + specials.Count)
            throw new ArgumentException($"VocabSize {options.VocabSize} is smaller than the 256 byte symbols plus {specials.Count} special tokens "
                + $"({256 + specials.Count}); a byte-level BPE vocabulary needs at least that many tokens.", nameof(options));

        int capacity = Math.Min(options.VocabSize, 1 << 16);
        var tokens = new List<string>(capacity);
        var ids = new Dictionary<string, int>(capacity, StringComparer.Ordinal);
        foreach (var s in specials)
        {
            if (string.IsNullOrEmpty(s)) throw new ArgumentException($"special token {tokens.Count} is empty.", nameof(options));
            if (!ids.TryAdd(s, tokens.Count)) throw new ArgumentException($"special token '{s}' is given twice.", nameof(options));
            tokens.Add(s);
        }
        var byteId = new int[256];
        foreach (int b in Enumerable.Range(0, 256).OrderBy(b => ByteLevelAlphabet.ByteToChar[b]))
        {
            var symbol = ByteLevelAlphabet.ByteToChar[b].ToString();
            if (!ids.TryAdd(symbol, tokens.Count))
                throw new ArgumentException($"special token '{symbol}' is the byte-level symbol of byte 0x{b:X2}; byte symbols cannot be special tokens.", nameof(options));
            byteId[b] = tokens.Count;
            tokens.Add(symbol);
        }

        var counted = CountWords(documents, specials, progress, cancellationToken);
        var merger = new PairMerger(counted.Words, byteId, Math.Max(1, options.MinFrequency));
        int maxMerges = options.VocabSize - tokens.Count;
        var merges = new List<(int Left, int Right)>();
        while (tokens.Count < options.VocabSize && merger.Best() is { } pair)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // a token can be reached by two merges ("a"+"bc", "ab"+"c"): the second keeps its id, as in the tokenizers library
            var merged = tokens[pair.Left] + tokens[pair.Right];
            if (!ids.TryGetValue(merged, out int id))
            {
                id = tokens.Count;
                ids.Add(merged, id);
                tokens.Add(merged);
            }
            merger.Merge(pair.Left, pair.Right, id);
            merges.Add(pair);
            if (progress is not null && merges.Count % ProgressMerges == 0)
                progress(new(BpeTrainerStage.Merging, counted.Documents, counted.Total, counted.Words.Count, merges.Count, maxMerges));
        }
        progress?.Invoke(new(BpeTrainerStage.Done, counted.Documents, counted.Total, counted.Words.Count, merges.Count, maxMerges));
        return new TrainedBpe(tokens, specials.Count, merges.Select(m => (tokens[m.Left], tokens[m.Right])).ToList());
    }

    private sealed record WordCounts(Dictionary<string, long> Words, long Documents, long Total);

    /// <summary>
    /// The words of the corpus with their counts: the text between special tokens split as the ByteLevel pre-tokenizer
    /// splits it (its step, <see cref="PreTokenizerStep.Split"/> with GPT-2's pattern, before the byte alphabet, which
    /// the merger applies once per distinct word).
    /// </summary>
    private static WordCounts CountWords(IEnumerable<string> documents, IReadOnlyList<string> specials, Action<BpeTrainerProgress>? progress,
        CancellationToken cancellationToken)
    {
        var splitter = new AddedTokenSplitter(specials.Select((s, i) => new DecoderAddedToken(i, s, Special: true)));
        var split = new PreTokenizerStep.Split(PreTokenizerStep.ByteLevel.Gpt2Pattern, PreTokenizerStep.SplitBehavior.Isolated, invert: false);
        var words = new Dictionary<string, long>(StringComparer.Ordinal);
        var pieces = new List<Piece>();
        long documentCount = 0, total = 0, reported = 0;
        foreach (var document in documents)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (document is null) throw new ArgumentException($"document {documentCount} is null.", nameof(documents));
            foreach (var run in splitter.Split(document, matchSpecial: true))
            {
                if (run.Token is not null) continue;
                pieces.Clear();
                pieces.Add(new Piece(run.Text!, 0));
                split.Apply(pieces);
                foreach (var p in pieces) CollectionsMarshal.GetValueRefOrAddDefault(words, p.Text, out _)++;
                total += pieces.Count;
            }
            documentCount++;
            if (progress is not null && total - reported >= ProgressWords)
            {
                reported = total;
                progress(new(BpeTrainerStage.CountingWords, documentCount, total, words.Count, 0, 0));
            }
        }
        progress?.Invoke(new(BpeTrainerStage.CountingWords, documentCount, total, words.Count, 0, 0));
        return new WordCounts(words, documentCount, total);
    }
}

/// <summary>
/// The counts of adjacent symbol pairs over the distinct words, kept up to date merge by merge: each pair knows the
/// words it was seen in (a list that may hold words it has since left; they are checked when visited), and a merge
/// rewrites only those words and changes only the counts of the pairs around each occurrence. A max-heap of
/// (count, pair) entries finds the best pair; an entry whose count is no longer the pair's is skipped or pushed again
/// with the current count (counts that grow are pushed when they grow, so every pair has an entry at least as high as
/// its count).
/// </summary>
internal sealed class PairMerger
{
    private sealed class PairStat
    {
        public long Count;
        public readonly List<int> Words = [];
        public int Stamp;   // the merge whose growth list holds this pair
    }

    /// <summary>Heap order: higher count first, then the smaller pair (left id, then right id).</summary>
    private readonly record struct Rank(long Count, long Pair) : IComparable<Rank>
    {
        public int CompareTo(Rank other) => Count != other.Count ? other.Count.CompareTo(Count) : Pair.CompareTo(other.Pair);
    }

    // word w: symbols _symbols[_start[w] .. _start[w] + _length[w]), seen _freq[w] times
    private readonly int[] _symbols;
    private readonly int[] _start;
    private readonly int[] _length;
    private readonly long[] _freq;
    private readonly int[] _visited;     // the last merge that rewrote each word
    private readonly Dictionary<long, PairStat> _pairs = [];
    private readonly PriorityQueue<long, Rank> _heap = new();
    private readonly List<long> _grown = [];
    private readonly long _minFrequency;
    private int _stamp;
    private long _merging = -1;

    public PairMerger(Dictionary<string, long> words, int[] byteId, long minFrequency)
    {
        _minFrequency = minFrequency;
        int n = words.Count;
        _start = new int[n];
        _length = new int[n];
        _freq = new long[n];
        _visited = new int[n];
        var symbols = new List<int>();
        var bytes = new ArrayBufferWriter<byte>();
        int w = 0;
        foreach (var (word, count) in words)
        {
            bytes.ResetWrittenCount();
            int written = Encoding.UTF8.GetBytes(word, bytes.GetSpan(Encoding.UTF8.GetMaxByteCount(word.Length)));
            _start[w] = symbols.Count;
            _length[w] = written;
            _freq[w] = count;
            foreach (byte b in bytes.GetSpan()[..written]) symbols.Add(byteId[b]);
            w++;
        }
        _symbols = [.. symbols];
        for (w = 0; w < n; w++)
        {
            int s = _start[w];
            for (int i = 0; i + 1 < _length[w]; i++) Add(Key(_symbols[s + i], _symbols[s + i + 1]), _freq[w], w);
        }
        foreach (var (key, stat) in _pairs)
            if (stat.Count >= _minFrequency) _heap.Enqueue(key, new Rank(stat.Count, key));
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>The most frequent pair (seen at least the minimum frequency), or null when none is left.</summary>
    public (int Left, int Right)? Best()
    {
        while (_heap.TryDequeue(out long key, out var rank))
        {
            if (!_pairs.TryGetValue(key, out var stat)) continue;   // merged, or gone from every word
            if (stat.Count != rank.Count)
            {
                if (stat.Count >= _minFrequency) _heap.Enqueue(key, new Rank(stat.Count, key));
                continue;
            }
            if (stat.Count < _minFrequency) return null;
            _heap.Enqueue(key, rank);   // stays until merged
            return ((int)(key >> 32), (int)key);
        }
        return null;
    }

    /// <summary>Replaces every occurrence of (<paramref name="left"/>, <paramref name="right"/>), left to right, by <paramref name="merged"/>.</summary>
    public void Merge(int left, int right, int merged)
    {
        long key = Key(left, right);
        if (!_pairs.Remove(key, out var stat)) return;
        _merging = key;
        _stamp++;
        _grown.Clear();
        foreach (int w in stat.Words)
        {
            if (_visited[w] == _stamp) continue;
            _visited[w] = _stamp;
            var s = _symbols.AsSpan(_start[w], _length[w]);
            long f = _freq[w];
            int o = 0, i = 0;
            while (i < s.Length)
            {
                if (i + 1 < s.Length && s[i] == left && s[i + 1] == right)
                {
                    // (x, left) → (x, merged) before it; x may be a merged symbol written just now
                    if (o > 0) { Add(Key(s[o - 1], left), -f, w); Add(Key(s[o - 1], merged), f, w); }
                    if (i + 2 < s.Length) { Add(Key(right, s[i + 2]), -f, w); Add(Key(merged, s[i + 2]), f, w); }
                    s[o++] = merged;
                    i += 2;
                }
                else s[o++] = s[i++];
            }
            _length[w] = o;
        }
        _merging = -1;
        foreach (long k in _grown)
            if (_pairs.TryGetValue(k, out var g) && g.Stamp == _stamp)
            {
                g.Stamp = 0;
                if (g.Count >= _minFrequency) _heap.Enqueue(k, new Rank(g.Count, k));
            }
    }

    private void Add(long key, long delta, int word)
    {
        if (key == _merging) return;   // the pair being merged: it leaves every word
        ref var stat = ref CollectionsMarshal.GetValueRefOrAddDefault(_pairs, key, out _);
        stat ??= new PairStat();
        stat.Count += delta;
        if (delta > 0)
        {
            if (stat.Words.Count == 0 || stat.Words[^1] != word) stat.Words.Add(word);
            if (stat.Stamp != _stamp) { stat.Stamp = _stamp; _grown.Add(key); }
        }
        else if (stat.Count == 0) _pairs.Remove(key);
    }
}

/// <summary>
/// A trained byte-level BPE tokenizer: its tokens by id (special tokens, then byte symbols and merged tokens written in
/// <see cref="ByteLevelAlphabet"/>'s characters: 'Ġ' for a space) and its merges in order. <see cref="Save"/> writes the
/// Hugging Face files that <see cref="DecoderTokenizer.Load"/> (and transformers' PreTrainedTokenizerFast) read.
/// </summary>
public sealed class TrainedBpe
{
    /// <summary>transformers' VERY_LARGE_INTEGER, its model_max_length for "no limit".</summary>
    private const string NoLengthLimit = "1000000000000000019884624838656";

    /// <summary>Every token, indexed by id.</summary>
    public IReadOnlyList<string> Tokens { get; }
    /// <summary>The special tokens (ids 0..n-1).</summary>
    public IReadOnlyList<string> SpecialTokens { get; }
    /// <summary>The merges in the order they were learned (their rank).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }
    public int VocabSize => Tokens.Count;

    private readonly Dictionary<string, int> _ids;

    internal TrainedBpe(List<string> tokens, int specialCount, List<(string Left, string Right)> merges)
    {
        Tokens = tokens;
        SpecialTokens = tokens.GetRange(0, specialCount);
        Merges = merges;
        _ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Count; id++) _ids.Add(tokens[id], id);
    }

    /// <summary>The id of a token (special, or in the byte alphabet: "Ġthe"), or null.</summary>
    public int? TokenToId(string token) => _ids.TryGetValue(token, out int id) ? id : null;

    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json into <paramref name="folder"/> (created if missing; each file
    /// written to a temporary name, then renamed).
    /// </summary>
    /// <param name="bosToken">tokenizer_config.json's bos_token (e.g. "&lt;|endoftext|&gt;"), or none</param>
    /// <param name="eosToken">its eos_token, or none</param>
    /// <param name="padToken">its pad_token, or none</param>
    /// <param name="modelMaxLength">its model_max_length; null writes transformers' "no limit"</param>
    /// <exception cref="ArgumentException">a named token is not in the vocabulary, or the length is not positive</exception>
    public void Save(string folder, string? bosToken = null, string? eosToken = null, string? padToken = null, int? modelMaxLength = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        foreach (var (name, token) in new[] { ("bosToken", bosToken), ("eosToken", eosToken), ("padToken", padToken) })
            if (token is not null && TokenToId(token) is null)
                throw new ArgumentException($"{name} '{token}' is not a token of the vocabulary; give it as a special token when training.", name);
        if (modelMaxLength is <= 0) throw new ArgumentException($"modelMaxLength is {modelMaxLength}; it must be positive.", nameof(modelMaxLength));
        Directory.CreateDirectory(folder);
        WriteAtomic(Path.Combine(folder, "tokenizer.json"), ToTokenizerJson());
        WriteAtomic(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfigJson(bosToken, eosToken, padToken, modelMaxLength));
    }

    private static void WriteAtomic(string path, byte[] bytes)
    {
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>tokenizer.json as the tokenizers library writes a byte-level BPE (GPT-2's components), UTF-8.</summary>
    public byte[] ToTokenizerJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (int id = 0; id < SpecialTokens.Count; id++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("content", SpecialTokens[id]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            WriteByteLevel(w, "pre_tokenizer", addPrefixSpace: false, trimOffsets: true);
            WriteByteLevel(w, "post_processor", addPrefixSpace: true, trimOffsets: false);
            WriteByteLevel(w, "decoder", addPrefixSpace: true, trimOffsets: true);
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (int id = 0; id < Tokens.Count; id++) w.WriteNumber(Tokens[id], id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (left, right) in Merges)
            {
                w.WriteStartArray();
                w.WriteStringValue(left);
                w.WriteStringValue(right);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteByteLevel(Utf8JsonWriter w, string name, bool addPrefixSpace, bool trimOffsets)
    {
        w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", addPrefixSpace);
        w.WriteBoolean("trim_offsets", trimOffsets);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
    }

    /// <summary>tokenizer_config.json as transformers writes it for a PreTrainedTokenizerFast (keys sorted).</summary>
    private byte[] TokenizerConfigJson(string? bos, string? eos, string? pad, int? modelMaxLength)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            void TokenOrNull(string key, string? token) { if (token is null) w.WriteNull(key); else w.WriteString(key, token); }
            w.WriteStartObject();
            w.WriteStartObject("added_tokens_decoder");
            for (int id = 0; id < SpecialTokens.Count; id++)
            {
                w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteString("content", SpecialTokens[id]);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartArray("additional_special_tokens");
            foreach (var s in SpecialTokens)
                if (s != bos && s != eos && s != pad) w.WriteStringValue(s);
            w.WriteEndArray();
            TokenOrNull("bos_token", bos);
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            TokenOrNull("eos_token", eos);
            w.WritePropertyName("model_max_length");
            if (modelMaxLength is int max) w.WriteNumberValue(max); else w.WriteRawValue(NoLengthLimit);
            TokenOrNull("pad_token", pad);
            w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
