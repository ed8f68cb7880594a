using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;

namespace Whetstone.Nn.Optimizers;

/// <summary>
/// Parameters that share hyperparameters. <see cref="Lr"/>/<see cref="WeightDecay"/> left null use the optimizer's
/// defaults; <see cref="LrScale"/> multiplies the learning rate (discriminative / layer-wise learning rates).
/// </summary>
public sealed class ParamGroup
{
    public ParamGroup(IEnumerable<(string Name, Tensor Tensor)> parameters, double? lr = null, double? weightDecay = null, double lrScale = 1, string label = "")
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToList();
        Lr = lr;
        WeightDecay = weightDecay;
        LrScale = lrScale;
        Label = label;
    }

    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }
    public double? Lr { get; set; }
    public double? WeightDecay { get; set; }
    public double LrScale { get; set; }
    public string Label { get; set; }

    public override string ToString() => $"{Label} ({Parameters.Count} tensors, lr={Lr?.ToString() ?? "default"}×{LrScale}, wd={WeightDecay?.ToString() ?? "default"})";
}

/// <summary>
/// Per-parameter optimizer state by parameter name, for checkpoints and exact resume: each parameter's step count
/// and its buffers under <c>{name}.{buffer}</c> (AdamW: <c>exp_avg</c>, <c>exp_avg_sq</c>; SGD: <c>momentum_buffer</c>).
/// The tensors are the live state (copy before training on if they must not change).
/// </summary>
public sealed record OptimizerState(long StepCount, IReadOnlyDictionary<string, long> Steps, IReadOnlyDictionary<string, Tensor> Buffers);

/// <summary>
/// Base optimizer: parameter groups, a schedule multiplier, state by name. <see cref="Step"/> updates every parameter
/// that requires a gradient and has one (<see cref="Tensor.Grad"/> not null); others are skipped and their state is
/// not advanced. State lives in persistent memory.
/// <para>
/// <b>Gradient accumulation.</b> Backward adds into existing parameter gradients until <see cref="ZeroGrad"/>, so
/// k micro-batches whose losses are each scaled by 1/k (means over equal-size micro-batches) accumulate exactly the
/// full-batch mean gradient: run k forward/backward passes, then one <c>Step()</c> and one <c>ZeroGrad()</c>.
/// </para>
/// </summary>
public abstract class Optimizer
{
    private protected sealed class ParamState(long step, Tensor?[] buffers)
    {
        public long Step = step;
        public readonly Tensor?[] Buffers = buffers;
    }

    private readonly List<ParamGroup> _groups;
    private readonly Dictionary<Tensor, ParamState> _state = new(ReferenceEqualityComparer.Instance);

    private protected Optimizer(IEnumerable<ParamGroup> groups, double lr, double weightDecay)
    {
        ArgumentNullException.ThrowIfNull(groups);
        _groups = groups.ToList();
        Lr = lr;
        WeightDecay = weightDecay;
        var seenTensors = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var seenNames = new HashSet<string>();
        foreach (var g in _groups)
            foreach (var (name, p) in g.Parameters)
            {
                if (!seenTensors.Add(p)) throw new ArgumentException($"Parameter '{name}' appears in more than one parameter group.");
                if (!seenNames.Add(name)) throw new ArgumentException($"Two parameters are both named '{name}'; optimizer state is keyed by name.");
                if (!p.IsContiguous || p.Storage.Pooled) throw new ArgumentException($"Parameter '{name}' must be contiguous and persistent.");
            }
    }

    /// <summary>Single group from named parameters.</summary>
    private protected static IEnumerable<ParamGroup> OneGroup(IEnumerable<(string Name, Tensor Tensor)> parameters) => [new ParamGroup(parameters, label: "all")];

    public IReadOnlyList<ParamGroup> Groups => _groups;

    /// <summary>Default (peak) learning rate for groups without their own.</summary>
    public double Lr { get; set; }

    /// <summary>Default weight decay for groups without their own.</summary>
    public double WeightDecay { get; set; }

    /// <summary>Schedule multiplier applied to every group's learning rate (set it from an LrSchedule before each step).</summary>
    public double LrFactor { get; set; } = 1;

    /// <summary>Number of <see cref="Step"/> calls so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>The learning rate the next step uses for <paramref name="group"/>: (group.Lr ?? Lr) · LrScale · LrFactor.</summary>
    public double GroupLr(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return (group.Lr ?? Lr) * group.LrScale * LrFactor;
    }

