using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Models.Tests.Onnx;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;
using Xunit.Abstractions;

namespace Whetstone.Training.Tests.Tasks;

/// <summary>Runs only where the resnet18 asset is cached (<c>scripts/fetch-assets resnet18</c>; scripts/test fetches it).</summary>
public sealed class ResNet18FactAttribute : FactAttribute
{
    public static string Dir => Path.Combine(Assets.CacheDir, "resnet18");

    public ResNet18FactAttribute()
    {
        if (!Assets.IsCached("resnet18")) Skip = $"The resnet18 asset is not cached in {Dir}; run scripts/fetch-assets resnet18 to get it.";
    }
}

/// <summary>
/// Pixel preprocessing as the model defines it: an ONNX preprocessing graph (ML.NET's ResNetPreprocess.onnx, and graphs
/// written here) through our image pipeline against ONNX Runtime, the config keys that set it by hand and their
/// errors, and a bundle that carries the channel order and mean image to <c>whet predict</c>.
/// </summary>
public sealed class ModelPreprocessingTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] RunOrt(string model, float[] input, int[] shape)
    {
        using var session = new InferenceSession(model);
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape.Select(d => (long)d).ToArray());
        using var run = new RunOptions();
        using var results = session.Run(run, [session.InputMetadata.Keys.First()], [value], [session.OutputMetadata.Keys.First()]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>An HWC image with <paramref name="channels"/> channels of whole-number pixels in [0, 255].</summary>
    private static ImageData Image(int h, int w, int channels, int seed)
    {
        var rng = new Rng((ulong)seed);
        var px = new float[h * w * channels];
        for (int i = 0; i < px.Length; i++) px[i] = MathF.Round((float)(127 + 100 * Math.Sin(0.05 * i + seed) + 25 * rng.NextDouble()));
        return new ImageData(h, w, channels, px);
    }

    /// <summary>The image as the [1, 3, H, W] RGB tensor a preprocessing graph takes (grey replicated).</summary>
    private static float[] Nchw(ImageData im)
    {
        var x = new float[3 * im.Height * im.Width];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < im.Height; y++)
                for (int xx = 0; xx < im.Width; xx++) x[(c * im.Height + y) * im.Width + xx] = im[y, xx, im.Channels < 3 ? 0 : c];
        return x;
    }

    [ResNet18Fact]
    public void ResNetPreprocessGraphThroughOurPipelineEqualsOnnxRuntime()
    {
        var graph = Path.Combine(ResNet18FactAttribute.Dir, "ResNetPreprocess.onnx");
        var r = ModelPreprocessing.FromGraph(OnnxPreprocess.Import(graph), 224, 224);
        Assert.Equal(ChannelOrder.Bgr, r.Channels);
        Assert.NotNull(r.MeanImage);
        var p = new Preprocess { ImageSize = 224, Resize = ResizeMode.None, Normalization = r.Normalization, Channels = r.Channels, MeanImage = r.MeanImage };
        foreach (var channels in new[] { 3, 1 })
        {
            var im = Image(224, 224, channels, seed: channels);
            float[] ours;
            using (new TensorScope()) ours = p.ToTensor(im).ToArray();
            var ort = RunOrt(graph, Nchw(im), [1, 3, 224, 224]);
            double diff = 0;
            for (int i = 0; i < ort.Length; i++) diff = Math.Max(diff, Math.Abs(ort[i] - ours[i]));
            output.WriteLine($"{channels} channel(s): ours {ours[0]:F4}, {ours[224 * 224]:F4} ORT {ort[0]:F4}, {ort[224 * 224]:F4}; max |diff| {diff:E2}");
            Assert.True(diff <= 1e-4, $"{channels}-channel image: our preprocessing differs from ONNX Runtime by {diff}");
        }
    }

    [Fact]
    public void AWrittenGraphWithScaleAndMeanImageMatchesOnnxRuntimeThroughOurPipeline()
    {
        var mean = Enumerable.Range(0, 3 * 6 * 8).Select(i => 90f + (i * 37 % 61)).ToArray();
        var graph = PreprocessGraph.Write(_dir.File("prep.onnx"), 6, 8, bgr: true, mean, scale: 1 / 58f, offset: 0.25f);
        var r = ModelPreprocessing.FromGraph(OnnxPreprocess.Import(graph), 6, 8);
        var p = new Preprocess { ImageSize = 6, ImageWidth = 8, Resize = ResizeMode.None, Normalization = r.Normalization, Channels = r.Channels, MeanImage = r.MeanImage };
        var im = Image(6, 8, 3, seed: 5);
        float[] ours;
        using (new TensorScope()) ours = p.ToTensor(im).ToArray();
        var ort = RunOrt(graph, Nchw(im), [1, 3, 6, 8]);
        for (int i = 0; i < ort.Length; i++) Assert.True(Math.Abs(ort[i] - ours[i]) <= 1e-5, $"element {i}: ours {ours[i]}, ORT {ort[i]}");

        // the JSON a bundle keeps round-trips the mean image exactly
        var back = Preprocess.FromJson(p.ToJson());
        Assert.Equal(p, back);
        Assert.Equal(ChannelOrder.Bgr, back.Channels);
        Assert.Equal(mean, back.MeanImage!.Values);
    }

    [Fact]
    public void HandSetChannelsAndMeanImageApplyInTheModelsChannelOrder()
    {
        var im = Image(2, 2, 3, seed: 1);
        var mean = new MeanImage(3, 2, 2, Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), "test");
        var p = new Preprocess { ImageSize = 2, Resize = ResizeMode.None, Normalization = Normalization.FromScaleOffset(1, 0), Channels = ChannelOrder.Bgr, MeanImage = mean };
        float[] y;
        using (new TensorScope()) y = p.ToTensor(im).ToArray();
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 4; i++)
                Assert.Equal(im[i / 2, i % 2, 2 - c] - mean.Values[c * 4 + i], y[c * 4 + i], 3);
        Assert.Throws<ArgumentException>(() => (p with { ImageSize = 3 }).Validate());   // a 2×2 mean image for a 3×3 input
    }

    // ------------------------------------------------------------------ config keys, on a real network

    private static void NeedPpocr()
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail($"Asset ppocr_cls is not cached in {Assets.CacheDir}: run scripts/fetch-assets ppocr_cls (scripts/test does).");
    }

    /// <summary>A model folder: PaddleOCR's classifier with a BGR + mean-image preprocessing graph beside it.</summary>
    private string ModelFolder(string name, int size, out float[] mean)
    {
        var folder = Path.GetDirectoryName(_dir.File(name, "x"))!;
        File.Copy(Path.Combine(Assets.CacheDir, "ppocr_cls", "package", "assets", "ch_ppocr_mobile_v2.0_cls_infer.onnx"), Path.Combine(folder, "cls.onnx"));
        mean = Enumerable.Range(0, 3 * size * size).Select(i => 100f + (i * 13 % 57)).ToArray();
        PreprocessGraph.Write(Path.Combine(folder, "prep.onnx"), size, size, bgr: true, mean, scale: 1 / 127.5f, offset: 0);
        return folder;
    }

    private TrainConfig Config(string model, string train) => new()
    {
        Name = "prep",
        Runs = Path.Combine(_dir.Path, "runs"),
        BaseDirectory = _dir.Path,
        Source = "test.yaml",
        Seed = 5,
        Model = new ModelConfig { Path = model },
        Data = new DataConfig { Format = "folder", Train = train, Test = train, Validation = 0.25, ImageSize = 48 },
        Freeze = new FreezeConfig { Backbone = true },
        Train = new TrainSection { Epochs = 2, BatchSize = 8, Lr = 1e-2, Threads = 2 },
    };

    [Fact]
    public void TheModelFoldersPreprocessingGraphIsUsedAndTravelsWithTheBundle()
    {
        NeedPpocr();
        var folder = ModelFolder("model", 48, out var mean);
        var train = TestImages.Stripes(_dir, "train", 8, 1);
        var log = new StringWriter();
        var recipe = ImageClassification.Prepare(Config(folder, train), log);
        Assert.Equal(Path.Combine(folder, "prep.onnx"), recipe.PreprocessGraph);
        Assert.Equal(ChannelOrder.Bgr, recipe.Preprocess.Channels);
        Assert.Equal(mean, recipe.Preprocess.MeanImage!.Values);
        Assert.Contains("preprocessing from prep.onnx: BGR, minus a 3×48×48 mean image", log.ToString());
        Assert.Contains("(from prep.onnx)", recipe.DescribeLayers());
        var result = recipe.Run();

        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(result.RunDir, "model", "whetstone.json")))!.AsObject();
        Assert.Equal("Bgr", info["preprocess"]!["Channels"]!.GetValue<string>());
        Assert.Equal(recipe.Preprocess.MeanImage!.Sha256, info["preprocess"]!["MeanImage"]!["Sha256"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(result.RunDir, "model", "source", "prep.onnx")));

        var bundle = ImageBundle.Load(result.RunDir);
        Assert.Equal(recipe.Preprocess, bundle.Preprocess);
        Assert.True(bundle.GoldenMaxDiff <= 1e-4);
        // what whet predict does with a new image gives what the trained model gives
        var image = Image(60, 50, 3, seed: 9);
        using var scope = new TensorScope();
        using var _ = Tensors.Autograd.Graph.NoGrad();
        recipe.Model.Eval();
        var a = recipe.Model.Forward(recipe.Preprocess.ToTensor(image)).ToArray();
        var b = bundle.Model.Forward(bundle.Preprocess.ToTensor(image)).ToArray();
        Assert.Equal(a, b);
    }

    [Fact]
    public void PreprocessingKeysAreCheckedWithOneLineNamingTheKey()
    {
        NeedPpocr();
        var folder = ModelFolder("model", 48, out _);
        var plain = Path.Combine(Assets.CacheDir, "ppocr_cls", "package", "assets", "ch_ppocr_mobile_v2.0_cls_infer.onnx");
        var train = TestImages.Stripes(_dir, "train", 2, 1);
        var cfg = Config(folder, train);
        string Error(TrainConfig c) => Assert.Throws<ConfigException>(() => ImageClassification.Prepare(c, TextWriter.Null)).Message;

        Assert.Contains("data.channels must be auto, rgb or bgr (got 'rgba')", Error(cfg with { Data = cfg.Data with { Channels = "rgba", PreprocessGraph = "none" } }));
        // a graph in effect and hand-set numbers do not mix
        var conflict = Error(cfg with { Data = cfg.Data with { Mean = [0.5f], Std = [0.5f], Channels = "bgr" } });
        Assert.Contains("data.channels, data.mean/std cannot be set by hand while the preprocessing graph", conflict);
        Assert.Contains("prep.onnx", conflict);
        Assert.Contains("data.preprocess_graph: none", conflict);
        // the graph is written for 48×48; a 64×64 input is refused, naming both sizes
        var size = Error(cfg with { Data = cfg.Data with { ImageSize = 64 } });
        Assert.Contains("written for 48×48 images but the model input is 64×64", size);
        // a graph it cannot express: the node is named
        var bad = PreprocessGraph.Write(_dir.File("bad", "prep.onnx"), 48, 48, bgr: false, null, 1, 0, extraOp: "Relu");
        var e = Error(Config(plain, train) with { Data = cfg.Data with { PreprocessGraph = bad } });
        Assert.Contains("node 'extra' (Relu)", e);
        Assert.Contains("data.preprocess_graph", e);
        // a mean image by hand: a .safetensors [3, H, W] of the input size
        var meanFile = _dir.File("mean.safetensors");
        SafeTensors.Save(meanFile, new Dictionary<string, Tensor> { ["mean"] = Tensor.From(new float[3 * 32 * 32], 3, 32, 32) });
        Assert.Contains("is 3×32×32 but the model input is 3×48×48", Error(Config(plain, train) with { Data = cfg.Data with { MeanImage = meanFile } }));
        Assert.Contains("not a .safetensors file", Error(Config(plain, train) with { Data = cfg.Data with { MeanImage = bad } }));
        Assert.Contains("data.preprocess_graph must be auto, none or a path", Error(cfg with { Data = cfg.Data with { PreprocessGraph = "" } }));

        // by hand, without a graph: the keys take effect
        SafeTensors.Save(meanFile, new Dictionary<string, Tensor> { ["mean"] = Tensor.From(Enumerable.Repeat(100f, 3 * 48 * 48).ToArray(), 1, 3, 48, 48) });
        var hand = ImageClassification.Prepare(Config(plain, train) with { Data = cfg.Data with { Channels = "bgr", MeanImage = meanFile, Mean = [0], Std = [0.5f] } }, TextWriter.Null);
        Assert.Null(hand.PreprocessGraph);
        Assert.Equal(ChannelOrder.Bgr, hand.Preprocess.Channels);
        Assert.Equal(48, hand.Preprocess.MeanImage!.Height);
        var none = ImageClassification.Prepare(cfg with { Data = cfg.Data with { PreprocessGraph = "none" } }, TextWriter.Null);
        Assert.Null(none.Preprocess.MeanImage);
        Assert.Equal(ChannelOrder.Rgb, none.Preprocess.Channels);
    }

    [Fact]
    public void AFolderWithTwoNetworksIsRefused()
    {
        NeedPpocr();
        var folder = ModelFolder("two", 48, out _);
        File.Copy(Path.Combine(folder, "cls.onnx"), Path.Combine(folder, "cls2.onnx"));
        var e = Assert.Throws<NotSupportedException>(() => ModelSource.Load(folder));
        Assert.Contains("holds 2 ONNX networks and 1 preprocessing graph(s)", e.Message);
    }
}

