using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

public class ConvTests
{

    private static ConvGeom Geom(int n, int cin, int h, int w, int cout, int kh, int kw, int s, int p, int d, int g) =>
        new(n, cin, h, w, cout, kh, kw, s, s, p, p, d, d, g);

    /// <summary>Direct definition of the convolution in double, written independently of the kernels.</summary>
    private static double[] Reference(ConvGeom g, double[] x, double[] w, double[]? b)
    {
        var y = new double[g.N * g.Cout * g.OH * g.OW];
        int cinG = g.Cin / g.Groups, coutG = g.Cout / g.Groups;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
                for (int oh = 0; oh < g.OH; oh++)
                    for (int ow = 0; ow < g.OW; ow++)
                    {
                        double s = b?[co] ?? 0;
                        for (int ci = 0; ci < cinG; ci++)
                            for (int i = 0; i < g.KH; i++)
                                for (int j = 0; j < g.KW; j++)
                                {
                                    int ih = oh * g.SH - g.PH + i * g.DH, iw = ow * g.SW - g.PW + j * g.DW;
                                    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                    int c = co / coutG * cinG + ci;
                                    s += w[((co * cinG + ci) * g.KH + i) * g.KW + j] * x[((n * g.Cin + c) * g.H + ih) * g.W + iw];
                                }
                        y[((n * g.Cout + co) * g.OH + oh) * g.OW + ow] = s;
                    }
        return y;
    }

    private static (double[] x, double[] w, double[] b) Inputs(ConvGeom g, int seed) =>
        (GradCheck.RandomDoubles(g.N * g.Cin * g.H * g.W, seed),
         GradCheck.RandomDoubles(g.Cout * g.K, seed + 1, 0.5),
         GradCheck.RandomDoubles(g.Cout, seed + 2));

    // (N, Cin, H, W, Cout, kH, kW, stride, pad, dilation, groups)
    [Theory]
    [InlineData(2, 3, 7, 9, 5, 3, 3, 2, 1, 2, 1)] // stride 2, pad 1, dilation 2
    [InlineData(2, 3, 7, 9, 5, 3, 2, 1, 1, 1, 1)] // rectangular kernel
    [InlineData(2, 3, 7, 9, 6, 3, 3, 2, 1, 2, 3)] // groups 3 (CinG 1, CoutG 2)
    [InlineData(2, 6, 7, 9, 4, 3, 3, 1, 2, 1, 2)] // grouped, CinG 3, CoutG 2, pad 2
    [InlineData(2, 3, 7, 9, 3, 3, 3, 1, 1, 1, 3)] // depthwise 3×3 stride 1
    [InlineData(2, 3, 7, 9, 3, 3, 3, 2, 1, 1, 3)] // depthwise stride 2
    [InlineData(2, 3, 7, 9, 3, 3, 3, 1, 2, 2, 3)] // depthwise dilation 2
    [InlineData(2, 3, 7, 9, 5, 1, 1, 1, 0, 1, 1)] // pointwise
    public void KernelGradientsInDouble(int n, int cin, int h, int w, int cout, int kh, int kw, int s, int p, int d, int groups)
    {
        var g = Geom(n, cin, h, w, cout, kh, kw, s, p, d, groups);
        var (x, wt, b) = Inputs(g, 10);
        int ylen = g.N * g.Cout * g.OHW;
        double[] Fwd(double[] xx, double[] ww, double[] bb) { var y = new double[ylen]; Conv.Forward<double>(g, xx, ww, bb, y); return y; }

        // forward equals the independent reference
        var yk = Fwd(x, wt, b); var yr = Reference(g, x, wt, b);
        for (int i = 0; i < ylen; i++) Assert.True(Math.Abs(yk[i] - yr[i]) < 1e-12, $"y[{i}] {yk[i]} vs {yr[i]}");

        GradCheck.Kernel(x, xx => Fwd(xx, wt, b), (xx, _, dy) =>
        {
            var dx = new double[xx.Length];
            Conv.Backward<double>(g, xx, wt, dy, dx, false, default, false, default, false);
            return dx;
        });
        GradCheck.Kernel(wt, ww => Fwd(x, ww, b), (ww, _, dy) =>
        {
            var dw = new double[ww.Length];
            Conv.Backward<double>(g, x, ww, dy, default, false, dw, false, default, false);
            return dw;
        });
        GradCheck.Kernel(b, bb => Fwd(x, wt, bb), (bb, _, dy) =>
        {
            var db = new double[bb.Length];
            Conv.Backward<double>(g, x, wt, dy, default, false, default, false, db, false);
            return db;
        });
    }

