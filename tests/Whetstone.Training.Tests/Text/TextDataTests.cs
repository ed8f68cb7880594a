using Whetstone.Training.Data;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

public sealed class TextDataTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Write(string name, string text) { var p = _dir.File(name); File.WriteAllText(p, text); return p; }

    [Fact]
    public void Csv_tsv_jsonl_and_json_arrays_read_text_pair_and_label_columns()
    {
        var csv = TextFiles.Read(Write("a.csv", "id,review,stars\n1,\"Great, really\",pos\n2,Awful,neg\n"), new() { TextColumn = "review", LabelColumn = "stars" });
        Assert.Equal(["Great, really", "Awful"], csv.Rows.Select(r => r.Text));
        Assert.Equal(["neg", "pos"], csv.LabelNames);            // inferred, sorted
        Assert.Equal([1, 0], csv.Labels);
        var tsv = TextFiles.Read(Write("a.tsv", "q\ta\tlabel\nwho?\tme\tyes\n"), new() { TextColumn = "q", PairColumn = "a" });
        Assert.Equal("me", tsv.Rows[0].Pair);
        var jsonl = TextFiles.Read(Write("a.jsonl", "{\"text\":\"x y\",\"label\":1}\n\n{\"text\":\"z\",\"label\":0}\n"), new());
        Assert.Equal(["0", "1"], jsonl.LabelNames);
        Assert.EndsWith("a.jsonl:3", jsonl.Rows[1].Origin);
        var json = TextFiles.Read(Write("a.json", "[{\"text\":\"good\",\"class\":1},\n{\"text\":\"bad\",\"class\":0}]"),
            new() { LabelColumn = "class", LabelMap = new Dictionary<string, string> { ["0"] = "negative", ["1"] = "positive" } });
        Assert.Equal(["negative", "positive"], json.LabelNames);
        Assert.Contains(":2 (item 1)", json.Rows[1].Origin);
    }

    [Fact]
    public void Missing_text_or_label_is_an_error_with_file_and_line_or_skipped_and_reported()
    {
        var path = Write("bad.csv", "text,label\nfine,a\n,b\nalso fine,\nok,b\n");
        var e = Assert.Throws<DataException>(() => TextFiles.Read(path, new()));
        Assert.Contains("bad.csv:3", e.Message);
        Assert.Contains("text", e.Message);
        var d = TextFiles.Read(path, new() { BadRows = "skip" });
        Assert.Equal(2, d.Count);
        Assert.Equal(2, d.Skipped.Count);
        Assert.Contains("bad.csv:4", d.Skipped[1]);
        Assert.Contains("label", d.Skipped[1]);
        var json = Write("n.json", "[{\"text\":\"a\",\"class\":1},\n{\"text\":\"b\",\"class\":null}]");
        Assert.Contains("n.json:2 (item 1)", Assert.Throws<DataException>(() => TextFiles.Read(json, new() { LabelColumn = "class" })).Message);
    }

    [Fact]
    public void Non_utf8_empty_data_and_labels_only_in_validation_are_clear_errors()
    {
        var p = _dir.File("latin.csv");
        File.WriteAllBytes(p, [.. "text,label\nok,a\n"u8, .. "caf"u8, 0xE9, .. ",b\n"u8]);
        var e = Assert.Throws<DataException>(() => TextFiles.Read(p, new()));
        Assert.Contains("latin.csv, line 3", e.Message);
        Assert.Contains("UTF-8", e.Message);
        Assert.Contains("no examples", Assert.Throws<DataException>(() => TextFiles.Read(Write("empty.jsonl", "\n"), new())).Message);
        Assert.Contains("no column 'label'", Assert.Throws<DataException>(() => TextFiles.Read(Write("h.csv", "text,y\na,b\n"), new())).Message);
        var train = TextFiles.Read(Write("t.csv", "text,label\na,x\nb,y\n"), new());
        var val = TextFiles.Read(Write("v.csv", "text,label\nc,x\nd,z\n"), new());
        var err = Assert.Throws<DataException>(() => val.WithLabels(train.LabelNames, "validation data"));
        Assert.Contains("'z'", err.Message);
        Assert.Contains("v.csv:3", err.Message);
    }

    [Fact]
    public void Report_counts_classes_lengths_truncation_and_duplicates()
    {
        // 6 train examples with 1..6 words (two classes 4:2), validation 2 (one duplicates a train text, case and spaces differ)
        var train = new TextDataset(new TextRow[]
        {
            new("one", null, "a", "t:1"), new("one two", null, "a", "t:2"), new("one two three", null, "a", "t:3"),
            new("one two three four", null, "a", "t:4"), new("x x x x x", null, "b", "t:5"), new("x x x x x x", null, "b", "t:6"),
        });
        var val = new TextDataset(new TextRow[] { new("ONE  two", null, "a", "v:1"), new("new", null, "b", "v:2") }, train.LabelNames);
        var r = TextDataReport.Build(train, val, null, s => { var w = s.Split(' ', StringSplitOptions.RemoveEmptyEntries); return (w.Length, w.Count(x => x == "x")); }, maxLength: 4);
        Assert.Equal([4, 2], r.TrainCounts);
        Assert.Equal([1, 1], r.ValidationCounts);
        Assert.Equal([3, 6, 6, 6, 6], r.LengthPercentiles);          // p50 p90 p95 p99 max (nearest rank)
        Assert.Equal(2 / 6.0, r.TruncatedShare, 9);                   // 5 and 6 words > 4
        Assert.Equal(11 / 21.0, r.UnknownShare, 9);
        Assert.Equal(1, r.DuplicatesAcrossSplits);
        Assert.Equal(0, r.DuplicatesInTrain);
        Assert.Equal([0.75f, 1.5f], train.BalancedClassWeights());
        Assert.Contains("1 validation texts also in train", r.ToText());
    }

    [Fact]
    public void Label_map_takes_exact_keys_then_globs()
    {
        var map = new Dictionary<string, string> { ["*ham*"] = "ham", ["spam-*"] = "spam", ["hard-ham-1"] = "hard" };
        Assert.Equal("ham", TextFiles.MapLabel("easy-ham-2", map));
        Assert.Equal("spam", TextFiles.MapLabel("spam-1", map));
        Assert.Equal("hard", TextFiles.MapLabel("hard-ham-1", map));
        Assert.Equal("other", TextFiles.MapLabel("other", map));
    }
}
