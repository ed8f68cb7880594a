using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>
/// Multi-head self-attention: q/k/v projections, scaled dot-product attention with optional causal and key-padding
/// masks, output projection. Children <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c>.
/// Model families whose checkpoints name these differently (BERT's query/key/value) write their own module around
/// <see cref="Tensor.ScaledDotProductAttention"/> instead.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    public int Heads { get; }
    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OutProj { get; }

    public MultiHeadAttention(int dim, int heads, Rng? rng = null)
    {
        if (dim % heads != 0) throw new ArgumentException($"Model width {dim} is not divisible by {heads} heads.");
        Heads = heads;
        QProj = RegisterModule("q_proj", new Linear(dim, dim, true, rng));
        KProj = RegisterModule("k_proj", new Linear(dim, dim, true, rng));
        VProj = RegisterModule("v_proj", new Linear(dim, dim, true, rng));
        OutProj = RegisterModule("out_proj", new Linear(dim, dim, true, rng));
    }

    /// <summary>x (B, T, D) → (B, T, D). <paramref name="keyPaddingMask"/> (B, T): 1 = token, 0 = padding.</summary>
    public Tensor Forward(Tensor x, Tensor? keyPaddingMask = null, bool causal = false)
    {
        int b = x.Dim(0), t = x.Dim(1), d = x.Dim(2), dh = d / Heads;
        Tensor Split(Tensor y) => y.Reshape(b, t, Heads, dh).Permute(0, 2, 1, 3);
        var o = Tensor.ScaledDotProductAttention(Split(QProj.Forward(x)), Split(KProj.Forward(x)), Split(VProj.Forward(x)), causal, keyPaddingMask);
        return OutProj.Forward(o.Permute(0, 2, 1, 3).Reshape(b, t, d));
    }

    protected override string ExtraRepr() => $"heads={Heads}";
}