    // Float fast paths (im2col + GEMM, pointwise GEMM, depthwise direct kernels incl. the 3×3 SIMD one) vs the
    // double reference, for odd sizes, batch 1 (serial images) and batch ≥ threads (image-parallel).

    [Theory]
    [InlineData(3, 3, 13, 11, 5, 3, 3, 2, 1, 1, 1)]
    [InlineData(1, 5, 9, 17, 7, 3, 3, 1, 1, 2, 1)]
    [InlineData(3, 6, 10, 7, 9, 3, 5, 1, 2, 1, 3)]
    [InlineData(2, 7, 11, 13, 5, 1, 1, 1, 0, 1, 1)] // pointwise
    [InlineData(1, 4, 6, 5, 6, 1, 1, 1, 0, 1, 2)] // grouped pointwise
    [InlineData(3, 5, 21, 37, 5, 3, 3, 1, 1, 1, 5)] // depthwise 3×3 s1: 512- and 256-bit blocks, overlap, borders
    [InlineData(2, 4, 12, 14, 4, 3, 3, 1, 1, 1, 4)] // depthwise 3×3 s1, 256-bit + overlap
    [InlineData(2, 3, 5, 4, 3, 3, 3, 1, 1, 1, 3)] // depthwise, tiny plane (all scalar)
    [InlineData(2, 3, 6, 6, 3, 3, 3, 1, 0, 1, 3)] // depthwise, no padding
    [InlineData(2, 5, 23, 19, 5, 3, 3, 2, 1, 1, 5)] // depthwise stride 2
    [InlineData(2, 3, 9, 70, 3, 3, 3, 2, 1, 1, 3)] // depthwise stride 2, AVX-512 interior + overlap
    [InlineData(1, 2, 8, 67, 2, 3, 3, 2, 0, 1, 2)] // depthwise stride 2, odd width, no padding
    [InlineData(2, 2, 7, 81, 2, 3, 3, 2, 2, 1, 2)] // depthwise stride 2, padding 2
    [InlineData(2, 4, 15, 18, 4, 5, 5, 1, 4, 2, 4)] // depthwise 5×5 dilation 2
    [InlineData(2, 3, 9, 9, 6, 3, 3, 1, 1, 1, 3)] // channel multiplier 2 (grouped GEMM path)
    [InlineData(2, 3, 9, 79, 5, 3, 3, 2, 1, 1, 1)] // stride-2 im2col: AVX-512 rows of 16 and the scalar tail
    [InlineData(3, 2, 11, 70, 4, 7, 7, 2, 3, 1, 1)] // 7×7 stride 2 (ResNet's stem), padding 3
    [InlineData(1, 17, 9, 35, 19, 3, 3, 1, 1, 1, 1)] // 3×3 stride 1 with ≥ 16 channels: Winograd when AVX-512
    public void FloatFastPathsMatchDouble(int n, int cin, int h, int w, int cout, int kh, int kw, int s, int p, int d, int groups)
    {
        var g = Geom(n, cin, h, w, cout, kh, kw, s, p, d, groups);
        var (x, wt, b) = Inputs(g, 20);
        int ylen = g.N * g.Cout * g.OHW;
        var dy = GradCheck.RandomDoubles(ylen, 30);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        double[] D(float[] a) => a.Select(v => (double)v).ToArray();
        // the double reference sees exactly the float inputs
        var xd = D(F(x)); var wd = D(F(wt)); var bd = D(F(b)); var dyd = D(F(dy));

        var yf = new float[ylen];
        Conv.Forward<float>(g, F(x), F(wt), F(b), yf);
        var yr = Reference(g, xd, wd, bd);
        AssertClose(yr, yf, "y");

        var dxd = new double[x.Length]; var dwd = new double[wt.Length]; var dbd = new double[b.Length];
        Conv.Backward<double>(g, xd, wd, dyd, dxd, false, dwd, false, dbd, false);
        var dxf = new float[x.Length]; var dwf = new float[wt.Length]; var dbf = new float[b.Length];
        Conv.Backward<float>(g, F(x), F(wt), F(dy), dxf, false, dwf, false, dbf, false);
        AssertClose(dxd, dxf, "dx"); AssertClose(dwd, dwf, "dw"); AssertClose(dbd, dbf, "db");

        // accumulate mode adds onto what is there
        Conv.Backward<float>(g, F(x), F(wt), F(dy), dxf, true, dwf, true, dbf, true);
        AssertClose(dxd.Select(v => 2 * v).ToArray(), dxf, "dx acc");
        AssertClose(dwd.Select(v => 2 * v).ToArray(), dwf, "dw acc");
        AssertClose(dbd.Select(v => 2 * v).ToArray(), dbf, "db acc");
    }

