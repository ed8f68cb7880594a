using System.Text.Json.Nodes;
using Whetstone.Tensors;
using Whetstone.Training;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Tasks;
using Whetstone.Training.Runs;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>The text workflow end to end on a tiny synthetic embedding and generated sentences (seconds).</summary>
public sealed class TextClassificationTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Sentences(string name, int n, int seed) => TextTestData.Sentences(_dir, name, n, seed);

    private TrainConfig Config(string encoder, params string[] sets)
    {
        TinyVectors.Write(_dir.File("vec.json"));
        Sentences("train.jsonl", 160, 1);
        Sentences("test.jsonl", 60, 2);
        var yaml = $"name: tiny\ntask: text-classification\nruns: {Path.Combine(_dir.Path, "runs")}\n" +
            "data: { train: train.jsonl, test: test.jsonl, validation: 0.25 }\n" +
            $"text: {{ vectors: vec.json, encoder: {encoder}, filters: 8, text_column: review, label_column: stars, label_map: {{\"5\": positive, \"1\": negative}} }}\n" +
            "train: { epochs: 8, batch_size: 16, lr: 0.01 }\n";
        return ConfigLoader.Parse(yaml, "tiny.yaml", sets) with { BaseDirectory = _dir.Path, Source = "tiny.yaml" };
    }

    [Fact]
    public void A_tuning_study_runs_the_text_recipe()
    {
        var cfg = Config("pool");
        var yaml = ConfigWriter.ToYaml(cfg) + "search:\n  study: tiny-text\n  space:\n    train.lr: loguniform(1e-3, 3e-2)\n  trials: 3\n  sampler: random\n  pruner: none\n";
        var study = Whetstone.Training.Tuning.StudyDefinition.Parse(yaml, "tiny.yaml", _dir.Path);
        using var store = Whetstone.Training.Tuning.StudyStore.Open(study.StoragePath);
        var info = store.EnsureStudy(study.Name, study.Space.ToJson(), study.Space.Hash(), study.Metric, study.Direction.ToString(), study.ConfigText);
        Assert.Equal(3, new Whetstone.Training.Tuning.Tuner(study, store, info, TextWriter.Null).Run(3, null));
        var trials = store.Trials(info.Id);
        Assert.All(trials, t => Assert.Equal(Whetstone.Training.Tuning.TrialState.Complete, t.State));
        Assert.All(trials, t => Assert.True(t.Value > 0.5, $"trial {t.Number}: {t.Value}"));
        Assert.All(trials, t => Assert.True((TaskRegistry.OfBundle(t.RunDir!).Name == TextClassification.TaskName), t.RunDir));
    }

    [Theory]
    [InlineData("pool")]
    [InlineData("cnn")]
    public void Trains_evaluates_against_the_untrained_model_and_writes_a_bundle_that_reloads(string encoder)
    {
        var recipe = TextClassification.Prepare(Config(encoder), TextWriter.Null);
        Assert.Equal(["negative", "positive"], recipe.Labels);
        Assert.Equal(120, recipe.TrainSet.Count);
        Assert.Equal(40, recipe.ValidationSet.Count);
        var epochs = new List<int>();
        var result = recipe.Run((e, v) => { epochs.Add(e); return true; });
        Assert.Equal(Enumerable.Range(1, 8), epochs);
        Assert.Equal("test", result.EvaluatedOn);
        Assert.True(result.After!.Report.Accuracy >= 0.9, $"accuracy {result.After!.Report.Accuracy}");
        Assert.True(result.After!.Report.Accuracy > result.Before.Report.Accuracy);
        Assert.Equal(encoder == "pool" ? "encoder" : null, result.CachedAt);   // pooled frozen vectors: features computed once
        foreach (var f in new[] { "config.yaml", "metrics.jsonl", "eval.json", "data_report.json", "report.html", "checkpoints/best.safetensors", "run.json", "before.json", "model/whetstone.json", "model/model.safetensors" })
            Assert.True(File.Exists(Path.Combine(result.RunDir, f)), f);
        Assert.Equal(CheckpointStore.Keep, Directory.GetFiles(Path.Combine(result.RunDir, "checkpoints"), "step-*.safetensors").Length);
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(result.BundleDir!, "whetstone.json")))!;
        Assert.Equal("text-classification", info["task"]!.GetValue<string>());
        Assert.Equal(encoder, info["encoder"]!["encoder"]!.GetValue<string>());
        Assert.True((TaskRegistry.OfBundle(result.RunDir).Name == TextClassification.TaskName));
        var bundle = TextBundle.Load(result.RunDir);
        Assert.True(bundle.GoldenMaxDiff <= 1e-4);
        var p = bundle.Predict(recipe.TestSet!.Rows.Take(5).Select(r => r.Text).ToArray());
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(1f, p[i].Sum(), 4);
            Assert.Equal(result.After!.Predicted![i], p[i][1] > p[i][0] ? 1 : 0);
            Assert.Equal(result.After!.Probabilities![2 * i + 1], p[i][1], 4);
        }
    }

    [Fact]
    public void Tuned_vectors_train_only_the_training_vocabulary_and_balanced_weights_are_used()
    {
        var recipe = TextClassification.Prepare(Config("pool", "text.tune_vectors=true", "text.class_weights=balanced"), TextWriter.Null);
        var tuned = recipe.Model.NamedTrainableParameters().Single(p => p.Name == "encoder.tuned.weight");
        Assert.True(tuned.Tensor.Dim(0) is > 10 and < 22, $"{tuned.Tensor.Dim(0)} rows");              // words seen in training + the OOV offset row
        var result = recipe.Run();
        Assert.Null(result.CachedAt);
        Assert.True(result.After!.Report.Accuracy >= 0.9, $"accuracy {result.After!.Report.Accuracy}");
        Assert.True(TextBundle.Load(result.BundleDir!).GoldenMaxDiff <= 1e-4);
    }

    [Fact]
    public void Config_mistakes_are_clear()
    {
        Assert.Contains("text.encoder", Assert.Throws<ConfigException>(() => TextClassification.Prepare(Config("rnn"), TextWriter.Null)).Message);
        Assert.Contains("unknown key 'encodr'", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("text: { encodr: cnn }", "x.yaml")).Message);
    }

    [Fact]
    public void Real_sentiment_sentences_read_as_the_example_does()
    {
        if (!Assets.IsCached("sentiment")) Assert.Fail($"Asset sentiment is not cached in {Assets.CacheDir}: run scripts/fetch-assets sentiment (scripts/test does).");
        var d = TextFiles.Read(Assets.Resolve("asset:sentiment", "."), new TextReadOptions
        {
            Format = "json", LabelColumn = "class", BadRows = "skip", LabelMap = new Dictionary<string, string> { ["0"] = "negative", ["1"] = "positive" },
        });
        Assert.Equal(3000, d.Count);
        Assert.Equal(3, d.Skipped.Count);
        Assert.Equal([1500, 1500], d.ClassCounts());
        var (train, val) = d.SplitStratified(0.2, 42);
        Assert.Equal([300, 300], val.ClassCounts());
        Assert.Equal(2400, train.Count);
    }
}
