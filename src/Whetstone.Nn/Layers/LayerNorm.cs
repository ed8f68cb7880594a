using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>Layer normalisation over the last axis with <c>weight</c> (ones) and <c>bias</c> (zeros), nn.LayerNorm layout.</summary>
public sealed class LayerNorm : Module<Tensor, Tensor>
{
    public int Dim { get; }
    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    public LayerNorm(int dim, float eps = 1e-5f)
    {
        Dim = dim;
        Eps = eps;
        Weight = RegisterParameter("weight", Init.Ones(Init.Parameter(dim)));
        Bias = RegisterParameter("bias", Init.Zeros(Init.Parameter(dim)));
    }

    public override Tensor Forward(Tensor input) => Tensor.LayerNorm(input, Weight, Bias, Eps);

    protected override string ExtraRepr() => $"{Dim}, eps={Eps}";
}
