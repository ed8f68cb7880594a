using Whetstone.Models.Bert;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Roberta;

// RoBERTa and XLM-RoBERTa, one file as transformers' modeling_roberta.py: the BERT encoder (same layer names, reused
// from Bert.cs) under new embeddings and a new classification head. Axis letters: B batch, T tokens, D hidden.

/// <summary>
/// Word + position + token-type embeddings. Positions are counted from the input ids as transformers does:
/// non-padding tokens get padding_idx + 1, padding_idx + 2, …; padding tokens get padding_idx.
/// </summary>
public sealed class RobertaEmbeddings : Module
{
    private readonly Embedding _word, _position, _tokenType;
    private readonly LayerNorm _norm;
    private readonly Dropout _dropout;
    private readonly int _pad;

    public RobertaEmbeddings(BertConfig c, Rng rng)
    {
        _pad = c.PadTokenId;
        _word = RegisterModule("word_embeddings", ModelInit.Embedding(c.VocabSize, c.HiddenSize, rng));
        _position = RegisterModule("position_embeddings", ModelInit.Embedding(c.MaxPositionEmbeddings, c.HiddenSize, rng));
        _tokenType = RegisterModule("token_type_embeddings", ModelInit.Embedding(Math.Max(1, c.TypeVocabSize), c.HiddenSize, rng));
        _norm = RegisterModule("LayerNorm", new LayerNorm(c.HiddenSize, c.LayerNormEps));
        _dropout = RegisterModule("dropout", new Dropout(c.HiddenDropoutProb, rng));
    }

    /// <summary>Position ids (B, T) for <paramref name="ids"/> (B, T), as transformers' create_position_ids_from_input_ids.</summary>
    public static int[] PositionIds(ReadOnlySpan<int> ids, int b, int t, int paddingIdx)
    {
        var pos = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            int count = 0;
            for (int j = 0; j < t; j++)
                pos[i * t + j] = ids[i * t + j] == paddingIdx ? paddingIdx : paddingIdx + ++count;
        }
        return pos;
    }

    /// <summary>ids (B, T) → (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, int[]? tokenTypes = null)
    {
        var positions = PositionIds(ids, b, t, _pad);
        int last = positions.Length == 0 ? 0 : positions.Max();
        if (last >= _position.Count)
            throw new ArgumentException($"Sequence of {t} tokens needs position {last}, beyond max_position_embeddings = {_position.Count} (padding_idx {_pad} + 1 + length).");
        var x = _word.Forward(ids, b, t) + _position.Forward(positions, b, t) + _tokenType.Forward(tokenTypes ?? new int[b * t], b, t);
        return _dropout.Forward(_norm.Forward(x));
    }
}

public sealed class RobertaModel : Module
{
    public BertConfig Config { get; }
    public RobertaEmbeddings Embeddings { get; }
    public BertEncoder Encoder { get; }

    public RobertaModel(BertConfig c, Rng rng)
    {
        Config = c;
        Embeddings = RegisterModule("embeddings", new RobertaEmbeddings(c, rng));
        Encoder = RegisterModule("encoder", new BertEncoder(c, rng));
    }

    /// <summary>ids (B, T), attention mask (B, T) → last hidden state (B, T, D).</summary>
    public Tensor Forward(int[] ids, int b, int t, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Encoder.Forward(TensorScope.Release(() => Embeddings.Forward(ids, b, t, tokenTypes)), attentionMask);
}

/// <summary>On the &lt;s&gt; token: dropout → dense → tanh → dropout → out_proj.</summary>
public sealed class RobertaClassificationHead : Module
{
    private readonly Dropout _dropout;
    public Linear Dense { get; }
    public Linear OutProj { get; }

    public RobertaClassificationHead(BertConfig c, int numLabels, Rng rng)
    {
        Dense = RegisterModule("dense", ModelInit.Linear(c.HiddenSize, c.HiddenSize, rng));
        _dropout = RegisterModule("dropout", new Dropout(c.ClassifierDropout ?? c.HiddenDropoutProb, rng));
        OutProj = RegisterModule("out_proj", ModelInit.Linear(c.HiddenSize, numLabels, rng));
    }

    /// <summary>the pooled vector (B, D) — the &lt;s&gt; token's hidden state, or the tokens' mean — → logits (B, labels).</summary>
    public Tensor Forward(Tensor pooled) =>
        OutProj.Forward(_dropout.Forward(Dense.Forward(_dropout.Forward(pooled)).Tanh()));
}

/// <summary>RobertaForSequenceClassification (also XLM-RoBERTa, which shares the architecture).</summary>
public sealed class RobertaForSequenceClassification : TextEncoderClassifier
{
    private readonly string _modelType;
    public BertConfig Config { get; }
    public RobertaModel Roberta { get; }
    public RobertaClassificationHead Classifier { get; }

    public RobertaForSequenceClassification(BertConfig c, int numLabels, Rng rng, string modelType = "roberta")
    {
        Config = c;
        _modelType = modelType;
        Roberta = RegisterModule("roberta", new RobertaModel(c, rng));
        Classifier = RegisterModule("classifier", new RobertaClassificationHead(c, numLabels, rng));
    }

    public override Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Classifier.Forward(FirstOrMean(Encode(ids, batch, seqLen, attentionMask, tokenTypes), attentionMask));

    public override Tensor Encode(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null) =>
        Roberta.Forward(ids, batch, seqLen, attentionMask, tokenTypes);

    public override string ModelType => _modelType;
    public override int NumLabels => Classifier.OutProj.OutFeatures;
    public override int HiddenSize => Config.HiddenSize;
    public override int NumLayers => Config.NumHiddenLayers;
    /// <summary>Positions start after padding_idx, so two fewer tokens than max_position_embeddings fit (514 → 512).</summary>
    public override int MaxSequenceLength => Config.MaxPositionEmbeddings - Config.PadTokenId - 1;
    public override string EmbeddingsPath => "roberta.embeddings";
    public override string LayerPath(int i) => $"roberta.encoder.layer.{i}";
    public override IReadOnlyList<string> HeadPaths => ["classifier"];
    public override string LoraTargets => "query|value";
    public override string LoraModulesToSave => "classifier";
}

/// <summary>RoBERTa and XLM-RoBERTa in the family registry; checkpoint keys are the module paths (optional <c>roberta.</c> prefix).</summary>
internal static class RobertaFamily
{
    public static readonly ModelFamily Definition = new(
        ModelTypes: ["roberta", "xlm-roberta"],
        Keys: new HfCheckpointKeys("roberta.", Ignore:
        [
            "{base}pooler.*",                             // RobertaModel's pooler: the classification head does not use it
            "{base}embeddings.position_ids",
            "{base}embeddings.token_type_ids",
        ]),
        SequenceClassification: new(
            Create: (c, type, labels, rng) => new RobertaForSequenceClassification(BertConfig.FromHf(c), labels, rng, type),
            LabelsModule: "classifier.out_proj",
            OptionalModules: ["classifier.dense", "classifier.out_proj"],
            Ignore: ["lm_head.*"]));                      // masked-LM head
}
