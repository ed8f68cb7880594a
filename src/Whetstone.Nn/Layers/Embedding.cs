using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>A lookup table of <c>weight</c> [num, dim] (nn.Embedding layout); N(0, 1) init like PyTorch.</summary>
public sealed class Embedding : Module
{
    public int Count { get; }
    public int Dim { get; }
    public Tensor Weight { get; }

    public Embedding(int count, int dim, Rng? rng = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        Count = count;
        Dim = dim;
        Weight = RegisterParameter("weight", Init.Parameter(count, dim));
        if (rng is not null) Init.Normal(Weight, rng);
    }

    /// <summary>Rows for <paramref name="ids"/>, shaped [..<paramref name="shape"/>, dim].</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape) => Tensor.Embedding(Weight, ids, shape);

    protected override string ExtraRepr() => $"{Count}, {Dim}";
}
