using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

public class FreezingTests
{
    private static ToyModel Model() => new(8, 3, 3, new Rng(1));

    private static List<string> Trainable(Module m) => m.NamedTrainableParameters().Select(p => p.Name).ToList();

    [Fact]
    public void GlobAndRegexPatterns()
    {
        var m = Model();
        Assert.Equal(18, Freezing.Freeze(m, "encoder.layer.*.self.*"));          // 3 layers × 3 linears × (w, b)
        Assert.DoesNotContain(Trainable(m), n => n.Contains(".self.", StringComparison.Ordinal));
        Assert.Contains("encoder.layer.0.output.weight", Trainable(m));
        Assert.Equal(3, Freezing.Unfreeze(m, "*.query.?ias") + Freezing.Unfreeze(m, "nothing"));
        Assert.Equal(8, Freezing.Freeze(m, "*.bias"));   // embeddings, 3 query, 3 output, classifier
        Assert.Equal(0, Freezing.Freeze(m, "*.bias"));   // nothing left to change
        Freezing.UnfreezeAll(m);
        Assert.Equal(4, Freezing.Freeze(m, @"re:encoder\.layer\.(0|2)\.output\..*"));
        Assert.DoesNotContain("encoder.layer.2.output.bias", Trainable(m));
        Assert.Contains("encoder.layer.1.output.bias", Trainable(m));
        Assert.True(Freezing.Matches("*.weight", "a.b.weight"));
        Assert.False(Freezing.Matches("a.b", "axb"));      // '.' is literal in globs
    }

    [Fact]
    public void FreezingDropsGradients()
    {
        var m = Model();
        m.Forward(Tensor.Ones(1, 4)).Sum().Backward();
        Freezing.Freeze(m, "classifier.*");
        Assert.Null(m.Classifier.Weight.Grad);
        Assert.NotNull(m.Embed.Weight.Grad);
    }

    [Fact]
    public void FreezeBelowAModuleByRegistrationOrder()
    {
        var m = Model();
        int n = Freezing.FreezeBefore(m, "encoder.layer.2");
        Assert.Equal(3 + 2 * 8, n);    // embeddings (proj w, b, LayerNorm) + layers 0–1
        var t = Trainable(m);
        Assert.Equal("encoder.layer.2.self.query.weight", t[0]);
        Assert.Equal("classifier.bias", t[^1]);
        Assert.Equal(8, Freezing.FreezeBefore(m, "encoder.layer.2", inclusive: true));
        Assert.Equal(["classifier.weight", "classifier.bias"], Trainable(m));

        // top-k recipe
        Freezing.FreezeAll(m);
        Freezing.UnfreezeFrom(m, "encoder.layer.1");
        Assert.Equal(2 * 8 + 2, Trainable(m).Count);
        Assert.Equal(0, Freezing.SetModuleTrainable(m, "classifier", true));
        Assert.Equal(2, Freezing.SetModuleTrainable(m, "classifier", false));
    }

    [Fact]
    public void ReportRowsAndTable()
    {
        var m = Model();
        Freezing.Freeze(m, "embeddings.*");
        var rows = Freezing.Report(m);
        Assert.Equal(m.NamedParameters().Count(), rows.Count);
        Assert.Equal(new ParameterRow("embeddings.proj.weight", [8, 4], false, 32).Name, rows[0].Name);
        Assert.Equal([8, 4], rows[0].Shape);
        Assert.False(rows[0].Trainable);
        Assert.Equal(32, rows[0].Count);
        Assert.True(rows[^1].Trainable);
        var text = Freezing.FormatReport(rows);
        Assert.Contains("embeddings.proj.weight", text);
        Assert.Contains("[8, 4]", text);
        long total = m.ParameterCount(), trainable = m.TrainableParameterCount();
        Assert.Contains($"total {total:N0} parameters, trainable {trainable:N0}", text);
    }
}
