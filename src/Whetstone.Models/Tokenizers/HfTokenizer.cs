using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using Whetstone.Models.Importers.Hf;
using Whetstone.Tensors;

namespace Whetstone.Models.Tokenizers;

/// <summary>A padded batch: ids (B, T), attention mask (B, T) of 1/0, token-type ids (B, T), and each row's real length.</summary>
public sealed record TokenizedBatch(int[] Ids, int Batch, int SeqLen, float[] AttentionMask, int[] TokenTypeIds, int[] Lengths)
{
    /// <summary>The attention mask as a (B, T) tensor in the current scope.</summary>
    public Tensor MaskTensor() => Tensor.From(AttentionMask, Batch, SeqLen);
}

/// <summary>Which tokenization a checkpoint uses.</summary>
public enum HfTokenizerKind
{
    /// <summary>BERT/DistilBERT WordPiece (vocab.txt): [CLS] a [SEP] b [SEP], token types 0/1.</summary>
    WordPiece,
    /// <summary>RoBERTa/GPT-2 byte-level BPE (vocab.json + merges.txt): &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;, token types 0.</summary>
    ByteLevelBpe,
}

/// <summary>
/// A checkpoint's own tokenizer as transformers would run it, over Microsoft.ML.Tokenizers: the text → ids model
/// (<see cref="Inner"/>) plus the checkpoint's special tokens, pair layout, truncation (longest first) and dynamic
/// padding to the longest row of a batch.
/// </summary>
public sealed class HfTokenizer
{
    public HfTokenizerKind Kind { get; }
    /// <summary>The Microsoft.ML.Tokenizers model (<see cref="BertTokenizer"/> or <see cref="BpeTokenizer"/>).</summary>
    public Tokenizer Inner { get; }
    /// <summary>[CLS] or &lt;s&gt;.</summary>
    public int ClsId { get; }
    /// <summary>[SEP] or &lt;/s&gt;.</summary>
    public int SepId { get; }
    public int PadId { get; }
    public int UnkId { get; }
    /// <summary>tokenizer_config.json's model_max_length when sensible, else 512.</summary>
    public int ModelMaxLength { get; }
    /// <summary>The file the vocabulary came from.</summary>
    public string Source { get; }

    private const string EndOfText = "<|endoftext|>";

