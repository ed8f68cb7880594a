using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Data;

public class TransformTests
{
    private static ImageData Grey(int h, int w, params float[] v) => new(h, w, 1, v);

    private static float[] Plane(Tensor t, int n, int c)
    {
        int s = t.Dim(2);
        return t.ToArray().AsSpan((n * 3 + c) * s * s, s * s).ToArray();
    }

    private static void Close(float[] expected, float[] actual, float tol = 1e-5f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void UpscaleIsBilinearWithHalfPixelCentres()
    {
        // 2×2 → 4×4: source coordinates (o + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 (clamped to the edge),
        // i.e. weights [1,0] [.75,.25] [.25,.75] [0,1] on each axis, as F.interpolate(align_corners=False).
        var p = new Preprocess { ImageSize = 4, Normalization = Normalization.ZeroToOne };
        using var scope = new TensorScope();
        var t = p.ToTensor(Grey(2, 2, 0, 51, 102, 153));
        Assert.Equal([1, 3, 4, 4], t.Shape.ToArray());
        float[] expected =
        [
            0, 12.75f, 38.25f, 51,
            25.5f, 38.25f, 63.75f, 76.5f,
            76.5f, 89.25f, 114.75f, 127.5f,
            102, 114.75f, 140.25f, 153,
        ];
        for (int c = 0; c < 3; c++) Close(expected.Select(v => v / 255).ToArray(), Plane(t, 0, c));   // grey replicated
    }

    [Fact]
    public void NonSquareOutputsKeepTheAxesApart()
    {
        // 2×2 → 2 rows × 4 columns: rows copy the source rows, columns interpolate as the square upscale does
        // (weights [1,0] [.75,.25] [.25,.75] [0,1]); a transposed axis would mix the rows.
        var p = new Preprocess { ImageSize = 2, ImageWidth = 4, Normalization = Normalization.ZeroToOne };
        Assert.Equal((2, 4), (p.Height, p.Width));
        using var scope = new TensorScope();
        var t = p.ToTensor(Grey(2, 2, 0, 51, 102, 153));
        Assert.Equal([1, 3, 2, 4], t.Shape.ToArray());
        var plane = t.ToArray().AsSpan(0, 8).ToArray();
        Close([0, 12.75f / 255, 38.25f / 255, 51 / 255f, 102 / 255f, 114.75f / 255, 140.25f / 255, 153 / 255f], plane);
        // through the loader too, with a flip: each row mirrored, rows not swapped
        var data = ImageDataset.FromPixels([0, 51, 102, 153], 1, 2, 2, 1, [0], ["a"]);
        var flip = p with { Augment = new AugmentOptions { HorizontalFlip = true } };
        var loader = new DataLoader(data, flip, 1, augment: true, seed: 1);
        var seen = new HashSet<string>();
        for (int epoch = 0; epoch < 8; epoch++)
        {
            var row0 = loader.LoadImages([0], epoch).ToArray().AsSpan(0, 4).ToArray();
            seen.Add(row0[0] == 0 ? "plain" : "flipped");
            Close(row0[0] == 0 ? plane[..4] : plane[..4].Reverse().ToArray(), row0);
        }
        Assert.Equal(2, seen.Count);
        Assert.Throws<ArgumentException>(() => new Preprocess { ImageWidth = -1 }.Validate());
    }

    [Fact]
    public void DownscaleAveragesWithTheWidenedTriangleFilter()
    {
        // Row [0, 60, 120, 180] → 2 pixels, scale 2: output 0 centre 1.0 takes pixels 0,1,2 with weights .75,.75,.25;
        // output 1 centre 3.0 takes 1,2,3 with .25,.75,.75 (PIL's antialiased bilinear), normalised by 1.75.
        var row = new float[] { 0, 60, 120, 180 };
        var p = new Preprocess { ImageSize = 2, Normalization = Normalization.ZeroToOne };
        using var scope = new TensorScope();
        var t = p.ToTensor(Grey(4, 4, [.. row, .. row, .. row, .. row]));
        float a = (0.75f * 60 + 0.25f * 120) / 1.75f, b = (0.25f * 60 + 0.75f * 120 + 0.75f * 180) / 1.75f;
        Close([a / 255, b / 255, a / 255, b / 255], Plane(t, 0, 1));
        Assert.Equal(42.857143f, a, 4);
        Assert.Equal(137.14286f, b, 4);
    }

    [Fact]
    public void NormalisationsMapPixelsAsDocumented()
    {
        var rgb = new ImageData(1, 1, 3, [0, 255, 51]);
        using var scope = new TensorScope();
        float[] Run(Normalization n) => new Preprocess { ImageSize = 1, Resize = ResizeMode.None, Normalization = n }.ToTensor(rgb).ToArray();
        Close([-1, 1, -0.6f], Run(Normalization.MinusOneToOne));
        Close([-1, 1, -0.6f], Run(Normalization.FromScaleOffset(1 / 127.5f, -1)));
        Close([0, 1, 0.2f], Run(Normalization.ZeroToOne));
        Close([(0 - 0.485f) / 0.229f, (1 - 0.456f) / 0.224f, (0.2f - 0.406f) / 0.225f], Run(Normalization.ImageNet));
    }

    [Fact]
    public void RgbaDropsAlpha()
    {
        using var scope = new TensorScope();
        var p = new Preprocess { ImageSize = 1, Resize = ResizeMode.None, Normalization = Normalization.ZeroToOne };
        Close([10 / 255f, 20 / 255f, 30 / 255f], p.ToTensor(new ImageData(1, 1, 4, [10, 20, 30, 40])).ToArray());
    }

    [Fact]
    public void ShorterSideResizeThenCentreCrop()
    {
        // 2×4 with shorter side already 2: no resampling, centre crop takes columns 1 and 2.
        using var scope = new TensorScope();
        var p = new Preprocess { ImageSize = 2, Resize = ResizeMode.ShorterSide, Normalization = Normalization.ZeroToOne };
        var t = p.ToTensor(Grey(2, 4, 0, 10, 20, 30, 40, 50, 60, 70));
        Close([10 / 255f, 20 / 255f, 50 / 255f, 60 / 255f], Plane(t, 0, 0));
    }

    [Fact]
    public void ImageSmallerThanTheCropIsNamed()
    {
        var p = new Preprocess { ImageSize = 4, Resize = ResizeMode.None };
        using var scope = new TensorScope();
        var e = Assert.Throws<DataException>(() => p.ToTensor(Grey(3, 3, new float[9])));
        Assert.Contains("Image 0 of 1 is 3×3, smaller than the 4×4 crop", e.Message);

        using var dir = new TempDir();
        TestImages.WritePng(dir.File("a", "big.png"), 4, 4, 1, new byte[16]);
        TestImages.WritePng(dir.File("a", "small.png"), 3, 5, 1, new byte[15]);
        var loader = new DataLoader(ImageDataset.FromFolder(dir.Path), p, batchSize: 2);
        var e2 = Assert.Throws<DataException>(() => loader.Epoch(0).First().LoadImages());
        Assert.Contains("small.png", e2.Message);
        Assert.Contains("3×5, smaller than the 4×4 crop", e2.Message);
    }

    [Fact]
    public void PreprocessRoundTripsThroughJson()
    {
        var p = new Preprocess
        {
            ImageSize = 96, Resize = ResizeMode.ShorterSide, ResizeTo = 110,
            Normalization = Normalization.MinusOneToOne,
            Augment = new AugmentOptions { HorizontalFlip = true, CropPadding = 4, MinCropScale = 0.5f },
        };
        string json = p.ToJson();
        Assert.Contains("\"Resize\": \"ShorterSide\"", json);
        Assert.Equal(p, Preprocess.FromJson(json));
        Assert.NotEqual(p, p with { Normalization = Normalization.ImageNet });
        Assert.Throws<ArgumentException>(() => Preprocess.FromJson("{\"ImageSize\": 0}"));
    }
}

public class DataLoaderTests
{
    /// <summary>n grey 4×4 images whose pixels are all distinct (image i: 16·i + k), labels i % 3.</summary>
    private static ImageDataset Numbered(int n) =>
        ImageDataset.FromPixels([.. Enumerable.Range(0, n * 16).Select(i => (byte)i)], n, 4, 4, 1,
            [.. Enumerable.Range(0, n).Select(i => i % 3)], ["a", "b", "c"]);

