using System.Numerics;
using System.Numerics.Tensors;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Root-mean-square normalisation over the last axis of x (R, D), as Llama-family models use it:
/// y = x·rstd·γ with rstd = 1/√(mean(x²) + ε) (no mean subtraction, no bias).
/// </summary>
internal static unsafe class RmsNormKernel
{
    /// <summary>Rows per block of the backward pass: γ partial sums are per block, then added in block order.</summary>
    internal const int BlockRows = 32;

    /// <summary>y = x·rstd·γ (γ empty: no scale); rstd (R) is written for backward.</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, Span<T> y, Span<T> rstd, int rows, int d, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != (long)rows * d || y.Length != x.Length || rstd.Length < rows) throw new ArgumentException("RmsNorm: span sizes do not match (R, D).");
        if (gamma.Length != 0 && gamma.Length != d) throw new ArgumentException($"RmsNorm: weight has {gamma.Length} elements, expected {d}.");
        bool affine = gamma.Length > 0;
        fixed (T* px = x) fixed (T* pg = gamma) fixed (T* py = y) fixed (T* pr = rstd)
        {
            T* ax = px, ag = pg, ay = py, ar = pr;
            Par.For(rows, 8, (s, e) =>
            {
                T invD = T.One / T.CreateTruncating(d), e0 = T.CreateTruncating(eps);
                for (int r = s; r < e; r++)
                {
                    long o = (long)r * d;
                    var xr = new ReadOnlySpan<T>(ax + o, d);
                    var yr = new Span<T>(ay + o, d);
                    T rs = T.One / T.Sqrt(TensorPrimitives.SumOfSquares(xr) * invD + e0);
                    ar[r] = rs;
                    TensorPrimitives.Multiply(xr, rs, yr);
                    if (affine) TensorPrimitives.Multiply(yr, new ReadOnlySpan<T>(ag, d), yr);
                }
            });
        }
    }

    /// <summary>
    /// With n = x·rstd and dn = dy⊙γ: dx (+)= rstd·(dn − n·mean(dn⊙n)); dγ += Σ_r dy⊙n. Empty spans skip a gradient.
    /// The γ sums are per block of <see cref="BlockRows"/> rows, added in block order (independent of the thread count).
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> rstd,
        Span<T> dx, bool accumulateDx, Span<T> dgamma, int rows, int d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool affine = gamma.Length > 0, wantDx = dx.Length > 0, wantG = dgamma.Length > 0;
        int blocks = (rows + BlockRows - 1) / BlockRows;
        var partial = wantG ? System.Buffers.ArrayPool<T>.Shared.Rent(blocks * d) : null;
        try
        {
            fixed (T* pdy = dy) fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pr = rstd) fixed (T* pdx = dx) fixed (T* ppart = partial)
            {
                T* ady = pdy, ax = px, ag = pg, ar = pr, adx = pdx, apart = ppart;
                Par.For(blocks, 1, (b0, b1) =>
                {
                    var buf = System.Buffers.ArrayPool<T>.Shared.Rent(2 * d);
                    var n = buf.AsSpan(0, d);
                    var dn = buf.AsSpan(d, d);
                    T inv = T.One / T.CreateTruncating(d);
                    for (int blk = b0; blk < b1; blk++)
                    {
                        var pgam = apart == null ? default : new Span<T>(apart + (long)blk * d, d);
                        if (wantG) pgam.Clear();
                        for (int r = blk * BlockRows, rEnd = Math.Min(rows, r + BlockRows); r < rEnd; r++)
                        {
                            long o = (long)r * d;
                            T rs = ar[r];
                            var dyr = new ReadOnlySpan<T>(ady + o, d);
                            TensorPrimitives.Multiply(new ReadOnlySpan<T>(ax + o, d), rs, n);   // n = x·rstd
                            if (wantG) TensorPrimitives.FusedMultiplyAdd(dyr, n, pgam, pgam);
                            if (!wantDx) continue;
                            if (affine) TensorPrimitives.Multiply(dyr, new ReadOnlySpan<T>(ag, d), dn); else dyr.CopyTo(dn);
                            T m = TensorPrimitives.Dot<T>(dn, n) * inv;
                            TensorPrimitives.MultiplyAdd(n, -m, dn, n);                         // n ← dn − n·mean(dn⊙n)
                            var dxr = new Span<T>(adx + o, d);
                            if (accumulateDx) TensorPrimitives.MultiplyAdd(n, rs, dxr, dxr);
                            else TensorPrimitives.Multiply(n, rs, dxr);
                        }
                    }
                    System.Buffers.ArrayPool<T>.Shared.Return(buf);
                });
                for (int blk = 0; blk < (apart == null ? 0 : blocks); blk++)
                    TensorPrimitives.Add(dgamma, new ReadOnlySpan<T>(apart + (long)blk * d, d), dgamma);
            }
        }
        finally
        {
            if (partial is not null) System.Buffers.ArrayPool<T>.Shared.Return(partial);
        }
    }
}
