using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// The shape of one 2-D convolution: x (N, Cin, H, W) ⊛ w (Cout, Cin/groups, KH, KW) → y (N, Cout, OH, OW),
/// with stride, zero padding and dilation per axis. OH = (H + 2·PH − DH·(KH−1) − 1) / SH + 1, likewise OW.
/// </summary>
internal readonly struct ConvGeom
{
    public readonly int N, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW, DH, DW, Groups, OH, OW;

    public ConvGeom(int n, int cin, int h, int w, int cout, int kh, int kw,
        int sh = 1, int sw = 1, int ph = 0, int pw = 0, int dh = 1, int dw = 1, int groups = 1)
    {
        N = n; Cin = cin; H = h; W = w; Cout = cout; KH = kh; KW = kw;
        SH = sh; SW = sw; PH = ph; PW = pw; DH = dh; DW = dw; Groups = groups;
        OH = OutSize(h, kh, sh, ph, dh);
        OW = OutSize(w, kw, sw, pw, dw);
    }

    /// <summary>Output length along one axis; ≤ 0 when the (padded) input is shorter than the dilated kernel.</summary>
    public static int OutSize(int input, int kernel, int stride, int pad, int dilation)
    {
        int span = input + 2 * pad - dilation * (kernel - 1) - 1;
        return span < 0 ? 0 : span / stride + 1;
    }

    public int CinG => Cin / Groups;
    public int CoutG => Cout / Groups;
    /// <summary>Rows of the im2col matrix of one group: CinG·KH·KW.</summary>
    public int K => CinG * KH * KW;
    public int HW => H * W;
    public int OHW => OH * OW;
    /// <summary>One filter per input channel (channel multiplier 1): handled by the direct depthwise kernels.</summary>
    public bool IsDepthwise => Groups == Cin && Cout == Cin;
    /// <summary>1×1, stride 1, no padding: the conv is a plain GEMM over the image, no im2col needed.</summary>
    public bool IsPointwise => KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;

    public override string ToString() =>
        $"conv x[{N},{Cin},{H},{W}] w[{Cout},{CinG},{KH},{KW}] s({SH},{SW}) p({PH},{PW}) d({DH},{DW}) g{Groups} → [{N},{Cout},{OH},{OW}]";
}

/// <summary>
/// What a float conv forward does to output channel co: y = acc·Scale[co] + Shift[co] (Scale null: ·1, Shift null: +0),
/// then max(y, 0) with Relu. A plain conv bias is Shift alone. The product and the sum are rounded one after the
/// other, as the eval-mode batch norm rounds them, so folding one in changes no bit of its arithmetic.
/// </summary>
internal readonly unsafe struct ConvEpilogue(float* scale, float* shift, bool relu)
{
    public readonly float* Scale = scale, Shift = shift;
    public readonly bool Relu = relu;
    public bool Any => Scale != null || Shift != null || Relu;

    /// <summary>dst = epilogue(src) for one row of output channel co (dst may be src).</summary>
    public void Apply(ReadOnlySpan<float> src, Span<float> dst, int co)
    {
        if (Scale != null)
        {
            if (Shift != null) ScaleShift(src, Scale[co], Shift[co], dst);
            else TensorPrimitives.Multiply(src, Scale[co], dst);
        }
        else if (Shift != null) TensorPrimitives.Add(src, Shift[co], dst);
        else if (!Unsafe.AreSame(ref MemoryMarshal.GetReference(src), ref MemoryMarshal.GetReference(dst))) src.CopyTo(dst);
        if (Relu) TensorPrimitives.Max(dst, 0f, dst);
    }

    // dst = src·a + b, the product rounded before the sum
    private static void ScaleShift(ReadOnlySpan<float> src, float a, float b, Span<float> dst)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a); var vb = Vector512.Create(b);
            for (; i + 16 <= src.Length; i += 16) (Vector512.Create(src.Slice(i, 16)) * va + vb).CopyTo(dst.Slice(i, 16));
        }
        for (; i < src.Length; i++) dst[i] = src[i] * a + b;
    }

    /// <summary>The epilogue in place over y (N, C, S), in parallel over the planes.</summary>
    public void Planes(int n, int c, int s, Span<float> y)
    {
        var self = this;
        fixed (float* py = y)
        {
            float* ay = py;
            Par.For(n * c, Math.Max(1, 16384 / Math.Max(1, s)), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    var plane = new Span<float>(ay + (long)p * s, s);
                    self.Apply(plane, plane, p % c);
                }
            });
        }
    }
}

/// <summary>
/// 2-D convolution (cross-correlation, as PyTorch) forward/backward. The generic paths are direct nested loops
/// (the reference, used for double-precision gradient checks); float takes the fast paths: im2col per image and
/// group + <see cref="Gemm.Run"/>, a plain GEMM for 1×1 stride-1 convs, and direct SIMD kernels for depthwise.
/// Backward kernels overwrite a gradient or add into it (<c>acc*</c> flags); an empty span skips that gradient.
/// </summary>
internal static unsafe class Conv
{
    // ======================================================================================
    // dispatch
    // ======================================================================================

