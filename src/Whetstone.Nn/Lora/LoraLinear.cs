using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;

namespace Whetstone.Nn.Lora;

/// <summary>
/// LoRA around a (normally frozen) <see cref="Linear"/>: y = x·Wᵀ + b + scale · (dropout(x)·Aᵀ)·Bᵀ with
/// A [r, in] ~ kaiming_uniform(a=√5) (= U(−1/√in, 1/√in)), B [out, r] = 0, scale = alpha / r (alpha / √r with rsLoRA).
/// Since B starts at zero the wrapped layer initially computes exactly what the base layer did.
/// <para>
/// <b>Names.</b> The base tensors keep their pre-injection names (<c>…query.weight</c>, <c>…query.bias</c>) so a base
/// checkpoint loads into an injected model unchanged; the adapters are <c>…query.lora_A.weight</c> and
/// <c>…query.lora_B.weight</c>. That is exactly the key layout of PEFT's saved <c>adapter_model.safetensors</c> once its
/// <c>base_model.model.</c> prefix is added (<see cref="LoraInjector.PeftAdapterKey"/>). PEFT's in-memory module uses
/// <c>base_layer.weight</c> and <c>lora_A.default.weight</c>; those names never reach its saved files, so we do not mimic them.
/// </para>
/// <para>
/// <see cref="Merge"/> folds the update into W (W += scale·B·A) and the adapter path is then bypassed (for inference or
/// export; A and B get no gradient while merged); <see cref="Unmerge"/> subtracts it again.
/// </para>
/// </summary>
public sealed class LoraLinear : Module<Tensor, Tensor>, IRandomModule
{
    private readonly Rng _dropoutRng;

    /// <summary>The adapter dropout's generator.</summary>
    public Rng Generator => _dropoutRng;

    public Linear Base { get; }
    /// <summary>lora_A: a bias-free Linear(in → r); weight [r, in].</summary>
    public Linear LoraA { get; }
    /// <summary>lora_B: a bias-free Linear(r → out); weight [out, r].</summary>
    public Linear LoraB { get; }
    public int Rank { get; }
    public double Alpha { get; }
    public double Scale { get; }
    public double Dropout { get; }
    public bool IsMerged { get; private set; }

    /// <summary>When set, the adapters are skipped (the layer computes the base map only, unless merged).</summary>
    public bool AdaptersDisabled { get; set; }

    public LoraLinear(Linear baseLayer, int rank, double alpha, Rng rng, double dropout = 0, bool useRsLora = false, bool freezeBase = true)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rank);
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), "LoRA dropout must be in [0, 1).");
        if (baseLayer.Wrapper is not null) throw new InvalidOperationException("This Linear already has a LoRA wrapper.");
        Base = baseLayer;
        Rank = rank;
        Alpha = alpha;
        Dropout = dropout;
        Scale = useRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;

        RegisterParameter("weight", baseLayer.Weight, requiresGrad: !freezeBase);
        if (baseLayer.Bias is not null) RegisterParameter("bias", baseLayer.Bias, requiresGrad: !freezeBase);
        LoraA = RegisterModule("lora_A", new Linear(baseLayer.InFeatures, rank, bias: false));
        LoraB = RegisterModule("lora_B", new Linear(rank, baseLayer.OutFeatures, bias: false));
        Init.KaimingUniform(LoraA.Weight, rng);    // B stays zero
        _dropoutRng = new Rng(rng.NextUInt64());
        baseLayer.Wrapper = this;
        if (!baseLayer.IsTraining) Eval();
    }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (IsMerged || AdaptersDisabled) return Base.ForwardBase(input);
        // without dropout the whole layer is one op (no copies of the sum or its gradient)
        if (!(IsTraining && Dropout > 0)) return Tensor.LoraLinear(input, Base.Weight, Base.Bias, LoraA.Weight, LoraB.Weight, (float)Scale);
        var y = Base.ForwardBase(input);
        var h = input;
        if (IsTraining && Dropout > 0) h = input * DropoutMask(input.Shape.ToArray());
        var down = LoraA.ForwardBase(h) * (float)Scale;   // scale the narrow [.., r] tensor
        return y + LoraB.ForwardBase(down);
    }

    /// <summary>Inverted-dropout mask: 0 with probability p, else 1/(1−p). Allocated in the current scope.</summary>
    private Tensor DropoutMask(int[] shape)
    {
        var mask = Tensor.Empty(shape);
        var s = mask.Span;
        float keep = (float)(1 / (1 - Dropout));
        for (int i = 0; i < s.Length; i++) s[i] = _dropoutRng.NextDouble() < Dropout ? 0f : keep;
        return mask;
    }

    /// <summary>W += scale·B·A; afterwards the adapter path is bypassed. No-op if already merged.</summary>
    public void Merge()
    {
        if (IsMerged) return;
        AddDelta((float)Scale);
        IsMerged = true;
    }

    /// <summary>W −= scale·B·A, restoring the unmerged layer. No-op if not merged.</summary>
    public void Unmerge()
    {
        if (!IsMerged) return;
        AddDelta((float)-Scale);
        IsMerged = false;
    }

    private void AddDelta(float factor)
    {
        using var noGrad = Graph.NoGrad();
        using var scope = new TensorScope();
        var delta = Tensor.MatMul(LoraB.Weight, LoraA.Weight);   // [out, r]·[r, in]
        var w = Base.Weight.Span;
        TensorPrimitives.MultiplyAdd(delta.Span, factor, w, w);
    }

    /// <summary>Detaches this wrapper from its base layer (used when unloading adapters).</summary>
    internal void Release() => Base.Wrapper = null;

    protected override string ExtraRepr() =>
        $"in_features={Base.InFeatures}, out_features={Base.OutFeatures}, r={Rank}, alpha={Alpha}, dropout={Dropout}{(IsMerged ? ", merged" : "")}";
}
