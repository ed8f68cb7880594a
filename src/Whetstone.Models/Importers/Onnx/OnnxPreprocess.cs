using Google.Protobuf;

namespace Whetstone.Models.Importers.Onnx;

/// <summary>
/// An image preprocessing graph read as numbers: model channel c reads input channel <see cref="ChannelOrder"/>[c]
/// and becomes <c>(pixel − MeanImage[c, y, x]) · Scale[c] + Offset[c]</c>. Axis letters: C channels (3), H, W the
/// image size the graph is written for.
/// </summary>
/// <param name="Source">The file it came from (for messages and bundles).</param>
/// <param name="ChannelOrder">Input channel of each model channel: [0, 1, 2] keeps RGB, [2, 1, 0] makes BGR.</param>
/// <param name="MeanImage">(C, H, W) per-pixel values subtracted, in input-pixel units; null when the graph subtracts
/// per-channel constants only (folded into <see cref="Offset"/>).</param>
/// <param name="Height">H of the graph's input (and of <see cref="MeanImage"/>); 0 when the graph does not fix it.</param>
/// <param name="Width">W of the graph's input; 0 when not fixed.</param>
/// <param name="Scale">Per-channel factor (non-zero).</param>
/// <param name="Offset">Per-channel addend.</param>
/// <param name="Steps">What each node did, one line per node (for a dry-run and the bundle).</param>
public sealed record OnnxPreprocessing(string Source, int[] ChannelOrder, float[]? MeanImage, int Height, int Width,
    float[] Scale, float[] Offset, IReadOnlyList<string> Steps);

/// <summary>
/// Reads an ONNX image preprocessing graph (ML.NET's <c>ResNetPreprocess.onnx</c> and its kind: RGB pixels in
/// [N, 3, H, W] → Split into channels → Concat in another order → Sub of a mean image, optionally Mul/Div/Add by
/// constants) into an <see cref="OnnxPreprocessing"/>. Every node is interpreted exactly — a channel reorder along
/// axis 1, or an affine map per channel whose constants broadcast over H and W — and anything else is refused with
/// an <see cref="OnnxImportException"/> naming the node.
/// </summary>
public static class OnnxPreprocess
{
    /// <summary>Operators a preprocessing graph may use.</summary>
    public static readonly IReadOnlySet<string> Ops = new HashSet<string>(StringComparer.Ordinal)
    {
        "Split", "Concat", "Sub", "Add", "Mul", "Div", "Identity", "Cast", "Constant",
    };

    /// <summary>
    /// Whether <paramref name="path"/> looks like a preprocessing graph: one input, one output, and every node one of
    /// <see cref="Ops"/> (no convolution, matrix product or pooling). Unreadable files are not.
    /// </summary>
    public static bool IsPreprocessingGraph(string path)
    {
        try
        {
            var model = OnnxProtoReader.ReadModel(File.ReadAllBytes(path));
            return model.Graph is { Nodes.Count: > 0 } g && g.Outputs.Count == 1
                && g.Inputs.Count(i => g.Initializers.All(t => t.Name != i.Name)) == 1
                && g.Nodes.All(n => n.Domain is "" or "ai.onnx" && Ops.Contains(n.OpType));
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or IndexOutOfRangeException or ArgumentException or IOException) { return false; }
    }

    /// <summary>Imports the preprocessing graph at <paramref name="path"/>.</summary>
    public static OnnxPreprocessing Import(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file '{path}' does not exist.", path);
        OnnxModelProto model;
        try { model = OnnxProtoReader.ReadModel(File.ReadAllBytes(path)); }
        catch (Exception e) when (e is InvalidProtocolBufferException or IndexOutOfRangeException or ArgumentException)
        {
            throw new OnnxImportException($"'{path}' is not a readable ONNX file: {e.Message}", inner: e);
        }
        return new Reader(model, path).Run();
    }

    /// <summary>One channel of a value flowing through the graph: (input[Source] − Mean) · Scale + Offset, Mean a plane or null.</summary>
    private sealed record Channel(int Source, float[]? Mean, float Scale, float Offset);

