using System.Text.RegularExpressions;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Nn.Lora;

/// <summary>Which layers get adapters, and their shape.</summary>
public sealed record LoraConfig
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public double Dropout { get; init; }
    /// <summary>Name pattern of the Linear modules to wrap (see <see cref="LoraInjector.Matches"/>), e.g. <c>query|value</c>.</summary>
    public string TargetModules { get; init; } = "query|value";
    /// <summary>Modules kept fully trainable besides the adapters (PEFT's modules_to_save), e.g. <c>classifier</c>; null for none.</summary>
    public string? ModulesToSave { get; init; }
    /// <summary>scale = alpha/√r instead of alpha/r.</summary>
    public bool UseRsLora { get; init; }
}

/// <summary>Adds LoRA adapters to a module tree by name, and merges/unloads them.</summary>
public static class LoraInjector
{
    /// <summary>
    /// Whether a dotted module name matches <paramref name="pattern"/>: the pattern is a .NET regex that must match
    /// either the whole name or a whole dot-separated suffix of it. So <c>query|value</c> matches
    /// <c>encoder.layer.0.attention.self.query</c>, and <c>encoder\.layer\.1[01]\..*\.query</c> selects by full path.
    /// </summary>
    public static bool Matches(string pattern, string name) =>
        Regex.IsMatch(name, @"^(?:.*\.)?(?:" + pattern + @")$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Replaces every <see cref="Linear"/> whose name matches <see cref="LoraConfig.TargetModules"/> with a
    /// <see cref="LoraLinear"/> (same position in the tree), then freezes every parameter except the adapters and the
    /// modules matching <see cref="LoraConfig.ModulesToSave"/>. Adapters are initialised in tree order from
    /// <paramref name="rng"/>. Returns the wrapped modules' names; throws if nothing matched.
    /// </summary>
    public static IReadOnlyList<string> Inject(Module root, LoraConfig config, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(root); ArgumentNullException.ThrowIfNull(config); ArgumentNullException.ThrowIfNull(rng);
        var targets = root.NamedModules()
            .Where(m => m.Module is Linear && m.Name.Length > 0 && m.Module.Parent is not LoraLinear && Matches(config.TargetModules, m.Name))
            .ToList();
        if (targets.Count == 0)
            throw new InvalidOperationException($"LoRA target pattern '{config.TargetModules}' matched no Linear module. Linear modules: " +
                string.Join(", ", root.NamedModules().Where(m => m.Module is Linear).Select(m => m.Name).Take(20)));
        foreach (var (name, module) in targets)
        {
            var lora = new LoraLinear((Linear)module, config.Rank, config.Alpha, rng, config.Dropout, config.UseRsLora);
            root.ReplaceModule(name, lora);
        }

        foreach (var p in root.Parameters()) { p.RequiresGrad = false; p.ZeroGrad(); }
        foreach (var (_, layer) in Layers(root))
        {
            layer.LoraA.Weight.RequiresGrad = true;
            layer.LoraB.Weight.RequiresGrad = true;
        }
        if (config.ModulesToSave is { } save)
            foreach (var (name, m) in root.NamedModules())
                if (name.Length > 0 && Matches(save, name))
                    foreach (var p in m.Parameters()) p.RequiresGrad = true;
        return targets.Select(t => t.Name).ToList();
    }

    /// <summary>Shorthand for <see cref="Inject(Module, LoraConfig, Rng)"/>.</summary>
    public static IReadOnlyList<string> Inject(Module root, string targetModules, int rank, double alpha, Rng rng, double dropout = 0, string? modulesToSave = null) =>
        Inject(root, new LoraConfig { TargetModules = targetModules, Rank = rank, Alpha = alpha, Dropout = dropout, ModulesToSave = modulesToSave }, rng);

    /// <summary>Every LoRA layer in the tree with its dotted name.</summary>
    public static IEnumerable<(string Name, LoraLinear Layer)> Layers(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var (n, m) in root.NamedModules())
            if (m is LoraLinear l) yield return (n, l);
    }

    public static void Merge(Module root) { foreach (var (_, l) in Layers(root)) l.Merge(); }

    public static void Unmerge(Module root) { foreach (var (_, l) in Layers(root)) l.Unmerge(); }

    /// <summary>Merges every adapter into its base weight and puts the plain Linear back into the tree (for export).</summary>
    public static void MergeAndUnload(Module root)
    {
        foreach (var (name, l) in Layers(root).ToList())
        {
            l.Merge();
            l.Release();
            root.ReplaceModule(name, l.Base);
        }
    }

    /// <summary>Only the adapter tensors (keys containing <c>lora_A.</c>/<c>lora_B.</c>), as saved adapter files hold.</summary>
    public static OrderedDictionary<string, Tensor> AdapterStateDict(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var d = new OrderedDictionary<string, Tensor>();
        foreach (var (k, v) in root.StateDict())
            if (k.Contains("lora_A.", StringComparison.Ordinal) || k.Contains("lora_B.", StringComparison.Ordinal)) d[k] = v;
        return d;
    }

    /// <summary>The key PEFT uses in <c>adapter_model.safetensors</c> for one of our names.</summary>
    public static string PeftAdapterKey(string name) => "base_model.model." + name;
}
