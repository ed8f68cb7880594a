using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors.Tests;

public class BatchNormTests
{
    private static double[] Fwd(bool training, int n, int c, int s, double[] x, double[] gamma, double[] beta, double[] rm, double[] rv)
    {
        var y = new double[x.Length];
        var rstd = new double[c];
        if (training) BatchNorm.ForwardTrain<double>(n, c, s, x, gamma, beta, 1e-5, y, new double[c], new double[c], rstd);
        else BatchNorm.ForwardEval<double>(n, c, s, x, gamma, beta, rm, rv, 1e-5, y, rstd);
        return y;
    }

    private static (double[] mean, double[] rstd) Stats(bool training, int n, int c, int s, double[] x, double[] rm, double[] rv)
    {
        var mean = new double[c]; var rstd = new double[c];
        if (training) BatchNorm.ForwardTrain<double>(n, c, s, x, default, default, 1e-5, new double[x.Length], mean, new double[c], rstd);
        else { rm.CopyTo(mean, 0); BatchNorm.ForwardEval<double>(n, c, s, x, default, default, rm, rv, 1e-5, new double[x.Length], rstd); }
        return (mean, rstd);
    }

    [Theory]
    [InlineData(true, 3, 4, 5)]     // BatchNorm2d-like (S = H·W = 5)
    [InlineData(true, 7, 3, 1)]     // BatchNorm1d on (N, C)
    [InlineData(false, 3, 4, 5)]
    [InlineData(false, 7, 3, 1)]
    public void KernelGradientsInDouble(bool training, int n, int c, int s)
    {
        var x = GradCheck.RandomDoubles(n * c * s, 1, 2).Select(v => v + 3).ToArray();   // non-zero mean
        var gamma = GradCheck.RandomDoubles(c, 2); var beta = GradCheck.RandomDoubles(c, 3);
        var rm = GradCheck.RandomDoubles(c, 4); var rv = GradCheck.RandomDoubles(c, 5).Select(v => 0.5 + v * v).ToArray();

        GradCheck.Kernel(x, v => Fwd(training, n, c, s, v, gamma, beta, rm, rv), (v, _, dy) =>
        {
            var (mean, rstd) = Stats(training, n, c, s, v, rm, rv);
            var dx = new double[v.Length];
            BatchNorm.Backward<double>(training, n, c, s, v, dy, gamma, mean, rstd, dx, false, default, false, default, false);
            return dx;
        });
        GradCheck.Kernel(gamma, gm => Fwd(training, n, c, s, x, gm, beta, rm, rv), (gm, _, dy) =>
        {
            var (mean, rstd) = Stats(training, n, c, s, x, rm, rv);
            var dg = new double[c];
            BatchNorm.Backward<double>(training, n, c, s, x, dy, gm, mean, rstd, default, false, dg, false, default, false);
            return dg;
        });
        GradCheck.Kernel(beta, bt => Fwd(training, n, c, s, x, gamma, bt, rm, rv), (bt, _, dy) =>
        {
            var (mean, rstd) = Stats(training, n, c, s, x, rm, rv);
            var db = new double[c];
            BatchNorm.Backward<double>(training, n, c, s, x, dy, gamma, mean, rstd, default, false, default, false, db, false);
            return db;
        });
    }

