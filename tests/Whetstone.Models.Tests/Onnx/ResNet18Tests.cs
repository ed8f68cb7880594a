using Whetstone.Models.Importers.Onnx;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Xunit.Abstractions;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>Runs only where the resnet18 asset is cached (<c>scripts/fetch-assets resnet18</c>; scripts/test fetches it).</summary>
public sealed class ResNet18FactAttribute : FactAttribute
{
    public static readonly string Dir = Path.Combine(
        Environment.GetEnvironmentVariable("WHETSTONE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone"),
        "assets", "resnet18");

    public static string Model => Path.Combine(Dir, "ResNet18.onnx");
    public static string Preprocess => Path.Combine(Dir, "ResNetPreprocess.onnx");

    public ResNet18FactAttribute()
    {
        if (!File.Exists(Model) || !File.Exists(Preprocess))
            Skip = $"The resnet18 asset is not cached in {Dir}; run scripts/fetch-assets resnet18 to get it.";
    }
}

/// <summary>
/// ML.NET's ResNet-18 (CNTK export, opset 8, [1, 3, 224, 224] → pooled features [1, 512, 1, 1]) and its preprocessing
/// graph (RGB split and re-concatenated as BGR, minus a 3×224×224 mean image), each compared with ONNX Runtime.
/// </summary>
public class ResNet18Tests(ITestOutputHelper output)
{
    /// <summary>RGB pixels in [0, 255] ([N, 3, 224, 224]): smooth gradients plus noise, different per image.</summary>
    private static float[] Pixels(int n) => OnnxTestModel.Image(n, 3, 224, 224, seed: 11).Select(v => Math.Clamp(127.5f + 120 * v, 0, 255)).ToArray();

    private static float[] Slice(float[] v, int i, int n) => v[(i * v.Length / n)..((i + 1) * v.Length / n)];

    [ResNet18Fact]
    public void ImportsEveryInitializerAndEndsAtThePooledFeatures()
    {
        var import = OnnxModel.Import(ResNet18FactAttribute.Model);
        var g = import.Graph;
        Assert.Equal(8, import.Opset);
        Assert.Equal([3, 224, 224], g.InputShape!);
        Assert.Equal(22, g.Nodes.Count(n => n.Kind == "Conv"));     // CNTK's ResNet-18 here has 3 blocks in its last stage
        Assert.Equal(22, g.Nodes.Count(n => n.Kind == "BatchNormalization"));
        Assert.Equal(9, g.Nodes.Count(n => n.Kind == "Add"));
        Assert.Equal("Pooling395", g.OutputName);
        Assert.DoesNotContain(g.Nodes, n => n.Kind is "Gemm" or "MatMul" or "Softmax");   // a featurizer: no classifier of its own

        // every initializer lands in the state dict (conv weights, BN scale/bias/mean/var), element for element
        // (num_batches_tracked is ours: PyTorch's counter, not in the file)
        var proto = OnnxProtoReader.ReadModel(File.ReadAllBytes(ResNet18FactAttribute.Model));
        long initializers = proto.Graph!.Initializers.Sum(t => t.ElementCount);
        long state = g.StateDict().Where(p => !p.Key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).Sum(p => (long)p.Value.Size);
        Assert.Equal(110, proto.Graph.Initializers.Count);
        Assert.Equal(initializers, state);
        Assert.All(g.NamedParameters(), p => Assert.True(p.Tensor.RequiresGrad, p.Name));
        Assert.IsType<BatchNorm2d>(g.Layer("BatchNormalization251"));

        var rows = import.Layers([2, 3, 224, 224]);
        Assert.Equal([2, 64, 112, 112], rows.Single(r => r.Name == "Convolution249").OutputShape!);   // 7×7 s2, pads (3, 3, 2, 2)
        Assert.Equal([2, 64, 56, 56], rows.Single(r => r.Name == "Pooling255").OutputShape!);        // 3×3 s2, pads (1, 1, 0, 0)
        Assert.Equal([2, 512, 1, 1], rows[^1].OutputShape!);
    }

