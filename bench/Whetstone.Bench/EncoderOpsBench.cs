using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;

namespace Whetstone.Bench;

/// <summary>
/// The non-GEMM ops of one MiniLM-L6 layer step on their own (batch 32 × 128, hidden 384, 12 heads of 32, FFN 1536),
/// forward and forward + backward, best and median of N reps: the per-op view that a whole step on a shared machine
/// cannot give.
/// </summary>
internal static class EncoderOpsBench
{
    public static int Run(string[] args)
    {
        var opt = new BenchUtil.Options(args);
        int reps = opt.Int("reps", 15);
        Par.Threads = opt.Int("threads", 2);
        const int B = 32, T = 128, D = 384, H = 12, F = 1536;
        var rng = new Rng(1);
        Tensor P(params int[] shape) { using (TensorScope.Persistent()) { var t = Tensor.Randn(rng, shape); return t; } }
        var x = P(B, T, D); var r = P(B, T, D); var q = P(B, T, D); var k = P(B, T, D); var v = P(B, T, D);
        var h = P(B, T, F); var gamma = P(D); var beta = P(D);
        var w1 = P(F, D); var b1 = P(F); var w2 = P(D, F); var b2 = P(D);
        foreach (var t in new[] { x, r, q, k, v, h, gamma, beta, w1, b1, w2, b2 }) t.RequiresGrad = true;

        void Case(string name, Func<Tensor> f, bool backward)
        {
            var stats = BenchUtil.Time(() =>
            {
                using var scope = new TensorScope();
                if (!backward) { using (Graph.NoGrad()) f(); return; }
                var y = f();
                y.Backward(Tensor.Ones(y.Shape.ToArray()));
                foreach (var t in new[] { x, r, q, k, v, h, gamma, beta, w1, b1, w2, b2 }) t.ZeroGrad();
            }, reps, warmup: 3);
            BenchUtil.Emit("encoder-ops", $"minilm {name} {(backward ? "fwd+bwd" : "fwd")}", [new("ms", stats.Median), new("best_ms", stats.Best), new("threads", Par.Threads)]);
        }
        foreach (bool bwd in new[] { false, true })
        {
            Case("gelu (B,T,1536)", () => h.Gelu(), bwd);
            Case("attention 12x32", () => Tensor.MultiHeadAttention(q, k, v, H), bwd);
            Case("add_layer_norm (B,T,384)", () => Tensor.AddLayerNorm(x, r, gamma, beta), bwd);
            Case("linear 384->1536", () => Tensor.Linear(x, w1, b1), bwd);
            Case("linear 1536->384", () => Tensor.Linear(h, w2, b2), bwd);
        }
        return 0;
    }
}
