using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Gpt2;

// GPT-2 (pre-LN decoder with learned positions), one file for the family as in transformers' modeling_gpt2.py.
// Module and parameter names follow the Hugging Face checkpoint keys. The checkpoint's Conv1D weights are stored
// [in, out]; here they are Linear layers ([out, in]) and the loader transposes them (HfCheckpointKeys.Transposed).
// Axis letters: B batch, T new tokens, S cached + new tokens, D hidden, H heads, V vocabulary.

/// <summary>The subset of a Hugging Face GPT-2 <c>config.json</c> that shapes the network; defaults are gpt2's (124M).</summary>
public sealed record Gpt2Config(
    int VocabSize = 50257,
    int NPositions = 1024,
    int NEmbd = 768,
    int NLayer = 12,
    int NHead = 12,
    int? NInner = null,
    string ActivationFunction = "gelu_new",
    float LayerNormEpsilon = 1e-5f,
    float ResidPdrop = 0.1f,
    float EmbdPdrop = 0.1f,
    float AttnPdrop = 0.1f,
    float InitializerRange = 0.02f)
{
    public int Inner => NInner ?? 4 * NEmbd;

    internal static Gpt2Config FromHf(HfConfig c)
    {
        foreach (var flag in new[] { "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention" })
            if (c.Bool(flag, false)) throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, $"GPT-2 with {flag} = true is not supported.", flag);
        if (!c.Bool("scale_attn_weights", true)) throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, "GPT-2 with scale_attn_weights = false is not supported.", "scale_attn_weights");
        return new(
            VocabSize: c.Int("vocab_size", 50257),
            NPositions: c.Int("n_positions", 1024),
            NEmbd: c.Int("n_embd", 768),
            NLayer: c.Int("n_layer", 12),
            NHead: c.Int("n_head", 12),
            NInner: c.Has("n_inner") ? c.Int("n_inner", 0) : null,
            ActivationFunction: c.String("activation_function", "gelu_new"),
            LayerNormEpsilon: c.Float("layer_norm_epsilon", 1e-5f),
            ResidPdrop: c.Float("resid_pdrop", 0.1f),
            EmbdPdrop: c.Float("embd_pdrop", 0.1f),
            AttnPdrop: c.Float("attn_pdrop", 0.1f),
            InitializerRange: c.Float("initializer_range", 0.02f));
    }
}

/// <summary>Causal self-attention with one fused q/k/v projection (c_attn) and the output projection (c_proj).</summary>
public sealed class Gpt2Attention : Module, IRandomModule
{
    private readonly int _heads, _width;
    private readonly float _dropout;
    private readonly Rng _rng;
    private readonly Dropout _residDropout;

    public Rng Generator => _rng;
    public Linear CAttn { get; }
    public Linear CProj { get; }

    public Gpt2Attention(Gpt2Config c, Rng rng)
    {
        if (c.NEmbd % c.NHead != 0) throw new ArgumentException($"n_embd {c.NEmbd} is not divisible by n_head {c.NHead}.");
        (_heads, _width, _dropout, _rng) = (c.NHead, c.NEmbd, c.AttnPdrop, rng);
        CAttn = RegisterModule("c_attn", ModelInit.Linear(c.NEmbd, 3 * c.NEmbd, rng));
        CProj = RegisterModule("c_proj", ModelInit.Linear(c.NEmbd, c.NEmbd, rng));
        _residDropout = RegisterModule("resid_dropout", new Dropout(c.ResidPdrop, rng));
    }

    /// <summary>x (B, T, D), padding mask (B, S) → (B, T, D).</summary>
    public Tensor Forward(Tensor x, Tensor? mask, KvCache? cache, int layer)
    {
        var qkv = CAttn.Forward(x);                                           // (B, T, 3D)
        var q = qkv.Narrow(2, 0, _width);
        var k = qkv.Narrow(2, _width, _width);
        var v = qkv.Narrow(2, 2 * _width, _width);
        var y = DecoderOps.Attention(q, k, v, _heads, _heads, mask, cache, layer, IsTraining ? _dropout : 0, _rng);
        return _residDropout.Forward(CProj.Forward(y));
    }
}

/// <summary>c_fc → GELU → c_proj, then dropout.</summary>
public sealed class Gpt2Mlp : Module
{
    private readonly bool _tanhGelu, _relu;
    private readonly Dropout _dropout;
    public Linear CFc { get; }
    public Linear CProj { get; }

    public Gpt2Mlp(Gpt2Config c, Rng rng)
    {
        (_tanhGelu, _relu) = c.ActivationFunction switch
        {
            "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => (true, false),
            "gelu" => (false, false),
            "relu" => (false, true),
            var a => throw new NotSupportedException($"GPT-2 activation_function '{a}' is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu)."),
        };
        CFc = RegisterModule("c_fc", ModelInit.Linear(c.NEmbd, c.Inner, rng));
        CProj = RegisterModule("c_proj", ModelInit.Linear(c.Inner, c.NEmbd, rng));
        _dropout = RegisterModule("dropout", new Dropout(c.ResidPdrop, rng));
    }

