using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Bert;

// BERT (post-LN transformer encoder), one file for the whole family as in transformers' modeling_bert.py.
// Module and parameter names follow the Hugging Face checkpoint keys, so a state dict maps one to one.
// Axis letters: B batch, T tokens, D hidden, H heads, Dh head width, F intermediate width.

/// <summary>The subset of a Hugging Face BERT <c>config.json</c> that shapes the network; defaults are bert-base's.</summary>
public sealed record BertConfig(
    int VocabSize = 30522,
    int HiddenSize = 768,
    int NumHiddenLayers = 12,
    int NumAttentionHeads = 12,
    int IntermediateSize = 3072,
    int MaxPositionEmbeddings = 512,
    int TypeVocabSize = 2,
    float LayerNormEps = 1e-12f,
    string HiddenAct = "gelu",
    float HiddenDropoutProb = 0.1f,
    float AttentionProbsDropoutProb = 0.1f,
    int PadTokenId = 0,
    float InitializerRange = 0.02f,
    float? ClassifierDropout = null)
{
    public static BertConfig Base => new();

    /// <summary>Reads a BERT or RoBERTa/XLM-R <c>config.json</c> (missing fields take the transformers defaults).</summary>
    internal static BertConfig FromHf(HfConfig c) => new(
        VocabSize: c.Int("vocab_size", 30522),
        HiddenSize: c.Int("hidden_size", 768),
        NumHiddenLayers: c.Int("num_hidden_layers", 12),
        NumAttentionHeads: c.Int("num_attention_heads", 12),
        IntermediateSize: c.Int("intermediate_size", 3072),
        MaxPositionEmbeddings: c.Int("max_position_embeddings", 512),
        TypeVocabSize: c.Int("type_vocab_size", 2),
        LayerNormEps: c.Float("layer_norm_eps", 1e-12f),
        HiddenAct: c.String("hidden_act", "gelu"),
        HiddenDropoutProb: c.Float("hidden_dropout_prob", 0.1f),
        AttentionProbsDropoutProb: c.Float("attention_probs_dropout_prob", 0.1f),
        PadTokenId: c.Int("pad_token_id", 0),
        InitializerRange: c.Float("initializer_range", 0.02f),
        ClassifierDropout: c.FloatOrNull("classifier_dropout"));
}

/// <summary>Word + position (+ token type) embeddings, then LayerNorm and dropout.</summary>
public sealed class BertEmbeddings : Module
{
    private readonly Embedding _word, _position;
    private readonly Embedding? _tokenType;
    private readonly LayerNorm _norm;
    private readonly Dropout _dropout;

    public BertEmbeddings(BertConfig c, Rng rng)
    {
        _word = RegisterModule("word_embeddings", ModelInit.Embedding(c.VocabSize, c.HiddenSize, rng));
        _position = RegisterModule("position_embeddings", ModelInit.Embedding(c.MaxPositionEmbeddings, c.HiddenSize, rng));
        if (c.TypeVocabSize > 0) _tokenType = RegisterModule("token_type_embeddings", ModelInit.Embedding(c.TypeVocabSize, c.HiddenSize, rng));
        _norm = RegisterModule("LayerNorm", new LayerNorm(c.HiddenSize, c.LayerNormEps));
        _dropout = RegisterModule("dropout", new Dropout(c.HiddenDropoutProb, rng));
    }

    public Embedding WordEmbeddings => _word;

    /// <summary>ids (B, T) → (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, int[]? tokenTypes = null)
    {
        var positions = EncoderOps.AbsolutePositions(t, _position.Count);
        var x = _word.Forward(ids, b, t) + _position.Forward(positions, 1, t);
        if (_tokenType is not null) x += _tokenType.Forward(tokenTypes ?? new int[b * t], b, t);
        return _dropout.Forward(_norm.Forward(x));
    }
}

/// <summary>query/key/value projections and scaled dot-product attention over split heads.</summary>
public sealed class BertSelfAttention : Module, IRandomModule
{
    /// <summary>The attention-probability dropout's generator.</summary>
    public Rng Generator => _rng;

