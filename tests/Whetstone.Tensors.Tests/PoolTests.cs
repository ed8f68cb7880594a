using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

public class PoolTests
{
    /// <summary>Direct definition in double: max (padding excluded) or mean (divisor kH·kW or the in-bounds count).</summary>
    private static double[] Reference(PoolGeom g, double[] x, bool max, bool countIncludePad)
    {
        var y = new double[g.Planes * g.OH * g.OW];
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                {
                    double m = double.NegativeInfinity, s = 0; int count = 0;
                    for (int i = 0; i < g.KH; i++)
                        for (int j = 0; j < g.KW; j++)
                        {
                            int ih = oh * g.SH - g.PH + i, iw = ow * g.SW - g.PW + j;
                            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                            double v = x[(p * g.H + ih) * g.W + iw];
                            m = Math.Max(m, v); s += v; count++;
                        }
                    y[(p * g.OH + oh) * g.OW + ow] = max ? m : s / (countIncludePad ? g.KH * g.KW : count);
                }
        return y;
    }

    [Theory]
    [InlineData(5, 112, 112, 3, 3, 2, 2, 1, 1)]    // ResNet's stem pool: 512- and 256-bit columns
    [InlineData(3, 9, 37, 3, 2, 2, 1, 1, 1)]      // a scalar tail
    [InlineData(2, 5, 20, 5, 5, 1, 1, 2, 2)]
    [InlineData(3, 7, 71, 3, 3, 1, 1, 1, 1)]       // stride-1 rows of 16 windows and a tail
    [InlineData(3, 7, 75, 3, 3, 2, 2, 0, 0)]       // stride 2 without padding: the last block reads to the row's end
    [InlineData(2, 6, 69, 2, 4, 2, 2, 1, 2)]
    public void MaxValuesWithoutArgmaxEqualTheWindowedLoopNaNAndInfinityIncluded(int planes, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = new PoolGeom(planes, h, w, kh, kw, sh, sw, ph, pw);
        var x = GradCheck.RandomDoubles(planes * h * w, seed: 3).Select(v => (float)v).ToArray();
        x[5] = float.NaN; x[w + 20 < x.Length ? w + 20 : 7] = float.NaN; x[2 * w + 1] = float.NegativeInfinity;
        for (int i = (planes - 1) * h * w; i < planes * h * w; i++) x[i] = float.NegativeInfinity;   // a plane of −∞
        var withArg = new float[planes * g.OH * g.OW];
        var values = new float[withArg.Length];
        Pool.MaxForward<float>(g, x, withArg, new int[withArg.Length]);
        Pool.MaxForward<float>(g, x, values, []);
        for (int i = 0; i < values.Length; i++)
            Assert.True(withArg[i].Equals(values[i]), $"y[{i}]: {values[i]} vs {withArg[i]} with the argmax loop");
        Assert.Contains(values, float.IsNaN);
    }

    [Theory]
    [InlineData(6, 7, 9, 3, 3, 2, 2, 1, 1)]
    [InlineData(4, 8, 5, 2, 3, 2, 1, 1, 1)]
    [InlineData(3, 9, 10, 3, 3, 1, 1, 0, 0)]
    [InlineData(2, 11, 6, 4, 2, 3, 2, 2, 1)]
    public void KernelsMatchReferenceAndGradientsInDouble(int planes, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = new PoolGeom(planes, h, w, kh, kw, sh, sw, ph, pw);
        int ylen = planes * g.OH * g.OW;
        var x = GradCheck.RandomDoubles(planes * h * w, seed: planes + h);

        double[] MaxF(double[] v) { var y = new double[ylen]; Pool.MaxForward<double>(g, v, y, new int[ylen]); return y; }
        Assert.Equal(Reference(g, x, true, false), MaxF(x));
        GradCheck.Kernel(x, MaxF, (v, _, dy) =>
        {
            var y = new double[ylen]; var arg = new int[ylen];
            Pool.MaxForward<double>(g, v, y, arg);
            var dx = new double[v.Length];
            Pool.MaxBackward<double>(g, dy, arg, dx, accumulate: false);
            return dx;
        }, h: 1e-7);

        foreach (bool inc in new[] { true, false })
        {
            double[] AvgF(double[] v) { var y = new double[ylen]; Pool.AvgForward<double>(g, inc, v, y); return y; }
            var yr = Reference(g, x, false, inc); var yk = AvgF(x);
            for (int i = 0; i < ylen; i++) Assert.True(Math.Abs(yr[i] - yk[i]) < 1e-12);
            GradCheck.Kernel(x, AvgF, (v, _, dy) =>
            {
                var dx = new double[v.Length];
                Pool.AvgBackward<double>(g, inc, dy, dx, accumulate: false);
                return dx;
            });
            // float path agrees
            var yf = new float[ylen];
            Pool.AvgForward<float>(g, inc, x.Select(v => (float)v).ToArray(), yf);
            for (int i = 0; i < ylen; i++) Assert.True(Math.Abs(yf[i] - yr[i]) < 1e-5);
        }
    }

