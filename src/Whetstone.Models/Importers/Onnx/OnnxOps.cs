using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using AutogradGraph = Whetstone.Tensors.Autograd.Graph;

namespace Whetstone.Models.Importers.Onnx;

/// <summary>
/// An ONNX operator without trainable parameters, as one graph layer: a function of its operands in ONNX order.
/// Operands that are constants in the file (initializers, Constant nodes, folded subgraphs) are held here; the others
/// are the layer's graph inputs, in order.
/// </summary>
internal sealed class OnnxFunction(string description, Tensor?[] constants, Func<Tensor[], Tensor> apply) : MergeLayer
{
    /// <summary>How many operands the graph feeds (the slots without a constant).</summary>
    public int RuntimeCount => constants.Count(c => c is null);

    public override Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        var all = new Tensor[constants.Length];
        int next = 0;
        for (int i = 0; i < all.Length; i++) all[i] = constants[i] ?? (next < inputs.Count ? inputs[next++] : throw new ArgumentException($"{description} needs {RuntimeCount} inputs; got {inputs.Count}."));
        if (next != inputs.Count) throw new ArgumentException($"{description} needs {RuntimeCount} inputs; got {inputs.Count}.");
        return apply(all);
    }

    protected override string ExtraRepr() => description;
}

/// <summary>ONNX Gemm with a constant B (and C): y = alpha·op(A)·op(B) + beta·C; B kept as <c>weight</c> [N, K] (Linear layout), C as <c>bias</c>.</summary>
internal sealed class OnnxGemm : Module<Tensor, Tensor>
{
    private readonly bool _transA;
    private readonly float _alpha, _beta;
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public OnnxGemm(Tensor weight, Tensor? bias, bool transA, float alpha, float beta)
    {
        (_transA, _alpha, _beta) = (transA, alpha, beta);
        Weight = RegisterParameter("weight", weight);
        if (bias is not null) Bias = RegisterParameter("bias", bias);
    }

    public override Tensor Forward(Tensor input)
    {
        var a = _transA ? input.Transpose(0, 1) : input;
        var oneBias = Bias is { Rank: 1 } && Bias.Dim(0) == Weight.Dim(0) && _alpha == 1 && _beta == 1;
        var y = Tensor.Linear(a, Weight, oneBias ? Bias : null);
        if (_alpha != 1) y *= _alpha;
        if (Bias is not null && !oneBias) y += _beta == 1 ? Bias : Bias * _beta;
        return y;
    }

    protected override string ExtraRepr() => $"weight={Shapes.Format(Weight.Shape)}, transA={_transA}, alpha={_alpha}, beta={_beta}";
}

/// <summary>
/// ONNX Conv with end pads no larger than its begin pads: runs with the begin pads on both sides (no padded copy of
/// the input) and keeps ONNX's output size, cropping the extra last row/column when the symmetric padding makes one.
/// Parameters as <see cref="Conv2d"/>: <c>weight</c> [Cout, Cin/groups, kH, kW], <c>bias</c> [Cout].
/// </summary>
internal sealed class OnnxConv : Module<Tensor, Tensor>, Graph.IScaleShiftConv
{
    private readonly (int H, int W) _stride, _dilation;
    private readonly int _groups;
    private readonly (int Top, int Left, int Bottom, int Right) _pads;
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public OnnxConv(Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) dilation, int groups, (int Top, int Left, int Bottom, int Right) pads)
    {
        (_stride, _dilation, _groups, _pads) = (stride, dilation, groups, pads);
        Weight = RegisterParameter("weight", weight);
        if (bias is not null) Bias = RegisterParameter("bias", bias);
    }

    public override Tensor Forward(Tensor input)
    {
        var y = Tensor.Conv2d(input, Weight, Bias, _stride, (_pads.Top, _pads.Left), _dilation, _groups);
        return Crop(input, y);
    }

    /// <inheritdoc/>
    public Tensor ForwardScaleShift(Tensor input, float[] scale, float[] shift, bool relu) =>
        Crop(input, Tensor.Conv2dScaleShift(input, Weight, scale, shift, relu, _stride, (_pads.Top, _pads.Left), _dilation, _groups));

    // ONNX's output size from the begin pads used on both sides: the extra last row/column cut off
    private Tensor Crop(Tensor input, Tensor y)
    {
        int oh = (input.Dim(-2) + _pads.Top + _pads.Bottom - _dilation.H * (Weight.Dim(2) - 1) - 1) / _stride.H + 1;
        int ow = (input.Dim(-1) + _pads.Left + _pads.Right - _dilation.W * (Weight.Dim(3) - 1) - 1) / _stride.W + 1;
        return y.Dim(2) == oh && y.Dim(3) == ow ? y : y.Narrow(2, 0, oh).Narrow(3, 0, ow).Contiguous();
    }

    protected override string ExtraRepr() =>
        $"weight={Shapes.Format(Weight.Shape)}, stride={_stride}, pads=[{_pads.Top}, {_pads.Left}, {_pads.Bottom}, {_pads.Right}], dilation={_dilation}, groups={_groups}";
}

