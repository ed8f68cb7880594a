using Whetstone.Models.Tokenizers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Transformers;

/// <summary>What the classification head reads from the encoder's last hidden state.</summary>
public enum TextPooling
{
    /// <summary>The first token ([CLS] / &lt;s&gt;), through the family's own pooler where it has one (transformers' default).</summary>
    Cls,
    /// <summary>The mean over real (unmasked) tokens, as sentence-transformers embeds a sentence.</summary>
    Mean,
}

/// <summary>
/// What a text-classification recipe needs from any encoder family (BERT, DistilBERT, RoBERTa/XLM-R): logits for a
/// padded batch of token ids, the encoder's hidden states, the label count, the tokenizer and the module paths to
/// freeze or adapt. The module paths are dotted names in this module tree (also the checkpoint keys' prefixes).
/// </summary>
public abstract class TextEncoderClassifier : Module
{
    /// <summary>The Hugging Face <c>model_type</c> (bert, distilbert, roberta, xlm-roberta).</summary>
    public abstract string ModelType { get; }
    public abstract int NumLabels { get; }
    public abstract int HiddenSize { get; }
    public abstract int NumLayers { get; }
    /// <summary>Largest sequence the position embeddings allow.</summary>
    public abstract int MaxSequenceLength { get; }

    /// <summary>ids (B, T), attention mask (B, T) of 1/0 or null, token types (B, T) or null → logits (B, labels).</summary>
    public abstract Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null);

    /// <summary>The encoder's last hidden state (B, T, D), before any head.</summary>
    public abstract Tensor Encode(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, int[]? tokenTypes = null);

    /// <summary>The embeddings module path, e.g. <c>bert.embeddings</c>.</summary>
    public abstract string EmbeddingsPath { get; }
    /// <summary>Path of transformer layer <paramref name="i"/>, e.g. <c>bert.encoder.layer.3</c>.</summary>
    public abstract string LayerPath(int i);
    /// <summary>Modules above the last layer (pooler and classifier); trained in head-only fine-tuning.</summary>
    public abstract IReadOnlyList<string> HeadPaths { get; }
    /// <summary>Default LoRA target pattern for <see cref="Nn.Lora.LoraConfig.TargetModules"/> (query and value projections).</summary>
    public abstract string LoraTargets { get; }
    /// <summary>Pattern of the modules kept trainable and saved beside LoRA adapters (PEFT's modules_to_save).</summary>
    public abstract string LoraModulesToSave { get; }

    /// <summary>
    /// What a LoRA adapter file holds for this model: the adapter tensors (<c>…lora_A.weight</c>, <c>…lora_B.weight</c>)
    /// plus every tensor of the modules matching <see cref="LoraModulesToSave"/> (the classification head), by module path.
    /// </summary>
    public OrderedDictionary<string, Tensor> AdapterStateDict()
    {
        var d = Nn.Lora.LoraInjector.AdapterStateDict(this);
        foreach (var (name, m) in NamedModules())
            if (name.Length > 0 && Nn.Lora.LoraInjector.Matches(LoraModulesToSave, name))
                foreach (var (k, v) in m.StateDict()) d[name + "." + k] = v;
        return d;
    }

    /// <summary>
    /// The head's input: <see cref="TextPooling.Cls"/> (default) or <see cref="TextPooling.Mean"/>. With mean pooling
    /// the modules in <see cref="UnusedWhenMean"/> (BERT's pooler) take no part and should be frozen.
    /// </summary>
    public TextPooling Pooling { get; set; }

    /// <summary>Modules the forward pass skips under <see cref="TextPooling.Mean"/>.</summary>
    public virtual IReadOnlyList<string> UnusedWhenMean => [];

    /// <summary>(B, T, D) → (B, D): the first token, or the masked mean over tokens under <see cref="TextPooling.Mean"/>.</summary>
    protected Tensor FirstOrMean(Tensor hidden, Tensor? mask) => Pooling == TextPooling.Mean ? MeanPool(hidden, mask) : hidden.Select(1, 0);

    /// <summary>Mean of <paramref name="hidden"/> (B, T, D) over the tokens whose <paramref name="mask"/> (B, T) is 1.</summary>
    public static Tensor MeanPool(Tensor hidden, Tensor? mask)
    {
        if (mask is null) return hidden.Mean(1);
        var m = mask.Unsqueeze(2);                                   // (B, T, 1)
        return (hidden * m).Sum(1) / (m.Sum(1) + 1e-9f);             // (B, D) / (B, 1)
    }

    /// <summary>The checkpoint's tokenizer when the model was loaded from a folder that has one.</summary>
    public HfTokenizer? Tokenizer { get; set; }
}