    [Fact]
    public void ImagesGroupedIntoOneGemmGiveTheBitsOfOneImagePerGemm()
    {
        // 7 images of 6×5 output pixels, groups of 3 + 2 + 2 (GroupColumns shrunk), stride 2 with padding, and a 1×1
        var geoms = new[] { Geom(7, 5, 11, 9, 6, 3, 3, 2, 1, 1, 1), Geom(7, 4, 6, 5, 3, 1, 1, 1, 0, 1, 1) };
        var (below, columns) = (Conv.GroupImagesBelow, Conv.GroupColumns);
        try
        {
            foreach (var g in geoms)
            {
                var (x, wt, b) = Inputs(g, 3);
                var (xf, wf, bf) = (x.Select(v => (float)v).ToArray(), wt.Select(v => (float)v).ToArray(), b.Select(v => (float)v).ToArray());
                var one = new float[g.N * g.Cout * g.OHW];
                var grouped = new float[one.Length];
                var noBias = new float[one.Length];
                Conv.GroupImagesBelow = 0;
                Conv.Forward<float>(g, xf, wf, bf, one);
                Conv.GroupImagesBelow = int.MaxValue;
                Conv.GroupColumns = 3 * g.OHW - 1;
                Conv.Forward<float>(g, xf, wf, bf, grouped);
                Conv.Forward<float>(g, xf, wf, [], noBias);
                Assert.Equal(one, grouped);
                for (int i = 0; i < one.Length; i++) Assert.Equal(one[i] - bf[i / g.OHW % g.Cout], noBias[i], 4);
            }
        }
        finally { (Conv.GroupImagesBelow, Conv.GroupColumns) = (below, columns); }
    }

