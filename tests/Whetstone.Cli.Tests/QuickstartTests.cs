using Whetstone.Training;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;

namespace Whetstone.Cli.Tests;

/// <summary>
/// The quickstart on a small budget (10 images per class, 600 test images, a fifth of the epochs): the real
/// MobileNetV2 and Fashion-MNIST assets (scripts/fetch-assets mobilenet_v2 fashion_mnist), the real table.
/// </summary>
public sealed class QuickstartTests : IDisposable
{
    private readonly string _runs = Directory.CreateTempSubdirectory("whet-qs-").FullName;

    public void Dispose() => Directory.Delete(_runs, recursive: true);

    [Fact]
    public void TransferBeatsTheUntrainedHeadAndEveryRunLeavesALoadableBundle()
    {
        foreach (var asset in new[] { "mobilenet_v2", "fashion_mnist" })
            if (!Assets.IsCached(asset)) Assert.Fail($"Asset {asset} is not cached: run scripts/fetch-assets {asset} (scripts/test does).");
        var output = new StringWriter();
        var rows = Quickstart.Compare(output, new QuickstartOptions(_runs, PerClass: 10, TestLimit: 600, EpochsScale: 0.2));
        var text = output.ToString();

        Assert.Equal(4, rows.Count);
        Assert.Equal(600, rows[0].Result.Count);
        var chance = rows[0].Result.Report.Accuracy;
        Assert.InRange(chance, 0.0, 0.25);                                  // 10 classes, untrained head
        Assert.True(rows[1].Result.Report.Accuracy > chance + 0.25, $"frozen backbone + head: {rows[1].Result.Report.Accuracy}\n{text}");
        Assert.True(rows[2].Result.Report.Accuracy > chance + 0.25, $"top blocks: {rows[2].Result.Report.Accuracy}\n{text}");
        Assert.Equal(1280 * 10 + 10, rows[1].Trainable);                    // only the new head trains
        Assert.True(rows[2].Trainable > rows[1].Trainable && rows[3].Trainable > rows[2].Trainable);
        foreach (var row in rows.Skip(1))
        {
            var bundle = ImageBundle.Load(row.RunDir);
            Assert.Equal(10, bundle.Labels.Count);
            Assert.Equal("T-shirt/top", bundle.Labels[0]);
        }
        Assert.Contains("frozen backbone + new head", text);
        Assert.Contains("macro-F1", text);
        Assert.Contains("s/epoch", text);
    }
}
