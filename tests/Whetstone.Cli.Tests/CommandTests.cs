using System.Text.Json.Nodes;
using Whetstone.Training;

namespace Whetstone.Cli.Tests;

/// <summary>
/// The whet commands as a user runs them (a child process): train from a YAML file on PaddleOCR's ONNX classifier and
/// an image folder, then evaluate and predict with the run; bad input gives one "error:" line and exit code 1.
/// </summary>
public sealed class CommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(_dir, args);

    /// <summary>Writes an 8-bit grey PNG (stored, filter 0).</summary>
    private static void Png(string path, int h, int w, Func<int, int, byte> pixel)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var raw = new byte[h * (w + 1)];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = pixel(y, x);
        using var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) zs.Write(raw);
        using var f = new MemoryStream();
        f.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        void Chunk(string type, byte[] data)
        {
            var t = System.Text.Encoding.ASCII.GetBytes(type);
            f.Write(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(data.Length)));
            f.Write(t);
            f.Write(data);
            f.Write(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(Crc32([.. t, .. data]))));
        }
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = 8;
        Chunk("IHDR", ihdr);
        Chunk("IDAT", z.ToArray());
        Chunk("IEND", []);
        File.WriteAllBytes(path, f.ToArray());
    }

    private static uint Crc32(byte[] bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    internal static void Stripes(string root, int perClass)
    {
        for (int i = 0; i < perClass; i++)
        {
            int period = 4 + i % 5;
            Png(Path.Combine(root, "horizontal", $"{i}.png"), 36, 44, (y, _) => (byte)((y + i) / period % 2 == 0 ? 220 : 30));
            Png(Path.Combine(root, "vertical", $"{i}.png"), 36, 44, (_, x) => (byte)((x + i) / period % 2 == 0 ? 220 : 30));
        }
    }

    [Fact]
    public void TrainEvaluateAndPredictFromTheCommandLine()
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail("Asset ppocr_cls is not cached: run scripts/fetch-assets ppocr_cls (scripts/test does).");
        Stripes(Path.Combine(_dir, "train"), 12);
        Stripes(Path.Combine(_dir, "test"), 6);
        File.WriteAllText(Path.Combine(_dir, "stripes.yaml"), """
            # whet train stripes.yaml
            name: stripes
            model:
              path: asset:ppocr_cls
            data:
              format: folder
              train: train
              test: test
              validation: 0.25
              image_size: 48
            freeze:
              backbone: true
            train:
              epochs: 5
              batch_size: 8
              lr: 0.01
            """);

        var dry = Whet("train", "stripes.yaml", "--dry-run");
        Assert.True(dry.Code == 0, dry.Err);
        Assert.Contains("feature cache: at", dry.Out);
        Assert.False(Directory.Exists(Path.Combine(_dir, "runs")), "a dry run writes nothing");

        var train = Whet("train", "stripes.yaml", "--set", "train.epochs=4");
        Assert.True(train.Code == 0, train.Err + train.Out);
        Assert.Contains("accuracy:", train.Out);
        Assert.Contains("before fine-tuning", train.Out);
        var run = Path.Combine(_dir, "runs", "stripes");
        Assert.Contains("epochs: 4", File.ReadAllText(Path.Combine(run, "config.yaml")));

        var eval = Whet("evaluate", run, "--data", Path.Combine(_dir, "test"), "--json");
        Assert.True(eval.Code == 0, eval.Err);
        var json = JsonNode.Parse(eval.Out)!.AsObject();
        foreach (var key in new[] { "accuracy", "macro_f1", "per_class", "confusion_matrix", "labels", "before", "roc_auc", "pr_auc" })
            Assert.True(json.ContainsKey(key), key);
        Assert.Equal(["horizontal", "vertical"], json["labels"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.True(json["accuracy"]!.GetValue<double>() >= 0.9, eval.Out);
        Assert.Contains("report: " + Path.Combine(run, "report.html"), eval.Err);        // --json keeps stdout for the JSON
        var custom = Path.Combine(_dir, "eval-report.html");
        var evalText = Whet("evaluate", run, "--data", Path.Combine(_dir, "test"), "--no-before", "--report", custom);
        Assert.True(evalText.Code == 0, evalText.Err);
        Assert.Contains("stored in the bundle", File.ReadAllText(custom));                 // the bundle's temperature and threshold

        var predict = Whet("predict", run, Path.Combine(_dir, "test", "vertical", "0.png"), "--json");
        Assert.True(predict.Code == 0, predict.Err);
        Assert.Equal("vertical", JsonNode.Parse(predict.Out)!["label"]!.GetValue<string>());
        var help = Whet("predict", "--help");
        Assert.Contains("temperature", help.Out);
        Assert.Contains("threshold", help.Out);
    }

    [Fact]
    public void RawImageCheckpointIsScoredWithItsOwnClassifier()
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail("Asset ppocr_cls is not cached: run scripts/fetch-assets ppocr_cls (scripts/test does).");
        Stripes(Path.Combine(_dir, "test"), 5);
        var eval = Whet("evaluate", "asset:ppocr_cls", "--data", Path.Combine(_dir, "test"), "--labels", "horizontal,vertical", "--image-size", "48x192", "--json");
        Assert.True(eval.Code == 0, eval.Err);
        var json = JsonNode.Parse(eval.Out)!.AsObject();
        Assert.False(json.ContainsKey("before"), "a raw checkpoint is the model before fine-tuning");
        Assert.Equal(["horizontal", "vertical"], json["labels"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Contains("scored with its own classifier", eval.Err);
        Assert.DoesNotContain("report:", eval.Err);   // no run folder to write one into

        // predict, file by file, agrees with evaluate's batched scoring
        var files = Directory.GetFiles(Path.Combine(_dir, "test"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var predict = Whet(["predict", "asset:ppocr_cls", .. files, "--labels", "horizontal,vertical", "--image-size", "48x192", "--json"]);
        Assert.True(predict.Code == 0, predict.Err);
        var rows = predict.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(files.Length, rows.Length);
        double correct = rows.Count(r => Path.GetFileName(Path.GetDirectoryName(r["file"]!.GetValue<string>())) == r["label"]!.GetValue<string>());
        Assert.Equal(correct / files.Length, json["accuracy"]!.GetValue<double>(), 6);

        var badSize = Whet("predict", "asset:ppocr_cls", files[0], "--image-size", "48by192");
        Assert.Equal(1, badSize.Code);
        Assert.Contains("expected H or HxW", badSize.Err);
    }

    [Fact]
    public void ModelsListsTheSupportedFormatsAndArchitectures()
    {
        var models = Whet("models");
        Assert.True(models.Code == 0, models.Err);
        foreach (var expected in new[] { "TF.js layers", "DepthwiseConv2D", "ONNX", "HardSigmoid", "bert, distilbert, roberta, xlm-roberta", "asset:mobilenet_v2" })
            Assert.Contains(expected, models.Out);
    }

    [Fact]
    public void MistakesGiveOneErrorLineAndExitCode1()
    {
        File.WriteAllText(Path.Combine(_dir, "typo.yaml"), "name: x\ntrain:\n  epocks: 3\n");
        var typo = Whet("train", "typo.yaml");
        Assert.Equal(1, typo.Code);
        Assert.Contains("typo.yaml:3", typo.Err);
        Assert.Contains("unknown key 'epocks'", typo.Err);
        Assert.DoesNotContain("   at ", typo.Err);                  // no stack trace

        var missing = Whet("evaluate", Path.Combine(_dir, "nothing"), "--data", _dir);
        Assert.Equal(1, missing.Code);
        Assert.StartsWith("error: ", missing.Err);

        var unknown = Whet("assets", "fetch", "no_such_asset");
        Assert.Equal(1, unknown.Code);
        Assert.Contains("unknown asset 'no_such_asset'", unknown.Err);
    }
}
