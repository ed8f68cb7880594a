using System.Text.Json;

namespace Whetstone.Models.Importers.Hf;

/// <summary>What is wrong with a Hugging Face model folder.</summary>
public enum HfFault
{
    /// <summary>Neither a folder nor a model name found in the hub cache.</summary>
    ModelNotFound,
    /// <summary>A required file (config.json, weights, a shard named by the index) is absent.</summary>
    MissingFile,
    /// <summary>config.json or the shard index is not valid JSON, or a field has the wrong type.</summary>
    InvalidConfig,
    UnknownModelType,
    /// <summary>A checkpoint tensor that the family's key map neither uses nor ignores.</summary>
    UnexpectedKey,
    /// <summary>A model tensor that no checkpoint key fills (and that is not an optional head).</summary>
    MissingKey,
    /// <summary>Two checkpoint keys fill the same model tensor.</summary>
    DuplicateKey,
    ShapeMismatch,
    /// <summary>The tokenizer files are absent or of a kind Microsoft.ML.Tokenizers cannot read.</summary>
    UnsupportedTokenizer,
}

/// <summary>A Hugging Face folder that cannot be loaded exactly: names the file, the key and the fault.</summary>
public sealed class HfCheckpointException(HfFault fault, string path, string message, string? key = null)
    : Exception($"{path}: {(key is null ? "" : $"'{key}': ")}{message}")
{
    public HfFault Fault { get; } = fault;
    /// <summary>The file (or folder) at fault.</summary>
    public string FilePath { get; } = path;
    /// <summary>The checkpoint key or config field at fault, if any.</summary>
    public string? Key { get; } = key;
}

/// <summary>A parsed <c>config.json</c> with typed field access; a field of the wrong type is an error naming it.</summary>
internal sealed class HfConfig
{
    private readonly JsonElement _root;
    public string Path { get; }

    private HfConfig(string path, JsonElement root) { Path = path; _root = root; }

    public static HfConfig Load(string path)
    {
        if (!File.Exists(path)) throw new HfCheckpointException(HfFault.MissingFile, path, "config.json is missing; a Hugging Face model folder has config.json next to its weights.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("the root is not an object");
            return new HfConfig(path, doc.RootElement.Clone());
        }
        catch (JsonException e) { throw new HfCheckpointException(HfFault.InvalidConfig, path, $"not valid JSON ({e.Message})."); }
    }

    public static HfConfig Parse(string path, string json)
    {
        using var doc = JsonDocument.Parse(json);
        return new HfConfig(path, doc.RootElement.Clone());
    }

    private bool TryGet(string key, out JsonElement e) =>
        _root.TryGetProperty(key, out e) && e.ValueKind != JsonValueKind.Null;

    private HfCheckpointException Bad(string key, string want, JsonElement e) =>
        new(HfFault.InvalidConfig, Path, $"expected {want}, found {e.GetRawText()}.", key);

    public bool Has(string key) => TryGet(key, out _);

    public int Int(string key, int fallback)
    {
        if (!TryGet(key, out var e)) return fallback;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : throw Bad(key, "an integer", e);
    }

    public float Float(string key, float fallback) => FloatOrNull(key) ?? fallback;

    public float? FloatOrNull(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? (float)e.GetDouble() : throw Bad(key, "a number", e);
    }

    public string String(string key, string fallback) => StringOrNull(key) ?? fallback;

    public string? StringOrNull(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad(key, "a string", e);
    }

    public bool Bool(string key, bool fallback)
    {
        if (!TryGet(key, out var e)) return fallback;
        return e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad(key, "true or false", e) };
    }

    /// <summary>The object at <paramref name="key"/> as a config of its own (same file in messages), or null when absent or null.</summary>
    public HfConfig? Section(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Object ? new HfConfig(Path, e) : throw Bad(key, "an object", e);
    }

    /// <summary>An integer or a list of integers (e.g. <c>eos_token_id</c>), or null when absent.</summary>
    public IReadOnlyList<int>? IntList(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int one)) return [one];
        if (e.ValueKind != JsonValueKind.Array) throw Bad(key, "an integer or a list of integers", e);
        var list = new List<int>();
        foreach (var x in e.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int v) ? v : throw Bad(key, "a list of integers", e));
        return list;
    }

    /// <summary>Label names in id order from <c>id2label</c>, or null when the config has none.</summary>
    public IReadOnlyList<string>? Labels()
    {
        if (!TryGet("id2label", out var e)) return null;
        if (e.ValueKind != JsonValueKind.Object) throw Bad("id2label", "an object", e);
        var pairs = new SortedDictionary<int, string>();
        foreach (var p in e.EnumerateObject())
            if (int.TryParse(p.Name, out int id) && p.Value.ValueKind == JsonValueKind.String) pairs[id] = p.Value.GetString()!;
            else throw Bad("id2label", "integer keys and string values", e);
        if (pairs.Count > 0 && (pairs.Keys.First() != 0 || pairs.Keys.Last() != pairs.Count - 1))
            throw new HfCheckpointException(HfFault.InvalidConfig, Path, "id2label ids are not 0..n-1.", "id2label");
        return pairs.Values.ToList();
    }

    /// <summary>The label count the config declares (<c>id2label</c> size, else <c>num_labels</c>), or null.</summary>
    public int? LabelCount() => Labels()?.Count ?? (Has("num_labels") ? Int("num_labels", 2) : null);
}
