using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// The shape of one 2-D pooling over P independent planes (P = N·C): x (P, H, W) → y (P, OH, OW),
/// OH = (H + 2·PH − KH) / SH + 1 (floor, PyTorch's ceil_mode = false), likewise OW.
/// </summary>
internal readonly struct PoolGeom
{
    public readonly int Planes, H, W, KH, KW, SH, SW, PH, PW, OH, OW;

    public PoolGeom(int planes, int h, int w, int kh, int kw, int sh, int sw, int ph = 0, int pw = 0)
    {
        Planes = planes; H = h; W = w; KH = kh; KW = kw; SH = sh; SW = sw; PH = ph; PW = pw;
        OH = ConvGeom.OutSize(h, kh, sh, ph, 1);
        OW = ConvGeom.OutSize(w, kw, sw, pw, 1);
    }

    public int HW => H * W;
    public int OHW => OH * OW;

    public override string ToString() => $"pool [{Planes},{H},{W}] k({KH},{KW}) s({SH},{SW}) p({PH},{PW}) → [{Planes},{OH},{OW}]";
}

/// <summary>
/// Max / average / global-average pooling, generic over the element type (double for gradient checks), parallel
/// over planes. Backward kernels overwrite dx or add into it (<c>accumulate</c>).
/// </summary>
internal static unsafe class Pool
{
    private static int Grain(int work) => Math.Max(1, 32768 / Math.Max(1, work));