    private readonly int _heads;
    private readonly float _dropout;
    private readonly Rng _rng;
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }

    public BertSelfAttention(BertConfig c, Rng rng)
    {
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumAttentionHeads}.");
        _heads = c.NumAttentionHeads;
        Query = RegisterModule("query", ModelInit.Linear(c.HiddenSize, c.HiddenSize, rng));
        Key = RegisterModule("key", ModelInit.Linear(c.HiddenSize, c.HiddenSize, rng));
        Value = RegisterModule("value", ModelInit.Linear(c.HiddenSize, c.HiddenSize, rng));
        _dropout = c.AttentionProbsDropoutProb;
        _rng = rng;
    }

    /// <summary>x (B, T, D), mask (B, T) of 1/0 → context (B, T, D).</summary>
    public Tensor Forward(Tensor x, Tensor? mask) =>
        EncoderOps.SelfAttention(Query.Forward(x), Key.Forward(x), Value.Forward(x), _heads, mask, IsTraining ? _dropout : 0, _rng);
}

/// <summary>A dense projection followed by dropout, a residual add and LayerNorm (BertSelfOutput / BertOutput).</summary>
public sealed class BertResidualOutput : Module
{
    private readonly Dropout _dropout;
    public Linear Dense { get; }
    public LayerNorm Norm { get; }

    public BertResidualOutput(int inFeatures, BertConfig c, Rng rng)
    {
        Dense = RegisterModule("dense", ModelInit.Linear(inFeatures, c.HiddenSize, rng));
        Norm = RegisterModule("LayerNorm", new LayerNorm(c.HiddenSize, c.LayerNormEps));
        _dropout = RegisterModule("dropout", new Dropout(c.HiddenDropoutProb, rng));
    }

    public Tensor Forward(Tensor hidden, Tensor residual) => EncoderOps.AddNorm(Norm, _dropout.Forward(Dense.Forward(hidden)), residual);
}

public sealed class BertAttention : Module
{
    public BertSelfAttention Self { get; }
    public BertResidualOutput Output { get; }

