using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using Whetstone.Tensors;

namespace Whetstone.Models.Formats;

/// <summary>What is wrong with a safetensors file.</summary>
public enum SafeTensorsFault
{
    /// <summary>Shorter than the 8-byte header length.</summary>
    FileTooSmall,
    /// <summary>The declared header length exceeds the 100 MB cap.</summary>
    HeaderTooLarge,
    /// <summary>The declared header runs past the end of the file.</summary>
    TruncatedFile,
    /// <summary>The header is not a UTF-8 JSON object.</summary>
    InvalidHeader,
    /// <summary>A tensor entry lacks a field or has one of the wrong type.</summary>
    InvalidEntry,
    UnknownDType,
    /// <summary>A shape has a negative, fractional or too large dimension.</summary>
    InvalidShape,
    /// <summary><c>data_offsets</c> is not two integers with begin ≤ end.</summary>
    InvalidOffsets,
    /// <summary>A tensor's bytes lie outside the data buffer.</summary>
    OffsetsOutOfBounds,
    /// <summary>end − begin differs from product(shape) × dtype size.</summary>
    SizeMismatch,
    OverlappingTensors,
    /// <summary>Bytes between tensors that no tensor owns (the format forbids gaps).</summary>
    HoleInData,
    /// <summary>Bytes after the last tensor (the reference implementation rejects these too).</summary>
    TrailingBytes,
    DuplicateKey,
    /// <summary><c>__metadata__</c> is not a string → string map.</summary>
    InvalidMetadata,
}

/// <summary>A malformed safetensors file: names the file and the fault. Nothing of the file is loaded.</summary>
public sealed class SafeTensorsFormatException(string path, SafeTensorsFault fault, string detail)
    : IOException($"{path}: {fault}: {detail}")
{
    public string FilePath { get; } = path;
    public SafeTensorsFault Fault { get; } = fault;
}

