using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>
/// The causal-lm and chat tasks end to end on a tiny Llama-family decoder with a byte-level BPE tokenizer written by
/// the test: the loss mask of chat rows (assistant turns only, end-of-turn included), training lowering the held-out
/// loss, the bundle (an ordinary Hugging Face folder that reloads and replays its golden set) and the report.
/// </summary>
public sealed class CausalLmTaskTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>GPT-2's byte → printable character map (bytes that are printable map to themselves, the rest above 255).</summary>
    private static string[] ByteAlphabet()
    {
        var map = new string[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = ((char)(printable ? b : 256 + extra++)).ToString();
        }
        return map;
    }

    /// <summary>A tiny decoder folder: Llama config (vocab 259), byte-level vocab + ChatML specials, random weights.</summary>
    private string BaseModel(bool withTemplate = false)
    {
        var dir = Path.Combine(_dir.Path, "base");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            {"model_type": "llama", "vocab_size": 259, "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": true, "eos_token_id": 256}
            """);
        var vocab = new JsonObject();
        var alphabet = ByteAlphabet();
        for (int b = 0; b < 256; b++) vocab[alphabet[b]] = b;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), vocab.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
        var config = new JsonObject
        {
            ["added_tokens_decoder"] = new JsonObject
            {
                ["256"] = new JsonObject { ["content"] = "<|endoftext|>", ["special"] = true },
                ["257"] = new JsonObject { ["content"] = "<|im_start|>", ["special"] = true },
                ["258"] = new JsonObject { ["content"] = "<|im_end|>", ["special"] = true },
            },
            ["eos_token"] = "<|endoftext|>", ["pad_token"] = "<|endoftext|>", ["add_bos_token"] = false,
        };
        if (withTemplate) config["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        var model = HfModel.CreateCausalLm(dir, seed: 3);
        HfModel.SaveCausalLm(model, dir, dir);
        return dir;
    }

    private static readonly (string Q, string A)[] Faq =
    [
        ("When are you open?", "We are open 9 to 5."),
        ("How do I reset my password?", "Use the reset link."),
        ("Can I get a refund?", "Yes, within 30 days."),
        ("Where is my order?", "Check the tracking page."),
    ];

    private string Chat(string name, int rows)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < rows; i++)
        {
            var (q, a) = Faq[i % Faq.Length];
            sb.AppendLine(new JsonObject
            {
                ["messages"] = new JsonArray(
                    new JsonObject { ["role"] = "system", ["content"] = "Support bot." },
                    new JsonObject { ["role"] = "user", ["content"] = q },
                    new JsonObject { ["role"] = "assistant", ["content"] = a }),
            }.ToJsonString());
        }
        var path = Path.Combine(_dir.Path, name);
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private TrainConfig Config(string extra) => ConfigLoader.Parse($$"""
        name: support
        task: chat
        runs: {{Path.Combine(_dir.Path, "runs")}}
        model:
          path: {{Path.Combine(_dir.Path, "base")}}
        data:
          train: {{Chat("train.jsonl", 32)}}
          test: {{Chat("test.jsonl", 8)}}
          validation: 0.25
        lm:
          samples: 2
          max_new_tokens: 24
        train:
          epochs: 12
          batch_size: 4
          lr: 0.005
          warmup: 0
        {{extra}}
        """, "support.yaml") with { BaseDirectory = _dir.Path };

    [Fact]
    public void ChatRowsTrainTheAssistantTurnAndItsEndOfTurnToken()
    {
        BaseModel();
        var log = new StringWriter();
        var task = CausalLmTask.Prepare(Config(""), log);
        Assert.Contains("using ChatML", log.ToString());
        Assert.Contains(258, task.StopIds);   // <|im_end|> ends a reply
        var ex = task.TrainSet.Examples[0];
        var targets = ex.Ids.Where((_, i) => ex.Target[i]).ToArray();
        var text = task.Tokenizer.Decode(targets);
        Assert.StartsWith(Faq.Select(f => f.A).First(a => text.StartsWith(a, StringComparison.Ordinal)), text);
        Assert.Contains("<|im_end|>", text);
        Assert.DoesNotContain("<|im_start|>", text);
        Assert.DoesNotContain("Support bot", text);
    }

    [Fact]
    public void FullFineTuneLowersTheHeldOutLossAndWritesAReloadableBundle()
    {
        BaseModel(withTemplate: true);
        var log = new StringWriter();
        var result = TaskRegistry.Train(Config(""), log);
        var outcome = result.Outcome!;
        Assert.True(outcome.After["loss"] < outcome.Before["loss"] - 1, log.ToString());
        Assert.True(outcome.After["token_accuracy"] > 0.6, $"token accuracy {outcome.After["token_accuracy"]}\n{log}");
        Assert.Contains("chat template: the checkpoint's own", log.ToString());

        var bundle = LmBundle.Load(outcome.BundleDir);
        Assert.Equal("chat", bundle.Task);
        Assert.NotNull(bundle.Template);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "generation_config.json", "whetstone.json", "golden.safetensors" })
            Assert.True(File.Exists(Path.Combine(outcome.BundleDir, f)), f);
        var report = File.ReadAllText(Path.Combine(result.RunDir, "report.html"));
        Assert.Contains("sample replies", report);
        Assert.Contains("We are open", report);
        var eval = JsonNode.Parse(File.ReadAllText(Path.Combine(result.RunDir, "eval.json")))!;
        var samples = eval["after"]!["samples"]!.AsArray();
        Assert.Equal(2, samples.Count);
        // the held-out questions are ones the bot was trained to answer: after fine-tuning its greedy reply is the answer
        Assert.Contains(samples, x => x!["reply"]!.GetValue<string>().Trim() == x["reference"]!.GetValue<string>().Replace("<|im_end|>", "", StringComparison.Ordinal).Trim());
        Assert.DoesNotContain(eval["before"]!["samples"]!.AsArray(), x => x!["reply"]!.GetValue<string>().Trim() == x["reference"]!.GetValue<string>().Replace("<|im_end|>", "", StringComparison.Ordinal).Trim());
    }

    [Fact]
    public void LoraRunKeepsThePeftAdapterBesideTheMergedWeights()
    {
        BaseModel();
        var result = TaskRegistry.Train(Config("lora:\n  rank: 4\n  alpha: 8") with { }, new StringWriter());
        var adapter = Path.Combine(result.Outcome!.BundleDir, "adapter");
        Assert.True(File.Exists(Path.Combine(adapter, "adapter_model.safetensors")));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!;
        Assert.Equal("CAUSAL_LM", cfg["task_type"]!.GetValue<string>());
        Assert.Equal(7, cfg["target_modules"]!.AsArray().Count);   // q, k, v, o, gate, up, down
        Assert.True(result.Outcome.After["loss"] < result.Outcome.Before["loss"]);
        Assert.True(File.Exists(Path.Combine(result.Outcome.BundleDir, "chat_template.jinja")));   // the built-in ChatML it used
        LmBundle.Load(result.Outcome.BundleDir);
    }

    [Fact]
    public void ConfigMistakesAreOneLineErrors()
    {
        BaseModel();
        var chatAsText = Assert.Throws<Whetstone.Training.Data.DataException>(() => CausalLmTask.Prepare(Config("") with { Task = "causal-lm" }, new StringWriter()));
        Assert.Contains("train them with task: chat", chatAsText.Message);
        var noModel = Assert.Throws<ConfigException>(() => CausalLmTask.Prepare(Config("") with { Model = new ModelConfig() }, new StringWriter()));
        Assert.Contains("model.path must name a decoder checkpoint", noModel.Message);
        var loraFreeze = Assert.Throws<ConfigException>(() => CausalLmTask.Prepare(Config("lora:\n  rank: 4\nfreeze:\n  layers: 1"), new StringWriter()));
        Assert.Contains("remove the freeze: settings", loraFreeze.Message);
    }
}
