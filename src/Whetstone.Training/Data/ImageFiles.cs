using CsvHelper;

namespace Whetstone.Training.Data;

/// <summary>Lists the image files of a folder tree or a CSV table (no decoding unless preloading).</summary>
internal static class ImageFiles
{
    public static ImageDataset FromFolder(string root, bool preload)
    {
        if (!Directory.Exists(root))
            throw new DataException($"Image folder '{root}' does not exist. Expected a folder with one subfolder of images per label (root/<label>/<file>).");
        var classDirs = Directory.GetDirectories(root).Where(d => !IsHidden(d)).Order(StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0)
            throw new DataException($"Image folder '{root}' has no label subfolders. Expected root/<label>/<file>, one subfolder per label.");
        var labels = classDirs.Select(Path.GetFileName).Select(n => n!).ToArray();
        var paths = new List<string>();
        var y = new List<int>();
        for (int c = 0; c < classDirs.Length; c++)
        {
            var files = Directory.GetFiles(classDirs[c]).Where(f => !IsHidden(f) && ImageDecoder.IsImage(f)).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0)
                throw new DataException($"Label folder '{labels[c]}' ('{classDirs[c]}') has no image files. Expected at least one of {string.Join(", ", ImageDecoder.Extensions.Order())}.");
            paths.AddRange(files);
            y.AddRange(Enumerable.Repeat(c, files.Length));
        }
        return new FileImageDataset(paths.ToArray(), y.ToArray(), labels, preload);
    }

    private static bool IsHidden(string path) => Path.GetFileName(path).StartsWith('.');

    public static ImageDataset FromCsv(string csvPath, CsvImageOptions options)
    {
        if (!File.Exists(csvPath)) throw new DataException($"CSV file '{csvPath}' does not exist.");
        string dir = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var rows = new List<(string Path, string Label, long Line)>();
        using (var csv = CsvReader.FromFile(csvPath, new CsvReaderOptions { Separator = options.Separator, TrackLineNumbers = true }))
        {
            int imageCol = Column(options.ImageColumn), labelCol = Column(options.LabelColumn);
            while (Next())
            {
                long line = csv.LineNumber;
                string image = csv.GetString(imageCol).Trim(), label = csv.GetString(labelCol).Trim();
                if (image.Length == 0)
                    throw new DataException($"CSV file '{csvPath}', line {line}: the image path (column '{options.ImageColumn}') is empty.");
                if (label.Length == 0)
                    throw new DataException($"CSV file '{csvPath}', line {line}: the label (column '{options.LabelColumn}') is empty.");
                string path = Path.GetFullPath(Path.Combine(dir, image));
                if (!File.Exists(path))
                    throw new DataException($"CSV file '{csvPath}', line {line}: image file '{path}' does not exist.");
                rows.Add((path, label, line));
            }

            int Column(string name)
            {
                IReadOnlyList<string> header;
                try { header = csv.Headers; }
                catch (Exception e) { throw new DataException($"CSV file '{csvPath}', line 1: cannot read the header: {e.Message}", e); }
                if (csv.TryGetFieldIndex(name, out int i)) return i;
                throw new DataException(header.Count == 0
                    ? $"CSV file '{csvPath}' is empty. Expected a header row with columns '{options.ImageColumn}' and '{options.LabelColumn}'."
                    : $"CSV file '{csvPath}', line 1: no column '{name}'. Columns: {string.Join(", ", header.Select(h => $"'{h}'"))}.");
            }

            bool Next()
            {
                try { return csv.Read(); }
                catch (Exception e) { throw new DataException($"CSV file '{csvPath}', after line {csv.LineNumber}: {e.Message}", e); }
            }
        }
        if (rows.Count == 0) throw new DataException($"CSV file '{csvPath}' has a header but no rows.");

        string[] labels = options.Labels?.ToArray() ?? rows.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Length; i++)
            if (!index.TryAdd(labels[i], i)) throw new ArgumentException($"Label '{labels[i]}' appears twice in the label list.", nameof(options));
        var y = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
            if (!index.TryGetValue(rows[i].Label, out y[i]))
                throw new DataException($"CSV file '{csvPath}', line {rows[i].Line}: label '{rows[i].Label}' is not in the label list ({string.Join(", ", labels)}).");
        return new FileImageDataset(rows.Select(r => r.Path).ToArray(), y, labels, options.Preload);
    }
}
