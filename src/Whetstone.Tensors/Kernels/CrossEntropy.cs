using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Cross-entropy over logits (N, C) with integer targets, PyTorch semantics:
/// per row, nll = −w[y]·logp[y], smooth = −Σ_c w[c]·logp[c];
/// loss = (1−ε)·Σ nll / Z + (ε/C)·Σ smooth / Z, with Z = Σ w[y] over non-ignored rows ("mean") or 1 ("sum").
/// Only each row's log-sum-exp is kept for backward (N values, not N×C probabilities): a language model's
/// vocabulary-wide logits are the largest tensor of its step, and the gradient recomputes exp(x − lse) from them.
/// Rows are processed in parallel; the per-row terms are summed in row order, so the loss does not depend on the
/// thread count.
/// </summary>
internal static unsafe class CrossEntropyKernel
{
    private const int RowGrain = 4;

    /// <summary>Returns the loss; writes each row's log Σ exp(logits) into <paramref name="lse"/> (length N) for backward.</summary>
    public static T Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, ReadOnlySpan<T> weights, int n, int c,
        int ignoreIndex, double smoothing, bool mean, Span<T> lse, out T normalizer) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (logits.Length != (long)n * c || targets.Length != n || lse.Length != n) throw new ArgumentException("CrossEntropy: length mismatch.");
        for (int i = 0; i < n; i++)
            if (targets[i] != ignoreIndex && (uint)targets[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"Target {targets[i]} at row {i} is outside [0, {c}).");
        bool weighted = weights.Length > 0;
        T eps = T.CreateTruncating(smoothing);
        T wsum = T.Zero;
        if (weighted) foreach (var w in weights) wsum += w; else wsum = T.CreateTruncating(c);
        var nllRow = new T[n];
        var smoothRow = new T[n];
        fixed (T* px = logits) fixed (int* pt = targets) fixed (T* pw = weights) fixed (T* pl = lse)
        fixed (T* pn = nllRow) fixed (T* ps = smoothRow)
        {
            T* ax = px, aw = pw, al = pl, an = pn, asm = ps;
            int* at = pt;
            int wlen = weights.Length;
            Par.For(n, RowGrain, (s0, s1) =>
            {
                for (int i = s0; i < s1; i++)
                {
                    var row = new ReadOnlySpan<T>(ax + (long)i * c, c);
                    T l = LogSumExp(row);
                    al[i] = l;
                    int y = at[i];
                    if (y == ignoreIndex) continue;
                    T wy = wlen > 0 ? aw[y] : T.One;
                    an[i] = -wy * (row[y] - l);
                    if (smoothing != 0)
                    {
                        // −Σ_j w_j (x_j − lse) = lse·Σw − Σ_j w_j x_j
                        T dot = wlen > 0 ? TensorPrimitives.Dot(new ReadOnlySpan<T>(aw, wlen), row) : TensorPrimitives.Sum(row);
                        asm[i] = l * wsum - dot;
                    }
                }
            });
        }
        T nll = T.Zero, smooth = T.Zero, z = T.Zero;
        for (int i = 0; i < n; i++)
        {
            int y = targets[i];
            if (y == ignoreIndex) continue;
            nll += nllRow[i];
            smooth += smoothRow[i];
            z += weighted ? weights[y] : T.One;
        }
        normalizer = mean ? z : T.One;
        if (mean && z == T.Zero) return T.NaN; // every row ignored: PyTorch also returns NaN
        return ((T.One - eps) * nll + eps / T.CreateTruncating(c) * smooth) / normalizer;
    }

    /// <summary>
    /// dlogits (+)= g·[(1−ε)·w[y]·(p − onehot(y)) + (ε/C)·(p·Σw − w)] / Z with p = exp(logits − lse); ignored rows get zero.
    /// </summary>
    public static void Backward<T>(T g, ReadOnlySpan<T> logits, ReadOnlySpan<T> lse, ReadOnlySpan<int> targets, ReadOnlySpan<T> weights, int n, int c,
        int ignoreIndex, double smoothing, T normalizer, Span<T> dlogits, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool weighted = weights.Length > 0;
        T eps = T.CreateTruncating(smoothing);
        T wsum = T.Zero;
        if (weighted) foreach (var w in weights) wsum += w; else wsum = T.CreateTruncating(c);
        T scale = g / normalizer;
        T epsC = eps / T.CreateTruncating(c);
        fixed (T* px = logits) fixed (T* pl = lse) fixed (int* pt = targets) fixed (T* pw = weights) fixed (T* pd = dlogits)
        {
            T* ax = px, al = pl, aw = pw, ad = pd;
            int* at = pt;
            Par.For(n, RowGrain, (s0, s1) =>
            {
                for (int i = s0; i < s1; i++)
                {
                    int y = at[i];
                    T* x = ax + (long)i * c, d = ad + (long)i * c;
                    if (y == ignoreIndex) { if (!accumulate) new Span<T>(d, c).Clear(); continue; }
                    T a = (T.One - eps) * (weighted ? aw[y] : T.One);
                    if (!weighted && typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated)
                    {
                        // d = scale·[(a + ε/C·C)·p − ε/C] − scale·a·[j = y]
                        float coef = float.CreateTruncating(scale * (a + epsC * wsum)), off = float.CreateTruncating(scale * epsC);
                        RowGradF((float*)x, float.CreateTruncating(al[i]), coef, off, (float*)d, c, accumulate);
                        d[y] -= scale * a;
                        continue;
                    }
                    for (int j = 0; j < c; j++)
                    {
                        T p = T.Exp(x[j] - al[i]);
                        T wj = weighted ? aw[j] : T.One;
                        T v = (a * (p - (j == y ? T.One : T.Zero)) + epsC * (p * wsum - wj)) * scale;
                        d[j] = accumulate ? d[j] + v : v;
                    }
                }
            });
        }
    }

    private static T LogSumExp<T>(ReadOnlySpan<T> row) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated && row.Length >= 16)
            fixed (T* p = row) return T.CreateTruncating(LogSumExpF((float*)p, row.Length));
        T max = TensorPrimitives.Max(row);
        if (T.IsInfinity(max)) return max;
        T sum = T.Zero;
        foreach (var v in row) sum += T.Exp(v - max);
        return max + T.Log(sum);
    }

    private static float LogSumExpF(float* x, int n)
    {
        int i;
        float max = Softmax.MaxF(x, n);
        if (float.IsInfinity(max)) return max;
        var vm = Vector512.Create(max);
        var vsum = Vector512<float>.Zero;
        for (i = 0; i <= n - 16; i += 16) vsum += MathX.Exp(Vector512.Load(x + i) - vm);
        float sum = Vector512.Sum(vsum);
        for (; i < n; i++) sum += MathF.Exp(x[i] - max);
        return max + MathF.Log(sum);
    }

    /// <summary>d (+)= coef·exp(x − lse) − off over one row.</summary>
    private static void RowGradF(float* x, float lse, float coef, float off, float* d, int n, bool accumulate)
    {
        int j = 0;
        var vl = Vector512.Create(lse);
        var vc = Vector512.Create(coef);
        var vo = Vector512.Create(off);
        for (; j <= n - 16; j += 16)
        {
            var v = Vector512.FusedMultiplyAdd(MathX.Exp(Vector512.Load(x + j) - vl), vc, -vo);
            if (accumulate) v += Vector512.Load(d + j);
            Vector512.Store(v, d + j);
        }
        for (; j < n; j++)
        {
            float v = coef * MathF.Exp(x[j] - lse) - off;
            d[j] = accumulate ? d[j] + v : v;
        }
    }
}
