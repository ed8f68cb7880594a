using System.Text;
using System.Text.RegularExpressions;
using Whetstone.Tensors;

namespace Whetstone.Nn;

/// <summary>One parameter in a freezing report.</summary>
public sealed record ParameterRow(string Name, int[] Shape, bool Trainable, long Count)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// Freezing and unfreezing parameters by name. Patterns are globs over dotted parameter names unless prefixed with
/// <c>re:</c>: in a glob <c>*</c> matches any run of characters (dots included), <c>?</c> one character, and the whole
/// name must match (<c>encoder.layer.*.attention.*</c>, <c>*.bias</c>). <c>re:</c> patterns are .NET regexes that must
/// match the whole name (<c>re:encoder\.layer\.(10|11)\..*</c>). Every call returns how many tensors it changed.
/// </summary>
public static class Freezing
{
    /// <summary>Converts a glob (or <c>re:</c> regex) to an anchored regex.</summary>
    public static Regex Pattern(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.StartsWith("re:", StringComparison.Ordinal))
            return new Regex("^(?:" + pattern[3..] + ")$", RegexOptions.CultureInvariant);
        var sb = new StringBuilder("^");
        foreach (char c in pattern)
            sb.Append(c switch { '*' => ".*", '?' => ".", _ => Regex.Escape(c.ToString()) });
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }

    public static bool Matches(string pattern, string name) => Pattern(pattern).IsMatch(name);

    /// <summary>Sets RequiresGrad on every parameter whose name matches; frozen parameters also drop their gradient.</summary>
    public static int SetTrainable(Module root, string pattern, bool trainable)
    {
        ArgumentNullException.ThrowIfNull(root);
        var re = Pattern(pattern);
        int n = 0;
        foreach (var (name, p) in root.NamedParameters())
            if (re.IsMatch(name)) n += Set(p, trainable);
        SyncBatchNormStatistics(root);
        return n;
    }

    /// <summary>
    /// A BatchNorm layer whose affine parameters are all frozen is part of a frozen backbone: its running statistics
    /// freeze with it (inference behaviour even in training mode); unfreezing it lets them update again.
    /// </summary>
    public static void SyncBatchNormStatistics(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var (_, m) in root.NamedModules())
            if (m is Layers.BatchNorm2d bn) bn.StatisticsFrozen = !bn.Weight.RequiresGrad && !bn.Bias.RequiresGrad;
    }

    public static int Freeze(Module root, string pattern) => SetTrainable(root, pattern, false);

    public static int Unfreeze(Module root, string pattern) => SetTrainable(root, pattern, true);

    public static int FreezeAll(Module root) => SetTrainable(root, "*", false);

    public static int UnfreezeAll(Module root) => SetTrainable(root, "*", true);

    /// <summary>Freezes or unfreezes every parameter of the module at dotted <paramref name="modulePath"/>.</summary>
    public static int SetModuleTrainable(Module root, string modulePath, bool trainable)
    {
        ArgumentNullException.ThrowIfNull(root);
        int n = 0;
        foreach (var p in root.GetModule(modulePath).Parameters()) n += Set(p, trainable);
        SyncBatchNormStatistics(root);
        return n;
    }

    /// <summary>
    /// Freezes every parameter registered before the first parameter of module <paramref name="modulePath"/>
    /// (everything "below" it, nearer the input, in registration order), and that module too when
    /// <paramref name="inclusive"/>. Parameters from there on are left as they are.
    /// E.g. <c>FreezeBefore(bert, "encoder.layer.10")</c> freezes the embeddings and layers 0–9.
    /// </summary>
    public static int FreezeBefore(Module root, string modulePath, bool inclusive = false)
    {
        var (before, inside, _) = Split(root, modulePath);
        int n = 0;
        foreach (var p in before) n += Set(p, false);
        if (inclusive) foreach (var p in inside) n += Set(p, false);
        SyncBatchNormStatistics(root);
        return n;
    }

    /// <summary>
    /// Unfreezes module <paramref name="modulePath"/> and every parameter registered after it (the top of the network);
    /// the "train the last k layers + head" recipe is <c>FreezeAll</c> then <c>UnfreezeFrom(root, "encoder.layer.{L-k}")</c>.
    /// </summary>
    public static int UnfreezeFrom(Module root, string modulePath)
    {
        var (_, inside, after) = Split(root, modulePath);
        int n = 0;
        foreach (var p in inside.Concat(after)) n += Set(p, true);
        SyncBatchNormStatistics(root);
        return n;
    }

    private static (List<Tensor> Before, List<Tensor> Inside, List<Tensor> After) Split(Module root, string modulePath)
    {
        ArgumentNullException.ThrowIfNull(root);
        var target = new HashSet<Tensor>(root.GetModule(modulePath).Parameters(), ReferenceEqualityComparer.Instance);
        if (target.Count == 0) throw new ArgumentException($"Module '{modulePath}' has no parameters to split at.");
        List<Tensor> before = [], inside = [], after = [];
        foreach (var p in root.Parameters())
        {
            if (target.Contains(p)) inside.Add(p);
            else if (inside.Count == 0) before.Add(p);
            else after.Add(p);
        }
        return (before, inside, after);
    }

    private static int Set(Tensor p, bool trainable)
    {
        if (p.RequiresGrad == trainable) return 0;
        p.RequiresGrad = trainable;
        if (!trainable) p.ZeroGrad();
        return 1;
    }

    /// <summary>One row per parameter (each shared tensor once), in registration order.</summary>
    public static IReadOnlyList<ParameterRow> Report(Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return root.NamedParameters().Select(p => new ParameterRow(p.Name, p.Tensor.Shape.ToArray(), p.Tensor.RequiresGrad, p.Tensor.Size)).ToList();
    }

    /// <summary>A fixed-width table of <see cref="Report"/> with totals on the last line.</summary>
    public static string FormatReport(IReadOnlyList<ParameterRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int w = Math.Max(4, rows.Count == 0 ? 0 : rows.Max(r => r.Name.Length));
        int ws = Math.Max(5, rows.Count == 0 ? 0 : rows.Max(r => r.ShapeText.Length));
        var sb = new StringBuilder();
        sb.Append("name".PadRight(w)).Append("  ").Append("shape".PadRight(ws)).Append("  trainable  ").Append("count".PadLeft(12)).Append('\n');
        foreach (var r in rows)
            sb.Append(r.Name.PadRight(w)).Append("  ").Append(r.ShapeText.PadRight(ws)).Append("  ").Append((r.Trainable ? "yes" : "no").PadRight(9))
              .Append("  ").Append(r.Count.ToString("N0").PadLeft(12)).Append('\n');
        long total = rows.Sum(r => r.Count), trainable = rows.Where(r => r.Trainable).Sum(r => r.Count);
        sb.Append($"total {total:N0} parameters, trainable {trainable:N0} ({(total == 0 ? 0 : 100.0 * trainable / total):F2}%)");
        return sb.ToString();
    }
}
