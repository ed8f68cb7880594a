using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.Graph;

/// <summary>A layer with several inputs (Add, Concatenate, Multiply …) inside a <see cref="LayerGraph"/>.</summary>
public abstract class MergeLayer : Module
{
    public abstract Tensor Forward(IReadOnlyList<Tensor> inputs);
}

/// <summary>
/// A conv layer that can run with a per-channel epilogue, so <see cref="LayerGraph"/> can fold an eval-mode batch norm
/// (and a ReLU) into it in passes that train nothing.
/// </summary>
internal interface IScaleShiftConv
{
    /// <summary>weight [Cout, Cin/groups, kH, kW].</summary>
    Tensor Weight { get; }

    /// <summary>bias [Cout] or null.</summary>
    Tensor? Bias { get; }

    /// <summary>This layer's conv without its bias, times scale[co] plus shift[co], then max(·, 0) with relu; records no gradient.</summary>
    Tensor ForwardScaleShift(Tensor input, float[] scale, float[] shift, bool relu);
}

/// <summary>One node of a <see cref="LayerGraph"/>: its layer is the child module registered under <see cref="Name"/>.</summary>
/// <param name="Name">Layer name as in the source model (checkpoint keys are <c>{Name}.weight</c> …).</param>
/// <param name="Kind">The source format's layer type (Keras class name, ONNX op type), for reports.</param>
/// <param name="Inputs">Names of the nodes (or the graph input) this layer reads, in order.</param>
public sealed record GraphNode(string Name, string Kind, IReadOnlyList<string> Inputs);

/// <summary>
/// A network imported from a layer-graph format (TF.js/Keras, ONNX): named layers in topological order, each reading
/// the outputs of earlier layers. Input and every layer work in NCHW, as the rest of the engine; importers convert
/// weights from their source layout.
/// <para>
/// The graph is a model you can cut: <see cref="LayerNames"/> lists the layers in order, <see cref="TruncateAt"/>
/// keeps only what a chosen layer needs (the backbone under a new head), and <see cref="RunFrom"/> restarts the
/// forward pass from a cached intermediate, so a frozen bottom is computed once (feature caching).
/// </para>
/// </summary>
public sealed class LayerGraph : Module<Tensor, Tensor>
{
    private readonly List<GraphNode> _nodes = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    /// <param name="inputName">The name layers use to read the graph's input.</param>
    public LayerGraph(string inputName = "input")
    {
        ArgumentException.ThrowIfNullOrEmpty(inputName);
        InputName = inputName;
        OutputName = inputName;
    }

    public string InputName { get; }

    /// <summary>The node whose value <see cref="Forward"/> returns: the last added, or the cut point.</summary>
    public string OutputName { get; private set; }

    /// <summary>Expected input [C, H, W] (null where the source format does not say; H or W may be 0 for "any").</summary>
    public int[]? InputShape { get; set; }

    public IReadOnlyList<GraphNode> Nodes => _nodes;

    /// <summary>
    /// Whether a pass that trains nothing may fold an eval-mode batch norm (and a ReLU after it) into the conv before
    /// it (<see cref="IScaleShiftConv"/>): one pass over the conv's output instead of three, the same values up to
    /// float rounding. On by default; the intermediate values of the folded layers are then never materialised.
    /// </summary>
    public bool FuseForInference { get; set; } = true;

    public IReadOnlyList<string> LayerNames => _nodes.Select(n => n.Name).ToArray();

    public bool Contains(string name) => _index.ContainsKey(name);

    public GraphNode Node(string name) =>
        _index.TryGetValue(name, out int i) ? _nodes[i] : throw new KeyNotFoundException(UnknownLayer(name));

    /// <summary>The layer module of node <paramref name="name"/>.</summary>
    public Module Layer(string name) => GetModule(Node(name).Name);

