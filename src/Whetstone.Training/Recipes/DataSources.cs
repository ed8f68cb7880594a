using Whetstone.Training.Data;

namespace Whetstone.Training.Recipes;

/// <summary>Opens an image dataset by format name (<c>idx</c>, <c>folder</c>, <c>csv</c>) or by looking at the path.</summary>
public static class DataSources
{
    /// <summary>
    /// <paramref name="format"/> <c>idx</c>: a folder with MNIST-named files (<c>train-…</c> when <paramref name="train"/>,
    /// else <c>t10k-…</c>); <c>folder</c>: one subfolder per class; <c>csv</c>: image-path and label columns.
    /// </summary>
    public static ImageDataset Open(string format, string path, bool train, IReadOnlyList<string>? labels = null, string imageColumn = "image", string labelColumn = "label") => format switch
    {
        "idx" => Idx.Load(IdxFile(path, train, "images-idx3"), IdxFile(path, train, "labels-idx1"), labels ?? IdxLabels(path)),
        "folder" => ImageDataset.FromFolder(path),
        "csv" => ImageDataset.FromCsv(path, new CsvImageOptions { ImageColumn = imageColumn, LabelColumn = labelColumn, Labels = labels }),
        _ => throw new DataException($"Unknown data format '{format}': expected idx, folder or csv."),
    };

    /// <summary>The format of <paramref name="path"/>: csv for a .csv/.tsv file, idx for a folder with MNIST-named files, else folder.</summary>
    public static string Detect(string path)
    {
        if (File.Exists(path))
            return path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase)
                ? "csv" : throw new DataException($"'{path}' is a file but not a CSV; give a CSV with image paths, an image folder or a folder of IDX files.");
        if (!Directory.Exists(path)) throw new DataException($"Data path '{path}' does not exist.");
        return Directory.GetFiles(path, "*-ubyte*").Length > 0 ? "idx" : "folder";
    }

    private static string IdxFile(string dir, bool train, string kind)
    {
        if (File.Exists(dir)) throw new DataException($"For format idx give the folder that holds the IDX files; '{dir}' is a file.");
        foreach (var prefix in train ? new[] { "train" } : ["t10k", "test"])
            foreach (var name in new[] { $"{prefix}-{kind}-ubyte.gz", $"{prefix}-{kind}-ubyte" })
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        throw new DataException($"'{dir}' has no {(train ? "train" : "t10k")}-{kind}-ubyte(.gz) file (the MNIST file names are expected).");
    }

    private static IReadOnlyList<string> IdxLabels(string dir) =>
        dir.Contains("fashion", StringComparison.OrdinalIgnoreCase) ? Idx.FashionMnistLabels : Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
