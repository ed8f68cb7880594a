using Whetstone.Models.Importers.Onnx;
using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Xunit.Abstractions;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>
/// The PaddleOCR text-orientation classifier (MobileNetV3, opset 9, [N, 3, 48, 192] → softmax [N, 2]) imported and
/// compared with ONNX Runtime on the same inputs. Needs the cached asset (CI fetches it first).
/// </summary>
public class PpocrClassifierTests(ITestOutputHelper output)
{
    private const string Logits = "p2o.Add.87";   // the ONNX tensor before the final Softmax

    internal static string AssetPath()
    {
        var home = Environment.GetEnvironmentVariable("WHETSTONE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");
        var path = Path.Combine(home, "assets", "ppocr_cls", "package", "assets", "ch_ppocr_mobile_v2.0_cls_infer.onnx");
        Assert.True(File.Exists(path), $"The PaddleOCR classifier is not in the asset cache ({path}). Run `scripts/fetch-assets ppocr_cls` from the repository root first.");
        return path;
    }

    [Fact]
    public void ImportsEveryLayerWithTrainableWeights()
    {
        var import = OnnxModel.Import(AssetPath());
        var g = import.Graph;
        Assert.Equal(9, import.Opset);
        Assert.Equal([3, 0, 0], g.InputShape!);
        Assert.Equal(53, g.Nodes.Count(n => n.Kind == "Conv"));
        Assert.Equal(35, g.Nodes.Count(n => n.Kind == "BatchNormalization"));
        Assert.Equal(18, g.Nodes.Count(n => n.Kind == "HardSwish"));          // x·clip(x+3, 0, 6)/6 fused into one layer
        Assert.DoesNotContain(g.Nodes, n => n.Kind is "Clip" or "Div");
        Assert.Equal("p2o_Div_0", import.TensorToLayer["hardswish_0.tmp_0"]);
        Assert.IsType<Conv2d>(g.Layer("p2o_Conv_0"));
        Assert.IsType<BatchNorm2d>(g.Layer("p2o_BatchNormalization_0"));
        var names = g.NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("p2o_Conv_0.weight", names);
        Assert.Contains("p2o_BatchNormalization_0.weight", names);
        Assert.Contains("p2o_MatMul_0.weight", names);     // the fc layer: MatMul + Add fused into a Linear
        Assert.Contains("p2o_MatMul_0.bias", names);
        Assert.All(g.NamedParameters(), p => Assert.True(p.Tensor.RequiresGrad, p.Name));
        Assert.Contains("p2o_BatchNormalization_0.running_var", g.StateDict().Keys);
        Assert.Equal("p2o_MatMul_0", import.TensorToLayer[Logits]);
        var bn = (BatchNorm2d)g.Layer("p2o_BatchNormalization_0");
        Assert.Equal(0.1f, bn.Momentum, 5);

        var rows = import.Layers([2, 3, 48, 192]);
        Assert.Equal([2, 2], rows[^1].OutputShape!);
        Assert.Equal([2, 200], rows.Single(r => r.Op == "Reshape").OutputShape!);
        output.WriteLine(import.FormatLayers([2, 3, 48, 192]));
    }

    [Fact]
    public void MatchesOnnxRuntimeOnProbabilitiesAndLogits()
    {
        var path = AssetPath();
        var bytes = File.ReadAllBytes(path);
        int[] shape = [3, 3, 48, 192];
        var x = OnnxTestModel.Image(3, 3, 48, 192);
        var ort = OnnxTestModel.RunOrt(OnnxTestModel.WithExtraOutput(bytes, Logits), x, shape, ["softmax_0.tmp_0", Logits]);

        var import = OnnxModel.Import(path);
        var g = import.Graph;
        using var scope = new TensorScope();
        using var _ = Tensors.Autograd.Graph.NoGrad();
        var input = Tensor.From(x, shape);
        var probs = g.Forward(input);
        var logits = g.Run(input, import.TensorToLayer[Logits]);
        Assert.Equal(ort[0].Shape, probs.Shape.ToArray());
        Assert.Equal(ort[1].Shape, logits.Shape.ToArray());
        double dp = OnnxTestModel.MaxAbsDiff(ort[0].Data, probs.ToArray()), dl = OnnxTestModel.MaxAbsDiff(ort[1].Data, logits.ToArray());
        output.WriteLine($"probabilities: ours {string.Join(", ", probs.ToArray().Take(4).Select(v => v.ToString("F6")))} ORT {string.Join(", ", ort[0].Data.Take(4).Select(v => v.ToString("F6")))}; max |diff| {dp:E2}");
        output.WriteLine($"logits: max |diff| {dl:E2}");
        Assert.True(dp <= 1e-4, $"probabilities differ from ONNX Runtime by {dp}");
        Assert.True(dl <= 1e-4, $"logits differ from ONNX Runtime by {dl}");

        // The truncated graph (cut before the softmax) gives the same logits.
        g.TruncateAt(import.TensorToLayer[Logits]);
        Assert.True(OnnxTestModel.MaxAbsDiff(ort[1].Data, g.Forward(input).ToArray()) <= 1e-4);
    }

    [Fact]
    public void TruncatedWithANewHeadTrains()
    {
        var import = OnnxModel.Import(AssetPath());
        var g = import.Graph;
        // Cut after the last block's hard-swish (before the classifier's pooling), freeze everything but the last conv.
        string cut = import.TensorToLayer["hardswish_17.tmp_0"];
        g.TruncateAt(cut);
        var lastConv = g.Nodes.Last(n => n.Kind == "Conv").Name;
        Freezing.FreezeAll(g);
        Freezing.SetModuleTrainable(g, lastConv, true);
        var conv = (Conv2d)g.Layer(lastConv);
        var head = new Linear(conv.OutChannels, 3, true, new Rng(3));
        var parameters = g.NamedTrainableParameters().Concat(head.NamedParameters().Select(p => ("head." + p.Name, p.Tensor))).ToArray();
        var sgd = new Sgd([new ParamGroup(parameters)], lr: 0.1);

        var x = OnnxTestModel.Image(4, 3, 48, 96, seed: 11);
        int[] targets = [0, 1, 2, 1];
        var losses = new List<float>();
        for (int step = 0; step < 6; step++)
        {
            using var scope = new TensorScope();
            sgd.ZeroGrad();
            var features = g.Forward(Tensor.From(x, 4, 3, 48, 96)).GlobalAvgPool2d(keepDims: false);
            var loss = Tensor.CrossEntropy(head.Forward(features), targets);
            loss.Backward();
            if (step == 0)
            {
                Assert.NotNull(conv.Weight.Grad);
                Assert.True(conv.Weight.Grad!.ToArray().Any(v => v != 0), "no gradient reached the last conv's weight");
                Assert.Null(((Conv2d)g.Layer("p2o_Conv_0")).Weight.Grad);   // frozen
            }
            sgd.Step();
            losses.Add(loss.Item());
        }
        output.WriteLine($"loss: {string.Join(" → ", losses.Select(l => l.ToString("F4")))}");
        for (int i = 1; i < losses.Count; i++) Assert.True(losses[i] < losses[i - 1], $"loss did not go down at step {i}: {string.Join(", ", losses)}");
        Assert.True(losses[^1] < losses[0] - 0.03, $"loss barely moved: {string.Join(", ", losses)}");
    }
}