    private static readonly Preprocess Raw = new() { ImageSize = 4, Resize = ResizeMode.None, Normalization = Normalization.FromScaleOffset(1, 0) };

    [Fact]
    public void BatchesCoverTheEpochInASeededOrder()
    {
        var ds = Numbered(10);
        var loader = new DataLoader(ds, Raw, batchSize: 4, shuffle: true, seed: 5);
        var e0 = loader.Epoch(0).ToList();
        Assert.Equal(3, loader.BatchesPerEpoch);
        Assert.Equal([4, 4, 2], e0.Select(b => b.Count));
        var order0 = e0.SelectMany(b => b.Indices).ToArray();
        Assert.Equal(Enumerable.Range(0, 10), order0.Order());
        Assert.Equal(order0, loader.Epoch(0).SelectMany(b => b.Indices));
        Assert.NotEqual(order0, loader.Epoch(1).SelectMany(b => b.Indices));
        Assert.All(e0, b => Assert.Equal(b.Indices.Select(i => i % 3), b.Labels));

        var drop = new DataLoader(ds, Raw, batchSize: 4, dropLast: true);
        Assert.Equal(2, drop.BatchesPerEpoch);
        Assert.Equal(Enumerable.Range(0, 8), drop.Epoch(0).SelectMany(b => b.Indices));
    }

