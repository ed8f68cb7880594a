using System.Text.Json.Nodes;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Tasks;
using Whetstone.Training.Runs;
using Whetstone.Training.Tests.Config;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Tasks;

/// <summary>
/// The whole image workflow on a real pre-trained network (PaddleOCR's MobileNetV3 orientation classifier, ONNX,
/// 0.6 MB, fetched by scripts/fetch-assets ppocr_cls) and a generated two-class image folder: horizontal vs vertical
/// stripes, which the pre-trained features separate easily.
/// </summary>
public sealed class ImageClassificationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void NeedAsset()
    {
        if (!Assets.IsCached("ppocr_cls"))
            Assert.Fail($"Asset ppocr_cls is not cached in {Assets.CacheDir}: run scripts/fetch-assets ppocr_cls (scripts/test does).");
    }

    private string MakeStripes(string name, int perClass, int seed) => TestImages.Stripes(_dir, name, perClass, seed);

    private TrainConfig Config(string trainDir, string testDir) => new()
    {
        Name = "stripes",
        Runs = Path.Combine(_dir.Path, "runs"),
        BaseDirectory = _dir.Path,
        Source = "test",
        Seed = 3,
        Model = new ModelConfig { Path = "asset:ppocr_cls" },
        Data = new DataConfig { Format = "folder", Train = trainDir, Test = testDir, Validation = 0.25, ImageSize = 48 },
        Freeze = new FreezeConfig { Backbone = true },
        Train = new TrainSection { Epochs = 6, BatchSize = 8, Lr = 1e-2, Threads = 2 },
    };

    [Fact]
    public void FrozenBackboneWithNewHeadLearnsTheTaskAndWritesAReloadableRun()
    {
        NeedAsset();
        var cfg = Config(MakeStripes("train", 16, 1), MakeStripes("test", 10, 2));
        var log = new StringWriter();
        var recipe = ImageClassification.Prepare(cfg, log);
        Assert.Equal(["h", "v"], recipe.Labels);
        Assert.Equal(2, recipe.Model.HeadSpec.Classes);
        Assert.All(recipe.Model.Backbone.Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.All(recipe.Model.Head.Parameters(), p => Assert.True(p.RequiresGrad));

        var result = recipe.Run();
        Assert.True(result.After!.Report.Accuracy >= 0.9, $"accuracy {result.After!.Report.Accuracy} after training\n{log}");
        Assert.True(result.After!.Loss < result.Before.Loss, $"loss {result.Before.Loss} → {result.After!.Loss}");
        Assert.NotNull(result.CachedAt);                       // the frozen backbone's features were computed once
        Assert.Equal(6, result.EpochSeconds.Count);

        // run folder: config, metrics (per epoch + before/after), checkpoints, bundle, eval.json
        var run = result.RunDir;
        foreach (var f in new[] { "config.yaml", "metrics.jsonl", "eval.json", "run.json", "before.json", "checkpoints/best.safetensors", "model/model.safetensors", "model/whetstone.json", "model/golden.safetensors" })
            Assert.True(File.Exists(Path.Combine(run, f)), f + " missing");
        // resume checkpoints: one per epoch, the newest two kept (24 training images, batch 8: 3 steps an epoch → steps 15 and 18)
        Assert.Equal(["step-00000018.safetensors", "step-00000015.safetensors"], Directory.GetFiles(Path.Combine(run, "checkpoints"), "step-*").Select(Path.GetFileName).OrderDescending());
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        Assert.Equal(6, lines.Count(l => l.ContainsKey("val_accuracy")));
        Assert.Contains(lines, l => l["event"]?.GetValue<string>() == "before");
        var eval = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval.json")))!.AsObject();
        Assert.Equal(result.After!.Report.Accuracy, eval["accuracy"]!.GetValue<double>(), 5);
        Assert.Equal(2, eval["confusion_matrix"]!.AsArray().Count);
        Assert.NotNull(eval["before"]);

        // report.html, and the bundle's temperature (fitted on validation) and two-class decision threshold (max F1)
        var html = File.ReadAllText(Path.Combine(run, "report.html"));
        foreach (var id in new[] { "summary", "training", "confusion", "per-class", "binary", "calibration", "mistakes" })
            Assert.Contains($"<section id=\"{id}\">", html);
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "model", "whetstone.json")))!.AsObject();
        Assert.InRange(info["temperature"]!.GetValue<double>(), 0.05, 20);
        Assert.Equal("max_f1", info["threshold"]!["rule"]!.GetValue<string>());
        Assert.InRange(info["threshold"]!["value"]!.GetValue<double>(), 0, 1.0000001);

        // the bundle reloads, replays its golden set, and scores the same
        var bundle = ImageBundle.Load(run);
        Assert.Equal(["h", "v"], bundle.Labels);
        Assert.True(bundle.GoldenMaxDiff <= 1e-4);
        Assert.Equal(48, bundle.Preprocess.ImageSize);

        // a second run with the same name does not touch the first
        var again = ImageClassification.Prepare(cfg with { Train = cfg.Train with { Epochs = 1 } }, TextWriter.Null).Run();
        Assert.Equal(run + "-2", again.RunDir);
        Assert.True(File.Exists(Path.Combine(run, "model", "whetstone.json")));
    }

    [Fact]
    public void FreezeBelowALayerFreezesEverythingBeforeItAndTheDryRunSaysSo()
    {
        NeedAsset();
        var train = MakeStripes("train", 4, 1);
        var probe = ImageClassification.Prepare(Config(train, train) with { Freeze = new FreezeConfig() }, TextWriter.Null);
        var weighted = probe.Model.Backbone.Nodes.Where(n => probe.Model.Backbone.Layer(n.Name).Parameters().Any()).Select(n => n.Name).ToArray();
        var cut = weighted[^3];
        var recipe = ImageClassification.Prepare(Config(train, train) with { Freeze = new FreezeConfig { Below = cut } }, TextWriter.Null);
        var names = recipe.Model.Backbone.LayerNames.ToList();
        foreach (var node in recipe.Model.Backbone.Nodes)
        {
            var ps = recipe.Model.Backbone.Layer(node.Name).Parameters().ToArray();
            if (ps.Length == 0) continue;
            bool below = names.IndexOf(node.Name) < names.IndexOf(cut);
            Assert.All(ps, p => Assert.Equal(!below, p.RequiresGrad));
            // pre-trained weights: every batch norm keeps its statistics (bn_statistics: auto), its γ/β train above the cut
            if (recipe.Model.Backbone.Layer(node.Name) is Nn.Layers.BatchNorm2d bn) Assert.True(bn.StatisticsFrozen);
        }
        var update = ImageClassification.Prepare(Config(train, train) with { Freeze = new FreezeConfig { Below = cut }, Train = Config(train, train).Train with { BnStatistics = "update" } }, TextWriter.Null);
        foreach (var node in update.Model.Backbone.Nodes)
            if (update.Model.Backbone.Layer(node.Name) is Nn.Layers.BatchNorm2d bn)
                Assert.Equal(names.IndexOf(node.Name) < names.IndexOf(cut), bn.StatisticsFrozen);
        Assert.Contains("batch stats", update.DescribeLayers());
        var table = recipe.DescribeLayers();
        Assert.Contains("frozen stats", table);
        Assert.Contains("features cached here", table);
        Assert.Contains("memory estimate", table);
        Assert.Matches(@"parameters: [\d,]+ total, [\d,]+ trainable", table);
    }

    [Fact]
    public void GradualUnfreezingThawsLayersAtTheirEpochAndMovesTheFeatureCacheDown()
    {
        NeedAsset();
        var train = MakeStripes("train", 8, 1);
        var probe = ImageClassification.Prepare(Config(train, train), TextWriter.Null);
        var weighted = probe.Model.Backbone.Nodes.Where(n => probe.Model.Backbone.Layer(n.Name).Parameters().Any()).Select(n => n.Name).ToArray();
        string late = weighted[^2], early = weighted[^6];
        var cfg = Config(train, train) with
        {
            Unfreeze = [new UnfreezeStep { Epoch = 2, From = late, LrScale = 0.5 }, new UnfreezeStep { Epoch = 3, From = early, LrScale = 0.1 }],
            Train = Config(train, train).Train with { Epochs = 3 },
        };
        var log = new StringWriter();
        var recipe = ImageClassification.Prepare(cfg, log);
        long headOnly = recipe.Model.TrainableParameterCount();
        Assert.Equal(recipe.Model.Head.ParameterCount(), headOnly);
        var result = recipe.Run();

        var epochs = File.ReadAllLines(Path.Combine(result.RunDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).Where(o => o.ContainsKey("val_accuracy")).ToArray();
        var trainable = epochs.Select(e => e["trainable"]!.GetValue<long>()).ToArray();
        Assert.Equal(headOnly, trainable[0]);
        Assert.True(trainable[1] > trainable[0] && trainable[2] > trainable[1], string.Join(", ", trainable));
        Assert.Equal(recipe.Model.TrainableParameterCount(), trainable[2]);
        // the cache sits below the lowest trainable layer, so it moves down as layers thaw
        var cachedAt = epochs.Select(e => e["cached_at"]?.GetValue<string>()).ToArray();
        var order = recipe.Model.Backbone.LayerNames.ToList();
        Assert.True(order.IndexOf(cachedAt[1]!) < order.IndexOf(late) && order.IndexOf(cachedAt[2]!) < order.IndexOf(early), string.Join(", ", cachedAt));
        Assert.True(order.IndexOf(cachedAt[0]!) > order.IndexOf(cachedAt[1]!));
        Assert.Contains($"epoch 2: unfroze from '{late}' (lr × 0.5)", log.ToString());
        Assert.Contains($"epoch 3: unfroze from '{early}' (lr × 0.1)", log.ToString());
    }

    [Fact]
    public void BadConfigsAndDataAreClearErrors()
    {
        NeedAsset();
        var train = MakeStripes("train", 3, 1);
        var cfg = Config(train, train);
        Assert.Contains("No layer 'nope'", Assert.Throws<KeyNotFoundException>(() => ImageClassification.Prepare(cfg with { Model = cfg.Model with { Features = "nope" } }, TextWriter.Null)).Message);
        Assert.Contains("freeze.below", Assert.Throws<ConfigException>(() => ImageClassification.Prepare(cfg with { Freeze = new FreezeConfig { Below = "nope" } }, TextWriter.Null)).Message);
        Assert.Contains("unfreeze", Assert.Throws<ConfigException>(() => ImageClassification.Prepare(cfg with { Unfreeze = [new UnfreezeStep { Epoch = 99, From = "x" }] }, TextWriter.Null)).Message);
        Assert.Contains("matches no parameter", Assert.Throws<ConfigException>(() => ImageClassification.Prepare(cfg with { Freeze = new FreezeConfig { Patterns = ["zzz*"] } }, TextWriter.Null)).Message);

        // a test set with a label the model does not know
        Directory.CreateDirectory(Path.Combine(_dir.Path, "odd", "h"));
        Directory.CreateDirectory(Path.Combine(_dir.Path, "odd", "x"));
        File.Copy(Directory.GetFiles(Path.Combine(train, "h"))[0], Path.Combine(_dir.Path, "odd", "h", "a.png"));
        File.Copy(Directory.GetFiles(Path.Combine(train, "h"))[0], Path.Combine(_dir.Path, "odd", "x", "a.png"));
        var e = Assert.ThrowsAny<Exception>(() => ImageClassification.Prepare(cfg with { Data = cfg.Data with { Test = Path.Combine(_dir.Path, "odd") } }, TextWriter.Null));
        Assert.Contains("'x'", e.Message);
    }
}
