using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Whetstone.Tensors.Kernels;

/// <summary>Softmax / log-softmax over the last axis of x (R, C).</summary>
internal static unsafe class Softmax
{
    private const int RowGrain = 16;

    // y = softmax(x) or log_softmax(x), row by row.
    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != rows * cols || y.Length != rows * cols) throw new ArgumentException("Softmax: length mismatch.");
        fixed (T* px = x) fixed (T* py = y)
        {
            T* ax = px, ay = py;
            Par.For(rows, RowGrain, (s, e) =>
            {
                for (int r = s; r < e; r++) Row(new ReadOnlySpan<T>(ax + (long)r * cols, cols), new Span<T>(ay + (long)r * cols, cols), log);
            });
        }
    }

    internal static void Row<T>(ReadOnlySpan<T> x, Span<T> y, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length == 0) return;
        if (typeof(T) == typeof(float) && !log && Vector512.IsHardwareAccelerated && x.Length >= 16)
        {
            fixed (T* px = x) fixed (T* py = y) RowF((float*)px, (float*)py, x.Length);
            return;
        }
        T max = TensorPrimitives.Max(x);
        if (T.IsNegativeInfinity(max)) { y.Fill(log ? T.NegativeInfinity : T.Zero); return; } // fully masked row
        TensorPrimitives.Subtract(x, max, y);
        if (log)
        {
            // log Σ exp(x - max) without a second buffer: exp into y, sum, then recompute x - max - lse.
            TensorPrimitives.Exp(y, y);
            T lse = T.Log(TensorPrimitives.Sum<T>(y));
            TensorPrimitives.Subtract(x, max + lse, y);
        }
        else
        {
            TensorPrimitives.Exp(y, y);
            T sum = TensorPrimitives.Sum<T>(y);
            TensorPrimitives.Multiply(y, T.One / sum, y);
        }
    }

    /// <summary>
    /// Softmax in place of the first <paramref name="n"/> of <paramref name="total"/> floats of a row, with key j
    /// hidden (−∞) where <paramref name="keyMask"/>[j] == 0 when a mask is given; the other total − n entries become 0
    /// (keys a causal mask hides). A row with nothing left becomes all zeros.
    /// </summary>
    internal static void RowMasked(float* row, float* keyMask, int n, int total)
    {
        if (keyMask != null)
        {
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var hidden = Vector512.Create(float.NegativeInfinity);
                for (; j <= n - 16; j += 16)
                    Vector512.Store(Vector512.ConditionalSelect(Vector512.Equals(Vector512.Load(keyMask + j), Vector512<float>.Zero), hidden, Vector512.Load(row + j)), row + j);
            }
            for (; j < n; j++) if (keyMask[j] == 0) row[j] = float.NegativeInfinity;
        }
        if (n > 0)
        {
            if (Vector512.IsHardwareAccelerated && n >= 16) RowF(row, row, n);
            else Row<float>(new ReadOnlySpan<float>(row, n), new Span<float>(row, n), log: false);
        }
        if (total > n) new Span<float>(row + n, total - n).Clear();
    }

    /// <summary>The largest of n floats (−∞ for none), 16 lanes at a time.</summary>
    internal static float MaxF(float* x, int n)
    {
        int i = 0;
        var vmax = Vector512.Create(float.NegativeInfinity);
        for (; i <= n - 16; i += 16) vmax = Vector512.Max(vmax, Vector512.Load(x + i));
        float max = float.NegativeInfinity;
        for (int l = 0; l < 16; l++) max = MathF.Max(max, vmax.GetElement(l));
        for (; i < n; i++) max = MathF.Max(max, x[i]);
        return max;
    }

    /// <summary>
    /// Softmax of one float row in three passes (max; exp and sum; scale) with the single-precision exp of
    /// <see cref="MathX.Exp(Vector512{float})"/>. x and y may be the same row.
    /// </summary>
    private static void RowF(float* x, float* y, int n)
    {
        int i;
        float max = MaxF(x, n);
        if (float.IsNegativeInfinity(max)) { new Span<float>(y, n).Clear(); return; }   // fully masked row
        var vm = Vector512.Create(max);
        var vsum = Vector512<float>.Zero;
        for (i = 0; i <= n - 16; i += 16)
        {
            var e = MathX.Exp(Vector512.Load(x + i) - vm);
            Vector512.Store(e, y + i);
            vsum += e;
        }
        float sum = Vector512.Sum(vsum);
        for (; i < n; i++) { float e = MathF.Exp(x[i] - max); y[i] = e; sum += e; }
        float invSum = 1f / sum;
        var inv = Vector512.Create(invSum);
        for (i = 0; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(y + i) * inv, y + i);
        for (; i < n; i++) y[i] *= invSum;
    }

    // softmax:     dx = y ⊙ (dy − Σ dy⊙y)
    // log_softmax: dx = dy − exp(y) · Σ dy
    public static void Backward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx, int rows, int cols, bool log, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (T* py = y) fixed (T* pdy = dy) fixed (T* pdx = dx)
        {
            T* ay = py, ady = pdy, adx = pdx;
            Par.For(rows, RowGrain, (s, e) =>
            {
                for (int r = s; r < e; r++)
                {
                    long o = (long)r * cols;
                    var yr = new ReadOnlySpan<T>(ay + o, cols);
                    var gr = new ReadOnlySpan<T>(ady + o, cols);
                    var dr = new Span<T>(adx + o, cols);
                    if (log)
                    {
                        T sum = TensorPrimitives.Sum(gr);
                        for (int j = 0; j < cols; j++)
                        {
                            T v = gr[j] - T.Exp(yr[j]) * sum;
                            dr[j] = accumulate ? dr[j] + v : v;
                        }
                    }
                    else
                    {
                        T dot = TensorPrimitives.Dot(gr, yr);
                        for (int j = 0; j < cols; j++)
                        {
                            T v = yr[j] * (gr[j] - dot);
                            dr[j] = accumulate ? dr[j] + v : v;
                        }
                    }
                }
            });
        }
    }
}