/// <summary>One tensor's header entry; offsets are relative to the data buffer after the header.</summary>
public sealed record SafeTensorInfo(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// A safetensors file, memory-mapped and validated as a whole when opened (format: 8-byte little-endian header
/// length N, N bytes of UTF-8 JSON, then the data buffer that the tensors tile exactly, in any order, with no gaps
/// or overlaps). Tensors are read lazily by name and converted to float32.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (as the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _entries;
    private bool _disposed;

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in the order of their data.</summary>
    public IReadOnlyList<string> Names { get; }

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, long dataStart,
        Dictionary<string, SafeTensorInfo> entries, IReadOnlyList<string> names, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path; _map = map; _view = view; _base = basePtr; _dataStart = dataStart;
        _entries = entries; Names = names; Metadata = metadata;
    }

    public static SafeTensorsFile Open(string path)
    {
        long length = new FileInfo(path).Length;   // FileNotFoundException names the path
        if (length < 8) throw new SafeTensorsFormatException(path, SafeTensorsFault.FileTooSmall, $"{length} bytes; a safetensors file starts with an 8-byte header length.");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            var (entries, names, metadata, dataStart) = ParseHeader(path, new ReadOnlySpan<byte>(p, (int)Math.Min(length, int.MaxValue)), length);
            return new SafeTensorsFile(path, map, view, p, dataStart, entries, names, metadata);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, List<string>, Dictionary<string, string>, long) ParseHeader(string path, ReadOnlySpan<byte> file, long length)
    {
        ulong n = BitConverter.ToUInt64(file[..8]);
        if (n > MaxHeaderBytes) throw new SafeTensorsFormatException(path, SafeTensorsFault.HeaderTooLarge, $"header length {n} exceeds {MaxHeaderBytes} bytes.");
        if ((long)n > length - 8) throw new SafeTensorsFormatException(path, SafeTensorsFault.TruncatedFile, $"header of {n} bytes but only {length - 8} bytes follow the length field.");
        var headerBytes = file.Slice(8, (int)n);
        long dataStart = 8 + (long)n, dataLength = length - dataStart;

        JsonDocument doc;
        try
        {
            if (headerBytes.Length == 0 || headerBytes[0] != (byte)'{') throw new JsonException("the header must start with '{'");
            doc = JsonDocument.Parse(headerBytes.ToArray());
        }
        catch (Exception e) when (e is JsonException or ArgumentException or DecoderFallbackException)
        {
            throw new SafeTensorsFormatException(path, SafeTensorsFault.InvalidHeader, $"header is not a UTF-8 JSON object ({e.Message}).");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, SafeTensorsFault.InvalidHeader, "header is not a JSON object.");
            var entries = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata) throw new SafeTensorsFormatException(path, SafeTensorsFault.DuplicateKey, "'__metadata__' appears twice.");
                    sawMetadata = true;
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, SafeTensorsFault.InvalidMetadata, "'__metadata__' must be an object of strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new SafeTensorsFormatException(path, SafeTensorsFault.InvalidMetadata, $"metadata '{m.Name}' is {m.Value.ValueKind}, not a string.");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw new SafeTensorsFormatException(path, SafeTensorsFault.DuplicateKey, $"metadata key '{m.Name}' appears twice.");
                    }
                    continue;
                }
                var info = ParseEntry(path, prop.Name, prop.Value, dataLength);
                if (!entries.TryAdd(prop.Name, info)) throw new SafeTensorsFormatException(path, SafeTensorsFault.DuplicateKey, $"tensor '{prop.Name}' appears twice.");
            }

            // The tensors must tile the data buffer exactly: sorted by offset, each begins where the previous ended.
            var ordered = entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
            long at = 0;
            string? previous = null;
            foreach (var e in ordered)
            {
                if (e.Begin < at) throw new SafeTensorsFormatException(path, SafeTensorsFault.OverlappingTensors, $"'{e.Name}' [{e.Begin}, {e.End}) overlaps '{previous}' which ends at {at}.");
                if (e.Begin > at) throw new SafeTensorsFormatException(path, SafeTensorsFault.HoleInData, $"bytes [{at}, {e.Begin}) before '{e.Name}' belong to no tensor.");
                at = e.End;
                previous = e.Name;
            }
            if (at != dataLength) throw new SafeTensorsFormatException(path, SafeTensorsFault.TrailingBytes, $"the tensors end at byte {at} of a {dataLength}-byte data buffer.");
            return (entries, ordered.Select(e => e.Name).ToList(), metadata, dataStart);
        }
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        SafeTensorsFormatException Bad(SafeTensorsFault f, string why) => new(path, f, $"tensor '{name}': {why}");
        if (e.ValueKind != JsonValueKind.Object) throw Bad(SafeTensorsFault.InvalidEntry, "entry is not an object.");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad(SafeTensorsFault.InvalidEntry, "missing string 'dtype'.");
        if (!DTypes.TryParse(dt.GetString()!, out var dtype)) throw Bad(SafeTensorsFault.UnknownDType, $"dtype '{dt.GetString()}' is not supported (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL).");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad(SafeTensorsFault.InvalidEntry, "missing array 'shape'.");
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array) throw Bad(SafeTensorsFault.InvalidEntry, "missing array 'data_offsets'.");
        var shape = new int[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || v > int.MaxValue) throw Bad(SafeTensorsFault.InvalidShape, $"dimension {i} is {d.GetRawText()}, not a non-negative integer.");
            shape[i++] = (int)v;
            count = v == 0 ? 0 : count > int.MaxValue / v ? long.MaxValue : count * v;
        }
        if (count > int.MaxValue) throw Bad(SafeTensorsFault.InvalidShape, $"shape {Shapes.Format(shape)} has more elements than a tensor can hold.");
        if (off.GetArrayLength() != 2) throw Bad(SafeTensorsFault.InvalidOffsets, $"data_offsets has {off.GetArrayLength()} values, expected [begin, end].");
        var o = off.EnumerateArray().ToArray();
        if (!o[0].TryGetInt64(out long begin) || !o[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad(SafeTensorsFault.InvalidOffsets, $"data_offsets {off.GetRawText()} is not [begin, end] with 0 ≤ begin ≤ end.");
        if (end > dataLength) throw Bad(SafeTensorsFault.OffsetsOutOfBounds, $"data_offsets [{begin}, {end}) exceed the {dataLength}-byte data buffer (truncated file?).");
        if (end - begin != count * dtype.Size()) throw Bad(SafeTensorsFault.SizeMismatch, $"{end - begin} bytes for shape {Shapes.Format(shape)} of {dtype.Name()} ({count * dtype.Size()} expected).");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafeTensorInfo Info(string name) =>
        _entries.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>The tensor's raw little-endian bytes, straight from the mapped file (valid until Dispose).</summary>
    public ReadOnlySpan<byte> RawBytes(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = Info(name);
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Begin, checked((int)info.ByteLength));
    }

    /// <summary>Reads a tensor as float32 into persistent memory (outside any scope).</summary>
    public Tensor Read(string name)
    {
        var info = Info(name);
        var t = Tensor.Persistent(info.Shape);
        t.Name = name;
        DTypes.ToFloat32(RawBytes(name), info.DType, t.Span);
        return t;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}

/// <summary>Whole-file load and atomic save.</summary>
public static class SafeTensors
{
    /// <summary>Every tensor of the file as float32, by name.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.Names.ToDictionary(n => n, f.Read, StringComparer.Ordinal);
    }

    /// <summary>
    /// Writes tensors (converted to <paramref name="dtype"/>: F32, F16 or BF16) with optional string metadata.
    /// Data is laid out largest dtype first, then by name, as the reference writer does; the header is padded with
    /// spaces to a multiple of 8 bytes. The file is written to a temporary file beside the target and renamed, so a
    /// crash never leaves a half-written checkpoint.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null, DType dtype = DType.F32)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16)) throw new ArgumentException($"Saving as {dtype.Name()} is not supported; use F32, F16 or BF16.");
        var items = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var dup = items.GroupBy(kv => kv.Key).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"Tensor name '{dup.Key}' appears twice.");
        if (items.Any(kv => kv.Key == "__metadata__")) throw new ArgumentException("'__metadata__' is reserved.");

        using var header = Header(items.Select(kv => (kv.Key, kv.Value.Shape.ToArray(), dtype)), metadata);

        var full = System.IO.Path.GetFullPath(path);
        var tmp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                header.CopyTo(fs);
                var buffer = new byte[1 << 20];
                foreach (var (_, t) in items)
                {
                    var data = t.IsContiguous ? t.Span : t.ToArray();
                    int perChunk = buffer.Length / dtype.Size();
                    for (int s = 0; s < data.Length; s += perChunk)
                    {
                        int n = Math.Min(perChunk, data.Length - s);
                        var dst = buffer.AsSpan(0, n * dtype.Size());
                        DTypes.FromFloat32(data.Slice(s, n), dtype, dst);
                        fs.Write(dst);
                    }
                }
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// The start of a safetensors file for tensors of the given names, shapes and dtypes, laid out in that order: the
    /// 8-byte little-endian header length, then the JSON header (metadata first) padded with spaces to a multiple of 8.
    /// Positioned at 0, ready to copy to the file before the tensors' bytes.
    /// </summary>
    public static MemoryStream Header(IEnumerable<(string Name, int[] Shape, DType DType)> items, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, shape, dtype) in items)
            {
                long bytes = Shapes.Size(shape) * (long)dtype.Size();
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.Name());
                w.WriteStartArray("shape");
                foreach (int d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        while (json.Length % 8 != 0) json.WriteByte((byte)' ');
        var result = new MemoryStream((int)json.Length + 8);
        Span<byte> len = stackalloc byte[8];
        BitConverter.TryWriteBytes(len, (ulong)json.Length);
        result.Write(len);
        json.Position = 0;
        json.CopyTo(result);
        result.Position = 0;
        return result;
    }
}
