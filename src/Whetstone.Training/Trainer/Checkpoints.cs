using System.Runtime.InteropServices;
using System.IO.Hashing;
using System.Text.Json;
using System.Text.Json.Serialization;
using Whetstone.Models.Formats;
using Whetstone.Tensors;

namespace Whetstone.Training;

/// <summary>
/// Where a run stands between two optimiser steps: everything resume needs besides the tensors. The cursor
/// (<see cref="Epoch"/>, <see cref="Batch"/>) names the next micro-batch to run; checkpoints are taken only between
/// optimiser steps, so no accumulated gradient is ever pending (<see cref="MicroStep"/> is 0 by construction and kept
/// for the format's honesty).
/// </summary>
public sealed record ResumeState
{
    public const string FormatName = "whetstone-checkpoint/1";

    public string Format { get; init; } = FormatName;
    public string Task { get; init; } = "";
    /// <summary>1-based epoch in progress (or about to start when <see cref="Batch"/> is 0).</summary>
    public int Epoch { get; init; }
    /// <summary>The next micro-batch of <see cref="Epoch"/> (0-based, in the epoch's shuffled order).</summary>
    public int Batch { get; init; }
    public int MicroStep { get; init; }
    /// <summary>Optimiser steps taken (the schedule's position).</summary>
    public long Step { get; init; }
    /// <summary>Sum of example losses and examples seen so far in the epoch in progress (its train_loss so far).</summary>
    public double EpochLossSum { get; init; }
    public long EpochSeen { get; init; }
    public double EpochSecondsSoFar { get; init; }
    public List<double> EpochSeconds { get; init; } = [];
    public double TrainSeconds { get; init; }
    public string Select { get; init; } = "";
    public int BestEpoch { get; init; }
    public double? BestValue { get; init; }
    /// <summary>Length of metrics.jsonl when the checkpoint was taken: lines after it are cut on resume (they are replayed).</summary>
    public long MetricsBytes { get; init; }
    public string BaseSha256 { get; init; } = "";
    public ulong Seed { get; init; }
    public int Threads { get; init; }
    /// <summary>Per-parameter step counts of the optimiser (its buffers are tensors in the file).</summary>
    public Dictionary<string, long> OptimizerSteps { get; init; } = [];
    /// <summary>State of every random generator a module draws from while training, by module path.</summary>
    public Dictionary<string, RngState> Rngs { get; init; } = [];

    internal static readonly JsonSerializerOptions Json = new() { WriteIndented = false, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };
}

/// <summary>A checkpoint read back: its state, model tensors (by parameter/buffer name) and optimiser buffers (by state-dict key).</summary>
public sealed record LoadedCheckpoint(string Path, ResumeState State, Dictionary<string, Tensor> Model, Dictionary<string, Tensor> Optimizer);

/// <summary>
/// The run's resume checkpoints, <c>checkpoints/step-NNNNNNNN.safetensors</c>: model tensors under <c>model/NAME</c>,
/// optimiser buffers under <c>optim/KEY</c>, the <see cref="ResumeState"/> as JSON in the metadata with an XXH3-64
/// checksum of the tensor bytes (damage, not tampering, is what it guards against; it hashes at memory speed). Writing is atomic (temporary file, fsync, rename) and happens on a background thread from a
/// snapshot taken between steps (the snapshot's buffers are reused, so a checkpoint costs a memory copy on the training
/// thread); the newest two are kept. Reading verifies the header, the hash and the state, and falls back to the
/// previous checkpoint when the newest is truncated or damaged.
/// </summary>
public sealed class CheckpointStore : IDisposable
{
    public const int Keep = 2;
    private const string Prefix = "step-";

    private readonly string _dir;
    private readonly Dictionary<string, float[]> _buffers = new(StringComparer.Ordinal);
    private Task? _pending;

    public CheckpointStore(string dir)
    {
        _dir = dir;
        Directory.CreateDirectory(dir);
    }

    /// <summary>The path a checkpoint at optimiser step <paramref name="step"/> is written to.</summary>
    public string PathOf(long step) => Path.Combine(_dir, $"{Prefix}{step:D8}.safetensors");

    /// <summary>Checkpoint files, newest (highest step) first.</summary>
    public IReadOnlyList<string> Files() => Directory.GetFiles(_dir, Prefix + "*.safetensors")
        .Where(f => !Path.GetFileName(f).StartsWith('.'))
        .OrderByDescending(f => f, StringComparer.Ordinal).ToList();

