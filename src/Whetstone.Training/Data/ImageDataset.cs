using Whetstone.Tensors;

namespace Whetstone.Training.Data;

/// <summary>One example: the decoded image and its label index into <see cref="ImageDataset.Labels"/>.</summary>
public readonly record struct ImageExample(ImageData Image, int Label);

/// <summary>
/// N labelled images and the label list (fixed order: label index i is <c>Labels[i]</c>).
/// Labels are known without decoding; pixels are decoded when asked for (<see cref="GetImage"/>, or a
/// <see cref="DataLoader"/> batch). Sources: <see cref="FromFolder"/>, <see cref="FromCsv"/>, <see cref="Idx"/>
/// files, <see cref="FromPixels"/>; views: <see cref="Select"/>, <see cref="PerClass"/>, <see cref="WithLabels"/>.
/// Reading is thread-safe (a loader decodes a batch's images in parallel).
/// </summary>
public abstract class ImageDataset
{
    private protected ImageDataset() { }

    public abstract int Count { get; }

    /// <summary>Label names; an example's label is an index into this list.</summary>
    public abstract IReadOnlyList<string> Labels { get; }

    /// <summary>The label index of example <paramref name="index"/> (no decoding).</summary>
    public abstract int GetLabel(int index);

    /// <summary>Where example <paramref name="index"/> comes from, for error messages (a file path, or an index in a file).</summary>
    public abstract string Describe(int index);

    /// <summary>The decoded pixels (bytes, HWC) of example <paramref name="index"/>.</summary>
    internal abstract RawImage GetRaw(int index);

    /// <summary>Decodes example <paramref name="index"/> to float pixels in [0, 255].</summary>
    public ImageData GetImage(int index) => GetRaw(CheckIndex(index)).ToImageData();

    public ImageExample this[int index] => new(GetImage(index), GetLabel(CheckIndex(index)));

    /// <summary>Every example's label index, in order.</summary>
    public int[] GetLabels()
    {
        var y = new int[Count];
        for (int i = 0; i < y.Length; i++) y[i] = GetLabel(i);
        return y;
    }

    /// <summary>How many examples each label has (index = label index).</summary>
    public int[] ClassCounts()
    {
        var counts = new int[Labels.Count];
        for (int i = 0; i < Count; i++) counts[GetLabel(i)]++;
        return counts;
    }

    protected int CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"The dataset has {Count} examples.");
        return index;
    }

    // ---------------- views ----------------

    /// <summary>The examples at <paramref name="indices"/>, in that order (repeats allowed). Nothing is copied.</summary>
    public ImageDataset Select(IEnumerable<int> indices)
    {
        var idx = indices.ToArray();
        foreach (int i in idx) CheckIndex(i);
        return this is SubsetImageDataset s ? new SubsetImageDataset(s.Parent, Array.ConvertAll(idx, i => s.Indices[i])) : new SubsetImageDataset(this, idx);
    }

    /// <summary>
    /// <paramref name="perClass"/> examples of each label, drawn at random with <paramref name="seed"/> (same seed,
    /// same examples), kept in dataset order. A label with fewer examples is an error unless
    /// <paramref name="allowFewer"/>, which then takes all it has.
    /// </summary>
    public ImageDataset PerClass(int perClass, ulong seed, bool allowFewer = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perClass);
        var byClass = Split.ByClass(GetLabels(), Labels.Count);
        if (!allowFewer)
        {
            var short_ = Enumerable.Range(0, byClass.Length).Where(c => byClass[c].Length < perClass)
                .Select(c => $"'{Labels[c]}' ({byClass[c].Length})").ToList();
            if (short_.Count > 0)
                throw new DataException($"PerClass({perClass}): {short_.Count} label(s) have fewer examples: {string.Join(", ", short_)}. Pass allowFewer: true to take all they have.");
        }
        var rng = new Rng(seed);
        var chosen = new List<int>();
        foreach (var members in byClass)
        {
            var order = rng.Permutation(members.Length);
            for (int k = 0; k < Math.Min(perClass, members.Length); k++) chosen.Add(members[order[k]]);
        }
        chosen.Sort();
        return Select(chosen);
    }

    /// <summary>Splits into train and validation views with <see cref="Split.Stratified"/>.</summary>
    public (ImageDataset Train, ImageDataset Validation) SplitStratified(double validationFraction, ulong seed)
    {
        var (train, val) = Split.Stratified(GetLabels(), validationFraction, seed);
        return (Select(train), Select(val));
    }

    /// <summary>
    /// The same examples with labels re-indexed into <paramref name="modelLabels"/> (a model's fixed head order),
    /// which become <see cref="Labels"/>. A label the model does not know is a <see cref="DataException"/> listing them.
    /// </summary>
    public ImageDataset WithLabels(IReadOnlyList<string> modelLabels) =>
        new RelabeledImageDataset(this, modelLabels, LabelMap.Map(Labels, modelLabels));

    // ---------------- sources ----------------

    /// <summary>
    /// An image folder <c>root/&lt;label&gt;/&lt;file&gt;</c>: one subfolder per label, labels sorted ordinally, files
    /// sorted ordinally within a label. Files whose extension is not an image extension are skipped, as are hidden
    /// entries (names starting with '.'). Images are decoded on demand, every time they are read; with
    /// <paramref name="preload"/> every image is decoded now (in parallel) and kept, so a bad file fails here.
    /// </summary>
    public static ImageDataset FromFolder(string root, bool preload = false) => ImageFiles.FromFolder(root, preload);

    /// <summary>
    /// A CSV table with an image-path column and a label column (names in <paramref name="options"/>; <c>image</c>
    /// and <c>label</c> by default). Relative paths are relative to the CSV file's folder. Labels are the distinct
    /// values sorted ordinally, unless <see cref="CsvImageOptions.Labels"/> fixes them.
    /// </summary>
    public static ImageDataset FromCsv(string csvPath, CsvImageOptions? options = null) => ImageFiles.FromCsv(csvPath, options ?? new CsvImageOptions());

    /// <summary>
    /// Images already in memory: <paramref name="count"/> images of <paramref name="height"/>×<paramref name="width"/>×
    /// <paramref name="channels"/> bytes (HWC), back to back. The array is used, not copied.
    /// </summary>
    public static ImageDataset FromPixels(byte[] pixels, int count, int height, int width, int channels, int[] labels, IReadOnlyList<string> labelNames, string source = "memory")
    {
        if ((long)count * height * width * channels != pixels.Length)
            throw new ArgumentException($"{pixels.Length} bytes are not {count} images of {height}×{width}×{channels}.", nameof(pixels));
        if (labels.Length != count) throw new ArgumentException($"{labels.Length} labels for {count} images.", nameof(labels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)labelNames.Count)
                throw new DataException($"{source}: label {labels[i]} of example {i} is outside the {labelNames.Count} label names.");
        return new ArrayImageDataset(pixels, height, width, channels, labels, labelNames.ToArray(), source);
    }
}

