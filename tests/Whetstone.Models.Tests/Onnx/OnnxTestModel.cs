using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>
/// Writes small ONNX models for tests with Google.Protobuf's <see cref="CodedOutputStream"/> (field numbers of onnx.proto),
/// independent of the importer's reader.
/// </summary>
internal sealed class OnnxTestModel(long opset = 13)
{
    private readonly List<byte[]> _nodes = [], _initializers = [], _inputs = [], _outputs = [];
    private int _nodeCount;

    public OnnxTestModel Input(string name, params object[] dims) { _inputs.Add(ValueInfo(name, dims)); return this; }

    /// <summary>An int64 input (token ids, masks).</summary>
    public OnnxTestModel InputInt64(string name, params object[] dims) { _inputs.Add(ValueInfo(name, dims, elemType: 7)); return this; }

    public OnnxTestModel Output(string name, params object[] dims) { _outputs.Add(ValueInfo(name, dims)); return this; }

    /// <summary>A float initializer; values default to a seeded smooth pattern.</summary>
    public OnnxTestModel Init(string name, int[] dims, float[]? data = null, int seed = 0)
    {
        data ??= Pattern(dims.Aggregate(1, (a, b) => a * b), seed);
        _initializers.Add(TensorProto(name, dims, data));
        return this;
    }

    public OnnxTestModel InitInt64(string name, params long[] data) { _initializers.Add(Int64Tensor(name, data)); return this; }

    /// <summary>A node; attribute values: long/int → INT, float → FLOAT, long[] → INTS, float[] → FLOATS, string → STRING, byte[] (a TensorProto) → TENSOR.</summary>
    public OnnxTestModel Node(string op, string[] inputs, string[] outputs, string? name = null, params (string Name, object Value)[] attrs)
    {
        _nodes.Add(Msg(o =>
        {
            foreach (var i in inputs) { o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(i); }
            foreach (var x in outputs) { o.WriteTag(2, WireFormat.WireType.LengthDelimited); o.WriteString(x); }
            o.WriteTag(3, WireFormat.WireType.LengthDelimited); o.WriteString(name ?? $"/block{_nodeCount}/{op}");
            o.WriteTag(4, WireFormat.WireType.LengthDelimited); o.WriteString(op);
            foreach (var (an, av) in attrs) Sub(o, 5, Attribute(an, av));
        }));
        _nodeCount++;
        return this;
    }

    public OnnxTestModel Node(string op, string input, string output, params (string Name, object Value)[] attrs) => Node(op, [input], [output], null, attrs);

    public byte[] Build() => Msg(o =>
    {
        o.WriteTag(1, WireFormat.WireType.Varint); o.WriteInt64(8);                       // ir_version
        o.WriteTag(2, WireFormat.WireType.LengthDelimited); o.WriteString("whetstone-tests");
        Sub(o, 7, Msg(g =>
        {
            foreach (var n in _nodes) Sub(g, 1, n);
            g.WriteTag(2, WireFormat.WireType.LengthDelimited); g.WriteString("test");
            foreach (var t in _initializers) Sub(g, 5, t);
            foreach (var i in _inputs) Sub(g, 11, i);
            foreach (var x in _outputs) Sub(g, 12, x);
        }));
        Sub(o, 8, Msg(s => { s.WriteTag(1, WireFormat.WireType.LengthDelimited); s.WriteString(""); s.WriteTag(2, WireFormat.WireType.Varint); s.WriteInt64(opset); }));
    });

    /// <summary>
    /// <paramref name="model"/> with <paramref name="tensor"/> as an extra graph output: a second GraphProto appended to
    /// the ModelProto, which protobuf parsers merge into the first (repeated fields append).
    /// </summary>
    public static byte[] WithExtraOutput(byte[] model, string tensor) =>
        [.. model, .. Msg(o => Sub(o, 7, Msg(g => Sub(g, 12, ValueInfo(tensor, null)))))];

    public static byte[] TensorProto(string name, int[] dims, float[] data) => Msg(t =>
    {
        foreach (var d in dims) { t.WriteTag(1, WireFormat.WireType.Varint); t.WriteInt64(d); }
        t.WriteTag(2, WireFormat.WireType.Varint); t.WriteInt32(1);                        // FLOAT
        t.WriteTag(8, WireFormat.WireType.LengthDelimited); t.WriteString(name);
        var raw = new byte[data.Length * 4];
        Buffer.BlockCopy(data, 0, raw, 0, raw.Length);
        t.WriteTag(9, WireFormat.WireType.LengthDelimited); t.WriteBytes(ByteString.CopyFrom(raw));
    });

    public static byte[] Int64Tensor(string name, long[] data) => Msg(t =>
    {
        t.WriteTag(1, WireFormat.WireType.Varint); t.WriteInt64(data.Length);
        t.WriteTag(2, WireFormat.WireType.Varint); t.WriteInt32(7);                        // INT64
        t.WriteTag(8, WireFormat.WireType.LengthDelimited); t.WriteString(name);
        t.WriteTag(7, WireFormat.WireType.LengthDelimited);                                 // int64_data, packed
        t.WriteBytes(ByteString.CopyFrom(Msg(p => { foreach (var v in data) p.WriteInt64(v); })));
    });

