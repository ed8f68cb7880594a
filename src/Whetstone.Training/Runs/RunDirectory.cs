using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Whetstone.Training.Runs;

/// <summary>
/// <c>runs/&lt;name&gt;/</c>: the resolved config, <c>metrics.jsonl</c> (one JSON object per logged step or epoch,
/// flushed as written), <c>checkpoints/</c> and the model bundle. A run never overwrites an earlier run's folder:
/// a taken name gets a numeric suffix. Files are written to a temporary name and renamed into place, so a crash
/// leaves either the old file or the new one, never half of one.
/// </summary>
public sealed class RunDirectory : IDisposable
{
    private StreamWriter _metrics;

    public string Path { get; }
    public string CheckpointDir => System.IO.Path.Combine(Path, "checkpoints");
    public string BundleDir => System.IO.Path.Combine(Path, "model");
    public string MetricsPath => System.IO.Path.Combine(Path, "metrics.jsonl");

    private RunDirectory(string path)
    {
        Path = path;
        Directory.CreateDirectory(CheckpointDir);
        _metrics = new StreamWriter(new FileStream(MetricsPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)) { AutoFlush = true };
        _metrics.BaseStream.Seek(0, SeekOrigin.End);
    }

    /// <summary>Creates <c>{runs}/{name}</c>, or <c>{name}-2</c>, <c>-3</c> … when taken.</summary>
    public static RunDirectory Create(string runsDir, string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0 || name.Contains('/', StringComparison.Ordinal))
            throw new ArgumentException($"Run name '{name}' is not a valid folder name.");
        Directory.CreateDirectory(runsDir);
        var path = System.IO.Path.Combine(runsDir, name);
        for (int i = 2; Directory.Exists(path); i++) path = System.IO.Path.Combine(runsDir, $"{name}-{i}");
        return new RunDirectory(System.IO.Path.GetFullPath(path));
    }

    /// <summary>An existing run folder (to resume it); metrics.jsonl is appended to.</summary>
    public static RunDirectory Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Run folder '{path}' does not exist.");
        return new RunDirectory(full);
    }

    /// <summary>Bytes in metrics.jsonl so far (everything logged is already written through).</summary>
    public long MetricsBytes => _metrics.BaseStream.Length;

    /// <summary>Cuts metrics.jsonl back to <paramref name="length"/> bytes (what a checkpoint had seen; the rest is replayed).</summary>
    public void TruncateMetrics(long length)
    {
        _metrics.Flush();
        if (length > _metrics.BaseStream.Length)
            throw new InvalidOperationException($"{MetricsPath} has {_metrics.BaseStream.Length} bytes, fewer than the {length} the checkpoint saw: the file was cut or replaced.");
        _metrics.BaseStream.SetLength(length);
        _metrics.BaseStream.Seek(0, SeekOrigin.End);
    }

    /// <summary>Appends one line to metrics.jsonl.</summary>
    public void Log(JsonObject record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _metrics.WriteLine(record.ToJsonString());
    }

    /// <summary>Writes a text file in the run folder atomically.</summary>
    public void WriteText(string relativePath, string text) => WriteAtomic(System.IO.Path.Combine(Path, relativePath), text);

    public static void WriteAtomic(string path, string text)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    public void Dispose() => _metrics.Dispose();

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>A metrics value rounded for logs (6 significant digits), NaN/∞ as null.</summary>
    public static JsonNode? Num(double v) =>
        double.IsFinite(v) ? JsonValue.Create(double.Parse(v.ToString("G6", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)) : null;
}
