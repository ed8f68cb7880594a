using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Nn.Schedules;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Nn.Tests;

public class TrainingTests
{
    [Fact]
    public void AccumulatedMicroBatchGradientsEqualTheFullBatchGradient()
    {
        var rng = new Rng(21);
        var model = new Sequential(new Linear(3, 5, rng: rng), new Tanh(), new Linear(5, 2, rng: rng));
        var x = Tensor.Randn(rng, [8, 3]);
        var y = Tensor.Randn(rng, [8, 2]);

        using (new TensorScope()) (model.Forward(x) - y).Square().Mean().Backward();
        var full = model.Parameters().Select(p => p.Grad!.ToArray()).ToList();

        model.ZeroGrad();
        const int k = 4;
        for (int i = 0; i < k; i++)
            using (new TensorScope())
            {
                var xb = x.Narrow(0, 2 * i, 2); var yb = y.Narrow(0, 2 * i, 2);
                ((model.Forward(xb) - yb).Square().Mean() * (1f / k)).Backward();
            }
        var accumulated = model.Parameters().Select(p => p.Grad!.ToArray()).ToList();
        for (int j = 0; j < full.Count; j++)
            for (int i = 0; i < full[j].Length; i++)
                Assert.True(Math.Abs(full[j][i] - accumulated[j][i]) <= 1e-6 * Math.Max(1, Math.Abs(full[j][i])), $"param {j}[{i}]: {full[j][i]} vs {accumulated[j][i]}");
    }

    /// <summary>Two Gaussian blobs (label = which side of x₀ + x₁ = 0), logistic loss log(1 + exp(−y·z)).</summary>
    private static List<float> TrainMlp(ulong seed, int steps)
    {
        var rng = new Rng(seed);
        const int n = 64;
        var xs = new float[n * 2]; var ys = new float[n];
        for (int i = 0; i < n; i++)
        {
            float label = i % 2 == 0 ? 1 : -1;
            xs[2 * i] = label * 1.5f + (float)rng.NextNormal() * 0.5f;
            xs[2 * i + 1] = label * 1.5f + (float)rng.NextNormal() * 0.5f;
            ys[i] = label;
        }
        var x = Tensor.Persistent(n, 2); xs.CopyTo(x.Span);
        var y = Tensor.Persistent(n, 1); ys.CopyTo(y.Span);
        var model = new Sequential(new Linear(2, 16, rng: rng), new Relu(), new Linear(16, 1, rng: rng));
        var opt = new AdamW(ParamGroups.Standard(model, 0.01), lr: 0.05);
        var schedule = new WarmupCosine(2, steps, 0.1);
        var losses = new List<float>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = new TensorScope();
            model.ZeroGrad();
            var z = model.Forward(x);
            var loss = ((-(y * z)).Exp() + 1f).Log().Mean();
            loss.Backward();
            GradClip.ClipGradNorm(model.Parameters(), 5.0);
            opt.LrFactor = schedule.Factor(opt.StepCount);
            opt.Step();
            losses.Add(loss.Item());
        }
        return losses;
    }

    [Fact]
    public void TinyMlpLearnsSeparableProblemDeterministically()
    {
        var a = TrainMlp(5, 20);
        var b = TrainMlp(5, 20);
        Assert.Equal(a, b);                                  // bit-identical: same seed, same losses
        Assert.True(a[^1] < 0.1f, $"final loss {a[^1]} (first {a[0]})");
        Assert.True(a[^1] < a[0] / 4);
        Assert.NotEqual(a, TrainMlp(6, 20));
    }
}
