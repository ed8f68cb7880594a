using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>RMS normalisation over the last axis with a <c>weight</c> (ones), as Llama-family checkpoints store it.</summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
    public int Dim { get; }
    public float Eps { get; }
    public Tensor Weight { get; }

    public RmsNorm(int dim, float eps = 1e-6f)
    {
        Dim = dim;
        Eps = eps;
        Weight = RegisterParameter("weight", Init.Ones(Init.Parameter(dim)));
    }

    public override Tensor Forward(Tensor input) => Tensor.RmsNorm(input, Weight, Eps);

    protected override string ExtraRepr() => $"{Dim}, eps={Eps}";
}
