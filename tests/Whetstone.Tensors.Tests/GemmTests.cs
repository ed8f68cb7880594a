using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

[CollectionDefinition("Gemm threads", DisableParallelization = true)]
public sealed class GemmThreadsCollection;

[Collection("Gemm threads")]
public unsafe class GemmTests
{
    private sealed record Problem(bool Ta, bool Tb, int M, int N, int K, int Lda, int Ldb, int Ldc, float[] A, float[] B, float[] C0);

    private static Problem Make(bool ta, bool tb, int m, int n, int k, int pad, int seed, bool nanC)
    {
        var rng = new Random(seed);
        int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int lda = aCols + pad, ldb = bCols + 2 * pad, ldc = n + 3 * pad;
        float[] Fill(int len) { var x = new float[len]; for (int i = 0; i < len; i++) x[i] = (float)(rng.NextDouble() * 2 - 1); return x; }
        var a = Fill(Math.Max(1, aRows * lda));
        var b = Fill(Math.Max(1, bRows * ldb));
        var c = Fill(Math.Max(1, m * ldc));
        if (nanC) Array.Fill(c, float.NaN);
        return new Problem(ta, tb, m, n, k, lda, ldb, ldc, a, b, c);
    }

    private static float[] Ours(Problem p, float alpha, float beta, Gemm.Config? cfg = null, int threads = 0)
    {
        var c = (float[])p.C0.Clone();
        fixed (float* pa = p.A) fixed (float* pb = p.B) fixed (float* pc = c)
        {
            if (cfg is { } cf && p.K > 0)
                Gemm.Packed(cf, threads, p.Ta, p.Tb, p.M, p.N, p.K, alpha, pa, p.Lda, pb, p.Ldb, beta, pc, p.Ldc);
            else
                Gemm.Run(p.Ta, p.Tb, p.M, p.N, p.K, alpha, pa, p.Lda, pb, p.Ldb, beta, pc, p.Ldc);
        }
        return c;
    }

    /// <summary>Checks <paramref name="got"/> against the double reference, entry by entry, and that padding was left alone.</summary>
    private static void Verify(Problem p, float alpha, float beta, float[] got)
    {
        double[] D(float[] x) => x.Select(v => (double)v).ToArray();
        double[] Abs(double[] x) => x.Select(Math.Abs).ToArray();
        var a = D(p.A); var b = D(p.B);
        var want = D(p.C0);
        var scale = Abs(want);
        if (beta == 0) { Array.Clear(want); Array.Clear(scale); }
        Gemm.Reference<double>(p.Ta, p.Tb, p.M, p.N, p.K, alpha, a, p.Lda, b, p.Ldb, beta, want, p.Ldc);
        Gemm.Reference<double>(p.Ta, p.Tb, p.M, p.N, p.K, Math.Abs(alpha), Abs(a), p.Lda, Abs(b), p.Ldb, Math.Abs(beta), scale, p.Ldc);
        double tol = 1e-5 * Math.Sqrt(p.K + 1);
        for (int i = 0; i < p.M; i++)
            for (int j = 0; j < p.Ldc; j++)
            {
                int at = i * p.Ldc + j;
                if (j >= p.N)
                {
                    Assert.True(p.C0[at].Equals(got[at]), $"padding C[{i},{j}] was written");
                    continue;
                }
                Assert.True(float.IsFinite(got[at]), $"C[{i},{j}] = {got[at]} (m={p.M} n={p.N} k={p.K})");
                double err = Math.Abs(got[at] - want[at]);
                Assert.True(err <= tol * scale[at] + 1e-30,
                    $"C[{i},{j}] = {got[at]}, want {want[at]} (err {err:g3}, m={p.M} n={p.N} k={p.K} ta={p.Ta} tb={p.Tb} alpha={alpha} beta={beta})");
            }
    }

