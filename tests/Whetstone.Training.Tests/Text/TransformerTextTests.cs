using System.Text.Json.Nodes;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;
using Whetstone.Training.Runs;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>
/// The transformer path of the text recipe on the tiny Hugging Face fixtures (random weights, real layout): full and
/// partial fine-tunes, LoRA, bundles and Hugging Face export. The label depends on one word of the tiny vocabulary.
/// </summary>
public sealed class TransformerTextTests : IDisposable
{
    private readonly TempDir _dir = new();
    private bool _pairs;
    public void Dispose() => _dir.Dispose();

    internal static string Fixture(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures", "hf"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, "tests", "fixtures", "hf", name);
    }

    private void Sentences(string name, int n, int seed, bool pairs = false)
    {
        var rng = new Rng((ulong)seed);
        string Pick(string[] a) => a[(int)(rng.NextDouble() * a.Length)];
        var lines = new List<string>();
        for (int i = 0; i < n; i++)
        {
            bool pos = i % 2 == 0;
            var text = $"{Pick(["the cat", "the dog", "this film", "it"])} {Pick(["was", "is"])} {(pos ? "good" : "bad")}";
            var row = new JsonObject { ["text"] = text, ["label"] = pos ? "pos" : "neg" };
            if (pairs) row["pair"] = Pick(["hello world", "the mat"]);
            lines.Add(row.ToJsonString());
        }
        File.WriteAllLines(_dir.File(name), lines);
    }

    private TrainConfig Config(string model, string extra = "", params string[] sets)
    {
        Sentences("train.jsonl", 96, 1, _pairs);
        Sentences("test.jsonl", 40, 2, _pairs);
        var yaml = "name: tiny\ntask: text-classification\nruns: runs\nseed: 3\n" +
            "data: { train: train.jsonl, test: test.jsonl, validation: 0.25 }\n" +
            $"text: {{ model: {model}, max_length: 24{(_pairs ? ", pair_column: pair" : "")} }}\n" +
            "train: { epochs: 6, batch_size: 8, lr: 0.003, warmup: 0.1 }\n" + extra;
        return ConfigLoader.Parse(yaml, "tiny.yaml", sets) with { BaseDirectory = _dir.Path, Source = "tiny.yaml" };
    }

    private static float[] Logits(TextNet net, IReadOnlyList<string> texts, int maxLength = 24)
    {
        net.Module.Eval();
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        return net.Logits(texts.Select(t => net.Tokenize(t, null, maxLength)).ToArray()).ToArray();
    }

    private static float[] Logits(TextEncoderClassifier model, IReadOnlyList<string> texts) => Logits(new TextNet(model), texts);

