using System.Text.Json.Nodes;
using Whetstone.Nn;
using Whetstone.Tensors;

namespace Whetstone.Models.Text;

/// <summary>
/// The pre-trained part of a text classifier: turns text into token ids and a batch of ids into one feature vector per
/// example. Word vectors (<see cref="WordVectors.WordVectorEncoder"/>) are one; a transformer encoder is another.
/// </summary>
public interface ITextEncoder
{
    /// <summary>Size of the feature vector per example.</summary>
    int OutputDim { get; }

    /// <summary>Token ids of <paramref name="text"/> (and a second text for pair tasks), at most <paramref name="maxLength"/>; never empty.</summary>
    int[] Tokenize(string text, string? pair, int maxLength);

    /// <summary>Words of <paramref name="text"/> counted for the data report (length before truncation) and whether each is known.</summary>
    (int Tokens, int Unknown) Count(string text);

    /// <summary>Features [B, OutputDim] of a batch of token-id lists.</summary>
    Tensor Encode(IReadOnlyList<int[]> batch);

    /// <summary>Whether any of the encoder's weights train (if not, features can be computed once per dataset).</summary>
    bool Trains { get; }

    /// <summary>What a bundle needs to rebuild the encoder (kind, sizes, where the pre-trained weights are).</summary>
    JsonObject Spec();
}

/// <summary>
/// A text encoder plus a fresh task head: <c>head(dropout(encoder(ids)))</c>. Checkpoint names: <c>encoder.…</c>, <c>head.…</c>
/// (frozen pre-trained tables that are not parameters are not in the state dict).
/// </summary>
public sealed class TextClassifier : Module
{
    public ITextEncoder Encoder { get; }
    public Module<Tensor, Tensor> Head { get; }
    public HeadSpec HeadSpec { get; }
    /// <summary>Dropout on the encoder's features (training mode only).</summary>
    public float FeatureDropout { get; }
    private readonly Nn.Layers.Dropout _dropout;

    public TextClassifier(ITextEncoder encoder, HeadSpec head, Rng rng, float featureDropout = 0)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(head);
        if (encoder is not Module m) throw new ArgumentException("The encoder must be a Module.", nameof(encoder));
        Encoder = encoder;
        RegisterModule("encoder", m);
        HeadSpec = head;
        FeatureDropout = featureDropout;
        _dropout = new Nn.Layers.Dropout(featureDropout, rng);
        Head = RegisterModule("head", head.Build(encoder.OutputDim, rng));
    }

    /// <summary>Logits [B, classes] of a batch of token-id lists.</summary>
    public Tensor Forward(IReadOnlyList<int[]> batch) => ForwardFeatures(Encoder.Encode(batch));

    /// <summary>Logits from features computed earlier by the encoder (when it does not train).</summary>
    public Tensor ForwardFeatures(Tensor features) => Head.Forward(IsTraining ? _dropout.Forward(features) : features);

    protected override void OnModeChanged(bool training) => _dropout.Train(training);
}