    public static TheoryData<bool, bool, int, int, int> Shapes()
    {
        var data = new TheoryData<bool, bool, int, int, int>();
        (int, int, int)[] sizes =
        [
            (1, 1, 1), (1, 13, 7), (13, 1, 31), (13, 31, 33), (33, 97, 1), (97, 129, 65),
            (31, 33, 129), (1, 257, 97), (129, 33, 257), (257, 97, 13), (64, 96, 512), (30, 515, 40),
            (2, 515, 130), (1, 3000, 768), (3, 40, 200),   // matrix-vector rows (generation steps) and just past them
        ];
        foreach (var (m, n, k) in sizes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(ta, tb, m, n, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesReference(bool ta, bool tb, int m, int n, int k)
    {
        var p = Make(ta, tb, m, n, k, pad: 0, seed: m * 7 + n * 3 + k, nanC: true);
        Verify(p, 1f, 0f, Ours(p, 1f, 0f));
        var q = Make(ta, tb, m, n, k, pad: 3, seed: m + n + k, nanC: false);
        Verify(q, 1.5f, 0f, Ours(q, 1.5f, 0f));
        Verify(q, -0.5f, 1f, Ours(q, -0.5f, 1f));
        Verify(q, 2f, -0.75f, Ours(q, 2f, -0.75f));
    }

    [Fact]
    public void LargeOddSizesAllTransposes()
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                var p = Make(ta, tb, 515, 257, 431, pad: 5, seed: 3, nanC: false);
                Verify(p, 0.7f, 0.3f, Ours(p, 0.7f, 0.3f));
            }
    }

    [Fact]
    public void ZeroKScalesC()
    {
        var p = Make(false, false, 13, 17, 0, pad: 2, seed: 1, nanC: false);
        Verify(p, 1f, 0.5f, Ours(p, 1f, 0.5f));
        var q = Make(false, true, 13, 17, 0, pad: 2, seed: 1, nanC: true);
        var got = Ours(q, 1f, 0f);
        for (int i = 0; i < 13; i++)
            for (int j = 0; j < 17; j++) Assert.Equal(0f, got[i * q.Ldc + j]);
    }

    [Fact]
    public void AlphaZeroWithNaNCGivesZeros()
    {
        var p = Make(true, false, 20, 40, 30, pad: 0, seed: 9, nanC: true);
        Assert.All(Ours(p, 0f, 0f), v => Assert.Equal(0f, v));
    }

    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string> { "256:6x16", "scalar:4x4" };
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            foreach (var s in new[] { "14x32", "12x32", "8x32", "6x64", "4x64", "8x48" }) data.Add("512:" + s);
        return data;
    }

    private static Gemm.Config ConfigFor(string name) => name switch
    {
        "256:6x16" => new Gemm.Config(name, 6, 16, 144, 256, 2048, &Gemm.K256_6x16),
        "scalar:4x4" => new Gemm.Config(name, 4, 4, 64, 256, 1024, &Gemm.KScalar4x4),
        _ => Gemm.Kernel512(name[4..]),
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void EveryKernelWithSmallBlocks(string name)
    {
        // tiny blocking: several kc blocks (k = 97 with kc 16), N chunks, row blocks and edge tiles everywhere
        var cfg = ConfigFor(name).WithBlocking(mc: 3 * ConfigFor(name).Mr, kc: 16, nc: 2 * ConfigFor(name).Nr);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (int threads in new[] { 1, 2 })
                {
                    var p = Make(ta, tb, 61, 75 + cfg.Nr, 97, pad: 1, seed: 5, nanC: true);
                    Verify(p, 1.25f, 0f, Ours(p, 1.25f, 0f, cfg, threads));
                    var q = Make(ta, tb, 47, 3 * cfg.Nr + 1, 33, pad: 0, seed: 6, nanC: false);
                    Verify(q, 1f, 0.5f, Ours(q, 1f, 0.5f, cfg, threads));
                }
        // default blocking too
        var big = Make(false, true, 131, 2 * ConfigFor(name).Nr + 5, 300, pad: 0, seed: 8, nanC: true);
        Verify(big, 1f, 0f, Ours(big, 1f, 0f, ConfigFor(name), 2));
    }

    [Theory]
    [InlineData(1)]    // matrix-vector path
    [InlineData(2)]
    [InlineData(17)]   // packed path
    public void EpilogueAddsTheBiasAndWritesTheActivation(int m)
    {
        const int n = 300, k = 70;
        var p = Make(false, true, m, n, k, pad: 0, seed: m, nanC: false);
        var bias = Enumerable.Range(0, n).Select(j => (float)Math.Sin(j)).ToArray();
        var plain = Ours(p, 1f, 0f);
        var c = (float[])p.C0.Clone();
        var act = new float[c.Length];
        fixed (float* pa = p.A) fixed (float* pb = p.B) fixed (float* pc = c) fixed (float* pbias = bias) fixed (float* pact = act)
            Gemm.RunWithEpilogue(false, true, m, n, k, 1f, pa, p.Lda, pb, p.Ldb, 0f, pc, p.Ldc, pbias, Gemm.Activation.GeluTanh, pact);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float want = plain[i * p.Ldc + j] + bias[j];
                Assert.True(Math.Abs(c[i * p.Ldc + j] - want) <= 1e-4f, $"C[{i},{j}] = {c[i * p.Ldc + j]}, want {want}");
                double x = want, gelu = 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
                Assert.True(Math.Abs(act[i * p.Ldc + j] - gelu) <= 1e-4, $"act[{i},{j}] = {act[i * p.Ldc + j]}, want {gelu}");
            }
    }

