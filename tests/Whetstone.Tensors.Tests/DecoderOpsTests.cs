using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

/// <summary>The ops decoder LMs add: RMSNorm, rotary position embedding, grouped-query attention and KV-cache attention.</summary>
public class DecoderOpsTests
{
    [Fact]
    public void RmsNormKernelGradientsInDouble()
    {
        const int rows = 70, d = 13;   // 70 rows: three backward blocks
        var gamma = GradCheck.RandomDoubles(d, seed: 8);
        double[] Fwd(double[] x, double[] g)
        {
            var y = new double[x.Length];
            RmsNormKernel.Forward<double>(x, g, y, new double[rows], rows, d, 1e-6);
            return y;
        }
        (double[] dx, double[] dg) Bwd(double[] x, double[] g, double[] dy)
        {
            var rstd = new double[rows];
            RmsNormKernel.Forward<double>(x, g, new double[x.Length], rstd, rows, d, 1e-6);
            var dx = new double[x.Length]; var dgam = new double[d];
            RmsNormKernel.Backward<double>(dy, x, g, rstd, dx, false, dgam, rows, d);
            return (dx, dgam);
        }
        var x0 = GradCheck.RandomDoubles(rows * d, seed: 10, scale: 3);
        GradCheck.Kernel(x0, x => Fwd(x, gamma), (x, _, dy) => Bwd(x, gamma, dy).dx);
        GradCheck.Kernel(gamma, g => Fwd(x0, g), (g, _, dy) => Bwd(x0, g, dy).dg);
    }

    [Fact]
    public void RmsNormValuesAndAutograd()
    {
        // one row by hand: x = (3, 4), mean(x²) = 12.5
        var y = Tensor.RmsNorm(Tensor.From([3f, 4f], 1, 2), Tensor.From([1f, 2f], 2), eps: 0);
        Assert.Equal(3 / MathF.Sqrt(12.5f), y.ToArray()[0], 6);
        Assert.Equal(8 / MathF.Sqrt(12.5f), y.ToArray()[1], 6);
        GradCheck.Op(t => Tensor.RmsNorm(t[0], t[1], 1e-5f), [GradCheck.Random(3, 2, 3, 7), GradCheck.Random(4, 7)]);
    }

    private static (float[] Cos, float[] Sin) Angles(int rows, int half, int seed)
    {
        var rng = new Rng((ulong)seed);
        var c = new float[rows * half];
        var s = new float[rows * half];
        for (int i = 0; i < c.Length; i++)
        {
            double a = rng.NextDouble() * 7 - 3.5;
            c[i] = (float)Math.Cos(a);
            s[i] = (float)Math.Sin(a);
        }
        return (c, s);
    }

    [Fact]
    public void RotaryIsAComplexRotationOfEachHalfPair()
    {
        // (x_i, x_{i+Dh/2}) as the complex number x_i + i·x_{i+Dh/2}, multiplied by e^{iθ}
        int rows = 5, heads = 3, dh = 6, half = 3;
        var x = GradCheck.Random(2, rows, heads * dh).ToArray();
        var (cos, sin) = Angles(rows, half, 9);
        var y = Tensor.Rotary(Tensor.From(x, rows, heads * dh), heads, Tensor.From(cos, rows, half), Tensor.From(sin, rows, half)).ToArray();
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                {
                    int o = r * heads * dh + h * dh;
                    var z = new System.Numerics.Complex(x[o + i], x[o + i + half]) * new System.Numerics.Complex(cos[r * half + i], sin[r * half + i]);
                    Assert.Equal(z.Real, y[o + i], 5);
                    Assert.Equal(z.Imaginary, y[o + i + half], 5);
                }
    }

    [Fact]
    public void RotaryKernelGradientInDouble()
    {
        int rows = 4, heads = 2, dh = 10, half = 5;
        var rng = new Rng(3);
        var cos = new double[rows * half];
        var sin = new double[rows * half];
        for (int i = 0; i < cos.Length; i++) { double a = rng.NextDouble() * 6; cos[i] = Math.Cos(a); sin[i] = Math.Sin(a); }
        GradCheck.Kernel(GradCheck.RandomDoubles(rows * heads * dh, seed: 4),
            x => { var y = new double[x.Length]; RotaryKernel.Apply<double>(x, y, cos, sin, rows, heads, dh, inverse: false); return y; },
            (_, _, dy) => { var dx = new double[dy.Length]; RotaryKernel.Apply<double>(dy, dx, cos, sin, rows, heads, dh, inverse: true); return dx; });
    }

