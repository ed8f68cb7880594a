namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Cross-entropy over logits (N, C) with integer targets, PyTorch semantics:
/// per row, nll = −w[y]·logp[y], smooth = −Σ_c w[c]·logp[c];
/// loss = (1−ε)·Σ nll / Z + (ε/C)·Σ smooth / Z, with Z = Σ w[y] over non-ignored rows ("mean") or 1 ("sum").
/// </summary>
internal static class CrossEntropyKernel
{
    /// <summary>Returns the loss; writes softmax probabilities into <paramref name="prob"/> for the backward pass.</summary>
    public static T Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, ReadOnlySpan<T> weights, int n, int c,
        int ignoreIndex, double smoothing, bool mean, Span<T> prob, out T normalizer) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Softmax.Forward(logits, prob, n, c, log: true);   // prob holds log-probabilities for now
        bool weighted = weights.Length > 0;
        T eps = T.CreateTruncating(smoothing);
        T nll = T.Zero, smooth = T.Zero, z = T.Zero;
        for (int i = 0; i < n; i++)
        {
            int y = targets[i];
            var lp = prob.Slice(i * c, c);
            if (y == ignoreIndex) continue;
            if ((uint)y >= (uint)c) throw new ArgumentOutOfRangeException(nameof(targets), $"Target {y} at row {i} is outside [0, {c}).");
            T wy = weighted ? weights[y] : T.One;
            nll -= wy * lp[y];
            z += wy;
            if (smoothing != 0)
            {
                T s = T.Zero;
                for (int j = 0; j < c; j++) s += (weighted ? weights[j] : T.One) * lp[j];
                smooth -= s;
            }
        }
        for (int i = 0; i < prob.Length; i++) prob[i] = T.Exp(prob[i]);
        normalizer = mean ? z : T.One;
        if (mean && z == T.Zero) return T.NaN; // every row ignored: PyTorch also returns NaN
        return ((T.One - eps) * nll + eps / T.CreateTruncating(c) * smooth) / normalizer;
    }

    /// <summary>dlogits (+)= g·[(1−ε)·w[y]·(p − onehot(y)) + (ε/C)·(p·Σw − w)] / Z; ignored rows get zero.</summary>
    public static void Backward<T>(T g, ReadOnlySpan<T> prob, ReadOnlySpan<int> targets, ReadOnlySpan<T> weights, int n, int c,
        int ignoreIndex, double smoothing, T normalizer, Span<T> dlogits, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool weighted = weights.Length > 0;
        T eps = T.CreateTruncating(smoothing);
        T wsum = T.Zero;
        if (weighted) foreach (var w in weights) wsum += w; else wsum = T.CreateTruncating(c);
        T scale = g / normalizer;
        T epsC = eps / T.CreateTruncating(c);
        for (int i = 0; i < n; i++)
        {
            int y = targets[i];
            var p = prob.Slice(i * c, c);
            var d = dlogits.Slice(i * c, c);
            if (y == ignoreIndex) { if (!accumulate) d.Clear(); continue; }
            T wy = weighted ? weights[y] : T.One;
            T a = (T.One - eps) * wy;
            for (int j = 0; j < c; j++)
            {
                T wj = weighted ? weights[j] : T.One;
                T v = a * (p[j] - (j == y ? T.One : T.Zero)) + epsC * (p[j] * wsum - wj);
                v *= scale;
                d[j] = accumulate ? d[j] + v : v;
            }
        }
    }
}
