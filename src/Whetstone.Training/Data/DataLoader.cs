using Whetstone.Tensors;

namespace Whetstone.Training.Data;

/// <summary>
/// Batches of a dataset for training or evaluation: a seeded shuffle per epoch, optional drop-last, and images
/// decoded and transformed in parallel (one image per task, over the engine's pool) into one [B, 3, S, S] tensor.
/// Augmentation draws from a generator seeded by (seed, epoch, example index) alone, so a run is reproducible
/// whatever the thread count or batch size.
/// <code>
/// foreach (var batch in loader.Epoch(epoch))
/// {
///     using var scope = new TensorScope();       // the batch's pixels go back to the pool with the step
///     var (images, labels, _) = batch;           // decodes here, inside the scope
///     var loss = Tensor.CrossEntropy(model.Forward(images), labels);
/// }
/// </code>
/// </summary>
public sealed class DataLoader
{
    public ImageDataset Dataset { get; }
    public Preprocess Preprocess { get; }
    public int BatchSize { get; }
    public bool Shuffle { get; }

    /// <summary>Whether <see cref="Preprocess.Augment"/> is applied (training); otherwise images are centre-cropped.</summary>
    public bool Augment { get; }

    public ulong Seed { get; }
    public bool DropLast { get; }

    public DataLoader(ImageDataset dataset, Preprocess preprocess, int batchSize, bool shuffle = false, bool augment = false, ulong seed = 0, bool dropLast = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        preprocess.Validate();
        (Dataset, Preprocess, BatchSize, Shuffle, Augment, Seed, DropLast) = (dataset, preprocess, batchSize, shuffle, augment, seed, dropLast);
    }

    /// <summary>Batches per epoch (the last, partial batch counts unless <see cref="DropLast"/>).</summary>
    public int BatchesPerEpoch => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The epoch's batches. Each knows its examples and labels; its images are made by <see cref="Batch.LoadImages"/>.</summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        int n = Dataset.Count;
        var order = Shuffle ? new Rng(Seeds.Derive(Seed, epoch, -1)).Permutation(n) : Enumerable.Range(0, n).ToArray();
        int batches = BatchesPerEpoch;
        for (int b = 0; b < batches; b++)
        {
            var indices = order.AsSpan(b * BatchSize, Math.Min(BatchSize, n - b * BatchSize)).ToArray();
            var labels = Array.ConvertAll(indices, Dataset.GetLabel);
            yield return new Batch(this, epoch, indices, labels);
        }
    }

    /// <summary>
    /// The images of <paramref name="indices"/> as [B, 3, S, S], allocated in the current <c>TensorScope</c> (pooled and
    /// released with it). <paramref name="epoch"/> seeds the augmentation.
    /// </summary>
    public Tensor LoadImages(IReadOnlyList<int> indices, int epoch)
    {
        int plane = 3 * Preprocess.Height * Preprocess.Width;
        var t = Tensor.Empty(indices.Count, 3, Preprocess.Height, Preprocess.Width);
        Loading.ForEach(indices.Count, i =>
        {
            int index = indices[i];
            var raw = Dataset.GetRaw(index);
            var rng = Augment && !Preprocess.Augment.IsNone ? new Rng(Seeds.Derive(Seed, epoch, index)) : null;
            ImageTransform.Apply(raw.Pixels.Span, raw.Height, raw.Width, raw.Channels, Preprocess, rng, t.Span.Slice(i * plane, plane), Dataset.Describe(index));
        });
        return t;
    }
}

/// <summary>One batch: dataset indices and label indices now, images when <see cref="LoadImages"/> is called.</summary>
public sealed class Batch
{
    private readonly DataLoader _loader;

    internal Batch(DataLoader loader, int epoch, int[] indices, int[] labels) => (_loader, Epoch, Indices, Labels) = (loader, epoch, indices, labels);

    public int Epoch { get; }

    /// <summary>Indices into the loader's dataset.</summary>
    public int[] Indices { get; }

    /// <summary>Label indices, one per example.</summary>
    public int[] Labels { get; }

    public int Count => Indices.Length;

    /// <summary>Decodes and transforms the images into [B, 3, S, S] in the current <c>TensorScope</c> (call it inside the step's scope).</summary>
    public Tensor LoadImages() => _loader.LoadImages(Indices, Epoch);

    /// <summary><c>var (images, labels, indices) = batch;</c> — loads the images (see <see cref="LoadImages"/>).</summary>
    public void Deconstruct(out Tensor images, out int[] labels, out int[] indices) => (images, labels, indices) = (LoadImages(), Labels, Indices);
}

/// <summary>Independent seeds from a base seed and coordinates (SplitMix64 finaliser over each).</summary>
internal static class Seeds
{
    public static ulong Derive(ulong seed, long a, long b) => Mix(Mix(Mix(seed) ^ (ulong)a) ^ (ulong)b);

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