    /// <summary>
    /// Copies <paramref name="model"/> and <paramref name="optimizer"/> tensors now and writes them with
    /// <paramref name="state"/> in the background (waiting first for the previous write). Returns the file's path.
    /// </summary>
    public string Save(ResumeState state, IEnumerable<(string Name, Tensor Tensor)> model, IEnumerable<(string Name, Tensor Tensor)> optimizer)
    {
        ArgumentNullException.ThrowIfNull(state);
        Flush();
        var items = model.Select(m => ("model/" + m.Name, m.Tensor)).Concat(optimizer.Select(o => ("optim/" + o.Name, o.Tensor)))
            .OrderBy(i => i.Item1, StringComparer.Ordinal).ToList();
        var snapshot = new List<(string Name, int[] Shape, float[] Data)>(items.Count);
        foreach (var (name, t) in items)
        {
            if (!_buffers.TryGetValue(name, out var buf) || buf.Length != t.Size) _buffers[name] = buf = GC.AllocateUninitializedArray<float>(t.Size);
            if (t.IsContiguous) t.Span.CopyTo(buf); else t.ToArray().CopyTo(buf, 0);
            snapshot.Add((name, t.Shape.ToArray(), buf));
        }
        var path = PathOf(state.Step);
        _pending = Task.Run(() => Write(path, state, snapshot));
        return path;
    }

    /// <summary>Waits for the checkpoint being written, rethrowing its failure.</summary>
    public void Flush()
    {
        var p = _pending;
        _pending = null;
        p?.GetAwaiter().GetResult();
    }

    private void Write(string path, ResumeState state, List<(string Name, int[] Shape, float[] Data)> snapshot)
    {
        // the header holds the checksum of the data after it: written first with a placeholder of the same length,
        // the data hashed as it is written, the header written again over the placeholder
        Dictionary<string, string> Meta(ulong checksum) => new()
        {
            ["format"] = ResumeState.FormatName,
            ["state"] = JsonSerializer.Serialize(state, ResumeState.Json),
            ["xxh3"] = checksum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
        };
        var items = snapshot.Select(s => (s.Name, s.Shape, DType.F32)).ToList();
        var tmp = Path.Combine(_dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                using (var placeholder = SafeTensors.Header(items, Meta(0))) placeholder.CopyTo(fs);
                var hash = new XxHash3();
                foreach (var (_, _, data) in snapshot)
                {
                    var bytes = MemoryMarshal.AsBytes(data.AsSpan());
                    hash.Append(bytes);
                    fs.Write(bytes);
                }
                fs.Position = 0;
                using (var header = SafeTensors.Header(items, Meta(hash.GetCurrentHashAsUInt64()))) header.CopyTo(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        foreach (var old in Files().Skip(Keep)) File.Delete(old);
    }

    /// <summary>
    /// The newest checkpoint that reads back whole, or null when the run has none. Damaged ones are reported through
    /// <paramref name="log"/> (file and reason) and skipped.
    /// </summary>
    public LoadedCheckpoint? LoadLatest(TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        foreach (var file in Files())
        {
            try { return Load(file); }
            catch (CheckpointException e)
            {
                log.WriteLine($"warning: {e.Message}; using the one before it.");
            }
        }
        return null;
    }

    /// <summary>Reads and verifies one checkpoint file; any damage is a <see cref="CheckpointException"/> naming the file.</summary>
    public static LoadedCheckpoint Load(string path)
    {
        try
        {
            using var f = SafeTensorsFile.Open(path);
            if (!f.Metadata.TryGetValue("format", out var format) || format != ResumeState.FormatName)
                throw new CheckpointException(path, $"not a Whetstone checkpoint (format '{format}', expected {ResumeState.FormatName})");
            if (!f.Metadata.TryGetValue("state", out var json) || !f.Metadata.TryGetValue("xxh3", out var expected))
                throw new CheckpointException(path, "the state or its checksum is missing from the metadata");
            var hash = new XxHash3();
            foreach (var name in f.Names) hash.Append(f.RawBytes(name));        // file order: the order it was written and hashed in
            var actual = hash.GetCurrentHashAsUInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
            if (actual != expected) throw new CheckpointException(path, $"its tensor data does not match its XXH3 checksum (damaged: {actual} ≠ {expected})");
            var state = JsonSerializer.Deserialize<ResumeState>(json, ResumeState.Json) ?? throw new CheckpointException(path, "empty state");
            var model = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var optim = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var name in f.Names)
            {
                if (name.StartsWith("model/", StringComparison.Ordinal)) model[name["model/".Length..]] = f.Read(name);
                else if (name.StartsWith("optim/", StringComparison.Ordinal)) optim[name["optim/".Length..]] = f.Read(name);
                else throw new CheckpointException(path, $"unexpected tensor '{name}'");
            }
            return new LoadedCheckpoint(path, state, model, optim);
        }
        catch (SafeTensorsFormatException e) { throw new CheckpointException(path, $"unreadable ({e.Fault}: {e.Message})", e); }
        catch (JsonException e) { throw new CheckpointException(path, $"its state is not valid JSON ({e.Message})", e); }
        catch (IOException e) { throw new CheckpointException(path, $"cannot be read ({e.Message})", e); }
    }

    public void Dispose() => Flush();
}

/// <summary>A checkpoint that cannot be used: names the file and what is wrong with it.</summary>
public sealed class CheckpointException(string path, string reason, Exception? inner = null)
    : Exception($"checkpoint {path}: {reason}", inner)
{
    public string FilePath { get; } = path;
}
