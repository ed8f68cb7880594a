using System.Text.Json;
using System.Text.Json.Nodes;
using Whetstone.Training.Config;

namespace Whetstone.Training;

/// <summary>
/// The config a run started with, read back from its <c>run.json</c> (the YAML text, the <c>--set</c> overrides and the
/// folder relative paths are resolved from), so <c>whet train --resume runs/NAME</c> rebuilds exactly the same run.
/// </summary>
public static class RunConfig
{
    public static TrainConfig Load(string runDir)
    {
        ArgumentNullException.ThrowIfNull(runDir);
        var path = Path.Combine(runDir, "run.json");
        if (!File.Exists(path))
            throw new ConfigException(Directory.Exists(runDir)
                ? $"{runDir}: not a run folder that can be resumed (no run.json; runs written before resume existed cannot be continued)."
                : $"Run folder '{runDir}' does not exist.");
        JsonObject run;
        try { run = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new ConfigException($"{path}: empty."); }
        catch (JsonException e) { throw new ConfigException($"{path}: not valid JSON ({e.Message}).", e); }
        string Str(string key) => run[key]?.GetValue<string>() ?? throw new ConfigException($"{path}: missing '{key}'.");
        var overrides = run["overrides"]?.AsArray().Select(o => o!.GetValue<string>()).ToArray() ?? [];
        var source = Str("source");
        return ConfigLoader.Parse(Str("config"), source, overrides) with { BaseDirectory = Str("base_directory"), Source = source };
    }
}