    /// <summary>A float TensorProto whose data lives in an external file.</summary>
    public static byte[] ExternalTensor(string name, int[] dims) => Msg(t =>
    {
        foreach (var d in dims) { t.WriteTag(1, WireFormat.WireType.Varint); t.WriteInt64(d); }
        t.WriteTag(2, WireFormat.WireType.Varint); t.WriteInt32(1);
        t.WriteTag(8, WireFormat.WireType.LengthDelimited); t.WriteString(name);
        Sub(t, 13, Msg(e => { e.WriteTag(1, WireFormat.WireType.LengthDelimited); e.WriteString("location"); e.WriteTag(2, WireFormat.WireType.LengthDelimited); e.WriteString("weights.bin"); }));
        t.WriteTag(14, WireFormat.WireType.Varint); t.WriteEnum(1);                          // EXTERNAL
    });

    public OnnxTestModel RawInitializer(byte[] tensorProto) { _initializers.Add(tensorProto); return this; }

    private static byte[] Attribute(string name, object value) => Msg(a =>
    {
        a.WriteTag(1, WireFormat.WireType.LengthDelimited); a.WriteString(name);
        int type = value switch
        {
            int or long => 2, float => 1, long[] => 7, float[] => 6, string => 3, byte[] => 4,
            _ => throw new ArgumentException($"attribute type {value.GetType()}"),
        };
        if (value is int or long) { a.WriteTag(3, WireFormat.WireType.Varint); a.WriteInt64(Convert.ToInt64(value)); }
        if (value is float f) { a.WriteTag(2, WireFormat.WireType.Fixed32); a.WriteFloat(f); }
        if (value is long[] ints) foreach (var v in ints) { a.WriteTag(8, WireFormat.WireType.Varint); a.WriteInt64(v); }
        if (value is float[] floats) foreach (var v in floats) { a.WriteTag(7, WireFormat.WireType.Fixed32); a.WriteFloat(v); }
        if (value is string s) { a.WriteTag(4, WireFormat.WireType.LengthDelimited); a.WriteString(s); }
        if (value is byte[] tensor) Sub(a, 5, tensor);
        a.WriteTag(20, WireFormat.WireType.Varint); a.WriteEnum(type);                       // AttributeProto.type
    });

    /// <summary>ValueInfoProto for a float tensor; dims are ints or symbol names; null dims: shape not given.</summary>
    private static byte[] ValueInfo(string name, object[]? dims, int elemType = 1) => Msg(v =>
    {
        v.WriteTag(1, WireFormat.WireType.LengthDelimited); v.WriteString(name);
        Sub(v, 2, Msg(type => Sub(type, 1, Msg(tensor =>
        {
            tensor.WriteTag(1, WireFormat.WireType.Varint); tensor.WriteInt32(elemType);
            if (dims is null || dims.Length == 0) return;
            Sub(tensor, 2, Msg(shape =>
            {
                foreach (var d in dims)
                    Sub(shape, 1, Msg(dim =>
                    {
                        if (d is string s) { dim.WriteTag(2, WireFormat.WireType.LengthDelimited); dim.WriteString(s); }
                        else { dim.WriteTag(1, WireFormat.WireType.Varint); dim.WriteInt64(Convert.ToInt64(d)); }
                    }));
            }));
        }))));
    });

    private static void Sub(CodedOutputStream o, int field, byte[] message)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(message));
    }

    private static byte[] Msg(Action<CodedOutputStream> write)
    {
        using var ms = new MemoryStream();
        using (var o = new CodedOutputStream(ms, leaveOpen: true)) { write(o); o.Flush(); }
        return ms.ToArray();
    }

    /// <summary>Deterministic values in about [-1, 1]: a smooth wave plus seeded noise.</summary>
    public static float[] Pattern(int count, int seed)
    {
        var rng = new Rng((ulong)(seed + 1));
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(0.7 * Math.Sin(0.37 * i + seed) + 0.3 * (rng.NextDouble() * 2 - 1));
        return v;
    }

    /// <summary>An image-like batch [N, C, H, W]: smooth per-channel gradients plus seeded noise.</summary>
    public static float[] Image(int n, int c, int h, int w, int seed = 7)
    {
        var rng = new Rng((ulong)seed);
        var v = new float[n * c * h * w];
        int i = 0;
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        v[i++] = (float)(0.6 * Math.Sin(0.21 * y + 0.13 * x + 0.9 * ch + 0.5 * b) + 0.25 * Math.Cos(0.05 * x * (b + 1)) + 0.15 * (rng.NextDouble() * 2 - 1));
        return v;
    }

    /// <summary>Runs <paramref name="model"/> in ONNX Runtime (CPU) and returns the named outputs (all by default).</summary>
    public static List<(float[] Data, int[] Shape)> RunOrt(byte[] model, float[] input, int[] shape, string[]? outputs = null, int threads = 1)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape.Select(d => (long)d).ToArray());
        using var run = new RunOptions();
        var names = outputs ?? session.OutputMetadata.Keys.ToArray();
        using var results = session.Run(run, [session.InputMetadata.Keys.First()], [value], names);
        return results.Select(r => (r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape.Select(d => (int)d).ToArray())).ToList();
    }

    /// <summary>max |a − b| (shapes must match).</summary>
    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs((double)a[i] - b[i]));
        return worst;
    }
}