    [Fact]
    public void ImagesLandInTheirSlotsAndGoBackToThePoolWithTheScope()
    {
        var loader = new DataLoader(Numbered(7), Raw, batchSize: 3, shuffle: true, seed: 1);
        Tensor images;
        using (var scope = new TensorScope())
        {
            var (x, labels, indices) = loader.Epoch(2).First();
            images = x;
            Assert.Equal([3, 3, 4, 4], x.Shape.ToArray());
            Assert.Equal(indices.Select(i => i % 3), labels);
            var v = x.ToArray();
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 3; c++)
                    for (int k = 0; k < 16; k++)
                        Assert.Equal(16 * indices[b] + k, v[(b * 3 + c) * 16 + k], 3);
        }
        Assert.Throws<ObjectDisposedException>(() => images.Span.Length);
    }

    /// <summary>Finds the shift and flip that make <paramref name="output"/> from image <paramref name="i"/> (zero padding).</summary>
    private static (int Dy, int Dx, bool Flip)? Explain(float[] output, int i)
    {
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
                foreach (bool flip in new[] { false, true })
                {
                    bool ok = true;
                    for (int y = 0; y < 4 && ok; y++)
                        for (int x = 0; x < 4 && ok; x++)
                        {
                            int sx = (flip ? 3 - x : x) + dx, sy = y + dy;
                            float want = sy is >= 0 and < 4 && sx is >= 0 and < 4 ? 16 * i + sy * 4 + sx : 0;
                            ok = Math.Abs(output[y * 4 + x] - want) < 1e-3;
                        }
                    if (ok) return (dy, dx, flip);
                }
        return null;
    }

    [Fact]
    public void AugmentationIsPaddedCropAndFlipSeededPerExample()
    {
        var p = Raw with { Augment = new AugmentOptions { CropPadding = 1, HorizontalFlip = true } };
        var ds = Numbered(6);
        var seen = new HashSet<(int, int, bool)>();
        var byExample = new Dictionary<(int Epoch, int Index), float[]>();
        using var scope = new TensorScope();
        var wide = new DataLoader(ds, p, batchSize: 6, shuffle: true, augment: true, seed: 11);
        for (int epoch = 0; epoch < 8; epoch++)
            foreach (var batch in wide.Epoch(epoch))
            {
                var v = batch.LoadImages().ToArray();
                for (int b = 0; b < batch.Count; b++)
                {
                    var plane = v.AsSpan(b * 48, 16).ToArray();
                    var how = Explain(plane, batch.Indices[b]);
                    Assert.True(how.HasValue, $"epoch {epoch}, example {batch.Indices[b]}: not a padded crop/flip of the image");
                    seen.Add(how.Value);
                    byExample[(epoch, batch.Indices[b])] = v.AsSpan(b * 48, 48).ToArray();
                }
            }
        Assert.Contains(seen, s => s.Item3);
        Assert.Contains(seen, s => !s.Item3);
        Assert.True(seen.Select(s => (s.Item1, s.Item2)).Distinct().Count() >= 5, $"only {seen.Count} crops seen");

        // Same (seed, epoch, example) → same pixels, whatever the batch size, order or thread count.
        int threads = Par.Threads;
        try
        {
            Par.Threads = 1;
            var narrow = new DataLoader(ds, p, batchSize: 1, shuffle: false, augment: true, seed: 11);
            for (int epoch = 0; epoch < 8; epoch++)
                foreach (var batch in narrow.Epoch(epoch))
                    Assert.Equal(byExample[(epoch, batch.Indices[0])], batch.LoadImages().ToArray());
        }
        finally { Par.Threads = threads; }

        var otherSeed = new DataLoader(ds, p, batchSize: 6, augment: true, seed: 12);
        var diff = otherSeed.Epoch(0).Single();
        var dv = diff.LoadImages().ToArray();
        Assert.Contains(Enumerable.Range(0, 6), b => !dv.AsSpan(b * 48, 48).SequenceEqual(byExample[(0, b)]));
    }

    [Fact]
    public void RandomResizedCropIsSeededAndStaysInRange()
    {
        var p = new Preprocess { ImageSize = 4, Normalization = Normalization.ZeroToOne, Augment = new AugmentOptions { MinCropScale = 0.3f } };
        var ds = ImageDataset.FromPixels(TestImages.Pattern(3 * 8, 8, 3, 4), 3, 8, 8, 3, [0, 1, 2], ["a", "b", "c"]);
        using var scope = new TensorScope();
        var loader = new DataLoader(ds, p, batchSize: 3, augment: true, seed: 2);
        var a = loader.Epoch(0).Single().LoadImages().ToArray();
        Assert.Equal(a, loader.Epoch(0).Single().LoadImages().ToArray());
        Assert.NotEqual(a, loader.Epoch(1).Single().LoadImages().ToArray());
        Assert.All(a, v => Assert.InRange(v, 0f, 1f));
        var eval = new DataLoader(ds, p, batchSize: 3, augment: false);
        Assert.Equal(p.ToTensor([ds.GetImage(0), ds.GetImage(1), ds.GetImage(2)]).ToArray(), eval.Epoch(0).Single().LoadImages().ToArray());
    }
}
