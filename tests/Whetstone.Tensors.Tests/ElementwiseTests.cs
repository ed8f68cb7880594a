using System.Runtime.Intrinsics;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

public class ElementwiseTests
{
    private static void CheckUnary<TOp>() where TOp : IUnaryKernel
    {
        // values spread over the interesting range, kept away from kinks (0, ±3, 6) by the random draw
        var x = GradCheck.RandomDoubles(37, seed: 11, scale: 3);
        GradCheck.Kernel(x,
            v => { var y = new double[v.Length]; Elementwise.Forward<TOp, double>(v, y); return y; },
            (v, _, dy) => { var dx = new double[v.Length]; Elementwise.Backward<TOp, double>(v, dy, dx, accumulate: false); return dx; });
    }

    [Fact] public void ReluGradient() => CheckUnary<Relu>();
    [Fact] public void Relu6Gradient() => CheckUnary<Relu6>();
    [Fact] public void SiluGradient() => CheckUnary<Silu>();
    [Fact] public void HardSwishGradient() => CheckUnary<HardSwish>();
    [Fact] public void HardSigmoidGradient() => CheckUnary<HardSigmoid>();
    [Fact] public void TanhGradient() => CheckUnary<Kernels.Tanh>();
    [Fact] public void SigmoidGradient() => CheckUnary<Kernels.Sigmoid>();
    [Fact] public void GeluErfGradient() => CheckUnary<GeluErf>();
    [Fact] public void GeluTanhGradient() => CheckUnary<GeluTanh>();

    [Theory]
    [InlineData(-3.0, -0.999977909503)]
    [InlineData(-0.5, -0.520499877813)]
    [InlineData(0.1, 0.112462916018)]
    [InlineData(1.0, 0.842700792950)]
    [InlineData(2.6, 0.999763965583)]
    public void ErfMatchesTable(double x, double expected) => Assert.Equal(expected, MathX.Erf(x), 11);

    [Fact]
    public void FloatPathAgreesWithDoubleReference()
    {
        foreach (int n in new[] { 0, 1, 7, 8, 9, 15, 16, 17, 1001 })
        {
            var xd = GradCheck.RandomDoubles(n, seed: n + 1, scale: 4);
            var xf = xd.Select(v => (float)v).ToArray();
            var yf = new float[n]; var yd = new double[n];
            Elementwise.Forward<GeluErf, float>(xf, yf);
            Elementwise.Forward<GeluErf, double>(xf.Select(v => (double)v).ToArray(), yd);
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(yf[i] - yd[i]) < 2e-6, $"n={n} i={i}: {yf[i]} vs {yd[i]}");
        }
    }

    [Fact]
    public void SinglePrecisionExpIsWithinThreeUlp()
    {
        // the float exp behind softmax and GELU: relative error against Math.Exp over the normal range, and the edges
        var rng = new Rng(17);
        var xs = new float[4096];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)(rng.NextDouble() * 175 - 87);
        xs[0] = 0; xs[1] = -1e-8f; xs[2] = 88.7f; xs[3] = -87.3f; xs[4] = 0.34657359f; xs[5] = -0.34657359f;
        double worst = 0;
        for (int i = 0; i < xs.Length; i += 16)
        {
            var y = MathX.Exp(System.Runtime.Intrinsics.Vector512.Create(xs.AsSpan(i, 16)));
            var y256 = MathX.Exp(System.Runtime.Intrinsics.Vector256.Create(xs.AsSpan(i, 8)));
            for (int l = 0; l < 16; l++)
            {
                double exact = Math.Exp(xs[i + l]);
                worst = Math.Max(worst, Math.Abs(y.GetElement(l) - exact) / exact);
                if (l < 8) Assert.Equal(y.GetElement(l), y256.GetElement(l));
            }
        }
        Assert.True(worst < 3.6e-7, $"max relative error {worst:E2}");
        float[] edge = [float.NegativeInfinity, -100f, 100f, float.PositiveInfinity, float.NaN, -88f, 89f, 0f, 1f, -1f, 2f, 3f, 4f, 5f, 6f, 7f];
        var e = MathX.Exp(System.Runtime.Intrinsics.Vector512.Create(edge));
        Assert.Equal(0f, e.GetElement(0)); Assert.Equal(0f, e.GetElement(1));
        Assert.Equal(float.PositiveInfinity, e.GetElement(2)); Assert.Equal(float.PositiveInfinity, e.GetElement(3));
        Assert.True(float.IsNaN(e.GetElement(4)));
        Assert.Equal(0f, e.GetElement(5)); Assert.Equal(float.PositiveInfinity, e.GetElement(6));
        Assert.Equal(1f, e.GetElement(7));
    }

    [Fact]
    public void FloatSoftmaxRowsAgreeWithDoubleReference()
    {
        foreach (int cols in new[] { 16, 17, 31, 128, 130 })
        {
            const int rows = 5;
            var xd = GradCheck.RandomDoubles(rows * cols, seed: cols, scale: 6);
            xd[3] = double.NegativeInfinity;                          // a masked key
            var xf = xd.Select(v => (float)v).ToArray();
            var yf = new float[xf.Length]; var yd = new double[xd.Length];
            Softmax.Forward<float>(xf, yf, rows, cols, log: false);
            Softmax.Forward<double>(xf.Select(v => (double)v).ToArray(), yd, rows, cols, log: false);
            for (int i = 0; i < yf.Length; i++) Assert.True(Math.Abs(yf[i] - yd[i]) < 1e-6, $"cols={cols} i={i}: {yf[i]} vs {yd[i]}");
            Assert.Equal(0f, yf[3]);
        }
    }

    [Fact]
    public void FloatGeluDerivativeAgreesWithDoubleReference()
    {
        // the vector derivative shares one exp between erf and the density term; the double path is the exact reference
        foreach (int n in new[] { 1, 15, 16, 17, 1001 })
        {
            var xd = GradCheck.RandomDoubles(n, seed: n + 3, scale: 4);
            var xf = xd.Select(v => (float)v).ToArray();
            var dy = Enumerable.Repeat(1f, n).ToArray();
            var gf = new float[n]; var gd = new double[n];
            Elementwise.Backward<GeluErf, float>(xf, dy, gf, accumulate: false);
            Elementwise.Backward<GeluErf, double>(xf.Select(v => (double)v).ToArray(), dy.Select(v => (double)v).ToArray(), gd, accumulate: false);
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(gf[i] - gd[i]) < 2e-6, $"n={n} i={i}: {gf[i]} vs {gd[i]}");
        }
    }

    [Fact]
    public void BroadcastingOpsHaveCorrectGradients()
    {
        GradCheck.Op(t => t[0] * t[1] + t[0] / (t[1].Exp()), [GradCheck.Random(1, 13, 7), GradCheck.Random(2, 7)]);
        GradCheck.Op(t => t[0] - t[1], [GradCheck.Random(3, 5, 1, 3), GradCheck.Random(4, 1, 4, 3)]);
        GradCheck.Op(t => t[0].Gelu() * t[0].Sigmoid(), [GradCheck.Random(5, 4, 9)]);
    }

    [Fact]
    public void BroadcastAddValues()
    {
        var a = Tensor.From([1f, 2, 3, 4, 5, 6], 2, 3);
        var b = Tensor.From([10f, 20, 30], 3);
        Assert.Equal([11f, 22, 33, 14, 25, 36], (a + b).ToArray());
        var c = Tensor.From([100f, 200], 2, 1);
        Assert.Equal([101f, 102, 103, 204, 205, 206], (a + c).ToArray());
    }
}