    // x (N, Cin, H, W), w (Cout, Cin/G, KH, KW), b (Cout) or empty, y (N, Cout, OH, OW)
    public static void Forward<T>(ConvGeom g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, x.Length, w.Length, b.Length, y.Length);
        if (typeof(T) == typeof(float))
        {
            var bf = MemoryMarshal.Cast<T, float>(b);
            fixed (float* pb = bf)
                ForwardF(g, MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(w), new ConvEpilogue(null, bf.IsEmpty ? null : pb, false), MemoryMarshal.Cast<T, float>(y));
            return;
        }
        ForwardReference(g, x, w, b, y);
    }

    // dy (N, Cout, OH, OW) → dx (N, Cin, H, W), dw (Cout, Cin/G, KH, KW), db (Cout); each may be empty (skipped)
    public static void Backward<T>(ConvGeom g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy,
        Span<T> dx, bool accDx, Span<T> dw, bool accDw, Span<T> db, bool accDb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, x.Length, w.Length, db.Length, dy.Length);
        if (!dx.IsEmpty && dx.Length != x.Length) throw new ArgumentException("dx length mismatch.");
        if (!dw.IsEmpty && dw.Length != w.Length) throw new ArgumentException("dw length mismatch.");
        if (typeof(T) == typeof(float))
        {
            BackwardF(g, MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(w), MemoryMarshal.Cast<T, float>(dy),
                MemoryMarshal.Cast<T, float>(dx), accDx, MemoryMarshal.Cast<T, float>(dw), accDw, MemoryMarshal.Cast<T, float>(db), accDb);
            return;
        }
        BackwardReference(g, x, w, dy, dx, accDx, dw, accDw, db, accDb);
    }

    private static void Check(ConvGeom g, int xLen, int wLen, int bLen, int yLen)
    {
        if (g.OH <= 0 || g.OW <= 0) throw new ArgumentException($"Empty convolution output: {g}.");
        if (xLen != g.N * g.Cin * g.HW || wLen != g.Cout * g.K || (bLen != 0 && bLen != g.Cout) || yLen != g.N * g.Cout * g.OHW)
            throw new ArgumentException($"Buffer lengths do not match {g}.");
    }

    /// <summary>The outputs o in [lo, hi) whose input index o·stride + off lies in [0, length).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (int lo, int hi) ValidRange(int outLen, int length, int stride, int off)
    {
        int lo = Math.Clamp(CeilDiv(-off, stride), 0, outLen);
        int hi = Math.Clamp(CeilDiv(length - off, stride), lo, outLen);
        return (lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);

    // ======================================================================================
    // reference (any precision): direct loops
    // ======================================================================================

    public static void ForwardReference<T>(ConvGeom g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cinG = g.CinG, coutG = g.CoutG;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                int grp = co / coutG;
                for (int oh = 0; oh < g.OH; oh++)
                    for (int ow = 0; ow < g.OW; ow++)
                    {
                        T s = b.IsEmpty ? T.Zero : b[co];
                        for (int ci = 0; ci < cinG; ci++)
                        {
                            int cx = grp * cinG + ci;
                            for (int i = 0; i < g.KH; i++)
                            {
                                int ih = oh * g.SH - g.PH + i * g.DH;
                                if ((uint)ih >= (uint)g.H) continue;
                                for (int j = 0; j < g.KW; j++)
                                {
                                    int iw = ow * g.SW - g.PW + j * g.DW;
                                    if ((uint)iw >= (uint)g.W) continue;
                                    s += w[((co * cinG + ci) * g.KH + i) * g.KW + j] * x[((n * g.Cin + cx) * g.H + ih) * g.W + iw];
                                }
                            }
                        }
                        y[((n * g.Cout + co) * g.OH + oh) * g.OW + ow] = s;
                    }
            }
    }

    public static void BackwardReference<T>(ConvGeom g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy,
        Span<T> dx, bool accDx, Span<T> dw, bool accDw, Span<T> db, bool accDb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!accDx) dx.Clear();
        if (!accDw) dw.Clear();
        if (!accDb) db.Clear();
        bool wantX = !dx.IsEmpty, wantW = !dw.IsEmpty, wantB = !db.IsEmpty;
        int cinG = g.CinG, coutG = g.CoutG;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                int grp = co / coutG;
                for (int oh = 0; oh < g.OH; oh++)
                    for (int ow = 0; ow < g.OW; ow++)
                    {
                        T d = dy[((n * g.Cout + co) * g.OH + oh) * g.OW + ow];
                        if (wantB) db[co] += d;
                        for (int ci = 0; ci < cinG; ci++)
                        {
                            int cx = grp * cinG + ci;
                            for (int i = 0; i < g.KH; i++)
                            {
                                int ih = oh * g.SH - g.PH + i * g.DH;
                                if ((uint)ih >= (uint)g.H) continue;
                                for (int j = 0; j < g.KW; j++)
                                {
                                    int iw = ow * g.SW - g.PW + j * g.DW;
                                    if ((uint)iw >= (uint)g.W) continue;
                                    int wi = ((co * cinG + ci) * g.KH + i) * g.KW + j;
                                    int xi = ((n * g.Cin + cx) * g.H + ih) * g.W + iw;
                                    if (wantX) dx[xi] += w[wi] * d;
                                    if (wantW) dw[wi] += x[xi] * d;
                                }
                            }
                        }
                    }
            }
    }

    // ======================================================================================
    // float fast paths
    // ======================================================================================

    /// <summary>Image-parallel when the batch can feed every thread; otherwise images in turn with a parallel GEMM inside.</summary>
    private static int ImageParts(int n) => Par.Threads > 1 && n >= Par.Threads ? Math.Min(n, Par.Threads) : 1;

    /// <summary>Forward convs whose images have fewer output pixels than this run several images per GEMM (<see cref="ForwardImageGroups"/>).</summary>
    internal static int GroupImagesBelow = 2048;

    /// <summary>GEMM columns a group of images aims for, and the most floats its im2col buffer may take.</summary>
    internal static int GroupColumns = 4096, GroupColFloats = 8 << 20;

    /// <summary>
    /// Float forward with an epilogue per output channel: y = conv(x, w)·scale[co] + shift[co], then max(y, 0) when
    /// <paramref name="relu"/> (an eval-mode batch norm folded in, and the ReLU after it). Empty scale means 1, empty
    /// shift 0 (the shift is where a conv bias goes). Overwrites y. For passes without gradients: nothing is recorded.
    /// </summary>
    public static void ForwardScaleShift(ConvGeom g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> scale,
        ReadOnlySpan<float> shift, bool relu, Span<float> y)
    {
        Check(g, x.Length, w.Length, shift.Length, y.Length);
        if (!scale.IsEmpty && scale.Length != g.Cout) throw new ArgumentException($"scale must have {g.Cout} values.");
        fixed (float* ps = scale) fixed (float* pt = shift)
            ForwardF(g, x, w, new ConvEpilogue(scale.IsEmpty ? null : ps, shift.IsEmpty ? null : pt, relu), y);
    }

    private static void ForwardF(ConvGeom g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ConvEpilogue epi, Span<float> y)
    {
        if (g.IsDepthwise)
        {
            // the depthwise kernels add a bias (a shift without scale) themselves; anything more is a pass over y afterwards
            bool asBias = epi.Scale == null && epi.Shift != null;
            Depthwise.Forward(g, x, w, asBias ? new ReadOnlySpan<float>(epi.Shift, g.Cout) : default, y);
            var rest = asBias ? new ConvEpilogue(null, null, epi.Relu) : epi;
            if (rest.Any) rest.Planes(g.N, g.Cout, g.OHW, y);
            return;
        }
        fixed (float* px = x) fixed (float* pw = w) fixed (float* py = y)
        {
            float* ax = px, aw = pw, ay = py;
            if (Winograd.Preferred(g)) { ForwardWinograd(g, ax, aw, epi, ay); return; }
            if (g.N > 1 && g.Groups == 1 && g.OHW < GroupImagesBelow) { ForwardImageGroups(g, ax, aw, epi, ay); return; }
            // image-parallel with one image per task, so a thread slowed by other load hands images over
            // (each image is computed alone, so the split does not change a bit)
            if (ImageParts(g.N) == 1) ForwardImages(g, ax, aw, epi, ay, 0, g.N);
            else Par.For(g.N, 1, (n0, n1) => ForwardImages(g, ax, aw, epi, ay, n0, n1));
        }
    }

    /// <summary>
    /// Float forward through Winograd F(m×m, 3×3) from weights already transformed by <see cref="Winograd.TransformWeights"/>
    /// with the same m: u (α², Cout, Cin), for callers that keep u while the weights do not change; scale, shift and
    /// relu as in <see cref="ForwardScaleShift"/> (a bias is the shift).
    /// </summary>
    public static void ForwardWinograd(ConvGeom g, int m, ReadOnlySpan<float> x, ReadOnlySpan<float> u, ReadOnlySpan<float> scale,
        ReadOnlySpan<float> shift, bool relu, Span<float> y)
    {
        Check(g, x.Length, g.Cout * g.K, shift.Length, y.Length);
        if (!scale.IsEmpty && scale.Length != g.Cout) throw new ArgumentException($"scale must have {g.Cout} values.");
        if (u.Length < Winograd.WeightFloats(g, m)) throw new ArgumentException($"Transformed weights too short for F({m}×{m}, 3×3) of {g}.");
        fixed (float* px = x) fixed (float* pu = u) fixed (float* ps = scale) fixed (float* pt = shift) fixed (float* py = y)
            Winograd.Forward(g, m, px, pu, new ConvEpilogue(scale.IsEmpty ? null : ps, shift.IsEmpty ? null : pt, relu), py);
    }

    /// <summary>3×3 stride-1 convs by Winograd F(m×m, 3×3) (<see cref="Winograd"/>), the weights transformed on each call.</summary>
    private static void ForwardWinograd(ConvGeom g, float* x, float* w, ConvEpilogue epi, float* y)
    {
        int m = Winograd.TileSize;
        float[] u = BufferPool.Rent(Winograd.WeightFloats(g, m));
        try
        {
            fixed (float* pu = u)
            {
                Winograd.TransformWeights(g, m, w, pu);
                Winograd.Forward(g, m, x, pu, epi, y);
            }
        }
        finally { BufferPool.Return(u); }
    }

    /// <summary>Single-group im2col convs whose im2col matrix would pass this many floats go by bands of output rows.</summary>
    internal static int ColBandFloats = 1 << 17;

    private static void ForwardImages(ConvGeom g, float* x, float* w, ConvEpilogue epi, float* y, int n0, int n1)
    {
        // output rows per band (all of them when the whole im2col matrix is small, or for pointwise / grouped convs);
        // each output is the same sum in the same order either way
        int bandRows = g.IsPointwise || g.Groups > 1 || (long)g.K * g.OHW <= ColBandFloats ? g.OH
            : Math.Clamp(ColBandFloats / (g.K * g.OW), 1, g.OH);
        float[]? col = g.IsPointwise ? null : BufferPool.Rent(g.K * (bandRows < g.OH ? bandRows * g.OW : g.OHW));
        try
        {
            fixed (float* pcol = col)
                for (int n = n0; n < n1; n++)
                {
                    float* xn = x + (long)n * g.Cin * g.HW, yn = y + (long)n * g.Cout * g.OHW;
                    if (bandRows < g.OH)
                    {
                        // bands of output rows: im2col, GEMM and epilogue of each band while it is in cache
                        for (int oh0 = 0; oh0 < g.OH; oh0 += bandRows)
                        {
                            int oh1 = Math.Min(g.OH, oh0 + bandRows), cols = (oh1 - oh0) * g.OW;
                            Im2Col(g, xn, pcol, cols, oh0, oh1);
                            float* yb = yn + (long)oh0 * g.OW;
                            Gemm.Run(false, false, g.Cout, cols, g.K, 1f, w, g.K, pcol, cols, 0f, yb, g.OHW);
                            if (epi.Any)
                                for (int co = 0; co < g.Cout; co++)
                                {
                                    var row = new Span<float>(yb + (long)co * g.OHW, cols);
                                    epi.Apply(row, row, co);
                                }
                        }
                        continue;
                    }
                    for (int grp = 0; grp < g.Groups; grp++)
                    {
                        float* xg = xn + (long)grp * g.CinG * g.HW;
                        float* bmat = xg;
                        if (!g.IsPointwise) { Im2Col(g, xg, pcol); bmat = pcol; }
                        Gemm.Run(false, false, g.CoutG, g.OHW, g.K, 1f, w + (long)grp * g.CoutG * g.K, g.K,
                            bmat, g.OHW, 0f, yn + (long)grp * g.CoutG * g.OHW, g.OHW);
                    }
                    if (epi.Any)
                        for (int co = 0; co < g.Cout; co++)
                        {
                            var row = new Span<float>(yn + (long)co * g.OHW, g.OHW);
                            epi.Apply(row, row, co);
                        }
                }
        }
        finally { if (col is not null) BufferPool.Return(col); }
    }

    /// <summary>
    /// Forward for small output planes: the im2col matrices of several images side by side, col (K, G·OHW), and one
    /// GEMM y_G (Cout, G·OHW) = W (Cout, K) · col per group of G images, threaded inside the GEMM. The weights are packed
    /// once per group instead of once per image, and the GEMM's column panels are full (a 7×7 plane alone fills 49 of
    /// 64 columns). Then y_G is scattered to (N, Cout, OHW) through the epilogue. Each output is the same sum, in the
    /// same order, as with one image per GEMM.
    /// </summary>
    private static void ForwardImageGroups(ConvGeom g, float* x, float* w, ConvEpilogue epi, float* y)
    {
        long perImage = (long)g.K * g.OHW;
        int group = Math.Clamp((GroupColumns + g.OHW - 1) / g.OHW, 1, g.N);
        group = (int)Math.Max(1, Math.Min(group, GroupColFloats / Math.Max(1, perImage)));
        int groups = (g.N + group - 1) / group;
        group = (g.N + groups - 1) / groups;   // even groups
        float[] col = BufferPool.Rent((int)(perImage * group));
        float[] acc = BufferPool.Rent(g.Cout * g.OHW * group);
        try
        {
            fixed (float* pcol = col) fixed (float* pacc = acc)
            {
                float* ac = pcol, aa = pacc;
                for (int n0 = 0; n0 < g.N; n0 += group)
                {
                    int count = Math.Min(group, g.N - n0), ld = count * g.OHW;
                    for (int i = 0; i < count; i++) Im2Col(g, x + (long)(n0 + i) * g.Cin * g.HW, ac + (long)i * g.OHW, ld);
                    Gemm.Run(false, false, g.Cout, ld, g.K, 1f, w, g.K, ac, ld, 0f, aa, ld);
                    int n0c = n0;
                    Par.For(count * g.Cout, Math.Max(1, 16384 / g.OHW), (r0, r1) =>
                    {
                        for (int r = r0; r < r1; r++)
                        {
                            int i = r / g.Cout, co = r % g.Cout;
                            var src = new ReadOnlySpan<float>(aa + (long)co * ld + (long)i * g.OHW, g.OHW);
                            var dst = new Span<float>(y + ((long)(n0c + i) * g.Cout + co) * g.OHW, g.OHW);
                            if (epi.Any) epi.Apply(src, dst, co);
                            else src.CopyTo(dst);
                        }
                    });
                }
            }
        }
        finally
        {
            BufferPool.Return(col);
            BufferPool.Return(acc);
        }
    }

    private static void BackwardF(ConvGeom g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy,
        Span<float> dx, bool accDx, Span<float> dw, bool accDw, Span<float> db, bool accDb)
    {
        if (!db.IsEmpty) BiasGrad(g.N, g.Cout, g.OHW, dy, db, accDb);
        if (dx.IsEmpty && dw.IsEmpty) return;
        if (g.IsDepthwise) { Depthwise.Backward(g, x, w, dy, dx, accDx, dw, accDw); return; }

        bool wantX = !dx.IsEmpty, wantW = !dw.IsEmpty;
        int parts = ImageParts(g.N);
        int wLen = g.Cout * g.K;
        // dW: with several image parts each accumulates its own partial, summed in part order afterwards
        // (deterministic for a given thread count); with one part the GEMMs accumulate straight into dw.
        float[]? partials = wantW && parts > 1 ? BufferPool.Rent(parts * wLen) : null;
        try
        {
            fixed (float* px = x) fixed (float* pw = w) fixed (float* pdy = dy) fixed (float* pdx = dx) fixed (float* pdw = dw) fixed (float* ppart = partials)
            {
                float* ax = px, aw = pw, ady = pdy, adx = wantX ? pdx : null, adw = pdw, apart = ppart;
                if (parts == 1)
                    BackwardImages(g, ax, aw, ady, adx, accDx, wantW ? adw : null, accDw, 0, g.N);
                else
                {
                    Par.For(parts, 1, (p0, p1) =>
                    {
                        for (int p = p0; p < p1; p++)
                            BackwardImages(g, ax, aw, ady, adx, accDx, wantW ? apart + (long)p * wLen : null, false,
                                p * g.N / parts, (p + 1) * g.N / parts);
                    });
                    if (wantW)
                    {
                        var dst = new Span<float>(adw, wLen);
                        if (!accDw) new ReadOnlySpan<float>(apart, wLen).CopyTo(dst);
                        else TensorPrimitives.Add(dst, new ReadOnlySpan<float>(apart, wLen), dst);
                        for (int p = 1; p < parts; p++) TensorPrimitives.Add(dst, new ReadOnlySpan<float>(apart + (long)p * wLen, wLen), dst);
                    }
                }
            }
        }
        finally { if (partials is not null) BufferPool.Return(partials); }
    }

    /// <summary>dx (+)= Wᵀ·dy then col2im; dw (+)= dy·colᵀ, over images [n0, n1). dw null skips the weight gradient.</summary>
    private static void BackwardImages(ConvGeom g, float* x, float* w, float* dy, float* dx, bool accDx, float* dw, bool accDw, int n0, int n1)
    {
        float[]? col = g.IsPointwise ? null : BufferPool.Rent(g.K * g.OHW);
        try
        {
            fixed (float* pcol = col)
                for (int n = n0; n < n1; n++)
                {
                    float* xn = x + (long)n * g.Cin * g.HW, dyn = dy + (long)n * g.Cout * g.OHW;
                    float* dxn = dx == null ? null : dx + (long)n * g.Cin * g.HW;
                    if (dxn != null && !accDx && !g.IsPointwise) new Span<float>(dxn, g.Cin * g.HW).Clear();
                    for (int grp = 0; grp < g.Groups; grp++)
                    {
                        float* xg = xn + (long)grp * g.CinG * g.HW;
                        float* dyg = dyn + (long)grp * g.CoutG * g.OHW;
                        float* wg = w + (long)grp * g.CoutG * g.K;
                        if (dw != null)
                        {
                            // dW_g [CoutG, K] (+)= dy_g [CoutG, OHW] · colᵀ [OHW, K]
                            float* bmat = xg;
                            if (!g.IsPointwise) { Im2Col(g, xg, pcol); bmat = pcol; }
                            float beta = accDw || n > n0 ? 1f : 0f;
                            Gemm.Run(false, true, g.CoutG, g.K, g.OHW, 1f, dyg, g.OHW, bmat, g.OHW, beta, dw + (long)grp * g.CoutG * g.K, g.K);
                        }
                        if (dxn != null)
                        {
                            float* dxg = dxn + (long)grp * g.CinG * g.HW;
                            // dcol [K, OHW] = W_gᵀ [K, CoutG] · dy_g [CoutG, OHW]
                            if (g.IsPointwise)
                                Gemm.Run(true, false, g.K, g.OHW, g.CoutG, 1f, wg, g.K, dyg, g.OHW, accDx ? 1f : 0f, dxg, g.OHW);
                            else
                            {
                                Gemm.Run(true, false, g.K, g.OHW, g.CoutG, 1f, wg, g.K, dyg, g.OHW, 0f, pcol, g.OHW);
                                Col2Im(g, pcol, dxg);
                            }
                        }
                    }
                }
        }
        finally { if (col is not null) BufferPool.Return(col); }
    }

    // db (Cout) (+)= Σ_n Σ_hw dy (N, Cout, HW)
    internal static void BiasGrad(int n, int c, int hw, ReadOnlySpan<float> dy, Span<float> db, bool acc)
    {
        for (int co = 0; co < c; co++)
        {
            float s = 0;
            for (int i = 0; i < n; i++) s += TensorPrimitives.Sum(dy.Slice((i * c + co) * hw, hw));
            db[co] = acc ? db[co] + s : s;
        }
    }

    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);

    // col (CinG·KH·KW, OH·OW) ← x (CinG, H, W) of one image and group; padding reads as zero
    internal static void Im2Col(ConvGeom g, float* x, float* col) => Im2Col(g, x, col, g.OHW);

    // the same, rows ld floats apart (several images' columns side by side)
    internal static void Im2Col(ConvGeom g, float* x, float* col, long ld) => Im2Col(g, x, col, ld, 0, g.OH);

    // the columns of output rows [oh0, oh1) only: col (CinG·KH·KW, (oh1 − oh0)·OW), rows ld floats apart
    internal static void Im2Col(ConvGeom g, float* x, float* col, long ld, int oh0, int oh1)
    {
        int taps = g.KH * g.KW;
        Par.For(g.CinG, Math.Max(1, 65536 / Math.Max(1, taps * (oh1 - oh0) * g.OW)), (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
                for (int i = 0; i < g.KH; i++)
                    for (int j = 0; j < g.KW; j++)
                        Im2ColRow(g, x + (long)c * g.HW, i, j, col + (long)((c * g.KH + i) * g.KW + j) * ld, oh0, oh1);
        });
    }

    private static void Im2ColRow(ConvGeom g, float* xc, int i, int j, float* dst, int oh0, int oh1)
    {
        int offW = j * g.DW - g.PW;
        var (lo, hi) = ValidRange(g.OW, g.W, g.SW, offW);
        for (int oh = oh0; oh < oh1; oh++)
        {
            float* d = dst + (oh - oh0) * g.OW;
            int ih = oh * g.SH - g.PH + i * g.DH;
            if ((uint)ih >= (uint)g.H) { new Span<float>(d, g.OW).Clear(); continue; }
            float* xr = xc + ih * g.W + offW;
            for (int ow = 0; ow < lo; ow++) d[ow] = 0;
            if (g.SW == 1) new ReadOnlySpan<float>(xr + lo, hi - lo).CopyTo(new Span<float>(d + lo, hi - lo));
            else
            {
                int ow = lo;
                if (g.SW == 2 && Avx512F.IsSupported)
                    // 16 outputs from the even lanes of 32 inputs, while all 32 lie inside the row
                    for (; ow + 16 <= hi && 2 * ow + offW + 32 <= g.W; ow += 16)
                        Vector512.Store(Avx512F.PermuteVar16x32x2(Vector512.Load(xr + 2 * ow), EvenLanes, Vector512.Load(xr + 2 * ow + 16)), d + ow);
                for (; ow < hi; ow++) d[ow] = xr[ow * g.SW];
            }
            for (int ow = hi; ow < g.OW; ow++) d[ow] = 0;
        }
    }

    // dx (CinG, H, W) += col2im(dcol (CinG·KH·KW, OH·OW)); parallel over channels (each owns its plane)
    internal static void Col2Im(ConvGeom g, float* col, float* dx)
    {
        int taps = g.KH * g.KW;
        Par.For(g.CinG, Math.Max(1, 65536 / Math.Max(1, taps * g.OHW)), (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
                for (int i = 0; i < g.KH; i++)
                    for (int j = 0; j < g.KW; j++)
                        Col2ImRow(g, col + (long)((c * g.KH + i) * g.KW + j) * g.OHW, i, j, dx + (long)c * g.HW);
        });
    }

    private static void Col2ImRow(ConvGeom g, float* src, int i, int j, float* dxc)
    {
        int offW = j * g.DW - g.PW;
        var (lo, hi) = ValidRange(g.OW, g.W, g.SW, offW);
        if (lo >= hi) return;
        for (int oh = 0; oh < g.OH; oh++)
        {
            int ih = oh * g.SH - g.PH + i * g.DH;
            if ((uint)ih >= (uint)g.H) continue;
            float* s = src + oh * g.OW;
            float* xr = dxc + ih * g.W + offW;
            if (g.SW == 1)
            {
                var dst = new Span<float>(xr + lo, hi - lo);
                TensorPrimitives.Add(dst, new ReadOnlySpan<float>(s + lo, hi - lo), dst);
            }
            else for (int ow = lo; ow < hi; ow++) xr[ow * g.SW] += s[ow];
        }
    }
}

