using System.Text.Json.Nodes;
using Whetstone.Models.Formats;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;

namespace Whetstone.Training.Runs;

/// <summary>A bundle that cannot be loaded as it claims: names the file and what is wrong.</summary>
public sealed class BundleException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// What every model bundle shares, whatever its task: <c>whetstone.json</c> (format, <c>task</c>, labels, metrics) found
/// in a bundle folder or a run folder's <c>model/</c>, and the golden set replayed on load. Each task writes and loads
/// its own bundle (<see cref="Tasks.ImageBundle"/>, <see cref="Tasks.TextBundle"/>); <see cref="Tasks.TaskRegistry"/> says which.
/// </summary>
public static class Bundle
{
    public const string Format = "whetstone-bundle/1";
    public const double GoldenTolerance = 1e-4;

    /// <summary>The temperature the logits are divided by before the softmax (<c>temperature</c> in whetstone.json; 1 when absent).</summary>
    public static double TemperatureOf(JsonObject info) =>
        info?["temperature"] is JsonValue v && v.TryGetValue<double>(out var t) && t > 0 ? t : 1;

    /// <summary>Two-class bundles: predict the second label when its temperature-scaled probability is ≥ this (<c>threshold.value</c>); null when absent.</summary>
    public static double? ThresholdOf(JsonObject info) =>
        info?["threshold"]?["value"] is JsonValue v && v.TryGetValue<double>(out var t) ? t : null;

    /// <summary>The rule that chose the threshold (<c>max_f1</c>, <c>recall:R</c>, <c>cost:FP,FN</c>).</summary>
    public static string? ThresholdRuleOf(JsonObject info) =>
        info?["threshold"]?["rule"] is JsonValue v && v.TryGetValue<string>(out var r) ? r : null;

    /// <summary>The <c>task</c> a bundle (or a run folder's bundle) declares.</summary>
    public static string TaskOf(string path)
    {
        var (_, infoPath, info) = ReadInfo(path);
        return info["task"]?.GetValue<string>() ?? throw new BundleException($"{infoPath}: missing 'task'.");
    }

    /// <summary>
    /// The bundle folder, its whetstone.json and the parsed object, from a bundle folder or a run folder (which holds it
    /// in <c>model/</c>).
    /// </summary>
    internal static (string Dir, string InfoPath, JsonObject Info) ReadInfo(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var infoPath = InfoPath(path) ?? throw new BundleException($"'{path}' is neither a model bundle nor a run folder with one (no whetstone.json in it or in its model/ folder).");
        try { return (Path.GetDirectoryName(infoPath)!, infoPath, JsonNode.Parse(File.ReadAllText(infoPath))?.AsObject() ?? throw new BundleException($"{infoPath}: empty.")); }
        catch (System.Text.Json.JsonException e) { throw new BundleException($"{infoPath}: not valid JSON ({e.Message}).", e); }
    }

    /// <summary>whetstone.json in <paramref name="path"/> or in its model/ folder, or null.</summary>
    internal static string? InfoPath(string path)
    {
        foreach (var p in new[] { Path.Combine(path, "whetstone.json"), Path.Combine(path, "model", "whetstone.json") })
            if (File.Exists(p)) return p;
        return null;
    }

    /// <summary>
    /// Replays the bundle's golden set (when it has one): <paramref name="logitsOf"/> computes the logits from the golden
    /// file's tensors; returns the largest |Δlogit| and refuses the bundle when it exceeds <see cref="GoldenTolerance"/>.
    /// </summary>
    internal static double ReplayGolden(string dir, Func<IReadOnlyDictionary<string, Tensor>, Tensor> logitsOf, string likelyCause)
    {
        var goldenPath = Path.Combine(dir, "golden.safetensors");
        if (!File.Exists(goldenPath)) return 0;
        var golden = SafeTensors.LoadAll(goldenPath);
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        var logits = logitsOf(golden).ToArray();
        var expected = golden["logits"].ToArray();
        double maxDiff = 0;
        for (int i = 0; i < expected.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(logits[i] - expected[i]));
        if (!(maxDiff <= GoldenTolerance))
            throw new BundleException($"{goldenPath}: the loaded model does not reproduce the bundle's golden predictions (max |Δlogit| = {maxDiff:G3} > {GoldenTolerance}); {likelyCause}.");
        return maxDiff;
    }
}
