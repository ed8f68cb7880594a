using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

/// <summary>Winograd F(m×m, 3×3) forward against the direct convolution in double and the im2col path in float.</summary>
public unsafe class WinogradTests
{
    /// <summary>y from Winograd.Forward with tile size m (weights transformed here).</summary>
    internal static float[] Winograd(ConvGeom g, int m, float[] x, float[] w, float[]? b)
    {
        var y = new float[g.N * g.Cout * g.OHW];
        var u = new float[Kernels.Winograd.WeightFloats(g, m)];
        fixed (float* px = x) fixed (float* pw = w) fixed (float* pb = b) fixed (float* pu = u) fixed (float* py = y)
        {
            Kernels.Winograd.TransformWeights(g, m, pw, pu);
            Kernels.Winograd.Forward(g, m, px, pu, new ConvEpilogue(null, b is null ? null : pb, false), py);
        }
        return y;
    }

    private static float[] Floats(int n, int seed, double scale) => GradCheck.RandomDoubles(n, seed, scale).Select(v => (float)v).ToArray();

    /// <summary>Σ |w|·|x| over each output's window, in double: the scale float rounding errors are measured against.</summary>
    private static double[] AbsSums(ConvGeom g, float[] x, float[] w)
    {
        var ax = x.Select(v => (double)Math.Abs(v)).ToArray();
        var aw = w.Select(v => (double)Math.Abs(v)).ToArray();
        var y = new double[g.N * g.Cout * g.OHW];
        Conv.ForwardReference<double>(g, ax, aw, default, y);
        return y;
    }

    // (N, Cin, H, W, Cout, pad): odd and unequal sizes, channels not multiples of 16, rows of more and fewer than 16 tiles
    public static TheoryData<int, int, int, int, int, int, int> Cases() => new()
    {
        { 3, 19, 13, 11, 21, 1, 4 },
        { 3, 19, 13, 11, 21, 1, 2 },
        { 3, 5, 9, 70, 7, 1, 4 },      // 18 tiles a row: the last block of 16 overlaps
        { 2, 6, 7, 37, 5, 1, 2 },      // 19 tiles a row
        { 3, 17, 7, 7, 33, 0, 4 },     // no padding
        { 1, 18, 6, 9, 20, 2, 4 },     // padding 2, one image (phases in parallel)
        { 1, 18, 6, 9, 20, 2, 2 },
        { 5, 3, 3, 3, 2, 1, 4 },       // one tile per image
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesDirectConvolution(int n, int cin, int h, int w, int cout, int pad, int m)
    {
        var g = new ConvGeom(n, cin, h, w, cout, 3, 3, 1, 1, pad, pad);
        var x = Floats(n * cin * h * w, 11, 1); var wt = Floats(cout * cin * 9, 12, 0.5); var b = Floats(cout, 13, 1);
        var exact = new double[g.N * g.Cout * g.OHW];
        Conv.ForwardReference<double>(g, x.Select(v => (double)v).ToArray(), wt.Select(v => (double)v).ToArray(), b.Select(v => (double)v).ToArray(), exact);
        var scale = AbsSums(g, x, wt);
        var direct = new float[exact.Length];
        Conv.ForwardReference<float>(g, x, wt, b, direct);
        foreach (int threads in new[] { 1, 2 })
        {
            int saved = Par.Threads;
            Par.Threads = threads;
            try
            {
                var y = Winograd(g, m, x, wt, b);
                double worst = 0, worstDirect = 0;
                for (int i = 0; i < y.Length; i++)
                {
                    double s = scale[i] + Math.Abs(b[i / g.OHW % g.Cout]) + 1e-30;
                    worst = Math.Max(worst, Math.Abs(y[i] - exact[i]) / s);
                    worstDirect = Math.Max(worstDirect, Math.Abs(direct[i] - exact[i]) / s);
                }
                // relative to Σ|w·x|: direct float sums stay near 1e-7; F(2×2) a few times that, F(4×4) some tens of times
                double bound = m == 2 ? 2e-6 : 1e-5;
                Console.WriteLine($"F({m}) {g} threads {threads}: worst relative {worst:E2}, direct float {worstDirect:E2}");
                Assert.True(worst <= bound, $"F({m}) worst relative error {worst:E2} (direct float {worstDirect:E2}) on {g}, {threads} threads");
            }
            finally { Par.Threads = saved; }
        }
    }

    [Fact]
    public void NoBiasAndThreadCountsGiveTheSameBits()
    {
        var g = new ConvGeom(4, 20, 11, 13, 18, 3, 3, 1, 1, 1, 1);
        var x = Floats(g.N * g.Cin * g.HW, 21, 1); var wt = Floats(g.Cout * g.K, 22, 0.5); var b = Floats(g.Cout, 23, 1);
        int saved = Par.Threads;
        try
        {
            Par.Threads = 1;
            var one = Winograd(g, 4, x, wt, b);
            var noBias = Winograd(g, 4, x, wt, null);
            Par.Threads = 2;
            var two = Winograd(g, 4, x, wt, b);
            Assert.Equal(one, two);
            for (int i = 0; i < one.Length; i++)
            {
                float want = one[i] - b[i / g.OHW % g.Cout];
                Assert.True(Math.Abs(want - noBias[i]) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"y[{i}] without bias {noBias[i]} vs {want}");
            }
        }
        finally { Par.Threads = saved; }
    }

    [Fact]
    public void RejectsOtherConvolutionsAndTileSizes()
    {
        var strided = new ConvGeom(1, 4, 8, 8, 4, 3, 3, 2, 2, 1, 1);
        Assert.False(Kernels.Winograd.Applies(strided));
        Assert.Throws<ArgumentException>(() => Winograd(strided, 4, new float[4 * 64], new float[4 * 36], null));
        var g = new ConvGeom(1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Winograd(g, 3, new float[4 * 64], new float[4 * 36], null));
    }
}
