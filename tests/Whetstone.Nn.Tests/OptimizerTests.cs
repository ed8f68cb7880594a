using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

public class OptimizerTests
{
    private static readonly float[][] AdamGrads = [[0.1f, -0.2f, 0.3f], [-0.05f, 0.4f, 0f], [0.2f, 0.2f, -1.0f]];

    /// <summary>AdamW written out from the PyTorch documentation's algorithm, in double.</summary>
    private static double[] AdamWReference(double[] p, double[][] grads, double lr, double b1, double b2, double eps, double wd)
    {
        p = (double[])p.Clone();
        var m = new double[p.Length]; var v = new double[p.Length];
        for (int t = 1; t <= grads.Length; t++)
            for (int i = 0; i < p.Length; i++)
            {
                double g = grads[t - 1][i];
                p[i] -= lr * wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mhat = m[i] / (1 - Math.Pow(b1, t)), vhat = v[i] / (1 - Math.Pow(b2, t));
                p[i] -= lr * mhat / (Math.Sqrt(vhat) + eps);
            }
        return p;
    }

    [Fact]
    public void AdamWMatchesHandComputedSteps()
    {
        var p = TestUtil.Param([0.5f, -1.0f, 2.0f]);
        var opt = new AdamW([new ParamGroup([("p", p)])], lr: 0.01, weightDecay: 0.1);
        // Expected values: the update rule evaluated by hand in double (identical to torch.optim.AdamW in float64).
        double[][] expected =
        [
            [0.489500001000, -0.989000000500, 1.988000000333],   // step 1: p(1 − lr·wd) − lr·g/(|g|+ε)
            [0.486347130939, -0.991672035654, 1.979311418108],
            [0.479279668303, -0.995872771597, 1.981964363416],
        ];
        for (int s = 0; s < 3; s++)
        {
            TestUtil.SetGrad(p, AdamGrads[s]);
            opt.Step();
            var got = p.ToArray();
            for (int i = 0; i < 3; i++) TestUtil.AssertClose(expected[s][i], got[i], 2e-6, $"step {s + 1} [{i}]");
        }
        var reference = AdamWReference([0.5, -1.0, 2.0], AdamGrads.Select(g => g.Select(x => (double)x).ToArray()).ToArray(), 0.01, 0.9, 0.999, 1e-8, 0.1);
        for (int i = 0; i < 3; i++) TestUtil.AssertClose(reference[i], p.ToArray()[i], 2e-6);
        Assert.Equal(3, opt.StepCount);
        Assert.Equal(3, opt.StateDict().Steps["p"]);
    }

