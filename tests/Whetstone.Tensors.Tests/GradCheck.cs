using Whetstone.Tensors;

namespace Whetstone.Tensors.Tests;

/// <summary>
/// Finite-difference gradient checks.
/// <see cref="Kernel"/> checks a span-level forward/backward pair in double precision (tight tolerance);
/// <see cref="Op"/> checks an autograd op end to end in float32 (central differences, looser tolerance),
/// which catches wiring mistakes (wrong axis, missing broadcast reduction, forgotten accumulation).
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// <paramref name="forward"/>(x) → y; <paramref name="backward"/>(x, y, dy) → dx. Compares dx with
    /// (L(x+h) − L(x−h)) / 2h for L = Σ dy·y, in double.
    /// </summary>
    public static void Kernel(double[] x, Func<double[], double[]> forward, Func<double[], double[], double[], double[]> backward,
        int seed = 1, double h = 1e-6, double tol = 1e-6)
    {
        var rng = new Rng((ulong)seed);
        var y = forward(x);
        var dy = new double[y.Length];
        for (int i = 0; i < dy.Length; i++) dy[i] = rng.NextNormal();
        var dx = backward(x, y, dy);
        Assert.Equal(x.Length, dx.Length);
        double worst = 0; int worstAt = -1;
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h; double lp = Dot(forward(x), dy);
            x[i] = keep - h; double lm = Dot(forward(x), dy);
            x[i] = keep;
            double num = (lp - lm) / (2 * h);
            double err = Math.Abs(num - dx[i]) / Math.Max(1, Math.Abs(num));
            if (err > worst) { worst = err; worstAt = i; }
        }
        Assert.True(worst <= tol, $"gradient mismatch at {worstAt}: analytic {(worstAt >= 0 ? dx[worstAt] : 0)}, max rel err {worst:E2} > {tol:E1}");
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>
    /// Checks the autograd gradients of <paramref name="f"/> with respect to every input, in float32:
    /// L = Σ w·f(inputs) with fixed random w; numeric derivative by central differences with step h.
    /// </summary>
    public static void Op(Func<Tensor[], Tensor> f, Tensor[] inputs, float h = 1e-2f, double tol = 2e-2, int seed = 7)
    {
        foreach (var t in inputs) t.RequiresGrad = true;
        var rng = new Rng((ulong)seed);
        var y0 = f(inputs);
        var w = Tensor.Randn(rng, y0.Shape.ToArray());
        var loss = (y0 * w).Sum();
        loss.Backward();
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            var analytic = x.Grad?.ToArray() ?? new float[x.Size];
            var data = x.Span;
            for (int i = 0; i < data.Length; i++)
            {
                float keep = data[i];
                double lp, lm;
                using (Autograd.Graph.NoGrad())
                {
                    data[i] = keep + h; lp = Dot(f(inputs), w);
                    data[i] = keep - h; lm = Dot(f(inputs), w);
                }
                data[i] = keep;
                double num = (lp - lm) / (2 * h);
                double err = Math.Abs(num - analytic[i]) / Math.Max(1, Math.Abs(num));
                Assert.True(err <= tol, $"input {k} element {i}: analytic {analytic[i]}, numeric {num}, rel err {err:E2}");
            }
        }
    }

    private static double Dot(Tensor a, Tensor b)
    {
        var x = a.ToArray(); var y = b.ToArray();
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * y[i];
        return s;
    }

    public static double[] RandomDoubles(int n, int seed = 3, double scale = 1)
    {
        var rng = new Rng((ulong)seed);
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = scale * rng.NextNormal();
        return a;
    }

    public static Tensor Random(int seed, params int[] shape) => Tensor.Randn(new Rng((ulong)seed), shape);
}
