using System.Globalization;
using System.Text.Json.Nodes;
using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.Importers.Tfjs;

// Keras layers (as TF.js and Keras 2/3 serialise them) → engine modules in NCHW.
// Layout rule: a tensor Keras sees as 4-D [N, H, W, C] is held as [N, C, H, W]; every other rank is held in Keras' own
// order. So spatial layers work as they are, and the layers that see the axis order (Flatten, Reshape, Dense on 4-D,
// Concatenate, softmax) permute or remap axes. Shapes below are Keras shapes without the batch axis
// (image: [H, W, C]; 0 where the file leaves a size open).

/// <summary>One layer of a Keras topology: its name, class, config and the layers it reads (in order).</summary>
internal sealed record KerasLayerSpec(string Name, string ClassName, JsonObject Config, IReadOnlyList<string> Inputs);

/// <summary>A single-input, single-output Keras model in topological order.</summary>
internal sealed record KerasModelSpec(string InputName, int[] InputShape, IReadOnlyList<KerasLayerSpec> Layers, string OutputName);

/// <summary>
/// A weight a layer needs from the checkpoint: Keras name (<c>kernel</c>, <c>gamma</c> …), Keras shape, and how to write
/// the Keras-layout values into the engine tensor.
/// </summary>
internal sealed record KerasWeight(string Layer, string Name, int[] Shape, Action<float[]> Assign);

/// <summary>The engine module for one Keras layer, its output shape (Keras order, no batch) and its weights.</summary>
internal sealed record KerasBuiltLayer(Module Module, int[] OutputShape, IReadOnlyList<KerasWeight> Weights)
{
    public long ParameterCount => Weights.Sum(w => w.Shape.Aggregate(1L, (a, b) => a * b));
}

internal enum KerasActivationKind { Linear, Relu, ReluMax, Sigmoid, Tanh, Softmax, HardSigmoid, Swish }

/// <summary>A Keras activation: <c>relu</c>, <c>relu6</c> (= relu capped at 6), <c>sigmoid</c>, <c>tanh</c>, <c>softmax</c>
/// (over channels for images), <c>linear</c>, <c>hard_sigmoid</c> (Keras: clip(0.2x + 0.5, 0, 1)), <c>swish</c>/<c>silu</c>.</summary>
internal readonly record struct KerasActivation(KerasActivationKind Kind, float Max = 0)
{
    public static readonly KerasActivation Linear = new(KerasActivationKind.Linear);

    public static KerasActivation? TryParse(string? name) => name switch
    {
        null or "linear" => Linear,
        "relu" => new(KerasActivationKind.Relu),
        "relu6" => new(KerasActivationKind.ReluMax, 6),
        "sigmoid" => new(KerasActivationKind.Sigmoid),
        "tanh" => new(KerasActivationKind.Tanh),
        "softmax" => new(KerasActivationKind.Softmax),
        "hard_sigmoid" or "hardSigmoid" => new(KerasActivationKind.HardSigmoid),
        "swish" or "silu" => new(KerasActivationKind.Swish),
        _ => null,
    };

    public Tensor Apply(Tensor x) => Kind switch
    {
        KerasActivationKind.Linear => x,
        KerasActivationKind.Relu => x.Relu(),
        KerasActivationKind.ReluMax when Max == 6 => x.Relu6(),
        KerasActivationKind.ReluMax => (x * (6 / Max)).Relu6() * (Max / 6),       // min(max(x, 0), m)
        KerasActivationKind.Sigmoid => x.Sigmoid(),
        KerasActivationKind.Tanh => x.Tanh(),
        KerasActivationKind.Softmax => x.Rank == 4 ? x.Softmax(1) : x.Softmax(),  // Keras: last axis = channels
        KerasActivationKind.HardSigmoid => (x * 1.2f + 3f).Relu6() * (1f / 6),    // clip(0.2x + 0.5, 0, 1)
        KerasActivationKind.Swish => x.Silu(),
        _ => throw new InvalidOperationException($"Activation {Kind}."),
    };

    public override string ToString() => Kind == KerasActivationKind.ReluMax ? $"relu(max={Max})" : Kind.ToString().ToLowerInvariant();
}

/// <summary>Keras/TF "same" padding along one axis: total = max((⌈n/s⌉ − 1)·s + (k − 1)·d + 1 − n, 0), the odd one at the end.</summary>
internal static class TfPadding
{
    public static (int Before, int After) Same(int size, int kernel, int stride, int dilation = 1)
    {
        int outSize = (size + stride - 1) / stride;
        int total = Math.Max((outSize - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
        return (total / 2, total - total / 2);
    }

    /// <summary>Output size of a window op (0 stays 0: unknown).</summary>
    public static int OutSize(int size, int kernel, int stride, int dilation, bool same) =>
        size <= 0 ? 0 : same ? (size + stride - 1) / stride : (size - ((kernel - 1) * dilation + 1)) / stride + 1;
}

/// <summary>Conv2D / DepthwiseConv2D (groups = in): <c>weight</c> [out, in/groups, kH, kW], <c>bias</c> [out]; TF padding.</summary>
internal sealed class KerasConv2D : Module<Tensor, Tensor>
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Dilation { get; }
    public bool Same { get; }
    public int Groups { get; }
    public KerasActivation Activation { get; set; }

    public KerasConv2D(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W) stride, (int H, int W) dilation,
        bool same, int groups, bool bias, KerasActivation activation)
    {
        Weight = RegisterParameter("weight", Init.Parameter(outChannels, inChannels / groups, kernel.H, kernel.W));
        if (bias) Bias = RegisterParameter("bias", Init.Parameter(outChannels));
        (Stride, Dilation, Same, Groups, Activation) = (stride, dilation, same, groups, activation);
    }

