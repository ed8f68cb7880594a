using System.Diagnostics;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Data;

public class IdxTests
{
    private static (byte[] Pixels, byte[] Labels) Synthetic(int n, int rows, int cols)
    {
        var pixels = TestImages.Pattern(n * rows, cols, 1, 5);
        var labels = Enumerable.Range(0, n).Select(i => (byte)(i * 7 % 10)).ToArray();
        return (pixels, labels);
    }

    [Theory]
    [InlineData(".gz")]
    [InlineData("")]
    public void RoundTrip(string ext)
    {
        using var dir = new TempDir();
        var (pixels, labels) = Synthetic(13, 5, 7);
        string img = dir.File("train-images-idx3-ubyte" + ext), lab = dir.File("train-labels-idx1-ubyte" + ext);
        Idx.Write(img, [13, 5, 7], pixels);
        Idx.Write(lab, [13], labels);

        var ds = Idx.FashionMnist(dir.Path, train: true);

        Assert.Equal(13, ds.Count);
        Assert.Equal(Idx.FashionMnistLabels, ds.Labels);
        Assert.Equal(labels.Select(b => (int)b), ds.GetLabels());
        var x = ds.GetImage(12);
        Assert.Equal((5, 7, 1), (x.Height, x.Width, x.Channels));
        Assert.Equal(pixels.Skip(12 * 35).Take(35).Select(b => (float)b), x.Pixels);
        Assert.Contains("example 12 of train-images-idx3-ubyte", ds.Describe(12));
    }

    [Fact]
    public void UnnamedLabelsAreNumbered()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("i"), [3, 2, 2], new byte[12]);
        Idx.Write(dir.File("l"), [3], [0, 4, 2]);
        var ds = Idx.Load(dir.File("i"), dir.File("l"));
        Assert.Equal(["0", "1", "2", "3", "4"], ds.Labels);
    }

    [Fact]
    public void SwappedFilesFailOnTheMagicNumber()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("i.gz"), [3, 2, 2], new byte[12]);
        Idx.Write(dir.File("l.gz"), [3], new byte[3]);
        var e = Assert.Throws<DataException>(() => Idx.Load(dir.File("l.gz"), dir.File("i.gz")));
        Assert.Contains($"'{dir.File("l.gz")}': magic number 0x00000801 is not 0x00000803", e.Message);
    }

    [Fact]
    public void CountMismatchNamesBothFiles()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("i"), [3, 2, 2], new byte[12]);
        Idx.Write(dir.File("l"), [4], new byte[4]);
        var e = Assert.Throws<DataException>(() => Idx.Load(dir.File("i"), dir.File("l")));
        Assert.Contains($"'{dir.File("l")}' has 4 labels but image file '{dir.File("i")}' has 3 images", e.Message);
    }

    [Fact]
    public void TruncatedAndOverlongFilesAreErrors()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("short"), [3, 2, 2], new byte[11]);
        Idx.Write(dir.File("long"), [3, 2, 2], new byte[13]);
        Idx.Write(dir.File("l"), [3], new byte[3]);
        var e = Assert.Throws<DataException>(() => Idx.Load(dir.File("short"), dir.File("l")));
        Assert.Contains($"'{dir.File("short")}' is truncated: the header says 3×2×2 = 12 bytes of data, the file has 11", e.Message);
        var e2 = Assert.Throws<DataException>(() => Idx.Load(dir.File("long"), dir.File("l")));
        Assert.Contains($"'{dir.File("long")}' has more data than its header says", e2.Message);
    }

    [Fact]
    public void LabelBeyondTheNamesIsNamed()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("i"), [2, 1, 1], new byte[2]);
        Idx.Write(dir.File("l"), [2], [1, 10]);
        var e = Assert.Throws<DataException>(() => Idx.Load(dir.File("i"), dir.File("l"), Idx.FashionMnistLabels));
        Assert.Contains($"'{dir.File("l")}': label 10 of example 1 is outside the 10 label names", e.Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<DataException>(() => Idx.FashionMnist(dir.Path, train: false));
        Assert.Contains(Path.Combine(dir.Path, "t10k-images-idx3-ubyte.gz"), e.Message);
    }
}

/// <summary>Runs only where the real Fashion-MNIST files are (scripts/fetch-assets puts them there; CI fetches them).</summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public static readonly string Dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
        ".cache/whetstone/assets/fashion_mnist/usr/share/datasets/fashion-mnist");

    public FashionMnistFactAttribute()
    {
        if (!File.Exists(Path.Combine(Dir, "train-images-idx3-ubyte.gz")))
            Skip = $"Fashion-MNIST is not at {Dir}; run scripts/fetch-assets to get it.";
    }
}

public class FashionMnistTests
{
    [FashionMnistFact]
    public void RealFilesHaveTheKnownCountsAndFirstLabels()
    {
        var sw = Stopwatch.StartNew();
        var train = Idx.FashionMnist(FashionMnistFactAttribute.Dir, train: true);
        double seconds = sw.Elapsed.TotalSeconds;
        var test = Idx.FashionMnist(FashionMnistFactAttribute.Dir, train: false);

        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal(10, train.Labels.Count);
        Assert.Equal("Ankle boot", train.Labels[9]);
        Assert.Equal([9, 0, 0, 3], train.GetLabels()[..4]);
        Assert.All(train.ClassCounts(), c => Assert.Equal(6000, c));
        Assert.All(test.ClassCounts(), c => Assert.Equal(1000, c));
        var first = train.GetImage(0);
        Assert.Equal((28, 28, 1), (first.Height, first.Width, first.Channels));
        Assert.InRange(seconds, 0, 3);

        var small = train.PerClass(100, seed: 1);
        Assert.Equal(1000, small.Count);
        Assert.All(small.ClassCounts(), c => Assert.Equal(100, c));
    }
}
