using Whetstone.Training.Data;

namespace Whetstone.Training.Tests.Data;

public class SplitTests
{
    // label sizes: 0 → 10, 1 → 20, 2 → 3, 3 → 1, 4 → 2
    private static readonly int[] Labels =
        [.. Enumerable.Repeat(0, 10), .. Enumerable.Repeat(1, 20), .. Enumerable.Repeat(2, 3), 3, 4, 4];

    [Fact]
    public void EveryLabelKeepsItsShare()
    {
        var (train, val) = Split.Stratified(Labels, 0.2, seed: 7);
        int[] ValCount(int c) => [val.Count(i => Labels[i] == c), train.Count(i => Labels[i] == c)];
        Assert.Equal([2, 8], ValCount(0));
        Assert.Equal([4, 16], ValCount(1));
        Assert.Equal([1, 2], ValCount(2));   // round(0.6) = 1
        Assert.Equal([0, 1], ValCount(3));   // a single example stays in training
        Assert.Equal([1, 1], ValCount(4));   // round(0.4) = 0, raised to the minimum of one
        Assert.Equal(Enumerable.Range(0, Labels.Length), train.Concat(val).Order());
        Assert.True(train.SequenceEqual(train.Order()) && val.SequenceEqual(val.Order()));
    }

    [Fact]
    public void SameSeedSameSplitOtherSeedOther()
    {
        var a = Split.Stratified(Labels, 0.3, seed: 1);
        var b = Split.Stratified(Labels, 0.3, seed: 1);
        var c = Split.Stratified(Labels, 0.3, seed: 2);
        Assert.Equal(a.Validation, b.Validation);
        Assert.Equal(a.Train, b.Train);
        Assert.NotEqual(a.Validation, c.Validation);
    }

    [Fact]
    public void FractionZeroKeepsEverythingForTraining()
    {
        var (train, val) = Split.Stratified(Labels, 0, seed: 1);
        Assert.Empty(val);
        Assert.Equal(Labels.Length, train.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => Split.Stratified(Labels, 1.0, 1));
    }
}

public class SamplingTests
{
    private static ImageDataset Tiny(int[] labels, params string[] names) =>
        ImageDataset.FromPixels(labels.Select(l => (byte)l).ToArray(), labels.Length, 1, 1, 1, labels, names);

    [Fact]
    public void PerClassTakesNOfEachDeterministically()
    {
        int[] labels = [.. Enumerable.Range(0, 90).Select(i => i % 3)];
        var ds = Tiny(labels, "a", "b", "c");
        var s1 = ds.PerClass(5, seed: 3);
        var s2 = ds.PerClass(5, seed: 3);
        var s3 = ds.PerClass(5, seed: 4);
        Assert.Equal([5, 5, 5], s1.ClassCounts());
        var p1 = Enumerable.Range(0, 15).Select(i => s1.GetImage(i).Pixels[0]).ToArray();
        Assert.Equal(p1, Enumerable.Range(0, 15).Select(i => s2.GetImage(i).Pixels[0]));
        Assert.Equal(s1.GetLabels(), s2.GetLabels());
        Assert.NotEqual(Enumerable.Range(0, 15).Select(i => s1.Describe(i)), Enumerable.Range(0, 15).Select(i => s3.Describe(i)));
    }

    [Fact]
    public void PerClassWithTooFewExamplesNamesTheLabels()
    {
        var ds = Tiny([0, 0, 0, 1, 2, 2], "a", "b", "c");
        var e = Assert.Throws<DataException>(() => ds.PerClass(2, seed: 1));
        Assert.Contains("'b' (1)", e.Message);
        Assert.DoesNotContain("'a'", e.Message);
        Assert.Equal([2, 1, 2], ds.PerClass(2, seed: 1, allowFewer: true).ClassCounts());
    }

    [Fact]
    public void SelectOfSelectMapsToTheOriginal()
    {
        var ds = Tiny([0, 1, 0, 1, 0], "a", "b");
        var s = ds.Select([4, 3, 2]).Select([2, 0]);
        Assert.Equal([0, 0], s.GetLabels());
        Assert.Equal("example 2 of memory", s.Describe(0));
        Assert.Equal("example 4 of memory", s.Describe(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.Select([5]));
    }

    [Fact]
    public void SplitStratifiedGivesDatasetViews()
    {
        var ds = Tiny([.. Enumerable.Range(0, 40).Select(i => i % 4)], "a", "b", "c", "d");
        var (train, val) = ds.SplitStratified(0.2, seed: 9);
        Assert.Equal([8, 8, 8, 8], train.ClassCounts());
        Assert.Equal([2, 2, 2, 2], val.ClassCounts());
    }
}

public class LabelMapTests
{
    [Fact]
    public void MapsOntoTheModelOrder()
    {
        Assert.Equal([2, 0], LabelMap.Map(["cat", "ant"], ["ant", "bee", "cat"]));
        var ds = ImageDataset.FromPixels(new byte[3], 3, 1, 1, 1, [0, 1, 0], ["cat", "ant"]);
        var relabeled = ds.WithLabels(["ant", "bee", "cat"]);
        Assert.Equal(["ant", "bee", "cat"], relabeled.Labels);
        Assert.Equal([2, 0, 2], relabeled.GetLabels());
    }

    [Fact]
    public void UnknownLabelsAreAllListed()
    {
        var e = Assert.Throws<DataException>(() => LabelMap.Map(["cat", "yak", "ant", "emu"], ["ant", "cat"]));
        Assert.Contains("2 label(s) of the data are unknown to the model: 'yak', 'emu'", e.Message);
        Assert.Contains("The model knows 2: 'ant', 'cat'", e.Message);
    }
}