    public BertAttention(BertConfig c, Rng rng)
    {
        Self = RegisterModule("self", new BertSelfAttention(c, rng));
        Output = RegisterModule("output", new BertResidualOutput(c.HiddenSize, c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask) => Output.Forward(Self.Forward(x, mask), x);
}

public sealed class BertIntermediate : Module
{
    private readonly bool _tanhGelu;
    public Linear Dense { get; }

    public BertIntermediate(BertConfig c, Rng rng)
    {
        _tanhGelu = c.HiddenAct switch
        {
            "gelu" => false,
            "gelu_new" or "gelu_pytorch_tanh" => true,
            _ => throw new NotSupportedException($"hidden_act '{c.HiddenAct}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)."),
        };
        Dense = RegisterModule("dense", ModelInit.Linear(c.HiddenSize, c.IntermediateSize, rng));
    }

    public Tensor Forward(Tensor x) => Dense.ForwardGelu(x, _tanhGelu);
}

public sealed class BertLayer : Module
{
    public BertAttention Attention { get; }
    public BertIntermediate Intermediate { get; }
    public BertResidualOutput Output { get; }

    public BertLayer(BertConfig c, Rng rng)
    {
        Attention = RegisterModule("attention", new BertAttention(c, rng));
        Intermediate = RegisterModule("intermediate", new BertIntermediate(c, rng));
        Output = RegisterModule("output", new BertResidualOutput(c.IntermediateSize, c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask)
    {
        var a = Attention.Forward(x, mask);
        return Output.Forward(Intermediate.Forward(a), a);
    }
}

public sealed class BertEncoder : Module
{
    public ModuleList<BertLayer> Layer { get; }

    public BertEncoder(BertConfig c, Rng rng)
    {
        Layer = RegisterModule("layer", new ModuleList<BertLayer>());
        for (int i = 0; i < c.NumHiddenLayers; i++) Layer.Add(new BertLayer(c, rng));
    }

    public Tensor Forward(Tensor x, Tensor? mask) => EncoderOps.RunLayers(Layer, x, (layer, h) => layer.Forward(h, mask));
}

/// <summary>tanh(dense(h[:, 0])): the [CLS] pooler.</summary>
public sealed class BertPooler : Module
{
    public Linear Dense { get; }

    public BertPooler(BertConfig c, Rng rng) => Dense = RegisterModule("dense", ModelInit.Linear(c.HiddenSize, c.HiddenSize, rng));

    public Tensor Forward(Tensor hidden) => Dense.Forward(hidden.Select(1, 0)).Tanh();
}

public sealed class BertModel : Module
{
    public BertConfig Config { get; }
    public BertEmbeddings Embeddings { get; }
    public BertEncoder Encoder { get; }
    public BertPooler Pooler { get; }

    public BertModel(BertConfig c, Rng rng)
    {
        Config = c;
        Embeddings = RegisterModule("embeddings", new BertEmbeddings(c, rng));
        Encoder = RegisterModule("encoder", new BertEncoder(c, rng));
        Pooler = RegisterModule("pooler", new BertPooler(c, rng));
    }

    /// <summary>ids (B, T), attention mask (B, T) of 1/0 or null → (last hidden state (B, T, D), pooled (B, D)).</summary>
    public (Tensor Hidden, Tensor Pooled) Forward(int[] ids, int b, int t, Tensor? attentionMask = null, int[]? tokenTypes = null)
    {
        var h = Encode(ids, b, t, attentionMask, tokenTypes);
        return (h, Pooler.Forward(h));
    }

    /// <summary>The last hidden state (B, T, D) alone (the pooler is not run).</summary>
    public Tensor Encode(int[] ids, int b, int t, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Encoder.Forward(TensorScope.Release(() => Embeddings.Forward(ids, b, t, tokenTypes)), attentionMask);
}

/// <summary>BERT with a dropout + linear classifier on the pooled [CLS] vector (BertForSequenceClassification).</summary>
public sealed class BertForSequenceClassification : TextEncoderClassifier
{
    private readonly Dropout _dropout;
    public BertConfig Config { get; }
    public BertModel Bert { get; }
    public Linear Classifier { get; }

    public BertForSequenceClassification(BertConfig c, int numLabels, Rng rng)
    {
        Config = c;
        Bert = RegisterModule("bert", new BertModel(c, rng));
        _dropout = RegisterModule("dropout", new Dropout(c.ClassifierDropout ?? c.HiddenDropoutProb, rng));
        Classifier = RegisterModule("classifier", ModelInit.Linear(c.HiddenSize, numLabels, rng));
    }

    /// <summary>Logits (B, labels).</summary>
    public override Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null)
    {
        if (Pooling == TextPooling.Cls) return Classifier.Forward(_dropout.Forward(Bert.Forward(ids, batch, seqLen, attentionMask, tokenTypes).Pooled));
        return Classifier.Forward(_dropout.Forward(MeanPool(Encode(ids, batch, seqLen, attentionMask, tokenTypes), attentionMask)));
    }

    public override Tensor Encode(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Bert.Encode(ids, batch, seqLen, attentionMask, tokenTypes);

    public override string ModelType => "bert";
    public override int NumLabels => Classifier.OutFeatures;
    public override int HiddenSize => Config.HiddenSize;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int MaxSequenceLength => Config.MaxPositionEmbeddings;
    public override string EmbeddingsPath => "bert.embeddings";
    public override string LayerPath(int i) => $"bert.encoder.layer.{i}";
    public override IReadOnlyList<string> HeadPaths => Pooling == TextPooling.Mean ? ["classifier"] : ["bert.pooler", "classifier"];
    public override IReadOnlyList<string> UnusedWhenMean => ["bert.pooler"];
    public override string LoraTargets => "query|value";
    public override string LoraModulesToSave => "classifier";
}

/// <summary>
/// BERT in the family registry. Checkpoint keys are the module paths (BertModel and sentence-transformers checkpoints
/// without the <c>bert.</c> prefix); covers BertModel, BertFor{SequenceClassification, PreTraining, MaskedLM}.
/// </summary>
internal static class BertFamily
{
    public static readonly ModelFamily Definition = new(
        ModelTypes: ["bert"],
        Keys: new HfCheckpointKeys("bert.", Ignore:
        [
            "{base}embeddings.position_ids",              // a buffer: positions are computed
            "{base}embeddings.token_type_ids",            // a buffer of zeros
        ]),
        SequenceClassification: new(
            Create: (c, _, labels, rng) => new BertForSequenceClassification(BertConfig.FromHf(c), labels, rng),
            LabelsModule: "classifier",
            OptionalModules: ["bert.pooler.dense", "classifier"],
            Ignore: ["cls.*"]));                          // masked-LM / next-sentence pre-training heads
}
