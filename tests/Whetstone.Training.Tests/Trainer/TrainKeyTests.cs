using System.Reflection;
using System.Text.Json.Nodes;
using Whetstone.Training.Config;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;
using Whetstone.Training.Tests.Text;
using YamlDotNet.Serialization.NamingConventions;

namespace Whetstone.Training.Tests.Trainer;

/// <summary>Shared temp folder and baseline runs for <see cref="TrainKeyTests"/>.</summary>
public sealed class TrainKeyFixture : IDisposable
{
    internal TempDir Dir { get; } = new();
    internal Dictionary<(string Task, string Base), string[]> Baselines { get; } = [];
    public void Dispose() => Dir.Dispose();
}

/// <summary>
/// Every <c>train.*</c> key is honoured by every task or refused for it with a one-line error naming the key — never
/// silently ignored. For each key and task, a tiny run with the key changed must differ from the same run without the
/// change in what it writes (metrics.jsonl without wall-clock fields, the bundle's decision), or be refused. A key added
/// to <see cref="TrainSection"/> without a row here fails <see cref="Every_train_key_has_a_case"/>.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class TrainKeyTests(TrainKeyFixture fixture) : IClassFixture<TrainKeyFixture>
{
    private TempDir Dir => fixture.Dir;

    /// <summary>
    /// key → (change, the base config it is tried on: A = frozen bottom with cached features, B = layers below the head
    /// train (image: the top of the backbone with batch norms; text: a CNN encoder), S = A with SGD, U = B with batch
    /// statistics updating), and whether image / text honour it.
    /// </summary>
    private static readonly Dictionary<string, (Func<TrainSection, TrainSection> Change, string Base, bool Image, bool Text)> Cases = new()
    {
        ["epochs"] = (t => t with { Epochs = 3 }, "A", true, true),
        ["batch_size"] = (t => t with { BatchSize = 4 }, "A", true, true),
        ["optimizer"] = (t => t with { Optimizer = "sgd" }, "A", true, true),
        ["lr"] = (t => t with { Lr = 0.003 }, "A", true, true),
        ["backbone_lr_scale"] = (t => t with { BackboneLrScale = 0.1 }, "B", true, true),
        ["weight_decay"] = (t => t with { WeightDecay = 0.5 }, "A", true, true),
        ["momentum"] = (t => t with { Momentum = 0.5 }, "S", true, true),
        ["schedule"] = (t => t with { Schedule = "linear" }, "A", true, true),
        ["warmup"] = (t => t with { Warmup = 0.4 }, "A", true, true),
        ["clip_grad_norm"] = (t => t with { ClipGradNorm = 0.01 }, "A", true, true),
        ["grad_accum"] = (t => t with { GradAccum = 2 }, "A", true, true),
        ["label_smoothing"] = (t => t with { LabelSmoothing = 0.2f }, "A", true, true),
        ["bn_statistics"] = (t => t with { BnStatistics = "update" }, "B", true, false),
        ["bn_momentum"] = (t => t with { BnMomentum = 0.5f }, "U", true, false),
        ["feature_cache"] = (t => t with { FeatureCache = false }, "A", true, true),
        ["threads"] = (t => t with { Threads = 1 }, "A", true, true),
        ["threshold"] = (t => t with { Threshold = "recall:0.9" }, "A", true, true),
        ["select"] = (t => t with { Select = "val_loss" }, "A", true, true),
        ["checkpoint_every"] = (t => t with { CheckpointEvery = 1 }, "A", true, true),
        ["log_every"] = (t => t with { LogEvery = 1 }, "A", true, true),
    };

    [Fact]
    public void Every_train_key_has_a_case()
    {
        var keys = typeof(TrainSection).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite)
            .Select(p => UnderscoredNamingConvention.Instance.Apply(p.Name)).Order(StringComparer.Ordinal);
        Assert.Equal(keys, Cases.Keys.Order(StringComparer.Ordinal));
    }

    public static TheoryData<string, string> KeysByTask()
    {
        var d = new TheoryData<string, string>();
        foreach (var k in Cases.Keys) { d.Add("image", k); d.Add("text", k); }
        return d;
    }

    private TrainConfig Config(string task, string baseName, string name)
    {
        var train = new TrainSection { Epochs = 2, BatchSize = 6, Lr = 0.01, Threads = 2, Optimizer = baseName == "S" ? "sgd" : "adamw", BnStatistics = baseName == "U" ? "update" : "auto" };
        if (task == "image")
        {
            if (!Assets.IsCached("ppocr_cls")) Assert.Fail($"Asset ppocr_cls is not cached in {Assets.CacheDir}: run scripts/fetch-assets ppocr_cls (scripts/test does).");
            var data = Directory.Exists(Path.Combine(Dir.Path, "stripes")) ? Path.Combine(Dir.Path, "stripes") : TestImages.Stripes(Dir, "stripes", 10, 1);
            var cfg = new TrainConfig
            {
                Name = name, Runs = Path.Combine(Dir.Path, "runs"), BaseDirectory = Dir.Path, Source = "keys.yaml", Seed = 3,
                Model = new ModelConfig { Path = "asset:ppocr_cls" },
                Data = new DataConfig { Format = "folder", Train = data, Validation = 0.3, ImageSize = 48 },
                Freeze = new FreezeConfig { Backbone = baseName is "A" or "S" },
                Train = train,
            };
            if (baseName is "B" or "U")
            {
                // train the backbone from its third-last weighted layer up (a batch norm among them)
                var probe = ImageClassification.Prepare(cfg with { Freeze = new FreezeConfig() }, TextWriter.Null);
                var weighted = probe.Model.Backbone.Nodes.Where(n => probe.Model.Backbone.Layer(n.Name).Parameters().Any()).Select(n => n.Name).ToArray();
                cfg = cfg with { Freeze = new FreezeConfig { Below = weighted[^4] } };
            }
            return cfg;
        }
        TinyVectors.Write(Dir.File("vec.json"));
        if (!File.Exists(Path.Combine(Dir.Path, "sentences.jsonl"))) TextTestData.Sentences(Dir, "sentences.jsonl", 60, 1);
        return new TrainConfig
        {
            Name = name, Task = TextClassification.TaskName, Runs = Path.Combine(Dir.Path, "runs"), BaseDirectory = Dir.Path, Source = "keys.yaml",
            Data = new DataConfig { Format = "jsonl", Train = "sentences.jsonl", Validation = 0.3 },
            Text = new TextConfig
            {
                Vectors = "vec.json", Encoder = baseName is "A" or "S" ? "pool" : "cnn", Filters = 4, TextColumn = "review", LabelColumn = "stars",
                LabelMap = new Dictionary<string, string> { ["5"] = "positive", ["1"] = "negative" },
            },
            Train = train,
        };
    }

    /// <summary>What a run wrote that a key could change: metrics.jsonl without wall-clock fields, the bundle's temperature and threshold.</summary>
    private static string[] Artifacts(string runDir)
    {
        var lines = File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            o.Remove("seconds");
            return o.ToJsonString();
        });
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, "model", "whetstone.json")))!;
        return [.. lines, $"temperature {info["temperature"]}", $"threshold {info["threshold"]?.ToJsonString()}"];
    }

    private string[] Train(TrainConfig cfg) => Artifacts(TaskRegistry.Train(cfg, TextWriter.Null).RunDir);

    [Theory]
    [MemberData(nameof(KeysByTask))]
    public void A_train_key_is_honoured_or_refused_by_name(string task, string key)
    {
        var (change, baseName, image, text) = Cases[key];
        bool honoured = task == "image" ? image : text;
        var cfg = Config(task, honoured ? baseName : "A", $"{task}-{key}");   // refused: on the plainest config, so nothing else is
        var changed = cfg with { Train = change(cfg.Train) };
        if (!honoured)
        {
            var e = Assert.Throws<ConfigException>(() => TaskRegistry.Train(changed, TextWriter.Null));
            Assert.Contains($"train.{key}", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            return;
        }
        if (!fixture.Baselines.TryGetValue((task, baseName), out var baseline))
            fixture.Baselines[(task, baseName)] = baseline = Train(Config(task, baseName, $"{task}-base-{baseName}"));
        Assert.NotEqual(baseline, Train(changed));
    }

    [Theory]
    [InlineData("image")]
    [InlineData("text")]
    public void Keys_that_would_do_nothing_in_this_combination_are_refused(string task)
    {
        var a = Config(task, "A", $"{task}-refused");
        var e = Assert.Throws<ConfigException>(() => TaskRegistry.Train(a with { Train = a.Train with { Momentum = 0.5 } }, TextWriter.Null));
        Assert.Contains("train.momentum applies to optimizer: sgd", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ConfigException>(() => TaskRegistry.Train(a with { Train = a.Train with { Schedule = "onecycle", Warmup = 0.2 } }, TextWriter.Null));
        Assert.Contains("train.warmup does not apply to schedule: onecycle", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ConfigException>(() => TaskRegistry.Train(a with { Train = a.Train with { BackboneLrScale = 0.1 } }, TextWriter.Null));
        Assert.Contains("train.backbone_lr_scale has nothing to scale", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ConfigException>(() => TaskRegistry.Train(a with { Train = a.Train with { Select = "val_bleu" } }, TextWriter.Null));
        Assert.Contains("train.select 'val_bleu' is not a validation metric", e.Message, StringComparison.Ordinal);
    }
}
