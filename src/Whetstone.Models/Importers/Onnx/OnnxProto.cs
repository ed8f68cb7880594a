using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Whetstone.Models.Importers.Onnx;

// The parts of onnx.proto the importer reads, as plain classes filled by hand-written readers over the wire format
// (field numbers from the official onnx.proto). Unknown fields are skipped; a message that appears twice is merged
// (repeated fields append, scalars are overwritten), as protobuf parsers do.

internal sealed class OnnxModelProto
{
    public long IrVersion;
    public string ProducerName = "";
    public string ProducerVersion = "";
    public readonly List<(string Domain, long Version)> OpsetImports = [];
    public OnnxGraphProto? Graph;
    public int FunctionCount;

    /// <summary>The version of the default operator set ("" or "ai.onnx"); 1 when the file names none (as ONNX says for IR &lt; 3).</summary>
    public long DefaultOpset =>
        OpsetImports.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
}

internal sealed class OnnxGraphProto
{
    public string Name = "";
    public readonly List<OnnxNodeProto> Nodes = [];
    public readonly List<OnnxTensorProto> Initializers = [];
    public int SparseInitializerCount;
    public readonly List<OnnxValueInfoProto> Inputs = [];
    public readonly List<OnnxValueInfoProto> Outputs = [];
    public readonly List<OnnxValueInfoProto> ValueInfo = [];
}

internal sealed class OnnxNodeProto
{
    public readonly List<string> Inputs = [];
    public readonly List<string> Outputs = [];
    public string Name = "";
    public string OpType = "";
    public string Domain = "";
    public readonly List<OnnxAttributeProto> Attributes = [];

    public OnnxAttributeProto? Attribute(string name) => Attributes.LastOrDefault(a => a.Name == name);
}

internal enum OnnxAttributeType { Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7, Strings = 8, Tensors = 9, Graphs = 10, SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14 }

internal sealed class OnnxAttributeProto
{
    public string Name = "";
    public OnnxAttributeType Type;
    public float F;
    public long I;
    public byte[] S = [];
    public OnnxTensorProto? T;
    public readonly List<float> Floats = [];
    public readonly List<long> Ints = [];
    public readonly List<byte[]> Strings = [];
    public int GraphCount;
    public int TensorCount;
}

/// <summary>TensorProto.DataType values.</summary>
internal enum OnnxDataType { Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8, Bool = 9, Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14, Complex128 = 15, BFloat16 = 16 }

internal sealed class OnnxTensorProto
{
    public readonly List<long> Dims = [];
    public OnnxDataType DataType;
    public string Name = "";
    public readonly List<float> FloatData = [];
    public readonly List<int> Int32Data = [];      // also holds int8/16, uint8/16, bool, float16/bfloat16 bit patterns
    public readonly List<long> Int64Data = [];
    public readonly List<double> DoubleData = [];
    public readonly List<ulong> UInt64Data = [];   // also uint32
    public int StringCount;
    public ReadOnlyMemory<byte> RawData;
    public bool HasRawData;
    public bool External;                          // data_location = EXTERNAL or external_data entries present
    public bool Segmented;

    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>The values as float (integers converted), whatever the storage field.</summary>
    public float[] ToFloats() => Values(v => (float)v, f => f);

    /// <summary>The values as long (floats truncated toward zero), for shapes and axes.</summary>
    public long[] ToLongs() => Values(v => v, f => (long)f);

