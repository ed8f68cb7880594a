using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Winograd minimal filtering F(m×m, 3×3) (Lavin &amp; Gray, 2016) for the forward pass of 3×3, stride-1,
/// dilation-1, single-group convolutions in float, any zero padding. The output is cut into m×m tiles (m = 2 or 4);
/// each reads an α×α input tile, α = m + 2, overlapping its neighbours by two rows and columns. With ξ = i·α + j over
/// the α² transformed points:
/// <code>
///   U[ξ] (Cout, Cin) = (G g Gᵀ)[ξ]        g: one 3×3 filter          (TransformWeights, once per weight)
///   V[ξ] (Cin, T)    = (Bᵀ d B)[ξ]        d: one α×α input tile       (T tiles of a chunk of images)
///   M[ξ] (Cout, T)   = U[ξ] · V[ξ]        α² GEMMs with the packed GEMM
///   y tile (m, m)    = (Aᵀ M A)·scale + shift, ReLU   the epilogue (<see cref="ConvEpilogue"/>: a bias, or a folded batch norm)
/// </code>
/// 9·m² multiply-adds per tile and channel pair become α² (F(4×4): 144 → 36, F(2×2): 36 → 16) plus the transforms.
/// The sums are those of the direct convolution re-associated, so results differ from it by float rounding only,
/// more than the im2col path's: relative to Σ|w·x| the tests see up to ~2e-7 for F(2×2) and ~5e-6 for F(4×4)
/// (direct float ~2e-7); on ResNet-18's features against ONNX Runtime 7.6e-6 (F(2×2)) and 2.0e-5 (F(4×4), features
/// up to ~16). Forward only: the backward pass stays the im2col convolution's, which does not read the forward.
/// </summary>
/// <remarks>
/// Work goes by chunks of whole images (enough of them for ~<see cref="ChunkTiles"/> tiles): the chunk's input is
/// copied into a zero-padded buffer P (images, Cin, Hp, Wp), Hp = tilesH·m + 2, transformed into V, multiplied,
/// and transformed back into y, so the chunk's buffers stay in cache. Chunks run in parallel (each on one thread,
/// its GEMMs single-threaded) when there are at least as many as threads; otherwise each phase of a chunk runs in
/// parallel (channels, then points ξ, then output channels). The transforms work on 16 tiles of one channel at a
/// time, one per vector lane. Rows of at least <see cref="RowTilesAtLeast"/> tiles go row by row, 16 horizontally
/// adjacent tiles whose input columns AVX-512 permutes pick (a scalar gather without AVX-512); a row shorter than 16
/// computes the lanes past its end too and its next row overwrites them (in V the writes of one channel run in tile
/// order; buffers carry 16 floats of slack per row). Shorter rows take 16 consecutive tiles of the chunk across rows
/// and images, their α×α patches copied one by one, so no lanes are wasted on 7×7 or 14×14 planes.
/// </remarks>
internal static unsafe class Winograd
{
    /// <summary>Whether <see cref="Conv"/> takes this path for the convolutions it applies to (settable for tests and tuning).</summary>
    internal static bool Enabled = true;

    /// <summary>Output tile size m: 4 (F(4×4, 3×3)) or 2 (F(2×2, 3×3)).</summary>
    internal static int TileSize = 4;

    /// <summary>Tiles a chunk aims for; whole images, at least one.</summary>
    internal static int ChunkTiles = 256;

    /// <summary>Convs with fewer input or output channels than this take the im2col path (the transforms would dominate).</summary>
    internal static int MinChannels = 16;

    /// <summary>Rows of at least this many tiles are transformed row by row (16 adjacent tiles by permutes); shorter ones 16 consecutive tiles at a time, patches copied one by one.</summary>
    internal static int RowTilesAtLeast = 12;

    /// <summary>Tuning aid: when set, Stopwatch ticks per phase (pad, input transform, products, output transform) add up here (summed over threads).</summary>
    internal static long[]? PhaseTicks;

