using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

public class ModuleTests
{
    private static ToyModel Model(ulong seed = 1) => new(8, 2, 3, new Rng(seed));

    [Fact]
    public void NamedParametersUseDottedPathsAndSetTensorNames()
    {
        var m = Model();
        var names = m.NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal("embeddings.proj.weight", names[0]);
        Assert.Equal("embeddings.proj.bias", names[1]);
        Assert.Equal("embeddings.LayerNorm.weight", names[2]);
        Assert.Contains("encoder.layer.0.self.query.weight", names);
        Assert.Contains("encoder.layer.1.output.bias", names);
        Assert.Equal("classifier.bias", names[^1]);
        foreach (var (n, t) in m.NamedParameters()) Assert.Equal(n, t.Name);
        // names relative to a submodule, while Tensor.Name stays root-relative
        var sub = m.GetModule("encoder.layer.1");
        Assert.Equal("self.query.weight", sub.NamedParameters().First().Name);
        Assert.Equal("encoder.layer.1.self.query.weight", sub.NamedParameters().First().Tensor.Name);
        Assert.Equal("encoder.layer.1", sub.FullName);
    }

    [Fact]
    public void NamedModulesAndCounts()
    {
        var m = Model();
        var mods = m.NamedModules().Select(x => x.Name).ToList();
        Assert.Equal("", mods[0]);
        Assert.Contains("encoder.layer.0.self.value", mods);
        long expected = (4 * 8 + 8) + 8 + 2 * 4 * (8 * 8 + 8) + (8 * 3 + 3);
        Assert.Equal(expected, m.ParameterCount());
        Assert.Equal(expected, m.TrainableParameterCount());
        m.Classifier.Weight.RequiresGrad = false;
        Assert.Equal(expected - 24, m.TrainableParameterCount());
        Assert.Contains("Linear(in_features=8, out_features=3, bias=True)", m.ToString());
    }

    [Fact]
    public void TrainEvalIsRecursive()
    {
        var m = Model();
        Assert.True(m.Layers[1].Query.IsTraining);
        m.Eval();
        Assert.All(m.NamedModules(), x => Assert.False(x.Module.IsTraining));
        m.Train();
        Assert.All(m.NamedModules(), x => Assert.True(x.Module.IsTraining));
    }

    [Fact]
    public void RegisteringRejectsPooledAndNonLeafTensors()
    {
        var holder = new Sequential();
        using (new Whetstone.Tensors.Memory.TensorScope())
        {
            var pooled = Tensor.Zeros(3);
            Assert.Throws<ArgumentException>(() => holder.RegisterParameter("p", pooled));
        }
        var leaf = Init.Parameter(3);
        var derived = leaf * 2f;
        Assert.Throws<ArgumentException>(() => holder.RegisterParameter("d", derived));
        Assert.Throws<ArgumentException>(() => holder.RegisterParameter("a.b", Init.Parameter(2)));
    }

    [Fact]
    public void StateDictRoundTripsIntoAFreshModel()
    {
        var a = Model(1);
        var b = Model(2);
        Assert.NotEqual(a.Classifier.Weight.ToArray(), b.Classifier.Weight.ToArray());
        var result = b.LoadStateDict(a.StateDict());
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        foreach (var ((na, ta), (nb, tb)) in a.NamedParameters().Zip(b.NamedParameters()))
        {
            Assert.Equal(na, nb);
            Assert.Equal(ta.ToArray(), tb.ToArray());
            Assert.NotSame(ta, tb);
        }
    }

    [Fact]
    public void StrictLoadListsMissingUnexpectedAndMismatchedKeys()
    {
        var m = Model();
        var sd = new Dictionary<string, Tensor>(m.StateDict());
        sd.Remove("classifier.bias");
        sd["encoder.layer.0.self.query.weight"] = Tensor.Zeros(8, 9);
        sd["pooler.dense.weight"] = Tensor.Zeros(2, 2);
        var before = m.Layers[0].Query.Weight.ToArray();
        var ex = Assert.Throws<StateDictException>(() => m.LoadStateDict(sd));
        Assert.Equal(["classifier.bias"], ex.MissingKeys);
        Assert.Equal(["pooler.dense.weight"], ex.UnexpectedKeys);
        Assert.Single(ex.MismatchedKeys);
        Assert.Contains("encoder.layer.0.self.query.weight: checkpoint [8, 9] vs model [8, 8]", ex.Message);
        Assert.Contains("missing", ex.Message);
        Assert.Contains("unexpected", ex.Message);
        Assert.Equal(before, m.Layers[0].Query.Weight.ToArray());   // nothing copied

        // non-strict: missing/unexpected are reported, mismatches still fail
        Assert.Throws<StateDictException>(() => m.LoadStateDict(sd, strict: false));
        sd["encoder.layer.0.self.query.weight"] = Tensor.Ones(8, 8);
        var r = m.LoadStateDict(sd, strict: false);
        Assert.Equal(["classifier.bias"], r.MissingKeys);
        Assert.Equal(["pooler.dense.weight"], r.UnexpectedKeys);
        Assert.All(m.Layers[0].Query.Weight.ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void BuffersAreInStateDictButNotParameters()
    {
        var m = new Sequential(new Linear(2, 2, rng: new Rng(1)));
        var running = Tensor.Persistent(2); running.Span.Fill(3);
        m.RegisterBuffer("running_mean", running);
        var scratch = Tensor.Persistent(2);
        m.RegisterBuffer("scratch", scratch, persistent: false);
        Assert.DoesNotContain(m.NamedParameters(), p => p.Name == "running_mean");
        Assert.Equal(["running_mean", "scratch"], m.NamedBuffers().Select(b => b.Name));
        var sd = m.StateDict();
        Assert.Equal(["running_mean", "0.weight", "0.bias"], sd.Keys);   // own tensors first, then children (PyTorch order)
        Assert.False(running.RequiresGrad);
    }

    [Fact]
    public void TiedParametersAppearOnceInParametersButUnderEveryNameInStateDict()
    {
        var rng = new Rng(3);
        var enc = new Linear(3, 3, rng: rng);
        var model = new Sequential(enc);
        model.RegisterParameter("tied", enc.Weight);
        Assert.Equal(2, model.Parameters().Count());
        Assert.Equal(3, model.StateDict().Count);
        // either name satisfies the tied tensor
        var sd = new Dictionary<string, Tensor> { ["0.bias"] = Tensor.Zeros(3), ["tied"] = Tensor.Ones(3, 3) };
        model.LoadStateDict(sd);
        Assert.All(enc.Weight.ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void ReplaceModuleKeepsOrderAndRenames()
    {
        var m = Model();
        var fresh = new Linear(8, 3, rng: new Rng(9));
        var old = m.ReplaceModule("classifier", fresh);
        Assert.Same(m.Classifier, old);
        Assert.Same(fresh, m.GetModule("classifier"));
        Assert.Equal("classifier.weight", fresh.Weight.Name);
        Assert.Equal("classifier.bias", m.NamedParameters().Last().Name);
        Assert.Throws<KeyNotFoundException>(() => m.ReplaceModule("encoder.nothing", fresh));
    }

    [Fact]
    public void ZeroGradClearsEveryParameter()
    {
        var m = Model();
        using (new Whetstone.Tensors.Memory.TensorScope())
            m.Forward(Tensor.Ones(2, 4)).Sum().Backward();
        Assert.All(m.Parameters(), p => Assert.NotNull(p.Grad));
        m.ZeroGrad();
        Assert.All(m.Parameters(), p => Assert.Null(p.Grad));
    }
}
