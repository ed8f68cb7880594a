using Whetstone.Models.Formats;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Tfjs;

/// <summary>Paths, the deterministic input images and NHWC comparisons for the fixtures of make_tfjs_fixtures.mjs.</summary>
internal static class TfjsFixtures
{
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Whetstone.slnx"))) dir = dir.Parent;
            return Path.Combine(dir!.FullName, "tests", "fixtures", "tfjs");
        }
    }

    /// <summary>The cached nsfwjs model folder; fails (not skips) with the command that fetches it.</summary>
    public static string Asset(string name)
    {
        var home = Environment.GetEnvironmentVariable("WHETSTONE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");
        var dir = Path.Combine(home, "assets", name, "package", "dist", "models", name);
        Assert.True(File.Exists(Path.Combine(dir, "model.min.js")),
            $"The {name} model is not in the asset cache ({dir}). Run `scripts/fetch-assets mobilenet_v2 inception_v3` first.");
        return dir;
    }

    /// <summary>
    /// Image b, row y, column x, channel c = fround(0.5 + 0.45·sin(0.11·(b+1)·x + 0.07·(c+1)·y + 0.9·b + 0.3·c)
    /// ·cos(0.05·(x−y)·(1 + 0.5·c) + 0.2·b)), as the fixture script; returned as NCHW.
    /// </summary>
    public static Tensor Input(int b, int h, int w, int c)
    {
        var nhwc = new float[b * h * w * c];
        int i = 0;
        for (int n = 0; n < b; n++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < c; ch++)
                        nhwc[i++] = (float)(0.5 + 0.45 * Math.Sin(0.11 * (n + 1) * x + 0.07 * (ch + 1) * y + 0.9 * n + 0.3 * ch)
                                                    * Math.Cos(0.05 * (x - y) * (1 + 0.5 * ch) + 0.2 * n));
        return Tensor.From(nhwc, b, h, w, c).Permute(0, 3, 1, 2).Contiguous();
    }

    /// <summary>Our value in Keras' order: [N, C, H, W] → [N, H, W, C]; other ranks as they are.</summary>
    public static Tensor Nhwc(Tensor t) => t.Rank == 4 ? t.Permute(0, 2, 3, 1).Contiguous() : t;

    /// <summary>Max |expected − ours| for fixture <paramref name="key"/>, our tensor in engine layout.</summary>
    public static double MaxDiff(SafeTensorsFile f, string key, Tensor ours) => MaxDiff(f.Read(key), Nhwc(ours), key);

    /// <summary>Compares the corner patches <c>{layer}.tl</c> / <c>{layer}.br</c> written for a large 4-D activation.</summary>
    public static double MaxDiffPatches(SafeTensorsFile f, string layer, Tensor ours)
    {
        var y = Nhwc(ours);
        double worst = 0;
        foreach (var (suffix, atEnd) in new[] { ("tl", false), ("br", true) })
        {
            var want = f.Read($"{layer}.{suffix}");
            int k = want.Dim(1), cc = want.Dim(3);
            var part = y.Narrow(1, atEnd ? y.Dim(1) - k : 0, k).Narrow(2, atEnd ? y.Dim(2) - k : 0, k).Narrow(3, atEnd ? y.Dim(3) - cc : 0, cc).Contiguous();
            worst = Math.Max(worst, MaxDiff(want, part, $"{layer}.{suffix}"));
        }
        return worst;
    }

    private static double MaxDiff(Tensor want, Tensor got, string key)
    {
        Assert.True(want.Shape.SequenceEqual(got.Shape), $"{key}: TF.js shape {Shapes.Format(want.Shape.ToArray())}, ours {Shapes.Format(got.Shape.ToArray())}");
        var w = want.ToArray(); var g = got.ToArray();
        double worst = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double d = Math.Abs(w[i] - g[i]);
            if (double.IsNaN(d)) return double.PositiveInfinity;
            worst = Math.Max(worst, d);
        }
        return worst;
    }
}
