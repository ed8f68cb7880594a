using System.Text;
using Google.Protobuf;
using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using AutogradGraph = Whetstone.Tensors.Autograd.Graph;

namespace Whetstone.Models.Importers.Onnx;

/// <summary>An ONNX file could not be imported; the message names the file and every problem found.</summary>
public sealed class OnnxImportException : Exception
{
    /// <summary>One line per problem (for unsupported operators: op type, node name, opset).</summary>
    public IReadOnlyList<string> Problems { get; }

    public OnnxImportException(string message, IReadOnlyList<string>? problems = null, Exception? inner = null)
        : base(message + (problems is { Count: > 0 } ? "\n  " + string.Join("\n  ", problems) : ""), inner)
    {
        Problems = problems ?? [];
    }
}

/// <summary>One layer of an imported graph, for a dry-run table.</summary>
/// <param name="Name">Layer name in the <see cref="LayerGraph"/> (checkpoint keys are <c>{Name}.weight</c> …).</param>
/// <param name="Op">ONNX operator type ("Pad" for a padding layer added before an asymmetric Conv).</param>
/// <param name="Inputs">The layers it reads.</param>
/// <param name="OutputShape">Output shape from a dry run, or from the file's value_info (0 for a symbolic axis); null if unknown.</param>
/// <param name="Parameters">Trainable and frozen parameter elements of the layer.</param>
public sealed record OnnxLayerInfo(string Name, string Op, IReadOnlyList<string> Inputs, int[]? OutputShape, long Parameters);

/// <summary>The result of importing an ONNX file: the graph plus what the file said about it.</summary>
public sealed class OnnxImport
{
    private readonly Dictionary<string, int[]> _declaredShapes;

    internal OnnxImport(LayerGraph graph, string source, long irVersion, long opset, string producer,
        IReadOnlyDictionary<string, string> tensorToLayer, Dictionary<string, int[]> declaredShapes)
    {
        (Graph, Source, IrVersion, Opset, Producer, TensorToLayer, _declaredShapes) = (graph, source, irVersion, opset, producer, tensorToLayer, declaredShapes);
    }

    /// <summary>The network (in evaluation mode, as the file describes inference).</summary>
    public LayerGraph Graph { get; }

    public string Source { get; }
    public long IrVersion { get; }

    /// <summary>Version of the default (ai.onnx) operator set.</summary>
    public long Opset { get; }

    public string Producer { get; }

    /// <summary>ONNX tensor name → the graph layer (or input) that computes it. Constants have no entry.</summary>
    public IReadOnlyDictionary<string, string> TensorToLayer { get; }

    /// <summary>
    /// The graph's layers in order. With <paramref name="inputShape"/> ([N, C, H, W]) every layer runs once on zeros
    /// (no gradient) and reports its output shape; otherwise shapes come from the file's value_info where it has them.
    /// </summary>
    public IReadOnlyList<OnnxLayerInfo> Layers(int[]? inputShape = null)
    {
        var shapes = inputShape is null ? _declaredShapes : DryRun(Graph, inputShape);
        return Graph.Nodes.Select(n => new OnnxLayerInfo(n.Name, n.Kind, n.Inputs, shapes.GetValueOrDefault(n.Name),
            Graph.Layer(n.Name).ParameterCount())).ToArray();
    }

    /// <summary><see cref="Layers"/> as a text table (name, op, output shape, parameters).</summary>
    public string FormatLayers(int[]? inputShape = null)
    {
        var rows = Layers(inputShape);
        int w = Math.Max(5, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        sb.Append("layer".PadRight(w)).Append("  op                  output shape        params\n");
        foreach (var r in rows)
            sb.Append(r.Name.PadRight(w)).Append("  ").Append(r.Op.PadRight(18)).Append("  ")
              .Append((r.OutputShape is null ? "?" : Shapes.Format(r.OutputShape)).PadRight(18)).Append("  ").Append(r.Parameters).Append('\n');
        return sb.ToString();
    }

    private static Dictionary<string, int[]> DryRun(LayerGraph graph, int[] inputShape)
    {
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        using var scope = new TensorScope();
        using var _ = AutogradGraph.NoGrad();
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [graph.InputName] = Tensor.Zeros(inputShape) };
        foreach (var n in graph.Nodes)
        {
            var layer = graph.Layer(n.Name);
            var y = layer is MergeLayer m ? m.Forward(n.Inputs.Select(i => values[i]).ToArray()) : ((Module<Tensor, Tensor>)layer).Forward(values[n.Inputs[0]]);
            values[n.Name] = y;
            shapes[n.Name] = y.Shape.ToArray();
        }
        return shapes;
    }
}

