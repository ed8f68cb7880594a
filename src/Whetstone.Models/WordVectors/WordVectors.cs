using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Whetstone.Models.WordVectors;

/// <summary>A word-vector file that cannot be read as it claims: names the file and what is wrong.</summary>
public sealed class WordVectorsFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Pre-trained word vectors (GloVe in wink-embeddings' JSON layout:
/// <c>{dimensions, words: [...], vectors: {word: [d floats, l2norm, index]}, unkVector}</c>) as one table of rows:
/// row 0 is padding (zeros), row 1 the unknown-word vector, row i + 2 word i. The JSON is parsed once and written to
/// a binary cache next to it (<c>NAME.json.whetvec</c>; elsewhere when that folder is read-only), which later loads read
/// directly. <see cref="Sha256"/> is the SHA-256 of the source JSON: bundles refer to the vectors by it.
/// </summary>
public sealed class WordVectors
{
    public const int PadId = 0;
    public const int UnkId = 1;
    private const string Magic = "WHETVEC1";

    private readonly Dictionary<string, int> _index;

    /// <summary>The words, in the file's order (word i is row i + 2).</summary>
    public IReadOnlyList<string> Words { get; }
    public int Dim { get; }
    /// <summary>Rows × <see cref="Dim"/>, row-major: padding, unknown, then the words.</summary>
    public float[] Table { get; }
    public string Sha256 { get; }
    /// <summary>Where the vectors were read from (the JSON, or the binary cache), and how long it took.</summary>
    public string LoadedFrom { get; private init; } = "";
    public double LoadSeconds { get; private init; }

    public int Rows => Words.Count + 2;

    public WordVectors(IReadOnlyList<string> words, int dim, float[] table, string sha256)
    {
        ArgumentNullException.ThrowIfNull(words);
        ArgumentNullException.ThrowIfNull(table);
        if (table.Length != (long)(words.Count + 2) * dim) throw new ArgumentException($"The table has {table.Length} values; {words.Count + 2} rows × {dim} expected.", nameof(table));
        Words = words;
        Dim = dim;
        Table = table;
        Sha256 = sha256;
        _index = new Dictionary<string, int>(words.Count, StringComparer.Ordinal);
        for (int i = 0; i < words.Count; i++) _index.TryAdd(words[i], i + 2);
    }

    /// <summary>The row of <paramref name="word"/> (exact), or <see cref="UnkId"/>.</summary>
    public int Id(string word) => _index.TryGetValue(word, out int id) ? id : UnkId;

    public bool Contains(string word) => _index.ContainsKey(word);

    public ReadOnlySpan<float> Row(int id) => Table.AsSpan(id * Dim, Dim);

    /// <summary>The binary cache used for <paramref name="jsonPath"/> when none is given: next to it.</summary>
    public static string DefaultCachePath(string jsonPath) => jsonPath + ".whetvec";

    /// <summary>
    /// Loads <paramref name="path"/>: a wink JSON (through its binary cache, written on the first load) or a
    /// <c>.whetvec</c> cache itself. <paramref name="cachePath"/> overrides where the cache lives;
    /// <paramref name="fallbackCacheDir"/> is used when the JSON's folder cannot be written.
    /// </summary>
    public static WordVectors Load(string path, string? cachePath = null, string? fallbackCacheDir = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Word-vector file '{path}' does not exist.");
        var clock = Stopwatch.StartNew();
        if (path.EndsWith(".whetvec", StringComparison.Ordinal)) return ReadCache(path, null, clock) ?? throw new WordVectorsFormatException($"{path}: not a whetvec cache.");
        var source = new FileInfo(path);
        var candidates = new List<string> { cachePath ?? DefaultCachePath(path) };
        if (fallbackCacheDir is not null) candidates.Add(Path.Combine(fallbackCacheDir, $"{Path.GetFileName(path)}.{source.Length}.whetvec"));
        foreach (var c in candidates)
            if (File.Exists(c) && ReadCache(c, source, clock) is { } cached) return cached;
        var parsed = ParseJson(path);
        foreach (var c in candidates)
        {
            try { WriteCache(c, parsed, source); break; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return new WordVectors(parsed.Words, parsed.Dim, parsed.Table, parsed.Sha256) { LoadedFrom = path, LoadSeconds = clock.Elapsed.TotalSeconds };
    }

    // ---------------------------------------------------------------- JSON (wink layout)

    private static WordVectors ParseJson(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        string sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 8 });
        int dim = -1;
        List<string>? words = null;
        float[]? unk = null;
        // vectors may come before words; keep them by name until both are known
        var byWord = new Dictionary<string, float[]>(StringComparer.Ordinal);
        try
        {
            Expect(reader.Read() && reader.TokenType == JsonTokenType.StartObject, "expected a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = reader.GetString();
                reader.Read();
                switch (key)
                {
                    case "dimensions": dim = reader.GetInt32(); break;
                    case "words":
                        Expect(reader.TokenType == JsonTokenType.StartArray, "'words' must be an array");
                        words = [];
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) words.Add(reader.GetString() ?? "");
                        break;
                    case "vectors":
                        Expect(reader.TokenType == JsonTokenType.StartObject, "'vectors' must be an object");
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var word = reader.GetString() ?? "";
                            reader.Read();
                            byWord[word] = Numbers(ref reader);
                        }
                        break;
                    case "unkVector": unk = Numbers(ref reader); break;
                    default: reader.Skip(); break;
                }
            }
        }
        catch (JsonException e) { throw new WordVectorsFormatException($"{path}: not valid JSON: {e.Message}", e); }
        catch (InvalidOperationException e) { throw new WordVectorsFormatException($"{path} (byte {reader.TokenStartIndex}): unexpected value: {e.Message}", e); }
        if (words is null) throw new WordVectorsFormatException($"{path}: no 'words' list (expected the wink-embeddings layout {{dimensions, words, vectors, unkVector}}).");
        if (dim <= 0) dim = byWord.Count > 0 ? byWord.Values.First().Length - 2 : throw new WordVectorsFormatException($"{path}: no 'dimensions' and no vectors.");
        var table = new float[(long)(words.Count + 2) * dim];
        for (int i = 0; i < words.Count; i++)
        {
            if (!byWord.TryGetValue(words[i], out var v)) throw new WordVectorsFormatException($"{path}: word {i} '{words[i]}' has no entry in 'vectors'.");
            if (v.Length < dim) throw new WordVectorsFormatException($"{path}: the vector of '{words[i]}' has {v.Length} numbers; at least {dim} expected.");
            v.AsSpan(0, dim).CopyTo(table.AsSpan((i + 2) * dim, dim));
        }
        if (unk is not null) unk.AsSpan(0, Math.Min(dim, unk.Length)).CopyTo(table.AsSpan(UnkId * dim, dim));
        return new WordVectors(words, dim, table, sha);

        void Expect(bool ok, string what) { if (!ok) throw new InvalidOperationException(what); }
    }

    private static float[] Numbers(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw new InvalidOperationException("expected an array of numbers");
        var list = new List<float>(104);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) list.Add(reader.GetSingle());
        return list.ToArray();
    }

    // ---------------------------------------------------------------- binary cache
    // "WHETVEC1", source size (i64), source mtime ticks (i64), dim (i32), words (i32), sha256 (32 bytes),
    // words (u16 byte length + UTF-8 each), then the table (rows × dim float32, little-endian).

    private static void WriteCache(string path, WordVectors v, FileInfo? source)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = path + $".{Environment.ProcessId}.tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        using (var w = new BinaryWriter(fs, Encoding.UTF8))
        {
            w.Write(Encoding.ASCII.GetBytes(Magic));
            w.Write(source?.Length ?? -1L);
            w.Write(source?.LastWriteTimeUtc.Ticks ?? -1L);
            w.Write(v.Dim);
            w.Write(v.Words.Count);
            w.Write(Convert.FromHexString(v.Sha256));
            foreach (var word in v.Words)
            {
                var b = Encoding.UTF8.GetBytes(word);
                w.Write((ushort)b.Length);
                w.Write(b);
            }
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian");
            w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.Table.AsSpan()));
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Writes <paramref name="vectors"/> as a stand-alone cache file (no source to check against).</summary>
    public static void SaveCache(string path, WordVectors vectors) => WriteCache(path, vectors, null);

    private static WordVectors? ReadCache(string path, FileInfo? source, Stopwatch clock)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        using var r = new BinaryReader(fs, Encoding.UTF8);
        if (fs.Length < 60 || Encoding.ASCII.GetString(r.ReadBytes(8)) != Magic) return null;
        long size = r.ReadInt64(), ticks = r.ReadInt64();
        if (source is not null && (size != source.Length || ticks != source.LastWriteTimeUtc.Ticks)) return null;   // stale
        int dim = r.ReadInt32(), count = r.ReadInt32();
        string sha = Convert.ToHexStringLower(r.ReadBytes(32));
        var words = new string[count];
        var buf = new byte[ushort.MaxValue];
        for (int i = 0; i < count; i++)
        {
            int n = r.ReadUInt16();
            r.BaseStream.ReadExactly(buf, 0, n);
            words[i] = Encoding.UTF8.GetString(buf, 0, n);
        }
        var table = new float[(long)(count + 2) * dim];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(table.AsSpan());
        if (fs.Length - fs.Position != bytes.Length) throw new WordVectorsFormatException($"{path}: truncated ({fs.Length - fs.Position} table bytes, {bytes.Length} expected); delete it to rebuild.");
        fs.ReadExactly(bytes);
        return new WordVectors(words, dim, table, sha) { LoadedFrom = path, LoadSeconds = clock.Elapsed.TotalSeconds };
    }
}
