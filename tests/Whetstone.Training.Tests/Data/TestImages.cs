using System.Buffers.Binary;
using System.IO.Compression;
using Whetstone.Tensors;

namespace Whetstone.Training.Tests.Data;

/// <summary>Writes small images for the tests: 24-bit BMP and uncompressed-filter PNG (grey, RGB, RGBA).</summary>
internal static class TestImages
{
    /// <summary>A 24-bit BMP of <paramref name="rgb"/> (HWC, 3 channels), rows bottom-up and padded to 4 bytes.</summary>
    public static void WriteBmp(string path, int h, int w, byte[] rgb)
    {
        int rowBytes = (w * 3 + 3) & ~3, size = 54 + rowBytes * h;
        var f = new byte[size];
        f[0] = (byte)'B'; f[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(f.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(f.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(f.AsSpan(34), rowBytes * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int src = (y * w + x) * 3, dst = 54 + (h - 1 - y) * rowBytes + x * 3;
                f[dst] = rgb[src + 2]; f[dst + 1] = rgb[src + 1]; f[dst + 2] = rgb[src];   // BGR
            }
        File.WriteAllBytes(path, f);
    }

    /// <summary>A PNG of <paramref name="pixels"/> (HWC; 1 = grey, 3 = RGB, 4 = RGBA), filter 0 on every row.</summary>
    public static void WritePng(string path, int h, int w, int channels, byte[] pixels)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = 8;
        ihdr[9] = channels switch { 1 => 0, 3 => 2, 4 => 6, _ => throw new ArgumentException("channels") };
        Chunk(ms, "IHDR", ihdr);
        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
                for (int y = 0; y < h; y++)
                {
                    z.WriteByte(0);
                    z.Write(pixels, y * w * channels, w * channels);
                }
            Chunk(ms, "IDAT", raw.ToArray());
        }
        Chunk(ms, "IEND", []);
        File.WriteAllBytes(path, ms.ToArray());
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        var typed = new byte[4 + data.Length];
        for (int i = 0; i < 4; i++) typed[i] = (byte)type[i];
        data.CopyTo(typed, 4);
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
        s.Write(word);
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>class "h": horizontal stripes, class "v": vertical stripes; period and phase vary by image.</summary>
    public static string Stripes(TempDir dir, string name, int perClass, int seed)
    {
        var rng = new Rng((ulong)seed);
        foreach (var label in new[] { "h", "v" })
            for (int i = 0; i < perClass; i++)
            {
                int h = 40, w = 56, period = 4 + (int)(rng.NextDouble() * 6), phase = (int)(rng.NextDouble() * 10);
                var px = new byte[h * w * 3];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int t = label == "h" ? y : x;
                        byte v = (byte)(((t + phase) / period % 2 == 0 ? 200 : 40) + (int)(rng.NextDouble() * 30));
                        px[(y * w + x) * 3] = px[(y * w + x) * 3 + 1] = px[(y * w + x) * 3 + 2] = v;
                    }
                WritePng(dir.File(name, label, $"{i:D2}.png"), h, w, 3, px);
            }
        return System.IO.Path.Combine(dir.Path, name);
    }

    /// <summary>Deterministic pixel values for an image.</summary>
    public static byte[] Pattern(int h, int w, int c, int seed) =>
        Enumerable.Range(0, h * w * c).Select(i => (byte)((i * 37 + seed * 11) % 256)).ToArray();
}

/// <summary>A temporary folder deleted at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("whet-data-").FullName;

    public string File(params string[] parts)
    {
        string p = System.IO.Path.Combine([Path, .. parts]);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        return p;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