    public override Tensor Forward(Tensor input)
    {
        (int H, int W) pad = (0, 0);
        if (Same && input.Rank == 4)
        {
            var (t, b) = TfPadding.Same(input.Dim(2), Weight.Dim(2), Stride.H, Dilation.H);
            var (l, r) = TfPadding.Same(input.Dim(3), Weight.Dim(3), Stride.W, Dilation.W);
            if (t == b && l == r) pad = (t, l);
            else input = input.Pad2d(t, b, l, r);   // TF puts the odd row/column at the bottom/right
        }
        return Activation.Apply(Tensor.Conv2d(input, Weight, Bias, Stride, pad, Dilation, Groups));
    }

    protected override string ExtraRepr() =>
        $"{Weight.Dim(1) * Groups}, {Weight.Dim(0)}, kernel={Weight.Dim(2)}x{Weight.Dim(3)}, stride={Stride}, padding={(Same ? "same" : "valid")}" +
        (Dilation != (1, 1) ? $", dilation={Dilation}" : "") + (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "") +
        (Activation.Kind != KerasActivationKind.Linear ? $", activation={Activation}" : "");
}

/// <summary>SeparableConv2D: a depthwise conv (no bias) then a 1×1 conv with the bias and activation.</summary>
internal sealed class KerasSeparableConv2D : Module<Tensor, Tensor>
{
    public KerasConv2D Depthwise { get; }
    public KerasConv2D Pointwise { get; }

    public KerasSeparableConv2D(KerasConv2D depthwise, KerasConv2D pointwise)
    {
        Depthwise = RegisterModule("depthwise", depthwise);
        Pointwise = RegisterModule("pointwise", pointwise);
    }

    public override Tensor Forward(Tensor input) => Pointwise.Forward(Depthwise.Forward(input));
}

/// <summary>Dense: <c>weight</c> [out, in], <c>bias</c> [out] over the last Keras axis (channels for an image).</summary>
internal sealed class KerasDense : Module<Tensor, Tensor>
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public KerasActivation Activation { get; set; }

    public KerasDense(int inFeatures, int units, bool bias, KerasActivation activation)
    {
        Weight = RegisterParameter("weight", Init.Parameter(units, inFeatures));
        if (bias) Bias = RegisterParameter("bias", Init.Parameter(units));
        Activation = activation;
    }

    public override Tensor Forward(Tensor input) =>
        input.Rank == 4
            ? Activation.Apply(Tensor.Linear(input.Permute(0, 2, 3, 1), Weight, Bias).Permute(0, 3, 1, 2))
            : Activation.Apply(Tensor.Linear(input, Weight, Bias));

    protected override string ExtraRepr() => $"in={Weight.Dim(1)}, out={Weight.Dim(0)}" + (Bias is null ? ", bias=False" : "") +
        (Activation.Kind != KerasActivationKind.Linear ? $", activation={Activation}" : "");
}

internal sealed class KerasActivationLayer(KerasActivation activation) : Module<Tensor, Tensor>
{
    public KerasActivation Activation { get; set; } = activation;
    public override Tensor Forward(Tensor input) => Activation.Apply(input);
    protected override string ExtraRepr() => Activation.ToString();
}

internal sealed class KerasZeroPadding2D(int top, int bottom, int left, int right) : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input) => input.Pad2d(top, bottom, left, right);
    protected override string ExtraRepr() => $"top={top}, bottom={bottom}, left={left}, right={right}";
}

/// <summary>
/// MaxPooling2D / AveragePooling2D with TF padding. "same" average pooling divides by the in-bounds count (as TF);
/// when TF's padding is uneven the input is padded explicitly and the average rescaled by kH·kW / count.
/// </summary>
internal sealed class KerasPool2D(bool max, (int H, int W) kernel, (int H, int W) stride, bool same) : Module<Tensor, Tensor>
{
    private Tensor? _scale;   // [OH, OW] = kH·kW / in-bounds count, for uneven same-padded average pooling
    private (int H, int W) _scaleFor;

    public override Tensor Forward(Tensor input)
    {
        if (!same)
            return max ? input.MaxPool2d(kernel, stride, (0, 0)) : input.AvgPool2d(kernel, stride, (0, 0));
        int h = input.Dim(-2), w = input.Dim(-1);
        var (t, b) = TfPadding.Same(h, kernel.H, stride.H);
        var (l, r) = TfPadding.Same(w, kernel.W, stride.W);
        if (t == b && l == r)
            return max ? input.MaxPool2d(kernel, stride, (t, l)) : input.AvgPool2d(kernel, stride, (t, l), countIncludePad: false);
        if (max) return input.Pad2d(t, b, l, r, float.NegativeInfinity).MaxPool2d(kernel, stride, (0, 0));
        var sum = input.Pad2d(t, b, l, r).AvgPool2d(kernel, stride, (0, 0));
        if (_scale is null || _scaleFor != (h, w)) { _scale = CountScale(h, w, t, l, sum.Dim(-2), sum.Dim(-1)); _scaleFor = (h, w); }
        return sum * _scale;
    }