    [Fact]
    public void GlobalAverageKernelGradient()
    {
        var x = GradCheck.RandomDoubles(5 * 21);
        GradCheck.Kernel(x, v => { var y = new double[5]; Pool.GlobalAvgForward<double>(5, 21, v, y); return y; },
            (v, _, dy) => { var dx = new double[v.Length]; Pool.GlobalAvgBackward<double>(5, 21, dy, dx, false); return dx; });
    }

    [Fact]
    public void MaxPoolValues()
    {
        // 1×1×4×4, kernel 2 stride 2
        var x = Tensor.From([1f, 2, 5, 6, 3, 4, 7, 8, 9, 10, 13, 14, 11, 12, 15, 16], 1, 1, 4, 4);
        x.RequiresGrad = true;
        var y = x.MaxPool2d(2);
        Assert.Equal([1, 1, 2, 2], y.Shape.ToArray());
        Assert.Equal([4f, 8, 12, 16], y.ToArray());
        y.Sum().Backward();
        Assert.Equal([0f, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1], x.Grad!.ToArray());

        // padding: with all-negative input the padded zeros must not win
        var xn = Tensor.From([-1f, -2, -3, -4], 1, 1, 2, 2);
        Assert.Equal([-1f, -1, -1, -1], xn.MaxPool2d(3, 1, 1).ToArray());
    }

    [Fact]
    public void AvgPoolCountIncludePad()
    {
        var x = Tensor.Ones(1, 1, 3, 3);
        // corner window 3×3 at padding 1 covers 4 real ones
        Assert.Equal(4f / 9, x.AvgPool2d(3, 1, 1)[0, 0, 0, 0], 6);
        Assert.Equal(1f, x.AvgPool2d(3, 1, 1, countIncludePad: false)[0, 0, 0, 0], 6);
        Assert.Equal(1f, x.AvgPool2d(3, 1, 1)[0, 0, 1, 1], 6);
    }

    [Fact]
    public void OpGradients()
    {
        GradCheck.Op(t => t[0].MaxPool2d((3, 2), (2, 1), (1, 1)), [GradCheck.Random(1, 2, 3, 7, 6)], h: 1e-3f);
        GradCheck.Op(t => t[0].AvgPool2d(3, 2, 1), [GradCheck.Random(2, 2, 3, 7, 6)]);
        GradCheck.Op(t => t[0].AvgPool2d(3, 2, 1, countIncludePad: false), [GradCheck.Random(3, 2, 3, 7, 6)]);
        GradCheck.Op(t => t[0].GlobalAvgPool2d(), [GradCheck.Random(4, 2, 3, 5, 4)]);
        GradCheck.Op(t => t[0].GlobalAvgPool2d(keepDims: false), [GradCheck.Random(5, 3, 2, 3, 3)]);
    }

    [Fact]
    public void ShapesAndErrors()
    {
        var x = Tensor.Zeros(2, 3, 7, 8);
        Assert.Equal([2, 3, 4, 4], x.MaxPool2d(3, 2, 1).Shape.ToArray());
        Assert.Equal([2, 3, 1, 1], x.GlobalAvgPool2d().Shape.ToArray());
        Assert.Equal([2, 3], x.GlobalAvgPool2d(keepDims: false).Shape.ToArray());
        Assert.Equal([3, 3, 4], Tensor.Zeros(3, 7, 8).AvgPool2d(2).Shape.ToArray());
        Assert.Throws<ArgumentException>(() => x.MaxPool2d(3, 1, 2));         // padding > kernel/2
        var e = Assert.Throws<ArgumentException>(() => Tensor.Zeros(7, 8).MaxPool2d(2));
        Assert.Contains("[7, 8]", e.Message);
    }
}