    private sealed class Reader(OnnxModelProto model, string source)
    {
        private readonly Dictionary<string, Channel[]> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, OnnxConstValue> _consts = new(StringComparer.Ordinal);
        private readonly List<string> _steps = [];
        private int _h, _w;

        private OnnxImportException Fail(string message) => new($"Cannot use '{source}' as image preprocessing: {message}");

        private OnnxImportException Node(OnnxNodeProto n, string why) => Fail($"node '{NameOf(n)}' ({n.OpType}): {why}.");

        /// <summary>The node's name, or (ML.NET's graphs leave names empty) its first output's.</summary>
        private static string NameOf(OnnxNodeProto n) => n.Name.Length > 0 ? n.Name : n.Outputs.FirstOrDefault() ?? "";

        public OnnxPreprocessing Run()
        {
            var g = model.Graph ?? throw Fail("the file has no graph.");
            foreach (var t in g.Initializers)
            {
                try { _consts[t.Name] = OnnxOps.ToConst(t); }
                catch (Exception e) when (e is FormatException or OverflowException) { throw Fail($"initializer '{t.Name}': {e.Message}"); }
            }
            var inputs = g.Inputs.Where(i => !_consts.ContainsKey(i.Name)).ToArray();
            if (inputs.Length != 1) throw Fail($"it has {inputs.Length} inputs; a preprocessing graph takes one image tensor [N, 3, H, W].");
            if (g.Outputs.Count != 1) throw Fail($"it has {g.Outputs.Count} outputs; a preprocessing graph gives one image tensor.");
            var input = inputs[0];
            if (input.Shape is not { Count: 4 } shape || shape[1].Value is not 3)
                throw Fail($"input '{input.Name}' must be [N, 3, H, W] (RGB pixels, channels first).");
            _h = shape[2].Value is > 0 ? (int)shape[2].Value!.Value : 0;
            _w = shape[3].Value is > 0 ? (int)shape[3].Value!.Value : 0;
            _values[input.Name] = [new(0, null, 1, 0), new(1, null, 1, 0), new(2, null, 1, 0)];

            foreach (var n in g.Nodes) Apply(n);

            var outName = g.Outputs[0].Name;
            if (!_values.TryGetValue(outName, out var result)) throw Fail($"the output '{outName}' is not computed from the input.");
            if (result.Length != 3) throw Fail($"the output '{outName}' has {result.Length} channels; the model input needs 3.");
            var order = result.Select(c => c.Source).ToArray();
            if (order.Distinct().Count() != 3) throw Fail($"the output's channels come from input channels [{string.Join(", ", order)}]; a channel order is a permutation of the three.");

            // A mean plane that is one value throughout is a per-channel constant: fold it into the offset.
            float[]? mean = null;
            var offset = new float[3];
            var scale = new float[3];
            int plane = result.Select(c => c.Mean?.Length ?? 0).Max();
            for (int c = 0; c < 3; c++)
            {
                var ch = result[c];
                scale[c] = ch.Scale;
                offset[c] = ch.Offset;
                if (ch.Mean is null) continue;
                if (ch.Mean.All(v => v == ch.Mean[0])) { offset[c] -= ch.Mean[0] * ch.Scale; continue; }
                mean ??= new float[3 * plane];
                ch.Mean.CopyTo(mean, c * plane);
            }
            return new OnnxPreprocessing(source, order, mean, _h, _w, scale, offset, _steps);
        }

        private Channel[] Runtime(OnnxNodeProto n, int i) =>
            i < n.Inputs.Count && _values.TryGetValue(n.Inputs[i], out var v) ? v
            : throw Node(n, i < n.Inputs.Count ? $"input '{n.Inputs[i]}' is not computed from the image" : $"input {i} is missing");

        private OnnxConstValue? Constant(OnnxNodeProto n, int i) => i < n.Inputs.Count ? _consts.GetValueOrDefault(n.Inputs[i]) : null;