    [Theory]
    [InlineData(37)]        // vector body + scalar tail
    [InlineData(200_003)]   // split over threads
    public void AdamWVectorAndParallelPathsMatchReference(int n)
    {
        var rng = new Rng(4);
        var init = Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray();
        var grads = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray()).ToArray();
        var p = TestUtil.Param(init);
        var opt = new AdamW([new ParamGroup([("p", p)])], lr: 1e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05);
        foreach (var g in grads) { TestUtil.SetGrad(p, g); opt.Step(); }
        var reference = AdamWReference(init.Select(x => (double)x).ToArray(), grads.Select(g => g.Select(x => (double)x).ToArray()).ToArray(), 1e-3, 0.8, 0.99, 1e-6, 0.05);
        var got = p.ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(reference[i] - got[i]) < 2e-6, $"[{i}] {reference[i]} vs {got[i]}");
    }

    private static readonly float[][] SgdGrads = [[0.5f, -0.5f], [0.25f, 1.0f], [-1.0f, 0f]];

    [Fact]
    public void SgdWithMomentumDampeningAndWeightDecay()
    {
        var p = TestUtil.Param([1f, -2f]);
        var opt = new Sgd([new ParamGroup([("p", p)])], lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01);
        // d = g + 0.01·p; b₁ = d; bₜ = 0.9·b + 0.9·d; p −= 0.1·b
        // step 1: d = [0.51, −0.52] → p = [0.949, −1.948]
        // step 2: d = [0.25949, 0.98052], b = [0.459+0.233541, −0.468+0.882468] → p = [0.8797459, −1.9894468]
        double[][] expected = [[0.949, -1.948], [0.8797459, -1.9894468], [0.906625438690, -2.024958417880]];
        for (int s = 0; s < 3; s++)
        {
            TestUtil.SetGrad(p, SgdGrads[s]);
            opt.Step();
            for (int i = 0; i < 2; i++) TestUtil.AssertClose(expected[s][i], p.ToArray()[i], 1e-6, $"step {s + 1}");
        }
    }

    [Fact]
    public void SgdNesterov()
    {
        var p = TestUtil.Param([1f, -2f]);
        var opt = new Sgd([new ParamGroup([("p", p)])], lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true);
        // step 1: d = [0.51, −0.52], b = d, step d + 0.9·b = 1.9·d → p = [1 − 0.0969, −2 + 0.0988]
        double[][] expected = [[0.9031, -1.9012], [0.81257411, -2.04546772], [0.942869708191, -2.083133359332]];
        for (int s = 0; s < 3; s++)
        {
            TestUtil.SetGrad(p, SgdGrads[s]);
            opt.Step();
            for (int i = 0; i < 2; i++) TestUtil.AssertClose(expected[s][i], p.ToArray()[i], 1e-6, $"step {s + 1}");
        }
        Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([("p", p)])], momentum: 0, nesterov: true));
    }

    [Fact]
    public void PlainSgdLongVector()
    {
        var init = Enumerable.Range(0, 21).Select(i => i * 0.1f).ToArray();
        var g = Enumerable.Range(0, 21).Select(i => 1f - i * 0.05f).ToArray();
        var p = TestUtil.Param(init);
        var opt = new Sgd([new ParamGroup([("p", p)])], lr: 0.5, weightDecay: 0.2);
        TestUtil.SetGrad(p, g);
        opt.Step();
        for (int i = 0; i < 21; i++) TestUtil.AssertClose(init[i] - 0.5 * (g[i] + 0.2 * init[i]), p.ToArray()[i], 1e-6);
    }

    [Fact]
    public void ParametersWithoutGradientOrFrozenAreSkipped()
    {
        var a = TestUtil.Param([1f, 2f]);
        var b = TestUtil.Param([3f, 4f]);
        var c = TestUtil.Param([5f, 6f]);
        var opt = new AdamW([new ParamGroup([("a", a), ("b", b), ("c", c)])], lr: 0.1);
        TestUtil.SetGrad(a, [1f, 1f]);
        TestUtil.SetGrad(c, [1f, 1f]);
        c.RequiresGrad = false;
        opt.Step();
        Assert.NotEqual([1f, 2f], a.ToArray());
        Assert.Equal([3f, 4f], b.ToArray());
        Assert.Equal([5f, 6f], c.ToArray());
        Assert.Equal(["a"], opt.StateDict().Steps.Keys);
    }

    [Fact]
    public void GroupLearningRatesScalesAndScheduleFactorCombine()
    {
        var a = TestUtil.Param([0f]);
        var b = TestUtil.Param([0f]);
        var c = TestUtil.Param([0f]);
        var opt = new Sgd([new ParamGroup([("a", a)]), new ParamGroup([("b", b)], lr: 0.5), new ParamGroup([("c", c)], lrScale: 10)], lr: 0.1);
        opt.LrFactor = 0.5;
        foreach (var p in new[] { a, b, c }) TestUtil.SetGrad(p, [1f]);
        opt.Step();
        TestUtil.AssertClose(-0.05, a.Item());
        TestUtil.AssertClose(-0.25, b.Item());
        TestUtil.AssertClose(-0.5, c.Item());
        Assert.Equal(0.5, opt.GroupLr(opt.Groups[2]), 12);
    }

    [Fact]
    public void StandardGroupsSeparateNoDecayParameters()
    {
        var m = new ToyModel(8, 2, 3, new Rng(1));
        var groups = ParamGroups.Standard(m, 0.01);
        Assert.Equal(2, groups.Count);
        var decay = groups.Single(g => g.WeightDecay == 0.01).Parameters.Select(p => p.Name).ToList();
        var noDecay = groups.Single(g => g.WeightDecay == 0).Parameters.Select(p => p.Name).ToList();
        Assert.Contains("encoder.layer.0.self.query.weight", decay);
        Assert.Contains("classifier.weight", decay);
        Assert.Contains("embeddings.LayerNorm.weight", noDecay);
        Assert.Contains("classifier.bias", noDecay);
        Assert.DoesNotContain(decay, n => n.EndsWith("bias", StringComparison.Ordinal));

        var two = Init.Parameter(2, 2);
        Assert.True(ParamGroups.IsNoDecay("h.0.ln_1.weight", two));
        Assert.True(ParamGroups.IsNoDecay("layer1.0.bn1.weight", two));
        Assert.True(ParamGroups.IsNoDecay("model.layers.0.input_layernorm.weight", two));
        Assert.False(ParamGroups.IsNoDecay("h.0.attn.c_attn.weight", two));
        Assert.False(ParamGroups.IsNoDecay("blocks.0.mlp.fc1.weight", two));

        // discriminative lr: head ×10 splits each group
        var split = ParamGroups.Standard(m, 0.01, n => n.StartsWith("classifier", StringComparison.Ordinal) ? 10 : 1);
        Assert.Equal(4, split.Count);
        Assert.Equal(["classifier.weight"], split.Single(g => g.LrScale == 10 && g.WeightDecay == 0.01).Parameters.Select(p => p.Name));

        var llrd = ParamGroups.LayerwiseLrScale(2, 0.5);
        Assert.Equal(0.25, llrd("encoder.layer.0.self.query.weight"));
        Assert.Equal(0.5, llrd("encoder.layer.1.output.bias"));
        Assert.Equal(0.125, llrd("embeddings.proj.weight"));
        Assert.Equal(1, llrd("classifier.weight"));
    }

    [Fact]
    public void ResumeFromStateDictContinuesBitIdentically()
    {
        float[] Run(int stepsBeforeSave, bool resume)
        {
            var rng = new Rng(8);
            var model = new Linear(6, 3, rng: rng);
            var x = Tensor.Randn(rng, [5, 6]);
            Optimizer opt = new AdamW(model, lr: 0.01);
            void Step() { model.ZeroGrad(); model.Forward(x).Square().Mean().Backward(); opt.Step(); }
            for (int i = 0; i < stepsBeforeSave; i++) Step();
            if (resume)
            {
                // copy everything out, build fresh objects, load
                var weights = model.StateDict().ToDictionary(kv => kv.Key, kv => Init.ParameterFrom(kv.Value));
                var st = opt.StateDict();
                var copy = new OptimizerState(st.StepCount, new Dictionary<string, long>(st.Steps), st.Buffers.ToDictionary(kv => kv.Key, kv => Init.ParameterFrom(kv.Value)));
                model = new Linear(6, 3, rng: new Rng(99));
                model.LoadStateDict(weights);
                opt = new AdamW(model, lr: 0.01);
                opt.LoadStateDict(copy);
                Assert.Equal(stepsBeforeSave, opt.StepCount);
                Assert.Contains("weight.exp_avg_sq", copy.Buffers.Keys);
            }
            for (int i = stepsBeforeSave; i < 5; i++) Step();
            return model.Weight.ToArray().Concat(model.Bias!.ToArray()).ToArray();
        }
        Assert.Equal(Run(5, false), Run(2, true));
    }

    [Fact]
    public void LoadStateDictRejectsUnknownParameters()
    {
        var a = TestUtil.Param([1f]);
        var opt = new Sgd([new ParamGroup([("a", a)])], momentum: 0.9);
        var bad = new OptimizerState(1, new Dictionary<string, long> { ["zzz"] = 1 }, new Dictionary<string, Tensor>());
        Assert.Throws<InvalidOperationException>(() => opt.LoadStateDict(bad));
        opt.LoadStateDict(bad, strict: false);
        Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([("a", a)]), new ParamGroup([("b", a)])]));
    }
}
