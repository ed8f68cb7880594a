using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>
/// The real all-MiniLM-L6-v2 (asset <c>minilm</c>: an ONNX graph imported into Hugging Face BERT) through the text
/// task: LoRA on sentence pairs with mean pooling, exported to a Hugging Face folder that loads back with the same
/// logits; and freeze.layers. Short runs (a few dozen sentences): these check the plumbing, the example measures quality.
/// </summary>
public sealed class MiniLmTextTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private TrainConfig Config(string extra, string pooling = "")
    {
        Assert.True(File.Exists(Path.Combine(Assets.CacheDir, "minilm", "model.onnx")), "asset minilm is not cached: scripts/fetch-assets minilm");
        var rng = new Rng(4);
        string Pick(string[] a) => a[(int)(rng.NextDouble() * a.Length)];
        var rows = Enumerable.Range(0, 48).Select(i =>
        {
            bool pos = i % 2 == 0;
            return new JsonObject
            {
                ["text"] = $"{Pick(["The phone", "This film", "The hotel", "Our waiter"])} {Pick(["was", "is"])} {(pos ? Pick(["wonderful", "great", "lovely"]) : Pick(["awful", "terrible", "dreadful"]))}",
                ["pair"] = Pick(["I would go again.", "Read the review."]),
                ["label"] = pos ? "pos" : "neg",
            }.ToJsonString();
        });
        File.WriteAllLines(_dir.File("train.jsonl"), rows);
        var yaml = "name: minilm\ntask: text-classification\nruns: runs\nseed: 3\n" +
            "data: { train: train.jsonl, validation: 0.25 }\n" +
            $"text: {{ model: 'asset:minilm', max_length: 24, pair_column: pair{pooling} }}\n" +
            "train: { epochs: 2, batch_size: 12, lr: 0.002 }\n" + extra;
        return ConfigLoader.Parse(yaml, "minilm.yaml", []) with { BaseDirectory = _dir.Path, Source = "minilm.yaml" };
    }

    private static float[] Logits(TextNet net, string[] texts, string[] pairs)
    {
        net.Module.Eval();
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        return net.Logits(texts.Select((t, i) => net.Tokenize(t, pairs[i], 24)).ToArray()).ToArray();
    }

    [Fact]
    public void Lora_on_pairs_with_mean_pooling_exports_a_folder_with_the_same_logits()
    {
        var task = TextClassification.Prepare(Config("lora: { rank: 4, alpha: 8 }\n", ", pooling: mean"), TextWriter.Null);
        var model = task.Net.Transformer!;
        Assert.Equal(TextPooling.Mean, model.Pooling);
        Assert.Equal(6, model.NumLayers);
        Assert.DoesNotContain(model.NamedTrainableParameters(), p => p.Name.Contains("pooler", StringComparison.Ordinal));
        Assert.Contains(model.NamedTrainableParameters(), p => p.Name.Contains("lora_A", StringComparison.Ordinal));
        var result = task.Run();
        Assert.True(result.After!.Report.Accuracy >= 0.75, $"accuracy {result.After.Report.Accuracy}");

        var texts = new[] { "The hotel was lovely", "Our waiter is dreadful" };
        var pairs = new[] { "I would go again.", "Read the review." };
        var bundle = TextBundle.Load(result.RunDir);
        Assert.Equal(TextPooling.Mean, bundle.Net.Transformer!.Pooling);
        var ours = Logits(bundle.Net, texts, pairs);
        var out_ = _dir.File("hf");
        HfExport.Export(result.RunDir, out_, mergeLora: true);
        Assert.Equal("mean", JsonNode.Parse(File.ReadAllText(Path.Combine(out_, "config.json")))!["classifier_pooling"]!.GetValue<string>());
        var (reloaded, report) = HfModel.Load(out_);
        Assert.True(report.Complete, report.ToString());
        Assert.Equal(TextPooling.Mean, reloaded.Pooling);
        var back = Logits(new TextNet(reloaded), texts, pairs);
        for (int i = 0; i < ours.Length; i++) Assert.Equal(ours[i], back[i], 4);
    }

    [Fact]
    public void Freeze_layers_trains_the_top_layers_and_the_head_only()
    {
        // the graph carries a pooler, so the default head input is the pooled first token, as transformers does
        var task = TextClassification.Prepare(Config("freeze: { layers: 4 }\n"), TextWriter.Null);
        var model = task.Net.Transformer!;
        Assert.Equal(TextPooling.Cls, model.Pooling);
        var trainable = model.NamedTrainableParameters().Select(p => p.Name).ToArray();
        string[] top = ["bert.encoder.layer.4.", "bert.encoder.layer.5.", "bert.pooler.", "classifier."];
        Assert.All(trainable, n => Assert.True(top.Any(t => n.StartsWith(t, StringComparison.Ordinal)), n));
        Assert.Equal(2 * 16 + 2 + 2, trainable.Length);
        // with mean pooling the pooler takes no part and is frozen too
        var mean = TextClassification.Prepare(Config("freeze: { layers: 4 }\n", ", pooling: mean"), TextWriter.Null).Net.Transformer!;
        Assert.Equal(2 * 16 + 2, mean.NamedTrainableParameters().Count());
    }
}
