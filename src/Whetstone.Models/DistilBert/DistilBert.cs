using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.DistilBert;

// DistilBERT (6-layer distilled BERT without token types or pooler), one file as transformers' modeling_distilbert.py.
// Module names are the Hugging Face checkpoint keys. Axis letters: B batch, T tokens, D dim, H heads, Dh head width.

/// <summary>The subset of a DistilBERT <c>config.json</c> that shapes the network; defaults are distilbert-base's.</summary>
public sealed record DistilBertConfig(
    int VocabSize = 30522,
    int Dim = 768,
    int NLayers = 6,
    int NHeads = 12,
    int HiddenDim = 3072,
    int MaxPositionEmbeddings = 512,
    string Activation = "gelu",
    float Dropout = 0.1f,
    float AttentionDropout = 0.1f,
    float SeqClassifDropout = 0.2f,
    int PadTokenId = 0,
    float InitializerRange = 0.02f)
{
    /// <summary>DistilBERT's LayerNorm epsilon is fixed in transformers (not a config field).</summary>
    public const float LayerNormEps = 1e-12f;

    internal static DistilBertConfig FromHf(HfConfig c) => new(
        VocabSize: c.Int("vocab_size", 30522),
        Dim: c.Int("dim", 768),
        NLayers: c.Int("n_layers", 6),
        NHeads: c.Int("n_heads", 12),
        HiddenDim: c.Int("hidden_dim", 3072),
        MaxPositionEmbeddings: c.Int("max_position_embeddings", 512),
        Activation: c.String("activation", "gelu"),
        Dropout: c.Float("dropout", 0.1f),
        AttentionDropout: c.Float("attention_dropout", 0.1f),
        SeqClassifDropout: c.Float("seq_classif_dropout", 0.2f),
        PadTokenId: c.Int("pad_token_id", 0),
        InitializerRange: c.Float("initializer_range", 0.02f));
}

/// <summary>Word + position embeddings (no token types), LayerNorm, dropout.</summary>
public sealed class DistilBertEmbeddings : Module
{
    private readonly Embedding _word, _position;
    private readonly LayerNorm _norm;
    private readonly Dropout _dropout;

    public DistilBertEmbeddings(DistilBertConfig c, Rng rng)
    {
        _word = RegisterModule("word_embeddings", ModelInit.Embedding(c.VocabSize, c.Dim, rng));
        _position = RegisterModule("position_embeddings", ModelInit.Embedding(c.MaxPositionEmbeddings, c.Dim, rng));
        _norm = RegisterModule("LayerNorm", new LayerNorm(c.Dim, DistilBertConfig.LayerNormEps));
        _dropout = RegisterModule("dropout", new Dropout(c.Dropout, rng));
    }

    /// <summary>ids (B, T) → (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t)
    {
        var positions = EncoderOps.AbsolutePositions(t, _position.Count);
        return _dropout.Forward(_norm.Forward(_word.Forward(ids, b, t) + _position.Forward(positions, 1, t)));
    }
}

/// <summary>q_lin/k_lin/v_lin, scaled dot-product attention over split heads, out_lin.</summary>
public sealed class DistilBertMultiHeadSelfAttention : Module, IRandomModule
{
    /// <summary>The attention-probability dropout's generator.</summary>
    public Rng Generator => _rng;

    private readonly int _heads;
    private readonly float _dropout;
    private readonly Rng _rng;
    public Linear QLin { get; }
    public Linear KLin { get; }
    public Linear VLin { get; }
    public Linear OutLin { get; }

    public DistilBertMultiHeadSelfAttention(DistilBertConfig c, Rng rng)
    {
        if (c.Dim % c.NHeads != 0) throw new ArgumentException($"dim {c.Dim} is not divisible by n_heads {c.NHeads}.");
        _heads = c.NHeads;
        QLin = RegisterModule("q_lin", ModelInit.Linear(c.Dim, c.Dim, rng));
        KLin = RegisterModule("k_lin", ModelInit.Linear(c.Dim, c.Dim, rng));
        VLin = RegisterModule("v_lin", ModelInit.Linear(c.Dim, c.Dim, rng));
        OutLin = RegisterModule("out_lin", ModelInit.Linear(c.Dim, c.Dim, rng));
        _dropout = c.AttentionDropout;
        _rng = rng;
    }

    /// <summary>x (B, T, D), mask (B, T) of 1/0 → (B, T, D).</summary>
    public Tensor Forward(Tensor x, Tensor? mask) =>
        OutLin.Forward(EncoderOps.SelfAttention(QLin.Forward(x), KLin.Forward(x), VLin.Forward(x), _heads, mask, IsTraining ? _dropout : 0, _rng));
}

/// <summary>lin1 → activation → lin2 → dropout.</summary>
public sealed class DistilBertFfn : Module
{
    private readonly string _activation;
    private readonly Dropout _dropout;
    public Linear Lin1 { get; }
    public Linear Lin2 { get; }

    public DistilBertFfn(DistilBertConfig c, Rng rng)
    {
        _activation = c.Activation is "gelu" or "relu" ? c.Activation
            : throw new NotSupportedException($"activation '{c.Activation}' is not supported (gelu, relu).");
        Lin1 = RegisterModule("lin1", ModelInit.Linear(c.Dim, c.HiddenDim, rng));
        Lin2 = RegisterModule("lin2", ModelInit.Linear(c.HiddenDim, c.Dim, rng));
        _dropout = RegisterModule("dropout", new Dropout(c.Dropout, rng));
    }

