using System.Text.Json.Nodes;
using Whetstone.Models.Text;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.WordVectors;

/// <summary>
/// How words become one vector: <c>pool</c> (mean and max over the valid tokens, concatenated: 2·D features) or
/// <c>cnn</c> (a 1-D convolution per kernel size over the token vectors, ReLU, max over time: filters × kernel sizes).
/// <see cref="TuneVectors"/> lets the vectors of <see cref="TunedWords"/> train (all other words stay frozen).
/// </summary>
public sealed record WordEncoderSpec
{
    public string Kind { get; init; } = "pool";
    public int Filters { get; init; } = 100;
    public IReadOnlyList<int> KernelSizes { get; init; } = [3, 4, 5];
    public bool TuneVectors { get; init; }
    /// <summary>Words whose vectors train when <see cref="TuneVectors"/> (the training data's vocabulary).</summary>
    public IReadOnlyList<string> TunedWords { get; init; } = [];

    public void Validate()
    {
        if (Kind is not ("pool" or "cnn")) throw new ArgumentException($"The word-vector encoder is pool or cnn; got '{Kind}'.");
        if (Kind == "cnn" && (Filters < 1 || KernelSizes.Count == 0 || KernelSizes.Any(k => k < 1)))
            throw new ArgumentException($"A cnn encoder needs filters ≥ 1 and kernel sizes ≥ 1 (got {Filters}, [{string.Join(", ", KernelSizes)}]).");
    }
}

/// <summary>
/// Pre-trained word vectors under a trainable encoder. Token ids index <see cref="WordVectors.Table"/> (frozen, not a
/// parameter — 341k × 100 floats stay out of checkpoints); with <see cref="WordEncoderSpec.TuneVectors"/>, the tuned
/// words get ids past the table and read <c>tuned.weight</c> (row 0 there: a learned offset for every other word).
/// Checkpoint names: <c>tuned.weight</c>, <c>convs.{i}.weight/bias</c> (a kernel-k convolution stored as a linear
/// map over k consecutive token vectors, [filters, k·D]).
/// </summary>
public sealed class WordVectorEncoder : Module, ITextEncoder
{
    private readonly Dictionary<string, int> _tuned = new(StringComparer.Ordinal);
    private readonly ModuleList<Linear>? _convs;

    public WordVectors Vectors { get; }
    public WordEncoderSpec EncoderSpec { get; }
    public Embedding? Tuned { get; }
    public int OutputDim { get; }
    public bool Trains => Parameters().Any(p => p.RequiresGrad);

    /// <summary>Run the convolutions through the Conv2d kernel (H = 1) instead of unfold + GEMM (same weights, same result).</summary>
    public static bool UseConv2d { get; set; }

    public WordVectorEncoder(WordVectors vectors, WordEncoderSpec spec, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(rng);
        spec.Validate();
        Vectors = vectors;
        EncoderSpec = spec;
        int d = vectors.Dim;
        if (spec.TuneVectors)
        {
            foreach (var w in spec.TunedWords) _tuned.TryAdd(w, _tuned.Count + 1);
            Tuned = RegisterModule("tuned", new Embedding(_tuned.Count + 1, d));
            var table = Tuned.Weight.Span;
            table[..d].Clear();
            foreach (var (w, row) in _tuned) vectors.Row(vectors.Id(w)).CopyTo(table.Slice(row * d, d));
        }
        if (spec.Kind == "cnn")
        {
            _convs = RegisterModule("convs", new ModuleList<Linear>(spec.KernelSizes.Select(k => new Linear(k * d, spec.Filters, true, rng))));
            OutputDim = spec.Filters * spec.KernelSizes.Count;
        }
        else OutputDim = 2 * d;
    }

    public (int Tokens, int Unknown) Count(string text)
    {
        var words = WordTokenizer.Words(text, Vectors.Contains);
        return (words.Count, words.Count(w => !Vectors.Contains(w)));
    }

    public int[] Tokenize(string text, string? pair, int maxLength)
    {
        var ids = WordTokenizer.Encode(Vectors, pair is null ? text : text + " \n " + pair, maxLength);
        if (ids.Length == 0) ids = [WordVectors.UnkId];
        if (_tuned.Count > 0)
        {
            var words = WordTokenizer.Words(pair is null ? text : text + " \n " + pair, Vectors.Contains);
            for (int i = 0; i < ids.Length && i < words.Count; i++)
                if (_tuned.TryGetValue(words[i], out int row)) ids[i] = Vectors.Rows + row - 1;
        }
        return ids;
    }

