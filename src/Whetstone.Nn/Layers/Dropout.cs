using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>Inverted dropout, active only in training mode; draws from its own seeded generator.</summary>
public sealed class Dropout(float p, Rng rng) : Module<Tensor, Tensor>, IRandomModule
{
    public Rng Generator => rng;

    public float P { get; } = p is >= 0 and < 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), $"Dropout probability {p} must be in [0, 1).");

    public override Tensor Forward(Tensor input) => input.Dropout(P, rng, IsTraining);

    protected override string ExtraRepr() => $"p={P}";
}
