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

    // x → c1 → b1 → r1 → c2 (3×3 s2, ONNX end pads smaller: cropped) → b2 ─┐
    //                 └→ c3 (3×3 s2, bias) → b3 ───────────────────────────────── add → r2;  c1 → b1 → r1 and c2 → b2
    // and c3 → b3 fold; r1 is read twice (it ends its chain); c4 → b4 does not fold (c4 is read by the add too)
    private static LayerGraph ConvBatchNormGraph()
    {
        var rng = new Rng(9);
        Tensor R(params int[] shape) => Tensor.Randn(rng, shape, 0, 0.3f);
        BatchNorm2d Bn(int c)
        {
            var bn = new BatchNorm2d(c, 1e-3f);
            Tensor.Rand(rng, [c], -0.5f, 0.5f).Span.CopyTo(bn.RunningMean.Span);
            Tensor.Rand(rng, [c], 0.5f, 2f).Span.CopyTo(bn.RunningVar.Span);
            Tensor.Rand(rng, [c], 0.5f, 1.5f).Span.CopyTo(bn.Weight.Span);
            Tensor.Rand(rng, [c], -0.5f, 0.5f).Span.CopyTo(bn.Bias.Span);
            return bn;
        }
        var g = new LayerGraph("x");
        g.Add("c1", "Conv", new Importers.Onnx.OnnxConv(R(18, 17, 3, 3), R(18), (1, 1), (1, 1), 1, (1, 1, 1, 1)), "x");
        g.Add("b1", "BatchNormalization", Bn(18), "c1");
        g.Add("r1", "Relu", new Relu(), "b1");
        g.Add("c2", "Conv", new Importers.Onnx.OnnxConv(R(20, 18, 3, 3), null, (2, 2), (1, 1), 1, (1, 1, 1, 0)), "r1");
        g.Add("b2", "BatchNormalization", Bn(20), "c2");
        g.Add("c3", "Conv", new Importers.Onnx.OnnxConv(R(20, 18, 3, 3), R(20), (2, 2), (1, 1), 1, (1, 1, 1, 0)), "r1");
        g.Add("b3", "BatchNormalization", Bn(20), "c3");
        g.Add("add", "Add", new Sum(), "b2", "b3");
        g.Add("c4", "Conv", new Importers.Onnx.OnnxConv(R(20, 20, 3, 3), null, (1, 1), (1, 1), 1, (1, 1, 1, 1)), "add");
        g.Add("b4", "BatchNormalization", Bn(20), "c4");
        g.Add("add2", "Add", new Sum(), "b4", "c4");
        g.Add("r2", "Relu", new Relu(), "add2");
        g.Train(false);
        return g;
    }

    [Fact]
    public void EvalBatchNormsFoldIntoTheirConvsWhenNothingTrains()
    {
        var g = ConvBatchNormGraph();
        var x = Tensor.Randn(new Rng(4), [3, 17, 11, 13]);
        Tensor Run(bool fuse)
        {
            g.FuseForInference = fuse;
            using var _ = Tensors.Autograd.Graph.NoGrad();
            return g.Forward(x);
        }
        var plain = Run(false).ToArray();
        var fused = Run(true).ToArray();
        Assert.Equal([3, 20, 6, 6], g.Forward(x).Shape.ToArray());
        double scale = plain.Max(v => Math.Abs(v)), diff = plain.Zip(fused, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(scale > 0.5);
        Assert.True(diff <= 2e-6 * scale, $"folded batch norms differ by {diff} (largest value {scale})");
        // the intermediate layers still run alone when asked for
        g.FuseForInference = true;
        using (Tensors.Autograd.Graph.NoGrad())
            Assert.Equal([3, 18, 11, 13], g.Run(x, "b1").Shape.ToArray());
    }

    [Fact]
    public void TrainingPassesDoNotFold()
    {
        var g = ConvBatchNormGraph();
        var x = Tensor.Randn(new Rng(4), [2, 17, 9, 8]);
        g.FuseForInference = true;
        g.Forward(x).Sum().Backward();   // eval-mode batch norms, trainable convs: gradients must reach the first conv
        Assert.NotNull(((Importers.Onnx.OnnxConv)g.Layer("c1")).Weight.Grad);
        // batch norms in training mode use batch statistics: never folded, even without gradients
        g.Train(true);
        float[] a, b;
        using (Tensors.Autograd.Graph.NoGrad())
        {
            g.FuseForInference = true; a = g.Forward(x).ToArray();
            g.FuseForInference = false; b = g.Forward(x).ToArray();
        }
        Assert.Equal(b, a);
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