    private Tensor CountScale(int h, int w, int top, int left, int oh, int ow)
    {
        var s = Tensor.Persistent(oh, ow);
        var span = s.Span;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                int r0 = i * stride.H - top, c0 = j * stride.W - left;
                int rows = Math.Min(r0 + kernel.H, h) - Math.Max(r0, 0), cols = Math.Min(c0 + kernel.W, w) - Math.Max(c0, 0);
                span[i * ow + j] = (float)kernel.H * kernel.W / (rows * cols);
            }
        return s;
    }

    protected override string ExtraRepr() => $"{(max ? "max" : "avg")}, kernel={kernel}, stride={stride}, padding={(same ? "same" : "valid")}";
}

internal sealed class KerasGlobalPool2D(bool max, bool keepDims) : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input)
    {
        if (!max) return input.GlobalAvgPool2d(keepDims);
        var y = input.MaxPool2d((input.Dim(2), input.Dim(3)), (input.Dim(2), input.Dim(3)), (0, 0));
        return keepDims ? y : y.Reshape(input.Dim(0), input.Dim(1));
    }
    protected override string ExtraRepr() => max ? "max" : "avg";
}

/// <summary>Flatten in Keras (NHWC) order: an image [N, C, H, W] is permuted to [N, H, W, C] first.</summary>
internal sealed class KerasFlatten : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input) =>
        (input.Rank == 4 ? input.Permute(0, 2, 3, 1) : input).Reshape(input.Dim(0), -1);
}

/// <summary>Reshape to a Keras target shape (NHWC semantics on both sides).</summary>
internal sealed class KerasReshape(int[] target) : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input)
    {
        var x = input.Rank == 4 ? input.Permute(0, 2, 3, 1) : input;
        var y = x.Reshape([input.Dim(0), .. target]);
        return y.Rank == 4 ? y.Permute(0, 3, 1, 2) : y;
    }
    protected override string ExtraRepr() => $"target=[{string.Join(", ", target)}]";
}

internal enum KerasMergeKind { Add, Subtract, Multiply, Average, Concatenate }

/// <summary>Add / Subtract / Multiply / Average, or Concatenate along an engine axis.</summary>
internal sealed class KerasMerge(KerasMergeKind kind, int axis = 0) : MergeLayer
{
    public override Tensor Forward(IReadOnlyList<Tensor> inputs) => kind switch
    {
        KerasMergeKind.Add => inputs.Aggregate((a, b) => a + b),
        KerasMergeKind.Subtract => inputs.Count == 2 ? inputs[0] - inputs[1] : throw new ArgumentException($"Subtract needs 2 inputs; got {inputs.Count}."),
        KerasMergeKind.Multiply => inputs.Aggregate((a, b) => a * b),
        KerasMergeKind.Average => inputs.Aggregate((a, b) => a + b) * (1f / inputs.Count),
        _ => Tensor.Concat(inputs, axis),
    };
    protected override string ExtraRepr() => kind == KerasMergeKind.Concatenate ? $"concat, axis={axis}" : kind.ToString().ToLowerInvariant();
}