    private T[] Values<T>(Func<long, T> fromInt, Func<float, T> fromFloat)
    {
        long count = ElementCount;
        var r = new T[count];
        if (HasRawData)
        {
            var raw = RawData.Span;
            int size = ElementSize(DataType);
            if (size == 0) throw new FormatException($"tensor '{Name}' of type {DataType} cannot be read as numbers");
            if (raw.Length != count * size) throw new FormatException($"tensor '{Name}': raw_data holds {raw.Length} bytes, but {count} × {DataType} needs {count * size}");
            for (int i = 0; i < count; i++)
            {
                var b = raw.Slice(i * size, size);
                r[i] = DataType switch
                {
                    OnnxDataType.Float => fromFloat(MemoryMarshal.Read<float>(b)),
                    OnnxDataType.Double => fromFloat((float)MemoryMarshal.Read<double>(b)),
                    OnnxDataType.Float16 => fromFloat((float)MemoryMarshal.Read<Half>(b)),
                    OnnxDataType.BFloat16 => fromFloat(BitConverter.Int32BitsToSingle(MemoryMarshal.Read<ushort>(b) << 16)),
                    OnnxDataType.Int8 => fromInt((sbyte)b[0]),
                    OnnxDataType.UInt8 or OnnxDataType.Bool => fromInt(b[0]),
                    OnnxDataType.Int16 => fromInt(MemoryMarshal.Read<short>(b)),
                    OnnxDataType.UInt16 => fromInt(MemoryMarshal.Read<ushort>(b)),
                    OnnxDataType.Int32 => fromInt(MemoryMarshal.Read<int>(b)),
                    OnnxDataType.UInt32 => fromInt(MemoryMarshal.Read<uint>(b)),
                    OnnxDataType.Int64 => fromInt(MemoryMarshal.Read<long>(b)),
                    OnnxDataType.UInt64 => fromInt((long)MemoryMarshal.Read<ulong>(b)),
                    _ => throw new FormatException($"tensor '{Name}' has unsupported type {DataType}"),
                };
            }
            return r;
        }
        int have = DataType switch
        {
            OnnxDataType.Float => FloatData.Count,
            OnnxDataType.Double => DoubleData.Count,
            OnnxDataType.Int64 => Int64Data.Count,
            OnnxDataType.UInt32 or OnnxDataType.UInt64 => UInt64Data.Count,
            OnnxDataType.String or OnnxDataType.Complex64 or OnnxDataType.Complex128 or OnnxDataType.Undefined =>
                throw new FormatException($"tensor '{Name}' has unsupported type {DataType}"),
            _ => Int32Data.Count,
        };
        if (have != count) throw new FormatException($"tensor '{Name}' has {have} stored values for shape [{string.Join(", ", Dims)}] ({count} elements)");
        for (int i = 0; i < count; i++)
            r[i] = DataType switch
            {
                OnnxDataType.Float => fromFloat(FloatData[i]),
                OnnxDataType.Double => fromFloat((float)DoubleData[i]),
                OnnxDataType.Int64 => fromInt(Int64Data[i]),
                OnnxDataType.UInt32 or OnnxDataType.UInt64 => fromInt((long)UInt64Data[i]),
                OnnxDataType.Float16 => fromFloat((float)BitConverter.UInt16BitsToHalf((ushort)Int32Data[i])),
                OnnxDataType.BFloat16 => fromFloat(BitConverter.Int32BitsToSingle(Int32Data[i] << 16)),
                _ => fromInt(Int32Data[i]),
            };
        return r;
    }

    private static int ElementSize(OnnxDataType t) => t switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 => 8,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        _ => 0,
    };
}

/// <summary>A graph input/output/value_info: name, element type and shape (a dimension is a number, a symbol, or unknown).</summary>
internal sealed class OnnxValueInfoProto
{
    public string Name = "";
    public bool IsTensor;
    public OnnxDataType ElemType;
    public List<(long? Value, string? Param)>? Shape;   // null: rank unknown
}

