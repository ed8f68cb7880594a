using Whetstone.Models.Importers.Onnx;

namespace Whetstone.Models.Tests.Onnx;

public class OnnxImportErrorTests
{
    [Fact]
    public void UnsupportedOperatorsAreAllListedBeforeAnyWork()
    {
        var bytes = new OnnxTestModel(opset: 11).Input("x", 1, 3, 8, 8).Output("y")
            .Node("Relu", "x", "r")
            .Node("NonMaxSuppression", ["r"], ["n"], "postprocess/nms")
            .Node("Resize", ["n"], ["z"], "")
            .Node("MaxPool", "z", "y", ("kernel_shape", new long[] { 2, 2 }), ("ceil_mode", 1L))
            .Build();
        var e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(bytes, "bad.onnx"));
        Assert.Contains("bad.onnx", e.Message);
        Assert.Contains("NonMaxSuppression (node 'postprocess/nms', opset 11)", e.Message);
        Assert.Contains("Resize (node '' (output 'z'), opset 11)", e.Message);
        Assert.Contains("MaxPool (node '/block3/MaxPool', opset 11): ceil_mode = 1 is not supported", e.Message);
        Assert.Equal(3, e.Problems.Count);
    }

    [Fact]
    public void TruncatedFileIsReportedAsSuch()
    {
        var bytes = File.ReadAllBytes(PpocrClassifierTests.AssetPath());
        var e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(bytes[..(bytes.Length / 2)], "half.onnx"));
        Assert.Contains("'half.onnx' is not a readable ONNX file (truncated or corrupt", e.Message);
    }

    [Fact]
    public void TwoInputsOrTwoOutputsAreRejected()
    {
        var twoInputs = new OnnxTestModel().Input("a", 1, 3, 4, 4).Input("b", 1, 3, 4, 4).Output("y").Node("Add", ["a", "b"], ["y"]).Build();
        var e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(twoInputs));
        Assert.Contains("the graph has 2 inputs ('a', 'b'); this importer supports exactly one image input", e.Message);

        var twoOutputs = new OnnxTestModel().Input("x", 1, 3, 4, 4).Output("y").Output("z").Node("Relu", "x", "y").Node("Sigmoid", "x", "z").Build();
        e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(twoOutputs));
        Assert.Contains("the graph has 2 outputs ('y', 'z')", e.Message);

        var notAnImage = new OnnxTestModel().Input("x", 1, 12).Output("y").Node("Relu", "x", "y").Build();
        e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(notAnImage));
        Assert.Contains("input 'x' is a Float tensor [1, 12]; an image input must be a float tensor [N, C, H, W]", e.Message);
    }

    [Fact]
    public void ExternalDataAndComputedWeightsGiveClearErrors()
    {
        var external = new OnnxTestModel().Input("x", 1, 3, 4, 4).Output("y")
            .RawInitializer(OnnxTestModel.ExternalTensor("w", [2, 3, 1, 1]))
            .Node("Conv", ["x", "w"], ["y"]).Build();
        var e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(external));
        Assert.Contains("keep their data in external files, which is not supported", e.Message);
        Assert.Contains("First: w.", e.Message);

        var computed = new OnnxTestModel().Input("x", 1, 3, 4, 4).Output("y")
            .Node("Conv", ["x", "x"], ["y"], "odd").Build();
        e = Assert.Throws<OnnxImportException>(() => OnnxModel.Import(computed));
        Assert.Contains("node 'odd' (Conv, opset 13): its weight (input 1, 'x') must be a constant", e.Message);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var e = Assert.Throws<FileNotFoundException>(() => OnnxModel.Load("/nonexistent/model.onnx"));
        Assert.Contains("/nonexistent/model.onnx", e.Message);
    }
}
