using System.Text;
using Whetstone.Models.Formats;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static Tensor T(int[] shape, float start = 0.5f)
    {
        var t = Tensor.Persistent(shape);
        for (int i = 0; i < t.Size; i++) t.Span[i] = start + i * 0.25f - (i % 3);
        return t;
    }

    [Fact]
    public void RoundTripKeepsValuesShapesAndMetadata()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["encoder.layer.0.weight"] = T([13, 7]),
            ["b"] = T([37]),
            ["scalar"] = T([]),
            ["empty"] = T([0, 4]),
            ["cube"] = T([2, 3, 5], -1),
        };
        var path = PathOf("m.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcödé" });
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal("ünïcödé", f.Metadata["note"]);
        Assert.Equal(tensors.Keys.Order(), f.Names.Order());
        foreach (var (name, t) in tensors)
        {
            var r = f.Read(name);
            Assert.Equal(t.Shape.ToArray(), r.Shape.ToArray());
            Assert.Equal(t.ToArray(), r.ToArray());
        }
        Assert.Equal(DType.F32, f.Info("b").DType);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void HeaderIsPaddedToEightBytes()
    {
        var path = PathOf("pad.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = T([3]) });
        var bytes = File.ReadAllBytes(path);
        ulong n = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0UL, n % 8);
        Assert.Equal(8 + (long)n + 12, bytes.Length);
    }

    [Theory]
    [InlineData(DType.F16, 1e-3)]
    [InlineData(DType.BF16, 8e-3)]
    public void HalfPrecisionRoundTripsWithinRounding(DType dtype, double relTol)
    {
        var t = Tensor.From([1f, -2.5f, 3.14159f, 1e-3f, 65504f, 0f, -0.1f], 7);
        var path = PathOf($"h{dtype}.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["t"] = t }, dtype: dtype);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(dtype, f.Info("t").DType);
        var r = f.Read("t").ToArray();
        var want = t.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(r[i] - want[i]) <= relTol * Math.Abs(want[i]), $"{dtype}[{i}]: {r[i]} vs {want[i]}");
    }

    [Fact]
    public void Bf16RoundsToNearestEven()
    {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even mantissa, 1.
        // 1 + 3·2^-8 lies between 1 + 2^-7 and 1 + 2^-6: ties to even gives 1 + 2^-6.
        var src = new[] { 1f + 1f / 256, 1f + 3f / 256, 1f + 1.1f / 256 };
        var bytes = new byte[6];
        DTypes.FromFloat32(src, DType.BF16, bytes);
        var back = new float[3];
        DTypes.ToFloat32(bytes, DType.BF16, back);
        Assert.Equal([1f, 1f + 1f / 64, 1f + 1f / 128], back);
    }

    /// <summary>Bytes laid out by hand from the spec, as PyTorch's safetensors writes them.</summary>
    private static byte[] HandMade(string header, params byte[][] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes((ulong)h.Length));
        ms.Write(h);
        foreach (var d in data) ms.Write(d);
        return ms.ToArray();
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void ReadsAHandWrittenFileWithMixedDTypes()
    {
        var i64 = new long[] { 7, -3 }.SelectMany(BitConverter.GetBytes).ToArray();
        var f16 = new[] { (Half)1.5f, (Half)(-2f) }.SelectMany(h => BitConverter.GetBytes(h)).ToArray();
        var bytes = HandMade(
            """{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"ids":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},"h":{"dtype":"F16","shape":[2],"data_offsets":[32,36]}}""",
            Floats(1, 2, 3, 4), i64, f16);
        var path = PathOf("hand.safetensors");
        File.WriteAllBytes(path, bytes);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal([1f, 2, 3, 4], f.Read("w").ToArray());
        Assert.Equal([7f, -3], f.Read("ids").ToArray());
        Assert.Equal([1.5f, -2f], f.Read("h").ToArray());
        Assert.Equal(["w", "ids", "h"], f.Names);
    }

    public static TheoryData<string, SafeTensorsFault> Corruptions => new()
    {
        { "short", SafeTensorsFault.FileTooSmall },
        { "huge-header", SafeTensorsFault.HeaderTooLarge },
        { "truncated-header", SafeTensorsFault.TruncatedFile },
        { "not-json", SafeTensorsFault.InvalidHeader },
        { "json-array", SafeTensorsFault.InvalidHeader },
        { "bad-utf8", SafeTensorsFault.InvalidHeader },
        { "missing-dtype", SafeTensorsFault.InvalidEntry },
        { "unknown-dtype", SafeTensorsFault.UnknownDType },
        { "negative-dim", SafeTensorsFault.InvalidShape },
        { "fraction-dim", SafeTensorsFault.InvalidShape },
        { "three-offsets", SafeTensorsFault.InvalidOffsets },
        { "reversed-offsets", SafeTensorsFault.InvalidOffsets },
        { "out-of-bounds", SafeTensorsFault.OffsetsOutOfBounds },
        { "truncated-data", SafeTensorsFault.OffsetsOutOfBounds },
        { "size-mismatch", SafeTensorsFault.SizeMismatch },
        { "overlap", SafeTensorsFault.OverlappingTensors },
        { "hole", SafeTensorsFault.HoleInData },
        { "trailing", SafeTensorsFault.TrailingBytes },
        { "duplicate", SafeTensorsFault.DuplicateKey },
        { "metadata-number", SafeTensorsFault.InvalidMetadata },
    };

    private static byte[] Corrupt(string kind)
    {
        const string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        const string b = "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}";
        var data = Floats(1, 2, 3);
        return kind switch
        {
            "short" => [1, 2, 3],
            "huge-header" => [.. BitConverter.GetBytes(200_000_000UL), .. new byte[16]],
            "truncated-header" => [.. BitConverter.GetBytes(64UL), .. Encoding.UTF8.GetBytes("{\"a\":")],
            "not-json" => HandMade("{\"a\": nope}", data),
            "json-array" => HandMade("[1,2]   ", data),
            "bad-utf8" => [.. BitConverter.GetBytes(4UL), (byte)'{', 0xC3, 0x28, (byte)'}'],
            "missing-dtype" => HandMade("{\"a\":{\"shape\":[3],\"data_offsets\":[0,12]}}", data),
            "unknown-dtype" => HandMade("{\"a\":{\"dtype\":\"F8\",\"shape\":[12],\"data_offsets\":[0,12]}}", data),
            "negative-dim" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", data),
            "fraction-dim" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,12]}}", data),
            "three-offsets" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,6,12]}}", data),
            "reversed-offsets" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,0]}}", data),
            "out-of-bounds" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", data),
            "truncated-data" => HandMade("{" + a + "," + b + "}", Floats(1, 2)),
            "size-mismatch" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", data),
            "overlap" => HandMade("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data),
            "hole" => HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," + b + "}", data),
            "trailing" => HandMade("{" + a + "}", data),
            "duplicate" => HandMade("{" + a + "," + a.Replace("[0,8]", "[8,16]") + "}", Floats(1, 2, 3, 4)),
            "metadata-number" => HandMade("{\"__metadata__\":{\"epoch\":3}," + a + "," + b + "}", data),
            _ => throw new ArgumentException(kind),
        };
    }

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void CorruptFilesAreRejectedWithTheirFault(string kind, SafeTensorsFault fault)
    {
        var path = PathOf($"{kind}.safetensors");
        File.WriteAllBytes(path, Corrupt(kind));
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Equal(fault, e.Fault);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void TheValidTwinOfTheCorpusLoads()
    {
        var path = PathOf("valid.safetensors");
        File.WriteAllBytes(path, HandMadeValid());
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal([1f, 2], f.Read("a").ToArray());
        Assert.Equal([3f], f.Read("b").ToArray());

        static byte[] HandMadeValid() => HandMade(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
            Floats(1, 2, 3));
    }

    [Fact]
    public void UnknownTensorNameIsAClearError()
    {
        var path = PathOf("k.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = T([2]) });
        using var f = SafeTensorsFile.Open(path);
        var e = Assert.Throws<KeyNotFoundException>(() => f.Read("y"));
        Assert.Contains("'y'", e.Message);
    }
}