    // x (P, H, W) → y (P, OH, OW) = window max (padding never wins), arg (P, OH, OW) = ih·W + iw of the first max;
    // an empty arg (no backward to come) takes the separable float path (NaN wins as in the windowed loop)
    public static void MaxForward<T>(PoolGeom g, ReadOnlySpan<T> x, Span<T> y, Span<int> arg) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, x.Length, y.Length);
        if (arg.IsEmpty && typeof(T) == typeof(float))
        {
            MaxForwardValues(g, MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y));
            return;
        }
        if (arg.Length != y.Length) throw new ArgumentException("arg length mismatch.");
        fixed (T* px = x) fixed (T* py = y) fixed (int* pa = arg)
        {
            T* ax = px, ay = py; int* aa = pa;
            Par.For(g.Planes, Grain(g.OHW * g.KH * g.KW), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    T* xp = ax + (long)p * g.HW, yp = ay + (long)p * g.OHW;
                    int* ap = aa + (long)p * g.OHW;
                    for (int oh = 0; oh < g.OH; oh++)
                    {
                        int h0 = oh * g.SH - g.PH, hs = Math.Max(h0, 0), he = Math.Min(h0 + g.KH, g.H);
                        for (int ow = 0; ow < g.OW; ow++)
                        {
                            int w0 = ow * g.SW - g.PW, ws = Math.Max(w0, 0), we = Math.Min(w0 + g.KW, g.W);
                            T m = T.NegativeInfinity;
                            int best = hs * g.W + ws;
                            for (int ih = hs; ih < he; ih++)
                                for (int iw = ws; iw < we; iw++)
                                {
                                    T v = xp[ih * g.W + iw];
                                    if (v > m || (T.IsNaN(v) && !T.IsNaN(m))) { m = v; best = ih * g.W + iw; }
                                }
                            yp[oh * g.OW + ow] = m;
                            ap[oh * g.OW + ow] = best;
                        }
                    }
                }
            });
        }
    }

    /// <summary>
    /// Max pooling values only, separably: per output row the column-wise max of its kH input rows (SIMD over W), then
    /// the max of kW neighbours along the row. v replaces m when v &gt; m or v is NaN and m is not: NaN propagates.
    /// </summary>
    internal static void MaxForwardValues(PoolGeom g, ReadOnlySpan<float> x, Span<float> y)
    {
        fixed (float* px = x) fixed (float* py = y)
        {
            float* ax = px, ay = py;
            Par.For(g.Planes, Grain(g.OHW * g.KH * g.KW), (p0, p1) =>
            {
                float[] rowMax = BufferPool.Rent(g.W + 32);   // RowMax's strided loads read up to one float past W
                try
                {
                    fixed (float* col = rowMax)
                        for (int p = p0; p < p1; p++)
                        {
                            float* xp = ax + (long)p * g.HW, yp = ay + (long)p * g.OHW;
                            for (int oh = 0; oh < g.OH; oh++)
                            {
                                int h0 = oh * g.SH - g.PH, hs = Math.Max(h0, 0), he = Math.Min(h0 + g.KH, g.H);
                                ColumnMax(xp + (long)hs * g.W, he - hs, g.W, col);
                                float* yr = yp + oh * g.OW;
                                var (lo, hi) = RowMaxVector(g, col, yr);
                                for (int ow = 0; ow < g.OW; ow++)
                                {
                                    if (ow == lo) { ow = hi - 1; continue; }   // [lo, hi) done by RowMaxVector
                                    int w0 = ow * g.SW - g.PW, ws = Math.Max(w0, 0), we = Math.Min(w0 + g.KW, g.W);
                                    float m = float.NegativeInfinity;
                                    for (int iw = ws; iw < we; iw++)
                                    {
                                        float v = col[iw];
                                        if (v > m || (float.IsNaN(v) && !float.IsNaN(m))) m = v;
                                    }
                                    yr[ow] = m;
                                }
                            }
                        }
                }
                finally { BufferPool.Return(rowMax); }
            });
        }
    }

    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);

    /// <summary>
    /// yr[ow] = max of the kW columns col[ow·SW − PW + j] for the windows [lo, hi) that lie inside the row, 16 at a time
    /// (AVX-512, stride 1 or 2: stride 2 picks the even lanes of two loads); returns the range done, empty when none.
    /// Same NaN rule as the scalar loop.
    /// </summary>
    private static (int lo, int hi) RowMaxVector(PoolGeom g, float* col, float* yr)
    {
        if (!Avx512F.IsSupported || g.SW > 2) return (-1, -1);
        int lo = (g.PW + g.SW - 1) / g.SW;                     // first window with w0 ≥ 0
        int hi = Math.Min(g.OW, (g.W - g.KW + g.PW) / g.SW + 1);   // past the last window with w0 + kW ≤ W
        int blocks = (hi - lo) / 16;
        if (blocks <= 0) return (-1, -1);
        hi = lo + blocks * 16;
        for (int ow = lo; ow < hi; ow += 16)
        {
            float* src = col + ow * g.SW - g.PW;
            var m = Vector512.Create(float.NegativeInfinity);
            for (int j = 0; j < g.KW; j++)
            {
                var v = g.SW == 1 ? Vector512.Load(src + j) : Avx512F.PermuteVar16x32x2(Vector512.Load(src + j), EvenLanes, Vector512.Load(src + j + 16));
                m = Vector512.ConditionalSelect(Vector512.GreaterThan(v, m) | (~Vector512.Equals(v, v) & Vector512.Equals(m, m)), v, m);
            }
            m.Store(yr + ow);
        }
        return (lo, hi);
    }

    /// <summary>dst[w] = max over <paramref name="rows"/> rows (stride <paramref name="width"/>) from <paramref name="src"/>; −∞ for none.</summary>
    private static void ColumnMax(float* src, int rows, int width, float* dst)
    {
        int w = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; w + 16 <= width; w += 16)
            {
                var m = Vector512.Create(float.NegativeInfinity);
                for (int r = 0; r < rows; r++)
                {
                    var v = Vector512.Load(src + (long)r * width + w);
                    m = Vector512.ConditionalSelect(Vector512.GreaterThan(v, m) | (~Vector512.Equals(v, v) & Vector512.Equals(m, m)), v, m);
                }
                m.Store(dst + w);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; w + 8 <= width; w += 8)
            {
                var m = Vector256.Create(float.NegativeInfinity);
                for (int r = 0; r < rows; r++)
                {
                    var v = Vector256.Load(src + (long)r * width + w);
                    m = Vector256.ConditionalSelect(Vector256.GreaterThan(v, m) | (~Vector256.Equals(v, v) & Vector256.Equals(m, m)), v, m);
                }
                m.Store(dst + w);
            }
        for (; w < width; w++)
        {
            float m = float.NegativeInfinity;
            for (int r = 0; r < rows; r++)
            {
                float v = src[(long)r * width + w];
                if (v > m || (float.IsNaN(v) && !float.IsNaN(m))) m = v;
            }
            dst[w] = m;
        }
    }

    // dx (P, H, W) (+)= dy scattered to the argmax positions
    public static void MaxBackward<T>(PoolGeom g, ReadOnlySpan<T> dy, ReadOnlySpan<int> arg, Span<T> dx, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, dx.Length, dy.Length);
        fixed (T* pdy = dy) fixed (T* pdx = dx) fixed (int* pa = arg)
        {
            T* ady = pdy, adx = pdx; int* aa = pa;
            Par.For(g.Planes, Grain(g.HW + g.OHW), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    T* dxp = adx + (long)p * g.HW, dyp = ady + (long)p * g.OHW;
                    int* ap = aa + (long)p * g.OHW;
                    if (!accumulate) new Span<T>(dxp, g.HW).Clear();
                    for (int o = 0; o < g.OHW; o++) dxp[ap[o]] += dyp[o];
                }
            });
        }
    }

    /// <summary>The averaging divisor of window (oh, ow): KH·KW when padding counts, else the in-bounds element count.</summary>
    private static int Divisor(PoolGeom g, bool countIncludePad, int oh, int ow)
    {
        if (countIncludePad) return g.KH * g.KW;
        int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
        int hs = Math.Max(h0, 0), he = Math.Min(h0 + g.KH, g.H), ws = Math.Max(w0, 0), we = Math.Min(w0 + g.KW, g.W);
        return Math.Max(1, (he - hs) * (we - ws));
    }

    // x (P, H, W) → y (P, OH, OW) = window sum / divisor
    public static void AvgForward<T>(PoolGeom g, bool countIncludePad, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, x.Length, y.Length);
        fixed (T* px = x) fixed (T* py = y)
        {
            T* ax = px, ay = py;
            Par.For(g.Planes, Grain(g.OHW * g.KH * g.KW), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    T* xp = ax + (long)p * g.HW, yp = ay + (long)p * g.OHW;
                    for (int oh = 0; oh < g.OH; oh++)
                    {
                        int h0 = oh * g.SH - g.PH, hs = Math.Max(h0, 0), he = Math.Min(h0 + g.KH, g.H);
                        for (int ow = 0; ow < g.OW; ow++)
                        {
                            int w0 = ow * g.SW - g.PW, ws = Math.Max(w0, 0), we = Math.Min(w0 + g.KW, g.W);
                            T s = T.Zero;
                            for (int ih = hs; ih < he; ih++)
                                for (int iw = ws; iw < we; iw++) s += xp[ih * g.W + iw];
                            yp[oh * g.OW + ow] = s / T.CreateTruncating(Divisor(g, countIncludePad, oh, ow));
                        }
                    }
                }
            });
        }
    }

    // dx (P, H, W) (+)= dy spread evenly over each window
    public static void AvgBackward<T>(PoolGeom g, bool countIncludePad, ReadOnlySpan<T> dy, Span<T> dx, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(g, dx.Length, dy.Length);
        fixed (T* pdy = dy) fixed (T* pdx = dx)
        {
            T* ady = pdy, adx = pdx;
            Par.For(g.Planes, Grain(g.OHW * g.KH * g.KW), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    T* dxp = adx + (long)p * g.HW, dyp = ady + (long)p * g.OHW;
                    if (!accumulate) new Span<T>(dxp, g.HW).Clear();
                    for (int oh = 0; oh < g.OH; oh++)
                    {
                        int h0 = oh * g.SH - g.PH, hs = Math.Max(h0, 0), he = Math.Min(h0 + g.KH, g.H);
                        for (int ow = 0; ow < g.OW; ow++)
                        {
                            int w0 = ow * g.SW - g.PW, ws = Math.Max(w0, 0), we = Math.Min(w0 + g.KW, g.W);
                            T d = dyp[oh * g.OW + ow] / T.CreateTruncating(Divisor(g, countIncludePad, oh, ow));
                            for (int ih = hs; ih < he; ih++)
                                for (int iw = ws; iw < we; iw++) dxp[ih * g.W + iw] += d;
                        }
                    }
                }
            });
        }
    }

    // x (P, HW) → y (P) = mean over the plane
    public static void GlobalAvgForward<T>(int planes, int hw, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != planes * hw || y.Length != planes) throw new ArgumentException("Buffer lengths do not match the global pool.");
        T inv = T.One / T.CreateTruncating(hw);
        fixed (T* px = x) fixed (T* py = y)
        {
            T* ax = px, ay = py;
            Par.For(planes, Grain(hw), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                    ay[p] = System.Numerics.Tensors.TensorPrimitives.Sum(new ReadOnlySpan<T>(ax + (long)p * hw, hw)) * inv;
            });
        }
    }

    // dx (P, HW) (+)= dy (P) / HW
    public static void GlobalAvgBackward<T>(int planes, int hw, ReadOnlySpan<T> dy, Span<T> dx, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dx.Length != planes * hw || dy.Length != planes) throw new ArgumentException("Buffer lengths do not match the global pool.");
        T inv = T.One / T.CreateTruncating(hw);
        fixed (T* pdy = dy) fixed (T* pdx = dx)
        {
            T* ady = pdy, adx = pdx;
            Par.For(planes, Grain(hw), (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    var d = new Span<T>(adx + (long)p * hw, hw);
                    T v = ady[p] * inv;
                    if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(d, v, d);
                    else d.Fill(v);
                }
            });
        }
    }

    private static void Check(PoolGeom g, int xLen, int yLen)
    {
        if (g.OH <= 0 || g.OW <= 0) throw new ArgumentException($"Empty pooling output: {g}.");
        if (xLen != g.Planes * g.HW || yLen != g.Planes * g.OHW) throw new ArgumentException($"Buffer lengths do not match {g}.");
    }
}