    // (N, Cin, H, W, Cout, kH, kW, stride, pad, dilation, groups): each float forward path with the epilogue
    [Theory]
    [InlineData(3, 17, 9, 11, 19, 3, 3, 1, 1, 1, 1)]   // Winograd (AVX-512)
    [InlineData(2, 3, 47, 45, 5, 3, 3, 1, 1, 1, 1)]    // one image per GEMM (≥ 2048 output pixels)
    [InlineData(3, 5, 11, 9, 6, 3, 3, 2, 1, 1, 1)]     // images grouped into one GEMM
    [InlineData(2, 6, 9, 7, 6, 3, 3, 1, 1, 1, 6)]      // depthwise: a pass afterwards
    [InlineData(2, 7, 5, 13, 9, 1, 1, 1, 0, 1, 1)]     // pointwise
    public void ScaleShiftReluEpilogueEqualsTheSeparatePasses(int n, int cin, int h, int w, int cout, int kh, int kw, int s, int p, int d, int groups)
    {
        var g = Geom(n, cin, h, w, cout, kh, kw, s, p, d, groups);
        var (x, wt, b) = Inputs(g, 40);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        var (xf, wf) = (F(x), F(wt));
        var scale = F(GradCheck.RandomDoubles(cout, 41)); var shift = F(b);
        var plain = new float[g.N * g.Cout * g.OHW];
        Conv.Forward<float>(g, xf, wf, [], plain);
        var biased = new float[plain.Length];
        Conv.Forward<float>(g, xf, wf, shift, biased);   // a shift alone is the conv's bias
        foreach (bool relu in new[] { false, true })
        {
            var fused = new float[plain.Length];
            Conv.ForwardScaleShift(g, xf, wf, scale, shift, relu, fused);
            var shiftOnly = new float[plain.Length];
            Conv.ForwardScaleShift(g, xf, wf, [], shift, relu, shiftOnly);
            for (int i = 0; i < plain.Length; i++)
            {
                int co = i / g.OHW % g.Cout;
                float want = plain[i] * scale[co] + shift[co], want2 = biased[i];
                if (relu) { want = Math.Max(want, 0f); want2 = Math.Max(want2, 0f); }
                Assert.Equal(want, fused[i]);        // the same conv sums, then the same two roundings
                Assert.Equal(want2, shiftOnly[i]);
            }
        }
        // the op: no gradient recorded, and refused where one would be needed
        var xt = Tensor.From(xf, n, cin, h, w); var wtT = Tensor.From(wf, g.Cout, g.CinG, kh, kw);
        var y = Tensor.Conv2dScaleShift(xt, wtT, scale, shift, true, (s, s), (p, p), (d, d), groups);
        Assert.False(y.RequiresGrad);
        for (int i = 0; i < plain.Length; i++) Assert.Equal(Math.Max(plain[i] * scale[i / g.OHW % g.Cout] + shift[i / g.OHW % g.Cout], 0f), y.Span[i]);
        xt.RequiresGrad = true;
        Assert.Throws<InvalidOperationException>(() => Tensor.Conv2dScaleShift(xt, wtT, scale, shift, true, (s, s), (p, p), (d, d), groups));
    }

    [Fact]
    public void BandsOfOutputRowsGiveTheBitsOfTheWholeImage()
    {
        // 7×7 stride 2 (the stem's shape) and 3×3 stride 1 with few channels: bands of 1, 3 and all rows, with an epilogue
        var geoms = new[] { Geom(2, 3, 95, 97, 5, 7, 7, 2, 3, 1, 1), Geom(2, 4, 47, 45, 3, 3, 3, 1, 1, 1, 1) };   // ≥ 2048 output pixels: one image per GEMM
        int saved = Conv.ColBandFloats;
        try
        {
            foreach (var g in geoms)
            {
                var (x, wt, b) = Inputs(g, 5);
                var (xf, wf, bf) = (x.Select(v => (float)v).ToArray(), wt.Select(v => (float)v).ToArray(), b.Select(v => (float)v).ToArray());
                var scale = bf.Select(v => v + 1.5f).ToArray();
                float[] Run(int band)
                {
                    Conv.ColBandFloats = band;
                    var y = new float[g.N * g.Cout * g.OHW];
                    Conv.ForwardScaleShift(g, xf, wf, scale, bf, true, y);
                    return y;
                }
                var whole = Run(int.MaxValue);
                Assert.Equal(whole, Run(g.K * g.OW));        // one row a band
                Assert.Equal(whole, Run(3 * g.K * g.OW + 1));  // three rows a band, a shorter last band
            }
        }
        finally { Conv.ColBandFloats = saved; }
    }

