namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Scaled dot-product attention for one (batch, head) pair, over strided rows:
/// S = scale·Q·Kᵀ + mask; P = softmax(S); O = P·V.
/// Q (Tq, Dh), K/V (Tk, Dh), O (Tq, Dh), each with its own row stride; P (Tq, Tk) contiguous and kept for backward.
/// Causal masking hides keys j > i + (Tk − Tq); keyMask[j] == 0 hides key j. A row with every key hidden outputs zeros.
/// With dropout, <c>drop</c> (Tq, Tk) holds 0 or 1/(1−p) per probability: O = (P⊙drop)·V; P itself is kept for backward.
/// </summary>
internal static unsafe class AttentionKernel
{
    public static void Forward(float* q, int ldq, float* k, int ldk, float* v, int ldv, float* o, int ldo, float* p,
        int tq, int tk, int dh, float scale, bool causal, float* keyMask, float* drop = null, float* scratch = null)
    {
        Gemm.Run(false, true, tq, tk, dh, scale, q, ldq, k, ldk, 0f, p, tk);
        int shift = tk - tq;
        // keys a causal mask hides are not looked at
        for (int i = 0; i < tq; i++)
        {
            int visible = causal ? Math.Clamp(i + shift + 1, 0, tk) : tk;
            Softmax.RowMasked(p + (long)i * tk, keyMask, visible, tk);
        }
        if (drop != null)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, tq * tk), new ReadOnlySpan<float>(drop, tq * tk), new Span<float>(scratch, tq * tk));
            Gemm.Run(false, false, tq, dh, tk, 1f, scratch, tk, v, ldv, 0f, o, ldo);
        }
        else Gemm.Run(false, false, tq, dh, tk, 1f, p, tk, v, ldv, 0f, o, ldo);
    }

    /// <summary>
    /// dV (+)= Pᵀ·dO; dP = dO·Vᵀ; dS = P⊙(dP − rowsum(dP⊙P))·scale; dQ (+)= dS·K; dK (+)= dSᵀ·Q.
    /// A null gradient pointer skips that gradient. <paramref name="scratch"/> holds 2·Tq·Tk floats. With dropout
    /// the probabilities that met V were P⊙drop, and dP picks up the same mask.
    /// </summary>
    public static void Backward(float* q, int ldq, float* k, int ldk, float* v, int ldv, float* p, float* dout, int lddo,
        float* dq, int lddq, float betaQ, float* dk, int lddk, float betaK, float* dv, int lddv, float betaV,
        int tq, int tk, int dh, float scale, float* scratch, float* drop = null)
    {
        int n = tq * tk;
        if (dv != null)
        {
            float* pd = p;
            if (drop != null)
            {
                pd = scratch + n;
                System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, n), new ReadOnlySpan<float>(drop, n), new Span<float>(pd, n));
            }
            Gemm.Run(true, false, tk, dh, tq, 1f, pd, tk, dout, lddo, betaV, dv, lddv);
        }
        if (dq == null && dk == null) return;
        Gemm.Run(false, true, tq, tk, dh, 1f, dout, lddo, v, ldv, 0f, scratch, tk);
        if (drop != null)
            System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(scratch, n), new ReadOnlySpan<float>(drop, n), new Span<float>(scratch, n));
        for (int i = 0; i < tq; i++)
        {
            var pr = new ReadOnlySpan<float>(p + (long)i * tk, tk);
            var dr = new Span<float>(scratch + (long)i * tk, tk);
            float dot = System.Numerics.Tensors.TensorPrimitives.Dot(pr, dr);
            System.Numerics.Tensors.TensorPrimitives.Subtract(dr, dot, dr);
            System.Numerics.Tensors.TensorPrimitives.Multiply(dr, pr, dr);
        }
        if (dq != null) Gemm.Run(false, false, tq, dh, tk, scale, scratch, tk, k, ldk, betaQ, dq, lddq);
        if (dk != null) Gemm.Run(true, false, tk, dh, tq, scale, scratch, tk, q, ldq, betaK, dk, lddk);
    }
}