    [ResNet18Fact]
    public void FeaturesMatchOnnxRuntimeOnPreprocessedImages()
    {
        const int n = 3;
        var pixels = Pixels(n);
        var modelBytes = File.ReadAllBytes(ResNet18FactAttribute.Model);
        var prepBytes = File.ReadAllBytes(ResNet18FactAttribute.Preprocess);
        int[] one = [1, 3, 224, 224];
        // ORT: preprocessing graph, then the network, one image at a time (the file fixes batch 1)
        var inputs = new List<float>();
        var expected = new List<float>();
        for (int i = 0; i < n; i++)
        {
            var x = OnnxTestModel.RunOrt(prepBytes, Slice(pixels, i, n), one)[0].Data;
            inputs.AddRange(x);
            var y = OnnxTestModel.RunOrt(modelBytes, x, one, threads: 2);
            Assert.Equal([1, 512, 1, 1], y[0].Shape);
            expected.AddRange(y[0].Data);
        }

        var g = OnnxModel.Load(ResNet18FactAttribute.Model);
        using var scope = new TensorScope();
        using var _ = Tensors.Autograd.Graph.NoGrad();
        var ours = g.Forward(Tensor.From(inputs.ToArray(), n, 3, 224, 224));
        Assert.Equal([n, 512, 1, 1], ours.Shape.ToArray());
        var got = ours.ToArray();
        double diff = OnnxTestModel.MaxAbsDiff(expected.ToArray(), got), scale = expected.Max(v => Math.Abs(v));
        output.WriteLine($"features: ours {string.Join(", ", got.Take(4).Select(v => v.ToString("F5")))} ORT {string.Join(", ", expected.Take(4).Select(v => v.ToString("F5")))}; max |diff| {diff:E2} (largest feature {scale:F3})");
        Assert.True(scale > 0.1, "the features are not all near zero");
        Assert.True(diff <= 1e-4, $"features differ from ONNX Runtime by {diff}");
    }

    [ResNet18Fact]
    public void PreprocessingGraphIsBgrMinusAMeanImageAndMatchesOnnxRuntime()
    {
        var p = OnnxPreprocess.Import(ResNet18FactAttribute.Preprocess);
        Assert.Equal([2, 1, 0], p.ChannelOrder);
        Assert.Equal((224, 224), (p.Height, p.Width));
        Assert.Equal([1f, 1, 1], p.Scale);
        Assert.Equal([0f, 0, 0], p.Offset);
        Assert.NotNull(p.MeanImage);
        Assert.Equal(3 * 224 * 224, p.MeanImage!.Length);
        Assert.Equal(3, p.Steps.Count);
        Assert.True(OnnxPreprocess.IsPreprocessingGraph(ResNet18FactAttribute.Preprocess));
        Assert.False(OnnxPreprocess.IsPreprocessingGraph(ResNet18FactAttribute.Model));

        var pixels = Pixels(1);
        var ort = OnnxTestModel.RunOrt(File.ReadAllBytes(ResNet18FactAttribute.Preprocess), pixels, [1, 3, 224, 224])[0].Data;
        int plane = 224 * 224;
        var ours = new float[ort.Length];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++)
                ours[c * plane + i] = (pixels[p.ChannelOrder[c] * plane + i] - p.MeanImage[c * plane + i]) * p.Scale[c] + p.Offset[c];
        double diff = OnnxTestModel.MaxAbsDiff(ort, ours);
        output.WriteLine($"preprocessed: ours {string.Join(", ", ours.Take(3).Select(v => v.ToString("F3")))} ORT {string.Join(", ", ort.Take(3).Select(v => v.ToString("F3")))}; max |diff| {diff:E2}");
        Assert.Equal(0, diff);
    }
}

/// <summary>Preprocessing graphs written here: what is read into numbers, and what is refused with the node named.</summary>
public class OnnxPreprocessTests
{
    private static string Write(TempFile f, OnnxTestModel m) { File.WriteAllBytes(f.Path, m.Build()); return f.Path; }

