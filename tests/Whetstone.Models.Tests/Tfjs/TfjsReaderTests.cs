using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Tfjs;
using Whetstone.Models.Graph;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Tfjs;

public sealed class TfjsReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tfjs-test").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Sequential: input [2] → Dense "d" (2 → 3, relu).
    private static JsonObject DenseTopology(string layerName = "d", string activation = "relu") => new()
    {
        ["class_name"] = "Sequential",
        ["config"] = new JsonObject
        {
            ["name"] = "seq",
            ["layers"] = new JsonArray(new JsonObject
            {
                ["class_name"] = "Dense",
                ["config"] = new JsonObject { ["name"] = layerName, ["units"] = 3, ["activation"] = activation, ["use_bias"] = true, ["batch_input_shape"] = new JsonArray(null, 2) },
            }),
        },
    };

    private static JsonObject Spec(string name, int[] shape, JsonObject? quantization = null)
    {
        var o = new JsonObject { ["name"] = name, ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()), ["dtype"] = "float32" };
        if (quantization is not null) o["quantization"] = quantization;
        return o;
    }

    private string Write(JsonObject topology, JsonArray specs, byte[] data, string shardName = "weights.bin", string manifestPath = "weights.bin")
    {
        var model = new JsonObject
        {
            ["format"] = "layers-model",
            ["modelTopology"] = topology,
            ["weightsManifest"] = new JsonArray(new JsonObject { ["paths"] = new JsonArray(manifestPath), ["weights"] = specs }),
        };
        File.WriteAllText(Path.Combine(_dir, "model.json"), model.ToJsonString());
        File.WriteAllBytes(Path.Combine(_dir, shardName), data);
        return _dir;
    }

    private static byte[] Floats(params float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    private static readonly float[] Kernel = [1, 2, 3, 4, 5, 6];   // [in 2, out 3]

    [Fact]
    public void LoadsASequentialDenseModelAndTransposesTheKernel()
    {
        var path = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3]), Spec("d/bias", [3])), Floats([.. Kernel, .5f, -.5f, 0]));
        var g = TfjsLayers.Load(Path.Combine(path, "model.json"));
        Assert.Equal([2], g.InputShape!);
        Assert.Equal(["d.weight", "d.bias"], g.NamedParameters().Select(p => p.Name));
        Assert.Equal([1, 4, 2, 5, 3, 6], g.GetTensor("d.weight").ToArray());   // [out, in]
        var y = g.Forward(Tensor.From([1f, -1f], 1, 2));
        Assert.Equal([0, 0, 0], y.ToArray());                                   // relu(1−4+.5, 2−5−.5, 3−6)
        Assert.Equal([5.5f, 6.5f, 9f], g.Forward(Tensor.From([1f, 1f], 1, 2)).ToArray());
    }

    [Fact]
    public void DequantisesUint8Uint16AndFloat16()
    {
        var q8 = new JsonObject { ["dtype"] = "uint8", ["min"] = -1.0, ["scale"] = 0.5 };
        var q16 = new JsonObject { ["dtype"] = "uint16", ["min"] = 2.0, ["scale"] = 0.001 };
        var data = new List<byte> { 0, 1, 2, 3, 4, 255 };                      // kernel, uint8
        foreach (ushort u in new ushort[] { 0, 1000, 65535 }) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, u); data.AddRange(b); }
        var path = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3], q8), Spec("d/bias", [3], q16)), data.ToArray());
        var g = TfjsLayers.Load(path);
        Assert.Equal([-1f, 0.5f, -0.5f, 1f, 0f, 126.5f], g.GetTensor("d.weight").ToArray());
        Assert.Equal([2f, 3f, 2 + 65.535f], g.GetTensor("d.bias").ToArray(), new ToleranceComparer(1e-5f));

        static JsonObject F16() => new() { ["dtype"] = "float16" };
        var halves = new List<byte>();
        foreach (var h in new[] { 1.5f, -2f, 0.25f, 65504f, -0.0009765625f, 3f, 1f, 2f, 3f })
        { var b = new byte[2]; BinaryPrimitives.WriteHalfLittleEndian(b, (Half)h); halves.AddRange(b); }
        var g16 = TfjsLayers.Load(Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3], F16()), Spec("d/bias", [3], F16())), halves.ToArray()));
        Assert.Equal([1.5f, 65504f, -2f, -0.0009765625f, 0.25f, 3f], g16.GetTensor("d.weight").ToArray());
    }

    private sealed class ToleranceComparer(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float v) => 0;
    }

    [Fact]
    public void ATruncatedShardIsAnErrorNamingTheFileAndBothSizes()
    {
        var path = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3]), Spec("d/bias", [3])), Floats([.. Kernel, 1, 2]));
        var e = Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(path));
        Assert.Contains("truncated shard", e.Message);
        Assert.Contains("weights.bin", e.Message);
        Assert.Contains("32 bytes", e.Message);
        Assert.Contains("36 bytes", e.Message);
        Assert.EndsWith("weights.bin", e.FilePath);
    }

    [Fact]
    public void WeightsThatDoNotFitTheTopologyNameTheLayerWeightAndShapes()
    {
        var path = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [3, 2]), Spec("d/bias", [4])), Floats(new float[10]));
        var e = Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(path));
        Assert.Contains("layer 'd': weight 'kernel' has shape [3, 2] in the manifest but the topology needs [2, 3]", e.Message);
        Assert.Contains("layer 'd': weight 'bias' has shape [4] in the manifest but the topology needs [3]", e.Message);

        var missing = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3])), Floats(Kernel));
        Assert.Contains("layer 'd': weight 'bias' [3] is missing", Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(missing)).Message);

        var extra = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3]), Spec("d/bias", [3]), Spec("other/kernel", [1])), Floats([.. Kernel, 0, 0, 0, 0]));
        Assert.Contains("belong to no layer of the topology: other/kernel", Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(extra)).Message);
    }

    [Fact]
    public void UnsupportedLayersAreAllListedBeforeAnyWeightIsRead()
    {
        var topology = JsonNode.Parse("""
            {"class_name":"Model","config":{"name":"m","input_layers":[["in",0,0]],"output_layers":[["d",0,0]],"layers":[
              {"name":"in","class_name":"InputLayer","config":{"batch_input_shape":[null,8,8,3]},"inbound_nodes":[]},
              {"name":"c","class_name":"Conv2D","config":{"filters":4,"kernel_size":[3,3],"padding":"same","activation":"elu"},"inbound_nodes":[[["in",0,0,{}]]]},
              {"name":"r","class_name":"ReLU","config":{"negative_slope":0.1},"inbound_nodes":[[["c",0,0,{}]]]},
              {"name":"l","class_name":"LSTM","config":{"units":4},"inbound_nodes":[[["r",0,0,{}]]]},
              {"name":"n","class_name":"Conv2D","config":{"filters":4,"kernel_size":[3,3],"data_format":"channels_first"},"inbound_nodes":[[["l",0,0,{}]]]},
              {"name":"d","class_name":"Dense","config":{"units":2},"inbound_nodes":[[["n",0,0,{}]]]}]}}
            """)!.AsObject();
        var path = Write(topology, new JsonArray(Spec("c/kernel", [3, 3, 3, 4])), [], manifestPath: "no-such-shard");
        var e = Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(path));
        Assert.Contains("4 unsupported layer(s)", e.Message);
        Assert.Contains("c (Conv2D): activation 'elu' not supported", e.Message);
        Assert.Contains("r (ReLU): ReLU with negative_slope", e.Message);
        Assert.Contains("l (LSTM): layer class not supported", e.Message);
        Assert.Contains("n (Conv2D): data_format 'channels_first'", e.Message);
        Assert.DoesNotContain("d (Dense)", e.Message);
        Assert.Throws<TfjsModelException>(() => TfjsLayers.ListLayers(path));
    }

    [Fact]
    public void ShardPathsWithoutExtensionResolveToBinOrMinJs()
    {
        var path = Write(DenseTopology(), new JsonArray(Spec("d/kernel", [2, 3]), Spec("d/bias", [3])), Floats([.. Kernel, 0, 0, 0]),
            shardName: "group1-shard1of1.bin", manifestPath: "group1-shard1of1");
        Assert.Equal([1, 4, 2, 5, 3, 6], TfjsLayers.Load(path).GetTensor("d.weight").ToArray());

        File.Delete(Path.Combine(_dir, "group1-shard1of1.bin"));
        File.WriteAllText(Path.Combine(_dir, "group1-shard1of1.min.js"),
            "!function(e){}(function(){return{1:[function(e,h,n){h.exports=\"" + Convert.ToBase64String(Floats([.. Kernel, 0, 0, 0])) + "\"},{}]}});");
        Assert.Equal([1, 4, 2, 5, 3, 6], TfjsLayers.Load(path).GetTensor("d.weight").ToArray());

        File.Delete(Path.Combine(_dir, "group1-shard1of1.min.js"));
        Assert.Contains("shard 'group1-shard1of1' not found", Assert.Throws<TfjsModelException>(() => TfjsLayers.Load(path)).Message);
    }

    [Fact]
    public void DotsInLayerNamesBecomeUnderscores()
    {
        var path = Write(DenseTopology("dense.1"), new JsonArray(Spec("dense.1/kernel", [2, 3]), Spec("dense.1/bias", [3])), Floats([.. Kernel, 0, 0, 0]));
        var g = TfjsLayers.Load(path);
        Assert.Equal(["dense_1"], g.LayerNames);
        Assert.Equal("dense_1.weight", g.NamedParameters().First().Name);
    }

    [Theory]
    [InlineData(224, 3, 2, 1, 0, 1)]   // even size, stride 2: the extra row goes at the bottom
    [InlineData(225, 3, 2, 1, 1, 1)]
    [InlineData(7, 2, 2, 1, 0, 1)]
    [InlineData(6, 3, 2, 1, 0, 1)]
    [InlineData(5, 3, 1, 2, 2, 2)]     // dilation 2: (k − 1)·d = 4
    [InlineData(6, 1, 2, 1, 0, 0)]
    [InlineData(5, 1, 3, 1, 0, 0)]     // would be negative: clamped to 0
    [InlineData(17, 7, 1, 1, 3, 3)]
    [InlineData(10, 4, 1, 1, 1, 2)]    // even kernel, stride 1
    public void SamePaddingFollowsTensorFlow(int size, int kernel, int stride, int dilation, int before, int after)
    {
        Assert.Equal((before, after), TfPadding.Same(size, kernel, stride, dilation));
        int outSize = (size + before + after - ((kernel - 1) * dilation + 1)) / stride + 1;
        Assert.Equal((size + stride - 1) / stride, outSize);
        Assert.Equal(outSize, TfPadding.OutSize(size, kernel, stride, dilation, same: true));
    }

    [Fact]
    public void DepthwiseKernelBecomesGroupedConvWithChannelTimesMultiplierOrder()
    {
        const int kh = 2, kw = 3, cin = 2, mult = 3;
        var src = Enumerable.Range(0, kh * kw * cin * mult).Select(i => (float)i).ToArray();   // [kh, kw, in, mult]
        var dst = new float[src.Length];                                                          // [in·mult, 1, kh, kw]
        KerasLayers.DepthwiseToOihw(src, dst, kh, kw, cin, mult);
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int c = 0; c < cin; c++)
                    for (int m = 0; m < mult; m++)
                        Assert.Equal(src[((y * kw + x) * cin + c) * mult + m], dst[((c * mult + m) * kh + y) * kw + x]);

        // and as a layer: output channel c·mult + m reads only input channel c
        var x0 = Tensor.Rand(new Rng(3), [1, cin, 4, 5]);
        var conv = new KerasConv2D(cin, cin * mult, (kh, kw), (1, 1), (1, 1), same: false, groups: cin, bias: false, KerasActivation.Linear);
        dst.CopyTo(conv.Weight.Span);
        var y0 = conv.Forward(x0);
        var only = x0.Narrow(1, 1, 1).Contiguous();   // channel 1 alone, through the kernels of outputs 3..5
        for (int m = 0; m < mult; m++)
        {
            var w = conv.Weight.Narrow(0, 1 * mult + m, 1).Contiguous();
            var expect = Tensor.Conv2d(only, w, null);
            Assert.Equal(expect.ToArray(), y0.Narrow(1, 1 * mult + m, 1).Contiguous().ToArray(), new ToleranceComparer(1e-4f));
        }
    }

    [Fact]
    public void ConvKernelGoesFromHwioToOihw()
    {
        const int kh = 3, kw = 2, cin = 4, cout = 5;
        var src = Enumerable.Range(0, kh * kw * cin * cout).Select(i => (float)i).ToArray();
        var dst = new float[src.Length];
        KerasLayers.KernelToOihw(src, dst, kh, kw, cin, cout);
        Assert.Equal(src[((2 * kw + 1) * cin + 3) * cout + 4], dst[((4 * cin + 3) * kh + 2) * kw + 1]);
        Assert.Equal(src.Order(), dst.Order());
    }

    [Fact]
    public void ListLayersGivesEngineShapesAndParameterCounts()
    {
        var rows = TfjsLayers.ListLayers(Path.Combine(TfjsFixtures.Root, "small"));
        var byName = rows.ToDictionary(r => r.Name);
        Assert.Equal("InputLayer", rows[0].Kind);
        Assert.Equal([3, 12, 10], rows[0].OutputShape);
        Assert.Equal([8, 6, 5], byName["c1"].OutputShape);
        Assert.Equal(3 * 3 * 3 * 8 + 8, byName["c1"].ParameterCount);
        Assert.Equal([16, 6, 5], byName["dw"].OutputShape);
        Assert.Equal([12, 7, 7], byName["zp"].OutputShape);
        Assert.Equal([12, 4, 4], byName["mp"].OutputShape);
        Assert.Equal([12, 3, 3], byName["ap"].OutputShape);
        Assert.Equal([18, 3, 3], byName["cat"].OutputShape);
        Assert.Equal([72], byName["flat"].OutputShape);
        Assert.Equal([5, 1, 2], byName["rs"].OutputShape);
        Assert.Equal([7], byName["out"].OutputShape);
        Assert.Equal(["ap", "c2"], byName["cat"].Inputs);
        Assert.Equal(4 * 9, byName["bn2"].ParameterCount);
    }

    [Fact]
    public void KerasBatchNormSettingsBecomeOurs()
    {
        var g = TfjsLayers.Load(Path.Combine(TfjsFixtures.Root, "small"));
        var bn1 = (BatchNorm2d)g.Layer("bn1");
        var bn2 = (BatchNorm2d)g.Layer("bn2");
        Assert.Equal(0.001f, bn1.Eps);
        Assert.Equal(0.01f, bn1.Momentum, 1e-6f);   // Keras 0.99 (moving = 0.99·moving + 0.01·batch)
        Assert.Equal(0.1f, bn2.Momentum, 1e-6f);    // Keras 0.9
        Assert.False(g.IsTraining);
        Assert.Contains("bn1.running_mean", g.StateDict().Keys);
        Assert.All(g.Parameters(), p => Assert.True(p.RequiresGrad));   // Keras' trainable flags are not freezing
    }

    [Fact]
    public void FindsTheExportedLiteralOfABrowserifyModule()
    {
        const string bundle = """!function(e){if("object"==typeof exports&&"undefined"!=typeof module)module.exports=e();}(function(){return function e(h,n,d){var g=n[i]={exports:{}};return m}({1:[function(e,h,n){h.exports="QUJD"},{}]},{},[1])(1)});""";
        Assert.Equal("QUJD", (string)TfjsWeights.ModuleExport(bundle)!);
        Assert.Equal(2, TfjsWeights.ModuleExport("x;a.exports={p:[1,2]};")!["p"]!.AsArray().Count);
        Assert.Throws<InvalidDataException>(() => TfjsWeights.ModuleExport("module.exports=e();"));
        Assert.Throws<InvalidDataException>(() => TfjsWeights.ModuleExport("a.exports={p:1}+1"));
    }
}
