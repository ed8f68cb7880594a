using System.Text.Json.Nodes;
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

    private string BaseModel(bool withTemplate = false) => TinyDecoder.Write(Path.Combine(_dir.Path, "base"), withTemplate);

    private static readonly (string Q, string A)[] Faq = TinyDecoder.Faq;

    private string Chat(string name, int rows) => TinyDecoder.Chat(Path.Combine(_dir.Path, name), rows);

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

    private sealed class SimulatedCrash : Exception;

    [Fact]
    public void AChatRunCrashedAndResumedLogsTheSameLossesBitForBit()
    {
        BaseModel();
        TrainConfig Cfg(string name) => Config("lora:\n  rank: 4\n  alpha: 8\n  dropout: 0.2") with
        {
            Name = name, Train = Config("").Train with { Epochs = 2, GradAccum = 2, CheckpointEvery = 2, LogEvery = 1 },
        };
        string[] Metrics(string runDir) => File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            o.Remove("seconds");
            return o.ToJsonString();
        }).ToArray();
        var reference = new Whetstone.Training.Trainer(CausalLmTask.Prepare(Cfg("ref"), TextWriter.Null), Cfg("ref"), TextWriter.Null).Run();

        string? runDir = null;
        int micro = 0;
        var crashing = new TrainerHooks { RunFolder = d => runDir = d, AfterMicroBatch = (_, _) => { if (micro++ == 5) throw new SimulatedCrash(); } };
        Assert.Throws<SimulatedCrash>(() => new Whetstone.Training.Trainer(CausalLmTask.Prepare(Cfg("crashed"), TextWriter.Null), Cfg("crashed"), TextWriter.Null) { Hooks = crashing }.Run());
        var resumed = new Whetstone.Training.Trainer(CausalLmTask.Prepare(Cfg("crashed"), TextWriter.Null), Cfg("crashed"), TextWriter.Null).Run(resume: runDir);
        Assert.Equal(Metrics(reference.RunDir), Metrics(resumed.RunDir));
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference.RunDir, "model", "model.safetensors")), File.ReadAllBytes(Path.Combine(resumed.RunDir, "model", "model.safetensors")));
    }
}
