using System.Numerics.Tensors;

namespace Whetstone.Tensors.Kernels;

/// <summary>Reductions over the middle axis of a contiguous [outer, R, inner] block.</summary>
internal static class Reduce
{
    /// <summary>y[o, i] = Σ_r x[o, r, i].</summary>
    public static void Sum<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int r, int inner) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            var dst = y.Slice(o * inner, inner);
            if (inner == 1) { dst[0] = TensorPrimitives.Sum(x.Slice(o * r, r)); continue; }
            dst.Clear();
            for (int k = 0; k < r; k++) TensorPrimitives.Add(dst, x.Slice((o * r + k) * inner, inner), dst);
        }
    }

    /// <summary>y[o, i] = max_r x[o, r, i], with the first index of the maximum.</summary>
    public static void Max<T>(ReadOnlySpan<T> x, Span<T> y, Span<int> arg, int outer, int r, int inner) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                T m = x[o * r * inner + i];
                for (int k = 1; k < r; k++)
                {
                    T v = x[(o * r + k) * inner + i];
                    if (v > m || (T.IsNaN(v) && !T.IsNaN(m))) { m = v; best = k; }
                }
                y[o * inner + i] = m;
                arg[o * inner + i] = best;
            }
    }
}