/// <summary>Reads ONNX protobuf messages from a byte buffer with Google.Protobuf's <see cref="CodedInputStream"/>.</summary>
internal static class OnnxProtoReader
{
    public static OnnxModelProto ReadModel(byte[] buffer)
    {
        var model = new OnnxModelProto();
        var input = new CodedInputStream(buffer);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsVarint(tag): model.IrVersion = input.ReadInt64(); break;
                case 2 when IsDelimited(tag): model.ProducerName = input.ReadString(); break;
                case 3 when IsDelimited(tag): model.ProducerVersion = input.ReadString(); break;
                case 7 when IsDelimited(tag): ReadGraph(Sub(input, buffer), buffer, model.Graph ??= new OnnxGraphProto()); break;
                case 8 when IsDelimited(tag): model.OpsetImports.Add(ReadOpset(Sub(input, buffer))); break;
                case 25 when IsDelimited(tag): model.FunctionCount++; input.SkipLastField(); break;
                default: input.SkipLastField(); break;
            }
        }
        return model;
    }

    /// <summary>The names of the main graph's inputs, read without decoding its nodes or initializers (they are skipped by length).</summary>
    public static List<string> ReadInputNames(byte[] buffer)
    {
        var names = new List<string>();
        var input = new CodedInputStream(buffer);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (Field(tag) != 7 || !IsDelimited(tag)) { input.SkipLastField(); continue; }
            var graph = Sub(input, buffer);
            uint gtag;
            while ((gtag = graph.ReadTag()) != 0)
            {
                if (Field(gtag) != 11 || !IsDelimited(gtag)) { graph.SkipLastField(); continue; }
                var info = Sub(graph, buffer);
                uint itag;
                while ((itag = info.ReadTag()) != 0)
                    if (Field(itag) == 1 && IsDelimited(itag)) names.Add(info.ReadString());
                    else info.SkipLastField();
            }
        }
        return names;
    }

    private static (string, long) ReadOpset(CodedInputStream input)
    {
        string domain = "";
        long version = 0;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsDelimited(tag): domain = input.ReadString(); break;
                case 2 when IsVarint(tag): version = input.ReadInt64(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (domain, version);
    }

    private static void ReadGraph(CodedInputStream input, byte[] buffer, OnnxGraphProto graph)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsDelimited(tag): graph.Nodes.Add(ReadNode(Sub(input, buffer), buffer)); break;
                case 2 when IsDelimited(tag): graph.Name = input.ReadString(); break;
                case 5 when IsDelimited(tag): graph.Initializers.Add(ReadTensor(Sub(input, buffer), buffer)); break;
                case 11 when IsDelimited(tag): graph.Inputs.Add(ReadValueInfo(Sub(input, buffer), buffer)); break;
                case 12 when IsDelimited(tag): graph.Outputs.Add(ReadValueInfo(Sub(input, buffer), buffer)); break;
                case 13 when IsDelimited(tag): graph.ValueInfo.Add(ReadValueInfo(Sub(input, buffer), buffer)); break;
                case 15 when IsDelimited(tag): graph.SparseInitializerCount++; input.SkipLastField(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private static OnnxNodeProto ReadNode(CodedInputStream input, byte[] buffer)
    {
        var node = new OnnxNodeProto();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsDelimited(tag): node.Inputs.Add(input.ReadString()); break;
                case 2 when IsDelimited(tag): node.Outputs.Add(input.ReadString()); break;
                case 3 when IsDelimited(tag): node.Name = input.ReadString(); break;
                case 4 when IsDelimited(tag): node.OpType = input.ReadString(); break;
                case 5 when IsDelimited(tag): node.Attributes.Add(ReadAttribute(Sub(input, buffer), buffer)); break;
                case 7 when IsDelimited(tag): node.Domain = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
        return node;
    }

    private static OnnxAttributeProto ReadAttribute(CodedInputStream input, byte[] buffer)
    {
        var a = new OnnxAttributeProto();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsDelimited(tag): a.Name = input.ReadString(); break;
                case 20 when IsVarint(tag): a.Type = (OnnxAttributeType)input.ReadEnum(); break;
                case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.Fixed32: a.F = input.ReadFloat(); break;
                case 3 when IsVarint(tag): a.I = input.ReadInt64(); break;
                case 4 when IsDelimited(tag): a.S = input.ReadBytes().ToByteArray(); break;
                case 5 when IsDelimited(tag): a.T = ReadTensor(Sub(input, buffer), buffer); break;
                case 6 when IsDelimited(tag): a.GraphCount++; input.SkipLastField(); break;
                case 7: ReadRepeated(input, buffer, tag, a.Floats, s => s.ReadFloat()); break;
                case 8: ReadRepeated(input, buffer, tag, a.Ints, s => s.ReadInt64()); break;
                case 9 when IsDelimited(tag): a.Strings.Add(input.ReadBytes().ToByteArray()); break;
                case 10 when IsDelimited(tag): a.TensorCount++; input.SkipLastField(); break;
                case 11 when IsDelimited(tag): a.GraphCount++; input.SkipLastField(); break;
                default: input.SkipLastField(); break;
            }
        }
        return a;
    }

    private static OnnxTensorProto ReadTensor(CodedInputStream input, byte[] buffer)
    {
        var t = new OnnxTensorProto();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1: ReadRepeated(input, buffer, tag, t.Dims, s => s.ReadInt64()); break;
                case 2 when IsVarint(tag): t.DataType = (OnnxDataType)input.ReadInt32(); break;
                case 3 when IsDelimited(tag): t.Segmented = true; input.SkipLastField(); break;
                case 4: ReadRepeated(input, buffer, tag, t.FloatData, s => s.ReadFloat()); break;
                case 5: ReadRepeated(input, buffer, tag, t.Int32Data, s => s.ReadInt32()); break;
                case 6 when IsDelimited(tag): t.StringCount++; input.SkipLastField(); break;
                case 7: ReadRepeated(input, buffer, tag, t.Int64Data, s => s.ReadInt64()); break;
                case 8 when IsDelimited(tag): t.Name = input.ReadString(); break;
                case 9 when IsDelimited(tag): t.RawData = Payload(input, buffer); t.HasRawData = true; break;
                case 10: ReadRepeated(input, buffer, tag, t.DoubleData, s => s.ReadDouble()); break;
                case 11: ReadRepeated(input, buffer, tag, t.UInt64Data, s => s.ReadUInt64()); break;
                case 13 when IsDelimited(tag): t.External = true; input.SkipLastField(); break;
                case 14 when IsVarint(tag): t.External |= input.ReadEnum() == 1; break;
                default: input.SkipLastField(); break;
            }
        }
        return t;
    }

    private static OnnxValueInfoProto ReadValueInfo(CodedInputStream input, byte[] buffer)
    {
        var v = new OnnxValueInfoProto();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when IsDelimited(tag): v.Name = input.ReadString(); break;
                case 2 when IsDelimited(tag): ReadType(Sub(input, buffer), buffer, v); break;
                default: input.SkipLastField(); break;
            }
        }
        return v;
    }

    // TypeProto: 1 tensor_type { 1 elem_type, 2 shape { 1 dim { 1 dim_value | 2 dim_param } } }; other kinds are skipped.
    private static void ReadType(CodedInputStream input, byte[] buffer, OnnxValueInfoProto v)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (Field(tag) != 1 || !IsDelimited(tag)) { input.SkipLastField(); continue; }
            v.IsTensor = true;
            var tensor = Sub(input, buffer);
            uint t2;
            while ((t2 = tensor.ReadTag()) != 0)
            {
                if (Field(t2) == 1 && IsVarint(t2)) v.ElemType = (OnnxDataType)tensor.ReadInt32();
                else if (Field(t2) == 2 && IsDelimited(t2))
                {
                    v.Shape ??= [];
                    var shape = Sub(tensor, buffer);
                    uint t3;
                    while ((t3 = shape.ReadTag()) != 0)
                    {
                        if (Field(t3) != 1 || !IsDelimited(t3)) { shape.SkipLastField(); continue; }
                        var dim = Sub(shape, buffer);
                        long? value = null;
                        string? param = null;
                        uint t4;
                        while ((t4 = dim.ReadTag()) != 0)
                        {
                            if (Field(t4) == 1 && IsVarint(t4)) value = dim.ReadInt64();
                            else if (Field(t4) == 2 && IsDelimited(t4)) param = dim.ReadString();
                            else dim.SkipLastField();
                        }
                        v.Shape.Add((value, param));
                    }
                }
                else tensor.SkipLastField();
            }
        }
    }

    /// <summary>Values of a repeated scalar field, packed (one length-delimited run) or not (one value per tag).</summary>
    private static void ReadRepeated<T>(CodedInputStream input, byte[] buffer, uint tag, List<T> into, Func<CodedInputStream, T> read)
    {
        if (!IsDelimited(tag)) { into.Add(read(input)); return; }
        var packed = Sub(input, buffer);
        while (!packed.IsAtEnd) into.Add(read(packed));
    }

    /// <summary>
    /// A stream over the length-delimited field whose tag was just read (the outer stream moves past it).
    /// The sub-stream reads from the same buffer, so nested messages are never copied.
    /// </summary>
    private static CodedInputStream Sub(CodedInputStream input, byte[] buffer)
    {
        long start = input.Position;
        input.SkipLastField();
        var sub = new CodedInputStream(buffer, (int)start, (int)(input.Position - start));
        sub.ReadLength();
        return sub;
    }

    /// <summary>The bytes of a length-delimited field, as a slice of the buffer.</summary>
    private static ReadOnlyMemory<byte> Payload(CodedInputStream input, byte[] buffer)
    {
        int start = (int)input.Position;
        input.SkipLastField();
        int end = (int)input.Position, from = start;
        while ((buffer[from++] & 0x80) != 0) { }   // the length varint (SkipLastField has validated it)
        return buffer.AsMemory(from, end - from);
    }

    private static int Field(uint tag) => WireFormat.GetTagFieldNumber(tag);
    private static bool IsVarint(uint tag) => WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint;
    private static bool IsDelimited(uint tag) => WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited;
}
