using System.Diagnostics;
using System.Text.RegularExpressions;
using StbImageSharp;
using Whetstone.Training.Reports;

namespace Whetstone.Training.Tests.Reports;

/// <summary>
/// Opens a generated report in headless Chromium: a screenshot of the page as written (whose log must hold no console
/// message — the page has no script, so any is an error such as a blocked request), and the DOM of a copy with a probe
/// script that counts images the browser could not decode. Chromium is required (CI installs it); without it the test
/// fails and names the package.
/// </summary>
public class BrowserTests
{
    internal static string? FindChromium()
    {
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    /// <summary>Runs Chromium headless on <paramref name="file"/> with extra arguments; returns (stdout, stderr).</summary>
    internal static (string Out, string Err) RunChromium(string chromium, string file, params string[] args)
    {
        var profile = Directory.CreateTempSubdirectory("whet-chromium-");
        try
        {
            var psi = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                                      "--disable-component-update", "--disable-sync", "--hide-scrollbars", $"--user-data-dir={profile.FullName}", "--enable-logging=stderr", "--v=0" })
                psi.ArgumentList.Add(a);
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(new Uri(file).AbsoluteUri);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000)) { p.Kill(entireProcessTree: true); Assert.Fail("chromium did not finish within 120 s"); }
            return (stdout.Result, stderr.Result);
        }
        finally { try { profile.Delete(recursive: true); } catch (IOException) { } }
    }

    /// <summary>Checks <paramref name="html"/> in the browser; returns the screenshot's path.</summary>
    internal static string CheckInBrowser(string html, string dir, int height = 4000)
    {
        var chromium = FindChromium();
        Assert.True(chromium is not null, "chromium is not installed; install it with: apt-get install -y chromium");
        var page = Path.Combine(dir, "report.html");
        File.WriteAllText(page, html);
        var shot = Path.Combine(dir, "shot.png");
        var (_, err) = RunChromium(chromium!, page, $"--screenshot={shot}", $"--window-size=1280,{height}");
        var console = err.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal) || l.Contains("net::ERR_", StringComparison.Ordinal)).ToArray();
        Assert.True(console.Length == 0, "the page logged:\n" + string.Join("\n", console));
        Assert.True(File.Exists(shot), "chromium wrote no screenshot:\n" + err[^Math.Min(err.Length, 2000)..]);
        var img = ImageResult.FromMemory(File.ReadAllBytes(shot), ColorComponents.RedGreenBlue);
        Assert.Equal((1280, height), (img.Width, img.Height));
        Assert.True(img.Data.Distinct().Count() > 50, "the screenshot is (nearly) blank");

        // the same page with a probe: every <img> must have loaded and decoded in the browser
        const string probe = "<script>window.addEventListener('load',()=>{const i=[...document.images];" +
                             "document.body.setAttribute('data-images',i.length);" +
                             "document.body.setAttribute('data-broken',i.filter(x=>!(x.complete&&x.naturalWidth>0)).length);});</script>";
        var probed = Regex.Replace(html, "<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "").Replace("</body>", probe + "</body>", StringComparison.Ordinal);
        var probePage = Path.Combine(dir, "probe.html");
        File.WriteAllText(probePage, probed);
        var (dom, err2) = RunChromium(chromium!, probePage, "--dump-dom", "--virtual-time-budget=5000");
        var m = Regex.Match(dom, "data-images=\"(\\d+)\" data-broken=\"(\\d+)\"");
        Assert.True(m.Success, "the probe did not run:\n" + err2[^Math.Min(err2.Length, 2000)..]);
        int expected = HtmlReportTests.ImgSrc().Matches(html).Count;
        Assert.Equal(expected, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("0", m.Groups[2].Value);
        return shot;
    }

    [Fact]
    public void AReportRendersInChromiumWithEveryImageLoadedAndNoErrors()
    {
        var html = HtmlReport.Render(ReportFixtures.Data(2, withStudy: true));
        HtmlReportTests.DecodeImages(html);
        var dir = Directory.CreateTempSubdirectory("whet-report-");
        try { CheckInBrowser(html, dir.FullName); }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void TheCheckCatchesABrokenImage()
    {
        var html = HtmlReport.Render(ReportFixtures.Data(3)).Replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAAA", StringComparison.Ordinal);
        var dir = Directory.CreateTempSubdirectory("whet-report-");
        try { Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CheckInBrowser(html, dir.FullName, 1200)); }
        finally { dir.Delete(recursive: true); }
    }
}
