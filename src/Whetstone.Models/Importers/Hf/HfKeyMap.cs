using System.Text.RegularExpressions;

namespace Whetstone.Models.Importers.Hf;

/// <summary>
/// How a family's Hugging Face checkpoint keys differ from its module paths, as data; everything else is derived from
/// the module tree (<see cref="HfKeyMap.Derive"/>). Patterns use <c>{base}</c> for the optional
/// <see cref="BasePrefix"/>, <c>{n}</c> for a layer index, <c>{w}</c> for <c>weight</c> or <c>bias</c> and <c>*</c> for
/// any rest.
/// </summary>
/// <param name="BasePrefix">The base model's module name with its dot (<c>bert.</c>): a checkpoint of the bare base
/// model (BertModel, sentence-transformers) has keys without it.</param>
/// <param name="Ignore">Checkpoint tensors that are read and dropped (buffers the model computes, other heads).</param>
/// <param name="Renames">Checkpoint key pattern → module path, where the two differ; <c>{n}</c>/<c>{w}</c> captured
/// on the left are substituted on the right in order.</param>
internal sealed record HfCheckpointKeys(
    string BasePrefix,
    IReadOnlyList<string> Ignore,
    IReadOnlyList<(string Checkpoint, string Module)>? Renames = null)
{
    /// <summary>These keys with more ignored patterns (a head's: the other heads a checkpoint may carry).</summary>
    public HfCheckpointKeys WithIgnored(IEnumerable<string> more) => this with { Ignore = [.. Ignore, .. more] };
}

/// <summary>
/// A checkpoint key map derived from a module tree: a key is used when it names a module tensor (with or without the
/// base prefix) or matches a rename, dropped when it matches the ignore list, and unknown otherwise. Renames are tried
/// first, then the module tree, then the ignore list.
/// </summary>
internal sealed class HfKeyMap
{
    private readonly HfCheckpointKeys _keys;
    private readonly HashSet<string> _tensors;
    private readonly List<(Regex Pattern, string Target)> _renames = [];
    private readonly List<Regex> _ignore = [];
    private readonly List<string> _tree = [];

    private HfKeyMap(IEnumerable<string> moduleTensors, HfCheckpointKeys keys)
    {
        _keys = keys;
        _tensors = new HashSet<string>(moduleTensors, StringComparer.Ordinal);
        foreach (var (ckpt, module) in keys.Renames ?? []) _renames.Add((Compile(ckpt), module));
        foreach (var p in keys.Ignore) _ignore.Add(Compile(p));
        foreach (var name in moduleTensors)   // the derived rules, layer indices folded, for messages
        {
            var p = Regex.Replace(name, @"\.\d+\.", ".{n}.");
            if (keys.BasePrefix.Length > 0 && p.StartsWith(keys.BasePrefix, StringComparison.Ordinal)) p = "{base}" + p[keys.BasePrefix.Length..];
            if (!_tree.Contains(p)) _tree.Add(p);
        }
    }

    /// <summary>The map for a model whose state dict has the names <paramref name="moduleTensors"/>.</summary>
    public static HfKeyMap Derive(IEnumerable<string> moduleTensors, HfCheckpointKeys keys) => new(moduleTensors, keys);

    /// <summary>False when the key is unknown; otherwise <paramref name="target"/> is the module path, or null (ignored).</summary>
    public bool TryMap(string key, out string? target)
    {
        foreach (var (rx, module) in _renames)
        {
            var m = rx.Match(key);
            if (!m.Success) continue;
            int g = 1;
            target = Regex.Replace(module, @"\{n\}|\{w\}", _ => m.Groups[g++].Value);
            return true;
        }
        target = key;
        if (_tensors.Contains(key)) return true;
        var prefixed = _keys.BasePrefix + key;
        if (_keys.BasePrefix.Length > 0 && !key.StartsWith(_keys.BasePrefix, StringComparison.Ordinal) && _tensors.Contains(prefixed))
        {
            target = prefixed;
            return true;
        }
        target = null;
        return _ignore.Any(rx => rx.IsMatch(key));
    }

    /// <summary>The rules in order: module tensors (as patterns), renames, ignored patterns (→ null).</summary>
    public IEnumerable<string> Patterns =>
        _tree.Concat((_keys.Renames ?? []).Select(r => $"{r.Checkpoint} → {r.Module}")).Concat(_keys.Ignore.Select(p => p + " → null"));

    private Regex Compile(string pattern) => new("^" + Regex.Escape(pattern)
        .Replace(@"\{base}", "(?:" + Regex.Escape(_keys.BasePrefix) + ")?", StringComparison.Ordinal)
        .Replace(@"\{n}", @"(\d+)", StringComparison.Ordinal)
        .Replace(@"\{w}", "(weight|bias)", StringComparison.Ordinal)
        .Replace(@"\*", ".*", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);
}