    public double GroupWeightDecay(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.WeightDecay ?? WeightDecay;
    }

    /// <summary>Names of the per-parameter buffers this optimizer keeps (in state-dict order).</summary>
    private protected abstract string[] BufferNames { get; }

    /// <summary>Updates one parameter in place; <paramref name="state"/>.Step was already incremented.</summary>
    private protected abstract void Update(Tensor param, Tensor grad, ParamState state, double lr, double weightDecay);

    /// <summary>One optimization step over every parameter with a gradient.</summary>
    public void Step()
    {
        using var noGrad = Graph.NoGrad();
        foreach (var g in _groups)
        {
            double lr = GroupLr(g), wd = GroupWeightDecay(g);
            foreach (var (_, p) in g.Parameters)
            {
                if (!p.RequiresGrad || p.Grad is not { } grad) continue;
                var st = StateOf(p);
                st.Step++;
                Update(p, grad, st, lr, wd);
            }
        }
        StepCount++;
    }

    /// <summary>Clears the gradients of every parameter in every group.</summary>
    public void ZeroGrad()
    {
        foreach (var g in _groups)
            foreach (var (_, p) in g.Parameters) p.ZeroGrad();
    }

    private ParamState StateOf(Tensor p)
    {
        if (!_state.TryGetValue(p, out var st)) _state[p] = st = new ParamState(0, new Tensor?[BufferNames.Length]);
        return st;
    }

    /// <summary>A zeroed persistent buffer shaped like <paramref name="p"/>.</summary>
    private protected static Tensor NewBuffer(Tensor p)
    {
        var t = Tensor.Persistent(p.Shape.ToArray());
        t.Span.Clear();
        return t;
    }

    /// <summary>The state of every parameter that has been stepped, by parameter name.</summary>
    public OptimizerState StateDict()
    {
        var steps = new Dictionary<string, long>();
        var buffers = new Dictionary<string, Tensor>();
        foreach (var g in _groups)
            foreach (var (name, p) in g.Parameters)
            {
                if (!_state.TryGetValue(p, out var st)) continue;
                steps[name] = st.Step;
                for (int i = 0; i < BufferNames.Length; i++)
                    if (st.Buffers[i] is { } b) buffers[name + "." + BufferNames[i]] = b;
            }
        return new OptimizerState(StepCount, steps, buffers);
    }

    /// <summary>
    /// Restores state saved by <see cref="StateDict"/> (values are copied). With <paramref name="strict"/>, entries for
    /// parameters this optimizer does not have, unknown buffer names and shape mismatches throw.
    /// </summary>
    public void LoadStateDict(OptimizerState state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var byName = new Dictionary<string, Tensor>();
        foreach (var g in _groups) foreach (var (n, p) in g.Parameters) byName[n] = p;
        var errors = new List<string>();
        foreach (var n in state.Steps.Keys) if (!byName.ContainsKey(n)) errors.Add($"unexpected parameter '{n}'");
        foreach (var (key, t) in state.Buffers)
        {
            int dot = key.LastIndexOf('.');
            string pn = dot < 0 ? key : key[..dot], bn = dot < 0 ? "" : key[(dot + 1)..];
            if (!byName.TryGetValue(pn, out var p)) { errors.Add($"unexpected buffer '{key}'"); continue; }
            if (Array.IndexOf(BufferNames, bn) < 0) errors.Add($"unknown buffer kind '{key}' (this optimizer keeps {string.Join(", ", BufferNames)})");
            else if (!t.Shape.SequenceEqual(p.Shape)) errors.Add($"shape mismatch for '{key}'");
        }
        if (errors.Count > 0 && (strict || errors.Any(e => e.StartsWith("shape", StringComparison.Ordinal))))
            throw new InvalidOperationException("Error loading optimizer state:\n  " + string.Join("\n  ", errors));

        _state.Clear();
        foreach (var (n, step) in state.Steps)
        {
            if (!byName.TryGetValue(n, out var p)) continue;
            var st = StateOf(p);
            st.Step = step;
            for (int i = 0; i < BufferNames.Length; i++)
                if (state.Buffers.TryGetValue(n + "." + BufferNames[i], out var src))
                {
                    var dst = NewBuffer(p);
                    if (src.IsContiguous) src.Span.CopyTo(dst.Span); else src.ToArray().AsSpan().CopyTo(dst.Span);
                    st.Buffers[i] = dst;
                }
        }
        StepCount = state.StepCount;
    }
}