    public Tensor Forward(Tensor x) => _dropout.Forward(CProj.Forward(_relu ? CFc.Forward(x).Relu() : CFc.ForwardGelu(x, _tanhGelu)));
}

/// <summary>x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
public sealed class Gpt2Block : Module
{
    public LayerNorm Ln1 { get; }
    public Gpt2Attention Attn { get; }
    public LayerNorm Ln2 { get; }
    public Gpt2Mlp Mlp { get; }

    public Gpt2Block(Gpt2Config c, Rng rng)
    {
        Ln1 = RegisterModule("ln_1", new LayerNorm(c.NEmbd, c.LayerNormEpsilon));
        Attn = RegisterModule("attn", new Gpt2Attention(c, rng));
        Ln2 = RegisterModule("ln_2", new LayerNorm(c.NEmbd, c.LayerNormEpsilon));
        Mlp = RegisterModule("mlp", new Gpt2Mlp(c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask, KvCache? cache, int layer)
    {
        var h = x + Attn.Forward(Ln1.Forward(x), mask, cache, layer);
        return h + Mlp.Forward(Ln2.Forward(h));
    }
}

/// <summary>Token + position embeddings, the blocks, and the final LayerNorm (GPT2Model).</summary>
public sealed class Gpt2Model : Module
{
    private readonly Dropout _drop;
    public Gpt2Config Config { get; }
    public Embedding Wte { get; }
    public Embedding Wpe { get; }
    public ModuleList<Gpt2Block> H { get; }
    public LayerNorm LnF { get; }

    public Gpt2Model(Gpt2Config c, Rng rng)
    {
        Config = c;
        Wte = RegisterModule("wte", ModelInit.Embedding(c.VocabSize, c.NEmbd, rng));
        Wpe = RegisterModule("wpe", ModelInit.Embedding(c.NPositions, c.NEmbd, rng));
        _drop = RegisterModule("drop", new Dropout(c.EmbdPdrop, rng));
        H = RegisterModule("h", new ModuleList<Gpt2Block>());
        for (int i = 0; i < c.NLayer; i++) H.Add(new Gpt2Block(c, rng));
        LnF = RegisterModule("ln_f", new LayerNorm(c.NEmbd, c.LayerNormEpsilon));
    }

    /// <summary>ids (B, T) → last hidden state (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, Tensor? mask, KvCache? cache, int[]? positions)
    {
        var pos = DecoderOps.Positions(b, t, cache?.Length ?? 0, positions, Config.NPositions);
        var x = TensorScope.Release(() => _drop.Forward(Wte.Forward(ids, b, t) + Wpe.Forward(pos, b, t)));
        x = DecoderOps.RunLayers(H, x, (block, i, h) => block.Forward(h, mask, cache, i));
        return LnF.Forward(x);
    }
}

/// <summary>GPT-2 with its language-modelling head tied to the token embeddings (GPT2LMHeadModel).</summary>
public sealed class Gpt2LMHeadModel : CausalLm
{
    public Gpt2Config Config { get; }
    public Gpt2Model Transformer { get; }

    public Gpt2LMHeadModel(Gpt2Config c, Rng rng)
    {
        Config = c;
        Transformer = RegisterModule("transformer", new Gpt2Model(c, rng));
    }

    public override Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, KvCache? cache = null, int[]? positions = null) =>
        DecoderOps.TiedLogits(Transformer.Forward(ids, batch, seqLen, attentionMask, cache, positions), Transformer.Wte.Weight);

    public override string ModelType => "gpt2";
    public override int VocabSize => Config.VocabSize;
    public override int HiddenSize => Config.NEmbd;
    public override int NumLayers => Config.NLayer;
    public override int KvWidth => Config.NEmbd;
    public override int MaxPositions => Config.NPositions;
    public override string EmbeddingsPath => "transformer.wte";
    public override string LayerPath(int i) => $"transformer.h.{i}";
    public override bool TiedEmbeddings => true;
    public override string LoraTargets => "c_attn|c_proj|c_fc";
}

/// <summary>GPT-2 in the family registry: hub checkpoints name the base model's tensors without <c>transformer.</c>.</summary>
internal static class Gpt2Family
{
    public static readonly ModelFamily Definition = new(
        ModelTypes: ["gpt2"],
        Keys: new HfCheckpointKeys("transformer.", Ignore:
        [
            "{base}h.{n}.attn.bias",          // the causal-mask buffer
            "{base}h.{n}.attn.masked_bias",   // its fill value (older checkpoints)
            "lm_head.weight",                 // tied to wte
        ]),
        SequenceClassification: null,
        CausalLm: new(
            Create: (c, _, rng) => new Gpt2LMHeadModel(Gpt2Config.FromHf(c), rng),
            Transposed: [@"transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight"]));
}