        private void Set(OnnxNodeProto n, Channel[] value, string step)
        {
            if (n.Outputs.Count(o => o.Length > 0) != 1) throw Node(n, "it must have exactly one output");
            _values[n.Outputs[0]] = value;
            _steps.Add($"{n.OpType} '{NameOf(n)}': {step}");
        }

        private void Apply(OnnxNodeProto n)
        {
            if (n.Domain is not ("" or "ai.onnx") || !Ops.Contains(n.OpType))
                throw Node(n, $"{(n.Domain.Length > 0 ? $"domain '{n.Domain}' " : "")}operator {n.OpType} has no preprocessing meaning here (a preprocessing graph may use {string.Join(", ", Ops)})");
            switch (n.OpType)
            {
                case "Constant":
                {
                    var t = n.Attribute("value")?.T ?? throw Node(n, "only a 'value' tensor attribute is supported");
                    _consts[n.Outputs[0]] = OnnxOps.ToConst(t);
                    return;
                }
                case "Identity": Set(n, Runtime(n, 0), "identity"); return;
                case "Cast":
                {
                    var to = (OnnxDataType)(n.Attribute("to")?.I ?? 0);
                    if (to is not (OnnxDataType.Float or OnnxDataType.Double)) throw Node(n, $"a cast to {to} would round the pixels, which is not expressible");
                    Set(n, Runtime(n, 0), $"cast to {to} (no change)");
                    return;
                }
                case "Split": Split(n); return;
                case "Concat":
                {
                    long axis = n.Attribute("axis")?.I ?? 0;
                    if (axis is not (1 or -3)) throw Node(n, $"concatenation along axis {axis}; only the channel axis (1) is a channel reorder");
                    var parts = n.Inputs.Select((_, i) => Runtime(n, i)).ToArray();
                    var all = parts.SelectMany(p => p).ToArray();
                    Set(n, all, $"channels from input channels [{string.Join(", ", all.Select(c => c.Source))}]");
                    return;
                }
                default: Arithmetic(n); return;
            }
        }

        private void Split(OnnxNodeProto n)
        {
            var x = Runtime(n, 0);
            long axis = n.Attribute("axis")?.I ?? 0;
            if (axis is not (1 or -3)) throw Node(n, $"a split along axis {axis}; only the channel axis (1) can be reordered");
            var outs = n.Outputs.ToArray();
            long[] sizes = n.Attribute("split") is { } a ? a.Ints.ToArray()
                : Constant(n, 1) is { } s ? s.AsLongs()
                : x.Length % outs.Length == 0 ? Enumerable.Repeat((long)(x.Length / outs.Length), outs.Length).ToArray()
                : throw Node(n, $"{x.Length} channels do not split evenly into {outs.Length} outputs");
            if (sizes.Length != outs.Length || sizes.Sum() != x.Length || sizes.Any(v => v < 0))
                throw Node(n, $"split sizes [{string.Join(", ", sizes)}] do not cover the {x.Length} channels with {outs.Length} outputs");
            int at = 0;
            for (int i = 0; i < outs.Length; i++)
            {
                if (outs[i].Length > 0) _values[outs[i]] = x[at..(at + (int)sizes[i])];
                at += (int)sizes[i];
            }
            _steps.Add($"Split '{NameOf(n)}': channels into [{string.Join(", ", sizes)}]");
        }

