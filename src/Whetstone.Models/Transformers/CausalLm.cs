using Whetstone.Nn;
using Whetstone.Tensors;

namespace Whetstone.Models.Transformers;

// Decoder-only language models (GPT-2, the Llama family): what every family exposes to training and generation.
// Axis letters: B batch, T new tokens, S cached + new tokens, D hidden, H query heads, Hkv key/value heads, Dh head width,
// V vocabulary.

/// <summary>
/// A decoder-only language model with a language-modelling head (transformers' <c>…ForCausalLM</c>): token ids in,
/// next-token logits out. Runs over a whole sequence (training, scoring) or incrementally over a <see cref="KvCache"/>
/// (generation). Module names follow the family's Hugging Face checkpoint keys.
/// </summary>
public abstract class CausalLm : Module
{
    /// <summary>
    /// Logits (B, T, V) for ids (B, T). <paramref name="attentionMask"/> (B, S) holds 1 for real tokens and 0 for
    /// padding, over the cached and new positions; <paramref name="positions"/> (B·T) overrides the position of each new
    /// token (default: the cache length + 0 … T−1, shared by every row). With a cache, the new keys and values are
    /// appended to it.
    /// </summary>
    public abstract Tensor Forward(int[] ids, int batch, int seqLen, Tensor? attentionMask = null, KvCache? cache = null, int[]? positions = null);

    /// <summary>The Hugging Face <c>model_type</c> (gpt2, llama, qwen2, mistral).</summary>
    public abstract string ModelType { get; }
    public abstract int VocabSize { get; }
    public abstract int HiddenSize { get; }
    public abstract int NumLayers { get; }
    /// <summary>Key/value heads × head width: the width of one cached row.</summary>
    public abstract int KvWidth { get; }
    /// <summary>The longest sequence the position scheme covers (learned positions: the table size).</summary>
    public abstract int MaxPositions { get; }
    /// <summary>The input embedding module's path (<c>transformer.wte</c>, <c>model.embed_tokens</c>).</summary>
    public abstract string EmbeddingsPath { get; }
    /// <summary>The path of block <paramref name="i"/> (for freeze.layers).</summary>
    public abstract string LayerPath(int i);
    /// <summary>Whether the output projection is the input embedding matrix (tied) rather than its own <c>lm_head</c>.</summary>
    public abstract bool TiedEmbeddings { get; }
    /// <summary>The default LoRA target pattern over module names (PEFT's defaults for the family, attention and MLP).</summary>
    public abstract string LoraTargets { get; }

    /// <summary>A cache for <paramref name="batch"/> rows of up to <paramref name="capacity"/> positions.</summary>
    public KvCache NewCache(int batch, int capacity)
    {
        if (capacity > MaxPositions) throw new ArgumentException($"A cache of {capacity} positions exceeds the model's {MaxPositions}.");
        return new KvCache(NumLayers, batch, capacity, KvWidth);
    }
}

/// <summary>
/// Keys and values of every layer for the positions seen so far: per layer two buffers (B, capacity, Hkv·Dh), filled
/// to <see cref="Length"/>. Allocated once (outside any scope), so generation touches no new memory per token.
/// </summary>
public sealed class KvCache
{
    private readonly Tensor[] _k, _v;

    public int Batch { get; }
    public int Capacity { get; }
    public int Width { get; }
    /// <summary>Positions filled (the same for every row).</summary>
    public int Length { get; private set; }

