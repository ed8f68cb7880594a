using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models.Tokenizers;
using Whetstone.Training.Tests.Text;

namespace Whetstone.Cli.Tests;

/// <summary>
/// The from-scratch path of examples/support-chat/run.sh at toy size, as a user runs it: whet tokenizer train on a text
/// folder, a Llama config beside it, whet train (causal-lm, model.scratch), then a chat fine-tune of that run and
/// whet evaluate of both.
/// </summary>
public sealed class PretrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-pretrain-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);
    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(_dir, args);

    private static readonly string[] Subjects = ["The shop", "Our team", "The store", "Support", "The office"];
    private static readonly string[] Verbs = ["opens at nine", "closes at five", "answers every mail", "ships orders daily", "sends a tracking link"];
    private static readonly string[] Tails = ["on weekdays.", "for every customer.", "without extra cost.", "in the morning.", "as promised."];

    /// <summary>Sentences from a small grammar, one document per file: a corpus whose next words are learnable.</summary>
    private void WriteCorpus(string folder, int files, int seed)
    {
        Directory.CreateDirectory(folder);
        var rng = new Random(seed);
        for (int f = 0; f < files; f++)
        {
            var sb = new StringBuilder();
            for (int s = 0; s < 60; s++)
                sb.Append(Subjects[rng.Next(Subjects.Length)]).Append(' ').Append(Verbs[rng.Next(Verbs.Length)]).Append(' ').Append(Tails[rng.Next(Tails.Length)]).Append(' ');
            File.WriteAllText(Path.Combine(folder, $"doc{f:D2}.txt"), sb.ToString().TrimEnd() + "\n");
        }
        File.WriteAllText(Path.Combine(folder, "notes.md"), "not text the tokenizer trainer reads");
    }

    [Fact]
    public void TokenizerTrainedHerePretrainsADecoderFromScratchThatThenChatTunes()
    {
        WriteCorpus(Path.Combine(_dir, "corpus"), 12, seed: 1);
        var tok = Whet("tokenizer", "train", "corpus", "--vocab-size", "400", "--out", "base",
            "--special", "<|endoftext|>", "--special", "<|im_start|>", "--special", "<|im_end|>", "--special", "<|pad|>",
            "--eos", "<|endoftext|>", "--pad", "<|pad|>", "--max-length", "256");
        Assert.True(tok.Code == 0, tok.Err + tok.Out);
        Assert.Contains("on 12 files", tok.Out);
        var tokenizer = DecoderTokenizer.Load(Path.Combine(_dir, "base"));
        Assert.InRange(tokenizer.VocabSize, 300, 400);   // merging stops early once no pair occurs twice
        Assert.Equal(0, tokenizer.EosId);
        Assert.Equal(3, tokenizer.PadId);
        const string sentence = " The shop opens at nine on weekdays.";
        int tokens = tokenizer.Encode(sentence, addSpecialTokens: false).Length;
        Assert.True(tokens <= 12, $"merges learnt from the corpus shorten its sentences: {tokens} tokens for {sentence.Length} bytes");
        Assert.Equal(sentence, tokenizer.Decode(tokenizer.Encode(sentence, addSpecialTokens: false)));

        File.WriteAllText(Path.Combine(_dir, "base", "config.json"), """
            {"model_type": "llama", "vocab_size": 400, "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": true, "eos_token_id": 0, "pad_token_id": 3}
            """);
        File.WriteAllText(Path.Combine(_dir, "pretrain.yaml"), """
            name: pretrain
            task: causal-lm
            model: { path: base, scratch: true }
            data: { train: corpus, validation: 0.15 }
            lm: { block_size: 64, samples: 1, max_new_tokens: 8 }
            train: { epochs: 6, batch_size: 8, lr: 0.01, warmup: 0.05 }
            """);
        var pre = Whet("train", "pretrain.yaml");
        Assert.True(pre.Code == 0, pre.Err + pre.Out);
        Assert.Contains("freshly initialised (model.scratch)", pre.Out);
        // an untrained model is about as unsure as the vocabulary is wide; the trained one has learnt the grammar
        var before = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "runs", "pretrain", "before.json")))!;
        double ppl0 = before["val_perplexity"]?.GetValue<double>() ?? before["perplexity"]!.GetValue<double>();
        Assert.InRange(ppl0, 200, 1300);
        WriteCorpus(Path.Combine(_dir, "heldout"), 2, seed: 2);
        var eval = Whet("evaluate", Path.Combine("runs", "pretrain"), "--data", "heldout", "--json");
        Assert.True(eval.Code == 0, eval.Err + eval.Out);
        double ppl = JsonNode.Parse(eval.Out)!["after"]!["perplexity"]!.GetValue<double>();
        Assert.True(ppl < 12, $"held-out perplexity after pre-training {ppl} (before {ppl0})\n{pre.Out}");

        // the pre-trained run is the base of a chat fine-tune (ChatML: its tokenizer has the turn markers)
        TinyDecoder.Chat(Path.Combine(_dir, "train.jsonl"), 32);
        TinyDecoder.Chat(Path.Combine(_dir, "test.jsonl"), 8);
        File.WriteAllText(Path.Combine(_dir, "chat.yaml"), """
            name: chat
            task: chat
            model: { path: runs/pretrain }
            data: { train: train.jsonl, test: test.jsonl, validation: 0.25 }
            lm: { samples: 1, max_new_tokens: 12 }
            train: { epochs: 16, batch_size: 4, lr: 0.006, warmup: 0 }
            """);
        var chat = Whet("train", "chat.yaml");
        Assert.True(chat.Code == 0, chat.Err + chat.Out);
        Assert.Contains("using ChatML", chat.Out);
        var scores = Whet("evaluate", Path.Combine("runs", "chat"), "--data", "test.jsonl", "--json");
        Assert.True(scores.Code == 0, scores.Err + scores.Out);
        var s = JsonNode.Parse(scores.Out)!;
        Assert.True(s["after"]!["loss"]!.GetValue<double>() < s["before"]!["loss"]!.GetValue<double>() - 1, scores.Out);
    }

    [Fact]
    public void ChatStudyChoosesBetweenLoraAndAFullFineTune()
    {
        TinyDecoder.Write(Path.Combine(_dir, "base"));
        TinyDecoder.Chat(Path.Combine(_dir, "train.jsonl"), 24);
        File.WriteAllText(Path.Combine(_dir, "tune.yaml"), """
            name: chat-study
            task: chat
            seed: 3
            model: { path: base }
            data: { train: train.jsonl, validation: 0.25 }
            lm: { samples: 0 }
            train: { epochs: 2, batch_size: 4, lr: 0.006, warmup: 0 }
            search:
              space:
                lora.rank: choice(0, 4)
                train.lr: loguniform(1e-3, 1e-2)
              metric: val_perplexity
              trials: 3
              startup_trials: 3
              pruner: none
            """);
        var tune = Whet("tune", "tune.yaml");
        Assert.True(tune.Code == 0, tune.Err + tune.Out);
        Assert.Contains("val_perplexity (minimize)", tune.Out);
        Assert.Equal(3, tune.Out.Split('\n').Count(l => l.Contains("COMPLETE after", StringComparison.Ordinal)));
        Assert.DoesNotContain("FAIL", tune.Out);
        // a causal-lm study has no test accuracy or F1 to show: dashes, not zeros
        var row = tune.Out.Split('\n').First(l => l.TrimStart().StartsWith("1 ", StringComparison.Ordinal) && l.Contains("COMPLETE", StringComparison.Ordinal));
        Assert.DoesNotContain("0.0 %", row);
        var best = Path.Combine(_dir, "runs", "tune", "chat-study", "best");
        Assert.True(Directory.Exists(best), tune.Out);
        var gen = Whet("generate", best, "When are you open?", "--chat", "--max-new-tokens", "4", "--json");
        Assert.True(gen.Code == 0, gen.Err + gen.Out);
    }

    [Fact]
    public void TokenizerTrainRefusesMistakesWithOneLine()
    {
        var missing = Whet("tokenizer", "train", "nowhere", "--out", "tok");
        Assert.Equal(1, missing.Code);
        Assert.Contains("nowhere: no such file or folder", missing.Err);
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        var empty = Whet("tokenizer", "train", "empty", "--out", "tok");
        Assert.Equal(1, empty.Code);
        Assert.Contains("holds no .txt files", empty.Err);
        WriteCorpus(Path.Combine(_dir, "corpus"), 1, seed: 3);
        var eos = Whet("tokenizer", "train", "corpus", "--out", "tok", "--eos", "</s>");
        Assert.Equal(1, eos.Code);
        Assert.Contains("--eos '</s>' is not one of the --special tokens", eos.Err);
        var small = Whet("tokenizer", "train", "corpus", "--out", "tok", "--vocab-size", "100");
        Assert.Equal(1, small.Code);
        Assert.Contains("VocabSize 100", small.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "tok")), "nothing is written when training is refused");
    }
}
