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
}
