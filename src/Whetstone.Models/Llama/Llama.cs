using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Llama;

// The Llama family (Llama 2/3, Mistral, Qwen2, TinyLlama, SmolLM): pre-norm decoder with RMSNorm, rotary position
// embedding, grouped-query attention and a SwiGLU MLP — one file, as transformers' modeling_llama.py. Qwen2 adds
// q/k/v biases; Mistral is Llama with an optional sliding window. Module names follow the checkpoint keys.
// Axis letters: B batch, T new tokens, S cached + new tokens, D hidden, H query heads, Hkv key/value heads, Dh head width.

/// <summary>The subset of a Llama-family <c>config.json</c> that shapes the network; defaults are Llama-2-7B's.</summary>
public sealed record LlamaConfig(
    int VocabSize = 32000,
    int HiddenSize = 4096,
    int IntermediateSize = 11008,
    int NumHiddenLayers = 32,
    int NumAttentionHeads = 32,
    int NumKeyValueHeads = 32,
    int HeadDim = 128,
    int MaxPositionEmbeddings = 4096,
    float RmsNormEps = 1e-6f,
    bool QkvBias = false,
    bool OutputBias = false,
    bool MlpBias = false,
    bool TieWordEmbeddings = false,
    float AttentionDropout = 0,
    int? SlidingWindow = null,
    float InitializerRange = 0.02f)
{
    /// <summary>Reads a llama, mistral or qwen2 <c>config.json</c>; the rotary settings are read by <see cref="RotaryEmbedding.FromHf"/>.</summary>
    internal static LlamaConfig FromHf(HfConfig c, string modelType)
    {
        var act = c.String("hidden_act", "silu");
        if (act != "silu") throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, $"hidden_act '{act}' is not supported (the Llama family's MLP is SwiGLU: silu).", "hidden_act");
        int hidden = c.Int("hidden_size", 4096), heads = c.Int("num_attention_heads", 32);
        if (heads <= 0 || hidden % heads != 0 && !c.Has("head_dim"))
            throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, $"hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given.", "num_attention_heads");
        bool attentionBias = c.Bool("attention_bias", false);
        // Qwen2 always has q/k/v biases; its sliding window applies only with use_sliding_window
        bool qwen2 = modelType == "qwen2";
        int? window = qwen2 && !c.Bool("use_sliding_window", false) ? null : c.Has("sliding_window") ? c.Int("sliding_window", 0) : null;
        return new(
            VocabSize: c.Int("vocab_size", 32000),
            HiddenSize: hidden,
            IntermediateSize: c.Int("intermediate_size", 11008),
            NumHiddenLayers: c.Int("num_hidden_layers", 32),
            NumAttentionHeads: heads,
            NumKeyValueHeads: c.Int("num_key_value_heads", heads),
            HeadDim: c.Int("head_dim", hidden / heads),
            MaxPositionEmbeddings: c.Int("max_position_embeddings", 4096),
            RmsNormEps: c.Float("rms_norm_eps", 1e-6f),
            QkvBias: qwen2 || attentionBias,
            OutputBias: !qwen2 && attentionBias,
            MlpBias: c.Bool("mlp_bias", false),
            TieWordEmbeddings: c.Bool("tie_word_embeddings", false),
            AttentionDropout: c.Float("attention_dropout", 0f),
            SlidingWindow: window is > 0 ? window : null,
            InitializerRange: c.Float("initializer_range", 0.02f));
    }
}

/// <summary>q/k/v/o projections, rotary embedding on q and k, grouped-query causal attention.</summary>
public sealed class LlamaAttention : Module, IRandomModule
{
    private readonly LlamaConfig _c;
    private readonly Rng _rng;

    public Rng Generator => _rng;
    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OProj { get; }

