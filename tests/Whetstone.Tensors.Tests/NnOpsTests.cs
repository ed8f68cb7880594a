using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

public class NnOpsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SoftmaxKernelGradientInDouble(bool log)
    {
        const int rows = 7, cols = 13;
        GradCheck.Kernel(GradCheck.RandomDoubles(rows * cols, seed: 5, scale: 2),
            x => { var y = new double[x.Length]; Softmax.Forward<double>(x, y, rows, cols, log); return y; },
            (x, y, dy) => { var dx = new double[x.Length]; Softmax.Backward<double>(y, dy, dx, rows, cols, log, false); return dx; });
    }

    [Fact]
    public void LayerNormKernelGradientsInDouble()
    {
        const int rows = 5, d = 37;
        var gamma = GradCheck.RandomDoubles(d, seed: 8);
        var beta = GradCheck.RandomDoubles(d, seed: 9);
        double[] Fwd(double[] x, double[] g, double[] b)
        {
            var y = new double[x.Length];
            LayerNormKernel.Forward<double>(x, g, b, y, new double[rows], new double[rows], rows, d, 1e-5);
            return y;
        }
        (double[] dx, double[] dg, double[] db) Bwd(double[] x, double[] g, double[] dy)
        {
            var mean = new double[rows]; var rstd = new double[rows];
            LayerNormKernel.Forward<double>(x, g, beta, new double[x.Length], mean, rstd, rows, d, 1e-5);
            var dx = new double[x.Length]; var dgam = new double[d]; var dbet = new double[d];
            LayerNormKernel.Backward<double>(dy, x, g, mean, rstd, dx, false, dgam, dbet, rows, d);
            return (dx, dgam, dbet);
        }
        var x0 = GradCheck.RandomDoubles(rows * d, seed: 10, scale: 3);
        GradCheck.Kernel(x0, x => Fwd(x, gamma, beta), (x, _, dy) => Bwd(x, gamma, dy).dx);
        GradCheck.Kernel(gamma, g => Fwd(x0, g, beta), (g, _, dy) => Bwd(x0, g, dy).dg);
        GradCheck.Kernel(beta, b => Fwd(x0, gamma, b), (b, _, dy) => Bwd(x0, gamma, dy).db);
    }

    [Fact]
    public void ResidualLayerNormKernelGradientsInDouble()
    {
        // y = LN(x + r): both addends get the same gradient, written (fresh) or added (accumulate) in one pass;
        // 70 rows span three backward blocks, so the per-block γ/β sums are checked too
        const int rows = 70, d = 11;
        var gamma = GradCheck.RandomDoubles(d, seed: 18);
        var beta = GradCheck.RandomDoubles(d, seed: 19);
        var r0 = GradCheck.RandomDoubles(rows * d, seed: 20, scale: 2);
        double[] Fwd(double[] x, double[] r, double[] g, double[] b)
        {
            var y = new double[x.Length];
            LayerNormKernel.Forward<double>(x, r, new double[x.Length], g, b, y, new double[rows], new double[rows], rows, d, 1e-5);
            return y;
        }
        (double[] dx, double[] dr, double[] dg, double[] db) Bwd(double[] x, double[] r, double[] g, double[] dy, double[]? prior = null)
        {
            var mean = new double[rows]; var rstd = new double[rows]; var sum = new double[x.Length];
            LayerNormKernel.Forward<double>(x, r, sum, g, beta, new double[x.Length], mean, rstd, rows, d, 1e-5);
            var dx = new double[x.Length]; var dr = prior is null ? new double[x.Length] : (double[])prior.Clone();
            var dgam = new double[d]; var dbet = new double[d];
            LayerNormKernel.Backward<double>(dy, sum, g, mean, rstd, dx, false, dr, prior is not null, dgam, dbet, rows, d);
            if (prior is not null) for (int i = 0; i < dr.Length; i++) dr[i] -= prior[i];   // the accumulated share alone
            return (dx, dr, dgam, dbet);
        }
        var x0 = GradCheck.RandomDoubles(rows * d, seed: 21, scale: 3);
        var prior = GradCheck.RandomDoubles(rows * d, seed: 22);
        GradCheck.Kernel(x0, x => Fwd(x, r0, gamma, beta), (x, _, dy) => Bwd(x, r0, gamma, dy).dx);
        GradCheck.Kernel((double[])r0.Clone(), r => Fwd(x0, r, gamma, beta), (r, _, dy) => Bwd(x0, r, gamma, dy).dr);
        GradCheck.Kernel((double[])r0.Clone(), r => Fwd(x0, r, gamma, beta), (r, _, dy) => Bwd(x0, r, gamma, dy, prior).dr);
        GradCheck.Kernel(gamma, g => Fwd(x0, r0, g, beta), (g, _, dy) => Bwd(x0, r0, g, dy).dg);
        GradCheck.Kernel(beta, b => Fwd(x0, r0, gamma, b), (b, _, dy) => Bwd(x0, r0, gamma, dy).db);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void LoraLinearMatchesComposedAdapter(bool withBias, bool trainBase)
    {
        // y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ against the composition of three linears, a scale and an add
        const float s = 2.5f;
        Tensor[] Inputs() => [GradCheck.Random(51, 2, 5, 7), GradCheck.Random(52, 6, 7), GradCheck.Random(53, 6), GradCheck.Random(54, 3, 7), GradCheck.Random(55, 6, 3)];
        Tensor Composed(Tensor[] t) => Tensor.Linear(t[0], t[1], withBias ? t[2] : null) + Tensor.Linear(Tensor.Linear(t[0], t[3], null) * s, t[4], null);
        Tensor Fused(Tensor[] t) => Tensor.LoraLinear(t[0], t[1], withBias ? t[2] : null, t[3], t[4], s);
        var a = Inputs(); var b = Inputs();
        foreach (var t in a.Concat(b)) t.RequiresGrad = true;
        if (!trainBase) { a[1].RequiresGrad = b[1].RequiresGrad = false; }
        var w = GradCheck.Random(56, 2, 5, 6);
        var ya = Composed(a); var yb = Fused(b);
        var (fa, fb) = (ya.ToArray(), yb.ToArray());
        for (int i = 0; i < fa.Length; i++) Assert.Equal(fa[i], fb[i], 5);
        (ya * w).Sum().Backward(); (yb * w).Sum().Backward();
        for (int k = 0; k < 5; k++)
        {
            if (!a[k].RequiresGrad || (!withBias && k == 2)) { Assert.Null(b[k].Grad); continue; }
            var (ga, gb) = (a[k].Grad!.ToArray(), b[k].Grad!.ToArray());
            for (int i = 0; i < ga.Length; i++) Assert.Equal(ga[i], gb[i], 4);
        }
        var inputs = Inputs();
        if (!withBias) inputs = [inputs[0], inputs[1], inputs[3], inputs[4]];
        GradCheck.Op(t => withBias ? Tensor.LoraLinear(t[0], t[1], t[2], t[3], t[4], s) : Tensor.LoraLinear(t[0], t[1], null, t[2], t[3], s), inputs);
    }

    [Theory]
    [InlineData(false, 3, 5, 7, true)]
    [InlineData(true, 3, 5, 7, false)]
    [InlineData(false, 300, 70, 200, true)]     // large enough to run on both threads, edge tiles in both axes
    public void LinearGeluMatchesLinearThenGelu(bool tanh, int m, int n, int k, bool withBias)
    {
        Tensor[] Inputs() => [GradCheck.Random(61, m, k), GradCheck.Random(62, n, k), GradCheck.Random(63, n)];
        var a = Inputs(); var b = Inputs();
        foreach (var t in a.Concat(b)) t.RequiresGrad = true;
        var ya = Tensor.Linear(a[0], a[1], withBias ? a[2] : null).Gelu(tanh);
        var yb = Tensor.LinearGelu(b[0], b[1], withBias ? b[2] : null, tanh);
        // same GEMM and bias add; GELU's vector and scalar paths split the elements differently, so agree to rounding
        static void Close(float[] e, float[] g, double tol) { for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - g[i]) <= tol * Math.Max(1, Math.Abs(e[i])), $"{i}: {e[i]} vs {g[i]}"); }
        Close(ya.ToArray(), yb.ToArray(), 1e-6);
        using (Autograd.Graph.NoGrad())                            // in place over the pre-activation: the same values
            Assert.Equal(yb.ToArray(), Tensor.LinearGelu(b[0], b[1], withBias ? b[2] : null, tanh).ToArray());
        var w = GradCheck.Random(64, m, n);
        (ya * w).Sum().Backward(); (yb * w).Sum().Backward();
        for (int i = 0; i < (withBias ? 3 : 2); i++) Close(a[i].Grad!.ToArray(), b[i].Grad!.ToArray(), 1e-5);
        if (m * n * k < 1000)
            GradCheck.Op(t => Tensor.LinearGelu(t[0], t[1], withBias ? t[2] : null, tanh), withBias ? Inputs() : Inputs()[..2]);
    }

    [Fact]
    public void AddLayerNormMatchesAddThenLayerNorm()
    {
        Tensor[] Inputs() => [GradCheck.Random(31, 3, 40, 9), GradCheck.Random(32, 3, 40, 9), GradCheck.Random(33, 9), GradCheck.Random(34, 9)];
        var a = Inputs(); var b = Inputs();
        foreach (var t in a.Concat(b)) t.RequiresGrad = true;
        var w = GradCheck.Random(35, 3, 40, 9);
        var ya = Tensor.LayerNorm(a[0] + a[1], a[2], a[3]);
        var yb = Tensor.AddLayerNorm(b[0], b[1], b[2], b[3]);
        var (fa, fb) = (ya.ToArray(), yb.ToArray());
        for (int i = 0; i < fa.Length; i++) Assert.Equal(fa[i], fb[i], 5);
        (ya * w).Sum().Backward(); (yb * w).Sum().Backward();
        for (int k = 0; k < 4; k++)
        {
            var (ga, gb) = (a[k].Grad!.ToArray(), b[k].Grad!.ToArray());
            for (int i = 0; i < ga.Length; i++) Assert.Equal(ga[i], gb[i], 4);
        }
        GradCheck.Op(t => Tensor.AddLayerNorm(t[0], t[1], t[2], t[3]), [GradCheck.Random(36, 2, 3, 7), GradCheck.Random(37, 2, 3, 7), GradCheck.Random(38, 7), GradCheck.Random(39, 7)]);
        GradCheck.Op(t => Tensor.AddLayerNorm(t[0], t[0], t[1], null), [GradCheck.Random(40, 2, 3, 7), GradCheck.Random(41, 7)]);
    }

    [Theory]
    [InlineData(-100, 0.0, false, true)]
    [InlineData(2, 0.1, true, true)]
    [InlineData(-100, 0.2, true, false)]
    public void CrossEntropyKernelGradientInDouble(int ignore, double smoothing, bool weighted, bool mean)
    {
        const int n = 6, c = 5;
        int[] targets = [0, 2, 4, 1, 2, 3];
        double[] w = weighted ? [0.5, 2.0, 1.0, 0.25, 3.0] : [];
        GradCheck.Kernel(GradCheck.RandomDoubles(n * c, seed: 12, scale: 2),
            x => [CrossEntropyKernel.Forward<double>(x, targets, w, n, c, ignore, smoothing, mean, new double[n], out _)],
            (x, _, dy) =>
            {
                var lse = new double[n];
                CrossEntropyKernel.Forward<double>(x, targets, w, n, c, ignore, smoothing, mean, lse, out double z);
                var dx = new double[n * c];
                CrossEntropyKernel.Backward<double>(dy[0], x, lse, targets, w, n, c, ignore, smoothing, z, dx, false);
                return dx;
            });
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void CrossEntropyVectorPathMatchesTheDoubleKernelOnWideRows(float smoothing)
    {
        // 257 classes: the float op goes through the 16-wide exp and a scalar tail; the double kernel is the reference
        const int n = 7, c = 257;
        var xd = GradCheck.RandomDoubles(n * c, seed: 21, scale: 6);
        int[] targets = [0, 256, 17, -100, 128, 5, 200];
        var x = Tensor.From(xd.Select(v => (float)v).ToArray(), n, c);
        x.RequiresGrad = true;
        var loss = Tensor.CrossEntropy(x, targets, labelSmoothing: smoothing);
        loss.Backward();
        var xr = xd.Select(v => (double)(float)v).ToArray();
        var lse = new double[n];
        double want = CrossEntropyKernel.Forward<double>(xr, targets, [], n, c, -100, smoothing, true, lse, out double z);
        var dx = new double[n * c];
        CrossEntropyKernel.Backward<double>(1.0, xr, lse, targets, [], n, c, -100, smoothing, z, dx, false);
        Assert.True(Math.Abs(loss.Item() - want) <= 1e-5 * Math.Abs(want), $"loss {loss.Item()} vs {want}");
        var g = x.Grad!.ToArray();
        for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(g[i] - dx[i]) <= 1e-6 + 1e-4 * Math.Abs(dx[i]), $"grad {i}: {g[i]} vs {dx[i]}");
        for (int j = 0; j < c; j++) Assert.Equal(0f, g[3 * c + j]);   // the ignored row
    }

    [Fact]
    public void CrossEntropyValueMatchesHandComputation()
    {
        // logits row [1, 2, 3], target 2: −log(e³/(e¹+e²+e³)) = log(1 + e⁻¹ + e⁻²)
        var loss = Tensor.CrossEntropy(Tensor.From([1f, 2, 3], 1, 3), [2]);
        Assert.Equal(Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)), loss.Item(), 5);
    }

    [Fact]
    public void OpLevelGradients()
    {
        GradCheck.Op(t => Tensor.LayerNorm(t[0], t[1], t[2]), [GradCheck.Random(1, 4, 3, 7), GradCheck.Random(2, 7), GradCheck.Random(3, 7)]);
        GradCheck.Op(t => t[0].LogSoftmax() * 1f, [GradCheck.Random(4, 3, 9)]);
        GradCheck.Op(t => t[0].Softmax(0), [GradCheck.Random(5, 4, 3)]);
        GradCheck.Op(t => Tensor.CrossEntropy(t[0], [1, 0, 3], labelSmoothing: 0.1f), [GradCheck.Random(6, 3, 4)]);
        GradCheck.Op(t => Tensor.Embedding(t[0], [3, 1, 3, 0], 2, 2), [GradCheck.Random(7, 5, 3)]);
    }

    [Fact]
    public void DropoutIsSeededAndScaled()
    {
        var x = Tensor.Ones(1000);
        var a = x.Dropout(0.25f, new Rng(3)).ToArray();
        var b = x.Dropout(0.25f, new Rng(3)).ToArray();
        Assert.Equal(a, b);
        Assert.All(a, v => Assert.True(v == 0f || Math.Abs(v - 4f / 3) < 1e-6));
        int zeros = a.Count(v => v == 0);
        Assert.InRange(zeros, 200, 300);
        Assert.Same(x, x.Dropout(0.5f, new Rng(1), training: false));
    }

    private static Tensor ComposedAttention(Tensor q, Tensor k, Tensor v, bool causal, Tensor? pad)
    {
        int tq = q.Dim(2), tk = k.Dim(2), dh = q.Dim(3);
        var s = Tensor.MatMul(q, k.Transpose(2, 3)) * (1f / MathF.Sqrt(dh));
        if (causal)
        {
            var m = Tensor.Zeros(tq, tk);
            for (int i = 0; i < tq; i++) for (int j = i + (tk - tq) + 1; j < tk; j++) m[i, j] = 1;
            s = s.MaskedFill(m, float.NegativeInfinity);
        }
        if (pad is not null)
        {
            var m = (pad * -1f + 1f).Reshape(pad.Dim(0), 1, 1, tk);
            s = s.MaskedFill(m, float.NegativeInfinity);
        }
        return Tensor.MatMul(s.Softmax(), v);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void FusedAttentionMatchesComposedOps(bool causal, bool padded)
    {
        // heads split from a (B, T, H·Dh) projection, as in a transformer: strided views
        int b = 2, t = 7, h = 3, dh = 5;
        var qkv = GradCheck.Random(1, b, t, 3 * h * dh);
        Tensor Split(Tensor x, int i) => x.Narrow(2, i * h * dh, h * dh).Reshape(b, t, h, dh).Permute(0, 2, 1, 3);
        var pad = padded ? Tensor.From([1f, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], b, t) : null;
        var fused = Tensor.ScaledDotProductAttention(Split(qkv.Contiguous(), 0), Split(qkv, 1), Split(qkv, 2), causal, pad).ToArray();
        var composed = ComposedAttention(Split(qkv, 0), Split(qkv, 1), Split(qkv, 2), causal, pad).ToArray();
        for (int i = 0; i < fused.Length; i++) Assert.Equal(composed[i], fused[i], 5);
        GradCheck.Op(x => Tensor.ScaledDotProductAttention(Split(x[0], 0), Split(x[0], 1), Split(x[0], 2), causal, pad), [qkv]);
    }

    [Fact]
    public void AttentionDropoutMatchesComposedOpsWithTheSameMask()
    {
        int b = 2, t = 6, h = 2, dh = 4;
        const float p = 0.3f;
        var qkv = GradCheck.Random(3, b, t, 3 * h * dh);
        Tensor Split(Tensor x, int i) => x.Narrow(2, i * h * dh, h * dh).Reshape(b, t, h, dh).Permute(0, 2, 1, 3);
        Tensor Fused(Tensor x) => Tensor.ScaledDotProductAttention(Split(x, 0), Split(x, 1), Split(x, 2), causal: true, dropout: p, rng: new Rng(99));
        Tensor Composed(Tensor x)
        {
            var rng = new Rng(99);   // the fused op draws its mask in (b, h, i, j) order from the same generator
            var mask = Tensor.Empty(b, h, t, t);
            var ms = mask.Span;
            for (int i = 0; i < ms.Length; i++) ms[i] = rng.NextDouble() < p ? 0f : 1 / (1 - p);
            var s = Tensor.MatMul(Split(x, 0), Split(x, 1).Transpose(2, 3)) * (1f / MathF.Sqrt(dh));
            var causal = Tensor.Zeros(t, t);
            for (int i = 0; i < t; i++) for (int j = i + 1; j < t; j++) causal[i, j] = 1;
            return Tensor.MatMul(s.MaskedFill(causal, float.NegativeInfinity).Softmax() * mask, Split(x, 2));
        }
        var fused = Fused(qkv).ToArray();
        var composed = Composed(qkv).ToArray();
        for (int i = 0; i < fused.Length; i++) Assert.True(Math.Abs(composed[i] - fused[i]) <= 2e-6f, $"element {i}: fused {fused[i]} vs composed {composed[i]}");
        var undropped = Tensor.ScaledDotProductAttention(Split(qkv, 0), Split(qkv, 1), Split(qkv, 2), causal: true).ToArray();
        Assert.True(fused.Zip(undropped).Count(z => Math.Abs(z.First - z.Second) > 1e-4) > fused.Length / 4, "dropout must change the output");
        GradCheck.Op(x => Fused(x[0]), [qkv]);
    }

    [Theory]
    [InlineData(false, false, 0f)]
    [InlineData(true, true, 0f)]
    [InlineData(false, true, 0.3f)]
    public void MergedHeadAttentionMatchesSplitHeadsAndMerge(bool causal, bool padded, float dropout)
    {
        // q, k, v as (B, T, H·Dh) projections; the reference splits them into (B, H, T, Dh) views and merges the result
        int b = 2, t = 7, h = 3, dh = 5, d = h * dh;
        var pad = padded ? Tensor.From([1f, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], b, t) : null;
        Tensor Split(Tensor x) => x.Reshape(b, t, h, dh).Permute(0, 2, 1, 3);
        Tensor Reference(Tensor[] x) => Tensor.ScaledDotProductAttention(Split(x[0]), Split(x[1]), Split(x[2]), causal, pad,
            dropout: dropout, rng: dropout > 0 ? new Rng(5) : null).Permute(0, 2, 1, 3).Reshape(b, t, d);
        Tensor Merged(Tensor[] x) => Tensor.MultiHeadAttention(x[0], x[1], x[2], h, causal, pad, dropout: dropout, rng: dropout > 0 ? new Rng(5) : null);
        Tensor[] Inputs() => [GradCheck.Random(11, b, t, d), GradCheck.Random(12, b, t, d), GradCheck.Random(13, b, t, d)];
        var xr = Inputs(); var xm = Inputs();
        foreach (var x in xr.Concat(xm)) x.RequiresGrad = true;
        var w = GradCheck.Random(14, b, t, d);
        var yr = Reference(xr); var ym = Merged(xm);
        Assert.Equal(yr.ToArray(), ym.ToArray());                 // same kernel, same order: bit-identical
        (yr * w).Sum().Backward(); (ym * w).Sum().Backward();
        for (int i = 0; i < 3; i++) Assert.Equal(xr[i].Grad!.ToArray(), xm[i].Grad!.ToArray());
        GradCheck.Op(Merged, Inputs());
    }

    [Fact]
    public void MergedHeadAttentionWithOneTensorInEveryRoleAddsItsGradients()
    {
        var x = GradCheck.Random(4, 2, 5, 6);
        GradCheck.Op(t => Tensor.MultiHeadAttention(t[0], t[0], t[0], 2), [x]);
    }

    [Fact]
    public void AttentionWithOneTensorInEveryRoleAddsItsGradients()
    {
        var x = GradCheck.Random(4, 1, 2, 5, 3);
        GradCheck.Op(t => Tensor.ScaledDotProductAttention(t[0], t[0], t[0]), [x]);
    }

    [Fact]
    public void FrozenBranchCostsNothing()
    {
        // y = relu(x·W1)·W2 with W1 frozen: backward must reach W2 only, W1 and x get no gradient.
        var x = GradCheck.Random(1, 4, 6);
        var w1 = GradCheck.Random(2, 6, 5);
        var w2 = GradCheck.Random(3, 5, 3);
        w2.RequiresGrad = true;
        var hidden = Tensor.MatMul(x, w1).Relu();
        Assert.False(hidden.RequiresGrad);
        Tensor.MatMul(hidden, w2).Sum().Backward();
        Assert.Null(w1.Grad);
        Assert.Null(x.Grad);
        Assert.NotNull(w2.Grad);
    }
}