/// <summary>
/// Imports an ONNX model (one NCHW image input, one output) as a <see cref="LayerGraph"/> whose Conv, Gemm, MatMul and
/// BatchNormalization weights are trainable parameters. Reads the protobuf directly (no generated code); the
/// supported operators are in <see cref="OnnxOps"/>. Anything outside them fails up front with one
/// <see cref="OnnxImportException"/> listing every unsupported operator.
/// </summary>
public static class OnnxModel
{
    /// <summary>Imports <paramref name="path"/> and returns the graph (in evaluation mode).</summary>
    public static LayerGraph Load(string path) => Import(path).Graph;

    /// <summary>Imports <paramref name="path"/> with the tensor-name map and layer listing.</summary>
    public static OnnxImport Import(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file '{path}' does not exist.", path);
        return Import(File.ReadAllBytes(path), path);
    }

    /// <summary>Imports a model held in memory; <paramref name="source"/> names it in errors.</summary>
    public static OnnxImport Import(byte[] bytes, string source = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        OnnxModelProto model;
        try { model = OnnxProtoReader.ReadModel(bytes); }
        catch (Exception e) when (e is InvalidProtocolBufferException or IndexOutOfRangeException or ArgumentException)
        {
            throw new OnnxImportException($"'{source}' is not a readable ONNX file (truncated or corrupt protobuf, {bytes.Length} bytes): {e.Message}", inner: e);
        }
        return new Importer(model, source).Run();
    }

    private sealed class Importer(OnnxModelProto model, string source)
    {
        private readonly Dictionary<string, OnnxValue> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _tensorToLayer = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private long _opset;

        private OnnxImportException Fail(string message, IReadOnlyList<string>? problems = null, Exception? inner = null) =>
            new($"Cannot import ONNX model '{source}': {message}", problems, inner);

