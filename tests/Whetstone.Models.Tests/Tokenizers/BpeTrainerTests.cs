using System.Text;
using System.Text.Json;
using Whetstone.Models.Tokenizers;

namespace Whetstone.Models.Tests.Tokenizers;

/// <summary>
/// The byte-level BPE trainer: merges worked out by hand on a tiny corpus, the incremental pair counts against a
/// trainer that recounts every pair before every merge, the saved folder read back by <see cref="DecoderTokenizer.Load"/>
/// (round trip, compression, special tokens), the file format against Llama-3's and Qwen3's tokenizer.json, determinism
/// and argument errors. (No parity check against the tokenizers library: /usr/bin/python3 has no `tokenizers`.)
/// </summary>
public class BpeTrainerTests
{
    private static readonly string[] ChatSpecials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"];

    private static string Scratch()
    {
        var dir = Path.Combine(Path.GetTempPath(), "whet-bpe-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string Asset(string name)
    {
        var home = Environment.GetEnvironmentVariable("WHETSTONE_HOME") is { Length: > 0 } h ? h
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");
        var dir = Path.Combine(home, "assets", name);
        if (!Directory.Exists(dir)) Assert.Fail($"Asset {name} is not cached in {dir}: run scripts/fetch-assets {name} (scripts/test does).");
        return dir;
    }

    /// <summary>The id of a printable ASCII byte's symbol after <paramref name="specials"/> special tokens: '!' (0x21) is the first symbol.</summary>
    private static int Ascii(char c, int specials = 1) => specials + (c - '!');

    // ------------------------------------------------------------------ (a) merges by hand

    /// <summary>
    /// The tokenizers course's corpus, one word per document (so no word has a leading space):
    /// hug ×10, pug ×5, pun ×12, bun ×4, hugs ×5. One special token, so the byte symbols are ids 1..256, printable ASCII
    /// from '!' = 1: b = 66, g = 71, h = 72, n = 78, p = 80, s = 83, u = 85; the space's symbol 'Ġ' is byte 0x20, the
    /// 33rd of the 68 bytes that come after the 188 printable ones: 1 + 188 + 32 = 221.
    /// Pair counts, merge by merge:
    ///   start:  h u 15, u g 20, p u 17, u n 16, b u 4, g s 5          → u g (20)  = "ug"   257
    ///   then:   h ug 15, p ug 5, ug s 5, p u 12, u n 16, b u 4         → u n (16)  = "un"   258
    ///   then:   h ug 15, p ug 5, ug s 5, p un 12, b un 4               → h ug (15) = "hug"  259
    ///   then:   hug s 5, p ug 5, p un 12, b un 4                       → p un (12) = "pun"  260
    ///   then:   hug s 5, p ug 5, b un 4: a tie at 5, (p 80, ug 257) &lt; (hug 259, s 83) → p ug = "pug" 261
    ///   then:   hug s 5 → "hugs" 262; b un 4 → "bun" 263; every word is one token and no pair is left.
    /// </summary>
    private static IEnumerable<string> HugCorpus() =>
        new[] { ("hug", 10), ("pug", 5), ("pun", 12), ("bun", 4), ("hugs", 5) }.SelectMany(w => Enumerable.Repeat(w.Item1, w.Item2));

    [Fact]
    public void HandCheckedCorpusGivesTheExpectedMergesAndIds()
    {
        var bpe = BpeTrainer.Train(HugCorpus(), new BpeTrainerOptions(VocabSize: 1000, SpecialTokens: ["<|endoftext|>"]));
        Assert.Equal([("u", "g"), ("u", "n"), ("h", "ug"), ("p", "un"), ("p", "ug"), ("hug", "s"), ("b", "un")], bpe.Merges);
        Assert.Equal(264, bpe.VocabSize);   // stopped early: no pair left
        Assert.Equal(["ug", "un", "hug", "pun", "pug", "hugs", "bun"], bpe.Tokens.Skip(257));
        Assert.Equal((85, 71, 221), (Ascii('u'), Ascii('g'), bpe.TokenToId("Ġ")!.Value));

        var dir = Scratch();
        bpe.Save(dir, eosToken: "<|endoftext|>");
        var tok = DecoderTokenizer.Load(dir);
        Assert.Equal([259], tok.Encode("hug"));
        Assert.Equal([262], tok.Encode("hugs"));
        Assert.Equal([263], tok.Encode("bun"));
        Assert.Equal([Ascii('b'), 257], tok.Encode("bug"));           // b ug: (b, ug) is no merge
        Assert.Equal([261, Ascii('s')], tok.Encode("pugs"));         // p ug s → pug s
        Assert.Equal([221, 259, 221, 260], tok.Encode(" hug pun"));   // Ġ hug Ġ pun: no word in the corpus had a space
        Assert.Equal([259, 0], tok.Encode("hug<|endoftext|>"));
    }

    [Fact]
    public void VocabSizeStopsTheMerges()
    {
        // 1 special + 256 symbols + 3 merges: u g, u n, h ug
        var bpe = BpeTrainer.Train(HugCorpus(), new BpeTrainerOptions(VocabSize: 260, SpecialTokens: ["<|endoftext|>"]));
        Assert.Equal([("u", "g"), ("u", "n"), ("h", "ug")], bpe.Merges);
        var dir = Scratch();
        bpe.Save(dir);
        var tok = DecoderTokenizer.Load(dir);
        Assert.Equal(260, tok.VocabSize);
        Assert.Equal([259, Ascii('s')], tok.Encode("hugs"));
        Assert.Equal([Ascii('p'), 258], tok.Encode("pun"));
    }

    [Fact]
    public void MinFrequencyStopsTheMerges()
    {
        // counts of the merges above: 20, 16, 15, 12, 5, 5, 4; at least 5 keeps the first six
        var bpe = BpeTrainer.Train(HugCorpus(), new BpeTrainerOptions(VocabSize: 1000, MinFrequency: 5));
        Assert.Equal(6, bpe.Merges.Count);
        Assert.Equal(("hug", "s"), bpe.Merges[^1]);
        // the default (2) merges a pair seen twice, not one seen once
        Assert.Equal([("a", "b")], BpeTrainer.Train(["ab", "ab", "cd"], new BpeTrainerOptions(1000)).Merges);
    }

    /// <summary>
    /// GPT-2's pattern gives a word its leading space ('Ġ'): "the cat the cat the sat the" is "the" ×1, " the" ×3,
    /// " cat" ×2, " sat" ×1. Pairs: t h 4, h e 4, Ġ t 3, a t 3, Ġ c 2, c a 2, Ġ s 1, s a 1.
    ///   t h and h e tie at 4: (h 71, e 68) &lt; (t 83, h 71)                → "he"
    ///   then t he 4, Ġ t 3, a t 3, …                                          → "the"
    ///   then Ġ the 3 and a t 3 tie: (a 64, t 83) &lt; (Ġ 220, the 257)      → "at"
    ///   then Ġ the 3, Ġ c 2, c at 2, Ġ s 1, s at 1                            → "Ġthe"
    /// </summary>
    [Fact]
    public void SpacesJoinTheWordAfterThem()
    {
        var bpe = BpeTrainer.Train(["the cat the cat the sat the"], new BpeTrainerOptions(256 + 4));
        Assert.Equal([("h", "e"), ("t", "he"), ("a", "t"), ("Ġ", "the")], bpe.Merges);
        Assert.Equal(["he", "the", "at", "Ġthe"], bpe.Tokens.Skip(256));
    }

    // ------------------------------------------------------------------ the incremental counts against a full recount

    /// <summary>BPE as written in a textbook: count every pair of every word before every merge (no specials).</summary>
    private static List<(string, string)> RecountingTrainer(IEnumerable<string> documents, int vocabSize, int minFrequency)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ByteToChar[b]).Order().Select(c => c.ToString()).ToList();
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var d in documents)
            foreach (System.Text.RegularExpressions.Match m in PreTokenizerStep.ByteLevel.Gpt2Pattern.Matches(d))
                counts[m.Value] = counts.GetValueOrDefault(m.Value) + 1;
        var words = counts.Select(kv => (Symbols: Encoding.UTF8.GetBytes(kv.Key).Select(b => ids[ByteLevelAlphabet.ByteToChar[b].ToString()]).ToList(), Count: kv.Value)).ToList();
        var merges = new List<(string, string)>();
        while (tokens.Count < vocabSize)
        {
            var pairs = new Dictionary<(int, int), int>();
            foreach (var (s, c) in words)
                for (int i = 0; i + 1 < s.Count; i++) pairs[(s[i], s[i + 1])] = pairs.GetValueOrDefault((s[i], s[i + 1])) + c;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1).ThenBy(p => p.Key.Item2).First();
            if (best.Value < minFrequency) break;
            var (a, b) = best.Key;
            var merged = tokens[a] + tokens[b];
            if (!ids.TryGetValue(merged, out int id)) { id = tokens.Count; ids[merged] = id; tokens.Add(merged); }
            merges.Add((tokens[a], tokens[b]));
            foreach (var (s, _) in words)
                for (int i = 0; i + 1 < s.Count; i++)
                    if (s[i] == a && s[i + 1] == b) { s[i] = id; s.RemoveAt(i + 1); }
        }
        return merges;
    }

    /// <summary>Seeded text with runs of one letter ("aaaa", overlapping pairs), repeated syllables and numbers.</summary>
    private static List<string> RunsCorpus(int seed, int documents)
    {
        string[] words = ["aaaa", "aaa", "aa", "banana", "bandana", "mississippi", "bookkeeper", "committee", "lll", "all", "ballad",
            "abab", "ababab", "the", "then", "there", "123", "1234", "2024", "!!", "?!", "...", "ok"];
        var rng = new Random(seed);
        var docs = new List<string>();
        for (int d = 0; d < documents; d++)
        {
            var sb = new StringBuilder();
            for (int i = rng.Next(5, 40); i > 0; i--) sb.Append(words[rng.Next(words.Length)]).Append(rng.Next(6) == 0 ? "\n" : rng.Next(8) == 0 ? "  " : " ");
            docs.Add(sb.ToString());
        }
        return docs;
    }

    [Fact]
    public void IncrementalCountsMatchAFullRecount()
    {
        // runs of one letter (overlapping pairs), and multi-byte text (accents, CJK, emoji: merges inside characters)
        foreach (var (docs, minFrequency) in new[] { (RunsCorpus(seed: 7, documents: 120), 2), (RunsCorpus(seed: 8, documents: 120), 9), (VariedCorpus(seed: 9, documents: 40), 2) })
        {
            var expected = RecountingTrainer(docs, 256 + 300, minFrequency);
            var bpe = BpeTrainer.Train(docs, new BpeTrainerOptions(256 + 300, minFrequency));
            Assert.True(expected.Count > 40, $"the reference made only {expected.Count} merges");
            Assert.Equal(expected, bpe.Merges);
        }
    }

    // ------------------------------------------------------------------ (b) round trip and compression

    private static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "A tokenizer turns text into numbers, and the numbers back into text.",
        "She said: \"We'll train it tonight, then we'll see.\"",
        "Le café était déjà fermé quand nous sommes arrivés à Genève.",
        "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
        "¿Dónde está la estación? Mañana, señor.",
        "東京は日本の首都です。私は毎朝コーヒーを飲みます。",
        "我们今天学习机器学习和自然语言处理。",
        "Great job 🎉🚀 see you soon 😀!",
        "def add(a, b):\n    return a + b\n",
        "In 2024 the model had 124,000,000 parameters and cost $3.50 per hour.",
        "Ελληνικά γράμματα και русский текст тоже.",
    ];

    /// <summary>Seeded documents of the sentences above, a few KB in all.</summary>
    private static List<string> VariedCorpus(int seed, int documents)
    {
        var rng = new Random(seed);
        var docs = new List<string>();
        for (int d = 0; d < documents; d++)
            docs.Add(string.Join(rng.Next(3) == 0 ? "\n\n" : " ", Enumerable.Range(0, rng.Next(2, 6)).Select(_ => Sentences[rng.Next(Sentences.Length)])));
        return docs;
    }

    [Fact]
    public void SavedTokenizerRoundTripsSeenAndUnseenText()
    {
        var docs = VariedCorpus(seed: 1, documents: 40);
        Assert.InRange(docs.Sum(d => Encoding.UTF8.GetByteCount(d)), 4_000, 40_000);
        var bpe = BpeTrainer.Train(docs, new BpeTrainerOptions(VocabSize: 600, SpecialTokens: ChatSpecials));
        Assert.Equal(600, bpe.VocabSize);
        var dir = Scratch();
        bpe.Save(dir, eosToken: "<|endoftext|>", padToken: "<|pad|>", modelMaxLength: 512);
        var tok = DecoderTokenizer.Load(dir);
        Assert.Equal(DecoderTokenizerKind.ByteLevelBpe, tok.Kind);
        Assert.Equal(600, tok.VocabSize);
        Assert.Equal(512, tok.ModelMaxLength);

        string[] heldOut =
        [
            "The lazy fox said: \"We'll see.\"",
            "Genève, déjà — Mañana! 首都です。",
            "안녕하세요, 세계! Ω≈ç√∫ ǅ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🦀🧪👩‍👩‍👧",   // characters never seen in training: their bytes
            "tabs\tand\r\nnewlines\n\n\n   trailing   ",
            "\u0000\u0001\u007f control bytes and a soft\u00adhyphen",
            "",
            " ",
            "'s'll'd 've 're",
        ];
        foreach (var s in heldOut)
        {
            var ids = tok.Encode(s);
            Assert.Equal(s, tok.Decode(ids));
            Assert.All(ids, id => Assert.InRange(id, 0, 599));
        }
        // an unseen character is its UTF-8 bytes: '한' (ED 95 9C) is three byte symbols
        var han = tok.Encode("한");
        Assert.Equal(["í", "ķ", "ľ"], han.Select(id => tok.IdToToken(id)));
    }

    [Fact]
    public void TrainedMergesCompressInDomainText()
    {
        var bpe = BpeTrainer.Train(VariedCorpus(seed: 2, documents: 40), new BpeTrainerOptions(VocabSize: 800, SpecialTokens: ChatSpecials));
        var dir = Scratch();
        bpe.Save(dir);
        var tok = DecoderTokenizer.Load(dir);
        var text = string.Join(" ", VariedCorpus(seed: 3, documents: 10));
        int bytes = Encoding.UTF8.GetByteCount(text), tokens = tok.Encode(text).Length;
        // a few KB of training text, sentences repeated: several bytes per token (byte symbols alone would be 1.0)
        Assert.True(bytes >= 4.0 * tokens, $"{bytes} bytes → {tokens} tokens ({(double)bytes / tokens:F2} bytes per token)");
        // and English words seen often are single tokens
        Assert.Single(tok.Encode(" quick"));
        Assert.Single(tok.Encode(" tokenizer"));
    }

    // ------------------------------------------------------------------ (c) special tokens

    [Fact]
    public void SpecialTokensTakeTheFirstIdsAndStayWhole()
    {
        // documents with special tokens in them: their text is cut out before counting
        var docs = VariedCorpus(seed: 4, documents: 30).Select(d => "<|im_start|>user\n" + d + "<|im_end|><|endoftext|>").ToList();
        var bpe = BpeTrainer.Train(docs, new BpeTrainerOptions(VocabSize: 500, SpecialTokens: ChatSpecials));
        Assert.Equal(ChatSpecials, bpe.SpecialTokens);
        Assert.Equal(ChatSpecials, bpe.Tokens.Take(4));
        Assert.Equal("!", bpe.Tokens[4]);
        Assert.DoesNotContain(bpe.Tokens.Skip(4), t => t.Contains("im_", StringComparison.Ordinal) || t.Contains("<|", StringComparison.Ordinal));

        var dir = Scratch();
        bpe.Save(dir, eosToken: "<|endoftext|>", padToken: "<|pad|>");
        var tok = DecoderTokenizer.Load(dir);
        Assert.Equal((0, 3), (tok.EosId, tok.PadId));
        Assert.Null(tok.BosId);
        Assert.Equal([0], tok.EosIds);
        Assert.False(tok.AddBosToken);
        Assert.False(tok.AddEosToken);
        for (int id = 0; id < 4; id++)
        {
            Assert.True(tok.IsSpecial(id));
            Assert.Equal(ChatSpecials[id], tok.IdToToken(id));
            Assert.Equal([id], tok.Encode(ChatSpecials[id]));
        }
        Assert.False(tok.IsSpecial(4));
        var chat = "<|im_start|>user\nGreat job<|im_end|><|endoftext|><|pad|><|pad|>";
        var ids = tok.Encode(chat);
        Assert.Equal(1, ids[0]);
        Assert.Equal([2, 0, 3, 3], ids[^4..]);
        Assert.DoesNotContain(ids[1..^4], id => id < 4);
        Assert.Equal(chat, tok.Decode(ids));
        Assert.Equal("user\nGreat job", tok.Decode(ids, skipSpecialTokens: true));
        // literal special text in user input stays text when asked
        Assert.DoesNotContain(tok.Encode("<|im_end|>", parseSpecialTokens: false), id => id < 4);

        using var cfg = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "tokenizer_config.json")));
        var root = cfg.RootElement;
        Assert.Equal("<|endoftext|>", root.GetProperty("eos_token").GetString());
        Assert.Equal("<|pad|>", root.GetProperty("pad_token").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("bos_token").ValueKind);
        Assert.Equal(["<|im_start|>", "<|im_end|>"], root.GetProperty("additional_special_tokens").EnumerateArray().Select(e => e.GetString()));
        Assert.True(root.GetProperty("added_tokens_decoder").GetProperty("2").GetProperty("special").GetBoolean());
        Assert.Null(tok.ModelMaxLength);   // transformers' "no limit"
    }

    // ------------------------------------------------------------------ the file format

    [Fact]
    public void TokenizerJsonHasTheShapeOfRealByteLevelFiles()
    {
        var bpe = BpeTrainer.Train(VariedCorpus(seed: 5, documents: 10), new BpeTrainerOptions(VocabSize: 300, SpecialTokens: ChatSpecials));
        using var ours = JsonDocument.Parse(bpe.ToTokenizerJson());
        using var llama3 = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Asset("llama3_tokenizer"), "package", "models", "tokenizer.json")));
        using var qwen3 = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Asset("qwen3_tokenizer"), "package", "models", "tokenizer.json")));
        static string[] Keys(JsonElement e) => e.EnumerateObject().Select(p => p.Name).ToArray();
        foreach (var real in new[] { llama3.RootElement, qwen3.RootElement })
        {
            Assert.Equal(Keys(real), Keys(ours.RootElement));
            Assert.Equal(Keys(real.GetProperty("model")), Keys(ours.RootElement.GetProperty("model")));
            Assert.Equal(Keys(real.GetProperty("added_tokens")[0]), Keys(ours.RootElement.GetProperty("added_tokens")[0]));
        }
        // merges as [left, right] pairs, as Qwen3's file (and tokenizers ≥ 0.20) writes them; Llama-3's older file has "left right" strings
        Assert.Equal(JsonValueKind.Array, qwen3.RootElement.GetProperty("model").GetProperty("merges")[0].ValueKind);
        Assert.Equal(JsonValueKind.Array, ours.RootElement.GetProperty("model").GetProperty("merges")[0].ValueKind);
        // Llama-3's ByteLevel post-processor and decoder, word for word; its pre-tokenizer's ByteLevel step with GPT-2's regex on
        foreach (var part in new[] { "post_processor", "decoder" })
            Assert.Equal(JsonSerializer.Serialize(llama3.RootElement.GetProperty(part)), JsonSerializer.Serialize(ours.RootElement.GetProperty(part)));
        var pre = ours.RootElement.GetProperty("pre_tokenizer");
        Assert.Equal(("ByteLevel", false, true), (pre.GetProperty("type").GetString(), pre.GetProperty("add_prefix_space").GetBoolean(), pre.GetProperty("use_regex").GetBoolean()));
        var model = ours.RootElement.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.Equal(300, model.GetProperty("vocab").EnumerateObject().Count());
        Assert.Equal(0, model.GetProperty("vocab").GetProperty("<|endoftext|>").GetInt32());
        Assert.Equal(4 + 188 + 32, model.GetProperty("vocab").GetProperty("Ġ").GetInt32());
        Assert.Equal(300 - 256 - 4, model.GetProperty("merges").GetArrayLength());
        // the byte symbols are written as characters, not \u escapes
        Assert.DoesNotContain("\\u", Encoding.UTF8.GetString(bpe.ToTokenizerJson()), StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ (d) determinism, progress

    [Fact]
    public void SameCorpusGivesTheSameBytes()
    {
        var options = new BpeTrainerOptions(VocabSize: 700, SpecialTokens: ChatSpecials);
        var a = BpeTrainer.Train(VariedCorpus(seed: 6, documents: 40), options);
        var b = BpeTrainer.Train(VariedCorpus(seed: 6, documents: 40).ToArray(), options);
        Assert.Equal(a.ToTokenizerJson(), b.ToTokenizerJson());
        string d1 = Scratch(), d2 = Scratch();
        a.Save(d1, eosToken: "<|endoftext|>", padToken: "<|pad|>");
        b.Save(d2, eosToken: "<|endoftext|>", padToken: "<|pad|>");
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(d1, f)), File.ReadAllBytes(Path.Combine(d2, f)));
        Assert.Equal(["tokenizer.json", "tokenizer_config.json"], Directory.GetFiles(d1).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // a different corpus gives a different tokenizer
        Assert.NotEqual(a.ToTokenizerJson(), BpeTrainer.Train(VariedCorpus(seed: 7, documents: 40), options).ToTokenizerJson());
    }

    [Fact]
    public void ProgressReportsWordsAndMerges()
    {
        var docs = VariedCorpus(seed: 8, documents: 30);
        var reports = new List<BpeTrainerProgress>();
        var bpe = BpeTrainer.Train(docs, new BpeTrainerOptions(VocabSize: 600), reports.Add);
        var counted = reports.Last(r => r.Stage == BpeTrainerStage.CountingWords);
        Assert.Equal(30, counted.Documents);
        long words = docs.Sum(d => (long)PreTokenizerStep.ByteLevel.Gpt2Pattern.Matches(d).Count);
        Assert.Equal(words, counted.Words);
        var merging = reports.Where(r => r.Stage == BpeTrainerStage.Merging).Select(r => r.Merges).ToList();
        Assert.Equal(Enumerable.Range(1, merging.Count).Select(i => 100 * i), merging);
        var done = Assert.Single(reports, r => r.Stage == BpeTrainerStage.Done);
        Assert.Equal((bpe.Merges.Count, 600 - 256), (done.Merges, done.MaxMerges));
        Assert.Equal(BpeTrainerStage.Done, reports[^1].Stage);
    }

    [Fact]
    public void CancellationStopsTraining()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => BpeTrainer.Train(["some text"], new BpeTrainerOptions(300), cancellationToken: cts.Token));
    }

    // ------------------------------------------------------------------ (e) bad input

    [Fact]
    public void BadOptionsAreArgumentErrors()
    {
        var small = Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(259, SpecialTokens: ChatSpecials)));
        Assert.Contains("VocabSize 259 is smaller than the 256 byte symbols plus 4 special tokens (260)", small.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(100)));
        var twice = Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(300, SpecialTokens: ["<|a|>", "<|a|>"])));
        Assert.Contains("'<|a|>' is given twice", twice.Message, StringComparison.Ordinal);
        var symbol = Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(300, SpecialTokens: ["Ġ"])));
        Assert.Contains("byte-level symbol of byte 0x20", symbol.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(300, SpecialTokens: [""])));
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions(300, MinFrequency: -1)));
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x", null!], new BpeTrainerOptions(300)));
        Assert.Throws<ArgumentNullException>(() => BpeTrainer.Train(null!, new BpeTrainerOptions(300)));

        var bpe = BpeTrainer.Train(["x"], new BpeTrainerOptions(300, SpecialTokens: ["<|endoftext|>"]));
        var eos = Assert.Throws<ArgumentException>(() => bpe.Save(Scratch(), eosToken: "</s>"));
        Assert.Contains("eosToken '</s>' is not a token of the vocabulary", eos.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => bpe.Save(Scratch(), modelMaxLength: 0));
    }

    [Fact]
    public void EmptyCorpusGivesTheByteAlphabet()
    {
        var bpe = BpeTrainer.Train([], new BpeTrainerOptions(1000, SpecialTokens: ["<|endoftext|>"]));
        Assert.Equal(257, bpe.VocabSize);
        Assert.Empty(bpe.Merges);
        var dir = Scratch();
        bpe.Save(dir);
        var tok = DecoderTokenizer.Load(dir);
        var text = "bytes only: é 🦀";
        Assert.Equal(Encoding.UTF8.GetByteCount(text), tok.Encode(text).Length);
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }
}