    /// <summary>3×3, stride 1, dilation 1, one group: the convolutions this kernel computes.</summary>
    public static bool Applies(ConvGeom g) =>
        g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && g.Groups == 1;

    /// <summary>Whether <see cref="Conv"/> should use it: enabled, applicable, wide enough, and with AVX-512 (the GEMM it leans on).</summary>
    public static bool Preferred(ConvGeom g) =>
        Enabled && Applies(g) && Vector512.IsHardwareAccelerated && g.Cin >= MinChannels && g.Cout >= MinChannels;

    /// <summary>Floats of the transformed weights U (α², Cout, Cin).</summary>
    public static int WeightFloats(ConvGeom g, int m) => (m + 2) * (m + 2) * g.Cout * g.Cin;

    // ---------------------------------------------------------------- transform matrices

    /// <summary>kron(G, G) (α², 9) as float: U[ξ = i·α + j, f] = Σ_ab G[i, a]·G[j, b]·w[f, a·3 + b], rounded once.</summary>
    private static readonly float[] Kron2 = Kron(2), Kron4 = Kron(4);

    private static float[] Kron(int m)
    {
        // G (α × 3) for the interpolation points 0, ±1 (m = 2) and 0, ±1, ±2 (m = 4), with ∞ last
        double[,] gm = m == 2
            ? new double[,] { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } }
            : new double[,]
            {
                { 1 / 4.0, 0, 0 }, { -1 / 6.0, -1 / 6.0, -1 / 6.0 }, { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
                { 1 / 24.0, 1 / 12.0, 1 / 6.0 }, { 1 / 24.0, -1 / 12.0, 1 / 6.0 }, { 0, 0, 1 },
            };
        int a = m + 2;
        var k = new float[a * a * 9];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++)
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++)
                        k[(i * a + j) * 9 + p * 3 + q] = (float)(gm[i, p] * gm[j, q]);
        return k;
    }

    /// <summary>u (α², Cout, Cin) ← the transform of w (Cout, Cin, 3, 3): one GEMM kron(G, G) (α², 9) · wᵀ (9, Cout·Cin).</summary>
    public static void TransformWeights(ConvGeom g, int m, float* w, float* u)
    {
        CheckTile(m);
        int a2 = (m + 2) * (m + 2), f = g.Cout * g.Cin;
        fixed (float* kron = m == 2 ? Kron2 : Kron4)
            Gemm.Run(false, true, a2, f, 9, 1f, kron, 9, w, 9, 0f, u, f);
    }

    private static void CheckTile(int m)
    {
        if (m != 2 && m != 4) throw new ArgumentOutOfRangeException(nameof(m), $"Winograd tile size must be 2 or 4; got {m}.");
    }

    // ---------------------------------------------------------------- forward

    /// <summary>
    /// y (N, Cout, OH, OW) = epilogue(x (N, Cin, H, W) ⊛ w), from the transformed weights u (α², Cout, Cin) of
    /// <see cref="TransformWeights"/> with the same m; the epilogue (bias, or a folded batch norm's scale and shift, and
    /// ReLU) is applied to each output tile in registers. Overwrites y.
    /// </summary>
    public static void Forward(ConvGeom g, int m, float* x, float* u, ConvEpilogue epi, float* y)
    {
        CheckTile(m);
        if (!Applies(g)) throw new ArgumentException($"Winograd F({m}×{m}, 3×3) does not compute {g}.");
        var s = new Sizes(g, m);
        int threads = Par.Threads;
        if (s.Chunks >= threads || threads == 1)
        {
            // whole chunks per task; each task has its own buffers and runs its GEMMs on its own thread
            Par.For(s.Chunks, 1, (c0, c1) =>
            {
                var buf = new Buffers(s, g);
                try
                {
                    for (int c = c0; c < c1; c++)
                    {
                        int n0 = c * s.Group, count = Math.Min(s.Group, g.N - n0);
                        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                        Pad(g, s, x, n0, buf.P, 0, count * g.Cin);
                        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
                        InputTransform(g, s, buf.P, count, buf.V, 0, g.Cin);
                        long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
                        Products(g, s, u, buf.V, buf.M, count * s.PerImage, 0, s.A2);
                        long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
                        OutputTransform(g, s, buf.M, epi, y, n0, count, 0, g.Cout);
                        long t4 = System.Diagnostics.Stopwatch.GetTimestamp();
                        if (PhaseTicks is { } pt)
                        {
                            Interlocked.Add(ref pt[0], t1 - t0); Interlocked.Add(ref pt[1], t2 - t1);
                            Interlocked.Add(ref pt[2], t3 - t2); Interlocked.Add(ref pt[3], t4 - t3);
                        }
                    }
                }
                finally { buf.Return(); }
            });
            return;
        }
        // fewer chunks than threads: one chunk at a time, each phase split over the threads
        var one = new Buffers(s, g);
        try
        {
            float* p = one.P, v = one.V, mm = one.M;
            for (int c = 0; c < s.Chunks; c++)
            {
                int n0 = c * s.Group, count = Math.Min(s.Group, g.N - n0), t = count * s.PerImage;
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                Par.For(count * g.Cin, 1, (i0, i1) => Pad(g, s, x, n0, p, i0, i1));
                long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
                Par.For(g.Cin, 1, (c0, c1) => InputTransform(g, s, p, count, v, c0, c1));
                long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
                Par.For(s.A2, 1, (x0, x1) => Products(g, s, u, v, mm, t, x0, x1));
                long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
                Par.For(g.Cout, 1, (o0, o1) => OutputTransform(g, s, mm, epi, y, n0, count, o0, o1));
                long t4 = System.Diagnostics.Stopwatch.GetTimestamp();
                if (PhaseTicks is { } pt) { pt[0] += t1 - t0; pt[1] += t2 - t1; pt[2] += t3 - t2; pt[3] += t4 - t3; }
            }
        }
        finally { one.Return(); }
    }

    /// <summary>The tiling of one convolution.</summary>
    private readonly struct Sizes
    {
        public readonly int M, Alpha, A2, TilesH, TilesW, PerImage, Hp, Wp, Group, Chunks, Ld;
        public readonly long PlaneP, PlaneV, PlaneM;

        public Sizes(ConvGeom g, int m)
        {
            M = m; Alpha = m + 2; A2 = Alpha * Alpha;
            TilesH = (g.OH + m - 1) / m; TilesW = (g.OW + m - 1) / m;
            PerImage = TilesH * TilesW;
            Hp = TilesH * m + 2; Wp = TilesW * m + 2;
            PlaneP = (long)Hp * Wp;
            // enough whole images for ChunkTiles tiles: the weights (α²·Cout·Cin) are packed once per chunk and point
            int group = Math.Clamp((ChunkTiles + PerImage - 1) / PerImage, 1, g.N);
            Chunks = (g.N + group - 1) / group;
            Group = (g.N + Chunks - 1) / Chunks;   // even chunks
            Ld = (Group * PerImage + 15) / 16 * 16 + 16;
            // one point's matrix after another, one cache line apart from a multiple of 4 KiB: the transforms touch all
            // α² of them for each 16 tiles, which would otherwise fall into the same cache sets
            PlaneV = (long)g.Cin * Ld + 16;
            PlaneM = (long)g.Cout * Ld + 16;
        }

        /// <summary>Slack after P: the lanes past a short tile row read up to 16·m + 2 floats past the row's start.</summary>
        public const int Slack = 128;
    }

    /// <summary>One task's chunk buffers: P (Group, Cin, Hp, Wp), V (α², Cin, Ld), M (α², Cout, Ld) (planes PlaneV, PlaneM apart).</summary>
    private readonly struct Buffers
    {
        private readonly float[] _p, _v, _m;
        public readonly float* P, V, M;

        public Buffers(Sizes s, ConvGeom g)
        {
            long p = s.Group * g.Cin * s.PlaneP + Sizes.Slack, v = s.A2 * s.PlaneV, m = s.A2 * s.PlaneM;
            if (p > int.MaxValue || v > int.MaxValue || m > int.MaxValue) throw new ArgumentException($"Winograd buffers too large for {g}.");
            _p = BufferPool.Rent((int)p); _v = BufferPool.Rent((int)v); _m = BufferPool.Rent((int)m);
            // BufferPool's arrays are pinned
            P = (float*)Unsafe.AsPointer(ref _p[0]); V = (float*)Unsafe.AsPointer(ref _v[0]); M = (float*)Unsafe.AsPointer(ref _m[0]);
            new Span<float>(P + (p - Sizes.Slack), Sizes.Slack).Clear();
        }

        public void Return()
        {
            BufferPool.Return(_p); BufferPool.Return(_v); BufferPool.Return(_m);
        }
    }

    // ---------------------------------------------------------------- phases

    /// <summary>Planes [i0, i1) of P (count, Cin, Hp, Wp) ← images n0.. of x, zero-padded: P[r, c] = x[r − PH, c − PW].</summary>
    private static void Pad(ConvGeom g, in Sizes s, float* x, int n0, float* p, int i0, int i1)
    {
        for (int i = i0; i < i1; i++)
        {
            float* dst = p + i * s.PlaneP;
            float* src = x + ((long)n0 * g.Cin + i) * g.HW;   // plane i of the chunk is image n0 + i / Cin, channel i % Cin
            int right = s.Wp - g.PW - g.W;
            for (int r = 0; r < s.Hp; r++)
            {
                float* row = dst + (long)r * s.Wp;
                int ih = r - g.PH;
                if ((uint)ih >= (uint)g.H) { new Span<float>(row, s.Wp).Clear(); continue; }
                new Span<float>(row, g.PW).Clear();
                new ReadOnlySpan<float>(src + (long)ih * g.W, g.W).CopyTo(new Span<float>(row + g.PW, g.W));
                new Span<float>(row + g.PW + g.W, right).Clear();
            }
        }
    }

    /// <summary>V[ξ, ci, t] for channels [c0, c1) of the chunk's count images (P → V).</summary>
    private static void InputTransform(ConvGeom g, in Sizes s, float* p, int count, float* v, int c0, int c1)
    {
        long xiStride = s.PlaneV;
        float* d = stackalloc float[36 * 16];
        float* t = stackalloc float[36 * 16];
        if (s.TilesW < RowTilesAtLeast)
        {
            // short rows of tiles: 16 consecutive tiles of the chunk (across rows and images), each α×α patch copied
            int tiles = count * s.PerImage, alpha = s.Alpha;
            for (int ci = c0; ci < c1; ci++)
                for (int t0 = 0; t0 < tiles; t0 += 16)
                {
                    int lanes = Math.Min(16, tiles - t0);
                    for (int l = 0; l < lanes; l++)
                    {
                        int tile = t0 + l, img = tile / s.PerImage, r = tile % s.PerImage, th = r / s.TilesW, tw = r % s.TilesW;
                        float* src = p + ((long)img * g.Cin + ci) * s.PlaneP + (long)th * s.M * s.Wp + tw * s.M;
                        for (int i = 0; i < alpha; i++)
                            for (int j = 0; j < alpha; j++) d[(i * alpha + j) * 16 + l] = src[(long)i * s.Wp + j];
                    }
                    for (int l = lanes; l < 16; l++)   // lanes past the chunk: zeros (their results land in V's slack)
                        for (int e = 0; e < alpha * alpha; e++) d[e * 16 + l] = 0;
                    InputPoints(s.M, d, t, v + (long)ci * s.Ld + t0, xiStride);
                }
            return;
        }
        for (int ci = c0; ci < c1; ci++)
            for (int img = 0; img < count; img++)
            {
                float* plane = p + ((long)img * g.Cin + ci) * s.PlaneP;
                for (int th = 0; th < s.TilesH; th++)
                {
                    float* rows = plane + (long)th * s.M * s.Wp;
                    for (int tw = 0; ; tw += 16)
                    {
                        int start = s.TilesW >= 16 ? Math.Min(tw, s.TilesW - 16) : 0;
                        int t0 = (img * s.TilesH + th) * s.TilesW + start;
                        TileInput(s.M, rows + start * s.M, s.Wp, d, t, v + (long)ci * s.Ld + t0, xiStride);
                        if (tw + 16 >= s.TilesW) break;
                    }
                }
            }
    }

    /// <summary>M[ξ] (Cout, t) = U[ξ] (Cout, Cin) · V[ξ] (Cin, t) for points [x0, x1), each GEMM on the calling thread.</summary>
    private static void Products(ConvGeom g, in Sizes s, float* u, float* v, float* mm, int t, int x0, int x1)
    {
        var cfg = Gemm.ForRows(g.Cout);
        for (int xi = x0; xi < x1; xi++)
            Gemm.Packed(cfg, 1, false, false, g.Cout, t, g.Cin, 1f, u + (long)xi * g.Cout * g.Cin, g.Cin,
                v + xi * s.PlaneV, s.Ld, 0f, mm + xi * s.PlaneM, s.Ld);
    }

    /// <summary>y planes of output channels [o0, o1) for images n0 .. n0 + count (M → y, through the epilogue).</summary>
    private static void OutputTransform(ConvGeom g, in Sizes s, float* mm, ConvEpilogue epi, float* y, int n0, int count, int o0, int o1)
    {
        long xiStride = s.PlaneM;
        float* d = stackalloc float[36 * 16];
        float* t = stackalloc float[24 * 16];
        float* row = stackalloc float[64];
        if (s.TilesW < RowTilesAtLeast)
        {
            int tiles = count * s.PerImage, m = s.M;
            for (int co = o0; co < o1; co++)
            {
                float mul = epi.Scale == null ? 1f : epi.Scale[co], add = epi.Shift == null ? 0f : epi.Shift[co];
                for (int t0 = 0; t0 < tiles; t0 += 16)
                {
                    OutputPoints(m, mm + (long)co * s.Ld + t0, xiStride, mul, add, epi.Relu, d, t);
                    int lanes = Math.Min(16, tiles - t0);
                    for (int l = 0; l < lanes; l++)
                    {
                        int tile = t0 + l, img = tile / s.PerImage, r = tile % s.PerImage, th = r / s.TilesW, tw = r % s.TilesW;
                        int rows = Math.Min(m, g.OH - th * m), cols = Math.Min(m, g.OW - tw * m);
                        float* dst = y + ((long)(n0 + img) * g.Cout + co) * g.OHW + (long)th * m * g.OW + tw * m;
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < cols; j++) dst[(long)i * g.OW + j] = d[(i * m + j) * 16 + l];
                    }
                }
            }
            return;
        }
        for (int co = o0; co < o1; co++)
        {
            float mul = epi.Scale == null ? 1f : epi.Scale[co], add = epi.Shift == null ? 0f : epi.Shift[co];
            for (int img = 0; img < count; img++)
            {
                float* plane = y + ((long)(n0 + img) * g.Cout + co) * g.OHW;
                for (int th = 0; th < s.TilesH; th++)
                {
                    int rows = Math.Min(s.M, g.OH - th * s.M);
                    for (int tw = 0; ; tw += 16)
                    {
                        int start = s.TilesW >= 16 ? Math.Min(tw, s.TilesW - 16) : 0;
                        int t0 = (img * s.TilesH + th) * s.TilesW + start;
                        int ow0 = start * s.M, len = Math.Min(Math.Min(16, s.TilesW - start) * s.M, g.OW - ow0);
                        TileOutput(s.M, mm + (long)co * s.Ld + t0, xiStride, mul, add, epi.Relu, d, t, row, plane + (long)th * s.M * g.OW + ow0, g.OW, rows, len);
                        if (tw + 16 >= s.TilesW) break;
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- 16 tiles at a time

    private static readonly Vector512<int> Even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> Odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    private static readonly Vector512<int> Next = Vector512.Create(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    // pairs (Y0[i], Y1[i]) for i = 0..7 and i = 8..15
    private static readonly Vector512<int> PairLo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> PairHi = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // quads from two pair vectors: tiles 0..3 and 4..7 of them
    private static readonly Vector512<int> QuadLo = Vector512.Create(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    private static readonly Vector512<int> QuadHi = Vector512.Create(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);

    /// <summary>
    /// e[c·16 + l] = row[m·l + c] for c &lt; α, l &lt; 16: column c of the 16 tiles starting at row (reads row[0 .. 16·m + 2)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Extract(int m, float* row, float* e)
    {
        if (Avx512F.IsSupported)
        {
            if (m == 4)
            {
                var v0 = Vector512.Load(row); var v1 = Vector512.Load(row + 16);
                var v2 = Vector512.Load(row + 32); var v3 = Vector512.Load(row + 48);
                var aE = Avx512F.PermuteVar16x32x2(v0, Even, v1); var aO = Avx512F.PermuteVar16x32x2(v0, Odd, v1);
                var bE = Avx512F.PermuteVar16x32x2(v2, Even, v3); var bO = Avx512F.PermuteVar16x32x2(v2, Odd, v3);
                var e0 = Avx512F.PermuteVar16x32x2(aE, Even, bE);
                var e1 = Avx512F.PermuteVar16x32x2(aO, Even, bO);
                Vector512.Store(e0, e);
                Vector512.Store(e1, e + 16);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aE, Odd, bE), e + 32);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aO, Odd, bO), e + 48);
                // columns 4, 5 of tile l are columns 0, 1 of tile l + 1
                Vector512.Store(Avx512F.PermuteVar16x32x2(e0, Next, Vector512.Create(row[64])), e + 64);
                Vector512.Store(Avx512F.PermuteVar16x32x2(e1, Next, Vector512.Create(row[65])), e + 80);
            }
            else
            {
                var v0 = Vector512.Load(row); var v1 = Vector512.Load(row + 16);
                var e0 = Avx512F.PermuteVar16x32x2(v0, Even, v1);
                var e1 = Avx512F.PermuteVar16x32x2(v0, Odd, v1);
                Vector512.Store(e0, e);
                Vector512.Store(e1, e + 16);
                Vector512.Store(Avx512F.PermuteVar16x32x2(e0, Next, Vector512.Create(row[32])), e + 32);
                Vector512.Store(Avx512F.PermuteVar16x32x2(e1, Next, Vector512.Create(row[33])), e + 48);
            }
            return;
        }
        int alpha = m + 2;
        for (int c = 0; c < alpha; c++)
            for (int l = 0; l < 16; l++) e[c * 16 + l] = row[m * l + c];
    }

    /// <summary>The α² transformed points of 16 tiles whose top-left input is at src (rows wp apart) → dst + ξ·dstStride (16 floats each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileInput(int m, float* src, int wp, float* d, float* t, float* dst, long dstStride)
    {
        int alpha = m + 2, rowFloats = alpha * 16;
        for (int r = 0; r < alpha; r++) Extract(m, src + (long)r * wp, d + r * rowFloats);
        InputPoints(m, d, t, dst, dstStride);
    }

    /// <summary>Bᵀ d B for 16 tiles: d (α×α points, 16 floats each, row-major) → dst + ξ·dstStride; t is scratch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputPoints(int m, float* d, float* t, float* dst, long dstStride)
    {
        int rowFloats = (m + 2) * 16;
        if (m == 4)
        {
            for (int c = 0; c < 6; c++) InputPoints6(d + c * 16, rowFloats, t + c * 16, rowFloats);   // down the columns: Bᵀ d
            for (int i = 0; i < 6; i++) InputPoints6(t + i * rowFloats, 16, dst + i * 6 * dstStride, dstStride);   // along the rows: (Bᵀ d) B
        }
        else
        {
            for (int c = 0; c < 4; c++) InputPoints4(d + c * 16, rowFloats, t + c * 16, rowFloats);
            for (int i = 0; i < 4; i++) InputPoints4(t + i * rowFloats, 16, dst + i * 4 * dstStride, dstStride);
        }
    }

    /// <summary>
    /// The α² points of 16 tiles at src + ξ·srcStride → (Aᵀ M A)·mul + add (then max(·, 0) with relu), rows [0, rows) of
    /// the m×m output tiles written to dst (rows ldy apart), the first len columns (16 tiles side by side, m columns each).
    /// mul = 1 for a plain bias: then the product is exact and only the sum rounds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileOutput(int m, float* src, long srcStride, float mul, float add, bool relu, float* d, float* t, float* row, float* dst, int ldy, int rows, int len)
    {
        OutputPoints(m, src, srcStride, mul, add, relu, d, t);
        float* o = d;
        for (int i = 0; i < rows; i++)
        {
            float* oi = o + i * m * 16;
            float* yr = dst + (long)i * ldy;
            bool direct = len == 16 * m;
            float* target = direct ? yr : row;
            Interleave(m, oi, target);
            if (!direct) new ReadOnlySpan<float>(row, len).CopyTo(new Span<float>(yr, len));
        }
    }

    /// <summary>
    /// (Aᵀ M A)·mul + add (then max(·, 0) with relu) for 16 tiles whose α² points are at src + ξ·srcStride: the m×m
    /// outputs land in d (output (i, j) at d + (i·m + j)·16); t is scratch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputPoints(int m, float* src, long srcStride, float mul, float add, bool relu, float* d, float* t)
    {
        int alpha = m + 2, a2 = alpha * alpha;
        for (int xi = 0; xi < a2; xi++) Vector512.Store(Vector512.Load(src + xi * srcStride), d + xi * 16);
        for (int c = 0; c < alpha; c++)   // down the columns: Aᵀ M (m × α)
            if (m == 4) OutputPoints6(d + c * 16, alpha * 16, t + c * 16, alpha * 16);
            else OutputPoints4(d + c * 16, alpha * 16, t + c * 16, alpha * 16);
        float* o = d;   // reuse: m × m vectors
        for (int i = 0; i < m; i++)       // along the rows: (Aᵀ M) A
            if (m == 4) OutputPoints6(t + i * alpha * 16, 16, o + i * m * 16, 16);
            else OutputPoints4(t + i * alpha * 16, 16, o + i * m * 16, 16);
        var vm = Vector512.Create(mul); var va = Vector512.Create(add);
        for (int q = 0; q < m * m; q++)
        {
            var v = Vector512.Load(o + q * 16) * vm + va;
            if (relu) v = Vector512.Max(v, Vector512<float>.Zero);
            Vector512.Store(v, o + q * 16);
        }
    }

    /// <summary>out[m·l + c] = y[c·16 + l]: m column vectors of 16 tiles back to one row of 16·m outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(int m, float* y, float* output)
    {
        if (Avx512F.IsSupported)
        {
            var y0 = Vector512.Load(y); var y1 = Vector512.Load(y + 16);
            if (m == 4)
            {
                var y2 = Vector512.Load(y + 32); var y3 = Vector512.Load(y + 48);
                var aLo = Avx512F.PermuteVar16x32x2(y0, PairLo, y1); var aHi = Avx512F.PermuteVar16x32x2(y0, PairHi, y1);
                var bLo = Avx512F.PermuteVar16x32x2(y2, PairLo, y3); var bHi = Avx512F.PermuteVar16x32x2(y2, PairHi, y3);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aLo, QuadLo, bLo), output);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aLo, QuadHi, bLo), output + 16);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aHi, QuadLo, bHi), output + 32);
                Vector512.Store(Avx512F.PermuteVar16x32x2(aHi, QuadHi, bHi), output + 48);
            }
            else
            {
                Vector512.Store(Avx512F.PermuteVar16x32x2(y0, PairLo, y1), output);
                Vector512.Store(Avx512F.PermuteVar16x32x2(y0, PairHi, y1), output + 16);
            }
            return;
        }
        for (int c = 0; c < m; c++)
            for (int l = 0; l < 16; l++) output[m * l + c] = y[c * 16 + l];
    }

    // ---------------------------------------------------------------- 1-D transforms (16 lanes, vectors s floats apart)

    /// <summary>Bᵀ of F(4, 3) on six vectors: the interpolation points 0, ±1, ±2, ∞ of the input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputPoints6(float* d, nint s, float* o, long os)
    {
        var d0 = Vector512.Load(d); var d1 = Vector512.Load(d + s); var d2 = Vector512.Load(d + 2 * s);
        var d3 = Vector512.Load(d + 3 * s); var d4 = Vector512.Load(d + 4 * s); var d5 = Vector512.Load(d + 5 * s);
        var four = Vector512.Create(4f); var minusFive = Vector512.Create(-5f);
        var t1 = Vector512.FusedMultiplyAdd(d2, -four, d4);   // d4 − 4·d2
        var t2 = Vector512.FusedMultiplyAdd(d1, -four, d3);   // d3 − 4·d1
        var t3 = d4 - d2;
        var t4 = (d3 - d1) * 2f;
        Vector512.Store(Vector512.FusedMultiplyAdd(d0, four, Vector512.FusedMultiplyAdd(d2, minusFive, d4)), o);
        Vector512.Store(t1 + t2, o + os);
        Vector512.Store(t1 - t2, o + 2 * os);
        Vector512.Store(t3 + t4, o + 3 * os);
        Vector512.Store(t3 - t4, o + 4 * os);
        Vector512.Store(Vector512.FusedMultiplyAdd(d1, four, Vector512.FusedMultiplyAdd(d3, minusFive, d5)), o + 5 * os);
    }

    /// <summary>Bᵀ of F(2, 3) on four vectors (points 0, ±1, ∞).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputPoints4(float* d, nint s, float* o, long os)
    {
        var d0 = Vector512.Load(d); var d1 = Vector512.Load(d + s); var d2 = Vector512.Load(d + 2 * s); var d3 = Vector512.Load(d + 3 * s);
        Vector512.Store(d0 - d2, o);
        Vector512.Store(d1 + d2, o + os);
        Vector512.Store(d2 - d1, o + 2 * os);
        Vector512.Store(d1 - d3, o + 3 * os);
    }

    /// <summary>Aᵀ of F(4, 3): six points → four outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputPoints6(float* m, nint s, float* o, nint os)
    {
        var m0 = Vector512.Load(m); var m1 = Vector512.Load(m + s); var m2 = Vector512.Load(m + 2 * s);
        var m3 = Vector512.Load(m + 3 * s); var m4 = Vector512.Load(m + 4 * s); var m5 = Vector512.Load(m + 5 * s);
        var a = m1 + m2; var b = m1 - m2; var c = m3 + m4; var e = m3 - m4;
        Vector512.Store(m0 + a + c, o);
        Vector512.Store(Vector512.FusedMultiplyAdd(e, Vector512.Create(2f), b), o + os);
        Vector512.Store(Vector512.FusedMultiplyAdd(c, Vector512.Create(4f), a), o + 2 * os);
        Vector512.Store(Vector512.FusedMultiplyAdd(e, Vector512.Create(8f), b) + m5, o + 3 * os);
    }

    /// <summary>Aᵀ of F(2, 3): four points → two outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputPoints4(float* m, nint s, float* o, nint os)
    {
        var m0 = Vector512.Load(m); var m1 = Vector512.Load(m + s); var m2 = Vector512.Load(m + 2 * s); var m3 = Vector512.Load(m + 3 * s);
        Vector512.Store(m0 + m1 + m2, o);
        Vector512.Store(m1 - m2 - m3, o + os);
    }
}