/// <summary>
/// Layer normalisation over the last axis of x (R, D): y = (x − μ)·rstd·γ + β, biased variance; optionally of a sum
/// x + r (a residual add fused in: the sum is written out for backward).
/// </summary>
internal static unsafe class LayerNormKernel
{
    /// <summary>Rows per block of the backward pass: γ/β partial sums are per block, then added in block order.</summary>
    internal const int BlockRows = 32;

    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y, Span<T> mean, Span<T> rstd, int rows, int d, double eps)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Forward(x, default, default, gamma, beta, y, mean, rstd, rows, d, eps);

    /// <summary>
    /// y = LN(x + r) when <paramref name="residual"/> is given (the sum goes to <paramref name="sum"/>), else y = LN(x).
    /// </summary>
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> residual, Span<T> sum, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta,
        Span<T> y, Span<T> mean, Span<T> rstd, int rows, int d, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool affine = gamma.Length > 0, hasBeta = beta.Length > 0, add = residual.Length > 0;
        if (add && (residual.Length != x.Length || sum.Length != x.Length)) throw new ArgumentException("LayerNorm: residual and sum must match x.");
        fixed (T* px = x) fixed (T* pres = residual) fixed (T* psum = sum) fixed (T* pg = gamma) fixed (T* pb = beta) fixed (T* py = y) fixed (T* pm = mean) fixed (T* pr = rstd)
        {
            T* ax = px, ares = pres, asum = psum, ag = pg, ab = pb, ay = py, am = pm, ar = pr;
            Par.For(rows, 8, (s, e) =>
            {
                T invD = T.One / T.CreateTruncating(d);
                for (int r = s; r < e; r++)
                {
                    long o = (long)r * d;
                    var xr = new ReadOnlySpan<T>(ax + o, d);
                    if (add)
                    {
                        var sr = new Span<T>(asum + o, d);
                        TensorPrimitives.Add(xr, new ReadOnlySpan<T>(ares + o, d), sr);
                        xr = sr;
                    }
                    var yr = new Span<T>(ay + o, d);
                    T mu = TensorPrimitives.Sum(xr) * invD;
                    TensorPrimitives.Subtract(xr, mu, yr);
                    T var = TensorPrimitives.SumOfSquares<T>(yr) * invD;
                    T rs = T.One / T.Sqrt(var + T.CreateTruncating(eps));
                    am[r] = mu; ar[r] = rs;
                    if (affine)
                    {
                        // (y·rs)·γ (+ β) in one or two passes
                        TensorPrimitives.Multiply(yr, rs, yr);
                        if (hasBeta) TensorPrimitives.FusedMultiplyAdd(yr, new ReadOnlySpan<T>(ag, d), new ReadOnlySpan<T>(ab, d), yr);
                        else TensorPrimitives.Multiply(yr, new ReadOnlySpan<T>(ag, d), yr);
                    }
                    else
                    {
                        TensorPrimitives.Multiply(yr, rs, yr);
                        if (hasBeta) TensorPrimitives.Add(yr, new ReadOnlySpan<T>(ab, d), yr);
                    }
                }
            });
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        Span<T> dx, bool accumulateDx, Span<T> dgamma, Span<T> dbeta, int rows, int d) where T : unmanaged, IFloatingPointIeee754<T> =>
        Backward(dy, x, gamma, mean, rstd, dx, accumulateDx, default, false, dgamma, dbeta, rows, d);

    /// <summary>
    /// dx (+)= rstd·(dn − mean(dn) − n·mean(dn⊙n)) with n = (x−μ)·rstd, dn = dy⊙γ, and the same into
    /// <paramref name="dx2"/> when given (both inputs of a fused residual add); dγ += Σ_r dy⊙n; dβ += Σ_r dy.
    /// Empty spans skip a gradient. One pass over the rows in blocks of <see cref="BlockRows"/>: each block sums its
    /// rows' dγ/dβ, and the block sums are added in block order, so the result does not depend on the thread count.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        Span<T> dx, bool accumulateDx, Span<T> dx2, bool accumulateDx2, Span<T> dgamma, Span<T> dbeta, int rows, int d)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool affine = gamma.Length > 0, wantDx = dx.Length > 0, wantDx2 = dx2.Length > 0, wantG = dgamma.Length > 0, wantB = dbeta.Length > 0;
        if (!wantDx && wantDx2) throw new ArgumentException("LayerNorm backward: dx2 needs dx.");
        int blocks = (rows + BlockRows - 1) / BlockRows;
        // per block: [dγ partial (d) | dβ partial (d)]
        var partial = wantG || wantB ? System.Buffers.ArrayPool<T>.Shared.Rent(blocks * 2 * d) : null;
        try
        {
            fixed (T* pdy = dy) fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pm = mean) fixed (T* pr = rstd)
            fixed (T* pdx = dx) fixed (T* pdx2 = dx2) fixed (T* ppart = partial)
            {
                T* ady = pdy, ax = px, ag = pg, am = pm, ar = pr, adx = pdx, adx2 = pdx2, apart = ppart;
                Par.For(blocks, 1, (b0, b1) =>
                {
                    var nBuf = System.Buffers.ArrayPool<T>.Shared.Rent(2 * d);
                    var n = nBuf.AsSpan(0, d);
                    var dn = nBuf.AsSpan(d, d);
                    T inv = T.One / T.CreateTruncating(d);
                    for (int blk = b0; blk < b1; blk++)
                    {
                        var pgam = apart == null ? default : new Span<T>(apart + (long)blk * 2 * d, d);
                        var pbet = apart == null ? default : new Span<T>(apart + (long)blk * 2 * d + d, d);
                        if (wantG) pgam.Clear();
                        if (wantB) pbet.Clear();
                        for (int r = blk * BlockRows, rEnd = Math.Min(rows, r + BlockRows); r < rEnd; r++)
                        {
                            long o = (long)r * d;
                            T rs = ar[r];
                            var dyr = new ReadOnlySpan<T>(ady + o, d);
                            TensorPrimitives.Subtract(new ReadOnlySpan<T>(ax + o, d), am[r], n);
                            TensorPrimitives.Multiply(n, rs, n);                     // n = (x − μ)·rstd
                            if (wantG) TensorPrimitives.FusedMultiplyAdd(dyr, n, pgam, pgam);
                            if (wantB) TensorPrimitives.Add(pbet, dyr, pbet);
                            if (!wantDx) continue;
                            if (affine) TensorPrimitives.Multiply(dyr, new ReadOnlySpan<T>(ag, d), dn); else dyr.CopyTo(dn);
                            T mDn = TensorPrimitives.Sum<T>(dn) * inv, mDnN = TensorPrimitives.Dot<T>(dn, n) * inv;
                            TensorPrimitives.MultiplyAdd(n, -mDnN, dn, n);           // n ← dn − n·mean(dn⊙n)
                            TensorPrimitives.Add(n, -mDn, n);
                            var dxr = new Span<T>(adx + o, d);
                            if (accumulateDx) TensorPrimitives.MultiplyAdd(n, rs, dxr, dxr);
                            else TensorPrimitives.Multiply(n, rs, dxr);
                            if (wantDx2)
                            {
                                var dx2r = new Span<T>(adx2 + o, d);
                                if (accumulateDx2) TensorPrimitives.MultiplyAdd(n, rs, dx2r, dx2r);
                                else TensorPrimitives.Multiply(n, rs, dx2r);
                            }
                        }
                    }
                    System.Buffers.ArrayPool<T>.Shared.Return(nBuf);
                });
                for (int blk = 0; blk < (apart == null ? 0 : blocks); blk++)
                {
                    if (wantG) TensorPrimitives.Add(dgamma, new ReadOnlySpan<T>(apart + (long)blk * 2 * d, d), dgamma);
                    if (wantB) TensorPrimitives.Add(dbeta, new ReadOnlySpan<T>(apart + (long)blk * 2 * d + d, d), dbeta);
                }
            }
        }
        finally
        {
            if (partial is not null) System.Buffers.ArrayPool<T>.Shared.Return(partial);
        }
    }
}