/// <summary>What an ONNX tensor name stands for while importing: a layer's output, or a constant known at import time.</summary>
internal abstract record OnnxValue;

/// <summary>Produced by graph layer <paramref name="Layer"/> (or the graph input) when the graph runs.</summary>
internal sealed record OnnxRuntimeValue(string Layer) : OnnxValue;

/// <summary>A constant: <paramref name="Tensor"/> (float, persistent), and the exact integers for integer types.</summary>
internal sealed record OnnxConstValue(Tensor Tensor, long[]? Longs) : OnnxValue
{
    public long[] AsLongs() => Longs ?? Tensor.ToArray().Select(v => (long)v).ToArray();
    public float[] AsFloats() => Tensor.ToArray();
}

/// <summary>One layer an ONNX node becomes: name suffix ("" for the node's own name), kind ("" for the op type) and module.</summary>
internal sealed record OnnxStep(string Suffix, string Kind, Module Module);

/// <summary>
/// How an ONNX node maps to the engine: layers in a chain (usually one; a Pad before an asymmetric Conv) whose first reads the
/// ONNX input positions <c>RuntimeSlots</c>; or a constant; or an alias of input <c>AliasOf</c>.
/// </summary>
internal sealed record OnnxBuilt(IReadOnlyList<OnnxStep> Steps, int[] RuntimeSlots, OnnxConstValue? Constant = null, int AliasOf = -1);

/// <summary>The ONNX node being mapped and its operands.</summary>
internal sealed class OnnxNodeContext(OnnxNodeProto node, long opset, IReadOnlyList<OnnxValue?> operands)
{
    public OnnxNodeProto Node { get; } = node;
    public long Opset { get; } = opset;
    public IReadOnlyList<OnnxValue?> Operands { get; } = operands;

    public bool Has(int i) => i < Operands.Count && Operands[i] is not null;
    public bool IsConst(int i) => Has(i) && Operands[i] is OnnxConstValue;

    public OnnxConstValue Const(int i, string role) =>
        Has(i) && Operands[i] is OnnxConstValue c ? c
        : throw new FormatException(Has(i) ? $"its {role} (input {i}, '{Node.Inputs[i]}') must be a constant (an initializer or Constant node), but it is computed by the graph"
                                           : $"its {role} (input {i}) is missing");

    public long Int(string name, long fallback) => Node.Attribute(name) is { } a ? a.I : fallback;
    public float Float(string name, float fallback) => Node.Attribute(name) is { } a ? a.F : fallback;
    public string Str(string name, string fallback) => Node.Attribute(name) is { } a ? System.Text.Encoding.UTF8.GetString(a.S) : fallback;
    public long[]? Ints(string name) => Node.Attribute(name) is { } a ? a.Ints.ToArray() : null;
}

