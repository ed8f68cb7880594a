using System.Numerics.Tensors;

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

/// <summary>Layer normalisation over the last axis of x (R, D): y = (x − μ)·rstd·γ + β, biased variance.</summary>
internal static unsafe class LayerNormKernel
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y, Span<T> mean, Span<T> rstd, int rows, int d, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool affine = gamma.Length > 0, hasBeta = beta.Length > 0;
        fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pb = beta) fixed (T* py = y) fixed (T* pm = mean) fixed (T* pr = rstd)
        {
            T* ax = px, ag = pg, ab = pb, ay = py, am = pm, ar = pr;
            Par.For(rows, 8, (s, e) =>
            {
                for (int r = s; r < e; r++)
                {
                    var xr = new ReadOnlySpan<T>(ax + (long)r * d, d);
                    var yr = new Span<T>(ay + (long)r * d, d);
                    T mu = TensorPrimitives.Sum(xr) / T.CreateTruncating(d);
                    TensorPrimitives.Subtract(xr, mu, yr);
                    T var = TensorPrimitives.SumOfSquares<T>(yr) / T.CreateTruncating(d);
                    T rs = T.One / T.Sqrt(var + T.CreateTruncating(eps));
                    am[r] = mu; ar[r] = rs;
                    TensorPrimitives.Multiply(yr, rs, yr);
                    if (affine) TensorPrimitives.Multiply(yr, new ReadOnlySpan<T>(ag, d), yr);
                    if (hasBeta) TensorPrimitives.Add(yr, new ReadOnlySpan<T>(ab, d), yr);
                }
            });
        }
    }

    /// <summary>
    /// dx (+)= rstd·(dn − mean(dn) − n·mean(dn⊙n)) with n = (x−μ)·rstd, dn = dy⊙γ;
    /// dγ += Σ_r dy⊙n; dβ += Σ_r dy. Empty spans skip a gradient. Column sums are split by column, so the
    /// result does not depend on the thread count.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
        Span<T> dx, bool accumulateDx, Span<T> dgamma, Span<T> dbeta, int rows, int d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool affine = gamma.Length > 0, wantDx = dx.Length > 0, wantG = dgamma.Length > 0, wantB = dbeta.Length > 0;
        fixed (T* pdy = dy) fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pm = mean) fixed (T* pr = rstd)
        fixed (T* pdx = dx) fixed (T* pdg = dgamma) fixed (T* pdb = dbeta)
        {
            T* ady = pdy, ax = px, ag = pg, am = pm, ar = pr, adx = pdx, adg = pdg, adb = pdb;
            if (wantDx)
            {
                Par.For(rows, 8, (s, e) =>
                {
                    var dn = new T[d];
                    var n = new T[d];
                    T inv = T.One / T.CreateTruncating(d);
                    for (int r = s; r < e; r++)
                    {
                        long o = (long)r * d;
                        T rs = ar[r];
                        var dyr = new ReadOnlySpan<T>(ady + o, d);
                        var dxr = new Span<T>(adx + o, d);
                        if (affine) TensorPrimitives.Multiply(dyr, new ReadOnlySpan<T>(ag, d), dn); else dyr.CopyTo(dn);
                        TensorPrimitives.Subtract(new ReadOnlySpan<T>(ax + o, d), am[r], n);
                        TensorPrimitives.Multiply(n, rs, n);
                        T mDn = TensorPrimitives.Sum<T>(dn) * inv, mDnN = TensorPrimitives.Dot<T>(dn, n) * inv;
                        TensorPrimitives.MultiplyAdd(n, -mDnN, dn, n);     // n ← dn − n·mean(dn⊙n)
                        TensorPrimitives.Add(n, -mDn, n);
                        if (accumulateDx) TensorPrimitives.MultiplyAdd(n, rs, dxr, dxr);
                        else TensorPrimitives.Multiply(n, rs, dxr);
                    }
                });
            }
            if (wantG || wantB)
            {
                Par.For(d, 64, (c0, c1) =>
                {
                    int w = c1 - c0;
                    var n = new T[w];
                    var dg = wantG ? new Span<T>(adg + c0, w) : default;
                    var db = wantB ? new Span<T>(adb + c0, w) : default;
                    for (int r = 0; r < rows; r++)
                    {
                        long o = (long)r * d + c0;
                        var g = new ReadOnlySpan<T>(ady + o, w);
                        if (wantG)
                        {
                            TensorPrimitives.Subtract(new ReadOnlySpan<T>(ax + o, w), am[r], n);
                            TensorPrimitives.Multiply(n, ar[r], n);
                            TensorPrimitives.MultiplyAdd(g, n, dg, dg);
                        }
                        if (wantB) TensorPrimitives.Add(db, g, db);
                    }
                });
            }
        }
    }
}
