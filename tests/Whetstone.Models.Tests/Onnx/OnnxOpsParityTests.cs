using Whetstone.Models.Importers.Onnx;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Xunit.Abstractions;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>
/// Small models written in the test (every size different: batch 2, channels 3/4/6, 7×9 images) run through ONNX Runtime
/// and the importer; outputs must agree to 1e-4.
/// </summary>
public class OnnxOpsParityTests(ITestOutputHelper output)
{
    private OnnxImport Check(OnnxTestModel model, int[] shape, string label)
    {
        var bytes = model.Build();
        var x = OnnxTestModel.Image(shape[0], shape[1], shape[2], shape[3], seed: shape.Sum());
        var (want, wantShape) = OnnxTestModel.RunOrt(bytes, x, shape)[0];
        var import = OnnxModel.Import(bytes, label);
        using var scope = new TensorScope();
        var y = import.Graph.Forward(Tensor.From(x, shape));
        Assert.Equal(wantShape, y.Shape.ToArray());
        double diff = OnnxTestModel.MaxAbsDiff(want, y.ToArray());
        output.WriteLine($"{label}: output {Shapes.Format(wantShape)}, max |diff| vs ONNX Runtime {diff:E2}");
        Assert.True(diff <= 1e-4, $"{label}: max |diff| {diff}");
        return import;
    }

    [Fact]
    public void ConvWithAsymmetricPadsGroupsAndBatchNorm()
    {
        var m = new OnnxTestModel(opset: 13).Input("x", "N", 4, 7, 9).Output("y")
            .Init("w1", [6, 4, 3, 2], seed: 1).Init("b1", [6], seed: 2)
            .Node("Conv", ["x", "w1", "b1"], ["c1"], "/features/conv/Conv", ("pads", new long[] { 0, 1, 2, 0 }), ("strides", new long[] { 2, 1 }))
            .Init("s", [6], seed: 3).Init("bb", [6], seed: 4).Init("mean", [6], seed: 5).Init("var", [6], OnnxTestModel.Pattern(6, 6).Select(v => 1.5f + v).ToArray())
            .Node("BatchNormalization", ["c1", "s", "bb", "mean", "var"], ["bn"], null, ("epsilon", 1e-3f))
            .Node("Relu", "bn", "r")
            .Init("dw", [6, 3, 3, 3], seed: 7)   // groups = 2, dilation 2
            .Node("Conv", ["r", "dw"], ["c2"], null, ("group", 2L), ("dilations", new long[] { 2, 1 }), ("pads", new long[] { 2, 1, 2, 1 }))
            .Init("w3", [6, 1, 3, 3], seed: 8)  // depthwise, SAME_UPPER with stride 2
            .Node("Conv", ["c2", "w3"], ["y"], "conv.same", ("group", 6L), ("strides", new long[] { 2, 2 }), ("auto_pad", "SAME_UPPER"));
        var import = Check(m, [2, 4, 7, 9], "Conv+BN");
        var g = import.Graph;
        Assert.Equal("features_conv_Conv_pad", g.Nodes[0].Name);        // asymmetric pads: a Pad layer, then the conv
        Assert.Equal("Pad", g.Nodes[0].Kind);
        Assert.IsType<Conv2d>(g.Layer("features_conv_Conv"));
        Assert.Equal(["features_conv_Conv.weight", "features_conv_Conv.bias"], g.NamedParameters().Select(p => p.Name).Take(2));
        Assert.Equal("features_conv_Conv", import.TensorToLayer["c1"]);
        Assert.Equal(1e-3f, ((BatchNorm2d)g.Layer(import.TensorToLayer["bn"])).Eps);
        Assert.Equal([4, 7, 9], g.InputShape!);
        Assert.Contains("conv_same_pad", g.LayerNames);
    }