    private static void AssertClose(double[] expect, float[] got, string what)
    {
        Assert.Equal(expect.Length, got.Length);
        for (int i = 0; i < expect.Length; i++)
            Assert.True(Math.Abs(expect[i] - got[i]) <= 1e-4 * Math.Max(1, Math.Abs(expect[i])), $"{what}[{i}]: {got[i]} vs {expect[i]}");
    }

    [Fact]
    public void OpGradients()
    {
        GradCheck.Op(t => Tensor.Conv2d(t[0], t[1], t[2], (2, 1), (1, 2), (1, 2), 1),
            [GradCheck.Random(1, 2, 3, 6, 7), GradCheck.Random(2, 4, 3, 3, 2), GradCheck.Random(3, 4)]);
        GradCheck.Op(t => Tensor.Conv2d(t[0], t[1], null, stride: 1, padding: 1, groups: 4),
            [GradCheck.Random(4, 2, 4, 5, 6), GradCheck.Random(5, 4, 1, 3, 3)]);
        GradCheck.Op(t => Tensor.Conv2d(t[0], t[1], t[2], groups: 2),
            [GradCheck.Random(6, 2, 4, 3, 5), GradCheck.Random(7, 6, 2, 1, 1), GradCheck.Random(8, 6)]);
    }

    [Fact]
    public void OpForwardMatchesReference()
    {
        var x = GradCheck.Random(1, 2, 4, 8, 7); var w = GradCheck.Random(2, 6, 2, 3, 3); var b = GradCheck.Random(3, 6);
        var y = Tensor.Conv2d(x, w, b, (2, 1), (1, 1), (1, 2), 2);
        var g = new ConvGeom(2, 4, 8, 7, 6, 3, 3, 2, 1, 1, 1, 1, 2, 2);
        Assert.Equal([2, 6, g.OH, g.OW], y.Shape.ToArray());
        var r = Reference(g, x.ToArray().Select(v => (double)v).ToArray(), w.ToArray().Select(v => (double)v).ToArray(), b.ToArray().Select(v => (double)v).ToArray());
        AssertClose(r, y.ToArray(), "y");
    }

    [Fact]
    public void FrozenWeightGetsNoGradient()
    {
        var x = GradCheck.Random(1, 2, 3, 6, 6); x.RequiresGrad = true;
        var w = GradCheck.Random(2, 4, 3, 3, 3);                  // frozen
        var b = GradCheck.Random(3, 4); b.RequiresGrad = true;
        Tensor.Conv2d(x, w, b, padding: 1).Sum().Backward();
        Assert.Null(w.Grad);
        Assert.NotNull(x.Grad);
        Assert.NotNull(b.Grad);

        // depthwise with only the bias trainable
        var xd = GradCheck.Random(4, 2, 3, 6, 6);
        var wd = GradCheck.Random(5, 3, 1, 3, 3);
        var bd = GradCheck.Random(6, 3); bd.RequiresGrad = true;
        Tensor.Conv2d(xd, wd, bd, padding: 1, groups: 3).Sum().Backward();
        Assert.Null(wd.Grad); Assert.Null(xd.Grad);
        Assert.Equal(Enumerable.Repeat(72f, 3), bd.Grad!.ToArray());
    }

    [Fact]
    public void ShapeErrorsNameTheShapes()
    {
        var x = Tensor.Zeros(2, 4, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, Tensor.Zeros(3, 3, 3, 3)));
        Assert.Contains("[2, 4, 5, 5]", e.Message); Assert.Contains("[3, 3, 3, 3]", e.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, Tensor.Zeros(3, 2, 3, 3), groups: 2));   // 3 % 2
        Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, Tensor.Zeros(4, 4, 3, 3), Tensor.Zeros(5)));
        Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, Tensor.Zeros(4, 4, 7, 7)));
        Assert.Throws<ArgumentException>(() => Tensor.Conv2d(Tensor.Zeros(4, 5, 5), Tensor.Zeros(4, 4, 3, 3)));
    }
}
