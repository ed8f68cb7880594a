using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>
/// y = x·Wᵀ + b with W [out, in] and b [out] (nn.Linear layout and parameter names <c>weight</c>, <c>bias</c>).
/// Default init as PyTorch: W ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), b ~ U(−1/√in, 1/√in); weight drawn first.
/// <para>When wrapped by a <see cref="Lora.LoraLinear"/>, <see cref="Forward"/> runs the wrapper, so model code holding a
/// typed <c>Linear</c> field picks up adapters injected into the module tree.</para>
/// </summary>
public sealed class Linear : Module<Tensor, Tensor>
{
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    /// <summary>The LoRA wrapper this layer now belongs to, if any.</summary>
    internal Lora.LoraLinear? Wrapper { get; set; }

    public Linear(int inFeatures, int outFeatures, bool bias = true, Rng? rng = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", Init.Parameter(outFeatures, inFeatures));
        if (bias) Bias = RegisterParameter("bias", Init.Parameter(outFeatures));
        if (rng is not null)
        {
            Init.KaimingUniform(Weight, rng);
            if (Bias is not null)
            {
                double bound = 1 / Math.Sqrt(inFeatures);
                Init.Uniform(Bias, rng, -bound, bound);
            }
        }
    }

    /// <summary>Wraps existing persistent tensors (e.g. loaded from a checkpoint) as a layer.</summary>
    public Linear(Tensor weight, Tensor? bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2) throw new ArgumentException($"Linear weight must be [out, in]; got rank {weight.Rank}.");
        OutFeatures = weight.Dim(0);
        InFeatures = weight.Dim(1);
        if (bias is not null && (bias.Rank != 1 || bias.Dim(0) != OutFeatures)) throw new ArgumentException($"Linear bias must be [{OutFeatures}].");
        Weight = RegisterParameter("weight", weight);
        if (bias is not null) Bias = RegisterParameter("bias", bias);
    }

    public override Tensor Forward(Tensor input) =>
        Wrapper is not null ? Wrapper.Forward(input) : Tensor.Linear(input, Weight, Bias);

    /// <summary>gelu(Forward(input)); one fused op (bias and GELU in the GEMM's epilogue) unless a wrapper owns the layer.</summary>
    public Tensor ForwardGelu(Tensor input, bool tanhApproximation = false) =>
        Wrapper is not null ? Wrapper.Forward(input).Gelu(tanhApproximation) : Tensor.LinearGelu(input, Weight, Bias, tanhApproximation);

    /// <summary>The plain affine map, ignoring any wrapper.</summary>
    internal Tensor ForwardBase(Tensor input) => Tensor.Linear(input, Weight, Bias);

    protected override string ExtraRepr() => $"in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null}";
}