/// <summary>
/// ONNX operator → engine module mapping. Layers are NCHW like ONNX, so no layout conversion is needed; weights keep
/// ONNX's layout except MatMul/Gemm's B, stored transposed as a Linear weight [out, in].
/// </summary>
internal static class OnnxOps
{
    /// <summary>Operator types of the default domain the importer maps.</summary>
    public static readonly IReadOnlySet<string> Supported = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh",
        "Add", "Sub", "Mul", "Div", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Squeeze",
        "Unsqueeze", "Gemm", "MatMul", "Softmax", "LogSoftmax", "Concat", "Transpose", "Identity", "Dropout", "Constant",
        "Shape", "Cast", "Slice",
    };

    /// <summary>Why a node (of a supported type) cannot be imported, or null when it can.</summary>
    public static string? Check(OnnxNodeProto n, long opset)
    {
        long Int(string name, long d) => n.Attribute(name) is { } a ? a.I : d;
        switch (n.OpType)
        {
            case "Conv":
                if (n.Attribute("kernel_shape") is { } k && k.Ints.Count != 2) return $"{k.Ints.Count}-D kernels (only 2-D convolution is supported)";
                break;
            case "MaxPool" or "AveragePool":
                if (n.Attribute("kernel_shape") is not { } ks || ks.Ints.Count != 2) return "kernel_shape must have 2 entries (only 2-D pooling is supported)";
                if (Int("ceil_mode", 0) != 0) return "ceil_mode = 1";
                if (n.Attribute("dilations") is { } d && d.Ints.Any(v => v != 1)) return "dilations ≠ 1";
                if (n.Outputs.Count > 1 && n.Outputs[1].Length > 0) return "the Indices output";
                break;
            case "BatchNormalization":
                if (Int("training_mode", 0) != 0 || n.Outputs.Skip(1).Any(o => o.Length > 0)) return "training outputs (mean/var)";
                if (opset < 9 && Int("spatial", 1) != 1) return "spatial = 0";
                break;
            case "Add" or "Sub" or "Mul" or "Div":
                if (n.Attribute("broadcast") is not null || n.Attribute("axis") is not null) return "legacy broadcast/axis attributes (opset < 7)";
                break;
            case "Dropout":
                if (n.Outputs.Count > 1 && n.Outputs[1].Length > 0) return "the mask output";
                break;
            case "Constant":
                if (n.Attribute("sparse_value") is not null || n.Attribute("value_string") is not null || n.Attribute("value_strings") is not null) return "sparse or string values";
                break;
            case "Reshape":
                if (Int("allowzero", 0) != 0) return "allowzero = 1";
                break;
        }
        return null;
    }

    public static OnnxBuilt Build(OnnxNodeContext c)
    {
        var n = c.Node;
        switch (n.OpType)
        {
            case "Conv": return Conv(c);
            case "BatchNormalization": return BatchNorm(c);
            case "Relu": return Single(new Relu());
            case "Sigmoid": return Single(new Sigmoid());
            case "Tanh": return Single(new Tanh());
            case "LeakyRelu":
            {
                float alpha = c.Float("alpha", 0.01f);
                return Function(c, $"LeakyRelu(alpha={alpha})", 1, x => x[0].Relu() - (-x[0]).Relu() * alpha);
            }
            case "Clip": return Clip(c);
            case "HardSigmoid":
            {
                // ONNX: clip(alpha·x + beta, 0, 1); our kernel is PyTorch's relu6(z + 3)/6, so z = 6·alpha·x + 6·beta − 3.
                float alpha = c.Float("alpha", 0.2f), beta = c.Float("beta", 0.5f);
                float scale = 6 * alpha, shift = 6 * beta - 3;
                bool torchForm = Math.Abs(scale - 1) < 1e-6f && Math.Abs(shift) < 1e-6f;
                return Function(c, $"HardSigmoid(alpha={alpha}, beta={beta})", 1,
                    x => torchForm ? x[0].HardSigmoid() : (shift == 0 ? x[0] * scale : x[0] * scale + shift).HardSigmoid());
            }
            case "HardSwish": return Function(c, "HardSwish", 1, x => x[0].HardSwish());
            case "Add": return Binary(c, "Add", (a, b) => a + b, (a, s) => a + s);
            case "Sub": return Binary(c, "Sub", (a, b) => a - b, (a, s) => a - s);
            case "Mul": return Binary(c, "Mul", (a, b) => a * b, (a, s) => a * s);
            case "Div": return Binary(c, "Div", (a, b) => a / b, (a, s) => a * (1 / s));
            case "GlobalAveragePool": return Function(c, "GlobalAveragePool", 1, x => x[0].GlobalAvgPool2d(keepDims: true));
            case "MaxPool" or "AveragePool": return Pool(c);
            case "Flatten":
            {
                int axis = (int)c.Int("axis", 1);
                return Function(c, $"Flatten(axis={axis})", 1, x =>
                {
                    int a = axis < 0 ? axis + x[0].Rank : axis;
                    int outer = 1;
                    for (int i = 0; i < a; i++) outer *= x[0].Dim(i);
                    return x[0].Reshape(outer, -1);
                });
            }
            case "Reshape": return Reshape(c);
            case "Squeeze" or "Unsqueeze": return SqueezeOrUnsqueeze(c);
            case "Gemm": return Gemm(c);
            case "MatMul": return MatMul(c, bias: null);
            case "Softmax" or "LogSoftmax": return Softmax(c);
            case "Concat":
            {
                int axis = (int)c.Int("axis", 0);
                return Function(c, $"Concat(axis={axis})", n.Inputs.Count, x => Tensor.Concat(x, axis < 0 ? axis + x[0].Rank : axis));
            }
            case "Transpose":
            {
                var perm = c.Ints("perm")?.Select(v => (int)v).ToArray();
                return Function(c, $"Transpose(perm=[{string.Join(", ", perm ?? [])}])", 1,
                    x => x[0].Permute(perm ?? Enumerable.Range(0, x[0].Rank).Reverse().ToArray()));
            }
            case "Identity": return new OnnxBuilt([], [0], AliasOf: 0);
            case "Dropout":
            {
                float ratio = c.Opset >= 12 ? (c.Has(1) ? c.Const(1, "ratio").AsFloats()[0] : 0.5f) : c.Float("ratio", 0.5f);
                return new OnnxBuilt([new OnnxStep("", "Dropout", new Dropout(ratio, new Rng(0)))], [0]);
            }
            case "Constant": return new OnnxBuilt([], [], Constant: ConstantValue(c));
            case "Shape":
            {
                int start = (int)c.Int("start", 0);
                long end = c.Int("end", long.MaxValue);
                return Function(c, "Shape", 1, x =>
                {
                    int r = x[0].Rank, s = Clamp(start < 0 ? start + r : start, r);
                    int e = Clamp(end < 0 ? end + r : end, r);
                    var dims = new float[Math.Max(0, e - s)];
                    for (int i = 0; i < dims.Length; i++) dims[i] = x[0].Dim(s + i);
                    return Tensor.From(dims, dims.Length);
                });
            }
            case "Cast": return Cast(c);
            case "Slice": return Slice(c);
        }
        throw new FormatException($"operator {n.OpType} is not supported");
    }

    // ---------------- builders ----------------

    private static OnnxBuilt Single(Module<Tensor, Tensor> module) => new([new OnnxStep("", "", module)], [0]);

    /// <summary>A parameterless layer over the node's first <paramref name="arity"/> operands (missing optional ones are skipped).</summary>
    private static OnnxBuilt Function(OnnxNodeContext c, string description, int arity, Func<Tensor[], Tensor> apply)
    {
        var slots = Enumerable.Range(0, Math.Min(arity, c.Operands.Count)).Where(c.Has).ToArray();
        if (slots.Length == 0) throw new FormatException("it has no inputs");
        var constants = slots.Select(i => c.Operands[i] is OnnxConstValue k ? k.Tensor : null).ToArray();
        var module = new OnnxFunction(description, constants, apply);
        return new OnnxBuilt([new OnnxStep("", "", module)], slots.Where(i => c.Operands[i] is OnnxRuntimeValue).ToArray());
    }

    /// <summary>A broadcasting binary op; a single-element constant operand becomes a scalar (one fused pass).</summary>
    private static OnnxBuilt Binary(OnnxNodeContext c, string op, Func<Tensor, Tensor, Tensor> both, Func<Tensor, float, Tensor> scalar)
    {
        if (c.IsConst(1) && !c.IsConst(0) && c.Const(1, "operand").Tensor is { Size: 1, Rank: <= 1 } s)
        {
            float v = s.ToArray()[0];
            return Function(c, $"{op}({v})", 1, x => scalar(x[0], v));
        }
        if (op is "Add" or "Mul" && c.IsConst(0) && !c.IsConst(1) && c.Const(0, "operand").Tensor is { Size: 1, Rank: <= 1 } s0)
        {
            float v = s0.ToArray()[0];
            return new OnnxBuilt([new OnnxStep("", "", new OnnxFunction($"{op}({v})", [null], x => scalar(x[0], v)))], [1]);
        }
        return Function(c, op, 2, x => both(x[0], x[1]));
    }

    private static OnnxBuilt Clip(OnnxNodeContext c)
    {
        float lo, hi;
        if (c.Opset < 11) { lo = c.Float("min", float.NegativeInfinity); hi = c.Float("max", float.PositiveInfinity); }
        else
        {
            lo = c.Has(1) ? c.Const(1, "min").AsFloats()[0] : float.NegativeInfinity;
            hi = c.Has(2) ? c.Const(2, "max").AsFloats()[0] : float.PositiveInfinity;
        }
        Func<Tensor, Tensor> f = (lo, hi) switch
        {
            (0, 6) => x => x.Relu6(),
            (0, float.PositiveInfinity) => x => x.Relu(),
            _ => x =>
            {
                var y = float.IsNegativeInfinity(lo) ? x : (x - lo).Relu() + lo;          // max(x, lo)
                return float.IsPositiveInfinity(hi) ? y : -((-y + hi).Relu()) + hi;    // min(y, hi)
            },
        };
        return new OnnxBuilt([new OnnxStep("", "", new OnnxFunction($"Clip(min={lo}, max={hi})", [null], x => f(x[0])))], [0]);
    }

    private static OnnxBuilt Conv(OnnxNodeContext c)
    {
        var w = c.Const(1, "weight").Tensor;
        if (w.Rank != 4) throw new FormatException($"its weight is {Shapes.Format(w.Shape)}; only 2-D convolution (a 4-D weight) is supported");
        var b = c.Has(2) ? c.Const(2, "bias").Tensor : null;
        int groups = (int)c.Int("group", 1);
        int outC = w.Dim(0), inC = w.Dim(1) * groups, kh = w.Dim(2), kw = w.Dim(3);
        var strides = c.Ints("strides") ?? [1, 1];
        var dil = c.Ints("dilations") ?? [1, 1];
        var pads = c.Ints("pads") ?? [0, 0, 0, 0];
        string autoPad = c.Str("auto_pad", "NOTSET");
        if (strides.Length != 2 || dil.Length != 2 || pads.Length != 4) throw new FormatException("strides/dilations/pads do not describe a 2-D convolution");
        var steps = new List<OnnxStep>();
        (int, int) padding = (0, 0);
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            var (sh, sw, dh, dw) = ((int)strides[0], (int)strides[1], (int)dil[0], (int)dil[1]);
            steps.Add(new OnnxStep("_pad", "Pad", new OnnxFunction($"SamePad({autoPad})", [null],
                x => SamePad(x[0], (kh, kw), (sh, sw), (dh, dw), autoPad == "SAME_UPPER", 0))));
        }
        else if (autoPad != "VALID")
        {
            int t = (int)pads[0], l = (int)pads[1], bo = (int)pads[2], r = (int)pads[3];
            if (t == bo && l == r) padding = (t, l);
            else if (t >= bo && l >= r)
            {
                // End pads no larger than the begin pads (CNTK's (3, 3, 2, 2) before a 7×7 stride-2 conv): the conv runs with
                // the begin pads on both sides and keeps the asymmetric output size — no padded copy of the input.
                var oc = new OnnxConv(Persistent(w), b is null ? null : Persistent(b), ((int)strides[0], (int)strides[1]), ((int)dil[0], (int)dil[1]), groups, (t, l, bo, r));
                return new OnnxBuilt([new OnnxStep("", "", oc)], [0]);
            }
            else steps.Add(new OnnxStep("_pad", "Pad", new OnnxFunction($"Pad2d(top={t}, bottom={bo}, left={l}, right={r})", [null], x => x[0].Pad2d(t, bo, l, r))));
        }
        var conv = new Conv2d(inC, outC, (kh, kw), ((int)strides[0], (int)strides[1]), padding, ((int)dil[0], (int)dil[1]), groups, bias: b is not null);
        w.Span.CopyTo(conv.Weight.Span);
        if (b is not null) b.Span.CopyTo(conv.Bias!.Span);
        steps.Add(new OnnxStep("", "", conv));
        return new OnnxBuilt(steps, [0]);
    }

    private static OnnxBuilt BatchNorm(OnnxNodeContext c)
    {
        var scale = c.Const(1, "scale").Tensor;
        var bias = c.Const(2, "B").Tensor;
        var mean = c.Const(3, "mean").Tensor;
        var variance = c.Const(4, "var").Tensor;
        // ONNX: running = running·momentum + batch·(1 − momentum); PyTorch's (and our) momentum is the batch's weight.
        var bn = new BatchNorm2d(scale.Size, c.Float("epsilon", 1e-5f), 1 - c.Float("momentum", 0.9f));
        scale.Span.CopyTo(bn.Weight.Span);
        bias.Span.CopyTo(bn.Bias.Span);
        mean.Span.CopyTo(bn.RunningMean.Span);
        variance.Span.CopyTo(bn.RunningVar.Span);
        return Single(bn);
    }

    private static OnnxBuilt Pool(OnnxNodeContext c)
    {
        bool max = c.Node.OpType == "MaxPool";
        var k = c.Ints("kernel_shape")!;
        var s = c.Ints("strides") ?? [1, 1];
        var pads = c.Ints("pads") ?? [0, 0, 0, 0];
        string autoPad = c.Str("auto_pad", "NOTSET");
        bool countPad = c.Int("count_include_pad", 0) != 0;
        var kernel = ((int)k[0], (int)k[1]);
        var stride = ((int)s[0], (int)s[1]);
        string desc = $"{c.Node.OpType}(kernel={kernel}, stride={stride}, " + (autoPad is "NOTSET" ? $"pads=[{string.Join(", ", pads)}]" : $"auto_pad={autoPad}") + (max ? ")" : $", count_include_pad={countPad})");
        return new OnnxBuilt([new OnnxStep("", "", new OnnxFunction(desc, [null], x =>
        {
            var t = x[0];
            int pt = 0, pl = 0, pb = 0, pr = 0;
            if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                (pt, pb) = SameAmounts(t.Dim(-2), kernel.Item1, stride.Item1, 1, autoPad == "SAME_UPPER");
                (pl, pr) = SameAmounts(t.Dim(-1), kernel.Item2, stride.Item2, 1, autoPad == "SAME_UPPER");
            }
            else if (autoPad != "VALID") (pt, pl, pb, pr) = ((int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]);
            if (pt == pb && pl == pr && 2 * pt <= kernel.Item1 && 2 * pl <= kernel.Item2)
                return max ? t.MaxPool2d(kernel, stride, (pt, pl)) : t.AvgPool2d(kernel, stride, (pt, pl), countPad);
            if (pt >= pb && pl >= pr && 2 * pt <= kernel.Item1 && 2 * pl <= kernel.Item2)
            {
                // End pads no larger than the begin pads (CNTK's (1, 1, 0, 0) before a 3×3 stride-2 max pool): the windows
                // are those of the begin pads on both sides; keep the asymmetric output size (padding never changes a
                // window's max, count_include_pad counts kH·kW either way, and in-bounds counts are the same windows').
                int oh = (t.Dim(-2) + pt + pb - kernel.Item1) / stride.Item1 + 1, ow = (t.Dim(-1) + pl + pr - kernel.Item2) / stride.Item2 + 1;
                var y = max ? t.MaxPool2d(kernel, stride, (pt, pl)) : t.AvgPool2d(kernel, stride, (pt, pl), countPad);
                return y.Dim(-2) == oh && y.Dim(-1) == ow ? y : y.Narrow(-2, 0, oh).Narrow(-1, 0, ow).Contiguous();
            }
            if (max) return t.Pad2d(pt, pb, pl, pr, float.NegativeInfinity).MaxPool2d(kernel, stride, (0, 0));
            var mean = t.Pad2d(pt, pb, pl, pr).AvgPool2d(kernel, stride, (0, 0));
            if (countPad) return mean;
            // Divide by the in-bounds count: the window mean of a padded plane of ones is (count / kH·kW).
            Tensor inside;
            using (AutogradGraph.NoGrad()) inside = Tensor.Ones(1, 1, t.Dim(-2), t.Dim(-1)).Pad2d(pt, pb, pl, pr).AvgPool2d(kernel, stride, (0, 0));
            return mean / inside;
        }))], [0]);
    }

    private static (int Begin, int End) SameAmounts(int size, int kernel, int stride, int dilation, bool upper)
    {
        int outSize = (size + stride - 1) / stride;
        int total = Math.Max(0, (outSize - 1) * stride + (kernel - 1) * dilation + 1 - size);
        int small = total / 2;
        return upper ? (small, total - small) : (total - small, small);
    }

    private static Tensor SamePad(Tensor x, (int H, int W) kernel, (int H, int W) stride, (int H, int W) dilation, bool upper, float value)
    {
        var (t, b) = SameAmounts(x.Dim(-2), kernel.H, stride.H, dilation.H, upper);
        var (l, r) = SameAmounts(x.Dim(-1), kernel.W, stride.W, dilation.W, upper);
        return t + b + l + r == 0 ? x : x.Pad2d(t, b, l, r, value);
    }

    private static OnnxBuilt Reshape(OnnxNodeContext c)
    {
        static Tensor Apply(Tensor x, long[] shape)
        {
            var target = new int[shape.Length];
            for (int i = 0; i < shape.Length; i++)
                target[i] = shape[i] == 0 ? (i < x.Rank ? x.Dim(i) : throw new ArgumentException($"Reshape: 0 at position {i} copies an axis the {x.Rank}-D input does not have")) : (int)shape[i];
            return x.Reshape(target);
        }
        if (c.IsConst(1))
        {
            var shape = c.Const(1, "shape").AsLongs();
            return Function(c, $"Reshape([{string.Join(", ", shape)}])", 1, x => Apply(x[0], shape));
        }
        // The target shape is computed by the graph (e.g. Shape → Slice → Concat): read it when the layer runs.
        return Function(c, "Reshape(computed shape)", 2, x =>
        {
            Tensor shape;
            using (AutogradGraph.NoGrad()) shape = x[1];
            return Apply(x[0], shape.ToArray().Select(v => (long)v).ToArray());
        });
    }

    private static OnnxBuilt SqueezeOrUnsqueeze(OnnxNodeContext c)
    {
        bool un = c.Node.OpType == "Unsqueeze";
        long[]? axes = c.Opset >= 13 ? (c.Has(1) ? c.Const(1, "axes").AsLongs() : null) : c.Ints("axes");
        if (un && axes is null) throw new FormatException("Unsqueeze needs axes");
        string desc = $"{c.Node.OpType}(axes=[{string.Join(", ", axes ?? [])}])";
        return new OnnxBuilt([new OnnxStep("", "", new OnnxFunction(desc, [null], x =>
        {
            var t = x[0];
            var shape = t.Shape.ToArray().ToList();
            if (un)
            {
                int rank = shape.Count + axes!.Length;
                foreach (var a in axes.Select(a => (int)(a < 0 ? a + rank : a)).Order()) shape.Insert(a, 1);
            }
            else if (axes is null) shape.RemoveAll(d => d == 1);
            else
            {
                var drop = axes.Select(a => (int)(a < 0 ? a + t.Rank : a)).ToHashSet();
                foreach (var a in drop)
                    if (t.Dim(a) != 1) throw new ArgumentException($"Squeeze: axis {a} of {Shapes.Format(t.Shape)} is not 1");
                shape = shape.Where((_, i) => !drop.Contains(i)).ToList();
            }
            return t.Reshape(shape.ToArray());
        }))], [0]);
    }

    private static OnnxBuilt Gemm(OnnxNodeContext c)
    {
        bool transA = c.Int("transA", 0) != 0, transB = c.Int("transB", 0) != 0;
        float alpha = c.Float("alpha", 1), beta = c.Float("beta", 1);
        if (!c.IsConst(1))
            return Function(c, $"Gemm(transA={transA}, transB={transB}, alpha={alpha}, beta={beta})", 3, x =>
            {
                var a = transA ? x[0].Transpose(0, 1) : x[0];
                var b = transB ? x[1].Transpose(0, 1) : x[1];
                var y = Tensor.MatMul(a, b);
                if (alpha != 1) y *= alpha;
                return x.Length > 2 ? y + (beta == 1 ? x[2] : x[2] * beta) : y;
            });
        var b = c.Const(1, "B").Tensor;
        if (b.Rank != 2) throw new FormatException($"its B is {Shapes.Format(b.Shape)}, not a matrix");
        var weight = Persistent(transB ? b : b.Transpose(0, 1));           // [N, K]
        Tensor? bias = null;
        if (c.Has(2))
        {
            var cc = c.Const(2, "C").Tensor;
            bias = Persistent(cc.Size == weight.Dim(0) && cc.Rank <= 2 && cc.Dim(-1) == weight.Dim(0) ? cc.Reshape(weight.Dim(0)) : cc);
        }
        if (!transA && alpha == 1 && (bias is null || (bias.Rank == 1 && beta == 1)))
            return new OnnxBuilt([new OnnxStep("", "", new Linear(weight, bias))], [0]);
        return new OnnxBuilt([new OnnxStep("", "", new OnnxGemm(weight, bias, transA, alpha, beta))], [0]);
    }

    /// <summary>
    /// MatMul with a constant matrix B becomes a Linear layer (weight = Bᵀ); <paramref name="bias"/> is the constant of a
    /// following Add the importer fused in. Otherwise NumPy matmul semantics over the graph's operands.
    /// </summary>
    public static OnnxBuilt MatMul(OnnxNodeContext c, Tensor? bias)
    {
        if (c.IsConst(1) && !c.IsConst(0) && c.Const(1, "B").Tensor is { Rank: 2 } b)
        {
            var linear = new Linear(Persistent(b.Transpose(0, 1)), bias is null ? null : Persistent(bias.Reshape(-1)));
            return new OnnxBuilt([new OnnxStep("", "", linear)], [0]);
        }
        return Function(c, "MatMul", 2, x => NumpyMatMul(x[0], x[1]));
    }

    /// <summary>Whether a MatMul node can absorb <paramref name="addend"/> as its Linear bias.</summary>
    public static bool CanFuseBias(OnnxNodeContext matmul, Tensor addend) =>
        matmul.IsConst(1) && !matmul.IsConst(0) && matmul.Const(1, "B").Tensor is { Rank: 2 } b
        && addend.Rank is 1 or 2 && addend.Size == b.Dim(1) && addend.Dim(-1) == b.Dim(1);

    private static Tensor NumpyMatMul(Tensor a, Tensor b)
    {
        bool va = a.Rank == 1, vb = b.Rank == 1;
        var y = Tensor.MatMul(va ? a.Unsqueeze(0) : a, vb ? b.Unsqueeze(1) : b);
        if (vb) y = y.Squeeze(-1);
        if (va) y = y.Squeeze(vb ? -1 : -2);
        return y;
    }

    private static OnnxBuilt Softmax(OnnxNodeContext c)
    {
        bool log = c.Node.OpType == "LogSoftmax";
        int axis = (int)c.Int("axis", c.Opset >= 13 ? -1 : 1);
        bool legacy = c.Opset < 13;   // before opset 13 the input is seen as 2-D: [prod(dims before axis), prod(the rest)]
        return Function(c, $"{c.Node.OpType}(axis={axis}{(legacy ? ", 2-D" : "")})", 1, x =>
        {
            var t = x[0];
            int a = axis < 0 ? axis + t.Rank : axis;
            if (legacy && a != t.Rank - 1)
            {
                int outer = 1;
                for (int i = 0; i < a; i++) outer *= t.Dim(i);
                var flat = t.Reshape(outer, -1);
                return (log ? flat.LogSoftmax() : flat.Softmax()).Reshape(t.Shape.ToArray());
            }
            if (a == t.Rank - 1) return log ? t.LogSoftmax() : t.Softmax();
            var moved = t.Transpose(a, -1);
            return (log ? moved.LogSoftmax() : moved.Softmax()).Transpose(a, -1);
        });
    }

    private static OnnxBuilt Cast(OnnxNodeContext c)
    {
        var to = (OnnxDataType)c.Int("to", (long)OnnxDataType.Float);
        Func<float, float>? convert = to switch
        {
            OnnxDataType.Float or OnnxDataType.Double => null,
            OnnxDataType.Float16 => v => (float)(Half)v,
            OnnxDataType.BFloat16 => v => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) + 0x7FFF + ((BitConverter.SingleToInt32Bits(v) >> 16) & 1) & unchecked((int)0xFFFF0000)),
            OnnxDataType.Bool => v => v != 0 ? 1 : 0,
            OnnxDataType.String or OnnxDataType.Complex64 or OnnxDataType.Complex128 or OnnxDataType.Undefined => throw new FormatException($"Cast to {to} is not supported"),
            _ => MathF.Truncate,   // integer types: toward zero (values are held as float)
        };
        return Function(c, $"Cast(to={to})", 1, x =>
        {
            if (convert is null) return x[0];
            var v = x[0].ToArray();
            for (int i = 0; i < v.Length; i++) v[i] = convert(v[i]);
            return Tensor.From(v, x[0].Shape.ToArray());
        });
    }

    private static OnnxBuilt Slice(OnnxNodeContext c)
    {
        long[] starts, ends;
        long[]? axes, steps = null;
        if (c.Opset < 10) { starts = c.Ints("starts")!; ends = c.Ints("ends")!; axes = c.Ints("axes"); }
        else
        {
            starts = c.Const(1, "starts").AsLongs();
            ends = c.Const(2, "ends").AsLongs();
            axes = c.Has(3) ? c.Const(3, "axes").AsLongs() : null;
            steps = c.Has(4) ? c.Const(4, "steps").AsLongs() : null;
        }
        if (starts is null || ends is null || starts.Length != ends.Length) throw new FormatException("starts and ends must be given with equal lengths");
        if (steps is not null && steps.Any(s => s != 1)) throw new FormatException("steps ≠ 1 are not supported");
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        string desc = $"Slice(starts=[{string.Join(", ", starts)}], ends=[{string.Join(", ", ends)}], axes=[{string.Join(", ", axes)}])";
        return Function(c, desc, 1, x =>
        {
            var t = x[0];
            for (int i = 0; i < starts.Length; i++)
            {
                int axis = (int)(axes[i] < 0 ? axes[i] + t.Rank : axes[i]), size = t.Dim(axis);
                int s = Clamp(starts[i] < 0 ? starts[i] + size : starts[i], size);
                int e = Clamp(ends[i] < 0 ? ends[i] + size : ends[i], size);
                t = t.Narrow(axis, s, Math.Max(0, e - s));
            }
            return t;
        });
    }

    private static OnnxConstValue ConstantValue(OnnxNodeContext c)
    {
        var n = c.Node;
        if (n.Attribute("value") is { T: { } t }) return ToConst(t);
        if (n.Attribute("value_float") is { } f) return new OnnxConstValue(PersistentFrom([f.F], []), null);
        if (n.Attribute("value_floats") is { } fs) return new OnnxConstValue(PersistentFrom([.. fs.Floats], [fs.Floats.Count]), null);
        if (n.Attribute("value_int") is { } i) return new OnnxConstValue(PersistentFrom([i.I], []), [i.I]);
        if (n.Attribute("value_ints") is { } iss) return new OnnxConstValue(PersistentFrom([.. iss.Ints.Select(v => (float)v)], [iss.Ints.Count]), [.. iss.Ints]);
        throw new FormatException("it has no value attribute");
    }

    /// <summary>A TensorProto as a constant (float tensor in persistent memory; exact integers kept for integer types).</summary>
    public static OnnxConstValue ToConst(OnnxTensorProto t)
    {
        var dims = t.Dims.Select(d => checked((int)d)).ToArray();
        bool integer = t.DataType is not (OnnxDataType.Float or OnnxDataType.Double or OnnxDataType.Float16 or OnnxDataType.BFloat16);
        return new OnnxConstValue(PersistentFrom(t.ToFloats(), dims), integer ? t.ToLongs() : null);
    }

    private static Tensor PersistentFrom(float[] data, int[] shape)
    {
        var t = Tensor.Persistent(shape);
        data.CopyTo(t.Span);
        return t;
    }

    private static Tensor PersistentFrom(long[] data, int[] shape) => PersistentFrom(data.Select(v => (float)v).ToArray(), shape);

    /// <summary>A contiguous persistent copy (parameters must not live in a scope).</summary>
    private static Tensor Persistent(Tensor t) => PersistentFrom(t.ToArray(), t.Shape.ToArray());

    private static int Clamp(long v, int size) => (int)Math.Clamp(v, 0, size);
}
