using Whetstone.Training.Config;

namespace Whetstone.Training.Tests.Config;

public class ConfigTests
{
    private static string Examples => Path.Combine(Repo.Root, "examples");

    [Theory]
    [InlineData("fashion-mnist.yaml")]
    [InlineData("fashion-mnist-gradual.yaml")]
    [InlineData("ppocr-orientation.yaml")]
    public void ExampleConfigsParseAndStartWithTheCommandThatRunsThem(string file)
    {
        var path = Path.Combine(Examples, file);
        Assert.StartsWith($"# whet train examples/{file}", File.ReadAllLines(path)[0]);
        var cfg = ConfigLoader.Load(path);
        Assert.Equal(Examples, cfg.BaseDirectory);
        Assert.False(string.IsNullOrEmpty(cfg.Name));
    }

    [Fact]
    public void ValuesAndDefaultsAreRead()
    {
        var cfg = ConfigLoader.Load(Path.Combine(Examples, "fashion-mnist-gradual.yaml"));
        Assert.Equal("asset:mobilenet_v2", cfg.Model.Path);
        Assert.Equal(96, cfg.Data.ImageSize);
        Assert.True(cfg.Data.Augment.Flip);
        Assert.Equal(8, cfg.Data.Augment.CropPadding);
        Assert.True(cfg.Freeze.Backbone);
        Assert.Equal([3, 5], cfg.Unfreeze.Select(u => u.Epoch));
        Assert.Equal("block_13_expand", cfg.Unfreeze[1].From);
        Assert.Equal(0.1, cfg.Unfreeze[1].LrScale);
        Assert.Equal(2e-3, cfg.Train.Lr);
        Assert.Equal(32, cfg.Train.BatchSize);
        Assert.Equal("cosine", cfg.Train.Schedule);      // default
        Assert.Equal(1.0, cfg.Train.ClipGradNorm);       // default
    }

    [Fact]
    public void SetOverridesDottedKeysWithYamlValues()
    {
        var cfg = ConfigLoader.Parse("train:\n  lr: 0.1\n", "t.yaml", ["train.lr=3e-4", "train.epochs=7", "freeze.patterns=[\"*_BN.*\", \"Conv1.*\"]", "model.scratch=true"]);
        Assert.Equal(3e-4, cfg.Train.Lr);
        Assert.Equal(7, cfg.Train.Epochs);
        Assert.Equal(["*_BN.*", "Conv1.*"], cfg.Freeze.Patterns);
        Assert.True(cfg.Model.Scratch);
    }

    [Fact]
    public void AnUnknownKeyNamesTheFileLineAndTheKnownKeys()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("name: x\ntrain:\n  epochs: 3\n  lrate: 0.1\n", "my.yaml"));
        Assert.Contains("my.yaml:4", e.Message);
        Assert.Contains("unknown key 'lrate'", e.Message);
        Assert.Contains("lr", e.Message);
        Assert.Contains("batch_size", e.Message);
    }

    [Fact]
    public void BadYamlAndBadOverridesAreClearErrors()
    {
        var bad = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("train:\n  - [unclosed\n", "bad.yaml")).Message;
        Assert.Matches(@"^bad\.yaml:\d+:\d+: not valid YAML", bad);
        Assert.Contains("expected key=value", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", "x", ["train.lr"])).Message);
        Assert.Contains("is a value, not a section", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("name: a\n", "x", ["name.first=1"])).Message);
        Assert.Contains("does not exist", Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/c.yaml")).Message);
    }

    [Fact]
    public void TheResolvedConfigRoundTripsThroughYaml()
    {
        var cfg = ConfigLoader.Load(Path.Combine(Examples, "fashion-mnist-gradual.yaml"));
        var again = ConfigLoader.Parse(ConfigWriter.ToYaml(cfg), "resolved.yaml");
        Assert.Equal(cfg.Train, again.Train);
        Assert.Equal(cfg.Model, again.Model);
        Assert.Equal(cfg.Unfreeze, again.Unfreeze);
        Assert.Equal(cfg.Data.Augment, again.Data.Augment);
    }
}

internal static class Repo
{
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Whetstone.slnx"))) return d.FullName;
            throw new DirectoryNotFoundException("repository root (Whetstone.slnx) not found above " + AppContext.BaseDirectory);
        }
    }
}
