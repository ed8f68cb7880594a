using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C, op(X) = X or Xᵀ.
/// A is stored [M,K] (or [K,M] when transposed) with leading dimension lda; likewise B [K,N] / [N,K] and C [M,N].
/// beta = 0 overwrites C without reading it (C may hold garbage or NaN).
/// </summary>
/// <remarks>
/// GotoBLAS/BLIS structure. N is cut into chunks of <c>Nc</c> columns; for each chunk all of op(B) is packed once
/// (shared by the threads) into NR-wide panels, one kc-deep block after another. The rows of C are cut into
/// blocks of mc rows (and, when there are few of them, the chunk's panels into column groups); every
/// (row block, column group) item is one task for <see cref="Par.For(int,int,Action{int,int})"/>: it packs its
/// rows of op(A) into MR-tall panels (thread-local buffer) per kc block and runs the register-blocked
/// micro-kernel over its tiles. Each C element is summed in the same order (kc blocks in turn, k ascending in a
/// block) whatever the tiling or thread count, so results are bit-identical for any number of threads.
/// </remarks>
internal static unsafe partial class Gemm
{
    /// <summary>A micro-kernel: acc(MR×NR) = Σ_p pa[p·MR+r]·pb[p·NR+c]; C = alpha·acc (beta = 0) or fma(beta, C, alpha·acc).</summary>
    internal readonly struct Config
    {
        public readonly int Mr, Nr, Mc, Kc, Nc;
        public readonly delegate*<int, float*, float*, float*, nint, float, float, void> Kernel;
        public readonly string Name;

        public Config(string name, int mr, int nr, int mc, int kc, int nc, delegate*<int, float*, float*, float*, nint, float, float, void> kernel)
        {
            Name = name; Mr = mr; Nr = nr; Kc = kc; Kernel = kernel;
            Mc = Math.Max(mr, mc / mr * mr);
            Nc = Math.Max(nr, nc / nr * nr);
        }

        public Config WithBlocking(int mc, int kc, int nc) => new(Name, Mr, Nr, mc, kc, nc, Kernel);
    }

    /// <summary>The kernel and blocking in use (settable for tuning and tests).</summary>
    internal static Config Current = DefaultConfig();

    /// <summary>With several threads, cut the rows into at least this many blocks per thread.</summary>
    internal static int RowBlocksPerThread = 4;

    /// <summary>Problems with fewer multiply-adds than this run on the calling thread only.</summary>
    internal static long ParallelThreshold = 1 << 22;

    internal static Config DefaultConfig()
    {
        if (Vector512.IsHardwareAccelerated) return Kernel512("14x32");
        if (Vector256.IsHardwareAccelerated) return new Config("256:6x16", 6, 16, 144, 256, 2048, &K256_6x16);
        return new Config("scalar:4x4", 4, 4, 64, 256, 1024, &KScalar4x4);
    }

    /// <summary>
    /// With AVX-512, pick the kernel height for each problem from these (same kc, so the summation order is
    /// the same whichever runs): the one wasting the fewest padded rows, weighted by its relative speed.
    /// Off when <see cref="Current"/> is set by hand (tuning).
    /// </summary>
    internal static bool AutoKernel = Vector512.IsHardwareAccelerated;
    private static readonly (Config Cfg, double Speed)[] Auto512 = Vector512.IsHardwareAccelerated
        ? [(Kernel512("14x32"), 1.0), (Kernel512("12x32"), 0.99), (Kernel512("8x32"), 0.97)]
        : [];

    internal static Config ForRows(int m)
    {
        if (!AutoKernel) return Current;
        var best = Auto512[0];
        double bestCost = double.MaxValue;
        foreach (var cand in Auto512)
        {
            double cost = RoundUp(m, cand.Cfg.Mr) / cand.Speed;
            if (cost < bestCost) { best = cand; bestCost = cost; }
        }
        return best.Cfg;
    }