        /// <summary>Add/Sub/Mul/Div of the image value and a constant that broadcasts over [N, C, H, W].</summary>
        private void Arithmetic(OnnxNodeProto n)
        {
            if (n.Inputs.Count != 2) throw Node(n, "it needs two inputs");
            if (n.Attribute("broadcast") is not null || n.Attribute("axis") is not null) throw Node(n, "legacy broadcast/axis attributes (opset < 7) are not supported");
            bool leftRuntime = _values.ContainsKey(n.Inputs[0]), rightRuntime = _values.ContainsKey(n.Inputs[1]);
            if (leftRuntime == rightRuntime) throw Node(n, leftRuntime ? "both operands are computed from the image (only a constant operand is an affine step)" : "neither operand is computed from the image");
            var x = leftRuntime ? Runtime(n, 0) : Runtime(n, 1);
            var k = Constant(n, leftRuntime ? 1 : 0) ?? throw Node(n, $"operand '{n.Inputs[leftRuntime ? 1 : 0]}' is neither a constant nor computed from the image");
            string op = n.OpType;
            if (!leftRuntime && op is "Sub" or "Div") throw Node(n, $"the image is the right operand of {op} (constant {op.ToLowerInvariant()} image), which would flip or invert the pixels");
            var planes = Planes(n, k, x.Length);
            bool perPixel = planes.Any(p => p.Length > 1);
            if (op is "Mul" or "Div" && perPixel) throw Node(n, $"{(op == "Mul" ? "multiplying" : "dividing")} by a per-pixel constant is not a per-channel scale");
            var y = new Channel[x.Length];
            for (int c = 0; c < x.Length; c++)
            {
                var ch = x[c];
                var p = planes[c];
                switch (op)
                {
                    case "Mul" or "Div":
                    {
                        float s = op == "Mul" ? p[0] : 1 / p[0];
                        if (!(s != 0) || !float.IsFinite(s)) throw Node(n, $"{op} by {p[0]} (a scale must be finite and non-zero)");
                        y[c] = ch with { Scale = ch.Scale * s, Offset = ch.Offset * s };
                        break;
                    }
                    default:
                    {
                        float sign = op == "Add" ? 1 : -1;
                        if (p.Length == 1) { y[c] = ch with { Offset = ch.Offset + sign * p[0] }; break; }
                        // (x − M)·a + b ± P = (x − (M ∓ P/a))·a + b
                        var mean = ch.Mean is null ? new float[p.Length] : (float[])ch.Mean.Clone();
                        for (int i = 0; i < mean.Length; i++) mean[i] -= sign * p[i] / ch.Scale;
                        y[c] = ch with { Mean = mean };
                        break;
                    }
                }
            }
            Set(n, y, $"{op.ToLowerInvariant()} {(perPixel ? $"a per-pixel image [{x.Length}, {_h}, {_w}]" : planes.All(q => q[0] == planes[0][0]) ? $"{planes[0][0]}" : $"per-channel [{string.Join(", ", planes.Select(q => q[0]))}]")}");
        }

        /// <summary>The constant's value for each of <paramref name="channels"/> channels: one number, or an H·W plane.</summary>
        private float[][] Planes(OnnxNodeProto n, OnnxConstValue k, int channels)
        {
            var dims = k.Tensor.Shape.ToArray();
            if (dims.Length > 4) throw Node(n, $"its constant is {dims.Length}-D");
            var d = new int[4];
            for (int i = 0; i < 4; i++) d[i] = i < 4 - dims.Length ? 1 : dims[i - (4 - dims.Length)];
            if (d[0] != 1) throw Node(n, $"its constant has {d[0]} images on the batch axis");
            if (d[1] != 1 && d[1] != channels) throw Node(n, $"its constant has {d[1]} channels; the value has {channels}");
            bool spatial = d[2] != 1 || d[3] != 1;
            if (spatial)
            {
                if (d[2] == 1 || d[3] == 1) throw Node(n, $"its constant [{string.Join(", ", dims)}] varies along one image axis only");
                if ((_h > 0 && d[2] != _h) || (_w > 0 && d[3] != _w)) throw Node(n, $"its constant is {d[2]}×{d[3]} but the input is {_h}×{_w}");
                (_h, _w) = (d[2], d[3]);
            }
            var v = k.AsFloats();
            int plane = d[2] * d[3];
            var r = new float[channels][];
            for (int c = 0; c < channels; c++)
            {
                int start = (d[1] == 1 ? 0 : c) * plane;
                r[c] = v[start..(start + plane)];
            }
            return r;
        }
    }
}
