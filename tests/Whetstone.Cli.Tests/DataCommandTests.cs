namespace Whetstone.Cli.Tests;

/// <summary><c>whet data bible</c> on the cached SWORD modules: the split files and the drop report a user sees.</summary>
public sealed class DataCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-data-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void BiblePairsAreWrittenSplitByBookWithWhatWasDropped()
    {
        var run = WhetProcess.Run(_dir, "data", "bible", "--out", "pairs", "--format", "tsv", "--direction", "es-en");
        Assert.True(run.Code == 0, run.Err + run.Out);
        Assert.Contains("30,842 verse pairs (es-en): train 30,075, validation 239", run.Out);
        Assert.Contains("dropped 6,949: 6,689 only in the English versification", run.Out);
        var test = File.ReadAllLines(Path.Combine(_dir, "pairs", "test.tsv"));
        Assert.Equal("ref\tsource\ttarget", test[0]);
        Assert.Equal(529, test.Length);
        Assert.StartsWith("Ruth.1.1\tY ACONTECIÓ en los días", test[1]);
        Assert.All(test.Skip(1), l => Assert.Equal(3, l.Split('\t').Length));
        var trainRefs = File.ReadLines(Path.Combine(_dir, "pairs", "train.tsv")).Skip(1).Select(l => l.Split('.')[0]).ToHashSet();
        Assert.DoesNotContain("Ruth", trainRefs);
        Assert.Contains("Gen", trainRefs);
        var bad = WhetProcess.Run(_dir, "data", "bible", "--out", "x", "--direction", "fr-en");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--direction must be en-es or es-en", bad.Err);
    }
}
