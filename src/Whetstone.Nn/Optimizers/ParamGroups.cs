using System.Text.RegularExpressions;
using Whetstone.Tensors;

namespace Whetstone.Nn.Optimizers;

/// <summary>Builders for the usual parameter-group layouts.</summary>
public static partial class ParamGroups
{
    /// <summary>
    /// Whether a parameter conventionally gets no weight decay: any 0-/1-D tensor (biases, norm scales and shifts), a
    /// name ending in <c>bias</c>, or a name with a normalisation segment (containing <c>norm</c>, e.g. <c>LayerNorm</c>,
    /// <c>layer_norm</c>, <c>input_layernorm</c>, <c>norm1</c>; or starting with <c>ln</c>/<c>bn</c>, e.g. <c>ln_f</c>, <c>bn1</c>).
    /// </summary>
    public static bool IsNoDecay(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(name); ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Rank <= 1) return true;
        var parts = name.Split('.');
        if (parts[^1] == "bias") return true;
        foreach (var s in parts.AsSpan(0, parts.Length - 1))
        {
            var l = s.ToLowerInvariant();
            if (l.Contains("norm", StringComparison.Ordinal) || NormAbbrev().IsMatch(l)) return true;
        }
        return false;
    }

    [GeneratedRegex(@"^(ln|bn)(_?[a-z0-9]*)?$")]
    private static partial Regex NormAbbrev();

    /// <summary>
    /// Groups named parameters by the (lr scale, weight decay) that <paramref name="assign"/> gives each, keeping
    /// first-appearance order of the groups and registration order within them.
    /// </summary>
    public static IReadOnlyList<ParamGroup> Build(IEnumerable<(string Name, Tensor Tensor)> parameters, Func<string, Tensor, (double LrScale, double WeightDecay)> assign)
    {
        ArgumentNullException.ThrowIfNull(parameters); ArgumentNullException.ThrowIfNull(assign);
        var order = new List<(double, double)>();
        var members = new Dictionary<(double, double), List<(string, Tensor)>>();
        foreach (var (n, t) in parameters)
        {
            var key = assign(n, t);
            if (!members.TryGetValue(key, out var list)) { members[key] = list = []; order.Add(key); }
            list.Add((n, t));
        }
        return order.Select(k => new ParamGroup(members[k], weightDecay: k.Item2, lrScale: k.Item1,
            label: (k.Item2 == 0 ? "no_decay" : "decay") + (k.Item1 == 1 ? "" : $"_x{k.Item1:G4}"))).ToList();
    }

    /// <summary>
    /// The standard layout: weight decay <paramref name="weightDecay"/> on matrices, none on biases and norm
    /// parameters (<see cref="IsNoDecay"/>), each optionally split further by a per-parameter learning-rate multiplier
    /// (<paramref name="lrScale"/>, e.g. <see cref="LayerwiseLrScale"/> or "×10 for the head"). Only trainable parameters
    /// unless <paramref name="includeFrozen"/> (useful for gradual unfreezing: frozen ones are skipped at each step).
    /// </summary>
    public static IReadOnlyList<ParamGroup> Standard(Module model, double weightDecay, Func<string, double>? lrScale = null, bool includeFrozen = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var ps = includeFrozen ? model.NamedParameters() : model.NamedTrainableParameters();
        return Build(ps, (n, t) => (lrScale?.Invoke(n) ?? 1, IsNoDecay(n, t) ? 0 : weightDecay));
    }

    /// <summary>
    /// Layer-wise learning-rate decay (LLRD): a parameter in block i (name segment <c>layer.i</c>, <c>layers.i</c>,
    /// <c>h.i</c> or <c>blocks.i</c>) gets decay^(L − i), embeddings (a segment containing <c>embed</c>) decay^(L + 1),
    /// and everything else (head, pooler, final norm) 1, for L = <paramref name="numLayers"/>.
    /// </summary>
    public static Func<string, double> LayerwiseLrScale(int numLayers, double decay) => name =>
    {
        var m = BlockIndex().Match(name);
        if (m.Success) return Math.Pow(decay, numLayers - int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        if (name.Split('.').Any(s => s.Contains("embed", StringComparison.OrdinalIgnoreCase))) return Math.Pow(decay, numLayers + 1);
        return 1;
    };

    [GeneratedRegex(@"(?:^|\.)(?:layer|layers|h|blocks)\.(\d+)\.")]
    private static partial Regex BlockIndex();
}
