using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors.Tests;

[CollectionDefinition("pool-exclusive", DisableParallelization = true)]
public sealed class PoolExclusive;

/// <summary>Engine-level properties of a training loop: flat memory and bit-exact determinism.</summary>
[Collection("pool-exclusive")]
public class TrainingLoopTests
{
    /// <summary>A two-layer MLP with attention-free parts of a transformer block, trained by plain SGD on raw tensors.</summary>
    private static float[] Train(int steps, int threads, out long pooledAfterWarmup, out long pooledAtEnd)
    {
        int saved = Par.Threads;
        Par.Threads = threads;
        try
        {
            var rng = new Rng(42);
            var w1 = Tensor.Persistent(24, 37); var b1 = Tensor.Persistent(37);
            var w2 = Tensor.Persistent(37, 5); var g = Tensor.Persistent(37);
            foreach (var (t, s) in new[] { (w1, 0.2f), (b1, 0.1f), (w2, 0.2f) })
                for (int i = 0; i < t.Size; i++) t.Span[i] = (float)(s * rng.NextNormal());
            g.Span.Fill(1f);
            var ps = new[] { w1, b1, w2, g };
            foreach (var p in ps) p.RequiresGrad = true;
            var x = Tensor.Persistent(64, 24);
            for (int i = 0; i < x.Size; i++) x.Span[i] = (float)rng.NextNormal();
            var y = new int[64];
            for (int i = 0; i < 64; i++) y[i] = i % 5;

            var losses = new float[steps];
            pooledAfterWarmup = 0;
            for (int step = 0; step < steps; step++)
            {
                using (new TensorScope())
                {
                    foreach (var p in ps) p.ZeroGrad();
                    var h = Tensor.LayerNorm((Tensor.MatMul(x, w1) + b1).Gelu(), g, null);
                    var loss = Tensor.CrossEntropy(Tensor.MatMul(h.Dropout(0.1f, rng), w2), y, labelSmoothing: 0.05f);
                    loss.Backward();
                    losses[step] = loss.Item();
                    using (Autograd.Graph.NoGrad())
                        foreach (var p in ps) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(p.Grad!.Span, -0.1f, p.Span, p.Span);
                }
                if (step == 2) pooledAfterWarmup = BufferPool.PooledBytes;
            }
            pooledAtEnd = BufferPool.PooledBytes;
            return losses;
        }
        finally { Par.Threads = saved; }
    }

    [Fact]
    public void SameSeedAndThreadsGiveBitIdenticalLosses()
    {
        var a = Train(20, 2, out _, out _);
        var b = Train(20, 2, out _, out _);
        Assert.Equal(a, b);
        Assert.True(a[^1] < a[0] * 0.8, $"loss should fall: {a[0]} → {a[^1]}");
    }

    [Fact]
    public void MemoryStaysFlatOverManySteps()
    {
        // This collection runs alone, so the pool's counters are this test's. Every step returns its activations
        // and gradients to the pool and the next step reuses exactly those buffers: nothing grows.
        long liveBefore = BufferPool.LiveBytes;
        Train(1000, 1, out long warm, out long end);
        Assert.Equal(warm, end);
        Assert.Equal(liveBefore, BufferPool.LiveBytes);
    }
}
