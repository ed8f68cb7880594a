using System.Runtime.Intrinsics;
using Whetstone.Tensors;

namespace Whetstone.Nn;

/// <summary>Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_ semantics).</summary>
public static class GradClip
{
    /// <summary>
    /// Global L2 norm of all gradients (parameters without a gradient are skipped), accumulated in double.
    /// </summary>
    public static double GlobalNorm(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double sum = 0;
        foreach (var p in parameters)
            if (p.Grad is { } g) sum += SumOfSquares(g.Span);
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Scales all gradients by maxNorm / (norm + 1e-6) when the global L2 norm exceeds <paramref name="maxNorm"/>,
    /// and returns the norm before clipping (as clip_grad_norm_). A non-finite norm leaves the gradients unchanged
    /// unless <paramref name="errorIfNonFinite"/>, which throws.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, bool errorIfNonFinite = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var ps = parameters.Where(p => p.Grad is not null).ToList();
        double norm = GlobalNorm(ps);
        if (!double.IsFinite(norm))
        {
            if (errorIfNonFinite) throw new InvalidOperationException($"The total gradient norm is {norm}; gradients cannot be clipped.");
            return norm;
        }
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1)
            foreach (var p in ps)
            {
                var s = p.Grad!.Span;
                System.Numerics.Tensors.TensorPrimitives.Multiply(s, (float)coef, s);
            }
        return norm;
    }

    /// <summary>Clamps every gradient element to [−clip, clip].</summary>
    public static void ClipGradValue(IEnumerable<Tensor> parameters, float clip)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var p in parameters)
            if (p.Grad is { } g)
            {
                var s = g.Span;
                System.Numerics.Tensors.TensorPrimitives.Clamp(s, -clip, clip, s);
            }
    }

    /// <summary>Σ x² with every product and sum in double (floats widened before squaring).</summary>
    internal static double SumOfSquares(ReadOnlySpan<float> x)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= 8)
        {
            var acc0 = Vector256<double>.Zero;
            var acc1 = Vector256<double>.Zero;
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref r, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                acc0 += lo * lo;
                acc1 += hi * hi;
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; i < x.Length; i++) sum += (double)x[i] * x[i];
        return sum;
    }
}
