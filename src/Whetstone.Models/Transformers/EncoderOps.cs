using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Transformers;

/// <summary>Pieces every encoder family runs the same way.</summary>
internal static class EncoderOps
{
    /// <summary>
    /// Multi-head scaled dot-product attention of projected q, k, v (B, T, D) with a padding mask (B, T) of 1/0 → the
    /// merged heads (B, T, D). Attention dropout <paramref name="dropout"/> applies only while training.
    /// </summary>
    public static Tensor SelfAttention(Tensor q, Tensor k, Tensor v, int heads, Tensor? mask, float dropout, Rng rng) =>
        // heads read and their gradients written in place in the (B, T, H·Dh) projections: no split or merge copies
        Tensor.MultiHeadAttention(q, k, v, heads, causal: false, mask, dropout: dropout, rng: dropout > 0 ? rng : null);

    /// <summary>norm(x + residual) as one fused op (post-LN residual blocks of BERT and DistilBERT).</summary>
    public static Tensor AddNorm(Whetstone.Nn.Layers.LayerNorm norm, Tensor x, Tensor residual) =>
        Tensor.AddLayerNorm(x, residual, norm.Weight, norm.Bias, norm.Eps);

    /// <summary>Absolute position ids 0 … T-1 (BERT, DistilBERT); a sequence longer than the table is an error.</summary>
    public static int[] AbsolutePositions(int t, int maxPositions)
    {
        if (t > maxPositions) throw new ArgumentException($"Sequence of {t} tokens exceeds max_position_embeddings = {maxPositions}.");
        var positions = new int[t];
        for (int i = 0; i < t; i++) positions[i] = i;
        return positions;
    }

    /// <summary>Runs the layers in order; each layer's activations are released unless something needs their gradient.</summary>
    public static Tensor RunLayers<T>(IEnumerable<T> layers, Tensor x, Func<T, Tensor, Tensor> forward)
    {
        foreach (var layer in layers)
        {
            var input = x;
            x = TensorScope.Release(() => forward(layer, input));   // frozen layers keep no activations
        }
        return x;
    }
}
