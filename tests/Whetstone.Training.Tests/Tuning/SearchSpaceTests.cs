using Whetstone.Training.Config;
using Whetstone.Training.Tests.Config;
using Whetstone.Training.Tuning;

namespace Whetstone.Training.Tests.Tuning;

public class SearchSpaceTests
{
    private const string Base = """
        name: s
        model:
          head_hidden: 0
        train:
          epochs: 3
        """;

    private static StudyDefinition Study(string search, string? extra = null) =>
        StudyDefinition.Parse(Base + "\n" + (extra ?? "") + "search:\n" + search, "t.yaml", "/tmp/whet-space");

    private static string Error(string search, string? extra = null) =>
        Assert.Throws<ConfigException>(() => Study(search, extra)).Message;

    [Fact]
    public void DistributionsConditionsAndDefaultsAreRead()
    {
        var s = Study("""
              space:
                train.lr: loguniform(1e-5, 1e-2)
                train.batch_size: choice(8, 16, 32)
                train.epochs: int(1, 10)
                train.label_smoothing: uniform(0, 0.2)
                freeze.below: choice(block_13_expand, "block_15_expand", null)
                model.head_hidden: choice(0, 128)
                model.head_dropout: uniform(0, 0.5) if model.head_hidden > 0
              trials: 7
            """);
        var p = s.Space.Parameters;
        Assert.Equal(["train.lr", "train.batch_size", "train.epochs", "train.label_smoothing", "freeze.below", "model.head_hidden", "model.head_dropout"], p.Select(d => d.Key));
        Assert.Equal((DistributionKind.LogUniform, 1e-5, 1e-2), (p[0].Kind, p[0].Low, p[0].High));
        Assert.Equal(["8", "16", "32"], p[1].Choices);
        Assert.Equal((DistributionKind.Int, 1.0, 10.0), (p[2].Kind, p[2].Low, p[2].High));
        Assert.Equal(["block_13_expand", "block_15_expand", null], p[4].Choices);
        Assert.Equal(new Condition("model.head_hidden", ">", "0"), p[6].When);
        Assert.True(s.Direction.Maximize);
        Assert.Equal("val_macro_f1", s.Metric);
        Assert.Equal(7, s.Search.Trials);
        Assert.Equal(Path.Combine(Directory.GetCurrentDirectory(), "runs", "tune", "s.db"), s.StoragePath);   // runs: relative to the working directory
        Assert.Equal("s", s.Name);
        Assert.False(s.Space.IsActive(p[6], new Dictionary<string, string?> { ["model.head_hidden"] = "0" }, s.Base));
        Assert.True(s.Space.IsActive(p[6], new Dictionary<string, string?> { ["model.head_hidden"] = "128" }, s.Base));
        // a trial's config is the base with the values set
        var trial = new TrialRecord { Number = 4, Params = new Dictionary<string, string?> { ["train.lr"] = "0.003", ["freeze.below"] = null, ["train.batch_size"] = "16" } };
        var cfg = s.TrialConfig(trial);
        Assert.Equal((0.003, 16, (string?)null, "trial-004"), (cfg.Train.Lr, cfg.Train.BatchSize, cfg.Freeze.Below, cfg.Name));
        Assert.Equal(3, cfg.Train.Epochs);
        // val_loss is minimised
        Assert.False(Study("  space: {train.lr: 'uniform(0.1, 0.2)'}\n  metric: val_loss\n").Direction.Maximize);
    }

    [Fact]
    public void ConditionsOnConfigKeysReadTheBaseConfig()
    {
        var s = Study("  space:\n    model.head_dropout: uniform(0, 0.5) if model.head_hidden >= 64\n");
        Assert.False(s.Space.IsActive(s.Space.Parameters[0], new Dictionary<string, string?>(), s.Base));   // base head_hidden 0
        var t = StudyDefinition.Parse("name: s\nmodel:\n  head_hidden: 64\nsearch:\n  space:\n    model.head_dropout: uniform(0, 0.5) if model.head_hidden >= 64\n", "t.yaml", "/tmp");
        Assert.True(t.Space.IsActive(t.Space.Parameters[0], new Dictionary<string, string?>(), t.Base));
    }

