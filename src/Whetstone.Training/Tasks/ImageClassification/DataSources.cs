using Whetstone.Training.Data;

namespace Whetstone.Training.Tasks;

/// <summary>Opens an image dataset by format name (<c>idx</c>, <c>folder</c>, <c>csv</c>) or by looking at the path.</summary>
public static class DataSources
{
    /// <summary>
    /// <paramref name="format"/> <c>idx</c>: a folder with MNIST-named files (<c>train-…</c> when <paramref name="train"/>,
    /// else <c>t10k-…</c>); <c>folder</c>: one subfolder per class; <c>csv</c>: image-path and label columns.
    /// </summary>
    public static ImageDataset Open(string format, string path, bool train, IReadOnlyList<string>? labels = null, string imageColumn = "image", string labelColumn = "label") => format switch
    {
        "idx" => Idx.Folder(path, train, labels ?? IdxLabels(path)),
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

    private static IReadOnlyList<string> IdxLabels(string dir) =>
        dir.Contains("fashion", StringComparison.OrdinalIgnoreCase) ? Idx.FashionMnistLabels : Idx.DigitLabels;
}
