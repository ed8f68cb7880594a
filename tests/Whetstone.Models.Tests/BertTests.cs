using Whetstone.Models.Bert;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Tests;

public class BertTests
{
    // sizes all different so a swapped axis cannot hide (transformers' test convention)
    private static readonly BertConfig Tiny = new(VocabSize: 99, HiddenSize: 32, NumHiddenLayers: 2, NumAttentionHeads: 4,
        IntermediateSize: 37, MaxPositionEmbeddings: 64, TypeVocabSize: 2);

    private static int[] Ids(int b, int t, int seed)
    {
        var rng = new Rng((ulong)seed);
        return Enumerable.Range(0, b * t).Select(_ => rng.NextInt(99)).ToArray();
    }

    [Fact]
    public void ParameterNamesAreHuggingFaceCheckpointKeys()
    {
        var keys = new BertForSequenceClassification(Tiny, 3, new Rng(1)).StateDict().Keys.ToHashSet();
        foreach (var k in new[]
        {
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
            "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.0.attention.self.value.bias",
            "bert.encoder.layer.0.attention.output.dense.weight", "bert.encoder.layer.1.attention.output.LayerNorm.bias",
            "bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.1.output.dense.bias",
            "bert.encoder.layer.1.output.LayerNorm.weight", "bert.pooler.dense.weight", "classifier.weight", "classifier.bias",
        })
            Assert.Contains(k, keys);
        Assert.Equal(2 * 16 + 5 + 2 + 2, keys.Count);   // 16 per layer, 5 embedding tensors, pooler (2), classifier (2)
    }

    [Fact]
    public void DropoutOnlyInTrainingAndPaddingIsInvisible()
    {
        var model = new BertForSequenceClassification(Tiny, 3, new Rng(2));
        int b = 2, t = 7;
        var ids = Ids(b, t, 3);
        var mask = Tensor.From([1f, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], b, t);
        using var scope = new TensorScope();
        model.Eval();
        var a = model.Forward(ids, b, t, mask).ToArray();
        Assert.Equal(a, model.Forward(ids, b, t, mask).ToArray());
        var changed = (int[])ids.Clone();
        changed[13] = (changed[13] + 5) % 99;                    // a padded position of the second sequence
        Assert.Equal(a, model.Forward(changed, b, t, mask).ToArray());
        model.Train();
        var d = model.Forward(ids, b, t, mask).ToArray();
        Assert.NotEqual(a, d);
    }

    [Fact]
    public void EveryParameterGetsAGradientAndFrozenLayersNone()
    {
        var model = new BertForSequenceClassification(Tiny with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 }, 3, new Rng(4));
        foreach (var p in model.Bert.Embeddings.Parameters().Concat(model.Bert.Encoder.Layer[0].Parameters())) p.RequiresGrad = false;
        using var scope = new TensorScope();
        Tensor.CrossEntropy(model.Forward(Ids(3, 5, 5), 3, 5), [0, 2, 1]).Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool frozen = name.StartsWith("bert.embeddings.", StringComparison.Ordinal) || name.StartsWith("bert.encoder.layer.0.", StringComparison.Ordinal);
            if (frozen) Assert.Null(p.Grad);
            else if (!name.Contains("token_type")) Assert.True(p.Grad is not null && p.Grad.ToArray().Any(v => v != 0), $"{name} has no gradient");
        }
    }
}