        public OnnxImport Run()
        {
            var g = model.Graph ?? throw Fail("the file has no graph (is it an ONNX ModelProto?).");
            _opset = model.DefaultOpset;

            // 1. Everything unsupported, in one message, before any work.
            var problems = new List<string>();
            foreach (var n in g.Nodes)
            {
                string where = $"node '{n.Name}'" + (n.Name.Length == 0 ? $" (output '{n.Outputs.FirstOrDefault()}')" : "");
                if (n.Domain is not ("" or "ai.onnx"))
                    problems.Add($"{n.OpType} ({where}, domain '{n.Domain}', opset {DomainOpset(n.Domain)}): custom-domain operators are not supported");
                else if (!OnnxOps.Supported.Contains(n.OpType))
                    problems.Add($"{n.OpType} ({where}, opset {_opset})");
                else if (OnnxOps.Check(n, _opset) is { } why)
                    problems.Add($"{n.OpType} ({where}, opset {_opset}): {why} is not supported");
            }
            if (problems.Count > 0)
            {
                var types = problems.Select(p => p[..p.IndexOf(' ')]).Distinct().ToArray();
                throw Fail($"{problems.Count} node(s) use operators or features the importer does not support ({string.Join(", ", types)}):", problems);
            }
            if (model.FunctionCount > 0) throw Fail("model-local functions are not supported.");
            if (g.SparseInitializerCount > 0) throw Fail("sparse initializers are not supported.");

            // 2. Initializers are constants (external data is out of scope).
            var external = g.Initializers.Where(t => t.External).Select(t => t.Name).ToArray();
            if (external.Length > 0)
                throw Fail($"{external.Length} initializer(s) keep their data in external files, which is not supported; save the model with the weights inside the .onnx file (e.g. onnx.save(model, path, save_as_external_data=False)). First: {string.Join(", ", external.Take(5))}.");
            foreach (var t in g.Initializers) _values[t.Name] = Const(t, $"initializer '{t.Name}'");

            // 3. One image input, one output.
            var inputs = g.Inputs.Where(i => !_values.ContainsKey(i.Name)).ToArray();
            if (inputs.Length != 1)
                throw Fail($"the graph has {inputs.Length} inputs ({string.Join(", ", inputs.Select(i => $"'{i.Name}'"))}); this importer supports exactly one image input [N, C, H, W].");
            if (g.Outputs.Count != 1)
                throw Fail($"the graph has {g.Outputs.Count} outputs ({string.Join(", ", g.Outputs.Select(o => $"'{o.Name}'"))}); this importer supports exactly one.");
            var input = inputs[0];
            if (!input.IsTensor || input.Shape is not { Count: 4 } || input.ElemType is not (OnnxDataType.Float or OnnxDataType.Undefined))
                throw Fail($"input '{input.Name}' is {Describe(input)}; an image input must be a float tensor [N, C, H, W].");
            string inputName = Unique(Sanitize(input.Name, "input"));
            var graph = new LayerGraph(inputName)
            {
                InputShape = input.Shape.Skip(1).Select(d => d.Value is > 0 ? (int)d.Value.Value : 0).ToArray(),
            };
            _values[input.Name] = new OnnxRuntimeValue(inputName);
            _tensorToLayer[input.Name] = inputName;

            // 4. Nodes in topological order.
            var nodes = TopologicalOrder(g);
            var consumers = new Dictionary<string, List<OnnxNodeProto>>(StringComparer.Ordinal);
            foreach (var n in nodes)
                foreach (var i in n.Inputs.Where(i => i.Length > 0).Distinct())
                    (consumers.TryGetValue(i, out var list) ? list : consumers[i] = []).Add(n);
            var outputName = g.Outputs[0].Name;
            var fused = new HashSet<OnnxNodeProto>(ReferenceEqualityComparer.Instance);
            for (int k = 0; k < nodes.Count; k++)
            {
                var n = nodes[k];
                if (fused.Contains(n)) continue;
                try { AddNode(graph, n, consumers, outputName, fused); }
                catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
                {
                    throw Fail($"node '{n.Name}' ({n.OpType}, opset {_opset}): {e.Message}", inner: e);
                }
            }

            // 5. The output must be computed from the input; layers it does not need are dropped.
            if (!_values.TryGetValue(outputName, out var outValue)) throw Fail($"no node computes the graph output '{outputName}'.");
            if (outValue is not OnnxRuntimeValue { Layer: var outLayer } || outLayer == inputName)
                throw Fail($"the graph output '{outputName}' does not depend on the input through any layer.");
            graph.TruncateAt(outLayer);
            foreach (var stale in _tensorToLayer.Where(p => p.Value != inputName && !graph.Contains(p.Value)).Select(p => p.Key).ToArray())
                _tensorToLayer.Remove(stale);
            graph.Eval();

            var declared = new Dictionary<string, int[]>(StringComparer.Ordinal);
            foreach (var v in g.ValueInfo.Concat(g.Outputs))
                if (v.Shape is not null && _tensorToLayer.TryGetValue(v.Name, out var layer) && layer != inputName)
                    declared[layer] = v.Shape.Select(d => d.Value is > 0 ? (int)d.Value.Value : 0).ToArray();
            return new OnnxImport(graph, source, model.IrVersion, _opset, (model.ProducerName + " " + model.ProducerVersion).Trim(), _tensorToLayer, declared);
        }

