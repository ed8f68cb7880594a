using Whetstone.Nn.Layers;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Nn.Tests;

public class LoraTests
{
    private static void RandomizeB(Module m, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (var (_, l) in LoraInjector.Layers(m)) Init.Normal(l.LoraB.Weight, rng, 0, 0.5);
    }

    [Fact]
    public void ZeroBGivesTheBaseOutputAndInitIsKaiming()
    {
        var rng = new Rng(1);
        var lin = new Linear(16, 8, rng: rng);
        var x = Tensor.Randn(rng, [4, 16]);
        var before = lin.Forward(x).ToArray();
        var lora = new LoraLinear(lin, rank: 4, alpha: 8, rng);
        Assert.Equal(before, lora.Forward(x).ToArray());
        Assert.Equal(before, lin.Forward(x).ToArray());        // the wrapped Linear routes through the adapter
        Assert.Equal(2.0, lora.Scale);
        Assert.Equal([4, 16], lora.LoraA.Weight.Shape.ToArray());
        Assert.Equal([8, 4], lora.LoraB.Weight.Shape.ToArray());
        Assert.All(lora.LoraB.Weight.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(lora.LoraA.Weight.ToArray(), v => Assert.InRange(v, -0.25f, 0.25f));
        Assert.Contains(lora.LoraA.Weight.ToArray(), v => v != 0);
        Assert.Equal(["weight", "bias", "lora_A.weight", "lora_B.weight"], lora.NamedParameters().Select(p => p.Name));
        Assert.False(lin.Weight.RequiresGrad);
    }

    [Fact]
    public void InjectByPatternNamesAndFreezes()
    {
        var model = new ToyModel(8, 2, 3, new Rng(2));
        var injected = LoraInjector.Inject(model, "query|value", rank: 2, alpha: 4, new Rng(3), modulesToSave: "classifier");
        Assert.Equal(["encoder.layer.0.self.query", "encoder.layer.0.self.value", "encoder.layer.1.self.query", "encoder.layer.1.self.value"], injected);
        var trainable = model.NamedTrainableParameters().Select(p => p.Name).ToList();
        Assert.Equal(
            ["encoder.layer.0.self.query.lora_A.weight", "encoder.layer.0.self.query.lora_B.weight",
             "encoder.layer.0.self.value.lora_A.weight", "encoder.layer.0.self.value.lora_B.weight",
             "encoder.layer.1.self.query.lora_A.weight", "encoder.layer.1.self.query.lora_B.weight",
             "encoder.layer.1.self.value.lora_A.weight", "encoder.layer.1.self.value.lora_B.weight",
             "classifier.weight", "classifier.bias"], trainable);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("encoder.layer.0.self.query.weight", names);   // base keeps its checkpoint key
        Assert.Equal("encoder.layer.0.self.query.lora_A.weight", model.Layers[0].Query.Wrapper!.LoraA.Weight.Name);
        Assert.Equal("base_model.model.encoder.layer.0.self.query.lora_A.weight", LoraInjector.PeftAdapterKey("encoder.layer.0.self.query.lora_A.weight"));
        Assert.Equal(8, LoraInjector.AdapterStateDict(model).Count);
        Assert.Throws<InvalidOperationException>(() => LoraInjector.Inject(new ToyModel(8, 1, 3, new Rng(1)), "nothing_here", 2, 4, new Rng(1)));
        Assert.True(LoraInjector.Matches(@"encoder\.layer\.1\..*\.query", "encoder.layer.1.self.query"));
        Assert.False(LoraInjector.Matches(@"encoder\.layer\.1\..*\.query", "encoder.layer.0.self.query"));
        Assert.False(LoraInjector.Matches("query", "encoder.layer.0.self.query_proj"));
    }

    [Fact]
    public void OnlyAdaptersAndSavedModulesGetGradients()
    {
        var model = new ToyModel(8, 2, 3, new Rng(2));
        LoraInjector.Inject(model, "query|value", 2, 4, new Rng(3));
        RandomizeB(model, 5);   // so A gets a non-zero gradient too
        using (new TensorScope())
            model.Forward(Tensor.Randn(new Rng(4), [5, 4])).Square().Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool adapter = name.Contains(".lora_", StringComparison.Ordinal);
            if (adapter)
            {
                Assert.NotNull(p.Grad);
                Assert.Contains(p.Grad!.ToArray(), v => v != 0);
            }
            else Assert.Null(p.Grad);
        }
    }

