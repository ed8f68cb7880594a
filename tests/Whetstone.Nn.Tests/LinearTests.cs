using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;

namespace Whetstone.Nn.Tests;

public class LinearTests
{
    [Fact]
    public void DefaultInitIsUniformWithinOneOverSqrtFanIn()
    {
        var l = new Linear(64, 32, rng: new Rng(5));
        Assert.Equal([32, 64], l.Weight.Shape.ToArray());
        Assert.Equal([32], l.Bias!.Shape.ToArray());
        float bound = 1 / MathF.Sqrt(64);
        var w = l.Weight.ToArray();
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.All(l.Bias.ToArray(), v => Assert.InRange(v, -bound, bound));
        // uniform: variance ≈ bound²/3, max close to the bound
        double var = w.Select(v => (double)v * v).Average();
        Assert.InRange(var, bound * bound / 3 * 0.9, bound * bound / 3 * 1.1);
        Assert.True(w.Max() > bound * 0.95f);
        // same seed, same weights
        Assert.Equal(w, new Linear(64, 32, rng: new Rng(5)).Weight.ToArray());
        Assert.True(l.Weight.RequiresGrad);
        Assert.Null(new Linear(3, 2, bias: false).Bias);
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var rng = new Rng(11);
        var l = new Linear(5, 4, rng: rng);
        var x = Tensor.Randn(rng, [3, 5]);
        x.RequiresGrad = true;
        var wOut = Tensor.Randn(rng, [3, 4]);
        double Loss()
        {
            using var _ = Graph.NoGrad();
            var y = l.Forward(x).ToArray(); var w = wOut.ToArray();
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)y[i] * w[i];
            return s;
        }
        (l.Forward(x) * wOut).Sum().Backward();
        foreach (var t in new[] { l.Weight, l.Bias!, x })
        {
            var analytic = t.Grad!.ToArray();
            var s = t.Span;
            const float h = 1e-2f;
            for (int i = 0; i < s.Length; i++)
            {
                float keep = s[i];
                s[i] = keep + h; double lp = Loss();
                s[i] = keep - h; double lm = Loss();
                s[i] = keep;
                double num = (lp - lm) / (2 * h);
                Assert.True(Math.Abs(num - analytic[i]) <= 2e-3 * Math.Max(1, Math.Abs(num)), $"{t.Name ?? "x"}[{i}]: analytic {analytic[i]}, numeric {num}");
            }
        }
    }

    [Fact]
    public void ForwardIsXWTransposePlusBias()
    {
        var l = new Linear(TestUtil.Param([1, 2, 3, 4, 5, 6], 2, 3), TestUtil.Param([10, 20], 2));
        var y = l.Forward(Tensor.From([1f, 0, -1], 1, 3)).ToArray();
        Assert.Equal([1 - 3 + 10f, 4 - 6 + 20f], y);
    }
}