    internal KvCache(int layers, int batch, int capacity, int width)
    {
        (Batch, Capacity, Width) = (batch, capacity, width);
        _k = new Tensor[layers];
        _v = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _k[i] = Tensor.Persistent(batch, capacity, width);
            _v[i] = Tensor.Persistent(batch, capacity, width);
        }
    }

    /// <summary>Forgets every position (the buffers are kept).</summary>
    public void Clear() => Length = 0;

    /// <summary>Keeps only the first <paramref name="length"/> positions (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > Length) throw new ArgumentOutOfRangeException(nameof(length), $"The cache holds {Length} positions, not {length}.");
        Length = length;
    }

    /// <summary>
    /// Row r takes what row <paramref name="from"/>[r] held (beam search: each surviving beam continues its parent's
    /// cache); every filled position of every layer is moved.
    /// </summary>
    public void Reorder(IReadOnlyList<int> from)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (from.Count != Batch) throw new ArgumentException($"Reorder needs one source row per cache row ({Batch}); got {from.Count}.");
        foreach (int f in from)
            if ((uint)f >= (uint)Batch) throw new ArgumentOutOfRangeException(nameof(from), $"Row {f} is outside the cache's {Batch} rows.");
        int n = Length * Width;
        var tmp = new float[Batch * n];
        foreach (var t in _k.Concat(_v))
        {
            var s = t.Span;
            for (int r = 0; r < Batch; r++) s.Slice(from[r] * Capacity * Width, n).CopyTo(tmp.AsSpan(r * n, n));
            for (int r = 0; r < Batch; r++) tmp.AsSpan(r * n, n).CopyTo(s.Slice(r * Capacity * Width, n));
        }
    }

    /// <summary>
    /// Writes layer <paramref name="layer"/>'s new keys and values (B, T, Hkv·Dh) after the filled positions and returns
    /// views (B, Length + T, Hkv·Dh) of everything cached for that layer. The last layer's call advances
    /// <see cref="Length"/>.
    /// </summary>
    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        if (Tensors.Autograd.Graph.IsEnabled && (k.RequiresGrad || v.RequiresGrad)) throw new InvalidOperationException("The KV cache is for inference: gradients do not flow through it (run generation under Graph.NoGrad()).");
        int t = k.Dim(1);
        if (k.Dim(0) != Batch || k.Dim(2) != Width) throw new ArgumentException($"Cache rows are ({Batch}, ·, {Width}); got keys {Shapes.Format(k.Dims)}.");
        if (Length + t > Capacity) throw new InvalidOperationException($"The KV cache holds {Capacity} positions; {Length} are filled and {t} more do not fit.");
        Write(_k[layer], k.Contiguous(), t);
        Write(_v[layer], v.Contiguous(), t);
        var views = (_k[layer].Narrow(1, 0, Length + t), _v[layer].Narrow(1, 0, Length + t));
        if (layer == _k.Length - 1) Length += t;
        return views;
    }

    private void Write(Tensor cache, Tensor x, int t)
    {
        var src = x.Span;
        var dst = cache.Span;
        for (int b = 0; b < Batch; b++)
            src.Slice(b * t * Width, t * Width).CopyTo(dst.Slice((b * Capacity + Length) * Width));
    }
}

/// <summary>Pieces every decoder family runs the same way.</summary>
internal static class DecoderOps
{
    /// <summary>Positions of the new tokens: <paramref name="given"/> when set (B·T), else offset + 0 … T−1 for every row.</summary>
    public static int[] Positions(int batch, int t, int offset, int[]? given, int maxPositions)
    {
        if (given is not null)
        {
            if (given.Length != batch * t) throw new ArgumentException($"positions holds {given.Length} entries; expected B·T = {batch * t}.");
            foreach (var p in given)
                if (p < 0 || p >= maxPositions) throw new ArgumentException($"Position {p} is outside the model's {maxPositions} positions.");
            return given;
        }
        if (offset + t > maxPositions) throw new ArgumentException($"A sequence of {offset + t} tokens exceeds the model's {maxPositions} positions.");
        var pos = new int[batch * t];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < t; i++) pos[b * t + i] = offset + i;
        return pos;
    }

    /// <summary>
    /// Causal self-attention of new q (B, T, H·Dh), k/v (B, T, Hkv·Dh): with a cache, over every cached position plus the
    /// new ones; the padding mask (B, S) covers both. <paramref name="dropout"/> drops attention probabilities (training).
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, int heads, int kvHeads, Tensor? mask, KvCache? cache, int layer, float dropout = 0, Rng? rng = null)
    {
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        return Tensor.MultiHeadAttention(q, k, v, heads, causal: true, mask, dropout: dropout, rng: dropout > 0 ? rng : null, kvHeads: kvHeads);
    }

    /// <summary>Runs the blocks in order with their index (<see cref="EncoderOps.RunLayers"/>, which releases activations nothing needs).</summary>
    public static Tensor RunLayers<T>(IReadOnlyList<T> layers, Tensor x, Func<T, int, Tensor, Tensor> forward) =>
        EncoderOps.RunLayers(Enumerable.Range(0, layers.Count), x, (i, h) => forward(layers[i], i, h));

    /// <summary>h (B, T, D) · Eᵀ for a tied output projection with the embedding matrix E (V, D).</summary>
    public static Tensor TiedLogits(Tensor h, Tensor embedding) => Tensor.Linear(h, embedding, null);
}
