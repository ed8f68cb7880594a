using Whetstone.Tensors;
using Whetstone.Training.Data;

namespace Whetstone.Training.Recipes;

/// <summary>
/// Fills NCHW input batches from an image dataset with a model's preprocessing, decoding and transforming the images
/// of a batch in parallel. Augmentation draws from a generator seeded by (seed, epoch, example), so a run is the same
/// whatever the thread count or batch order.
/// </summary>
internal static class ImageBatches
{
    /// <summary>[n, 3, S, S] for <paramref name="indices"/> of <paramref name="data"/>, in the current tensor scope.</summary>
    public static Tensor Make(ImageDataset data, Preprocess preprocess, ReadOnlySpan<int> indices, bool augment, ulong seed, int epoch)
    {
        int s = preprocess.ImageSize, plane = 3 * s * s, n = indices.Length;
        var batch = Tensor.Empty(n, 3, s, s);
        var ids = indices.ToArray();
        bool aug = augment && !preprocess.Augment.IsNone;
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Par.Threads) }, i =>
        {
            var image = data.GetImage(ids[i]);
            Rng? rng = aug ? new Rng(Mix(seed, (ulong)epoch, (ulong)ids[i])) : null;
            ImageTransform.Apply<float>(image.Pixels, image.Height, image.Width, image.Channels, preprocess, rng,
                batch.Span.Slice(i * plane, plane), data.Describe(ids[i]));
        });
        return batch;
    }

    /// <summary>A contiguous range [start, start + n) of <paramref name="data"/>, without augmentation.</summary>
    public static Tensor Range(ImageDataset data, Preprocess preprocess, int start, int n) =>
        Make(data, preprocess, Enumerable.Range(start, n).ToArray(), augment: false, 0, 0);

    private static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong h = a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL) * 0xBF58476D1CE4E5B9UL ^ (c + 1) * 0x94D049BB133111EBUL;
        h ^= h >> 31;
        return h * 0xD6E8FEB86659FD93UL;
    }
}
