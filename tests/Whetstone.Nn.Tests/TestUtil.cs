using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

internal static class TestUtil
{
    /// <summary>A persistent trainable parameter holding <paramref name="values"/>.</summary>
    public static Tensor Param(float[] values, params int[] shape)
    {
        var t = Init.Parameter(shape.Length == 0 ? [values.Length] : shape);
        values.AsSpan().CopyTo(t.Span);
        return t;
    }

    /// <summary>Gives <paramref name="p"/> exactly the gradient <paramref name="g"/> (through backward of Σ p·g).</summary>
    public static void SetGrad(Tensor p, float[] g)
    {
        p.ZeroGrad();
        (p * Tensor.From(g, p.Shape.ToArray())).Sum().Backward();
    }

    public static void AssertClose(double expected, double actual, double rel = 1e-6, string what = "")
    {
        double err = Math.Abs(expected - actual) / Math.Max(1e-12, Math.Max(Math.Abs(expected), 1e-3));
        Assert.True(err <= rel, $"{what}: expected {expected:R}, got {actual:R} (rel err {err:E2})");
    }
}

/// <summary>A BERT-like toy: embeddings, a list of attention-ish blocks with typed Linear fields, a classifier.</summary>
internal sealed class ToyBlock : Module<Tensor, Tensor>
{
    public readonly Linear Query, Key, Value, Output;

    public ToyBlock(int d, Rng rng)
    {
        var self = RegisterModule("self", new Holder());
        Query = self.RegisterModule("query", new Linear(d, d, rng: rng));
        Key = self.RegisterModule("key", new Linear(d, d, rng: rng));
        Value = self.RegisterModule("value", new Linear(d, d, rng: rng));
        Output = RegisterModule("output", new Linear(d, d, rng: rng));
    }

    public override Tensor Forward(Tensor x) => Output.Forward((Query.Forward(x) + Key.Forward(x)).Tanh() * Value.Forward(x)) + x;

    private sealed class Holder : Module { }
}

internal sealed class ToyModel : Module<Tensor, Tensor>
{
    public readonly Linear Embed;
    public readonly ModuleList<ToyBlock> Layers;
    public readonly Linear Classifier;
    public readonly Tensor NormWeight;

    public ToyModel(int d, int layers, int classes, Rng rng)
    {
        var emb = RegisterModule("embeddings", new Holder());
        Embed = emb.RegisterModule("proj", new Linear(4, d, rng: rng));
        NormWeight = emb.RegisterModule("LayerNorm", new Holder()).RegisterParameter("weight", Init.Ones(Init.Parameter(d)));
        var enc = RegisterModule("encoder", new Holder());
        Layers = enc.RegisterModule("layer", new ModuleList<ToyBlock>());
        for (int i = 0; i < layers; i++) Layers.Add(new ToyBlock(d, rng));
        Classifier = RegisterModule("classifier", new Linear(d, classes, rng: rng));
    }

    public override Tensor Forward(Tensor x)
    {
        var h = Embed.Forward(x) * NormWeight;
        foreach (var l in Layers) h = l.Forward(h);
        return Classifier.Forward(h);
    }

    private sealed class Holder : Module { }
}