/// <summary>Writes ONNX preprocessing graphs (opset 13) with the Models tests' <see cref="OnnxTestModel"/> writer.</summary>
internal static class PreprocessGraph
{
    /// <summary>
    /// [1, 3, H, W] RGB → (Split + Concat to BGR) → Sub mean image [1, 3, H, W] → Mul scale → Add offset → (an extra
    /// unary node <paramref name="extraOp"/>) → output.
    /// </summary>
    public static string Write(string path, int h, int w, bool bgr, float[]? mean, float scale, float offset, string? extraOp = null)
    {
        var m = new OnnxTestModel(opset: 13).Input("pixels", 1, 3, h, w);
        string x = "pixels";
        if (bgr)
        {
            m.Node("Split", [x], ["r", "g", "b"], "split", ("axis", 1L));
            m.Node("Concat", ["b", "g", "r"], ["bgr"], "concat", ("axis", 1L));
            x = "bgr";
        }
        if (mean is not null)
        {
            m.Init("mean", [1, 3, h, w], mean).Node("Sub", [x, "mean"], ["centred"], "sub");
            x = "centred";
        }
        m.Init("scale", [], [scale]).Node("Mul", [x, "scale"], ["scaled"], "mul");
        m.Init("offset", [1], [offset]).Node("Add", ["scaled", "offset"], [extraOp is null ? "out" : "shifted"], "add");
        if (extraOp is not null) m.Node(extraOp, ["shifted"], ["out"], "extra");
        File.WriteAllBytes(path, m.Output("out", 1, 3, h, w).Build());
        return path;
    }
}