    /// <summary>
    /// Appends a layer reading <paramref name="inputs"/> (earlier nodes or <see cref="InputName"/>). A single-input layer
    /// is a <c>Module&lt;Tensor, Tensor&gt;</c>, a multi-input one a <see cref="MergeLayer"/>. It becomes the output.
    /// </summary>
    public GraphNode Add(string name, string kind, Module layer, params string[] inputs)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(inputs);
        if (name == InputName || _index.ContainsKey(name)) throw new ArgumentException($"The graph already has a layer named '{name}'.");
        if (inputs.Length == 0) throw new ArgumentException($"Layer '{name}' ({kind}) has no inputs.");
        foreach (var input in inputs)
            if (input != InputName && !_index.ContainsKey(input))
                throw new ArgumentException($"Layer '{name}' ({kind}) reads '{input}', which is not an earlier layer of the graph.");
        bool ok = layer is MergeLayer || (layer is Module<Tensor, Tensor> && inputs.Length == 1);
        if (!ok) throw new ArgumentException($"Layer '{name}' ({kind}) has {inputs.Length} inputs but its module {layer.GetType().Name} takes " +
                                             (layer is Module<Tensor, Tensor> ? "one." : "neither one tensor nor a list."));
        RegisterModule(name, layer);
        var node = new GraphNode(name, kind, inputs);
        _index[name] = _nodes.Count;
        _nodes.Add(node);
        OutputName = name;
        return node;
    }

    public override Tensor Forward(Tensor input) => Run(input, OutputName);

    /// <summary>Runs the layers <paramref name="output"/> needs (and no others) and returns its value.</summary>
    public Tensor Run(Tensor input, string output) =>
        Evaluate(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [InputName] = input }, output);

    /// <summary>Runs every layer on <paramref name="input"/> and returns each layer's output shape, in graph order.</summary>
    public IReadOnlyList<(string Name, int[] Shape)> TraceShapes(Tensor input)
    {
        var shapes = new List<(string, int[])>();
        Evaluate(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [InputName] = input }, OutputName, (name, y) => shapes.Add((name, y.Shape.ToArray())));
        return shapes;
    }

    /// <summary>
    /// Runs from a known value of node <paramref name="from"/> (e.g. cached features) to <paramref name="output"/>.
    /// Fails if <paramref name="output"/> also depends on the input by a path around <paramref name="from"/>
    /// (see <see cref="IsCutPoint"/>).
    /// </summary>
    public Tensor RunFrom(string from, Tensor value, string? output = null)
    {
        Node(from);
        return Evaluate(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [from] = value }, output ?? OutputName);
    }

    /// <summary>
    /// Whether every path from the input to the output passes through <paramref name="name"/>: then the output is a
    /// function of that one layer's value, which can be cached.
    /// </summary>
    public bool IsCutPoint(string name)
    {
        if (name == OutputName) return true;
        Node(name);
        var reach = new HashSet<string>(StringComparer.Ordinal) { InputName };
        foreach (var n in _nodes)
            if (n.Name != name && n.Inputs.Any(reach.Contains)) reach.Add(n.Name);
        return !reach.Contains(OutputName);
    }

    /// <summary>The layers <paramref name="output"/> depends on (itself included), in graph order.</summary>
    public IReadOnlyList<string> Ancestors(string output)
    {
        var need = new HashSet<string>(StringComparer.Ordinal) { Node(output).Name };
        for (int i = _index[output]; i >= 0; i--)
            if (need.Contains(_nodes[i].Name))
                foreach (var input in _nodes[i].Inputs) need.Add(input);
        return _nodes.Where(n => need.Contains(n.Name)).Select(n => n.Name).ToArray();
    }

    /// <summary>
    /// Cuts the graph at <paramref name="layer"/>: it becomes the output and every layer it does not need is removed
    /// (with its parameters). Returns the removed layer names.
    /// </summary>
    public IReadOnlyList<string> TruncateAt(string layer)
    {
        var keep = new HashSet<string>(Ancestors(layer), StringComparer.Ordinal);
        var removed = _nodes.Where(n => !keep.Contains(n.Name)).Select(n => n.Name).ToArray();
        foreach (var name in removed) RemoveModule(name);
        _nodes.RemoveAll(n => !keep.Contains(n.Name));
        _index.Clear();
        for (int i = 0; i < _nodes.Count; i++) _index[_nodes[i].Name] = i;
        OutputName = layer;
        return removed;
    }

    private Tensor Evaluate(Dictionary<string, Tensor> values, string output, Action<string, Tensor>? observe = null)
    {
        if (values.TryGetValue(output, out var known)) return known;
        int last = _index.TryGetValue(output, out int o) ? o : throw new KeyNotFoundException(UnknownLayer(output));
        // Which nodes are needed: walk back from the output, stopping at known values.
        var need = new HashSet<string>(StringComparer.Ordinal) { output };
        for (int i = last; i >= 0; i--)
        {
            var n = _nodes[i];
            if (!need.Contains(n.Name) || values.ContainsKey(n.Name)) continue;
            foreach (var input in n.Inputs) need.Add(input);
        }
        if (need.Contains(InputName) && !values.ContainsKey(InputName))
            throw new InvalidOperationException($"Layer '{output}' depends on the graph input by a path that does not pass through {string.Join(", ", values.Keys.Select(k => $"'{k}'"))}.");
        // Last use of each value, so intermediates can be dropped early (the scope still owns their memory).
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i <= last; i++)
            if (need.Contains(_nodes[i].Name) && !values.ContainsKey(_nodes[i].Name))
                foreach (var input in _nodes[i].Inputs)
                {
                    lastUse[input] = i;
                    readers[input] = readers.GetValueOrDefault(input) + 1;
                }
        for (int i = 0; i <= last; i++)
        {
            var n = _nodes[i];
            if (!need.Contains(n.Name) || values.ContainsKey(n.Name)) continue;
            var layer = GetModule(n.Name);
            if (observe is null && FuseForInference && TryConvBatchNorm(i, last, output, values, readers) is { } fused)
            {
                values[_nodes[fused.Last].Name] = fused.Value;
                for (int k = i; k <= fused.Last; k++)
                    foreach (var input in _nodes[k].Inputs)
                        if (lastUse.TryGetValue(input, out int u) && u == k && input != output) values.Remove(input);
                i = fused.Last;
                continue;
            }
            Tensor y;
            try
            {
                y = layer is MergeLayer merge
                    ? merge.Forward(n.Inputs.Select(name => values[name]).ToArray())
                    : ((Module<Tensor, Tensor>)layer).Forward(values[n.Inputs[0]]);
            }
            catch (ArgumentException e)
            {
                var shapes = string.Join(", ", n.Inputs.Select(name => Shapes.Format(values[name].Shape.ToArray())));
                throw new InvalidOperationException($"Layer '{n.Name}' ({n.Kind}) failed on input {shapes}: {e.Message}", e);
            }
            values[n.Name] = y;
            observe?.Invoke(n.Name, y);
            foreach (var input in n.Inputs)
                if (lastUse.TryGetValue(input, out int u) && u == i && input != output) values.Remove(input);
        }
        return values[output];
    }

    /// <summary>
    /// Node i a conv (<see cref="IScaleShiftConv"/>) read only by node i + 1, an eval-mode <see cref="BatchNorm2d"/>,
    /// optionally read only by a <see cref="Relu"/> at i + 2, none of them trained in this pass: computes the chain as one
    /// conv with the batch norm's per-channel scale and shift (and the ReLU) in its epilogue. Null when the pattern
    /// does not hold.
    /// </summary>
    private (int Last, Tensor Value)? TryConvBatchNorm(int i, int last, string output, Dictionary<string, Tensor> values, Dictionary<string, int> readers)
    {
        var n = _nodes[i];
        if (i + 1 > last || n.Name == output || GetModule(n.Name) is not IScaleShiftConv conv) return null;
        var bnNode = _nodes[i + 1];
        if (GetModule(bnNode.Name) is not BatchNorm2d bn || bn.UsesBatchStatistics || bnNode.Inputs.Count != 1 || bnNode.Inputs[0] != n.Name
            || readers.GetValueOrDefault(n.Name) != 1 || values.ContainsKey(bnNode.Name)) return null;
        var x = values[n.Inputs[0]];
        bool trains = Tensors.Autograd.Graph.IsEnabled && (x.RequiresGrad || conv.Weight.RequiresGrad || (conv.Bias?.RequiresGrad ?? false)
                                                           || bn.Weight.RequiresGrad || bn.Bias.RequiresGrad);
        if (trains || conv.Weight.Dim(0) != bn.Channels) return null;
        int end = i + 1;
        bool relu = false;
        if (i + 2 <= last && bnNode.Name != output && readers.GetValueOrDefault(bnNode.Name) == 1)
        {
            var next = _nodes[i + 2];
            if (GetModule(next.Name) is Relu && next.Inputs.Count == 1 && next.Inputs[0] == bnNode.Name && !values.ContainsKey(next.Name)) { relu = true; end = i + 2; }
        }
        // the batch norm's own arithmetic (eval): scale = γ·rstd, shift = β − mean·scale, rstd = 1/√(var + ε)
        int c = bn.Channels;
        var gamma = bn.Weight.Contiguous().Span; var beta = bn.Bias.Contiguous().Span;
        var mean = bn.RunningMean.Contiguous().Span; var variance = bn.RunningVar.Contiguous().Span;
        var scale = new float[c]; var shift = new float[c];
        var bias = conv.Bias?.Contiguous().ToArray();
        for (int ch = 0; ch < c; ch++)
        {
            float rstd = 1f / MathF.Sqrt(variance[ch] + bn.Eps);
            scale[ch] = gamma[ch] * rstd;
            shift[ch] = beta[ch] - mean[ch] * scale[ch];
            if (bias is not null) shift[ch] = bias[ch] * scale[ch] + shift[ch];
        }
        return (end, conv.ForwardScaleShift(x, scale, shift, relu));
    }

    private string UnknownLayer(string name)
    {
        var names = _nodes.Select(n => n.Name).ToArray();
        var close = names.Where(n => n.Contains(name, StringComparison.OrdinalIgnoreCase) || name.Contains(n, StringComparison.OrdinalIgnoreCase)).Take(5).ToArray();
        return $"No layer '{name}' in the graph ({names.Length} layers" + (close.Length > 0 ? $"; similar: {string.Join(", ", close)}" : names.Length > 0 ? $"; first: {names[0]}, last: {names[^1]}" : "") + ").";
    }

    protected override string ExtraRepr() => $"{_nodes.Count} layers, input '{InputName}', output '{OutputName}'";
}
