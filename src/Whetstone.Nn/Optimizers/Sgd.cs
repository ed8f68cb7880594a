using System.Runtime.Intrinsics;
using Whetstone.Tensors;

namespace Whetstone.Nn.Optimizers;

/// <summary>
/// SGD with PyTorch's semantics (torch.optim.SGD): d = g + wd·p; with momentum μ the buffer is b = d on the first step,
/// then b ← μ·b + (1 − dampening)·d; the step direction is d + μ·b (Nesterov) or b; finally p ← p − lr·d.
/// One fused vectorised pass per parameter.
/// </summary>
public sealed class Sgd : Optimizer
{
    public double Momentum { get; set; }
    public double Dampening { get; set; }
    public bool Nesterov { get; set; }

    public Sgd(IEnumerable<ParamGroup> groups, double lr = 1e-3, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : base(groups, lr, weightDecay)
    {
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening.");
        Momentum = momentum; Dampening = dampening; Nesterov = nesterov;
    }

    /// <summary>One group with every trainable parameter of <paramref name="model"/>.</summary>
    public Sgd(Module model, double lr = 1e-3, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : this(OneGroup((model ?? throw new ArgumentNullException(nameof(model))).NamedTrainableParameters()), lr, momentum, dampening, weightDecay, nesterov) { }

    private protected override string[] BufferNames { get; } = ["momentum_buffer"];

    private protected override unsafe void Update(Tensor param, Tensor grad, ParamState state, double lr, double weightDecay)
    {
        float flr = (float)lr, wd = (float)weightDecay, mu = (float)Momentum, damp = (float)(1 - Dampening);
        bool first = false;
        Tensor? buf = null;
        if (Momentum != 0)
        {
            first = state.Buffers[0] is null;
            buf = state.Buffers[0] ??= NewBuffer(param);
        }
        int n = param.Size;
        fixed (float* pa = param.RawArray) fixed (float* ga = grad.RawArray)
        {
            float* p = pa + param.Offset, g = ga + grad.Offset;
            if (buf is null) { Plain(p, g, n, flr, wd); return; }
            fixed (float* b = buf.RawArray) WithMomentum(p, g, b, n, flr, wd, mu, damp, first, Nesterov);
        }
    }

    private static unsafe void Plain(float* p, float* g, int n, float lr, float wd)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vlr = Vector256.Create(lr); var vwd = Vector256.Create(wd);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                var d = Vector256.Load(g + i) + vwd * pv;
                Vector256.Store(pv - vlr * d, p + i);
            }
        }
        for (; i < n; i++) { float d = g[i] + wd * p[i]; p[i] -= lr * d; }
    }

    private static unsafe void WithMomentum(float* p, float* g, float* b, int n, float lr, float wd, float mu, float damp, bool first, bool nesterov)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vlr = Vector256.Create(lr); var vwd = Vector256.Create(wd); var vmu = Vector256.Create(mu); var vdamp = Vector256.Create(damp);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                var d = Vector256.Load(g + i) + vwd * pv;
                var bv = first ? d : Vector256.Load(b + i) * vmu + vdamp * d;
                Vector256.Store(bv, b + i);
                d = nesterov ? d + vmu * bv : bv;
                Vector256.Store(pv - vlr * d, p + i);
            }
        }
        for (; i < n; i++)
        {
            float d = g[i] + wd * p[i];
            float bi = first ? d : b[i] * mu + damp * d;
            b[i] = bi;
            d = nesterov ? d + mu * bi : bi;
            p[i] -= lr * d;
        }
    }
}
