using System.Runtime.Intrinsics;
using Whetstone.Tensors;

namespace Whetstone.Nn.Optimizers;

/// <summary>
/// AdamW with PyTorch's exact update (torch.optim.AdamW, amsgrad off), per parameter with its own step t:
/// <code>
/// p ← p·(1 − lr·wd)                       decoupled weight decay
/// m ← m + (1−β1)·(g − m)                  (= β1·m + (1−β1)·g)
/// v ← β2·v + (1−β2)·g²
/// p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
/// </code>
/// All of it in one fused, vectorised pass over each parameter (memory bound: p, g, m, v each read once).
/// Only +, −, ×, ÷ and √ are used (no FMA), so the vector and scalar paths give bit-identical results.
/// Defaults as PyTorch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
/// </summary>
public sealed class AdamW : Optimizer
{
    public double Beta1 { get; set; }
    public double Beta2 { get; set; }
    public double Eps { get; set; }

    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(groups, lr, weightDecay)
    {
        Beta1 = beta1; Beta2 = beta2; Eps = eps;
    }

    /// <summary>One group with every trainable parameter of <paramref name="model"/>.</summary>
    public AdamW(Module model, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : this(OneGroup((model ?? throw new ArgumentNullException(nameof(model))).NamedTrainableParameters()), lr, beta1, beta2, eps, weightDecay) { }

    private protected override string[] BufferNames { get; } = ["exp_avg", "exp_avg_sq"];

    private protected override void Update(Tensor param, Tensor grad, ParamState state, double lr, double weightDecay)
    {
        var m = state.Buffers[0] ??= NewBuffer(param);
        var v = state.Buffers[1] ??= NewBuffer(param);
        long t = state.Step;
        double bc1 = 1 - Math.Pow(Beta1, t);
        double bc2 = 1 - Math.Pow(Beta2, t);
        var k = new AdamWKernel.Coefficients(
            Decay: (float)(1 - lr * weightDecay),
            OneMinusBeta1: (float)(1 - Beta1),
            Beta2: (float)Beta2,
            OneMinusBeta2: (float)(1 - Beta2),
            StepSize: (float)(lr / bc1),
            Bc2Sqrt: (float)Math.Sqrt(bc2),
            Eps: (float)Eps);
        AdamWKernel.Run(param.RawArray, param.Offset, grad.RawArray, grad.Offset, m.RawArray, v.RawArray, param.Size, k);
    }
}

internal static unsafe class AdamWKernel
{
    internal readonly record struct Coefficients(float Decay, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float StepSize, float Bc2Sqrt, float Eps);

    private const int Grain = 1 << 16;

    public static void Run(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int n, Coefficients k)
    {
        if (n <= Grain) { Chunk(p, pOff, g, gOff, m, v, 0, n, k); return; }
        Par.For(n, Grain, (s, e) => Chunk(p, pOff, g, gOff, m, v, s, e, k));
    }

    private static void Chunk(float[] pa, int pOff, float[] ga, int gOff, float[] ma, float[] va, int start, int end, Coefficients k)
    {
        fixed (float* pp = pa) fixed (float* gp = ga) fixed (float* mp = ma) fixed (float* vp = va)
            Span(pp + pOff + start, gp + gOff + start, mp + start, vp + start, end - start, k);
    }

    /// <summary>The update over n contiguous elements.</summary>
    internal static void Span(float* p, float* g, float* m, float* v, int n, Coefficients k)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var decay = Vector512.Create(k.Decay); var omb1 = Vector512.Create(k.OneMinusBeta1);
            var b2 = Vector512.Create(k.Beta2); var omb2 = Vector512.Create(k.OneMinusBeta2);
            var step = Vector512.Create(k.StepSize); var bc2 = Vector512.Create(k.Bc2Sqrt); var eps = Vector512.Create(k.Eps);
            for (; i <= n - 16; i += 16)
            {
                var gv = Vector512.Load(g + i);
                var mv = Vector512.Load(m + i);
                mv += (gv - mv) * omb1;
                var vv = Vector512.Load(v + i) * b2 + gv * gv * omb2;
                var denom = Vector512.Sqrt(vv) / bc2 + eps;
                Vector512.Store(Vector512.Load(p + i) * decay - step * (mv / denom), p + i);
                Vector512.Store(mv, m + i);
                Vector512.Store(vv, v + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var decay = Vector256.Create(k.Decay); var omb1 = Vector256.Create(k.OneMinusBeta1);
            var b2 = Vector256.Create(k.Beta2); var omb2 = Vector256.Create(k.OneMinusBeta2);
            var step = Vector256.Create(k.StepSize); var bc2 = Vector256.Create(k.Bc2Sqrt); var eps = Vector256.Create(k.Eps);
            for (; i <= n - 8; i += 8)
            {
                var gv = Vector256.Load(g + i);
                var mv = Vector256.Load(m + i);
                mv += (gv - mv) * omb1;
                var vv = Vector256.Load(v + i) * b2 + gv * gv * omb2;
                var denom = Vector256.Sqrt(vv) / bc2 + eps;
                Vector256.Store(Vector256.Load(p + i) * decay - step * (mv / denom), p + i);
                Vector256.Store(mv, m + i);
                Vector256.Store(vv, v + i);
            }
        }
        for (; i < n; i++)
        {
            float gi = g[i];
            float mi = m[i] + (gi - m[i]) * k.OneMinusBeta1;
            float vi = v[i] * k.Beta2 + gi * gi * k.OneMinusBeta2;
            float denom = MathF.Sqrt(vi) / k.Bc2Sqrt + k.Eps;
            p[i] = p[i] * k.Decay - k.StepSize * (mi / denom);
            m[i] = mi;
            v[i] = vi;
        }
    }
}