/// <summary>
/// Depthwise convolution (groups = Cin = Cout) in float, computed directly per (image, channel) plane:
/// register-blocked SIMD kernels for 3×3 stride 1 (MobileNet's hot path; forward, weight gradient, and the input
/// gradient, which is the same correlation of dy with the flipped kernel), AVX-512 even/odd-split kernels for 3×3
/// stride 2 (forward and weight gradient), and row-wise SIMD axpy / dot loops (scalar when strided) otherwise.
/// </summary>
internal static unsafe class Depthwise
{
    private static bool Is3x3S1(ConvGeom g) => g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1;
    private static bool Is3x3S2(ConvGeom g) => Avx512F.IsSupported && g.KH == 3 && g.KW == 3 && g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1;

    // x (N, C, H, W), w (C, 1, KH, KW), b (C) or empty → y (N, C, OH, OW)
    public static void Forward(ConvGeom g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y)
    {
        fixed (float* px = x) fixed (float* pw = w) fixed (float* pb = b) fixed (float* py = y)
        {
            float* ax = px, aw = pw, ab = b.IsEmpty ? null : pb, ay = py;
            int taps = g.KH * g.KW;
            bool fast = Is3x3S1(g), fast2 = Is3x3S2(g);
            Par.For(g.N * g.Cin, Math.Max(1, 16384 / Math.Max(1, g.OHW * taps)), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    int c = p % g.Cin;
                    float bias = ab == null ? 0f : ab[c];
                    float* xp = ax + (long)p * g.HW, yp = ay + (long)p * g.OHW, wk = aw + c * taps;
                    if (fast) Plane3x3S1(xp, g.H, g.W, wk, bias, yp, g.OH, g.OW, g.PH, g.PW, accumulate: false);
                    else if (fast2) Plane3x3S2(xp, g.H, g.W, wk, bias, yp, g.OH, g.OW, g.PH, g.PW);
                    else PlaneForward(g, xp, wk, bias, yp);
                }
            });
        }
    }

    // dy (N, C, OH, OW) → dx (N, C, H, W) and dw (C, 1, KH, KW); parallel over channels, so both are race-free
    public static void Backward(ConvGeom g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy,
        Span<float> dx, bool accDx, Span<float> dw, bool accDw)
    {
        bool wantX = !dx.IsEmpty, wantW = !dw.IsEmpty;
        fixed (float* px = x) fixed (float* pw = w) fixed (float* pdy = dy) fixed (float* pdx = dx) fixed (float* pdw = dw)
        {
            float* ax = px, aw = pw, ady = pdy, adx = pdx, adw = pdw;
            int taps = g.KH * g.KW;
            bool fast = Is3x3S1(g), fast2 = Is3x3S2(g);
            Par.For(g.Cin, Math.Max(1, 16384 / Math.Max(1, g.N * g.OHW * taps)), (c0, c1) =>
            {
                float* flipped = stackalloc float[9];
                float* acc = stackalloc float[taps];
                for (int c = c0; c < c1; c++)
                {
                    float* wk = aw + c * taps;
                    if (wantX && fast)
                        for (int t = 0; t < 9; t++) flipped[t] = wk[8 - t];
                    for (int t = 0; t < taps; t++) acc[t] = 0;
                    for (int n = 0; n < g.N; n++)
                    {
                        long p = (long)n * g.Cin + c;
                        float* xp = ax + p * g.HW, dyp = ady + p * g.OHW;
                        if (wantX)
                        {
                            float* dxp = adx + p * g.HW;
                            // stride 1, 3×3: dx = dy ⋆ flip(w) with padding 2 − p (same kernel as the forward)
                            if (fast) Plane3x3S1(dyp, g.OH, g.OW, flipped, 0f, dxp, g.H, g.W, 2 - g.PH, 2 - g.PW, accumulate: accDx);
                            else
                            {
                                if (!accDx) new Span<float>(dxp, g.HW).Clear();
                                PlaneInputGrad(g, dyp, wk, dxp);
                            }
                        }
                        if (wantW)
                        {
                            if (fast) WeightGrad3x3S1(xp, g.H, g.W, dyp, g.OH, g.OW, g.PH, g.PW, acc);
                            else if (fast2) WeightGrad3x3S2(xp, g.H, g.W, dyp, g.OH, g.OW, g.PH, g.PW, acc);
                            else PlaneWeightGrad(g, xp, dyp, acc);
                        }
                    }
                    if (wantW)
                        for (int t = 0; t < taps; t++) adw[c * taps + t] = accDw ? adw[c * taps + t] + acc[t] : acc[t];
                }
            });
        }
    }

    private static readonly Vector512<float> Lanes512 = Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    private static readonly Vector256<float> Lanes256 = Vector256.Create(0f, 1, 2, 3, 4, 5, 6, 7);

    /// <summary>
    /// One plane of a 3×3 stride-1 correlation: y[oh, ow] (+)= bias + Σ_ij w[i,j]·x[oh − ph + i, ow − pw + j]
    /// (any padding, negative included). Interior columns run 16 (or 8) wide in registers; a final overlapping
    /// block covers the remainder (masked to the lanes not yet done when accumulating), so only the padded border
    /// columns go scalar.
    /// </summary>
    internal static void Plane3x3S1(float* x, int H, int W, float* wk, float bias, float* y, int OH, int OW, int ph, int pw, bool accumulate)
    {
        // interior: all three taps inside the row ⇔ 0 ≤ ow − pw and ow − pw + 2 < W
        int lo = Math.Clamp(pw, 0, OW), hi = Math.Clamp(W + pw - 2, lo, OW);
        float w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3], w4 = wk[4], w5 = wk[5], w6 = wk[6], w7 = wk[7], w8 = wk[8];
        for (int oh = 0; oh < OH; oh++)
        {
            float* yr = y + (long)oh * OW;
            int ih0 = oh - ph;
            bool v0 = (uint)ih0 < (uint)H, v1 = (uint)(ih0 + 1) < (uint)H, v2 = (uint)(ih0 + 2) < (uint)H;
            // row pointers shifted so that r[ow + j] = x[ih, ow − pw + j]
            float* r0 = x + (long)ih0 * W - pw, r1 = r0 + W, r2 = r1 + W;
            int ow = lo;
            if (Vector512.IsHardwareAccelerated && hi - lo >= 16)
            {
                var b = Vector512.Create(bias);
                var vw0 = Vector512.Create(w0); var vw1 = Vector512.Create(w1); var vw2 = Vector512.Create(w2);
                var vw3 = Vector512.Create(w3); var vw4 = Vector512.Create(w4); var vw5 = Vector512.Create(w5);
                var vw6 = Vector512.Create(w6); var vw7 = Vector512.Create(w7); var vw8 = Vector512.Create(w8);
                while (true)
                {
                    int done = 0;   // lanes of this block already written (the overlapping last block)
                    if (ow > hi - 16)
                    {
                        if (ow == hi) break;
                        done = ow - (hi - 16);
                        ow = hi - 16;
                    }
                    var acc = b;
                    if (v0)
                    {
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow), vw0, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow + 1), vw1, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow + 2), vw2, acc);
                    }
                    if (v1)
                    {
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow), vw3, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow + 1), vw4, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow + 2), vw5, acc);
                    }
                    if (v2)
                    {
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow), vw6, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow + 1), vw7, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow + 2), vw8, acc);
                    }
                    if (accumulate)
                    {
                        // the overlapping block adds only to the lanes not done yet
                        if (done > 0) acc = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Lanes512, Vector512.Create((float)done)), acc, Vector512<float>.Zero);
                        acc += Vector512.Load(yr + ow);
                    }
                    acc.Store(yr + ow);
                    ow += 16;
                }
            }
            if (Vector256.IsHardwareAccelerated && hi - ow >= 8)
            {
                var b = Vector256.Create(bias);
                var vw0 = Vector256.Create(w0); var vw1 = Vector256.Create(w1); var vw2 = Vector256.Create(w2);
                var vw3 = Vector256.Create(w3); var vw4 = Vector256.Create(w4); var vw5 = Vector256.Create(w5);
                var vw6 = Vector256.Create(w6); var vw7 = Vector256.Create(w7); var vw8 = Vector256.Create(w8);
                while (true)
                {
                    int done = 0;
                    if (ow > hi - 8)
                    {
                        if (ow == hi) break;
                        done = ow - (hi - 8);
                        ow = hi - 8;
                    }
                    var acc = b;
                    if (v0)
                    {
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + ow), vw0, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + ow + 1), vw1, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + ow + 2), vw2, acc);
                    }
                    if (v1)
                    {
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r1 + ow), vw3, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r1 + ow + 1), vw4, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r1 + ow + 2), vw5, acc);
                    }
                    if (v2)
                    {
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r2 + ow), vw6, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r2 + ow + 1), vw7, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(r2 + ow + 2), vw8, acc);
                    }
                    if (accumulate)
                    {
                        if (done > 0) acc = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(Lanes256, Vector256.Create((float)done)), acc, Vector256<float>.Zero);
                        acc += Vector256.Load(yr + ow);
                    }
                    acc.Store(yr + ow);
                    ow += 8;
                }
            }
            for (; ow < hi; ow++) yr[ow] = Point3x3(x, H, W, wk, bias, ih0, ow - pw, accumulate ? yr[ow] : 0f);
            for (int o = 0; o < lo; o++) yr[o] = Point3x3(x, H, W, wk, bias, ih0, o - pw, accumulate ? yr[o] : 0f);
            for (int o = hi; o < OW; o++) yr[o] = Point3x3(x, H, W, wk, bias, ih0, o - pw, accumulate ? yr[o] : 0f);
        }
    }

    /// <summary>
    /// acc[i·3 + j] += Σ_oh,ow dy[oh, ow]·x[oh − ph + i, ow − pw + j] over one plane (3×3 stride 1): nine vector
    /// accumulators over the interior columns (the last, overlapping block masks the lanes already counted),
    /// scalar border columns, one horizontal sum per tap at the end.
    /// </summary>
    internal static void WeightGrad3x3S1(float* x, int H, int W, float* dy, int OH, int OW, int ph, int pw, float* acc)
    {
        int lo = Math.Clamp(pw, 0, OW), hi = Math.Clamp(W + pw - 2, lo, OW);
        float* sc = stackalloc float[9];
        for (int t = 0; t < 9; t++) sc[t] = 0;
        bool v512 = Vector512.IsHardwareAccelerated && hi - lo >= 16;
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0; var a8 = a0;
        for (int oh = 0; oh < OH; oh++)
        {
            float* d = dy + (long)oh * OW;
            int ih0 = oh - ph;
            bool v0 = (uint)ih0 < (uint)H, v1 = (uint)(ih0 + 1) < (uint)H, v2 = (uint)(ih0 + 2) < (uint)H;
            float* r0 = x + (long)ih0 * W - pw, r1 = r0 + W, r2 = r1 + W;
            int ow = lo;
            if (v512)
            {
                while (ow < hi)
                {
                    Vector512<float> g;
                    if (ow <= hi - 16) g = Vector512.Load(d + ow);
                    else
                    {
                        int done = ow - (hi - 16);
                        ow = hi - 16;
                        g = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Lanes512, Vector512.Create((float)done)), Vector512.Load(d + ow), Vector512<float>.Zero);
                    }
                    if (v0)
                    {
                        a0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow), g, a0);
                        a1 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow + 1), g, a1);
                        a2 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + ow + 2), g, a2);
                    }
                    if (v1)
                    {
                        a3 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow), g, a3);
                        a4 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow + 1), g, a4);
                        a5 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + ow + 2), g, a5);
                    }
                    if (v2)
                    {
                        a6 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow), g, a6);
                        a7 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow + 1), g, a7);
                        a8 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + ow + 2), g, a8);
                    }
                    ow += 16;
                }
            }
            for (; ow < hi; ow++) PointWeightGrad3x3(x, H, W, d[ow], ih0, ow - pw, sc);
            for (int o = 0; o < lo; o++) PointWeightGrad3x3(x, H, W, d[o], ih0, o - pw, sc);
            for (int o = hi; o < OW; o++) PointWeightGrad3x3(x, H, W, d[o], ih0, o - pw, sc);
        }
        acc[0] += sc[0] + Vector512.Sum(a0); acc[1] += sc[1] + Vector512.Sum(a1); acc[2] += sc[2] + Vector512.Sum(a2);
        acc[3] += sc[3] + Vector512.Sum(a3); acc[4] += sc[4] + Vector512.Sum(a4); acc[5] += sc[5] + Vector512.Sum(a5);
        acc[6] += sc[6] + Vector512.Sum(a6); acc[7] += sc[7] + Vector512.Sum(a7); acc[8] += sc[8] + Vector512.Sum(a8);
    }

    // ---- 3×3 stride 2 (AVX-512): 16 outputs read 32(+2) consecutive inputs per row, split into even / odd lanes ----

    private static readonly Vector512<int> Even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> Odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);

    /// <summary>Block starts ow in [lo, last] read x[ih, 2·ow − pw .. 2·ow − pw + 34) inside the row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int lo, int last) S2Interior(int W, int pw, int OW)
    {
        int lo = Math.Min((pw + 1) / 2, OW);
        int last = Math.Min((W + pw - 34) >> 1, OW - 16);   // floor division (the numerator may be negative)
        return (lo, last);
    }

    // taps j = 0, 1, 2 of 16 stride-2 outputs starting at r (= row pointer + 2·ow − pw)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void S2Taps(float* r, out Vector512<float> t0, out Vector512<float> t1, out Vector512<float> t2)
    {
        var a = Vector512.Load(r); var b = Vector512.Load(r + 16);
        t0 = Avx512F.PermuteVar16x32x2(a, Even, b);
        t1 = Avx512F.PermuteVar16x32x2(a, Odd, b);
        t2 = Avx512F.PermuteVar16x32x2(Vector512.Load(r + 2), Even, Vector512.Load(r + 18));
    }

    /// <summary>One plane of a 3×3 stride-2 correlation (overwrites y): SIMD interior, scalar borders.</summary>
    internal static void Plane3x3S2(float* x, int H, int W, float* wk, float bias, float* y, int OH, int OW, int ph, int pw)
    {
        var (lo, last) = S2Interior(W, pw, OW);
        var b = Vector512.Create(bias);
        var vw0 = Vector512.Create(wk[0]); var vw1 = Vector512.Create(wk[1]); var vw2 = Vector512.Create(wk[2]);
        var vw3 = Vector512.Create(wk[3]); var vw4 = Vector512.Create(wk[4]); var vw5 = Vector512.Create(wk[5]);
        var vw6 = Vector512.Create(wk[6]); var vw7 = Vector512.Create(wk[7]); var vw8 = Vector512.Create(wk[8]);
        for (int oh = 0; oh < OH; oh++)
        {
            float* yr = y + (long)oh * OW;
            int ih0 = 2 * oh - ph;
            bool v0 = (uint)ih0 < (uint)H, v1 = (uint)(ih0 + 1) < (uint)H, v2 = (uint)(ih0 + 2) < (uint)H;
            float* r0 = x + (long)ih0 * W - pw, r1 = r0 + W, r2 = r1 + W;
            int o = 0;
            for (; o < lo; o++) yr[o] = Point3x3(x, H, W, wk, bias, ih0, 2 * o - pw, 0f);
            if (last >= lo)
            {
                for (int ow = lo; ; ow += 16)
                {
                    if (ow > last) { if (ow >= last + 16) break; ow = last; }   // overlapping last block (pure writes)
                    var acc = b;
                    if (v0) { S2Taps(r0 + 2 * ow, out var t0, out var t1, out var t2); acc = Vector512.FusedMultiplyAdd(t0, vw0, acc); acc = Vector512.FusedMultiplyAdd(t1, vw1, acc); acc = Vector512.FusedMultiplyAdd(t2, vw2, acc); }
                    if (v1) { S2Taps(r1 + 2 * ow, out var t0, out var t1, out var t2); acc = Vector512.FusedMultiplyAdd(t0, vw3, acc); acc = Vector512.FusedMultiplyAdd(t1, vw4, acc); acc = Vector512.FusedMultiplyAdd(t2, vw5, acc); }
                    if (v2) { S2Taps(r2 + 2 * ow, out var t0, out var t1, out var t2); acc = Vector512.FusedMultiplyAdd(t0, vw6, acc); acc = Vector512.FusedMultiplyAdd(t1, vw7, acc); acc = Vector512.FusedMultiplyAdd(t2, vw8, acc); }
                    acc.Store(yr + ow);
                    o = ow + 16;
                }
            }
            for (; o < OW; o++) yr[o] = Point3x3(x, H, W, wk, bias, ih0, 2 * o - pw, 0f);
        }
    }

    /// <summary>acc[i·3 + j] += Σ dy[oh, ow]·x[2·oh − ph + i, 2·ow − pw + j] over one plane (3×3 stride 2).</summary>
    internal static void WeightGrad3x3S2(float* x, int H, int W, float* dy, int OH, int OW, int ph, int pw, float* acc)
    {
        var (lo, last) = S2Interior(W, pw, OW);
        float* sc = stackalloc float[9];
        for (int t = 0; t < 9; t++) sc[t] = 0;
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0; var a8 = a0;
        for (int oh = 0; oh < OH; oh++)
        {
            float* d = dy + (long)oh * OW;
            int ih0 = 2 * oh - ph;
            bool v0 = (uint)ih0 < (uint)H, v1 = (uint)(ih0 + 1) < (uint)H, v2 = (uint)(ih0 + 2) < (uint)H;
            float* r0 = x + (long)ih0 * W - pw, r1 = r0 + W, r2 = r1 + W;
            int o = 0;
            for (; o < lo; o++) PointWeightGrad3x3(x, H, W, d[o], ih0, 2 * o - pw, sc);
            if (last >= lo)
            {
                for (int ow = lo; ; ow += 16)
                {
                    Vector512<float> g;
                    if (ow <= last) g = Vector512.Load(d + ow);
                    else
                    {
                        if (ow >= last + 16) break;
                        int done = ow - last;
                        ow = last;
                        g = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Lanes512, Vector512.Create((float)done)), Vector512.Load(d + ow), Vector512<float>.Zero);
                    }
                    if (v0) { S2Taps(r0 + 2 * ow, out var t0, out var t1, out var t2); a0 = Vector512.FusedMultiplyAdd(t0, g, a0); a1 = Vector512.FusedMultiplyAdd(t1, g, a1); a2 = Vector512.FusedMultiplyAdd(t2, g, a2); }
                    if (v1) { S2Taps(r1 + 2 * ow, out var t0, out var t1, out var t2); a3 = Vector512.FusedMultiplyAdd(t0, g, a3); a4 = Vector512.FusedMultiplyAdd(t1, g, a4); a5 = Vector512.FusedMultiplyAdd(t2, g, a5); }
                    if (v2) { S2Taps(r2 + 2 * ow, out var t0, out var t1, out var t2); a6 = Vector512.FusedMultiplyAdd(t0, g, a6); a7 = Vector512.FusedMultiplyAdd(t1, g, a7); a8 = Vector512.FusedMultiplyAdd(t2, g, a8); }
                    o = ow + 16;
                }
            }
            for (; o < OW; o++) PointWeightGrad3x3(x, H, W, d[o], ih0, 2 * o - pw, sc);
        }
        acc[0] += sc[0] + Vector512.Sum(a0); acc[1] += sc[1] + Vector512.Sum(a1); acc[2] += sc[2] + Vector512.Sum(a2);
        acc[3] += sc[3] + Vector512.Sum(a3); acc[4] += sc[4] + Vector512.Sum(a4); acc[5] += sc[5] + Vector512.Sum(a5);
        acc[6] += sc[6] + Vector512.Sum(a6); acc[7] += sc[7] + Vector512.Sum(a7); acc[8] += sc[8] + Vector512.Sum(a8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PointWeightGrad3x3(float* x, int H, int W, float g, int ih0, int iw0, float* acc)
    {
        for (int i = 0; i < 3; i++)
        {
            int ih = ih0 + i;
            if ((uint)ih >= (uint)H) continue;
            for (int j = 0; j < 3; j++)
            {
                int iw = iw0 + j;
                if ((uint)iw < (uint)W) acc[i * 3 + j] += g * x[(long)ih * W + iw];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Point3x3(float* x, int H, int W, float* wk, float bias, int ih0, int iw0, float start)
    {
        float s = start + bias;
        for (int i = 0; i < 3; i++)
        {
            int ih = ih0 + i;
            if ((uint)ih >= (uint)H) continue;
            for (int j = 0; j < 3; j++)
            {
                int iw = iw0 + j;
                if ((uint)iw < (uint)W) s += wk[i * 3 + j] * x[(long)ih * W + iw];
            }
        }
        return s;
    }

    // One plane, any kernel/stride/padding/dilation: y = bias + Σ taps, row by row (SIMD axpy when stride 1).
    private static void PlaneForward(ConvGeom g, float* x, float* wk, float bias, float* y)
    {
        for (int oh = 0; oh < g.OH; oh++)
        {
            var yr = new Span<float>(y + (long)oh * g.OW, g.OW);
            yr.Fill(bias);
            for (int i = 0; i < g.KH; i++)
            {
                int ih = oh * g.SH - g.PH + i * g.DH;
                if ((uint)ih >= (uint)g.H) continue;
                float* xr = x + (long)ih * g.W;
                for (int j = 0; j < g.KW; j++)
                {
                    int off = j * g.DW - g.PW;
                    var (lo, hi) = Conv.ValidRange(g.OW, g.W, g.SW, off);
                    float wv = wk[i * g.KW + j];
                    if (g.SW == 1)
                    {
                        var d = yr.Slice(lo, hi - lo);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(xr + lo + off, hi - lo), wv, d, d);
                    }
                    else for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * g.SW + off];
                }
            }
        }
    }

    // dx plane += Σ taps scattered back (the transpose of PlaneForward)
    private static void PlaneInputGrad(ConvGeom g, float* dy, float* wk, float* dx)
    {
        for (int oh = 0; oh < g.OH; oh++)
        {
            float* dyr = dy + (long)oh * g.OW;
            for (int i = 0; i < g.KH; i++)
            {
                int ih = oh * g.SH - g.PH + i * g.DH;
                if ((uint)ih >= (uint)g.H) continue;
                float* xr = dx + (long)ih * g.W;
                for (int j = 0; j < g.KW; j++)
                {
                    int off = j * g.DW - g.PW;
                    var (lo, hi) = Conv.ValidRange(g.OW, g.W, g.SW, off);
                    float wv = wk[i * g.KW + j];
                    if (g.SW == 1)
                    {
                        var d = new Span<float>(xr + lo + off, hi - lo);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(dyr + lo, hi - lo), wv, d, d);
                    }
                    else for (int ow = lo; ow < hi; ow++) xr[ow * g.SW + off] += wv * dyr[ow];
                }
            }
        }
    }

    // acc[tap] += Σ_oh,ow dy[oh, ow]·x[ih, iw] for one plane
    private static void PlaneWeightGrad(ConvGeom g, float* x, float* dy, float* acc)
    {
        for (int oh = 0; oh < g.OH; oh++)
        {
            float* dyr = dy + (long)oh * g.OW;
            for (int i = 0; i < g.KH; i++)
            {
                int ih = oh * g.SH - g.PH + i * g.DH;
                if ((uint)ih >= (uint)g.H) continue;
                float* xr = x + (long)ih * g.W;
                for (int j = 0; j < g.KW; j++)
                {
                    int off = j * g.DW - g.PW;
                    var (lo, hi) = Conv.ValidRange(g.OW, g.W, g.SW, off);
                    float s = 0;
                    if (g.SW == 1) s = TensorPrimitives.Dot(new ReadOnlySpan<float>(dyr + lo, hi - lo), new ReadOnlySpan<float>(xr + lo + off, hi - lo));
                    else for (int ow = lo; ow < hi; ow++) s += dyr[ow] * xr[ow * g.SW + off];
                    acc[i * g.KW + j] += s;
                }
            }
        }
    }
}