    /// <summary>GPT-2's pre-tokenization pattern (contractions, letters, digits, other symbols, each with one leading space; runs of spaces).</summary>
    private static System.Text.RegularExpressions.Regex Gpt2Split() => new(
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", System.Text.RegularExpressions.RegexOptions.Compiled);
    private bool _addPrefixSpace;
    // BertTokenizer drops characters outside the BMP (emoji) and private-use characters, where BERT keeps them and,
    // finding them in no vocabulary entry, turns their word into [UNK]. Such characters are replaced by a stand-in
    // letter (a rare Cyrillic one) that is not in the vocabulary either, which gives BERT's result.
    private string? _astralStandIn;
    private HashSet<string>? _vocabKeys;

    /// <summary>BERT's _clean_text maps \t, \n, \r and space separators to ' '; BertTokenizer does not split on \t or \n.</summary>
    private static string CleanWhitespace(string text) =>
        text.AsSpan().IndexOfAny("\t\n\r\u00A0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u202F\u205F\u3000\u1680") < 0 ? text
            : string.Create(text.Length, text, (dst, src) =>
            {
                for (int i = 0; i < src.Length; i++)
                    dst[i] = src[i] is '\t' or '\n' or '\r' || char.GetUnicodeCategory(src[i]) == System.Globalization.UnicodeCategory.SpaceSeparator ? ' ' : src[i];
            });

    private string ReplaceUnknownAstral(string text, string standIn)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            bool pair = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (pair && !_vocabKeys!.Contains(text.Substring(i, 2)) && !_vocabKeys.Contains("##" + text.Substring(i, 2)))
            {
                sb ??= new StringBuilder(text, 0, i, text.Length);
                sb.Append(standIn);
                i++;
            }
            else if (pair) { sb?.Append(text, i, 2); i++; }
            else if (char.GetUnicodeCategory(text[i]) == System.Globalization.UnicodeCategory.PrivateUse && !_vocabKeys!.Contains(text[i].ToString()))
            {
                sb ??= new StringBuilder(text, 0, i, text.Length);
                sb.Append(standIn);
            }
            else sb?.Append(text[i]);
        }
        return sb?.ToString() ?? text;
    }
    // BERT strips accents after NFD decomposition (_run_strip_accents); BertTokenizer's RemoveNonSpacingMarks only drops
    // marks that are already separate, so precomposed letters (é) are decomposed first.
    private bool _decomposeAccents;

    private HfTokenizer(HfTokenizerKind kind, Tokenizer inner, int cls, int sep, int pad, int unk, int maxLength, string source)
    {
        Kind = kind; Inner = inner; ClsId = cls; SepId = sep; PadId = pad; UnkId = unk; ModelMaxLength = maxLength; Source = source;
    }

    /// <summary>Ids of <paramref name="text"/> without special tokens.</summary>
    public IReadOnlyList<int> EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_decomposeAccents) text = Accents.Decompose(text);
        if (_addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        if (_astralStandIn is { } standIn) text = ReplaceUnknownAstral(CleanWhitespace(text), standIn);
        var ids = Inner switch
        {
            BertTokenizer b => b.EncodeToIds(text, addSpecialTokens: false),
            _ => Inner.EncodeToIds(text),
        };
        return ids;
    }

    /// <summary>
    /// Encodes texts (and, for sentence-pair tasks such as NLI, their pairs) with the checkpoint's special tokens,
    /// truncates each row to <paramref name="maxLength"/> (default <see cref="ModelMaxLength"/>) by dropping tokens
    /// from the longer text first, and pads to the longest row.
    /// </summary>
    public TokenizedBatch EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count) throw new ArgumentException($"{texts.Count} texts but {pairs.Count} pairs.");
        int max = maxLength ?? ModelMaxLength;
        int specials = pairs is null ? 2 : Kind == HfTokenizerKind.ByteLevelBpe ? 4 : 3;
        if (max < specials + 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"maxLength {max} leaves no room beside {specials} special tokens.");
        var rows = new List<(List<int> Ids, List<int> Types)>(texts.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            var a = EncodeToIds(texts[i]).ToList();
            var b = pairs is null ? null : EncodeToIds(pairs[i]).ToList();
            int budget = max - specials;
            while (a.Count + (b?.Count ?? 0) > budget)   // longest_first
            {
                if (b is not null && b.Count > a.Count) b.RemoveAt(b.Count - 1);
                else a.RemoveAt(a.Count - 1);
            }
            var ids = new List<int>(max) { ClsId };
            ids.AddRange(a);
            ids.Add(SepId);
            var types = Enumerable.Repeat(0, ids.Count).ToList();
            if (b is not null)
            {
                int typeB = Kind == HfTokenizerKind.WordPiece ? 1 : 0;
                if (Kind == HfTokenizerKind.ByteLevelBpe) { ids.Add(SepId); types.Add(0); }
                ids.AddRange(b);
                ids.Add(SepId);
                types.AddRange(Enumerable.Repeat(typeB, b.Count + 1));
            }
            rows.Add((ids, types));
        }
        int t = rows.Count == 0 ? 0 : rows.Max(r => r.Ids.Count);
        var outIds = new int[rows.Count * t];
        var mask = new float[rows.Count * t];
        var tt = new int[rows.Count * t];
        var lengths = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            var (ids, types) = rows[i];
            lengths[i] = ids.Count;
            for (int j = 0; j < t; j++)
            {
                bool real = j < ids.Count;
                outIds[i * t + j] = real ? ids[j] : PadId;
                mask[i * t + j] = real ? 1 : 0;
                tt[i * t + j] = real ? types[j] : 0;
            }
        }
        return new TokenizedBatch(outIds, rows.Count, t, mask, tt, lengths);
    }

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// The tokenizer of a model folder: vocab.txt (WordPiece), vocab.json + merges.txt (byte-level BPE), else
    /// tokenizer.json (WordPiece or byte-level BPE models); options and special tokens from tokenizer_config.json.
    /// </summary>
    public static HfTokenizer Load(string folder, string? modelType = null) =>
        TryLoad(folder, modelType) ?? throw new HfCheckpointException(HfFault.UnsupportedTokenizer, folder,
            "no tokenizer files (vocab.txt, vocab.json + merges.txt, or tokenizer.json).");

    /// <summary>Like <see cref="Load"/>, but null when the folder has no tokenizer files at all.</summary>
    public static HfTokenizer? TryLoad(string folder, string? modelType = null)
    {
        string P(string name) => Path.Combine(folder, name);
        var cfg = File.Exists(P("tokenizer_config.json")) ? ReadJson(P("tokenizer_config.json")) : default;
        var special = File.Exists(P("special_tokens_map.json")) ? ReadJson(P("special_tokens_map.json")) : default;
        int maxLen = Int(cfg, "model_max_length") is int m and > 0 and <= 1_000_000 ? m : 512;
        bool bpeFamily = modelType is "roberta" or "xlm-roberta" || File.Exists(P("merges.txt"));

        if (File.Exists(P("vocab.txt")) && !bpeFamily)
        {
            var vocab = ReadVocabTxt(P("vocab.txt"));
            bool lower = Bool(cfg, "do_lower_case") ?? true;
            return WordPiece(P("vocab.txt"), File.OpenRead(P("vocab.txt")), vocab, lower, Bool(cfg, "strip_accents"),
                Bool(cfg, "tokenize_chinese_chars") ?? true, cfg, special, maxLen);
        }
        if (File.Exists(P("vocab.json")) && File.Exists(P("merges.txt")))
        {
            var vocab = ReadVocabJson(P("vocab.json"));
            return ByteLevelBpe(P("vocab.json"), File.OpenRead(P("vocab.json")), File.OpenRead(P("merges.txt")), vocab,
                Bool(cfg, "add_prefix_space") ?? false, cfg, special, maxLen);
        }
        if (File.Exists(P("tokenizer.json"))) return FromTokenizerJson(P("tokenizer.json"), cfg, special, maxLen);
        if (File.Exists(P("sentencepiece.bpe.model")) || File.Exists(P("spiece.model")))
            throw new HfCheckpointException(HfFault.UnsupportedTokenizer, File.Exists(P("sentencepiece.bpe.model")) ? P("sentencepiece.bpe.model") : P("spiece.model"),
                "SentencePiece tokenizers (XLM-R) are not wired up yet; only WordPiece (vocab.txt) and byte-level BPE (vocab.json + merges.txt, or tokenizer.json) are.");
        return null;
    }

    /// <summary>A WordPiece tokenizer from a vocab.txt with BERT's basic tokenization (lower-casing, accents, CJK).</summary>
    public static HfTokenizer FromWordPieceVocab(string vocabTxt, bool lowerCase = true, bool? stripAccents = null, bool tokenizeChineseChars = true, int maxLength = 512) =>
        WordPiece(vocabTxt, File.OpenRead(vocabTxt), ReadVocabTxt(vocabTxt), lowerCase, stripAccents, tokenizeChineseChars, default, default, maxLength);

    /// <summary>A GPT-2-style byte-level BPE tokenizer from vocab.json + merges.txt.</summary>
    public static HfTokenizer FromByteLevelBpe(string vocabJson, string mergesTxt, bool addPrefixSpace = false, int maxLength = 512) =>
        ByteLevelBpe(vocabJson, File.OpenRead(vocabJson), File.OpenRead(mergesTxt), ReadVocabJson(vocabJson), addPrefixSpace, default, default, maxLength);

    private static HfTokenizer WordPiece(string source, Stream vocabStream, Dictionary<string, int> vocab, bool lower, bool? stripAccents,
        bool chinese, JsonElement cfg, JsonElement special, int maxLen)
    {
        string Tok(string key, string fallback) => Token(cfg, key) ?? Token(special, key) ?? fallback;
        string cls = Tok("cls_token", "[CLS]"), sep = Tok("sep_token", "[SEP]"), pad = Tok("pad_token", "[PAD]"),
            unk = Tok("unk_token", "[UNK]"), msk = Tok("mask_token", "[MASK]");
        int Id(string token) => vocab.TryGetValue(token, out int id) ? id
            : throw new HfCheckpointException(HfFault.UnsupportedTokenizer, source, $"special token '{token}' is not in the vocabulary.");
        var (clsId, sepId, padId, unkId) = (Id(cls), Id(sep), Id(pad), Id(unk));
        BertTokenizer inner;
        try
        {
            using (vocabStream)
                inner = BertTokenizer.Create(vocabStream, new BertOptions
                {
                    LowerCaseBeforeTokenization = lower,
                    RemoveNonSpacingMarks = stripAccents ?? lower,
                    IndividuallyTokenizeCjk = chinese,
                    ApplyBasicTokenization = true,
                    SplitOnSpecialTokens = true,
                    UnknownToken = unk,
                    ClassificationToken = cls,
                    SeparatorToken = sep,
                    PaddingToken = pad,
                    MaskingToken = vocab.ContainsKey(msk) ? msk : unk,
                });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException)
        {
            throw new HfCheckpointException(HfFault.UnsupportedTokenizer, source, $"Microsoft.ML.Tokenizers could not read it as a WordPiece vocabulary ({e.Message}).");
        }
        return new HfTokenizer(HfTokenizerKind.WordPiece, inner, clsId, sepId, padId, unkId, maxLen, source) 
        {
            _decomposeAccents = stripAccents ?? lower,
            _astralStandIn = new[] { "\uA66E", "\uA66D", "\u2C00" }.FirstOrDefault(c => !vocab.ContainsKey(c) && !vocab.ContainsKey("##" + c)),
            _vocabKeys = vocab.Keys.Where(k => k.Any(c => char.IsSurrogate(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.PrivateUse))
                .ToHashSet(StringComparer.Ordinal),
        };
    }

    private static HfTokenizer ByteLevelBpe(string source, Stream vocabStream, Stream mergesStream, Dictionary<string, int> vocab, bool addPrefixSpace,
        JsonElement cfg, JsonElement special, int maxLen)
    {
        string Tok(string key, string fallback) => Token(cfg, key) ?? Token(special, key) ?? fallback;
        // RoBERTa's <s> </s> <pad> <unk>; a plain GPT-2 vocabulary has only <|endoftext|>
        string Or(string token) => vocab.ContainsKey(token) ? token : EndOfText;
        string cls = Tok("cls_token", Tok("bos_token", Or("<s>"))), sep = Tok("sep_token", Tok("eos_token", Or("</s>"))),
            pad = Tok("pad_token", Or("<pad>")), unk = Tok("unk_token", Or("<unk>"));
        var (clsId, sepId, padId) = (Id(cls), Id(sep), Id(pad));
        int Id(string token) => vocab.TryGetValue(token, out int id) ? id
            : throw new HfCheckpointException(HfFault.UnsupportedTokenizer, source, $"special token '{token}' is not in the vocabulary.");
        BpeTokenizer inner;
        try
        {
            List<string> merges;
            using (var reader = new StreamReader(mergesStream, Encoding.UTF8))
                merges = reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r'))
                    .Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).ToList();
            vocabStream.Dispose();
            inner = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges,
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(Gpt2Split(), null),
                UnknownToken = vocab.ContainsKey(unk) ? unk : null,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException or JsonException)
        {
            throw new HfCheckpointException(HfFault.UnsupportedTokenizer, source, $"Microsoft.ML.Tokenizers could not read it as byte-level BPE ({e.Message}).");
        }
        return new HfTokenizer(HfTokenizerKind.ByteLevelBpe, inner, clsId, sepId, padId, vocab.TryGetValue(unk, out int u) ? u : -1, maxLen, source)
            { _addPrefixSpace = addPrefixSpace };
    }

    /// <summary>tokenizer.json (the tokenizers library's format): its WordPiece or byte-level BPE model is rebuilt as vocabulary files in memory.</summary>
    private static HfTokenizer FromTokenizerJson(string path, JsonElement cfg, JsonElement special, int maxLen)
    {
        var root = ReadJson(path);
        HfCheckpointException Bad(string why) => new(HfFault.UnsupportedTokenizer, path, why);
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object) throw Bad("no 'model' object.");
        var type = model.TryGetProperty("type", out var ty) && ty.ValueKind == JsonValueKind.String ? ty.GetString() : null;
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw Bad($"model type '{type}' is not supported by this loader (WordPiece and byte-level BPE are).");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabEl.EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        var normalizer = root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object ? n : default;
        if (type == "WordPiece")
        {
            var ordered = vocab.OrderBy(kv => kv.Value).ToList();
            for (int i = 0; i < ordered.Count; i++)
                if (ordered[i].Value != i) throw Bad($"WordPiece ids are not 0..{ordered.Count - 1} (id {ordered[i].Value} at rank {i}).");
            var text = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", ordered.Select(kv => kv.Key)) + "\n"));
            bool lower = Bool(normalizer, "lowercase") ?? Bool(cfg, "do_lower_case") ?? true;
            return WordPiece(path, text, vocab, lower, Bool(normalizer, "strip_accents"), Bool(normalizer, "handle_chinese_chars") ?? true, cfg, special, maxLen);
        }
        if (type == "BPE")
        {
            var pre = root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default;
            var byteLevel = FindByType(pre, "ByteLevel");
            if (byteLevel.ValueKind != JsonValueKind.Object) throw Bad("a BPE model without a ByteLevel pre-tokenizer (only GPT-2/RoBERTa-style byte-level BPE is supported).");
            var merges = new StringBuilder("#version: 0.2\n");
            if (model.TryGetProperty("merges", out var mg) && mg.ValueKind == JsonValueKind.Array)
                foreach (var m in mg.EnumerateArray())
                    merges.Append(m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()).Append('\n');
            var vocabStream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(vocab));
            var mergesStream = new MemoryStream(Encoding.UTF8.GetBytes(merges.ToString()));
            return ByteLevelBpe(path, vocabStream, mergesStream, vocab, Bool(byteLevel, "add_prefix_space") ?? false, cfg, special, maxLen);
        }
        throw Bad($"model type '{type}' is not supported by this loader (WordPiece and byte-level BPE are).");
    }

    private static JsonElement FindByType(JsonElement e, string type)
    {
        if (e.ValueKind != JsonValueKind.Object) return default;
        if (e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type) return e;
        if (e.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array)
            foreach (var x in list.EnumerateArray())
                if (FindByType(x, type) is { ValueKind: JsonValueKind.Object } found) return found;
        return default;
    }

    // ------------------------------------------------------------------ small readers

    private static JsonElement ReadJson(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new HfCheckpointException(HfFault.UnsupportedTokenizer, path, $"not valid JSON ({e.Message})."); }
    }

    private static Dictionary<string, int> ReadVocabTxt(string path)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int i = 0;
        foreach (var line in File.ReadLines(path)) vocab.TryAdd(line.TrimEnd('\r'), i++);
        if (vocab.Count == 0) throw new HfCheckpointException(HfFault.UnsupportedTokenizer, path, "the vocabulary is empty.");
        return vocab;
    }

    private static Dictionary<string, int> ReadVocabJson(string path)
    {
        var root = ReadJson(path);
        if (root.ValueKind != JsonValueKind.Object) throw new HfCheckpointException(HfFault.UnsupportedTokenizer, path, "expected a token → id object.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
            vocab[p.Name] = p.Value.ValueKind == JsonValueKind.Number ? p.Value.GetInt32()
                : throw new HfCheckpointException(HfFault.UnsupportedTokenizer, path, $"the id of '{p.Name}' is not a number.");
        return vocab;
    }

    /// <summary>A special token from tokenizer_config.json / special_tokens_map.json: a string or an AddedToken object.</summary>
    private static string? Token(JsonElement e, string key)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    private static bool? Bool(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int? Int(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l)
            ? (int)Math.Min(l, int.MaxValue) : null;
}