    [Fact]
    public void PoolingAveragesAndMaxima()
    {
        var m = new OnnxTestModel(opset: 11).Input("x", 2, 3, 7, 9).Output("y")
            .Node("MaxPool", "x", "mp", ("kernel_shape", new long[] { 3, 2 }), ("strides", new long[] { 2, 1 }), ("pads", new long[] { 1, 0, 0, 1 }))
            .Node("AveragePool", "mp", "ap", ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }))           // count_include_pad = 0
            .Node("AveragePool", "ap", "ap2", ("kernel_shape", new long[] { 2, 3 }), ("pads", new long[] { 0, 2, 1, 0 }), ("count_include_pad", 1L))
            .Node("AveragePool", "ap2", "ap3", ("kernel_shape", new long[] { 2, 2 }), ("pads", new long[] { 1, 0, 0, 1 }))       // asymmetric, count_include_pad = 0
            .Node("MaxPool", "ap3", "y", ("kernel_shape", new long[] { 2, 2 }), ("auto_pad", "SAME_LOWER"));
        Check(m, [2, 3, 7, 9], "pools");
    }

    [Theory]
    [InlineData(9, 10)]     // the symmetric padding would give an extra output row and column: cropped
    [InlineData(224, 224)]  // ResNet-18's stem (CNTK): no crop needed
    public void EndPadsBelowTheBeginPadsRunWithoutAPaddedCopy(int h, int w)
    {
        var m = new OnnxTestModel(opset: 8).Input("x", "N", 3, h, w).Output("y")
            .Init("w", [4, 3, 7, 7], seed: 1)
            .Node("Conv", ["x", "w"], ["c"], "stem", ("kernel_shape", new long[] { 7, 7 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 3, 3, 2, 2 }))
            .Node("MaxPool", "c", "mp", ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 0, 0 }))
            .Node("AveragePool", "mp", "y", ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 0, 0 }), ("count_include_pad", 1L));
        var import = Check(m, [2, 3, h, w], $"asymmetric pads {h}×{w}");
        Assert.DoesNotContain(import.Graph.Nodes, n => n.Kind == "Pad");
        Assert.Equal(["stem.weight"], import.Graph.NamedParameters().Select(p => p.Name));
    }

    [Fact]
    public void ShapeOpsConcatTransposeReshapeSoftmax()
    {
        var m = new OnnxTestModel(opset: 13).Input("x", "N", 3, 4, 5).Output("y")
            .Init("extra", [1, 2, 4, 5], seed: 9)
            .Node("Concat", ["x", "extra", "x"], ["cat"], null, ("axis", 1L))     // needs batch 1 for the constant part → see below
            .Node("Transpose", "cat", "t", ("perm", new long[] { 0, 2, 3, 1 }))
            .InitInt64("shape", 0, 20, -1)
            .Node("Reshape", ["t", "shape"], ["r"])
            .Node("Softmax", "r", "sm", ("axis", 1L))
            .InitInt64("axes", 1)
            .Node("Unsqueeze", ["sm", "axes"], ["u"])
            .Node("Squeeze", ["u", "axes"], ["s"])
            .Node("Flatten", "s", "y", ("axis", 1L));
        Check(m, [1, 3, 4, 5], "concat/transpose/reshape/softmax");
    }

    [Fact]
    public void LegacySoftmaxFlattensFromItsAxis()
    {
        var m = new OnnxTestModel(opset: 11).Input("x", 2, 3, 4, 5).Output("y")
            .Node("Softmax", "x", "s", ("axis", 1L))          // opset < 13: softmax over all of [3, 4, 5] per sample
            .Node("LogSoftmax", "s", "y", ("axis", -1L));
        Check(m, [2, 3, 4, 5], "Softmax opset 11");
    }

    [Fact]
    public void GemmMatMulAndBroadcastingArithmetic()
    {
        var m = new OnnxTestModel(opset: 13).Input("x", "N", 3, 4, 5).Output("y")
            .Init("cs", [3, 1, 1], seed: 10).Init("cd", [1, 5], OnnxTestModel.Pattern(5, 11).Select(v => 2 + v).ToArray())
            .Node("Sub", ["x", "cs"], ["a"])                         // [N,3,4,5] − [3,1,1]
            .Node("Div", ["a", "cd"], ["b"])                         // ÷ [1,5]
            .Node("Sub", ["cs", "b"], ["c"])                         // constant first
            .Node("GlobalAveragePool", "c", "gap")
            .Node("Sigmoid", "gap", "gate")
            .Node("Mul", ["c", "gate"], ["se"])                      // squeeze-excitation style: [N,3,4,5] × [N,3,1,1]
            .Node("Div", ["se", "gate"], ["se2"])
            .Node("Flatten", "se2", "f")                             // [N, 60]
            .Init("wg", [7, 60], seed: 12).Init("bg", [7], seed: 13)
            .Node("Gemm", ["f", "wg", "bg"], ["g1"], null, ("transB", 1L))
            .Init("wm", [7, 6], seed: 14).Init("bm", [6], seed: 15)
            .Node("MatMul", ["g1", "wm"], ["mm"])
            .Node("Add", ["mm", "bm"], ["lin"])                      // fused into a Linear with bias
            .Node("Transpose", "lin", "linT", ("perm", new long[] { 1, 0 }))
            .Init("wa", [6, 4], seed: 16).Init("ca", [1, 4], seed: 17)
            .Node("Gemm", ["linT", "wa", "ca"], ["g2"], null, ("transA", 1L), ("alpha", 0.5f), ("beta", 2f))
            .Node("Tanh", "g2", "y");
        var import = Check(m, [2, 3, 4, 5], "Gemm/MatMul/broadcasting");
        var names = import.Graph.NamedParameters().Select(p => p.Name).ToArray();
        Assert.Equal(["block8_Gemm.weight", "block8_Gemm.bias", "block9_MatMul.weight", "block9_MatMul.bias", "block12_Gemm.weight", "block12_Gemm.bias"], names);
        Assert.IsType<Linear>(import.Graph.Layer("block8_Gemm"));
        Assert.Equal([6, 7], import.Graph.GetTensor("block9_MatMul.weight").Shape.ToArray());   // Linear layout [out, in]
    }

    [Fact]
    public void ActivationsClipHardSigmoidHardSwish()
    {
        var m = new OnnxTestModel(opset: 14).Input("x", 2, 3, 4, 5).Output("y")
            .Node("HardSigmoid", "x", "h1")                                           // ONNX default alpha 0.2, beta 0.5
            .Node("HardSigmoid", "x", "h2", ("alpha", 1f / 6), ("beta", 0.5f))       // PyTorch's form (the fast path)
            .Node("HardSigmoid", "x", "h3", ("alpha", 0.9f), ("beta", 0.1f))
            .Node("Add", ["h1", "h2"], ["h12"]).Node("Add", ["h12", "h3"], ["h"])
            .Node("Mul", ["x", "h"], ["xm"])
            .Init("lo", [], [-0.3f]).Init("hi", [], [0.45f])
            .Node("Clip", ["xm", "lo", "hi"], ["c1"])
            .Node("Clip", ["xm", "", "hi"], ["c2"])
            .Node("Add", ["c1", "c2"], ["c"])
            .Node("HardSwish", "xm", "hs")
            .Node("LeakyRelu", "hs", "lr", ("alpha", 0.2f))
            .Node("Add", ["lr", "c"], ["d"])
            .Node("Dropout", "d", "dr")
            .Node("Identity", "dr", "y");
        Check(m, [2, 3, 4, 5], "activations");
    }

    [Fact]
    public void ComputedReshapeShapeAsInPaddleOcr()
    {
        // Opset 9, as PaddleOCR's exporter: Shape → Cast → Slice (attributes) → Concat with a Constant → Reshape.
        var m = new OnnxTestModel(opset: 9).Input("x", "N", 3, 4, 5).Output("y")
            .Node("Constant", [], ["w"], "", ("value", OnnxTestModel.TensorProto("w", [6, 3, 1, 1], OnnxTestModel.Pattern(18, 20))))
            .Node("Conv", ["x", "w"], ["c"], "", ("kernel_shape", new long[] { 1, 1 }))
            .Node("Clip", "c", "r6", ("min", 0f), ("max", 6f))
            .Node("Shape", "r6", "s")
            .Node("Cast", "s", "si", ("to", 7L))
            .Node("Slice", "si", "n", ("axes", new long[] { 0 }), ("starts", new long[] { 0 }), ("ends", new long[] { 1 }))
            .Node("Constant", [], ["k"], "", ("value", OnnxTestModel.Int64Tensor("k", [-1])))
            .Node("Concat", ["n", "k"], ["shape"], "", ("axis", 0L))
            .Node("Reshape", ["r6", "shape"], ["y"]);
        var import = Check(m, [2, 3, 4, 5], "computed reshape (opset 9)");
        Assert.Equal("c", import.Graph.Nodes[0].Name);   // unnamed nodes are named after their output
        Assert.Equal(["c.weight"], import.Graph.NamedParameters().Select(p => p.Name));
    }
}