    /// <summary>An AVX-512 micro-kernel by shape, with default blocking.</summary>
    internal static Config Kernel512(string shape) => shape switch
    {
        "14x32" => new Config("512:14x32", 14, 32, 280, 512, 2048, &K512_14x32),
        "12x32" => new Config("512:12x32", 12, 32, 288, 512, 2048, &K512_12x32),
        "8x32" => new Config("512:8x32", 8, 32, 256, 512, 2048, &K512_8x32),
        "6x64" => new Config("512:6x64", 6, 64, 144, 384, 4096, &K512_6x64),
        "4x64" => new Config("512:4x64", 4, 64, 128, 384, 4096, &K512_4x64),
        "8x48" => new Config("512:8x48", 8, 48, 128, 384, 4096, &K512_8x48),
        _ => throw new ArgumentException($"unknown kernel {shape}"),
    };

    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0) { ScaleC(m, n, beta, c, ldc); return; }
        if (!transA && transB && m <= GemvRows) { Gemv(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, default); return; }
        if (!transA && !transB && m <= GemvRows) { RowCombination(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); return; }
        int threads = (long)m * n * k < ParallelThreshold ? 1 : Par.Threads;
        Packed(ForRows(m), threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>
    /// C[i, :] = alpha·Σ_k A[i, k]·B[k, :] + beta·C[i, :] for i &lt; m ≤ <see cref="GemvRows"/>, B read as [k, n] rows in
    /// place (a one-token attention step's P·V over the whole KV cache): each row of B is read once, nothing is packed.
    /// Parallel over column chunks when the product is large.
    /// </summary>
    private static void RowCombination(int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        int grain = (long)n * k < ParallelThreshold ? n : Math.Max(256, n / Math.Max(1, 4 * Par.Threads));
        Par.For(n, grain, (s, e) =>
        {
            int w = e - s;
            for (int i = 0; i < m; i++)
            {
                var ci = new Span<float>(c + (long)i * ldc + s, w);
                if (beta == 0) ci.Clear();
                else if (beta != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(ci, beta, ci);
                float* ai = a + (long)i * lda;
                for (int kk = 0; kk < k; kk++)
                {
                    float x = alpha * ai[kk];
                    if (x != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)kk * ldb + s, w), x, ci, ci);
                }
            }
        });
    }

    /// <summary>
    /// With at most this many rows of A and B read as [n, k] rows (transB: a weight matrix [out, in]), C is a few
    /// matrix-vector products: dot products over B in place, each weight read once and not packed — what a decoder's
    /// one-token generation steps are.
    /// </summary>
    internal const int GemvRows = 2;

    /// <summary>C[i, j] = alpha·A[i, :]·B[j, :] + beta·C[i, j] for i &lt; m ≤ <see cref="GemvRows"/>, then the epilogue; parallel over j.</summary>
    private static void Gemv(int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, Epilogue epi)
    {
        int grain = Math.Max(16, (int)Math.Min(n, (1L << 16) / Math.Max(1, k)));
        if ((long)n * k < ParallelThreshold) grain = n;
        Par.For(n, grain, (s, e) =>
        {
            for (int j = s; j < e; j++)
            {
                var bj = new ReadOnlySpan<float>(b + (long)j * ldb, k);
                for (int i = 0; i < m; i++)
                {
                    float d = alpha * System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(a + (long)i * lda, k), bj);
                    float* ci = c + (long)i * ldc + j;
                    *ci = beta == 0 ? d : d + beta * *ci;
                }
            }
            if (epi.Any) epi.Tile(c + s, ldc, epi.Act == null ? null : epi.Act + s, m, e - s, s);
        });
    }

    /// <summary>What to do with each finished tile of C while it is still in L1.</summary>
    internal enum Activation { None, GeluErf, GeluTanh }

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C, then C[i, j] += bias[j] (bias may be null) and, with an activation,
    /// act[i, j] = f(C[i, j]) (act has leading dimension ldc): the epilogue runs on each tile as it is finished,
    /// so neither the bias add nor the activation is a pass over memory of its own. k ≥ 1.
    /// </summary>
    public static void RunWithEpilogue(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, float* bias, Activation activation, float* act)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), "RunWithEpilogue needs k ≥ 1.");
        if (!transA && transB && m <= GemvRows) { Gemv(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, new Epilogue(bias, activation, act)); return; }
        int threads = (long)m * n * k < ParallelThreshold ? 1 : Par.Threads;
        Packed(ForRows(m), threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, new Epilogue(bias, activation, act));
    }

    internal readonly struct Epilogue(float* bias, Activation activation, float* act)
    {
        public readonly float* Bias = bias, Act = act;
        public readonly Activation Kind = activation;
        public bool Any => Bias != null || Kind != Activation.None;

        /// <summary>Applies the epilogue to rows × cols of C at c (column j0 of the whole matrix), act at the same place.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Tile(float* c, nint ldc, float* act, int rows, int cols, int j0)
        {
            float* t = stackalloc float[16];
            for (int r = 0; r < rows; r++)
            {
                float* cr = c + r * ldc, ar = act == null ? null : act + r * ldc;
                int q = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    for (; q + 16 <= cols; q += 16)
                    {
                        var v = Vector512.Load(cr + q);
                        if (Bias != null) { v += Vector512.Load(Bias + j0 + q); Vector512.Store(v, cr + q); }
                        if (Kind == Activation.GeluErf) Vector512.Store(Kernels.GeluErf.F(v), ar + q);
                        else if (Kind == Activation.GeluTanh) Vector512.Store(Kernels.GeluTanh.F(v), ar + q);
                    }
                }
                if (Vector512.IsHardwareAccelerated && q < cols)
                {
                    // the ragged end through the same vector code, so every element gets the same rounding
                    int rest = cols - q;
                    for (int e = 0; e < 16; e++) t[e] = e < rest ? cr[q + e] + (Bias != null ? Bias[j0 + q + e] : 0f) : 0f;
                    var v = Vector512.Load(t);
                    if (Bias != null) for (int e = 0; e < rest; e++) cr[q + e] = t[e];
                    if (Kind == Activation.GeluErf) Vector512.Store(Kernels.GeluErf.F(v), t);
                    else if (Kind == Activation.GeluTanh) Vector512.Store(Kernels.GeluTanh.F(v), t);
                    if (Kind != Activation.None) for (int e = 0; e < rest; e++) ar[q + e] = t[e];
                    q = cols;
                }
                for (; q < cols; q++)
                {
                    float v = cr[q];
                    if (Bias != null) { v += Bias[j0 + q]; cr[q] = v; }
                    if (Kind == Activation.GeluErf) ar[q] = Elementwise.ScalarF<GeluErf>(v);
                    else if (Kind == Activation.GeluTanh) ar[q] = Elementwise.ScalarF<GeluTanh>(v);
                }
            }
        }
    }

    /// <summary>Batched GEMM: matrices of batch i start at a + i·strideA (and so on).</summary>
    public static void RunBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float beta, float* c, int ldc, long strideC)
    {
        if (batch <= 0 || m <= 0 || n <= 0) return;
        long work = (long)m * n * k;
        int threads = Par.Threads;
        // Small matrices (attention heads) or many of them: one matrix per task, each on one thread.
        if (threads > 1 && batch > 1 && (batch >= 4 * threads || work < (1L << 22)))
        {
            var cfg = ForRows(m);
            Par.For(batch, 1, (s, e) =>
            {
                for (int i = s; i < e; i++)
                {
                    float* ci = c + i * strideC;
                    if (k <= 0 || alpha == 0) ScaleC(m, n, beta, ci, ldc);
                    else Packed(cfg, 1, transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, ci, ldc);
                }
            });
            return;
        }
        for (int i = 0; i < batch; i++)
            Run(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC, ldc);
    }

    internal static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0) row.Clear();
            else if (beta != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    // ---------------------------------------------------------------- driver

    /// <summary>The packed, blocked GEMM with an explicit configuration and thread count (m, n, k ≥ 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Packed(in Config cfg, int threads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, Epilogue epi = default)
    {
        int mr = cfg.Mr, nr = cfg.Nr, kcMax = cfg.Kc;
        // kc blocks: equal sizes so the last block is not a sliver (depends on k only: fixed summation order)
        int kBlocks = (k + kcMax - 1) / kcMax;
        int kc = (k + kBlocks - 1) / kBlocks;
        // N chunks: the packed op(B) chunk (all of k × nc) is shared by every task
        int nChunks = (n + cfg.Nc - 1) / cfg.Nc;
        int ncChunk = RoundUp((n + nChunks - 1) / nChunks, nr);
        // row blocks of at most Mc rows; with several threads enough of them to share out evenly
        int mTiles = (m + mr - 1) / mr;
        int mcTiles = Math.Max(1, cfg.Mc / mr);
        int rowBlocks = (mTiles + mcTiles - 1) / mcTiles;
        if (threads > 1)
        {
            // several blocks per thread (at least ~4 tiles each), so a thread slowed by other load hands work over
            rowBlocks = Math.Max(rowBlocks, Math.Min(RowBlocksPerThread * threads, mTiles / 4));
            rowBlocks = Math.Min(RoundUp(rowBlocks, threads), mTiles);
        }
        int blockTiles = (mTiles + rowBlocks - 1) / rowBlocks;
        rowBlocks = (mTiles + blockTiles - 1) / blockTiles;
        int mc = blockTiles * mr;

        var packB = Buffers.Get().B(k, ncChunk, kc, nr);
        var cfgCopy = cfg;

        for (int jc = 0; jc < n; jc += ncChunk)
        {
            int ncb = Math.Min(ncChunk, n - jc);
            int panels = (ncb + nr - 1) / nr;
            float* bp = packB;
            float* bj = transB ? b + (long)jc * ldb : b + jc;
            // pack op(B)[:, jc:jc+ncb]: block pc starts at pc·panels·nr, panel t of it at + t·kcb·nr
            if (threads > 1 && (long)k * ncb >= 1 << 15)
                Par.For(panels, 1, (s, e) => PackBPanels(transB, bj, ldb, k, kc, ncb, nr, s, e, bp, panels));
            else
                PackBPanels(transB, bj, ldb, k, kc, ncb, nr, 0, panels, bp, panels);

            // column groups when rows alone cannot keep the threads busy
            int colGroups = 1;
            if (threads > 1 && rowBlocks < threads * 2) colGroups = Math.Min(panels, (threads * 2 + rowBlocks - 1) / rowBlocks);
            int groupPanels = (panels + colGroups - 1) / colGroups;
            colGroups = (panels + groupPanels - 1) / groupPanels;
            int items = rowBlocks * colGroups;
            float* cj = c + jc;
            int jc0 = jc;

            if (threads > 1 && items > 1)
            {
                Par.For(items, 1, (s, e) =>
                {
                    for (int it = s; it < e; it++)
                        Item(cfgCopy, it / colGroups, it % colGroups, transA, m, k, kc, mc, ncb, groupPanels, alpha, a, lda, bp, panels, beta, cj, ldc, epi, jc0);
                });
            }
            else
            {
                for (int it = 0; it < items; it++)
                    Item(cfg, it / colGroups, it % colGroups, transA, m, k, kc, mc, ncb, groupPanels, alpha, a, lda, bp, panels, beta, cj, ldc, epi, jc0);
            }
        }
    }

    private static int RoundUp(int x, int q) => (x + q - 1) / q * q;

    /// <summary>One task: rows of row block <paramref name="rb"/> × the panels of column group <paramref name="cg"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Item(in Config cfg, int rb, int cg, bool transA, int m, int k, int kc, int mc, int ncb, int groupPanels,
        float alpha, float* a, int lda, float* bp, int panels, float beta, float* c, int ldc, Epilogue epi, int jc0)
    {
        int mr = cfg.Mr, nr = cfg.Nr;
        int i0 = rb * mc, mcb = Math.Min(mc, m - i0);
        int t0 = cg * groupPanels, t1 = Math.Min(panels, t0 + groupPanels);
        var kernel = cfg.Kernel;
        var buf = Buffers.Get();
        float* ap = buf.A(RoundUp(mcb, mr) * kc);
        float* edge = buf.Edge;
        int aPanels = (mcb + mr - 1) / mr;
        for (int pc = 0; pc < k; pc += kc)
        {
            int kcb = Math.Min(kc, k - pc);
            float betaEff = pc == 0 ? beta : 1f;
            PackA(transA, a, lda, i0, mcb, pc, kcb, mr, ap);
            float* bBlock = bp + (long)pc * panels * nr;
            for (int t = t0; t < t1; t++)
            {
                int j = t * nr, nrb = Math.Min(nr, ncb - j);
                float* pb = bBlock + (long)t * kcb * nr;
                for (int s = 0; s < aPanels; s++)
                {
                    int i = s * mr, mrb = Math.Min(mr, mcb - i);
                    float* pa = ap + (long)s * kcb * mr;
                    float* pc0 = c + (long)(i0 + i) * ldc + j;
                    if (mrb == mr && nrb == nr)
                        kernel(kcb, pa, pb, pc0, ldc, alpha, betaEff);
                    else
                    {
                        kernel(kcb, pa, pb, edge, nr, alpha, 0f);
                        for (int r = 0; r < mrb; r++)
                        {
                            float* dst = pc0 + (long)r * ldc;
                            float* src = edge + r * nr;
                            if (betaEff == 0) for (int q = 0; q < nrb; q++) dst[q] = src[q];
                            else for (int q = 0; q < nrb; q++) dst[q] = MathF.FusedMultiplyAdd(betaEff, dst[q], src[q]);
                        }
                    }
                    if (epi.Any && pc + kcb == k)
                        epi.Tile(pc0, ldc, epi.Act == null ? null : epi.Act + (pc0 - c) + jc0, mrb, nrb, jc0 + j);
                }
            }
        }
    }

    // ---------------------------------------------------------------- packing

    /// <summary>Packs rows [i0, i0+mcb) × k [p0, p0+kcb) of op(A) into MR-tall panels: panel s, element (p, r) at s·kcb·MR + p·MR + r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackA(bool transA, float* a, int lda, int i0, int mcb, int p0, int kcb, int mr, float* dst)
    {
        for (int i = 0; i < mcb; i += mr)
        {
            int rows = Math.Min(mr, mcb - i);
            float* d = dst + (long)(i / mr) * kcb * mr;
            if (!transA && Avx512F.IsSupported && mr <= 16)
            {
                // 16×16 in-register transposes; each 16-float store runs into the next k slots, which are written after
                float* src = a + (long)(i0 + i) * lda + p0;
                int p = 0;
                for (; p + 16 <= kcb; p += 16) Transpose16(src + p, lda, rows, d + p * mr, mr);
                for (; p < kcb; p++)
                    for (int r = 0; r < rows; r++) d[p * mr + r] = src[(long)r * lda + p];
            }
            else if (!transA)
            {
                for (int r = 0; r < rows; r++)
                {
                    float* src = a + (long)(i0 + i + r) * lda + p0;
                    float* dr = d + r;
                    int p = 0;
                    for (; p + 4 <= kcb; p += 4)
                    {
                        float x0 = src[p], x1 = src[p + 1], x2 = src[p + 2], x3 = src[p + 3];
                        dr[p * mr] = x0; dr[(p + 1) * mr] = x1; dr[(p + 2) * mr] = x2; dr[(p + 3) * mr] = x3;
                    }
                    for (; p < kcb; p++) dr[p * mr] = src[p];
                }
            }
            else
            {
                for (int p = 0; p < kcb; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + i;
                    float* dp = d + p * mr;
                    if (rows == mr && mr >= 8 && mr <= 16 && Vector256.IsHardwareAccelerated)
                    {
                        // two 8-float moves, overlapping when mr < 16 (14: 0-7 and 6-13; 12: 0-7 and 4-11; 8: the same twice)
                        Vector256.Store(Vector256.Load(src), dp);
                        Vector256.Store(Vector256.Load(src + mr - 8), dp + mr - 8);
                    }
                    else
                        for (int r = 0; r < rows; r++) dp[r] = src[r];
                }
            }
            if (rows < mr)
                for (int p = 0; p < kcb; p++)
                    for (int r = rows; r < mr; r++) d[p * mr + r] = 0;
        }
    }

    /// <summary>Packs NR-wide panels [t0, t1) of op(B) (all k rows, columns from <paramref name="b"/>) block by block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackBPanels(bool transB, float* b, int ldb, int k, int kc, int ncb, int nr, int t0, int t1, float* dst, int panels)
    {
        for (int pc = 0; pc < k; pc += kc)
        {
            int kcb = Math.Min(kc, k - pc);
            float* block = dst + (long)pc * panels * nr;
            for (int t = t0; t < t1; t++)
            {
                int j = t * nr, cols = Math.Min(nr, ncb - j);
                float* d = block + (long)t * kcb * nr;
                if (!transB)
                {
                    for (int p = 0; p < kcb; p++)
                    {
                        float* src = b + (long)(pc + p) * ldb + j;
                        float* dp = d + p * nr;
                        if (cols == nr)
                        {
                            int q = 0;
                            if (Vector512.IsHardwareAccelerated)
                                for (; q + 16 <= nr; q += 16) Vector512.Store(Vector512.Load(src + q), dp + q);
                            else if (Vector256.IsHardwareAccelerated)
                                for (; q + 8 <= nr; q += 8) Vector256.Store(Vector256.Load(src + q), dp + q);
                            for (; q < nr; q++) dp[q] = src[q];
                        }
                        else
                        {
                            for (int q = 0; q < cols; q++) dp[q] = src[q];
                            for (int q = cols; q < nr; q++) dp[q] = 0;
                        }
                    }
                }
                else
                {
                    int p0 = 0;
                    if (Avx512F.IsSupported && cols == nr && nr % 16 == 0)
                    {
                        for (; p0 + 16 <= kcb; p0 += 16)
                            for (int q = 0; q < nr; q += 16)
                                Transpose16(b + (long)(j + q) * ldb + pc + p0, ldb, 16, d + p0 * nr + q, nr);
                    }
                    for (int q = 0; q < cols; q++)
                    {
                        float* src = b + (long)(j + q) * ldb + pc;
                        float* dq = d + q;
                        int p = p0;
                        for (; p + 4 <= kcb; p += 4)
                        {
                            float x0 = src[p], x1 = src[p + 1], x2 = src[p + 2], x3 = src[p + 3];
                            dq[p * nr] = x0; dq[(p + 1) * nr] = x1; dq[(p + 2) * nr] = x2; dq[(p + 3) * nr] = x3;
                        }
                        for (; p < kcb; p++) dq[p * nr] = src[p];
                    }
                    if (cols < nr)
                        for (int p = 0; p < kcb; p++)
                            for (int q = cols; q < nr; q++) d[p * nr + q] = 0;
                }
            }
        }
    }

    /// <summary>
    /// Transposes a 16×16 block: row r (r &lt; rows, 16 floats from src + r·srcStride; later rows read as zero) becomes
    /// column r of the output, whose row c (16 floats) is stored at dst + c·dstStride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16(float* src, nint srcStride, int rows, float* dst, nint dstStride)
    {
        Vector512<float> R(int r) => r < rows ? Vector512.Load(src + r * srcStride) : default;
        // stage 1 and 2: 4×4 transposes inside each 128-bit lane, for row groups 0-3, 4-7, 8-11, 12-15
        Vector512<float> u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15;
        Quad(R(0), R(1), R(2), R(3), out u0, out u1, out u2, out u3);
        Quad(R(4), R(5), R(6), R(7), out u4, out u5, out u6, out u7);
        Quad(R(8), R(9), R(10), R(11), out u8, out u9, out u10, out u11);
        Quad(R(12), R(13), R(14), R(15), out u12, out u13, out u14, out u15);
        // stage 3 and 4: lane l of the four row groups makes output row 4l + j; stored in row order, because with
        // dstStride < 16 each store runs into the rows after it
        Lanes(u0, u4, u8, u12, out var o0, out var o4, out var o8, out var o12);
        Lanes(u1, u5, u9, u13, out var o1, out var o5, out var o9, out var o13);
        Lanes(u2, u6, u10, u14, out var o2, out var o6, out var o10, out var o14);
        Lanes(u3, u7, u11, u15, out var o3, out var o7, out var o11, out var o15);
        Vector512.Store(o0, dst); Vector512.Store(o1, dst + dstStride);
        Vector512.Store(o2, dst + 2 * dstStride); Vector512.Store(o3, dst + 3 * dstStride);
        Vector512.Store(o4, dst + 4 * dstStride); Vector512.Store(o5, dst + 5 * dstStride);
        Vector512.Store(o6, dst + 6 * dstStride); Vector512.Store(o7, dst + 7 * dstStride);
        Vector512.Store(o8, dst + 8 * dstStride); Vector512.Store(o9, dst + 9 * dstStride);
        Vector512.Store(o10, dst + 10 * dstStride); Vector512.Store(o11, dst + 11 * dstStride);
        Vector512.Store(o12, dst + 12 * dstStride); Vector512.Store(o13, dst + 13 * dstStride);
        Vector512.Store(o14, dst + 14 * dstStride); Vector512.Store(o15, dst + 15 * dstStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        out Vector512<float> o0, out Vector512<float> o1, out Vector512<float> o2, out Vector512<float> o3)
    {
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble();
        var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble();
        var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        o0 = Avx512F.UnpackLow(t0, t2).AsSingle();
        o1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        o2 = Avx512F.UnpackLow(t1, t3).AsSingle();
        o3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
    }

    /// <summary>Output rows j, 4+j, 8+j, 12+j from the four row groups' (lane-transposed) vectors j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3,
        out Vector512<float> l0, out Vector512<float> l1, out Vector512<float> l2, out Vector512<float> l3)
    {
        var v = Avx512F.Shuffle4x128(g0, g1, 0x88);
        var w = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        var v2 = Avx512F.Shuffle4x128(g2, g3, 0x88);
        var w2 = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        l0 = Avx512F.Shuffle4x128(v, v2, 0x88);
        l1 = Avx512F.Shuffle4x128(w, w2, 0x88);
        l2 = Avx512F.Shuffle4x128(v, v2, 0xDD);
        l3 = Avx512F.Shuffle4x128(w, w2, 0xDD);
    }

    // ---------------------------------------------------------------- scalar kernel

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void KScalar4x4(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++)
        {
            float b0 = pb[0], b1 = pb[1], b2 = pb[2], b3 = pb[3];
            float a0 = pa[0]; c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            float a1 = pa[1]; c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            float a2 = pa[2]; c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            float a3 = pa[3]; c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            pa += 4; pb += 4;
        }
        Span<float> acc = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
        for (int r = 0; r < 4; r++)
        {
            float* row = c + r * ldc;
            for (int q = 0; q < 4; q++)
                row[q] = beta == 0 ? alpha * acc[r * 4 + q] : MathF.FusedMultiplyAdd(beta, row[q], alpha * acc[r * 4 + q]);
        }
    }

    // ---------------------------------------------------------------- buffers

    /// <summary>Per-thread packing buffers, grown on demand and kept (64-byte aligned native memory; freed with the thread).</summary>
    private sealed class Buffers
    {
        [ThreadStatic] private static Buffers? _mine;
        private float* _a, _b;
        private long _aCap, _bCap;
        public readonly float* Edge = (float*)NativeMemory.AlignedAlloc(64 * 64 * sizeof(float), 64);

        public static Buffers Get() => _mine ??= new Buffers();

        public float* A(long floats) => Grow(ref _a, ref _aCap, floats + 16);

        /// <summary>Room for a packed k × nc chunk of op(B) (kc blocks, panels padded to nr).</summary>
        public float* B(int k, int nc, int kc, int nr) => Grow(ref _b, ref _bCap, (long)k * RoundUp(nc, nr) + 16);

        private static float* Grow(ref float* p, ref long cap, long floats)
        {
            if (floats <= cap) return p;
            long want = Math.Max(floats, cap + cap / 2);
            NativeMemory.AlignedFree(p);
            p = (float*)NativeMemory.AlignedAlloc((nuint)(want * sizeof(float)), 64);
            cap = want;
            return p;
        }

        ~Buffers()
        {
            NativeMemory.AlignedFree(_a);
            NativeMemory.AlignedFree(_b);
            NativeMemory.AlignedFree(Edge);
        }
    }

    /// <summary>Plain triple loop in any precision: the reference for tests and double-precision gradient checks.</summary>
    public static void Reference<T>(bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = beta == T.Zero ? alpha * s : alpha * s + beta * c[i * ldc + j];
            }
    }
}