    [Fact]
    public void AFreshAdapterHasZeroGradientForAButNotForB()
    {
        var rng = new Rng(6);
        var lora = new LoraLinear(new Linear(5, 3, rng: rng), 2, 2, rng);
        lora.Forward(Tensor.Randn(rng, [4, 5])).Sum().Backward();
        Assert.All(lora.LoraA.Weight.Grad!.ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(lora.LoraB.Weight.Grad!.ToArray(), v => v != 0);
    }

    [Fact]
    public void MergeAndUnmergePreserveOutputs()
    {
        var model = new ToyModel(8, 2, 3, new Rng(2));
        var baseState = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        LoraInjector.Inject(model, "query|value|output", 4, 8, new Rng(3));
        RandomizeB(model, 7);
        var x = Tensor.Randn(new Rng(9), [6, 4]);
        var unmerged = model.Forward(x).ToArray();
        Assert.NotEqual(unmerged, new ToyModel(8, 2, 3, new Rng(2)).Forward(x).ToArray());

        LoraInjector.Merge(model);
        Assert.All(LoraInjector.Layers(model), l => Assert.True(l.Layer.IsMerged));
        var merged = model.Forward(x).ToArray();
        for (int i = 0; i < merged.Length; i++) Assert.True(Math.Abs(merged[i] - unmerged[i]) <= 1e-5 * Math.Max(1, Math.Abs(unmerged[i])), $"[{i}] {merged[i]} vs {unmerged[i]}");

        LoraInjector.Unmerge(model);
        var again = model.Forward(x).ToArray();
        for (int i = 0; i < again.Length; i++) Assert.True(Math.Abs(again[i] - unmerged[i]) <= 1e-5 * Math.Max(1, Math.Abs(unmerged[i])));
        foreach (var (k, v) in baseState)
        {
            var now = model.GetTensor(k).ToArray();
            for (int i = 0; i < v.Length; i++) Assert.True(Math.Abs(now[i] - v[i]) <= 1e-6, $"{k}[{i}] not restored");
        }

        LoraInjector.MergeAndUnload(model);
        Assert.Empty(LoraInjector.Layers(model));
        Assert.IsType<Linear>(model.GetModule("encoder.layer.0.self.query"));
        Assert.Equal(baseState.Keys, model.StateDict().Keys);
        var unloaded = model.Forward(x).ToArray();
        for (int i = 0; i < unloaded.Length; i++) Assert.True(Math.Abs(unloaded[i] - unmerged[i]) <= 1e-5 * Math.Max(1, Math.Abs(unmerged[i])));
    }

    [Fact]
    public void BaseCheckpointLoadsIntoInjectedModel()
    {
        var source = new ToyModel(8, 1, 3, new Rng(10));
        var target = new ToyModel(8, 1, 3, new Rng(11));
        LoraInjector.Inject(target, "query|value", 2, 4, new Rng(3));
        var r = target.LoadStateDict(source.StateDict(), strict: false);
        Assert.Empty(r.UnexpectedKeys);
        Assert.All(r.MissingKeys, k => Assert.Contains(".lora_", k));
        Assert.Equal(4, r.MissingKeys.Count);
        var x = Tensor.Randn(new Rng(1), [2, 4]);
        Assert.Equal(source.Forward(x).ToArray(), target.Forward(x).ToArray());
    }

    [Fact]
    public void DropoutOnlyInTrainingAndDeterministicPerSeed()
    {
        float[] Run(bool train)
        {
            var rng = new Rng(12);
            var lora = new LoraLinear(new Linear(32, 4, rng: rng), 4, 4, rng, dropout: 0.5);
            Init.Normal(lora.LoraB.Weight, rng);
            lora.Train(train);
            var x = Tensor.Randn(new Rng(13), [8, 32]);
            return lora.Forward(x).ToArray().Concat(lora.Forward(x).ToArray()).ToArray();
        }
        var eval = Run(false);
        Assert.Equal(eval[..32], eval[32..]);
        var train = Run(true);
        Assert.NotEqual(train[..32], train[32..]);   // a fresh mask each call
        Assert.NotEqual(eval[..32], train[..32]);
        Assert.Equal(train, Run(true));              // same seed, same masks
    }
}
