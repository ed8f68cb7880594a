namespace Whetstone.Cli.Tests;

public class QuickstartTests
{
    [Fact]
    public void TransferBeatsTheUntrainedHeadAndTheTableIsPrinted()
    {
        var output = new StringWriter();
        var rows = Quickstart.Compare(output);
        Assert.Equal(4, rows.Count);
        var before = rows[0].Report.Accuracy;
        Assert.InRange(before, 0.0, 0.4);                         // 4 classes, untrained head: about chance
        Assert.True(rows[1].Report.Accuracy > before + 0.3, $"frozen body + head: {rows[1].Report.Accuracy}");
        Assert.True(rows[2].Report.Accuracy >= rows[1].Report.Accuracy - 0.02, "full fine-tune should not lose to the frozen body");
        Assert.True(rows[2].Report.Accuracy > rows[3].Report.Accuracy, "pre-trained features should beat training from scratch on 32 labels");
        Assert.Equal("260", rows[1].Trainable);                    // only the 64→4 head trains
        var text = output.ToString();
        Assert.Contains("frozen body + new head", text);
        Assert.Contains("macro-F1", text);
    }
}
