using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Whetstone.Models.Importers.Hf;

namespace Whetstone.Models.Tokenizers;

public sealed partial class DecoderTokenizer
{
    /// <summary>
    /// The tokenizer of a decoder model folder: tokenizer.json (BPE: byte-level or SentencePiece-style), else
    /// vocab.json + merges.txt (GPT-2), else tokenizer.model (SentencePiece); tokenizer_config.json,
    /// special_tokens_map.json, generation_config.json and config.json for special tokens and options.
    /// </summary>
    public static DecoderTokenizer Load(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder)) throw new HfCheckpointException(HfFault.MissingFile, folder, "no such folder.");
        string P(string name) => Path.Combine(folder, name);
        var cfg = File.Exists(P("tokenizer_config.json")) ? ReadJson(P("tokenizer_config.json")) : default;
        var map = File.Exists(P("special_tokens_map.json")) ? ReadJson(P("special_tokens_map.json")) : default;
        DecoderTokenizer tok;
        if (File.Exists(P("tokenizer.json"))) tok = FromTokenizerJson(P("tokenizer.json"), cfg);
        else if (File.Exists(P("vocab.json")) && File.Exists(P("merges.txt"))) tok = FromVocabAndMerges(P("vocab.json"), P("merges.txt"), cfg);
        else if (File.Exists(P("tokenizer.model"))) tok = FromSentencePieceModel(P("tokenizer.model"), cfg);
        else if (File.Exists(P("vocab.txt")))
            throw new HfCheckpointException(HfFault.UnsupportedTokenizer, P("vocab.txt"),
                "a WordPiece vocabulary (BERT-style encoders) is not a decoder tokenizer; HfTokenizer loads it.");
        else
            throw new HfCheckpointException(HfFault.MissingFile, folder,
                "no tokenizer files: expected tokenizer.json, vocab.json + merges.txt, or tokenizer.model.");
        tok.ApplyConfig(folder, cfg, map);
        return tok;
    }

    // ------------------------------------------------------------------ tokenizer.json

    private static DecoderTokenizer FromTokenizerJson(string path, JsonElement cfg)
    {
        var root = ReadJson(path);
        HfCheckpointException Bad(string why) => new(HfFault.UnsupportedTokenizer, path, why);
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw Bad("expected an object with a 'model' object (the tokenizers library's format).");
        var type = Str(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
        switch (type)
        {
            case "BPE": break;
            case "WordPiece":
                throw Bad("its model is WordPiece (a BERT-style encoder tokenizer), not a decoder's BPE; HfTokenizer loads it.");
            case "Unigram":
                throw Bad("its model is Unigram (T5, ALBERT, XLM-R style SentencePiece); DecoderTokenizer supports BPE models only (byte-level or SentencePiece-style with byte fallback).");
            default:
                throw Bad($"model type '{type ?? "(none)"}' is not supported; DecoderTokenizer supports BPE models.");
        }
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object) throw Bad("model.vocab is not a token → id object.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabEl.EnumerateObject())
            vocab[p.Name] = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int id) && id >= 0 ? id
                : throw Bad($"model.vocab: the id of '{p.Name}' is not a non-negative integer.");
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mg) && mg.ValueKind == JsonValueKind.Array)
            foreach (var m in mg.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String) merges.Add(m.GetString()!);
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                {
                    string a = m[0].GetString()!, b = m[1].GetString()!;
                    if (a.Contains(' ', StringComparison.Ordinal) || b.Contains(' ', StringComparison.Ordinal))
                        throw Bad($"merge [\"{a}\", \"{b}\"] holds a space, which Microsoft.ML.Tokenizers' merge list cannot express.");
                    merges.Add(a + " " + b);
                }
                else throw Bad($"model.merges: entry {merges.Count} is neither \"a b\" nor [\"a\", \"b\"].");
            }
        if (model.TryGetProperty("dropout", out var dr) && dr.ValueKind == JsonValueKind.Number && dr.GetDouble() > 0)
            throw Bad("BPE dropout is a training-time option; a model with dropout > 0 is not supported.");

        var normalizer = root.TryGetProperty("normalizer", out var n) ? ParseNormalizer(n, Bad) : null;
        var preTokenizer = root.TryGetProperty("pre_tokenizer", out var pt) ? ParsePreTokenizer(pt, Bad) : null;
        var decoder = root.TryGetProperty("decoder", out var de) ? de : default;
        bool byteLevel = HasType(pt, "ByteLevel") || HasType(decoder, "ByteLevel");
        bool byteFallback = Bool(model, "byte_fallback") ?? false;
        bool metaspace = byteFallback || HasType(pt, "Metaspace") || HasType(decoder, "Metaspace") || HasType(decoder, "ByteFallback")
            || HasType(n, "Prepend") || HasType(decoder, "Replace");
        if (byteLevel && !HasType(pt, "ByteLevel"))
            throw Bad("a ByteLevel decoder without a ByteLevel pre-tokenizer is not supported.");
        if (!byteLevel && !metaspace)
            throw Bad("a BPE model that is neither byte-level (ByteLevel pre-tokenizer) nor SentencePiece-style ('▁' spaces, byte fallback) is not supported.");

        string? unk = Str(model, "unk_token");
        if (byteFallback && (unk is null || !vocab.ContainsKey(unk)))
            throw Bad("byte_fallback without an unk_token in the vocabulary is not supported (the fallback is found through Microsoft.ML.Tokenizers' unknown token).");
        BpeSegmentEncoder encoder;
        try
        {
            encoder = new BpeSegmentEncoder(vocab, merges, normalizer, preTokenizer, unk, byteFallback, Bool(model, "ignore_merges") ?? false,
                Bool(model, "fuse_unk") ?? false, Str(model, "continuing_subword_prefix"), Str(model, "end_of_word_suffix"),
                wordStart: byteLevel ? null : MetaspaceReplacement(pt, decoder));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw Bad($"Microsoft.ML.Tokenizers could not build the BPE model ({e.Message}).");
        }

        var added = new List<DecoderAddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            foreach (var a in at.EnumerateArray())
                added.Add(ParseAddedToken(a, a.TryGetProperty("id", out var idEl) && idEl.TryGetInt32(out int aid) ? aid
                    : throw Bad("an added token without an integer 'id'."), Bad));
        MergeConfigAddedTokens(added, cfg);

        // decoding: byte-level, or SentencePiece ('▁' → space, <0xNN> → byte, one leading space dropped)
        char replacement = MetaspaceReplacement(pt, decoder);
        bool strip = false;
        if (FindByType(decoder, "Strip") is { ValueKind: JsonValueKind.Object } st) strip = (Int(st, "start") ?? 0) > 0 && Str(st, "content") is " " or null;
        if (FindByType(decoder, "Metaspace") is { ValueKind: JsonValueKind.Object } mdec)
            strip |= Str(mdec, "prepend_scheme") is { } scheme ? scheme != "never" : Bool(mdec, "add_prefix_space") ?? true;
        // <0xNN> tokens decode to their byte where the decoder says so (ByteFallback), as the tokenizers library does;
        // a file without a decoder gets it too
        bool decodeBytes = decoder.ValueKind != JsonValueKind.Object || HasType(decoder, "ByteFallback");
        Func<string, byte[]> bytes = byteLevel ? ByteLevelBytes : t => SentencePieceBytes(t, replacement, decodeBytes);
        var tok = new DecoderTokenizer(byteLevel ? DecoderTokenizerKind.ByteLevelBpe : DecoderTokenizerKind.SentencePieceBpe, path, encoder, vocab, added, bytes,
            !byteLevel && strip);
        var (prefix, suffix) = root.TryGetProperty("post_processor", out var pp) ? ParsePostProcessor(pp, tok, Bad) : ([], []);
        tok._prefix = prefix;
        tok._suffix = suffix;
        tok.UnkId = unk is not null && vocab.TryGetValue(unk, out int unkId) ? unkId : null;
        return tok;
    }

    /// <summary>The SentencePiece word-start mark: Metaspace's replacement, else '▁'.</summary>
    private static char MetaspaceReplacement(JsonElement preTokenizer, JsonElement decoder) =>
        FindByType(decoder, "Metaspace") is { ValueKind: JsonValueKind.Object } md && Str(md, "replacement") is { Length: 1 } r ? r[0]
        : FindByType(preTokenizer, "Metaspace") is { ValueKind: JsonValueKind.Object } mp && Str(mp, "replacement") is { Length: 1 } r2 ? r2[0] : '▁';

    private static TextNormalizer? ParseNormalizer(JsonElement e, Func<string, HfCheckpointException> bad)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        var type = Str(e, "type");
        return type switch
        {
            "Sequence" when e.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array =>
                new TextNormalizer.Sequence(list.EnumerateArray().Select(x => ParseNormalizer(x, bad)).OfType<TextNormalizer>().ToList()),
            "Prepend" => new TextNormalizer.Prepend(Str(e, "prepend") ?? throw bad("normalizer Prepend without 'prepend'.")),
            "Replace" => new TextNormalizer.Replace(Pattern(e, bad), Str(e, "content") ?? ""),
            "NFC" => new TextNormalizer.Nfc(),
            "Lowercase" => new TextNormalizer.Lowercase(),
            "NFD" or "NFKC" or "NFKD" => throw bad($"normalizer {type} is not supported (only NFC; the process runs without ICU normalization)."),
            _ => throw bad($"normalizer '{type}' is not supported by DecoderTokenizer (Sequence, Prepend, Replace, NFC, Lowercase are)."),
        };
    }

    private static PreTokenizerStep? ParsePreTokenizer(JsonElement e, Func<string, HfCheckpointException> bad)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        var type = Str(e, "type");
        switch (type)
        {
            case "Sequence" when e.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array:
                return new PreTokenizerStep.Sequence(list.EnumerateArray().Select(x => ParsePreTokenizer(x, bad)).OfType<PreTokenizerStep>().ToList());
            case "ByteLevel":
                return new PreTokenizerStep.ByteLevel(Bool(e, "add_prefix_space") ?? false, Bool(e, "use_regex") ?? true);
            case "Split":
            {
                var behavior = Str(e, "behavior") switch
                {
                    "Isolated" or null => PreTokenizerStep.SplitBehavior.Isolated,
                    "Removed" => PreTokenizerStep.SplitBehavior.Removed,
                    "MergedWithPrevious" => PreTokenizerStep.SplitBehavior.MergedWithPrevious,
                    "MergedWithNext" => PreTokenizerStep.SplitBehavior.MergedWithNext,
                    var b => throw bad($"Split behavior '{b}' is not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext are)."),
                };
                return new PreTokenizerStep.Split(Pattern(e, bad), behavior, Bool(e, "invert") ?? false);
            }
            case "Metaspace":
            {
                var rep = Str(e, "replacement") is { Length: 1 } r ? r[0] : '▁';
                var prepend = Str(e, "prepend_scheme") switch
                {
                    "first" => PreTokenizerStep.MetaspacePrepend.First,
                    "never" => PreTokenizerStep.MetaspacePrepend.Never,
                    "always" => PreTokenizerStep.MetaspacePrepend.Always,
                    _ => Bool(e, "add_prefix_space") ?? true ? PreTokenizerStep.MetaspacePrepend.Always : PreTokenizerStep.MetaspacePrepend.Never,
                };
                return new PreTokenizerStep.Metaspace(rep, prepend, Bool(e, "split") ?? true);
            }
            case "Digits":
                return new PreTokenizerStep.Split(new Regex(Bool(e, "individual_digits") ?? false ? @"\p{N}" : @"\p{N}+", RegexOptions.Compiled | RegexOptions.CultureInvariant),
                    PreTokenizerStep.SplitBehavior.Isolated, false);
            default:
                throw bad($"pre-tokenizer '{type}' is not supported by DecoderTokenizer (Sequence, ByteLevel, Split, Metaspace, Digits are).");
        }
    }

    /// <summary>A Split/Replace pattern: {"String": s} or {"Regex": r}, the regex compiled by .NET (Oniguruma syntax the two share).</summary>
    private static Regex Pattern(JsonElement e, Func<string, HfCheckpointException> bad)
    {
        if (!e.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object) throw bad($"{Str(e, "type")} without a 'pattern' object.");
        if (Str(p, "String") is { } s) return new Regex(Regex.Escape(s), RegexOptions.CultureInvariant);
        if (Str(p, "Regex") is { } r)
        {
            try { return new Regex(r, RegexOptions.Compiled | RegexOptions.CultureInvariant); }
            catch (ArgumentException ex) { throw bad($"the pattern /{r}/ is not a .NET regular expression ({ex.Message})."); }
        }
        throw bad($"{Str(e, "type")} pattern is neither {{\"String\": …}} nor {{\"Regex\": …}}.");
    }

    /// <summary>The special tokens a post-processor puts before and after a single sequence.</summary>
    private static (int[] Prefix, int[] Suffix) ParsePostProcessor(JsonElement e, DecoderTokenizer tok, Func<string, HfCheckpointException> bad)
    {
        if (e.ValueKind != JsonValueKind.Object) return ([], []);
        int Id(string token) => tok.TokenToId(token) ?? throw bad($"post-processor token '{token}' is neither in the vocabulary nor an added token.");
        switch (Str(e, "type"))
        {
            case "Sequence" when e.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array:
                foreach (var x in list.EnumerateArray())
                    if (ParsePostProcessor(x, tok, bad) is { } r && (r.Prefix.Length > 0 || r.Suffix.Length > 0)) return r;
                return ([], []);
            case "TemplateProcessing":
            {
                if (!e.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return ([], []);
                var specials = e.TryGetProperty("special_tokens", out var sp) && sp.ValueKind == JsonValueKind.Object ? sp : default;
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                foreach (var piece in single.EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    if (!piece.TryGetProperty("SpecialToken", out var stok) || Str(stok, "id") is not { } name) continue;
                    IEnumerable<int> ids = specials.ValueKind == JsonValueKind.Object && specials.TryGetProperty(name, out var entry)
                        && entry.TryGetProperty("ids", out var idList) && idList.ValueKind == JsonValueKind.Array
                        ? idList.EnumerateArray().Select(i => i.GetInt32()).ToList() : [Id(name)];
                    (seenSequence ? suffix : prefix).AddRange(ids);
                }
                return ([.. prefix], [.. suffix]);
            }
            case "RobertaProcessing" or "BertProcessing":
            {
                static string? First(JsonElement e, string key) =>
                    e.TryGetProperty(key, out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String ? a[0].GetString() : null;
                var cls = First(e, "cls") ?? throw bad("post-processor without 'cls'.");
                var sep = First(e, "sep") ?? throw bad("post-processor without 'sep'.");
                return ([Id(cls)], [Id(sep)]);
            }
            default:
                return ([], []);   // ByteLevel (offsets only) and others add no tokens
        }
    }

    private static DecoderAddedToken ParseAddedToken(JsonElement a, int id, Func<string, HfCheckpointException> bad) => new(
        id,
        Str(a, "content") ?? throw bad($"added token {id} has no 'content'."),
        Bool(a, "special") ?? false,
        Bool(a, "lstrip") ?? false,
        Bool(a, "rstrip") ?? false,
        Bool(a, "single_word") ?? false);

    /// <summary>tokenizer_config.json's added_tokens_decoder ({"id": {content, special, …}}) adds to (or overrides) tokenizer.json's list.</summary>
    private static void MergeConfigAddedTokens(List<DecoderAddedToken> added, JsonElement cfg)
    {
        if (cfg.ValueKind != JsonValueKind.Object || !cfg.TryGetProperty("added_tokens_decoder", out var dec) || dec.ValueKind != JsonValueKind.Object) return;
        foreach (var p in dec.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || p.Value.ValueKind != JsonValueKind.Object)
                throw new HfCheckpointException(HfFault.UnsupportedTokenizer, "tokenizer_config.json", $"added_tokens_decoder key '{p.Name}' is not an id with a token object.");
            var t = ParseAddedToken(p.Value, id, why => new HfCheckpointException(HfFault.UnsupportedTokenizer, "tokenizer_config.json", why));
            int i = added.FindIndex(x => x.Id == id);
            if (i >= 0) added[i] = t; else added.Add(t);
        }
    }

    // ------------------------------------------------------------------ vocab.json + merges.txt

    private static DecoderTokenizer FromVocabAndMerges(string vocabPath, string mergesPath, JsonElement cfg)
    {
        var root = ReadJson(vocabPath);
        if (root.ValueKind != JsonValueKind.Object) throw new HfCheckpointException(HfFault.UnsupportedTokenizer, vocabPath, "expected a token → id object.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
            vocab[p.Name] = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int id) && id >= 0 ? id
                : throw new HfCheckpointException(HfFault.UnsupportedTokenizer, vocabPath, $"the id of '{p.Name}' is not a non-negative integer.");
        var merges = new List<string>();
        foreach (var raw in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || (merges.Count == 0 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            if (line.Split(' ').Length != 2)
                throw new HfCheckpointException(HfFault.UnsupportedTokenizer, mergesPath, $"line {merges.Count + 1} ('{line}') is not two tokens separated by one space.");
            merges.Add(line);
        }
        // GPT-2's files, or Qwen2's (Qwen2Tokenizer: NFC, then its own split pattern before the byte alphabet)
        bool qwen2 = Str(cfg, "tokenizer_class") is "Qwen2Tokenizer" or "Qwen2TokenizerFast";
        PreTokenizerStep pre = qwen2
            ? new PreTokenizerStep.Sequence([
                new PreTokenizerStep.Split(new Regex(Qwen2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), PreTokenizerStep.SplitBehavior.Isolated, false),
                new PreTokenizerStep.ByteLevel(false, useRegex: false)])
            : new PreTokenizerStep.ByteLevel(Bool(cfg, "add_prefix_space") ?? false, useRegex: true);
        BpeSegmentEncoder encoder;
        try { encoder = new BpeSegmentEncoder(vocab, merges, qwen2 ? new TextNormalizer.Nfc() : null, pre, null, false, false, false, null, null); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new HfCheckpointException(HfFault.UnsupportedTokenizer, mergesPath, $"Microsoft.ML.Tokenizers could not build the BPE model ({e.Message}).");
        }
        // GPT2Tokenizer's default bos/eos/unk is <|endoftext|>, a special token matched in text
        var added = new List<DecoderAddedToken>();
        foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
            if ((HasKey(cfg, key) ? Token(cfg, key) : key == "pad_token" ? null : EndOfText) is { } name && vocab.TryGetValue(name, out int sid) && added.All(a => a.Id != sid))
                added.Add(new DecoderAddedToken(sid, name, Special: true));
        MergeConfigAddedTokens(added, cfg);
        return new DecoderTokenizer(DecoderTokenizerKind.ByteLevelBpe, vocabPath, encoder, vocab, added, ByteLevelBytes, stripLeadingSpace: false);
    }

    private const string EndOfText = "<|endoftext|>";

    /// <summary>Qwen2Tokenizer's PRETOKENIZE_REGEX (its tokenizer.json's Split pattern).</summary>
    private const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // ------------------------------------------------------------------ tokenizer.model

    private static DecoderTokenizer FromSentencePieceModel(string path, JsonElement cfg)
    {
        HfCheckpointException Bad(string why) => new(HfFault.UnsupportedTokenizer, path, why);
        SentencePieceModelFile model;
        try { model = SentencePieceModelFile.Read(File.ReadAllBytes(path)); }
        catch (InvalidProtocolBufferException e) { throw Bad($"not a SentencePiece model (protobuf: {e.Message})."); }
        if (model.Pieces.Count == 0) throw Bad("not a SentencePiece model: it holds no pieces.");
        if (model.ModelType != 2)
            throw Bad($"a SentencePiece {model.ModelType switch { 1 => "Unigram", 3 => "word", 4 => "char", _ => $"type-{model.ModelType}" }} model; DecoderTokenizer supports SentencePiece BPE (Llama-2 style).");
        if (model.HasCharsMap)
            throw Bad($"normalization rules ('{model.NormalizerName}', a precompiled charsmap) are not supported; Llama-style models use 'identity'.");
        if (model.TreatWhitespaceAsSuffix) throw Bad("treat_whitespace_as_suffix models are not supported.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < model.Pieces.Count; id++) vocab.TryAdd(model.Pieces[id].Piece, id);
        // <unk>, <s>, </s> and the other control pieces are special tokens; user-defined pieces are matched in text
        var added = new List<DecoderAddedToken>();
        for (int id = 0; id < model.Pieces.Count; id++)
            if (model.Pieces[id].Type is SentencePieceModelFile.PieceType.Control or SentencePieceModelFile.PieceType.Unknown)
                added.Add(new DecoderAddedToken(id, model.Pieces[id].Piece, Special: true));
        MergeConfigAddedTokens(added, cfg);
        var encoder = new SentencePieceBpeEncoder(model, Bool(cfg, "legacy") ?? true);
        var byteIds = Enumerable.Range(0, model.Pieces.Count).Where(i => model.Pieces[i].Type == SentencePieceModelFile.PieceType.Byte).ToHashSet();
        var tok = new DecoderTokenizer(DecoderTokenizerKind.SentencePieceModel, path, encoder, vocab, added,
            t => SentencePieceBytes(t, '▁', byteFallback: vocab.TryGetValue(t, out int i) && byteIds.Contains(i)), stripLeadingSpace: model.AddDummyPrefix);
        int? Valid(int id) => id >= 0 && id < model.Pieces.Count ? id : null;
        tok.UnkId = Valid(model.UnkId);
        tok._modelSpecials = (Valid(model.BosId), Valid(model.EosId), Valid(model.PadId));
        return tok;
    }

    // ------------------------------------------------------------------ special tokens and options

    private void ApplyConfig(string folder, JsonElement cfg, JsonElement map)
    {
        string P(string name) => Path.Combine(folder, name);
        var gen = File.Exists(P("generation_config.json")) ? ReadJson(P("generation_config.json")) : default;
        var model = File.Exists(P("config.json")) ? ReadJson(P("config.json")) : default;
        int? Named(string key)
        {
            var name = Token(cfg, key) ?? Token(map, key);
            if (name is null) return null;
            return TokenToId(name) ?? throw new HfCheckpointException(HfFault.UnsupportedTokenizer, File.Exists(P("tokenizer_config.json")) ? P("tokenizer_config.json") : P("special_tokens_map.json"),
                $"{key} '{name}' is neither in the vocabulary nor an added token.", key);
        }
        List<int> Ids(JsonElement e, string key) =>
            e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v) ? []
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int one) ? [one]
            : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.Number).Select(x => x.GetInt32()).ToList()
            : [];
        int? FirstOf(List<int> a, List<int> b) => a.Count > 0 ? a[0] : b.Count > 0 ? b[0] : null;
        var genEos = Ids(gen, "eos_token_id");
        BosId = Named("bos_token") ?? FirstOf(Ids(gen, "bos_token_id"), Ids(model, "bos_token_id")) ?? _modelSpecials.Bos;
        EosId = Named("eos_token") ?? FirstOf(genEos, Ids(model, "eos_token_id")) ?? _modelSpecials.Eos;
        PadId = Named("pad_token") ?? FirstOf(Ids(gen, "pad_token_id"), Ids(model, "pad_token_id")) ?? _modelSpecials.Pad;
        UnkId = Named("unk_token") ?? UnkId;
        if (Kind == DecoderTokenizerKind.ByteLevelBpe && Source.EndsWith("vocab.json", StringComparison.Ordinal))
        {
            // GPT2Tokenizer's defaults, where the config does not name (or null) them
            if (!HasKey(cfg, "bos_token") && !HasKey(map, "bos_token")) BosId ??= TokenToId(EndOfText);
            if (!HasKey(cfg, "eos_token") && !HasKey(map, "eos_token")) EosId ??= TokenToId(EndOfText);
        }
        var eos = new List<int>(genEos);
        if (EosId is int e && !eos.Contains(e)) eos.Insert(0, e);
        EosIds = eos;
        foreach (int id in eos.Concat(new[] { BosId, PadId, UnkId }.OfType<int>()))
            if ((uint)id >= (uint)VocabSize)
                throw new HfCheckpointException(HfFault.UnsupportedTokenizer, folder, $"special token id {id} is outside the vocabulary (size {VocabSize}).");
        // the ids of the special tokens the checkpoint names are special even when no added-token list says so
        foreach (int id in new[] { BosId, EosId, PadId, UnkId }.OfType<int>()) _special[id] = true;

        // BOS/EOS: tokenizer_config's add_bos_token / add_eos_token where given (LlamaTokenizer semantics), else the
        // tokenizer.json post-processor; a SentencePiece model defaults to BOS only, GPT-2's files to neither
        bool? addBos = Bool(cfg, "add_bos_token"), addEos = Bool(cfg, "add_eos_token");
        if (Kind == DecoderTokenizerKind.SentencePieceModel) { addBos ??= true; addEos ??= false; }
        if (addBos is not null || addEos is not null)
        {
            bool templateBos = BosId is int b0 && _prefix.Contains(b0), templateEos = EosId is int e0 && _suffix.Contains(e0);
            bool bos = addBos ?? templateBos, eosOn = addEos ?? templateEos;
            _prefix = bos && BosId is int b ? [b] : [];
            _suffix = eosOn && EosId is int s ? [s] : [];
        }
        AddBosToken = BosId is int bb && _prefix.Contains(bb);
        AddEosToken = EosId is int ee && _suffix.Contains(ee);
        CleanUpSpaces = Bool(cfg, "clean_up_tokenization_spaces") ?? false;
        ModelMaxLength = cfg.ValueKind == JsonValueKind.Object && cfg.TryGetProperty("model_max_length", out var ml) && ml.ValueKind == JsonValueKind.Number
            && ml.TryGetDouble(out double len) && len is > 0 and <= 100_000_000 ? (int)len : null;
    }

    private (int? Bos, int? Eos, int? Pad) _modelSpecials;

    // ------------------------------------------------------------------ token text → bytes

    private static byte[] ByteLevelBytes(string token) => ByteLevelAlphabet.Unmap(token) ?? Encoding.UTF8.GetBytes(token);

    private static byte[] SentencePieceBytes(string token, char replacement, bool byteFallback)
    {
        if (byteFallback && token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte b))
            return [b];
        return Encoding.UTF8.GetBytes(token.Replace(replacement, ' '));
    }

    // ------------------------------------------------------------------ small readers

    private static JsonElement ReadJson(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new HfCheckpointException(HfFault.UnsupportedTokenizer, path, $"not valid JSON ({e.Message})."); }
    }

    private static bool HasType(JsonElement e, string type) => FindByType(e, type).ValueKind == JsonValueKind.Object;

    /// <summary>The first object of <paramref name="type"/> in a component or its Sequence.</summary>
    private static JsonElement FindByType(JsonElement e, string type)
    {
        if (e.ValueKind != JsonValueKind.Object) return default;
        if (Str(e, "type") == type) return e;
        foreach (var listKey in new[] { "pretokenizers", "normalizers", "decoders", "processors" })
            if (e.TryGetProperty(listKey, out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var x in list.EnumerateArray())
                    if (FindByType(x, type) is { ValueKind: JsonValueKind.Object } found) return found;
        return default;
    }

    /// <summary>A special token from tokenizer_config.json / special_tokens_map.json: a string or an AddedToken object.</summary>
    private static string? Token(JsonElement e, string key)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => Str(v, "content"),
            _ => null,
        };
    }

    private static bool HasKey(JsonElement e, string key) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out _);

    private static string? Str(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool? Bool(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int? Int(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;
}