    [Fact]
    public void TrainingForwardAndRunningStatsMatchReference()
    {
        int n = 3, c = 2, h = 4, w = 5, s = h * w, m = n * s;
        var x = GradCheck.Random(1, n, c, h, w) * 2f + 5f;
        var gamma = GradCheck.Random(2, c); var beta = GradCheck.Random(3, c);
        var rm = Tensor.From([0.5f, -1f], c); var rv = Tensor.From([2f, 0.25f], c);
        var y = Tensor.BatchNorm(x, gamma, beta, rm, rv, training: true, momentum: 0.1f, eps: 1e-5f);
        var xs = x.ToArray(); var ys = y.ToArray();
        for (int ch = 0; ch < c; ch++)
        {
            var vals = new List<double>();
            for (int i = 0; i < n; i++) for (int k = 0; k < s; k++) vals.Add(xs[(i * c + ch) * s + k]);
            double mean = vals.Average(), var = vals.Sum(v => (v - mean) * (v - mean)) / m;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < s; k++)
                {
                    int idx = (i * c + ch) * s + k;
                    double expect = (xs[idx] - mean) / Math.Sqrt(var + 1e-5) * gamma.ToArray()[ch] + beta.ToArray()[ch];
                    Assert.True(Math.Abs(ys[idx] - expect) < 1e-4, $"y[{idx}] {ys[idx]} vs {expect}");
                }
            double rm0 = ch == 0 ? 0.5 : -1, rv0 = ch == 0 ? 2 : 0.25;
            Assert.Equal(0.9 * rm0 + 0.1 * mean, rm.ToArray()[ch], 4);
            Assert.Equal(0.9 * rv0 + 0.1 * var * m / (m - 1), rv.ToArray()[ch], 4);   // unbiased in the running estimate
        }
    }

    [Fact]
    public void EvalUsesRunningStatistics()
    {
        var x = GradCheck.Random(1, 4, 3);
        var rm = Tensor.From([1f, 2, 3], 3); var rv = Tensor.From([4f, 1, 0.25f], 3);
        var y = Tensor.BatchNorm(x, null, null, rm, rv, training: false, eps: 0);
        var xs = x.ToArray(); var ys = y.ToArray();
        double[] mu = [1, 2, 3], sd = [2, 1, 0.5];
        for (int i = 0; i < xs.Length; i++) Assert.Equal((xs[i] - mu[i % 3]) / sd[i % 3], ys[i], 5);
        Assert.Equal([1f, 2, 3], rm.ToArray());   // untouched in eval
    }

    [Fact]
    public void LargeMeanFloatStatisticsStayAccurate()
    {
        var x = GradCheck.Random(1, 16, 4, 8, 8) + 1000f;
        var y = Tensor.BatchNorm(x, null, null, null, null, training: true);
        var ys = y.ToArray();
        // each channel of the output has mean 0 and (biased) variance 1
        for (int ch = 0; ch < 4; ch++)
        {
            var vals = Enumerable.Range(0, 16).SelectMany(i => Enumerable.Range(0, 64).Select(k => (double)ys[(i * 4 + ch) * 64 + k])).ToArray();
            Assert.True(Math.Abs(vals.Average()) < 1e-3);
            Assert.True(Math.Abs(vals.Select(v => v * v).Average() - 1) < 2e-3);
        }
    }

    [Fact]
    public void OpGradients()
    {
        GradCheck.Op(t => Tensor.BatchNorm(t[0], t[1], t[2], null, null, training: true),
            [GradCheck.Random(1, 3, 4, 3, 2), GradCheck.Random(2, 4), GradCheck.Random(3, 4)], h: 1e-2f, tol: 3e-2);
        GradCheck.Op(t => Tensor.BatchNorm(t[0], t[1], t[2], null, null, training: true),
            [GradCheck.Random(4, 6, 3), GradCheck.Random(5, 3), GradCheck.Random(6, 3)], h: 1e-2f, tol: 3e-2);
        var rm = Tensor.From([0.1f, -0.2f, 0.3f], 3); var rv = Tensor.From([1.5f, 0.7f, 2f], 3);
        GradCheck.Op(t => Tensor.BatchNorm(t[0], t[1], t[2], rm, rv, training: false),
            [GradCheck.Random(7, 2, 3, 2, 2), GradCheck.Random(8, 3), GradCheck.Random(9, 3)]);
    }

    [Fact]
    public void FrozenAffineGetsNoGradientAndErrorsNameShapes()
    {
        var x = GradCheck.Random(1, 4, 3, 2, 2); x.RequiresGrad = true;
        var gamma = Tensor.Ones(3); var beta = Tensor.Zeros(3);
        Tensor.BatchNorm(x, gamma, beta, null, null, training: true).Square().Sum().Backward();
        Assert.Null(gamma.Grad); Assert.Null(beta.Grad); Assert.NotNull(x.Grad);

        var e = Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(Tensor.Zeros(2, 3, 4, 4), Tensor.Ones(4), null, null, null, true));
        Assert.Contains("[2, 3, 4, 4]", e.Message); Assert.Contains("[4]", e.Message);
        Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(Tensor.Zeros(2, 3), null, null, null, null, training: false));
    }
}
