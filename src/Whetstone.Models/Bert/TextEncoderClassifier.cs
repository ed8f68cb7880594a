using Whetstone.Models.Tokenizers;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models;

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

    /// <summary>The checkpoint's tokenizer when the model was loaded from a folder that has one.</summary>
    public HfTokenizer? Tokenizer { get; set; }
}

/// <summary>
/// While a <see cref="SkipWeightInit"/> scope is open, model constructors leave weights at zero instead of drawing
/// them: a checkpoint is about to overwrite them, and drawing 110M numbers would cost more than the load itself.
/// </summary>
internal static class ModelInit
{
    [ThreadStatic] private static int _skip;

    public static IDisposable SkipWeightInit()
    {
        _skip++;
        return new Scope();
    }

    /// <summary>The generator to initialise weights with, or null while skipping.</summary>
    public static Rng? Weights(Rng rng) => _skip > 0 ? null : rng;

    public static Linear Linear(int inFeatures, int outFeatures, Rng rng) => new(inFeatures, outFeatures, true, Weights(rng));

    public static Embedding Embedding(int count, int dim, Rng rng) => new(count, dim, Weights(rng));

    private sealed class Scope : IDisposable
    {
        private bool _done;
        public void Dispose() { if (!_done) { _done = true; _skip--; } }
    }

    /// <summary>Hugging Face's <c>_init_weights</c> for a fresh module: Linear/Embedding N(0, σ), bias 0, LayerNorm 1/0.</summary>
    public static void HfInit(Module module, Rng rng, double std)
    {
        foreach (var (_, m) in module.NamedModules())
            switch (m)
            {
                case Linear l:
                    Init.Normal(l.Weight, rng, 0, std);
                    if (l.Bias is not null) Init.Zeros(l.Bias);
                    break;
                case Embedding e:
                    Init.Normal(e.Weight, rng, 0, std);
                    break;
                case LayerNorm n:
                    Init.Ones(n.Weight);
                    Init.Zeros(n.Bias);
                    break;
            }
    }
}

/// <summary>Pieces every encoder family runs the same way.</summary>
internal static class EncoderOps
{
    /// <summary>
    /// Multi-head scaled dot-product attention of projected q, k, v (B, T, D) with a padding mask (B, T) of 1/0 → the
    /// merged heads (B, T, D). Attention dropout <paramref name="dropout"/> applies only while training.
    /// </summary>
    public static Tensor SelfAttention(Tensor q, Tensor k, Tensor v, int heads, Tensor? mask, float dropout, Rng rng)
    {
        int b = q.Dim(0), t = q.Dim(1), d = q.Dim(2), dh = d / heads;
        Tensor Split(Tensor y) => y.Reshape(b, t, heads, dh).Permute(0, 2, 1, 3);        // (B, H, T, Dh)
        var ctx = Tensor.ScaledDotProductAttention(Split(q), Split(k), Split(v), causal: false, mask,
            dropout: dropout, rng: dropout > 0 ? rng : null);
        return ctx.Permute(0, 2, 1, 3).Reshape(b, t, d);                                  // free: stored (B, T, H, Dh)
    }

    /// <summary>Runs the layers in order; each layer's activations are released unless something needs their gradient.</summary>
    public static Tensor RunLayers<T>(IEnumerable<T> layers, Tensor x, Func<T, Tensor, Tensor> forward)
    {
        foreach (var layer in layers)
        {
            var input = x;
            x = TensorScope.Release(() => forward(layer, input));   // frozen layers keep no activations
        }
        return x;
    }
}
