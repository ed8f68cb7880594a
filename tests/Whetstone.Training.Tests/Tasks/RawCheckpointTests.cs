using Whetstone.Models.Tests.Onnx;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Tasks;

/// <summary>
/// Raw image checkpoints scored with their own classifier (<see cref="ImageBundle.FromCheckpoint"/>): PaddleOCR's ONNX
/// orientation classifier against ONNX Runtime on the same input, nsfwjs' TF.js MobileNetV2 against its own full graph,
/// and the checkpoints that cannot be scored that way (a featurizer, a two-layer classifier, the wrong label count).
/// </summary>
public sealed class RawCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void Need(string asset)
    {
        if (!Assets.IsCached(asset)) Assert.Fail($"Asset {asset} is not cached: run scripts/fetch-assets {asset} (scripts/test does).");
    }

    private static float[] Probabilities(LoadedImageBundle b, float[] x, int[] shape)
    {
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        return b.Model.Forward(Tensor.From(x, shape)).Softmax().ToArray();
    }

    [Fact]
    public void OnnxClassifierGivesOnnxRuntimesProbabilities()
    {
        Need("ppocr_cls");
        var b = ImageBundle.FromCheckpoint("asset:ppocr_cls", ["0", "180"], height: 48, width: 192);
        Assert.True(b.IsCheckpoint);
        Assert.Equal(["0", "180"], b.Labels);
        Assert.Equal(2, b.Model.HeadSpec.Classes);
        int[] shape = [3, 3, b.Preprocess.Height, b.Preprocess.Width];
        Assert.Equal([48, 192], new[] { b.Preprocess.Height, b.Preprocess.Width });
        var x = OnnxTestModel.Image(shape[0], shape[1], shape[2], shape[3]);
        var ours = Probabilities(b, x, shape);
        var model = Assets.Root("ppocr_cls");
        var ort = OnnxTestModel.RunOrt(File.ReadAllBytes(model), x, shape)[0].Data;   // the graph ends with its softmax
        Assert.True(OnnxTestModel.MaxAbsDiff(ours, ort) < 1e-5, $"max |diff| {OnnxTestModel.MaxAbsDiff(ours, ort)}");
        Assert.InRange(ort.Max(), 0.0, 1.0);
    }

    [Fact]
    public void TfjsClassifierKeepsItsFiveOutputsAndDefaultNames()
    {
        Need("mobilenet_v2");
        var log = new StringWriter();
        var b = ImageBundle.FromCheckpoint("asset:mobilenet_v2", null, log);
        Assert.Equal(["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3", "LABEL_4"], b.Labels);
        Assert.Contains("name them with --labels", log.ToString());
        Assert.Contains("5 outputs over", log.ToString());
        int[] shape = [2, 3, 224, 224];
        var x = OnnxTestModel.Image(2, 3, 224, 224);
        for (int i = 0; i < x.Length; i++) x[i] = (x[i] + 1) / 2;   // the model's 0..1 pixels
        var ours = Probabilities(b, x, shape);
        var full = ModelSource.Load(Assets.Root("mobilenet_v2"));
        float[] reference;
        using (new TensorScope())
        using (Graph.NoGrad()) reference = full.Forward(Tensor.From(x, shape)).ToArray();
        Assert.True(OnnxTestModel.MaxAbsDiff(ours, reference) < 1e-5, $"max |diff| {OnnxTestModel.MaxAbsDiff(ours, reference)}");
        Assert.True(Math.Abs(ours[..5].Sum() - 1) < 1e-5);
    }

    [Fact]
    public void CheckpointsThatCannotBeScoredAreRefusedWithTheReason()
    {
        Need("ppocr_cls");
        var count = Assert.Throws<BundleException>(() => ImageBundle.FromCheckpoint("asset:ppocr_cls", ["a", "b", "c"]));
        Assert.Contains("--labels names 3 classes but the checkpoint's classifier has 2 outputs", count.Message);

        // conv → flatten → Gemm: the classifier reads the whole 8×16×16 map, not pooled features, so it cannot be a head
        var flat = new OnnxTestModel()
            .Input("x", 1, 3, 16, 16).Output("z", 1, 3)
            .Init("cw", [8, 3, 3, 3], seed: 1).Init("w", [2048, 3], seed: 2)
            .Node("Conv", ["x", "cw"], ["c"], "conv", ("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Relu", "c", "r")
            .Node("Flatten", "r", "f")
            .Node("MatMul", ["f", "w"], ["z"], "fc")
            .Build();
        var path = _dir.File("flat.onnx");
        File.WriteAllBytes(path, flat);
        var e = Assert.Throws<BundleException>(() => ImageBundle.FromCheckpoint(path, null, height: 16, width: 16));
        Assert.Contains("cannot be re-hosted as a head", e.Message);
    }

    [Fact]
    public void AnMlpClassifierIsReHostedWholeAndMatchesOnnxRuntime()
    {
        // conv → pool → Gemm → Dropout → Gemm → Softmax: two weighted layers above the pooled features (the default cut
        // walks back over both, as over nsfwjs' dense stack)
        var onnx = new OnnxTestModel()
            .Input("x", 1, 3, 16, 16).Output("p", 1, 3)
            .Init("cw", [8, 3, 3, 3], seed: 1).Init("w1", [8, 6], seed: 2).Init("b1", [6], seed: 3).Init("w2", [6, 3], seed: 4).Init("b2", [3], seed: 5)
            .Node("Conv", ["x", "cw"], ["c"], "conv", ("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Relu", "c", "r")
            .Node("GlobalAveragePool", "r", "g")
            .Node("Flatten", "g", "f")
            .Node("Gemm", ["f", "w1", "b1"], ["h"], "fc1")
            .Node("Dropout", "h", "hr")
            .Node("Gemm", ["hr", "w2", "b2"], ["z"], "fc2")
            .Node("Softmax", "z", "p")
            .Build();
        var path = _dir.File("mlp.onnx");
        File.WriteAllBytes(path, onnx);
        var b = ImageBundle.FromCheckpoint(path, ["a", "b", "c"], height: 16, width: 16);
        Assert.Equal(3, b.Model.HeadSpec.Classes);
        Assert.Equal(8, b.Model.FeatureDim);
        var x = OnnxTestModel.Image(1, 3, 16, 16);
        var ours = Probabilities(b, x, [1, 3, 16, 16]);
        var ort = OnnxTestModel.RunOrt(onnx, x, [1, 3, 16, 16])[0].Data;
        Assert.True(OnnxTestModel.MaxAbsDiff(ours, ort) < 1e-6, $"max |diff| {OnnxTestModel.MaxAbsDiff(ours, ort)}");
    }

    [ResNet18Fact]
    public void AFeaturizerHasNoClassifierToScore()
    {
        var e = Assert.Throws<BundleException>(() => ImageBundle.FromCheckpoint("asset:resnet18", null));
        Assert.Contains("no classifier of its own", e.Message);
        Assert.Contains("fine-tune it first", e.Message);
    }
}