    public Tensor Forward(Tensor x)
    {
        var h = Lin1.Forward(x);
        return _dropout.Forward(Lin2.Forward(_activation == "gelu" ? h.Gelu() : h.Relu()));
    }
}

/// <summary>Post-LN block: sa_layer_norm(attention(x) + x), then output_layer_norm(ffn(·) + ·).</summary>
public sealed class DistilBertTransformerBlock : Module
{
    public DistilBertMultiHeadSelfAttention Attention { get; }
    public LayerNorm SaLayerNorm { get; }
    public DistilBertFfn Ffn { get; }
    public LayerNorm OutputLayerNorm { get; }

    public DistilBertTransformerBlock(DistilBertConfig c, Rng rng)
    {
        Attention = RegisterModule("attention", new DistilBertMultiHeadSelfAttention(c, rng));
        SaLayerNorm = RegisterModule("sa_layer_norm", new LayerNorm(c.Dim, DistilBertConfig.LayerNormEps));
        Ffn = RegisterModule("ffn", new DistilBertFfn(c, rng));
        OutputLayerNorm = RegisterModule("output_layer_norm", new LayerNorm(c.Dim, DistilBertConfig.LayerNormEps));
    }

    public Tensor Forward(Tensor x, Tensor? mask)
    {
        var sa = EncoderOps.AddNorm(SaLayerNorm, Attention.Forward(x, mask), x);
        return EncoderOps.AddNorm(OutputLayerNorm, Ffn.Forward(sa), sa);
    }
}

public sealed class DistilBertTransformer : Module
{
    public ModuleList<DistilBertTransformerBlock> Layer { get; }

    public DistilBertTransformer(DistilBertConfig c, Rng rng)
    {
        Layer = RegisterModule("layer", new ModuleList<DistilBertTransformerBlock>());
        for (int i = 0; i < c.NLayers; i++) Layer.Add(new DistilBertTransformerBlock(c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask) => EncoderOps.RunLayers(Layer, x, (layer, h) => layer.Forward(h, mask));
}

public sealed class DistilBertModel : Module
{
    public DistilBertConfig Config { get; }
    public DistilBertEmbeddings Embeddings { get; }
    public DistilBertTransformer Transformer { get; }

    public DistilBertModel(DistilBertConfig c, Rng rng)
    {
        Config = c;
        Embeddings = RegisterModule("embeddings", new DistilBertEmbeddings(c, rng));
        Transformer = RegisterModule("transformer", new DistilBertTransformer(c, rng));
    }

    /// <summary>ids (B, T), mask (B, T) → last hidden state (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, Tensor? attentionMask = null) =>
        Transformer.Forward(TensorScope.Release(() => Embeddings.Forward(ids, b, t)), attentionMask);
}

/// <summary>DistilBERT with pre_classifier → ReLU → dropout → classifier on the first token (DistilBertForSequenceClassification).</summary>
public sealed class DistilBertForSequenceClassification : TextEncoderClassifier
{
    private readonly Dropout _dropout;
    public DistilBertConfig Config { get; }
    public DistilBertModel DistilBert { get; }
    public Linear PreClassifier { get; }
    public Linear Classifier { get; }

    public DistilBertForSequenceClassification(DistilBertConfig c, int numLabels, Rng rng)
    {
        Config = c;
        DistilBert = RegisterModule("distilbert", new DistilBertModel(c, rng));
        PreClassifier = RegisterModule("pre_classifier", ModelInit.Linear(c.Dim, c.Dim, rng));
        Classifier = RegisterModule("classifier", ModelInit.Linear(c.Dim, numLabels, rng));
        _dropout = RegisterModule("dropout", new Dropout(c.SeqClassifDropout, rng));
    }

    /// <summary>Token types do not exist in DistilBERT and are ignored.</summary>
    public override Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Classifier.Forward(_dropout.Forward(PreClassifier.Forward(FirstOrMean(Encode(ids, batch, seqLen, attentionMask), attentionMask)).Relu()));

    public override Tensor Encode(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        DistilBert.Forward(ids, batch, seqLen, attentionMask);

    public override string ModelType => "distilbert";
    public override int NumLabels => Classifier.OutFeatures;
    public override int HiddenSize => Config.Dim;
    public override int NumLayers => Config.NLayers;
    public override int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public override string EmbeddingsPath => "distilbert.embeddings";
    public override string LayerPath(int i) => $"distilbert.transformer.layer.{i}";
    public override IReadOnlyList<string> HeadPaths => ["pre_classifier", "classifier"];
    public override string LoraTargets => "q_lin|v_lin";
    public override string LoraModulesToSave => "pre_classifier|classifier";
}

/// <summary>DistilBERT in the family registry; checkpoint keys are the module paths (optional <c>distilbert.</c> prefix).</summary>
internal static class DistilBertFamily
{
    public static readonly ModelFamily Definition = new(
        ModelTypes: ["distilbert"],
        Keys: new HfCheckpointKeys("distilbert.", Ignore: ["{base}embeddings.position_ids"]),
        SequenceClassification: new(
            Create: (c, _, labels, rng) => new DistilBertForSequenceClassification(DistilBertConfig.FromHf(c), labels, rng),
            LabelsModule: "classifier",
            OptionalModules: ["pre_classifier", "classifier"],
            Ignore: ["vocab_transform.*", "vocab_layer_norm.*", "vocab_projector.*"]));   // DistilBertForMaskedLM's head
}