/// <summary>Options for <see cref="ImageDataset.FromCsv"/>.</summary>
public sealed record CsvImageOptions
{
    public string ImageColumn { get; init; } = "image";
    public string LabelColumn { get; init; } = "label";

    /// <summary>The field separator.</summary>
    public char Separator { get; init; } = ',';

    /// <summary>The label list in a fixed order; a label in the CSV that is not in it is an error. Null: the distinct labels, sorted.</summary>
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>Decode every image now and keep it (see <see cref="ImageDataset.FromFolder"/>).</summary>
    public bool Preload { get; init; }
}

/// <summary>Images back to back in one byte array (IDX files, in-memory data).</summary>
internal sealed class ArrayImageDataset(byte[] pixels, int height, int width, int channels, int[] labels, string[] labelNames, string source) : ImageDataset
{
    private readonly int _size = height * width * channels;

    public override int Count => labels.Length;
    public override IReadOnlyList<string> Labels => labelNames;
    public override int GetLabel(int index) => labels[index];
    public override string Describe(int index) => $"example {index} of {source}";
    internal override RawImage GetRaw(int index) => new(pixels.AsMemory(index * _size, _size), height, width, channels);
}

/// <summary>Image files decoded on demand, or all at once up front (<c>preload</c>).</summary>
internal sealed class FileImageDataset : ImageDataset
{
    private readonly string[] _paths;
    private readonly int[] _labels;
    private readonly string[] _labelNames;
    private readonly RawImage[]? _decoded;

    public FileImageDataset(string[] paths, int[] labels, string[] labelNames, bool preload)
    {
        (_paths, _labels, _labelNames) = (paths, labels, labelNames);
        if (!preload) return;
        var decoded = new RawImage[paths.Length];
        Loading.ForEach(paths.Length, i => decoded[i] = ImageDecoder.Decode(paths[i]));
        _decoded = decoded;
    }

    public override int Count => _paths.Length;
    public override IReadOnlyList<string> Labels => _labelNames;
    public override int GetLabel(int index) => _labels[index];
    public override string Describe(int index) => $"'{_paths[index]}'";
    internal override RawImage GetRaw(int index) => _decoded is not null ? _decoded[index] : ImageDecoder.Decode(_paths[index]);

    /// <summary>The file of example <paramref name="index"/>.</summary>
    public string PathOf(int index) => _paths[index];
}

internal sealed class SubsetImageDataset(ImageDataset parent, int[] indices) : ImageDataset
{
    public ImageDataset Parent => parent;
    public int[] Indices => indices;

    public override int Count => indices.Length;
    public override IReadOnlyList<string> Labels => parent.Labels;
    public override int GetLabel(int index) => parent.GetLabel(indices[index]);
    public override string Describe(int index) => parent.Describe(indices[index]);
    internal override RawImage GetRaw(int index) => parent.GetRaw(indices[index]);
}

internal sealed class RelabeledImageDataset(ImageDataset parent, IReadOnlyList<string> labels, int[] map) : ImageDataset
{
    private readonly string[] _labels = labels.ToArray();

    public override int Count => parent.Count;
    public override IReadOnlyList<string> Labels => _labels;
    public override int GetLabel(int index) => map[parent.GetLabel(index)];
    public override string Describe(int index) => parent.Describe(index);
    internal override RawImage GetRaw(int index) => parent.GetRaw(index);
}

/// <summary>Parallel loops for decoding: one item per index over the engine's pool; a data error comes out unwrapped.</summary>
internal static class Loading
{
    public static void ForEach(int count, Action<int> body)
    {
        try { Par.For(count, body); }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is DataException)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
    }
}
