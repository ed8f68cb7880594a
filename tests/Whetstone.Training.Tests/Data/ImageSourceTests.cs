using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Data;

public class ImageFolderTests
{
    [Fact]
    public void DecodesPngAndBmpWithLabelsSortedOrdinally()
    {
        using var dir = new TempDir();
        var rgb = TestImages.Pattern(3, 5, 3, 1);
        var grey = TestImages.Pattern(4, 2, 1, 2);
        var rgba = TestImages.Pattern(2, 2, 4, 3);
        TestImages.WriteBmp(dir.File("cat", "b.bmp"), 3, 5, rgb);
        TestImages.WritePng(dir.File("cat", "a.PNG"), 4, 2, 1, grey);
        TestImages.WritePng(dir.File("Dog", "x.png"), 2, 2, 4, rgba);
        File.WriteAllText(dir.File("Dog", "notes.txt"), "not an image");   // skipped: not an image extension
        File.WriteAllText(dir.File("Dog", ".DS_Store"), "junk");            // skipped: hidden

        var ds = ImageDataset.FromFolder(dir.Path);

        Assert.Equal(["Dog", "cat"], ds.Labels);   // ordinal: 'D' < 'c'
        Assert.Equal(3, ds.Count);
        Assert.Equal([0, 1, 1], ds.GetLabels());
        var x = ds.GetImage(0);
        Assert.Equal((2, 2, 4), (x.Height, x.Width, x.Channels));
        Assert.Equal(rgba.Select(b => (float)b), x.Pixels);
        var a = ds.GetImage(1);   // a.PNG sorts before b.bmp
        Assert.Equal((4, 2, 1), (a.Height, a.Width, a.Channels));
        Assert.Equal(grey.Select(b => (float)b), a.Pixels);
        var b = ds[2];
        Assert.Equal(1, b.Label);
        Assert.Equal((3, 5, 3), (b.Image.Height, b.Image.Width, b.Image.Channels));
        Assert.Equal(rgb.Select(v => (float)v), b.Image.Pixels);
        Assert.Equal(rgb[(2 * 5 + 4) * 3 + 1], b.Image[2, 4, 1]);
        Assert.Contains("b.bmp", ds.Describe(2));
    }

    [Fact]
    public void PreloadGivesTheSamePixels()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 6; i++) TestImages.WritePng(dir.File($"c{i % 2}", $"{i}.png"), 3, 4, 3, TestImages.Pattern(3, 4, 3, i));
        var lazy = ImageDataset.FromFolder(dir.Path);
        var pre = ImageDataset.FromFolder(dir.Path, preload: true);
        for (int i = 0; i < lazy.Count; i++) Assert.Equal(lazy.GetImage(i).Pixels, pre.GetImage(i).Pixels);
    }

    [Fact]
    public void MissingRootIsNamed()
    {
        var e = Assert.Throws<DataException>(() => ImageDataset.FromFolder("/nonexistent/whet-folder"));
        Assert.Contains("'/nonexistent/whet-folder' does not exist", e.Message);
    }

    [Fact]
    public void RootWithoutLabelFoldersIsAnError()
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("loose.png"), 2, 2, 1, new byte[4]);
        var e = Assert.Throws<DataException>(() => ImageDataset.FromFolder(dir.Path));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("no label subfolders", e.Message);
    }

    [Fact]
    public void EmptyLabelFolderIsNamed()
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("full", "a.png"), 2, 2, 1, new byte[4]);
        File.WriteAllText(dir.File("hollow", "readme.md"), "no images here");
        var e = Assert.Throws<DataException>(() => ImageDataset.FromFolder(dir.Path));
        Assert.Contains("'hollow'", e.Message);
        Assert.Contains("no image files", e.Message);
    }

    [Fact]
    public void UndecodableImageNamesTheFile()
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("ok", "a.png"), 2, 2, 1, new byte[4]);
        string bad = dir.File("ok", "broken.jpg");
        File.WriteAllText(bad, "this is not a JPEG");

        var lazy = ImageDataset.FromFolder(dir.Path);   // listing does not decode
        var e = Assert.Throws<DataException>(() => lazy.GetImage(1));
        Assert.Contains(bad, e.Message);
        Assert.Contains("Cannot decode", e.Message);

        var e2 = Assert.Throws<DataException>(() => ImageDataset.FromFolder(dir.Path, preload: true));
        Assert.Contains(bad, e2.Message);
    }
}

public class CsvImageTests
{
    [Fact]
    public void ReadsPathsRelativeToTheCsvFolder()
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("img", "1.png"), 2, 3, 3, TestImages.Pattern(2, 3, 3, 1));
        TestImages.WritePng(dir.File("img", "2.png"), 2, 3, 3, TestImages.Pattern(2, 3, 3, 2));
        string csv = dir.File("data", "train.csv");
        File.WriteAllText(csv, "id,file,kind\n1,../img/1.png,zebra\n2,../img/2.png,ant\n3,../img/1.png,zebra\n");

        var ds = ImageDataset.FromCsv(csv, new CsvImageOptions { ImageColumn = "file", LabelColumn = "kind" });

        Assert.Equal(["ant", "zebra"], ds.Labels);
        Assert.Equal([1, 0, 1], ds.GetLabels());
        Assert.Equal(TestImages.Pattern(2, 3, 3, 2).Select(b => (float)b), ds.GetImage(1).Pixels);
    }

    [Fact]
    public void FixedLabelListKeepsItsOrderAndRejectsOthers()
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("a.png"), 2, 2, 1, new byte[4]);
        string csv = dir.File("t.csv");
        File.WriteAllText(csv, "image,label\na.png,y\na.png,x\n");
        var ds = ImageDataset.FromCsv(csv, new CsvImageOptions { Labels = ["y", "x", "w"] });
        Assert.Equal([0, 1], ds.GetLabels());
        Assert.Equal(3, ds.Labels.Count);

        var e = Assert.Throws<DataException>(() => ImageDataset.FromCsv(csv, new CsvImageOptions { Labels = ["y"] }));
        Assert.Contains($"'{csv}', line 3", e.Message);
        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void MissingColumnNamesTheFileAndColumns()
    {
        using var dir = new TempDir();
        string csv = dir.File("t.csv");
        File.WriteAllText(csv, "path,label\na.png,x\n");
        var e = Assert.Throws<DataException>(() => ImageDataset.FromCsv(csv));
        Assert.Contains($"'{csv}', line 1: no column 'image'", e.Message);
        Assert.Contains("'path', 'label'", e.Message);
    }

    [Theory]
    [InlineData("image,label\na.png,x\nmissing.png,x\n", "line 3: image file '{dir}/missing.png' does not exist")]
    [InlineData("image,label\na.png,x\na.png,x\na.png,\n", "line 4: the label (column 'label') is empty")]
    [InlineData("image,label\na.png,x\n,x\n", "line 3: the image path (column 'image') is empty")]
    public void BadRowNamesCsvFileAndLine(string content, string expected)
    {
        using var dir = new TempDir();
        TestImages.WritePng(dir.File("a.png"), 2, 2, 1, new byte[4]);
        string csv = dir.File("t.csv");
        File.WriteAllText(csv, content);
        var e = Assert.Throws<DataException>(() => ImageDataset.FromCsv(csv));
        Assert.Contains($"CSV file '{csv}', " + expected.Replace("{dir}", dir.Path), e.Message);
    }
}
