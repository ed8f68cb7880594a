using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Graph;

public class LayerGraphTests
{
    private sealed class Sum : MergeLayer
    {
        public override Tensor Forward(IReadOnlyList<Tensor> inputs) => inputs.Aggregate((a, b) => a + b);
    }

    // input → a → b → add(a, b) → c → d   (a residual block, then two layers)
    private static LayerGraph Residual()
    {
        var rng = new Rng(5);
        var g = new LayerGraph("x");
        g.Add("a", "Dense", new Linear(4, 6, true, rng), "x");
        g.Add("b", "Dense", new Linear(6, 6, true, rng), "a");
        g.Add("add", "Add", new Sum(), "a", "b");
        g.Add("c", "Dense", new Linear(6, 3, true, rng), "add");
        g.Add("d", "Activation", new Relu(), "c");
        return g;
    }

    [Fact]
    public void ForwardRunsTheLayersInOrderWithSkipConnections()
    {
        var g = Residual();
        var x = GraphInput();
        var a = ((Linear)g.Layer("a")).Forward(x);
        var expected = ((Linear)g.Layer("c")).Forward(a + ((Linear)g.Layer("b")).Forward(a)).Relu();
        Assert.Equal(expected.ToArray(), g.Forward(x).ToArray());
        Assert.Equal(["a", "b", "add", "c", "d"], g.LayerNames);
        Assert.Equal(["a.weight", "a.bias", "b.weight", "b.bias", "c.weight", "c.bias"], g.NamedParameters().Select(p => p.Name));
    }

    [Fact]
    public void CutPointsAreLayersEveryPathPassesThrough()
    {
        var g = Residual();
        Assert.True(g.IsCutPoint("a"));
        Assert.False(g.IsCutPoint("b"));      // add also reads a directly
        Assert.True(g.IsCutPoint("add"));
        Assert.True(g.IsCutPoint("c"));
    }

    [Fact]
    public void RunFromACachedIntermediateGivesTheSameOutput()
    {
        var g = Residual();
        var x = GraphInput();
        var features = g.Run(x, "add");
        Assert.Equal(g.Forward(x).ToArray(), g.RunFrom("add", features).ToArray());
        var ex = Assert.Throws<InvalidOperationException>(() => g.RunFrom("b", g.Run(x, "b")));
        Assert.Contains("does not pass through 'b'", ex.Message);
    }

    [Fact]
    public void TruncateAtKeepsWhatTheCutLayerNeedsAndDropsTheRestWithItsParameters()
    {
        var g = Residual();
        var x = GraphInput();
        var expected = g.Run(x, "add").ToArray();
        Assert.Equal(["c", "d"], g.TruncateAt("add"));
        Assert.Equal(["a", "b", "add"], g.LayerNames);
        Assert.Equal("add", g.OutputName);
        Assert.Equal(expected, g.Forward(x).ToArray());
        Assert.DoesNotContain(g.NamedParameters(), p => p.Name.StartsWith("c.", StringComparison.Ordinal));
    }

    [Fact]
    public void BadGraphsAndUnknownLayersAreClearErrors()
    {
        var g = Residual();
        Assert.Contains("not an earlier layer", Assert.Throws<ArgumentException>(() => g.Add("e", "Dense", new Relu(), "zzz")).Message);
        Assert.Contains("already has a layer named 'a'", Assert.Throws<ArgumentException>(() => g.Add("a", "Dense", new Relu(), "d")).Message);
        Assert.Contains("has 2 inputs", Assert.Throws<ArgumentException>(() => g.Add("e", "Dense", new Relu(), "c", "d")).Message);
        Assert.Contains("No layer 'ad'", Assert.Throws<KeyNotFoundException>(() => g.Run(GraphInput(), "ad")).Message);
        var bad = Assert.Throws<InvalidOperationException>(() => g.Forward(Tensor.Zeros(2, 5)));
        Assert.Contains("Layer 'a' (Dense) failed on input [2, 5]", bad.Message);
    }

    private static Tensor GraphInput() => Tensor.Randn(new Rng(9), [3, 4]);
}