    [Fact]
    public void OneAndTwoThreadsAreBitIdentical()
    {
        int saved = Par.Threads;
        try
        {
            foreach (var (ta, tb, m, n, k) in new[] { (false, false, 300, 257, 515), (true, true, 97, 700, 129), (false, true, 16, 2000, 200), (false, true, 1, 5000, 300), (false, false, 2, 3000, 400) })
            {
                var p = Make(ta, tb, m, n, k, pad: 1, seed: 4, nanC: false);
                Par.Threads = 1;
                var one = Ours(p, 1f, 0.5f);
                Par.Threads = 2;
                var two = Ours(p, 1f, 0.5f);
                Assert.Equal(one, two);
                if (ta || m > Gemm.GemvRows) Assert.Equal(one, Ours(p, 1f, 0.5f, Gemm.Current, 2));   // the matrix-vector paths sum in another order than the packed one
                Verify(p, 1f, 0.5f, two);
            }
        }
        finally { Par.Threads = saved; }
    }

    [Theory]
    [InlineData(false, true, 7, 32, 32, 16)]   // many small matrices: parallel over the batch
    [InlineData(true, false, 3, 200, 150, 300)] // few large matrices: parallel inside each
    public void BatchedWithSharedOperands(bool ta, bool tb, int batch, int m, int n, int k)
    {
        int saved = Par.Threads;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                Par.Threads = threads;
                foreach (var (shareA, shareB) in new[] { (false, false), (true, false), (false, true) })
                {
                    var ps = Enumerable.Range(0, batch).Select(i => Make(ta, tb, m, n, k, pad: 0, seed: 100 + i, nanC: false)).ToArray();
                    // shared operands: every batch entry sees matrix 0
                    if (shareA) ps = ps.Select(x => x with { A = ps[0].A }).ToArray();
                    if (shareB) ps = ps.Select(x => x with { B = ps[0].B }).ToArray();
                    long sa = shareA ? 0 : ps[0].A.Length, sb = shareB ? 0 : ps[0].B.Length, sc = ps[0].C0.Length;
                    var a = shareA ? ps[0].A : ps.SelectMany(x => x.A).ToArray();
                    var b = shareB ? ps[0].B : ps.SelectMany(x => x.B).ToArray();
                    var c = ps.SelectMany(x => x.C0).ToArray();
                    fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                        Gemm.RunBatched(batch, ta, tb, m, n, k, 0.5f, pa, ps[0].Lda, sa, pb, ps[0].Ldb, sb, 2f, pc, ps[0].Ldc, sc);
                    for (int i = 0; i < batch; i++)
                        Verify(ps[i], 0.5f, 2f, c.AsSpan((int)(i * sc), (int)sc).ToArray());
                }
            }
        }
        finally { Par.Threads = saved; }
    }
}