    [Fact]
    public void ScalesOffsetsAndPerChannelMeansFoldIntoNumbersThatMatchOnnxRuntime()
    {
        using var f = new TempFile();
        // (bgr(x) − mean[c]) / 58 · 1 + 0.5, written as Split → Concat → Sub per-channel → Div → Mul(1) → Add
        var m = new OnnxTestModel(13).Input("x", 1, 3, 5, 7).Output("y", 1, 3, 5, 7)
            .Init("mean", [1, 3, 1, 1], [123.7f, 116.3f, 103.5f]).Init("d", [], [58f]).Init("one", [1], [1f]).Init("half", [3, 1, 1], [0.5f, -0.25f, 0f])
            .InitInt64("split", 1, 1, 1)
            .Node("Split", ["x", "split"], ["r", "g", "b"], "split", ("axis", 1L))
            .Node("Concat", ["b", "g", "r"], ["bgr"], "concat", ("axis", 1L))
            .Node("Sub", ["bgr", "mean"], ["s"], "sub")
            .Node("Div", ["s", "d"], ["q"], "div")
            .Node("Mul", ["one", "q"], ["q1"], "mul")
            .Node("Add", ["q1", "half"], ["y"], "add");
        var path = Write(f, m);
        Assert.True(OnnxPreprocess.IsPreprocessingGraph(path));
        var p = OnnxPreprocess.Import(path);
        Assert.Equal([2, 1, 0], p.ChannelOrder);
        Assert.Null(p.MeanImage);          // per-channel means fold into the offsets
        var x = OnnxTestModel.Image(1, 3, 5, 7).Select(v => 128 + 100 * v).ToArray();
        var ort = OnnxTestModel.RunOrt(File.ReadAllBytes(path), x, [1, 3, 5, 7])[0].Data;
        var ours = new float[ort.Length];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 35; i++) ours[c * 35 + i] = x[p.ChannelOrder[c] * 35 + i] * p.Scale[c] + p.Offset[c];
        Assert.True(OnnxTestModel.MaxAbsDiff(ort, ours) < 1e-5);
    }

    [Theory]
    [InlineData("Relu", "node 'act' (Relu)")]
    [InlineData("Transpose", "node 'act' (Transpose)")]
    public void AnOperatorWithoutPreprocessingMeaningIsRefusedByName(string op, string expected)
    {
        using var f = new TempFile();
        var m = new OnnxTestModel(13).Input("x", 1, 3, 4, 4).Output("y", 1, 3, 4, 4).Init("mean", [1, 3, 4, 4])
            .Node("Sub", ["x", "mean"], ["s"], "sub")
            .Node(op, ["s"], ["y"], "act");
        var path = Write(f, m);
        Assert.False(OnnxPreprocess.IsPreprocessingGraph(path));
        var e = Assert.Throws<OnnxImportException>(() => OnnxPreprocess.Import(path));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void PerPixelScalesAndNonChannelReordersAreRefusedByName()
    {
        using var f = new TempFile();
        var perPixel = new OnnxTestModel(13).Input("x", 1, 3, 4, 4).Output("y", 1, 3, 4, 4).Init("k", [1, 3, 4, 4])
            .Node("Mul", ["x", "k"], ["y"], "scale_image");
        var e = Assert.Throws<OnnxImportException>(() => OnnxPreprocess.Import(Write(f, perPixel)));
        Assert.Contains("node 'scale_image' (Mul)", e.Message);
        Assert.Contains("per-pixel", e.Message);

        var widthSplit = new OnnxTestModel(13).Input("x", 1, 3, 4, 4).Output("y", 1, 3, 4, 4).InitInt64("split", 2, 2)
            .Node("Split", ["x", "split"], ["a", "b"], "cut", ("axis", 3L))
            .Node("Concat", ["b", "a"], ["y"], "join", ("axis", 3L));
        e = Assert.Throws<OnnxImportException>(() => OnnxPreprocess.Import(Write(f, widthSplit)));
        Assert.Contains("node 'cut' (Split)", e.Message);

        var flip = new OnnxTestModel(13).Input("x", 1, 3, 4, 4).Output("y", 1, 3, 4, 4).Init("k", [1], [255f])
            .Node("Sub", ["k", "x"], ["y"], "invert");
        e = Assert.Throws<OnnxImportException>(() => OnnxPreprocess.Import(Write(f, flip)));
        Assert.Contains("node 'invert' (Sub)", e.Message);
    }
}

internal sealed class TempFile : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"whet-prep-{Guid.NewGuid():N}.onnx");
    public void Dispose() { if (File.Exists(Path)) File.Delete(Path); }
}
