using System.Buffers.Binary;
using System.IO.Compression;

namespace Whetstone.Training.Data;

/// <summary>
/// IDX files, the MNIST / Fashion-MNIST format: a big-endian header (two zero bytes, a type byte — 0x08 for
/// unsigned bytes — the number of dimensions, then each dimension as an int32) followed by the data.
/// Images are <c>idx3-ubyte</c> (N, rows, cols), labels <c>idx1-ubyte</c> (N). Files may be gzip-compressed
/// (detected from the content, not the name). Loading reads both files whole: Fashion-MNIST's 60,000 training
/// images are 47 MB and load in a fraction of a second.
/// </summary>
public static class Idx
{
    /// <summary>Fashion-MNIST's label names, in label-index order.</summary>
    public static IReadOnlyList<string> FashionMnistLabels { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private const byte UnsignedByte = 0x08;

    /// <summary>
    /// Loads an image file and its label file. <paramref name="labelNames"/> names the label indices; null names
    /// them "0", "1", … up to the largest label present.
    /// </summary>
    public static ImageDataset Load(string imagesPath, string labelsPath, IReadOnlyList<string>? labelNames = null)
    {
        var (imageDims, pixels) = Read(imagesPath, 3, "images (idx3-ubyte: count, rows, cols)");
        var (labelDims, labelBytes) = Read(labelsPath, 1, "labels (idx1-ubyte: count)");
        if (imageDims[0] != labelDims[0])
            throw new DataException($"IDX label file '{labelsPath}' has {labelDims[0]} labels but image file '{imagesPath}' has {imageDims[0]} images.");
        var labels = new int[labelBytes.Length];
        int max = -1;
        for (int i = 0; i < labels.Length; i++) max = Math.Max(max, labels[i] = labelBytes[i]);
        var names = labelNames ?? Enumerable.Range(0, max + 1).Select(i => i.ToString()).ToArray();
        if (max >= names.Count)
        {
            int at = Array.FindIndex(labels, l => l >= names.Count);
            throw new DataException($"IDX label file '{labelsPath}': label {labels[at]} of example {at} is outside the {names.Count} label names.");
        }
        return ImageDataset.FromPixels(pixels, imageDims[0], imageDims[1], imageDims[2], 1, labels, names, Path.GetFileName(imagesPath));
    }

    /// <summary>
    /// Fashion-MNIST from a folder holding <c>train-images-idx3-ubyte.gz</c>, <c>train-labels-idx1-ubyte.gz</c>,
    /// <c>t10k-images-idx3-ubyte.gz</c>, <c>t10k-labels-idx1-ubyte.gz</c> (or the same names without <c>.gz</c>).
    /// </summary>
    public static ImageDataset FashionMnist(string dir, bool train) => Folder(dir, train, FashionMnistLabels);

    /// <summary>MNIST digits from a folder with the standard file names (see <see cref="FashionMnist"/>); labels "0"…"9".</summary>
    public static ImageDataset Mnist(string dir, bool train) => Folder(dir, train, DigitLabels);

    /// <summary>"0" … "9", the class names of MNIST-style digit sets.</summary>
    public static IReadOnlyList<string> DigitLabels { get; } = Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>
    /// The training (<c>train-…</c>) or test (<c>t10k-…</c>, or <c>test-…</c>) images and labels of a folder with the
    /// MNIST file names, each optionally gzipped.
    /// </summary>
    public static ImageDataset Folder(string dir, bool train, IReadOnlyList<string> names)
    {
        if (File.Exists(dir)) throw new DataException($"For IDX data give the folder that holds the IDX files; '{dir}' is a file.");
        string[] prefixes = train ? ["train"] : ["t10k", "test"];
        return Load(Find(dir, prefixes, "images-idx3-ubyte"), Find(dir, prefixes, "labels-idx1-ubyte"), names);
    }

    private static string Find(string dir, string[] prefixes, string kind)
    {
        foreach (var prefix in prefixes)
            foreach (var candidate in new[] { $"{prefix}-{kind}.gz", $"{prefix}-{kind}" })
            {
                string p = Path.Combine(dir, candidate);
                if (File.Exists(p)) return p;
            }
        throw new DataException($"IDX file '{Path.Combine(dir, $"{prefixes[0]}-{kind}.gz")}' does not exist (nor without .gz).");
    }

    /// <summary>Reads an unsigned-byte IDX file with <paramref name="rank"/> dimensions: its dimensions and data.</summary>
    internal static (int[] Dims, byte[] Data) Read(string path, int rank, string expected)
    {
        if (!File.Exists(path)) throw new DataException($"IDX file '{path}' does not exist; expected {expected}.");
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        int got = file.ReadAtLeast(head[..2], 2, throwOnEndOfStream: false);
        file.Position = 0;
        using Stream s = got == 2 && head[0] == 0x1f && head[1] == 0x8b ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            s.ReadExactly(head);
            if (head[0] != 0 || head[1] != 0 || head[2] != UnsignedByte || head[3] != rank)
                throw new DataException($"IDX file '{path}': magic number 0x{BinaryPrimitives.ReadInt32BigEndian(head):X8} is not 0x{0x0800 + rank:X8}; expected {expected}.");
            var dims = new int[rank];
            long size = 1;
            for (int d = 0; d < rank; d++)
            {
                s.ReadExactly(head);
                dims[d] = BinaryPrimitives.ReadInt32BigEndian(head);
                if (dims[d] < 0 || (d > 0 && dims[d] == 0)) throw new DataException($"IDX file '{path}': dimension {d} is {dims[d]}; expected {expected}.");
                size *= dims[d];
            }
            if (size > Array.MaxLength) throw new DataException($"IDX file '{path}': {size} bytes of data is more than one array holds.");
            var data = GC.AllocateUninitializedArray<byte>((int)size);
            int read = s.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (read < data.Length)
                throw new DataException($"IDX file '{path}' is truncated: the header says {string.Join("×", dims)} = {size} bytes of data, the file has {read}.");
            if (s.ReadByte() >= 0)
                throw new DataException($"IDX file '{path}' has more data than its header says ({string.Join("×", dims)} = {size} bytes).");
            return (dims, data);
        }
        catch (EndOfStreamException e)
        {
            throw new DataException($"IDX file '{path}' ends inside its header; expected {expected}.", e);
        }
        catch (InvalidDataException e)
        {
            throw new DataException($"IDX file '{path}' is not valid gzip: {e.Message}", e);
        }
    }

    /// <summary>Writes an unsigned-byte IDX file (gzip-compressed when the name ends in .gz).</summary>
    internal static void Write(string path, ReadOnlySpan<int> dims, ReadOnlySpan<byte> data)
    {
        using var file = File.Create(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionLevel.Fastest) : file;
        Span<byte> word = stackalloc byte[4];
        s.Write([0, 0, UnsignedByte, (byte)dims.Length]);
        foreach (int d in dims) { BinaryPrimitives.WriteInt32BigEndian(word, d); s.Write(word); }
        s.Write(data);
    }
}