    [Theory]
    [InlineData("train.lr: uniform(0.1, 0.1)", "is empty")]
    [InlineData("train.lr: uniform(0.2, 0.1)", "is empty")]
    [InlineData("train.epochs: int(5, 2)", "is empty")]
    [InlineData("train.lr: loguniform(0, 0.1)", "needs low > 0")]
    [InlineData("train.batch_size: choice()", "choice() is empty")]
    [InlineData("train.batch_size: choice(8, 8)", "lists a value twice")]
    [InlineData("train.lr: normal(0, 1)", "unknown distribution 'normal'")]
    [InlineData("train.lr: 0.001", "is not a distribution")]
    [InlineData("train.lr: uniform(a, 1)", "bound 'a' is not a number")]
    [InlineData("train.epochs: int(1.5, 3)", "whole numbers")]
    [InlineData("train.lrr: uniform(0.1, 0.2)", "unknown key 'lrr'")]
    [InlineData("trian.lr: uniform(0.1, 0.2)", "unknown key 'trian'")]
    [InlineData("train: choice(1, 2)", "search.space.train")]
    [InlineData("train.batch_size: choice(8, big)", "search.space.train.batch_size = big")]
    [InlineData("train.epochs: uniform(1, 10)", "use int(1, 10)")]
    [InlineData("search.trials: int(1, 3)", "cannot be searched")]
    [InlineData("model.head_dropout: uniform(0, 0.5) if model.head_width > 0", "'model.head_width' is not a config key")]
    public void BadSpacesAreClearErrorsBeforeAnyTrial(string entry, string expected)
    {
        var message = Error($"  space:\n    {entry}\n");
        Assert.Contains(expected, message);
        Assert.StartsWith("t.yaml", message);
    }

    [Fact]
    public void BadSettingsAreClearErrors()
    {
        const string space = "  space:\n    train.lr: loguniform(1e-4, 1e-2)\n";
        Assert.Contains("search.metric 'val_bleu' is not a validation metric of task image-classification; it reports val_macro_f1, val_accuracy, val_loss, val_roc_auc, val_pr_auc", Error(space + "  metric: val_bleu\n"));
        Assert.Contains("search.sampler must be grid, random or tpe", Error(space + "  sampler: bayes\n"));
        Assert.Contains("search.pruner must be none, median or asha", Error(space + "  pruner: hyperband\n"));
        Assert.Contains("reduction_factor", Error(space + "  pruner: asha\n  reduction_factor: 1\n"));
        Assert.Contains("grid needs int() or choice()", Error(space + "  sampler: grid\n"));
        Assert.Contains("search.on_interrupted must be retry or skip", Error(space + "  on_interrupted: maybe\n"));
        Assert.Contains("search.trials must be ≥ 1", Error(space + "  trials: 0\n"));
        Assert.Contains("search.space is empty", Error("  trials: 3\n"));
        Assert.Contains("unknown key 'trails'", Error(space + "  trails: 3\n"));
        Assert.Contains("must be listed before it", Error("  space:\n    model.head_dropout: uniform(0, 0.5) if model.head_hidden > 0\n    model.head_hidden: choice(0, 64)\n"));
        Assert.Contains("no search: block", Assert.Throws<ConfigException>(() => StudyDefinition.Parse(Base, "t.yaml", "/tmp")).Message);
    }

    [Fact]
    public void TheTuneExampleParsesAndStartsWithItsCommand()
    {
        var path = Path.Combine(Repo.Root, "examples", "fashion-mnist-tune.yaml");
        Assert.StartsWith("# whet tune examples/fashion-mnist-tune.yaml", File.ReadAllLines(path)[0]);
        var s = StudyDefinition.Load(path);
        Assert.Equal(20, s.Search.Trials);
        Assert.Equal(("tpe", "asha"), (s.Search.Sampler, s.Search.Pruner));
        Assert.Null(ConfigLoader.Load(path).Search?.Storage);   // whet train reads the same file
    }
}