    [Fact]
    public void Bert_full_fine_tune_beats_the_model_before_and_its_bundle_reloads()
    {
        var recipe = TextClassification.Prepare(Config(Fixture("bert-tiny")), TextWriter.Null);
        Assert.NotNull(recipe.Net.Transformer);
        Assert.Equal(recipe.Model.ParameterCount(), recipe.Model.TrainableParameterCount());
        Assert.Contains("bert-tiny", recipe.DescribeLayers() + recipe.Describe(), StringComparison.Ordinal);
        // pairs get token types 1 after the first [SEP]
        var tok = recipe.Net.Tokenize("the cat", "hello", 24);
        Assert.Equal([0, 0, 0, 0, 1, 1], tok.Types!);
        // dynamic padding: padded rows give the same logits as alone
        var alone = Logits(recipe.Net, ["it is good"]);
        var padded = Logits(recipe.Net, ["it is good", "the cat was very very bad this film is not good"]);
        for (int i = 0; i < alone.Length; i++) Assert.Equal(alone[i], padded[i], 4);

        var result = recipe.Run();
        Assert.True(result.After!.Report.Accuracy >= 0.9, $"accuracy {result.After!.Report.Accuracy}");
        Assert.True(result.After!.Report.Accuracy > result.Before.Report.Accuracy, $"before {result.Before.Report.Accuracy}");
        foreach (var f in new[] { "config.yaml", "metrics.jsonl", "eval.json", "data_report.json", "report.html", "checkpoints/best.safetensors", "model/whetstone.json", "model/model.safetensors", "model/golden.safetensors" })
            Assert.True(File.Exists(Path.Combine(result.RunDir, f)), f);
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(result.BundleDir!, "whetstone.json")))!;
        Assert.Equal("transformer", info["encoder"]!["kind"]!.GetValue<string>());
        Assert.Equal(TextNet.WeightsSha256(Fixture("bert-tiny")), info["encoder"]!["weights_sha256"]!.GetValue<string>());
        var bundle = TextBundle.Load(result.RunDir);
        Assert.True(bundle.GoldenMaxDiff <= 1e-5, $"golden {bundle.GoldenMaxDiff}");
        var p = bundle.Predict(["it is good", "the dog was bad"]);
        Assert.True(p[0][bundle.Labels.ToList().IndexOf("pos")] > 0.5 && p[1][bundle.Labels.ToList().IndexOf("neg")] > 0.5);

        // full export loads back as a plain Hugging Face model with the same logits
        var outDir = _dir.File("export-bert");
        var export = HfExport.Export(result.RunDir, outDir, mergeLora: false);
        Assert.False(export.Adapters);
        var (back, report) = HfModel.Load(outDir);
        Assert.True(report.Complete);
        Assert.Equal(bundle.Labels, report.Labels);
        var texts = new[] { "it is good", "the cat was bad" };
        var expected = Logits(bundle.Net, texts);
        var actual = Logits(back, texts);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    private static string[] Trainable(TextEncoderClassifier m) => m.NamedTrainableParameters().Select(p => p.Name).ToArray();

    [Fact]
    public void DistilBert_freeze_layers_freezes_the_embeddings_and_the_first_layers()
    {
        var recipe = TextClassification.Prepare(Config(Fixture("distilbert-tiny"), "freeze: { layers: 1 }\n"), TextWriter.Null);
        var m = recipe.Net.Transformer!;
        Assert.All(m.GetModule(m.EmbeddingsPath).Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.All(m.GetModule(m.LayerPath(0)).Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.All(m.GetModule(m.LayerPath(1)).Parameters(), p => Assert.True(p.RequiresGrad));
        foreach (var h in m.HeadPaths) Assert.All(m.GetModule(h).Parameters(), p => Assert.True(p.RequiresGrad));
        var frozenBefore = m.GetModule(m.LayerPath(0)).StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var result = recipe.Run();
        Assert.True(result.After!.Report.Accuracy > result.Before.Report.Accuracy, $"{result.Before.Report.Accuracy} → {result.After!.Report.Accuracy}");
        foreach (var (k, v) in m.GetModule(m.LayerPath(0)).StateDict()) Assert.Equal(frozenBefore[k], v.ToArray());
        Assert.True(TextBundle.Load(result.RunDir).GoldenMaxDiff <= 1e-5);
        // freeze.below with or without the model's base prefix freezes the same parameters as freeze.layers
        var layers = Trainable(recipe.Net.Transformer!);
        foreach (var below in new[] { "transformer.layer.1", "distilbert.transformer.layer.1" })
            Assert.Equal(layers, Trainable(TextClassification.Prepare(Config(Fixture("distilbert-tiny"), $"freeze: {{ below: {below} }}\n"), TextWriter.Null).Net.Transformer!));
        Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config(Fixture("distilbert-tiny"), "freeze: { below: transformer.layer.9 }\n"), TextWriter.Null));
        // freeze.layers beyond the model, and patterns that match nothing, are config errors
        Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config(Fixture("distilbert-tiny"), "freeze: { layers: 5 }\n"), TextWriter.Null));
        Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config(Fixture("distilbert-tiny"), "freeze: { patterns: [nothing.*] }\n"), TextWriter.Null));
    }

    [Fact]
    public void Roberta_lora_trains_only_adapters_and_head_and_exports_merged_and_as_peft()
    {
        _pairs = true;   // text pairs: <s> a </s></s> b </s>
        var recipe = TextClassification.Prepare(Config(Fixture("roberta-tiny"), "lora: { rank: 4, alpha: 8 }\n", "train.lr=0.01"), TextWriter.Null);
        var m = recipe.Net.Transformer!;
        var trainable = m.NamedTrainableParameters().Select(p => p.Name).ToArray();
        Assert.All(trainable, n => Assert.True(n.Contains("lora_", StringComparison.Ordinal) || n.StartsWith("classifier.", StringComparison.Ordinal), n));
        Assert.Contains(trainable, n => n.Contains("lora_A", StringComparison.Ordinal));
        var baseQuery = m.StateDict()["roberta.encoder.layer.0.attention.self.query.weight"].ToArray();
        var result = recipe.Run();
        Assert.True(result.After!.Report.Accuracy > result.Before.Report.Accuracy, $"{result.Before.Report.Accuracy} → {result.After!.Report.Accuracy}");
        Assert.Equal(baseQuery, m.StateDict()["roberta.encoder.layer.0.attention.self.query.weight"].ToArray());

        // the bundle holds only adapters + head
        Assert.False(File.Exists(Path.Combine(result.BundleDir!, "model.safetensors")));
        var saved = SafeTensors.LoadAll(Path.Combine(result.BundleDir!, TextBundle.AdaptersFile));
        Assert.Equal(m.AdapterStateDict().Keys.Order(), saved.Keys.Order());
        Assert.All(saved.Keys, k => Assert.True(k.Contains("lora_", StringComparison.Ordinal) || k.StartsWith("classifier.", StringComparison.Ordinal), k));
        var bundle = TextBundle.Load(result.RunDir);
        Assert.True(bundle.GoldenMaxDiff <= 1e-5, $"golden {bundle.GoldenMaxDiff}");
        Assert.NotNull(bundle.Lora);
        var texts = new[] { "it is good", "the cat was bad", "this film is good" };
        var unmerged = Logits(bundle.Net, texts);

        var merged = HfExport.Export(result.RunDir, _dir.File("merged"), mergeLora: true);
        Assert.True(merged.Merged);
        var (back, _) = HfModel.Load(merged.Folder);
        Assert.Empty(LoraInjector.Layers(back));
        var again = Logits(back, texts);
        for (int i = 0; i < unmerged.Length; i++) Assert.True(Math.Abs(unmerged[i] - again[i]) <= 1e-5, $"{i}: {unmerged[i]} vs {again[i]}");

        var peft = HfExport.Export(result.RunDir, _dir.File("peft"), mergeLora: false);
        Assert.True(peft.Adapters);
        var adapter = SafeTensors.LoadAll(Path.Combine(peft.Folder, "adapter_model.safetensors"));
        Assert.All(adapter.Keys, k => Assert.StartsWith("base_model.model.", k, StringComparison.Ordinal));
        Assert.Contains("base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight", adapter.Keys);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(peft.Folder, "adapter_config.json")))!;
        Assert.Equal(4, cfg["r"]!.GetValue<int>());
        Assert.Equal(8, cfg["lora_alpha"]!.GetValue<double>());
        Assert.Equal(0, cfg["lora_dropout"]!.GetValue<double>());
        Assert.Equal(["query", "value"], cfg["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.True(File.Exists(Path.Combine(peft.Folder, "vocab.json")) && File.Exists(Path.Combine(peft.Folder, "merges.txt")));
    }

    [Fact]
    public void Config_errors_are_clear()
    {
        Sentences("train.jsonl", 20, 1);
        var words = ConfigLoader.Parse("task: text-classification\ndata: { train: train.jsonl }\nlora: { rank: 4 }\n", "w.yaml") with { BaseDirectory = _dir.Path, Source = "w.yaml" };
        var e = Assert.Throws<ConfigException>(() => TextClassification.Prepare(words, TextWriter.Null));
        Assert.Contains("lora", e.Message, StringComparison.Ordinal);
        Assert.Contains("text.model", e.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config("no-such-org/no-such-model"), TextWriter.Null));
        Assert.Contains("no-such-org/no-such-model", missing.Message, StringComparison.Ordinal);
        Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config(Fixture("bert-tiny"), "lora: { rank: -1 }\n"), TextWriter.Null));
        Assert.Null(Config(Fixture("bert-tiny"), "lora: { rank: 0 }\n").Lora);   // rank 0: LoRA off, a full fine-tune
        Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config(Fixture("bert-tiny"), "lora: { rank: 4 }\nfreeze: { layers: 1 }\n"), TextWriter.Null));
    }

    [Fact]
    public void The_sentiment_bert_example_parses()
    {
        var dir = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Fixture("bert-tiny"))))!;
        var path = Path.Combine(Path.GetDirectoryName(dir)!, "examples", "sentiment-bert.yaml");
        Assert.StartsWith("# whet train", File.ReadLines(path).First(), StringComparison.Ordinal);
        var cfg = ConfigLoader.Load(path);
        Assert.Equal(TextClassification.TaskName, cfg.Task);
        Assert.NotNull(cfg.Text.Model);
        Assert.NotNull(cfg.Lora);
    }
}