    public LlamaAttention(LlamaConfig c, Rng rng)
    {
        if (c.NumKeyValueHeads <= 0 || c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new ArgumentException($"num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}.");
        (_c, _rng) = (c, rng);
        QProj = RegisterModule("q_proj", ModelInit.Linear(c.HiddenSize, c.NumAttentionHeads * c.HeadDim, rng, c.QkvBias));
        KProj = RegisterModule("k_proj", ModelInit.Linear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, rng, c.QkvBias));
        VProj = RegisterModule("v_proj", ModelInit.Linear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, rng, c.QkvBias));
        OProj = RegisterModule("o_proj", ModelInit.Linear(c.NumAttentionHeads * c.HeadDim, c.HiddenSize, rng, c.OutputBias));
    }

    /// <summary>x (B, T, D), padding mask (B, S), the new tokens' rotary angles (B·T, Dh/2) → (B, T, D).</summary>
    public Tensor Forward(Tensor x, Tensor? mask, Tensor cos, Tensor sin, KvCache? cache, int layer)
    {
        var q = Tensor.Rotary(QProj.Forward(x), _c.NumAttentionHeads, cos, sin);
        var k = Tensor.Rotary(KProj.Forward(x), _c.NumKeyValueHeads, cos, sin);
        var v = VProj.Forward(x);
        var y = DecoderOps.Attention(q, k, v, _c.NumAttentionHeads, _c.NumKeyValueHeads, mask, cache, layer, IsTraining ? _c.AttentionDropout : 0, _rng);
        return OProj.Forward(y);
    }
}

/// <summary>down_proj(silu(gate_proj(x)) ⊙ up_proj(x)).</summary>
public sealed class LlamaMlp : Module
{
    public Linear GateProj { get; }
    public Linear UpProj { get; }
    public Linear DownProj { get; }

    public LlamaMlp(LlamaConfig c, Rng rng)
    {
        GateProj = RegisterModule("gate_proj", ModelInit.Linear(c.HiddenSize, c.IntermediateSize, rng, c.MlpBias));
        UpProj = RegisterModule("up_proj", ModelInit.Linear(c.HiddenSize, c.IntermediateSize, rng, c.MlpBias));
        DownProj = RegisterModule("down_proj", ModelInit.Linear(c.IntermediateSize, c.HiddenSize, rng, c.MlpBias));
    }

    public Tensor Forward(Tensor x) => DownProj.Forward(GateProj.Forward(x).Silu() * UpProj.Forward(x));
}

/// <summary>x + attn(norm(x)), then + mlp(norm(·)).</summary>
public sealed class LlamaDecoderLayer : Module
{
    public RmsNorm InputLayernorm { get; }
    public LlamaAttention SelfAttn { get; }
    public RmsNorm PostAttentionLayernorm { get; }
    public LlamaMlp Mlp { get; }