    [Fact]
    public void RotaryAutogradAccumulatesIntoAnExistingGradient()
    {
        int rows = 6, heads = 2, dh = 4, half = 2;
        var (cos, sin) = Angles(rows, half, 5);
        Tensor C() => Tensor.From(cos, rows, half);
        Tensor S() => Tensor.From(sin, rows, half);
        // x used twice (rotated and as itself): the second gradient adds to the first
        GradCheck.Op(t => Tensor.Rotary(t[0], heads, C(), S()) + t[0] * 0.5f, [GradCheck.Random(7, 2, 3, heads * dh)]);
    }

    /// <summary>(B, T, Hkv·Dh) → (B, T, H·Dh): each key/value head repeated for the query heads of its group.</summary>
    private static Tensor Repeat(Tensor kv, int groups, int dh)
    {
        int b = kv.Dim(0), t = kv.Dim(1), hkv = kv.Dim(2) / dh;
        var src = kv.ToArray();
        var dst = new float[b * t * hkv * groups * dh];
        for (int r = 0; r < b * t; r++)
            for (int k = 0; k < hkv; k++)
                for (int g = 0; g < groups; g++)
                    Array.Copy(src, (r * hkv + k) * dh, dst, ((r * hkv + k) * groups + g) * dh, dh);
        return Tensor.From(dst, b, t, hkv * groups * dh);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GroupedQueryAttentionEqualsRepeatedKeyValueHeads(bool causal)
    {
        int b = 2, t = 5, h = 6, hkv = 2, dh = 3;
        var q = GradCheck.Random(1, b, t, h * dh);
        var k = GradCheck.Random(2, b, t, hkv * dh);
        var v = GradCheck.Random(3, b, t, hkv * dh);
        var pad = Tensor.From([1f, 1, 1, 1, 1, 1, 1, 1, 0, 0], b, t);
        var grouped = Tensor.MultiHeadAttention(q, k, v, h, causal, pad, kvHeads: hkv).ToArray();
        var repeated = Tensor.MultiHeadAttention(q, Repeat(k, h / hkv, dh), Repeat(v, h / hkv, dh), h, causal, pad).ToArray();
        Assert.Equal(repeated, grouped);
        GradCheck.Op(x => Tensor.MultiHeadAttention(x[0], x[1], x[2], h, causal, pad, kvHeads: hkv), [q, k, v]);
    }

    [Fact]
    public void CachedAttentionOfTheLastTokensEqualsFullCausalAttention()
    {
        // a cache (B, Tmax, Hkv·Dh) filled to T, read as a strided view: the last 2 queries see what they see in the full pass
        int b = 2, t = 7, tmax = 11, h = 4, hkv = 2, dh = 5, tq = 2;
        var q = GradCheck.Random(1, b, t, h * dh);
        var k = GradCheck.Random(2, b, t, hkv * dh);
        var v = GradCheck.Random(3, b, t, hkv * dh);
        var full = Tensor.MultiHeadAttention(q, k, v, h, causal: true, kvHeads: hkv).Narrow(1, t - tq, tq).Contiguous().ToArray();
        Tensor Cache(Tensor x)
        {
            var c = Tensor.Zeros(b, tmax, hkv * dh);
            var cs = c.Span; var xs = x.ToArray();
            for (int bi = 0; bi < b; bi++) xs.AsSpan(bi * t * hkv * dh, t * hkv * dh).CopyTo(cs.Slice(bi * tmax * hkv * dh));
            return c.Narrow(1, 0, t);
        }
        using (Graph.NoGrad())
        {
            var cached = Tensor.MultiHeadAttention(q.Narrow(1, t - tq, tq), Cache(k), Cache(v), h, causal: true, kvHeads: hkv).ToArray();
            for (int i = 0; i < full.Length; i++) Assert.Equal(full[i], cached[i], 5);
        }
        Assert.Throws<ArgumentException>(() => Tensor.MultiHeadAttention(q, k, v, h, kvHeads: 3));
    }
}
