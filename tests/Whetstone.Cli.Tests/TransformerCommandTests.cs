using System.Text.Json.Nodes;

namespace Whetstone.Cli.Tests;

/// <summary>whet train / predict / evaluate / export on a LoRA run over the tiny BERT fixture (a child process each).</summary>
public sealed class TransformerCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-cli-bert-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(_dir, args);

    private static string Fixture(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures", "hf"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, "tests", "fixtures", "hf", name);
    }

    private void Data(string name, int n)
    {
        var subjects = new[] { "the cat", "the dog", "this film", "it" };
        File.WriteAllLines(Path.Combine(_dir, name), Enumerable.Range(0, n).Select(i =>
            new JsonObject { ["text"] = $"{subjects[i / 2 % 4]} {(i % 3 == 0 ? "was" : "is")} {(i % 2 == 0 ? "good" : "bad")}", ["label"] = i % 2 == 0 ? "pos" : "neg" }.ToJsonString()));
    }

    [Fact]
    public void LoraRunPredictsEvaluatesAndExports()
    {
        Data("train.jsonl", 64);
        Data("test.jsonl", 24);
        File.WriteAllText(Path.Combine(_dir, "bert.yaml"),
            $"# whet train bert.yaml\nname: bert\ntask: text-classification\nseed: 5\ndata: {{ train: train.jsonl, test: test.jsonl, validation: 0.25 }}\n" +
            $"text: {{ model: '{Fixture("bert-tiny")}', max_length: 16 }}\nlora: {{ rank: 4, alpha: 8 }}\ntrain: {{ epochs: 6, batch_size: 8, lr: 0.01 }}\n");
        var train = Whet("train", "bert.yaml");
        Assert.True(train.Code == 0, train.Out + train.Err);
        var run = Path.Combine(_dir, "runs", "bert");
        Assert.True(File.Exists(Path.Combine(run, "model", "adapters.safetensors")));

        var predict = Whet("predict", run, "it is good", "the dog was bad", "--json");
        Assert.True(predict.Code == 0, predict.Out + predict.Err);
        var lines = predict.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal("it is good", lines[0]["text"]!.GetValue<string>());

        var evaluate = Whet("evaluate", run, "--data", "test.jsonl", "--json");
        Assert.True(evaluate.Code == 0, evaluate.Out + evaluate.Err);
        Assert.Contains("accuracy", evaluate.Out, StringComparison.Ordinal);

        var export = Whet("export", run, "out", "--merge-lora");
        Assert.True(export.Code == 0, export.Out + export.Err);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt" }) Assert.True(File.Exists(Path.Combine(_dir, "out", f)), f);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "out", "config.json")))!;
        Assert.Equal(2, config["num_labels"]!.GetValue<int>());
        Assert.Equal(0, config["label2id"]!["neg"]!.GetValue<int>());

        var peft = Whet("export", run, "peft");
        Assert.True(peft.Code == 0, peft.Out + peft.Err);
        Assert.True(File.Exists(Path.Combine(_dir, "peft", "adapter_model.safetensors")) && File.Exists(Path.Combine(_dir, "peft", "adapter_config.json")));

        var bad = Whet("export", Path.Combine(_dir, "nowhere"), "x");
        Assert.Equal(1, bad.Code);
        Assert.StartsWith("error:", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void RawCheckpointIsScoredWithItsOwnHeadBeforeAnyTraining()
    {
        var ckpt = Fixture("bert-tiny");                          // BertForSequenceClassification, id2label neg/neu/pos
        var predict = Whet("predict", ckpt, "it is good", "the dog was bad", "--json");
        Assert.True(predict.Code == 0, predict.Out + predict.Err);
        var lines = predict.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(2, lines.Length);

        // the same probabilities as the checkpoint computes in process
        var (model, _) = Whetstone.Models.Importers.Hf.HfModel.Load(ckpt);
        var batch = model.Tokenizer!.EncodeBatch(["it is good"]);
        float[] p;
        using (Whetstone.Tensors.Autograd.Graph.NoGrad())
            p = model.Forward(batch.Ids, batch.Batch, batch.SeqLen, batch.MaskTensor(), batch.TokenTypeIds).Softmax().ToArray();
        var top = lines[0]["top"]!.AsArray();
        Assert.Equal(3, top.Count);
        foreach (var t in top)
        {
            int i = Array.IndexOf(new[] { "neg", "neu", "pos" }, t!["label"]!.GetValue<string>());
            Assert.True(i >= 0, t.ToJsonString());
            Assert.Equal(p[i], t["probability"]!.GetValue<double>(), 5);
        }

        // labels renamed on the command line; evaluation has no "before" (the checkpoint is the model before fine-tuning)
        Data("test.jsonl", 24);
        var evaluate = Whet("evaluate", ckpt, "--data", "test.jsonl", "--json", "--labels", "neg,neu,pos");
        Assert.True(evaluate.Code == 0, evaluate.Out + evaluate.Err);
        var result = JsonNode.Parse(evaluate.Out)!;
        Assert.InRange(result["accuracy"]!.GetValue<double>(), 0, 1);
        Assert.Null(result["before"]);

        // a head with another label count would be untrained: refused, not scored
        var refused = Whet("predict", ckpt, "it is good", "--labels", "a,b");
        Assert.Equal(1, refused.Code);
        Assert.Contains("no trained classification head", refused.Err, StringComparison.Ordinal);
    }
}