    /// <summary>Features [B, OutputDim]: (B, T, D) token vectors, masked past each example's length.</summary>
    public Tensor Encode(IReadOnlyList<int[]> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int b = batch.Count, d = Vectors.Dim, minT = _convs is null ? 1 : EncoderSpec.KernelSizes.Max();
        int t = Math.Max(minT, batch.Max(x => x.Length));
        var x = Embed(batch, t);                                  // (B, T, D)
        return _convs is null ? Pool(x, batch, t) : Convolve(x, batch, t);
    }

    private Tensor Embed(IReadOnlyList<int[]> batch, int t)
    {
        int b = batch.Count, d = Vectors.Dim, rows = Vectors.Rows;
        var x = Tensor.Zeros(b, t, d);
        var xs = x.Span;
        int[]? tunedIds = Tuned is null ? null : new int[b * t];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < batch[i].Length; j++)
            {
                int id = batch[i][j];
                if (id >= rows) { tunedIds![i * t + j] = id - rows + 1; continue; }   // a tuned word: its row lives in tuned.weight
                if ((uint)id >= (uint)rows) throw new ArgumentException($"Token id {id} is outside the vector table ({rows} rows).");
                Vectors.Row(id).CopyTo(xs.Slice((i * t + j) * d, d));
            }
        return tunedIds is null ? x : x + Tuned!.Forward(tunedIds, b, t);
    }

    private static Tensor Masks(IReadOnlyList<int[]> batch, int t, int shrink, out Tensor invalid)
    {
        int b = batch.Count, l = t - shrink;
        var valid = Tensor.Zeros(b, l, 1);
        invalid = Tensor.Ones(b, l, 1);
        var v = valid.Span; var iv = invalid.Span;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < Math.Max(1, Math.Min(l, batch[i].Length - shrink)); j++) { v[i * l + j] = 1; iv[i * l + j] = 0; }
        return valid;
    }

    private static Tensor Pool(Tensor x, IReadOnlyList<int[]> batch, int t)
    {
        int b = batch.Count;
        var valid = Masks(batch, t, 0, out var invalid);
        var inv = Tensor.Empty(b, 1);
        for (int i = 0; i < b; i++) inv.Span[i] = 1f / Math.Max(1, batch[i].Length);
        var mean = (x * valid).Sum(1) * inv;                      // (B, D)
        var max = x.MaskedFill(invalid, -1e4f).Max(1);             // (B, D)
        return Tensor.Concat([mean, max], 1);
    }

    private Tensor Convolve(Tensor x, IReadOnlyList<int[]> batch, int t)
    {
        int b = batch.Count, d = Vectors.Dim;
        var outs = new List<Tensor>();
        for (int c = 0; c < _convs!.Count; c++)
        {
            int k = EncoderSpec.KernelSizes[c], l = t - k + 1;
            var conv = _convs[c];
            Tensor y;                                               // (B, L, F)
            if (UseConv2d)
            {
                var w = conv.Weight.Reshape(EncoderSpec.Filters, k, d).Permute(0, 2, 1).Reshape(EncoderSpec.Filters, d, 1, k);
                y = Tensor.Conv2d(x.Permute(0, 2, 1).Unsqueeze(2), w, conv.Bias)   // (B, F, 1, L)
                    .Squeeze(2).Permute(0, 2, 1);
            }
            else
            {
                var parts = new Tensor[k];
                for (int j = 0; j < k; j++) parts[j] = x.Narrow(1, j, l);
                y = conv.Forward(Tensor.Concat(parts, 2).Reshape(b * l, k * d)).Reshape(b, l, EncoderSpec.Filters);
            }
            Masks(batch, t, k - 1, out var invalid);
            outs.Add(y.Relu().MaskedFill(invalid, 0).Max(1));       // (B, F); ReLU ≥ 0, so masked windows cannot win
        }
        return outs.Count == 1 ? outs[0] : Tensor.Concat(outs, 1);
    }

    public JsonObject Spec() => new()
    {
        ["kind"] = "word-vectors",
        ["encoder"] = EncoderSpec.Kind,
        ["dim"] = Vectors.Dim,
        ["words"] = Vectors.Words.Count,
        ["vectors_sha256"] = Vectors.Sha256,
        ["filters"] = EncoderSpec.Filters,
        ["kernel_sizes"] = new JsonArray(EncoderSpec.KernelSizes.Select(k => (JsonNode?)JsonValue.Create(k)).ToArray()),
        ["tune_vectors"] = EncoderSpec.TuneVectors,
        ["tuned_words"] = new JsonArray(_tuned.OrderBy(p => p.Value).Select(p => (JsonNode?)JsonValue.Create(p.Key)).ToArray()),
    };

    protected override string ExtraRepr() => $"{EncoderSpec.Kind}, {Vectors.Words.Count} words × {Vectors.Dim}{(Tuned is null ? ", frozen" : $", {_tuned.Count} tuned")}";
}
