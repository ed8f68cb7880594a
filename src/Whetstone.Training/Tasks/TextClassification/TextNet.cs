using Whetstone.Models;
using Whetstone.Models.Text;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Tensors;

namespace Whetstone.Training.Tasks;

/// <summary>One example's token ids, and its token-type ids for transformers (null for word vectors).</summary>
public sealed record TokenizedText(int[] Ids, int[]? Types);

/// <summary>
/// The model a text recipe trains, either path: word vectors + encoder + head (<see cref="TextClassifier"/>) or a
/// Hugging Face encoder with its sequence-classification head (<see cref="TextEncoderClassifier"/>). Tokenizes
/// examples and turns a batch of them into logits (transformers: padded to the batch's longest, with an attention
/// mask and token types), so the run, evaluation and bundle code is the same for both.
/// </summary>
public sealed class TextNet
{
    public Module Module { get; }
    public TextClassifier? WordModel { get; }
    public TextEncoderClassifier? Transformer { get; }
    public HfTokenizer? Tokenizer { get; }
    public int Classes { get; }

    public TextNet(TextClassifier model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Module = WordModel = model;
        Classes = model.HeadSpec.Classes;
    }

    public TextNet(TextEncoderClassifier model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Module = Transformer = model;
        Tokenizer = model.Tokenizer ?? throw new ArgumentException($"The {model.ModelType} model has no tokenizer (its folder needs vocab.txt, vocab.json + merges.txt or tokenizer.json).", nameof(model));
        Classes = model.NumLabels;
    }

    /// <summary>Whether features below the head can be computed once (word vectors whose encoder does not train).</summary>
    public bool CachesFeatures => WordModel is { Encoder.Trains: false };

    public TokenizedText Tokenize(string text, string? pair, int maxLength)
    {
        if (WordModel is not null) return new TokenizedText(WordModel.Encoder.Tokenize(text, pair, maxLength), null);
        var b = Tokenizer!.EncodeBatch([text], pair is null ? null : [pair], Math.Min(maxLength, Transformer!.MaxSequenceLength));
        int n = b.Lengths[0];
        return new TokenizedText(b.Ids.AsSpan(0, n).ToArray(), b.TokenTypeIds.AsSpan(0, n).ToArray());
    }

    /// <summary>Tokens of a text before truncation (special tokens included) and how many are unknown, for the data report.</summary>
    public (int Tokens, int Unknown) Count(string text)
    {
        if (WordModel is not null) return WordModel.Encoder.Count(text);
        var ids = Tokenizer!.EncodeToIds(text);
        int unk = 0;
        foreach (var id in ids) if (id == Tokenizer.UnkId) unk++;
        return (ids.Count + 2, unk);
    }

    /// <summary>Logits (B, classes) of a batch; dynamic padding to the batch's longest example.</summary>
    public Tensor Logits(IReadOnlyList<TokenizedText> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (WordModel is not null) return WordModel.Forward(batch.Select(b => b.Ids).ToArray());
        int n = batch.Count, t = batch.Max(b => b.Ids.Length);
        var ids = new int[n * t];
        var types = new int[n * t];
        var mask = new float[n * t];
        Array.Fill(ids, Tokenizer!.PadId);
        for (int i = 0; i < n; i++)
        {
            var e = batch[i];
            e.Ids.CopyTo(ids, i * t);
            e.Types?.CopyTo(types, i * t);
            mask.AsSpan(i * t, e.Ids.Length).Fill(1);
        }
        return Transformer!.Forward(ids, n, t, Tensor.From(mask, n, t), types);
    }

    /// <summary>SHA-256 (hex) over the weight files of a Hugging Face model folder, in name order.</summary>
    public static string WeightsSha256(string folder)
    {
        var files = Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new FileNotFoundException($"{folder}: no safetensors weight files.");
        return FileHash.Sha256(files, withNames: false);
    }
}