    public LlamaDecoderLayer(LlamaConfig c, Rng rng)
    {
        InputLayernorm = RegisterModule("input_layernorm", new RmsNorm(c.HiddenSize, c.RmsNormEps));
        SelfAttn = RegisterModule("self_attn", new LlamaAttention(c, rng));
        PostAttentionLayernorm = RegisterModule("post_attention_layernorm", new RmsNorm(c.HiddenSize, c.RmsNormEps));
        Mlp = RegisterModule("mlp", new LlamaMlp(c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask, Tensor cos, Tensor sin, KvCache? cache, int layer)
    {
        var h = x + SelfAttn.Forward(InputLayernorm.Forward(x), mask, cos, sin, cache, layer);
        return h + Mlp.Forward(PostAttentionLayernorm.Forward(h));
    }
}

/// <summary>Token embeddings, the decoder layers and the final RMSNorm (LlamaModel).</summary>
public sealed class LlamaModel : Module
{
    public LlamaConfig Config { get; }
    public RotaryEmbedding Rotary { get; }
    public Embedding EmbedTokens { get; }
    public ModuleList<LlamaDecoderLayer> Layers { get; }
    public RmsNorm Norm { get; }

    public LlamaModel(LlamaConfig c, RotaryEmbedding rotary, Rng rng)
    {
        if (rotary.HeadDim != c.HeadDim) throw new ArgumentException($"The rotary embedding is for heads of {rotary.HeadDim}, the model's are {c.HeadDim}.");
        (Config, Rotary) = (c, rotary);
        EmbedTokens = RegisterModule("embed_tokens", ModelInit.Embedding(c.VocabSize, c.HiddenSize, rng));
        Layers = RegisterModule("layers", new ModuleList<LlamaDecoderLayer>());
        for (int i = 0; i < c.NumHiddenLayers; i++) Layers.Add(new LlamaDecoderLayer(c, rng));
        Norm = RegisterModule("norm", new RmsNorm(c.HiddenSize, c.RmsNormEps));
    }

    /// <summary>ids (B, T) → last hidden state (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, Tensor? mask, KvCache? cache, int[]? positions)
    {
        int past = cache?.Length ?? 0;
        if (Config.SlidingWindow is int w && past + t > w)
            throw new NotSupportedException($"A sequence of {past + t} tokens is longer than the model's sliding_window {w}; sliding-window attention is not implemented yet.");
        var pos = DecoderOps.Positions(b, t, past, positions, Config.MaxPositionEmbeddings);
        var (cos, sin) = Rotary.Angles(pos);
        var x = TensorScope.Release(() => EmbedTokens.Forward(ids, b, t));
        x = DecoderOps.RunLayers(Layers, x, (layer, i, h) => layer.Forward(h, mask, cos, sin, cache, i));
        return Norm.Forward(x);
    }
}

/// <summary>A Llama-family decoder with its language-modelling head, own or tied to the embeddings (LlamaForCausalLM).</summary>
public sealed class LlamaForCausalLM : CausalLm
{
    private readonly string _modelType;
    public LlamaConfig Config { get; }
    public LlamaModel Model { get; }
    /// <summary>The output projection, or null when it is tied to <c>model.embed_tokens</c>.</summary>
    public Linear? LmHead { get; }

    public LlamaForCausalLM(LlamaConfig c, RotaryEmbedding rotary, Rng rng, string modelType = "llama")
    {
        (Config, _modelType) = (c, modelType);
        Model = RegisterModule("model", new LlamaModel(c, rotary, rng));
        if (!c.TieWordEmbeddings) LmHead = RegisterModule("lm_head", ModelInit.Linear(c.HiddenSize, c.VocabSize, rng, bias: false));
    }

    public override Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, KvCache? cache = null, int[]? positions = null)
    {
        var h = Model.Forward(ids, batch, seqLen, attentionMask, cache, positions);
        return LmHead is null ? DecoderOps.TiedLogits(h, Model.EmbedTokens.Weight) : LmHead.Forward(h);
    }

    public override string ModelType => _modelType;
    public override int VocabSize => Config.VocabSize;
    public override int HiddenSize => Config.HiddenSize;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int KvWidth => Config.NumKeyValueHeads * Config.HeadDim;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string EmbeddingsPath => "model.embed_tokens";
    public override string LayerPath(int i) => $"model.layers.{i}";
    public override bool TiedEmbeddings => LmHead is null;
    public override string LoraTargets => "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj";
}

/// <summary>The Llama family in the registry: llama, mistral and qwen2 checkpoints (…ForCausalLM, keys under <c>model.</c>).</summary>
internal static class LlamaFamily
{
    public static readonly ModelFamily Definition = new(
        ModelTypes: ["llama", "mistral", "qwen2"],
        Keys: new HfCheckpointKeys("model.", Ignore:
        [
            "{base}layers.{n}.self_attn.rotary_emb.inv_freq",   // a buffer (older checkpoints): the frequencies are computed
            "lm_head.weight",                                   // only reached when the head is tied to embed_tokens
        ]),
        SequenceClassification: null,
        CausalLm: new(
            Create: (c, modelType, rng) =>
            {
                var config = LlamaConfig.FromHf(c, modelType);
                return new LlamaForCausalLM(config, RotaryEmbedding.FromHf(c, config.HeadDim), rng, modelType);
            },
            Transposed: []));
}