/// <summary>Parses Keras topologies and maps each Keras layer to an engine module.</summary>
internal static class KerasLayers
{
    internal static readonly HashSet<string> Supported = new(StringComparer.Ordinal)
    {
        "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization", "Activation", "ReLU", "Softmax",
        "Add", "Subtract", "Multiply", "Average", "Concatenate", "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D",
        "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Dense", "Dropout", "Reshape",
    };

    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["Convolution2D"] = "Conv2D", ["MaxPool2D"] = "MaxPooling2D", ["AvgPool2D"] = "AveragePooling2D",
        ["GlobalAvgPool2D"] = "GlobalAveragePooling2D", ["GlobalMaxPool2D"] = "GlobalMaxPooling2D", ["SeparableConvolution2D"] = "SeparableConv2D",
    };

    /// <summary>The engine's name for a Keras layer name (module names may not contain '.').</summary>
    public static string ModuleName(string kerasName) => kerasName.Replace('.', '_');

    // ---------------- topology ----------------

    /// <summary>
    /// Reads a Keras topology: <c>{class_name, config}</c> or <c>{model_config: {class_name, config}, ...}</c>, functional
    /// <c>Model</c>/<c>Functional</c> (inbound nodes in the Keras 2 list form or the Keras 3 <c>args</c> form) or
    /// <c>Sequential</c>. Throws <see cref="InvalidDataException"/> for what cannot be a single-input, single-output graph.
    /// </summary>
    public static KerasModelSpec ParseTopology(JsonNode? topology)
    {
        var top = topology as JsonObject ?? throw new InvalidDataException("modelTopology is not an object.");
        var model = top["model_config"] as JsonObject ?? top;
        string cls = Str(model, "class_name") ?? throw new InvalidDataException("modelTopology has no class_name (expected Model, Functional or Sequential).");
        var config = model["config"];
        return cls switch
        {
            "Sequential" => ParseSequential(config),
            "Model" or "Functional" => ParseFunctional(config as JsonObject ?? throw new InvalidDataException("Model config is not an object.")),
            _ => throw new InvalidDataException($"Unsupported model class '{cls}' (expected Model, Functional or Sequential)."),
        };
    }

    private static KerasModelSpec ParseSequential(JsonNode? config)
    {
        var layers = (config is JsonArray a ? a : (config as JsonObject)?["layers"] as JsonArray)
                     ?? throw new InvalidDataException("Sequential config has no layers.");
        var specs = new List<KerasLayerSpec>();
        string inputName = "input";
        int[]? inputShape = null;
        string prev = inputName;
        foreach (var node in layers)
        {
            var l = node as JsonObject ?? throw new InvalidDataException("A Sequential layer is not an object.");
            var (name, cls, cfg) = LayerHeader(l);
            inputShape ??= BatchShape(cfg);
            if (cls == "InputLayer")
            {
                if (specs.Count > 0) throw new InvalidDataException($"InputLayer '{name}' is not the first layer of the Sequential model.");
                prev = inputName = name;
                continue;
            }
            specs.Add(new KerasLayerSpec(name, cls, cfg, [prev]));
            prev = name;
        }
        if (inputShape is null) throw new InvalidDataException("The Sequential model does not declare its input shape (batch_input_shape).");
        if (specs.Count == 0) throw new InvalidDataException("The Sequential model has no layers.");
        return new KerasModelSpec(inputName, inputShape, specs, prev);
    }

    private static KerasModelSpec ParseFunctional(JsonObject config)
    {
        var layers = config["layers"] as JsonArray ?? throw new InvalidDataException("Model config has no layers.");
        var inputs = Endpoints(config["input_layers"], "input_layers");
        var outputs = Endpoints(config["output_layers"], "output_layers");
        if (inputs.Count != 1) throw new InvalidDataException($"Only single-input models are supported; this one has {inputs.Count} inputs ({string.Join(", ", inputs)}).");
        if (outputs.Count != 1) throw new InvalidDataException($"Only single-output models are supported; this one has {outputs.Count} outputs ({string.Join(", ", outputs)}).");
        string inputName = inputs[0];
        int[]? inputShape = null;
        var specs = new List<KerasLayerSpec>();
        foreach (var node in layers)
        {
            var l = node as JsonObject ?? throw new InvalidDataException("A layer is not an object.");
            var (name, cls, cfg) = LayerHeader(l);
            if (name == inputName)
            {
                inputShape = BatchShape(cfg) ?? throw new InvalidDataException($"Input layer '{name}' has no batch_input_shape.");
                continue;
            }
            specs.Add(new KerasLayerSpec(name, cls, cfg, InboundNames(name, l["inbound_nodes"])));
        }
        if (inputShape is null) throw new InvalidDataException($"The input layer '{inputName}' is not among the layers.");
        return new KerasModelSpec(inputName, inputShape, TopologicalOrder(specs, inputName), outputs[0]);
    }

    /// <summary>Layers in an order where each comes after what it reads (the file's order where it already is).</summary>
    private static List<KerasLayerSpec> TopologicalOrder(List<KerasLayerSpec> specs, string inputName)
    {
        var done = new HashSet<string>(StringComparer.Ordinal) { inputName };
        var byName = new Dictionary<string, KerasLayerSpec>(StringComparer.Ordinal);
        foreach (var s in specs)
            if (!byName.TryAdd(s.Name, s)) throw new InvalidDataException($"Two layers are named '{s.Name}'.");
        var order = new List<KerasLayerSpec>();
        var pending = new List<KerasLayerSpec>(specs);
        while (pending.Count > 0)
        {
            int before = order.Count;
            foreach (var s in pending.ToArray())
                if (s.Inputs.All(done.Contains)) { order.Add(s); done.Add(s.Name); pending.Remove(s); }
            if (order.Count == before)
            {
                var s = pending[0];
                var missing = s.Inputs.Where(i => !done.Contains(i)).ToArray();
                throw new InvalidDataException(missing.Any(m => !byName.ContainsKey(m))
                    ? $"Layer '{s.Name}' reads '{missing.First(m => !byName.ContainsKey(m))}', which is not a layer of the model."
                    : $"The layers {string.Join(", ", pending.Select(p => $"'{p.Name}'"))} form a cycle.");
            }
        }
        return order;
    }

    private static (string Name, string Class, JsonObject Config) LayerHeader(JsonObject l)
    {
        var cfg = l["config"] as JsonObject ?? new JsonObject();
        string name = Str(l, "name") ?? Str(cfg, "name") ?? throw new InvalidDataException("A layer has no name.");
        string cls = Str(l, "class_name") ?? throw new InvalidDataException($"Layer '{name}' has no class_name.");
        return (name, Aliases.GetValueOrDefault(cls, cls), cfg);
    }

    /// <summary>[H, W, C] (or the Keras shape without batch) from batch_input_shape / batch_shape; null sizes become 0.</summary>
    private static int[]? BatchShape(JsonObject cfg)
    {
        var s = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as JsonArray;
        if (s is null) return null;
        return s.Skip(1).Select(v => v is null ? 0 : ToInt(v, "batch_input_shape")).ToArray();
    }

    private static List<string> Endpoints(JsonNode? node, string what)
    {
        if (node is not JsonArray a || a.Count == 0) throw new InvalidDataException($"Model config has no {what}.");
        if (a[0] is JsonValue) return [Str(a, 0, what)];   // Keras 3 single endpoint: ["name", 0, 0]
        return a.Select(e => e is JsonArray ea ? Str(ea, 0, what) : throw new InvalidDataException($"Malformed {what}.")).ToList();
    }

    /// <summary>The layers a layer reads: Keras 2 <c>[[[name, node, tensor, {}], …]]</c> or Keras 3 <c>[{args: [keras tensors]}]</c>.</summary>
    private static string[] InboundNames(string layer, JsonNode? inbound)
    {
        if (inbound is not JsonArray nodes || nodes.Count == 0) throw new InvalidDataException($"Layer '{layer}' has no inbound nodes.");
        if (nodes.Count > 1) throw new InvalidDataException($"Layer '{layer}' is called {nodes.Count} times (shared layers are not supported).");
        var names = new List<string>();
        if (nodes[0] is JsonArray calls)
        {
            foreach (var call in calls)
            {
                if (call is not JsonArray c || c.Count < 3) throw new InvalidDataException($"Layer '{layer}': malformed inbound node.");
                CheckHistory(layer, c);
                names.Add(Str(c, 0, "inbound node"));
            }
        }
        else if (nodes[0] is JsonObject k3)
            CollectHistory(layer, k3["args"], names);
        if (names.Count == 0) throw new InvalidDataException($"Layer '{layer}' has no inputs.");
        return names.ToArray();
    }

    private static void CollectHistory(string layer, JsonNode? node, List<string> names)
    {
        switch (node)
        {
            case JsonArray a: foreach (var e in a) CollectHistory(layer, e, names); break;
            case JsonObject o:
                if (o["config"] is JsonObject cfg && cfg["keras_history"] is JsonArray h)
                {
                    CheckHistory(layer, h);
                    names.Add(Str(h, 0, "keras_history"));
                }
                break;
        }
    }

    private static void CheckHistory(string layer, JsonArray c)
    {
        if (ToInt(c[1], "node index") != 0 || ToInt(c[2], "tensor index") != 0)
            throw new InvalidDataException($"Layer '{layer}' reads output {c[2]} of call {c[1]} of '{c[0]}' (only single-output, single-call layers are supported).");
    }

    // ---------------- support check ----------------

    /// <summary>Why <paramref name="spec"/> cannot be imported, or null if it can (checked for every layer before any weight is read).</summary>
    public static string? Unsupported(KerasLayerSpec spec)
    {
        var c = spec.Config;
        if (!Supported.Contains(spec.ClassName)) return "layer class not supported";
        if (Str(c, "data_format") is { } df && df != "channels_last") return $"data_format '{df}' (only channels_last)";
        if (Str(c, "activation") is { } act && KerasActivation.TryParse(act) is null) return $"activation '{act}' not supported";
        if (c["activation"] is JsonObject) return "activation given as an object (only names)";
        switch (spec.ClassName)
        {
            case "ReLU":
                if (Num(c, "negative_slope", 0) != 0) return "ReLU with negative_slope (LeakyReLU) not supported";
                if (Num(c, "threshold", 0) != 0) return "ReLU with a threshold not supported";
                if (c["max_value"] is not null && Num(c, "max_value", 0) <= 0) return "ReLU max_value must be positive";
                break;
            case "BatchNormalization":
                var axis = c["axis"] is JsonArray aa ? (aa.Count == 1 ? aa[0] : null) : c["axis"];
                if (axis is null || ToInt(axis, "axis") is not (-1 or 3 or 1)) return $"BatchNormalization over axis {c["axis"]?.ToJsonString()} (only the channel axis)";
                break;
            case "Conv2D" or "DepthwiseConv2D" or "SeparableConv2D":
                if (Str(c, "padding") is not ("same" or "valid")) return $"padding '{c["padding"]}' (only same/valid)";
                if (spec.ClassName == "Conv2D" && c["groups"] is not null && ToInt(c["groups"]!, "groups") != 1) return "grouped Conv2D not supported";
                break;
            case "MaxPooling2D" or "AveragePooling2D":
                if (Str(c, "padding") is not ("same" or "valid")) return $"padding '{c["padding"]}' (only same/valid)";
                break;
            case "Softmax":
                if (c["axis"] is not null && ToInt(c["axis"]!, "axis") != -1) return "Softmax over an axis other than -1";
                break;
        }
        if (spec.Inputs.Count > 1 && spec.ClassName is not ("Add" or "Subtract" or "Multiply" or "Average" or "Concatenate"))
            return $"{spec.Inputs.Count} inputs to a single-input layer";
        return null;
    }

    // ---------------- building ----------------

    /// <summary>
    /// The engine module for <paramref name="spec"/> given its inputs' Keras shapes (no batch), its output shape and the
    /// weights it needs. Throws <see cref="InvalidDataException"/> naming the layer when the shapes do not fit.
    /// </summary>
    public static KerasBuiltLayer Build(KerasLayerSpec spec, IReadOnlyList<int[]> inputShapes)
    {
        try { return BuildCore(spec, inputShapes); }
        catch (InvalidDataException e) { throw new InvalidDataException($"Layer '{spec.Name}' ({spec.ClassName}) on input {string.Join(", ", inputShapes.Select(Fmt))}: {e.Message}", e); }
    }

    private static KerasBuiltLayer BuildCore(KerasLayerSpec spec, IReadOnlyList<int[]> inputShapes)
    {
        var c = spec.Config;
        var x = inputShapes[0];
        string n = spec.Name;
        var weights = new List<KerasWeight>();
        var act = KerasActivation.TryParse(Str(c, "activation")) ?? KerasActivation.Linear;
        switch (spec.ClassName)
        {
            case "Conv2D" or "DepthwiseConv2D" or "SeparableConv2D":
            {
                Image(x);
                int cin = x[2] > 0 ? x[2] : throw new InvalidDataException("the number of input channels is unknown.");
                var k = Pair(c, "kernel_size");
                var s = Pair(c, "strides", 1);
                var d = Pair(c, "dilation_rate", 1);
                bool same = Str(c, "padding") == "same";
                bool bias = Bool(c, "use_bias", true);
                int oh = TfPadding.OutSize(x[0], k.H, s.H, d.H, same), ow = TfPadding.OutSize(x[1], k.W, s.W, d.W, same);
                if (x[0] > 0 && oh <= 0 || x[1] > 0 && ow <= 0) throw new InvalidDataException($"the input is smaller than the kernel {k.H}x{k.W}.");
                if (spec.ClassName == "Conv2D")
                {
                    int filters = Int(c, "filters");
                    var conv = new KerasConv2D(cin, filters, k, s, d, same, 1, bias, act);
                    weights.Add(new(n, "kernel", [k.H, k.W, cin, filters], v => KernelToOihw(v, conv.Weight.Span, k.H, k.W, cin, filters)));
                    if (bias) weights.Add(new(n, "bias", [filters], v => v.CopyTo(conv.Bias!.Span)));
                    return new(conv, [oh, ow, filters], weights);
                }
                int mult = c["depth_multiplier"] is null ? 1 : Int(c, "depth_multiplier");
                bool separable = spec.ClassName == "SeparableConv2D";
                var dw = new KerasConv2D(cin, cin * mult, k, s, d, same, cin, bias && !separable, separable ? KerasActivation.Linear : act);
                weights.Add(new(n, "depthwise_kernel", [k.H, k.W, cin, mult], v => DepthwiseToOihw(v, dw.Weight.Span, k.H, k.W, cin, mult)));
                if (!separable)
                {
                    if (bias) weights.Add(new(n, "bias", [cin * mult], v => v.CopyTo(dw.Bias!.Span)));
                    return new(dw, [oh, ow, cin * mult], weights);
                }
                int outC = Int(c, "filters");
                var pw = new KerasConv2D(cin * mult, outC, (1, 1), (1, 1), (1, 1), false, 1, bias, act);
                weights.Add(new(n, "pointwise_kernel", [1, 1, cin * mult, outC], v => KernelToOihw(v, pw.Weight.Span, 1, 1, cin * mult, outC)));
                if (bias) weights.Add(new(n, "bias", [outC], v => v.CopyTo(pw.Bias!.Span)));
                return new(new KerasSeparableConv2D(dw, pw), [oh, ow, outC], weights);
            }
            case "BatchNormalization":
            {
                if (x.Length is not (1 or 3)) throw new InvalidDataException("BatchNormalization needs an image [H, W, C] or features [C].");
                int axis = ToInt(c["axis"] is JsonArray aa ? aa[0]! : c["axis"]!, "axis");
                if (axis != -1 && axis != x.Length) throw new InvalidDataException($"BatchNormalization over axis {axis}: only the channel axis (-1) is supported.");
                int ch = x[^1] > 0 ? x[^1] : throw new InvalidDataException("the number of channels is unknown.");
                float eps = (float)Num(c, "epsilon", 1e-3);
                // Keras: moving = m·moving + (1 − m)·batch; ours (PyTorch convention): running = (1 − momentum)·running + momentum·batch
                float momentum = 1 - (float)Num(c, "momentum", 0.99);
                var bn = new BatchNorm2d(ch, eps, momentum);
                if (Bool(c, "scale", true)) weights.Add(new(n, "gamma", [ch], v => v.CopyTo(bn.Weight.Span)));
                else bn.Weight.RequiresGrad = false;   // Keras has no gamma here: keep it at 1
                if (Bool(c, "center", true)) weights.Add(new(n, "beta", [ch], v => v.CopyTo(bn.Bias.Span)));
                else bn.Bias.RequiresGrad = false;     // no beta: keep it at 0
                weights.Add(new(n, "moving_mean", [ch], v => v.CopyTo(bn.RunningMean.Span)));
                weights.Add(new(n, "moving_variance", [ch], v => v.CopyTo(bn.RunningVar.Span)));
                return new(bn, x, weights);
            }
            case "Dense":
            {
                int inF = x.Length > 0 && x[^1] > 0 ? x[^1] : throw new InvalidDataException("the number of input features is unknown.");
                int units = Int(c, "units");
                bool bias = Bool(c, "use_bias", true);
                var dense = new KerasDense(inF, units, bias, act);
                weights.Add(new(n, "kernel", [inF, units], v => Transpose(v, dense.Weight.Span, inF, units)));
                if (bias) weights.Add(new(n, "bias", [units], v => v.CopyTo(dense.Bias!.Span)));
                return new(dense, [.. x[..^1], units], weights);
            }
            case "Activation":
                return new(new KerasActivationLayer(act), x, weights);
            case "Softmax":
                return new(new KerasActivationLayer(new(KerasActivationKind.Softmax)), x, weights);
            case "ReLU":
                return new(new KerasActivationLayer(c["max_value"] is null ? new(KerasActivationKind.Relu) : new(KerasActivationKind.ReluMax, (float)Num(c, "max_value", 0))), x, weights);
            case "Dropout":
            {
                float rate = (float)Num(c, "rate", 0);
                if (rate is < 0 or >= 1) throw new InvalidDataException($"dropout rate {rate} is not in [0, 1).");
                return new(new Dropout(rate, new Rng(Seed(n))), x, weights);
            }
            case "ZeroPadding2D":
            {
                Image(x);
                var (t, b, l, r) = Padding2(c["padding"]);
                return new(new KerasZeroPadding2D(t, b, l, r), [Grow(x[0], t + b), Grow(x[1], l + r), x[2]], weights);
            }
            case "MaxPooling2D" or "AveragePooling2D":
            {
                Image(x);
                var k = Pair(c, "pool_size", 2);
                var s = c["strides"] is null ? k : Pair(c, "strides");
                bool same = Str(c, "padding") == "same";
                int oh = TfPadding.OutSize(x[0], k.H, s.H, 1, same), ow = TfPadding.OutSize(x[1], k.W, s.W, 1, same);
                if (x[0] > 0 && oh <= 0 || x[1] > 0 && ow <= 0) throw new InvalidDataException($"the input is smaller than the pool {k.H}x{k.W}.");
                return new(new KerasPool2D(spec.ClassName == "MaxPooling2D", k, s, same), [oh, ow, x[2]], weights);
            }
            case "GlobalAveragePooling2D" or "GlobalMaxPooling2D":
            {
                Image(x);
                bool keep = Bool(c, "keepdims", false);
                return new(new KerasGlobalPool2D(spec.ClassName == "GlobalMaxPooling2D", keep), keep ? [1, 1, x[2]] : [x[2]], weights);
            }
            case "Flatten":
                return new(new KerasFlatten(), [x.Any(v => v <= 0) ? 0 : x.Aggregate(1, (a, b) => a * b)], weights);
            case "Reshape":
            {
                var target = (c["target_shape"] as JsonArray ?? throw new InvalidDataException("Reshape has no target_shape.")).Select(v => ToInt(v!, "target_shape")).ToArray();
                int known = x.Any(v => v <= 0) ? 0 : x.Aggregate(1, (a, b) => a * b);
                int free = target.Count(v => v == -1);
                if (free > 1 || target.Any(v => v == 0 || v < -1)) throw new InvalidDataException($"bad Reshape target [{string.Join(", ", target)}].");
                int fixedSize = target.Where(v => v > 0).Aggregate(1, (a, b) => a * b);
                if (known > 0 && (free == 0 ? fixedSize != known : known % fixedSize != 0))
                    throw new InvalidDataException($"cannot reshape {known} values to [{string.Join(", ", target)}].");
                var outShape = target.Select(v => v == -1 ? (known > 0 ? known / fixedSize : 0) : v).ToArray();
                return new(new KerasReshape(target), outShape, weights);
            }
            case "Add" or "Subtract" or "Multiply" or "Average":
            {
                foreach (var other in inputShapes)
                    if (!Compatible(other, x)) throw new InvalidDataException($"inputs of different shapes {string.Join(", ", inputShapes.Select(Fmt))}.");
                var kind = Enum.Parse<KerasMergeKind>(spec.ClassName);
                return new(new KerasMerge(kind), x.Select((v, i) => inputShapes.Max(s => s[i])).ToArray(), weights);
            }
            case "Concatenate":
            {
                int rank = x.Length + 1;   // with the batch axis
                int axis = c["axis"] is null ? -1 : ToInt(c["axis"]!, "axis");
                if (axis < 0) axis += rank;
                if (axis <= 0 || axis >= rank) throw new InvalidDataException($"Concatenate axis {c["axis"]} is out of range for rank {rank}.");
                foreach (var other in inputShapes)
                    if (other.Length != x.Length || other.Where((v, i) => i != axis - 1 && !Compatible([v], [x[i]])).Any())
                        throw new InvalidDataException($"inputs {string.Join(", ", inputShapes.Select(Fmt))} differ off the concatenation axis {axis}.");
                var outShape = (int[])x.Clone();
                outShape[axis - 1] = inputShapes.Any(s => s[axis - 1] <= 0) ? 0 : inputShapes.Sum(s => s[axis - 1]);
                int engineAxis = rank == 4 ? axis switch { 1 => 2, 2 => 3, _ => 1 } : axis;   // NHWC → NCHW
                return new(new KerasMerge(KerasMergeKind.Concatenate, engineAxis), outShape, weights);
            }
            default:
                throw new InvalidDataException("layer class not supported.");
        }
    }

    /// <summary>Keras shape (no batch) → engine shape (no batch): an image [H, W, C] becomes [C, H, W].</summary>
    public static int[] EngineShape(int[] keras) => keras.Length == 3 ? [keras[2], keras[0], keras[1]] : (int[])keras.Clone();

    // ---------------- weight layouts ----------------

    /// <summary>Conv2D kernel [kH, kW, in, out] (HWIO) → [out, in, kH, kW] (OIHW).</summary>
    internal static void KernelToOihw(ReadOnlySpan<float> src, Span<float> dst, int kh, int kw, int cin, int cout)
    {
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < cin; i++)
                {
                    var row = src.Slice(((y * kw + x) * cin + i) * cout, cout);
                    for (int o = 0; o < cout; o++) dst[((o * cin + i) * kh + y) * kw + x] = row[o];
                }
    }

    /// <summary>DepthwiseConv2D kernel [kH, kW, in, mult] → [in·mult, 1, kH, kW]; output channel c·mult + m (as TF).</summary>
    internal static void DepthwiseToOihw(ReadOnlySpan<float> src, Span<float> dst, int kh, int kw, int cin, int mult)
    {
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < cin; i++)
                    for (int m = 0; m < mult; m++)
                        dst[((i * mult + m) * kh + y) * kw + x] = src[((y * kw + x) * cin + i) * mult + m];
    }

    /// <summary>Dense kernel [in, out] → [out, in].</summary>
    internal static void Transpose(ReadOnlySpan<float> src, Span<float> dst, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    }

    // ---------------- config helpers ----------------

    private static void Image(int[] x)
    {
        if (x.Length != 3) throw new InvalidDataException($"needs an image input [H, W, C]; got {Fmt(x)}.");
    }

    private static int Grow(int size, int by) => size <= 0 ? 0 : size + by;

    private static bool Compatible(int[] a, int[] b) => a.Length == b.Length && a.Zip(b).All(p => p.First <= 0 || p.Second <= 0 || p.First == p.Second);

    private static ulong Seed(string name)
    {
        ulong h = 14695981039346656037;
        foreach (char ch in name) h = (h ^ ch) * 1099511628211;
        return h;
    }

    private static (int Top, int Bottom, int Left, int Right) Padding2(JsonNode? p)
    {
        switch (p)
        {
            case null: return (1, 1, 1, 1);
            case JsonValue v: { int a = ToInt(v, "padding"); return (a, a, a, a); }
            case JsonArray { Count: 2 } a when a[0] is JsonValue && a[1] is JsonValue:
            { int h = ToInt(a[0]!, "padding"), w = ToInt(a[1]!, "padding"); return (h, h, w, w); }
            case JsonArray { Count: 2 } a when a[0] is JsonArray { Count: 2 } h && a[1] is JsonArray { Count: 2 } w:
                return (ToInt(h[0]!, "padding"), ToInt(h[1]!, "padding"), ToInt(w[0]!, "padding"), ToInt(w[1]!, "padding"));
            default: throw new InvalidDataException($"malformed ZeroPadding2D padding {p.ToJsonString()}.");
        }
    }

    private static (int H, int W) Pair(JsonObject c, string key, int? fallback = null)
    {
        var v = c[key];
        if (v is null) return fallback is int f ? (f, f) : throw new InvalidDataException($"config has no {key}.");
        if (v is JsonArray { Count: 2 } a) return (Positive(a[0], key), Positive(a[1], key));
        if (v is JsonArray { Count: 1 } one) return (Positive(one[0], key), Positive(one[0], key));
        int s = Positive(v, key);
        return (s, s);
    }

    private static int Positive(JsonNode? v, string key)
    {
        int i = v is null ? 0 : ToInt(v, key);
        return i > 0 ? i : throw new InvalidDataException($"{key} must be positive; got {v?.ToJsonString() ?? "null"}.");
    }

    private static int Int(JsonObject c, string key) => Positive(c[key] ?? throw new InvalidDataException($"config has no {key}."), key);

    internal static int ToInt(JsonNode? v, string what)
    {
        if (v is null) throw new InvalidDataException($"{what}: null is not a number.");
        double d = v is JsonValue jv && jv.TryGetValue(out double x) ? x : throw new InvalidDataException($"{what}: {v.ToJsonString()} is not a number.");
        if (d != Math.Floor(d) || Math.Abs(d) > int.MaxValue) throw new InvalidDataException($"{what}: {d.ToString(CultureInfo.InvariantCulture)} is not an integer.");
        return (int)d;
    }

    private static double Num(JsonObject c, string key, double fallback) =>
        c[key] is null ? fallback : c[key] is JsonValue v && v.TryGetValue(out double d) ? d : throw new InvalidDataException($"{key}: {c[key]!.ToJsonString()} is not a number.");

    private static bool Bool(JsonObject c, string key, bool fallback) =>
        c[key] is null ? fallback : c[key] is JsonValue v && v.TryGetValue(out bool b) ? b : throw new InvalidDataException($"{key}: {c[key]!.ToJsonString()} is not true/false.");

    private static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static string Str(JsonArray a, int i, string what) =>
        a.Count > i && a[i] is JsonValue v && v.TryGetValue(out string? s) ? s : throw new InvalidDataException($"Malformed {what}: {a.ToJsonString()}.");

    internal static string Fmt(int[] s) => "[" + string.Join(", ", s.Select(v => v <= 0 ? "?" : v.ToString(CultureInfo.InvariantCulture))) + "]";
}
