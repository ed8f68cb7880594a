using System.Text.RegularExpressions;
using StbImageSharp;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Reports;

namespace Whetstone.Training.Tests.Reports;

public partial class HtmlReportTests
{
    [GeneratedRegex("<img[^>]*\\ssrc=\"([^\"]*)\"")]
    internal static partial Regex ImgSrc();

    /// <summary>Every image's source, decoded: each must be a base64 PNG data URI that decodes to a non-empty image.</summary>
    internal static List<ImageResult> DecodeImages(string html)
    {
        var images = new List<ImageResult>();
        foreach (Match m in ImgSrc().Matches(html))
        {
            var src = m.Groups[1].Value;
            Assert.StartsWith("data:image/png;base64,", src);
            var bytes = Convert.FromBase64String(src["data:image/png;base64,".Length..]);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            var img = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlueAlpha);
            Assert.True(img.Width > 0 && img.Height > 0);
            images.Add(img);
        }
        return images;
    }

    [Fact]
    public void AMultiClassReportHasEverySectionAndValidImages()
    {
        var html = HtmlReport.Render(ReportFixtures.Data(3, withStudy: true));
        foreach (var id in HtmlReport.SectionIds.Where(s => s != "binary")) Assert.Contains($"<section id=\"{id}\">", html);
        Assert.DoesNotContain("<section id=\"binary\">", html);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.Contains("class &lt;2&gt;", html);               // labels are escaped
        Assert.Contains("Temperature scaling divides the logits by T = ", html);
        Assert.Contains("Most confident mistakes", html);
        Assert.Contains("best so far", html, StringComparison.OrdinalIgnoreCase);
        var images = DecodeImages(html);
        // 5 training charts + 2 reliability diagrams + 12 thumbnails + study history + 3 parameter charts
        Assert.Equal(5 + 2 + 12 + 1 + 3, images.Count);
        Assert.Contains(images, i => i.Width == 560 && i.Height == 360);
        Assert.Contains(images, i => i.Width == 28 && i.Height == 28);
    }

    [Fact]
    public void ABinaryReportShowsRocPrAndTheThresholdRule()
    {
        var data = ReportFixtures.Data(2) with { ThresholdRule = "recall:0.9", Study = null };
        var html = HtmlReport.Render(data);
        Assert.Contains("<section id=\"binary\">", html);
        Assert.Contains("<code>recall:0.9</code>", html);
        Assert.Contains("ROC-AUC", html);
        Assert.DoesNotContain("<section id=\"study\">", html);
        var decision = CalibratedDecision.Fit(data.Validation!, ThresholdRule.Parse("recall:0.9"));
        Assert.True(decision.Threshold!.Point.Recall >= 0.9);
        Assert.Contains($"Decision threshold <b>{decision.Threshold.Threshold:F4}</b>", html);
        Assert.Equal(5 + 2 + 2 + 12, DecodeImages(html).Count);
    }

    [Fact]
    public void TheReportStatesTheBootstrapIntervalsAndEceBeforeAndAfterScaling()
    {
        var data = ReportFixtures.Data(4);
        var html = HtmlReport.Render(data);
        var ci = Bootstrap.Classification(data.After);
        Assert.Contains($"[{100 * ci.Accuracy.Lower:F1}%, {100 * ci.Accuracy.Upper:F1}%]", html);
        Assert.Contains($"[{ci.MacroF1.Lower:F3}, {ci.MacroF1.Upper:F3}]", html);
        var t = Calibration.FitTemperature(data.Validation!);
        Assert.True(t.Temperature > 1.2, $"T = {t.Temperature}");   // the fixture is over-confident
        double before = Calibration.ExpectedCalibrationError(data.After), after = Calibration.ExpectedCalibrationError(Calibration.Apply(data.After, t.Temperature));
        Assert.True(after < before);
        Assert.Contains($"<td>test</td><td>{before:F4}</td><td><b>{after:F4}</b></td>", html);
    }

    [Fact]
    public void MissingInputsLeaveSectionsWithANote()
    {
        var full = ReportFixtures.Data(3);
        var html = HtmlReport.Render(new ReportData { Title = "bare", Labels = full.Labels, After = full.After with { Probabilities = null } });
        Assert.Contains("No training metrics", html);
        Assert.Contains("kept no probabilities", html);
        Assert.Empty(DecodeImages(html));
    }

    [Fact]
    public void AStudyAloneRendersAsAPage()
    {
        var html = HtmlReport.RenderStudy("study", ReportFixtures.Study());
        Assert.Contains("<section id=\"study\">", html);
        Assert.Contains("17 trials (13 complete, 3 pruned, 1 failed)", html);
        Assert.Equal(4, DecodeImages(html).Count);
    }
}