        private void AddNode(LayerGraph graph, OnnxNodeProto n, Dictionary<string, List<OnnxNodeProto>> consumers, string outputName, HashSet<OnnxNodeProto> fused)
        {
            // The only reader of tensor t (null when several nodes, or the graph output, read it).
            OnnxNodeProto? OnlyUser(string t) =>
                t != outputName && consumers.TryGetValue(t, out var users) && users.Count == 1 ? users[0] : null;
            bool IsScalar(string t, float v) => _values.GetValueOrDefault(t) is OnnxConstValue { Tensor: { Size: 1 } c } && c.ToArray()[0] == v;

            var operands = n.Inputs.Select(i => i.Length == 0 ? null : _values.TryGetValue(i, out var v) ? v : throw new FormatException($"it reads '{i}', which no earlier node, initializer or input provides")).ToList();
            var ctx = new OnnxNodeContext(n, _opset, operands);
            var outputs = n.Outputs.Where(o => o.Length > 0).ToArray();
            OnnxBuilt built;
            OnnxNodeProto[]? absorbed = null;
            if (n.OpType == "MatMul" && outputs.Length == 1 && OnlyUser(outputs[0]) is { OpType: "Add" } add
                && add.Inputs.Count == 2 && add.Inputs.FirstOrDefault(i => i != outputs[0]) is { } other
                && _values.GetValueOrDefault(other) is OnnxConstValue bias && OnnxOps.CanFuseBias(ctx, bias.Tensor))
            {
                // MatMul + Add(constant row) is a Linear layer with a (trainable) bias.
                built = OnnxOps.MatMul(ctx, bias.Tensor);
                absorbed = [add];
            }
            else if (n.OpType == "Add" && outputs.Length == 1 && n.Inputs.Count == 2 && IsScalar(n.Inputs[1], 3) && operands[0] is OnnxRuntimeValue
                && OnlyUser(outputs[0]) is { OpType: "Clip" } clip && IsRelu6(clip)
                && OnlyUser(clip.Outputs[0]) is { OpType: "Mul" } mul && mul.Inputs.Order().SequenceEqual(new[] { n.Inputs[0], clip.Outputs[0] }.Order())
                && OnlyUser(mul.Outputs[0]) is { OpType: "Div" } div && div.Inputs[0] == mul.Outputs[0] && IsScalar(div.Inputs[1], 6))
            {
                // x · clip(x + 3, 0, 6) / 6 (how exporters spell hard-swish before opset 14): one fused HardSwish layer.
                built = new OnnxBuilt([new OnnxStep("", "HardSwish", new OnnxFunction("HardSwish (fused Add+Clip+Mul+Div)", [null], x => x[0].HardSwish()))], [0]);
                absorbed = [clip, mul, div];
                n = div;
                outputs = [div.Outputs[0]];
            }
            else built = OnnxOps.Build(ctx);

            if (built.Constant is { } constant) { foreach (var o in outputs) _values[o] = constant; return; }
            if (built.AliasOf >= 0) { foreach (var o in outputs) Alias(o, operands[built.AliasOf]!); return; }
            if (outputs.Length != 1) throw new FormatException($"it has {outputs.Length} outputs; only one is supported");

            // All operands constant: fold the node now.
            if (built.RuntimeSlots.All(s => operands[s] is OnnxConstValue))
            {
                _values[outputs[0]] = Fold(built, built.RuntimeSlots.Select(s => ((OnnxConstValue)operands[s]!).Tensor).ToArray());
                return;
            }
            string baseName = Unique(Sanitize(n.Name.Length > 0 ? n.Name : outputs[0], n.OpType));
            var reads = built.RuntimeSlots.Select(s => ((OnnxRuntimeValue)operands[s]!).Layer).ToArray();
            string last = "";
            foreach (var step in built.Steps)
            {
                string name = step.Suffix.Length == 0 ? baseName : Unique(baseName + step.Suffix);
                graph.Add(name, step.Kind.Length > 0 ? step.Kind : absorbed is null ? n.OpType : "MatMul+Add", step.Module, last.Length == 0 ? reads : [last]);
                last = name;
            }
            _values[outputs[0]] = new OnnxRuntimeValue(last);
            _tensorToLayer[outputs[0]] = last;
            if (absorbed is not null)
            {
                fused.UnionWith(absorbed);
                _values[absorbed[^1].Outputs[0]] = new OnnxRuntimeValue(last);
                _tensorToLayer[absorbed[^1].Outputs[0]] = last;
            }
        }

        private bool IsRelu6(OnnxNodeProto clip)
        {
            if (_opset < 11) return clip.Attribute("min")?.F == 0 && clip.Attribute("max")?.F == 6;
            return clip.Inputs.Count == 3 && _values.GetValueOrDefault(clip.Inputs[1]) is OnnxConstValue lo && _values.GetValueOrDefault(clip.Inputs[2]) is OnnxConstValue hi
                && lo.Tensor.Size == 1 && hi.Tensor.Size == 1 && lo.AsFloats()[0] == 0 && hi.AsFloats()[0] == 6;
        }

        private void Alias(string output, OnnxValue value)
        {
            _values[output] = value;
            if (value is OnnxRuntimeValue r) _tensorToLayer[output] = r.Layer;
        }

        private static OnnxConstValue Fold(OnnxBuilt built, Tensor[] inputs)
        {
            using var _ = AutogradGraph.NoGrad();
            Tensor? y = null;
            foreach (var step in built.Steps)
                y = (step.Module, y) switch
                {
                    (MergeLayer m, null) => m.Forward(inputs),
                    (MergeLayer m, _) => m.Forward([y]),
                    (Module<Tensor, Tensor> f, null) => f.Forward(inputs[0]),
                    (Module<Tensor, Tensor> f, _) => f.Forward(y),
                    _ => throw new InvalidOperationException($"{step.Module.GetType().Name} is not a layer"),
                };
            if (y is null) throw new InvalidOperationException("nothing to fold");
            var t = Tensor.Persistent(y.Shape.ToArray());
            y.ToArray().CopyTo(t.Span);
            return new OnnxConstValue(t, null);
        }

        private static OnnxConstValue Const(OnnxTensorProto t, string what)
        {
            if (t.Segmented) throw new OnnxImportException($"{what} is segmented, which is not supported.");
            try { return OnnxOps.ToConst(t); }
            catch (Exception e) when (e is FormatException or OverflowException) { throw new OnnxImportException($"{what}: {e.Message}", inner: e); }
        }

        private long DomainOpset(string domain) => model.OpsetImports.Where(o => o.Domain == domain).Select(o => o.Version).DefaultIfEmpty(0).Max();

        private static List<OnnxNodeProto> TopologicalOrder(OnnxGraphProto g)
        {
            var producer = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < g.Nodes.Count; i++) foreach (var o in g.Nodes[i].Outputs) if (o.Length > 0) producer[o] = i;
            var state = new int[g.Nodes.Count];   // 0 new, 1 visiting, 2 done
            var order = new List<OnnxNodeProto>(g.Nodes.Count);
            for (int root = 0; root < g.Nodes.Count; root++)
            {
                if (state[root] != 0) continue;
                var stack = new Stack<(int Node, int Next)>();
                stack.Push((root, 0));
                state[root] = 1;
                while (stack.Count > 0)
                {
                    var (v, next) = stack.Pop();
                    var ins = g.Nodes[v].Inputs;
                    if (next < ins.Count)
                    {
                        stack.Push((v, next + 1));
                        if (ins[next].Length > 0 && producer.TryGetValue(ins[next], out int p))
                        {
                            if (state[p] == 1) throw new OnnxImportException($"the graph has a cycle through node '{g.Nodes[p].Name}' ({g.Nodes[p].OpType}).");
                            if (state[p] == 0) { state[p] = 1; stack.Push((p, 0)); }
                        }
                        continue;
                    }
                    state[v] = 2;
                    order.Add(g.Nodes[v]);
                }
            }
            return order;
        }

        private string Unique(string name)
        {
            string candidate = name;
            for (int i = 2; !_names.Add(candidate); i++) candidate = $"{name}_{i}";
            return candidate;
        }

        /// <summary>A module name from an ONNX name: '/features/conv/Conv' → 'features_conv_Conv', 'p2o.Conv.0' → 'p2o_Conv_0'.</summary>
        private static string Sanitize(string name, string fallback)
        {
            var sb = new StringBuilder(name.Length);
            foreach (char ch in name)
            {
                char c = char.IsAsciiLetterOrDigit(ch) ? ch : '_';
                if (c == '_' && (sb.Length == 0 || sb[^1] == '_')) continue;
                sb.Append(c);
            }
            while (sb.Length > 0 && sb[^1] == '_') sb.Length--;
            return sb.Length > 0 ? sb.ToString() : fallback;
        }

        private static string Describe(OnnxValueInfoProto v) =>
            !v.IsTensor ? "not a tensor"
            : v.Shape is null ? $"a {v.ElemType} tensor of unknown rank"
            : $"a {v.ElemType} tensor [{string.Join(", ", v.Shape.Select(d => d.Value?.ToString() ?? d.Param ?? "?"))}]";
    }
}
