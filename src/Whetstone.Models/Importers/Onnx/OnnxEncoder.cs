using System.Text.Json.Nodes;
using Whetstone.Models.Formats;
using Whetstone.Tensors;

namespace Whetstone.Models.Importers.Onnx;

/// <summary>What <see cref="OnnxEncoder.Import"/> found: the checkpoint in Hugging Face naming and what it left out.</summary>
/// <param name="Tensors">Hugging Face BERT keys (BertModel naming: <c>embeddings.…</c>, <c>encoder.layer.N.…</c>,
/// <c>pooler.dense.…</c>) → shape and values, Linear weights as [out, in].</param>
/// <param name="Config">A BERT <c>config.json</c> read off the graph (sizes from the weights, heads from the reshapes,
/// epsilon and activation from the nodes).</param>
/// <param name="Sources">Each Hugging Face key → the ONNX initializer it came from (with "ᵀ" when transposed).</param>
/// <param name="Reported">Initializers and graph outputs deliberately not imported, each with the reason.</param>
public sealed record OnnxEncoderCheckpoint(
    string Source,
    IReadOnlyDictionary<string, (int[] Shape, float[] Data)> Tensors,
    JsonObject Config,
    IReadOnlyDictionary<string, string> Sources,
    IReadOnlyList<string> Reported)
{
    public int Layers => (int)Config["num_hidden_layers"]!;
    public bool HasPooler => Tensors.ContainsKey("pooler.dense.weight");

    /// <summary>
    /// Writes a Hugging Face folder: <c>config.json</c>, <c>model.safetensors</c> and <c>onnx_import.json</c> (where
    /// every tensor came from); the caller copies the tokenizer files next to it.
    /// </summary>
    public void WriteHfFolder(string folder)
    {
        Directory.CreateDirectory(folder);
        SafeTensors.Save(Path.Combine(folder, "model.safetensors"),
            Tensors.Select(kv => KeyValuePair.Create(kv.Key, Tensor.From(kv.Value.Data, kv.Value.Shape))),
            new Dictionary<string, string> { ["format"] = "pt", ["source"] = Path.GetFileName(Source) });
        File.WriteAllText(Path.Combine(folder, "config.json"), Config.ToJsonString(new() { WriteIndented = true }));
        var report = new JsonObject
        {
            ["source"] = Source,
            ["tensors"] = new JsonObject(Sources.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["not_imported"] = new JsonArray(Reported.Select(r => (JsonNode?)r).ToArray()),
        };
        File.WriteAllText(Path.Combine(folder, "onnx_import.json"), report.ToJsonString(new() { WriteIndented = true }));
    }
}

/// <summary>
/// Imports an ONNX-exported BERT-family encoder (as <c>torch.onnx</c> / <c>optimum</c> export them) into Hugging Face
/// BERT naming by following the graph's dataflow, not by initializer names: from the embedding lookups of the
/// <c>input_ids</c> / <c>token_type_ids</c> inputs, through each layer's query/key/value projections (told apart by
/// where they enter the attention products), the attention output, the two layer norms (decomposed or
/// <c>LayerNormalization</c>), the feed-forward pair and its activation, to the optional pooler. Linear layers may be
/// <c>MatMul</c> (+ <c>Add</c>) on a [in, out] initializer, <c>MatMul</c> on a transposed one, or <c>Gemm</c>.
/// Every float initializer is used or reported, every shape is checked against the sizes the graph implies, and an
/// initializer whose own name is a Hugging Face key must agree with the role its position gives it. A graph this does
/// not recognise is refused with the node where matching stopped.
/// </summary>
public static class OnnxEncoder
{
    /// <summary>Whether <paramref name="path"/> is an ONNX graph with an <c>input_ids</c> input (a text encoder).</summary>
    public static bool IsTextEncoder(string path)
    {
        if (!File.Exists(path) || !path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return false;
        try { return OnnxProtoReader.ReadInputNames(File.ReadAllBytes(path)).Contains("input_ids"); }
        catch (Exception e) when (e is FormatException or Google.Protobuf.InvalidProtocolBufferException) { return false; }
    }

    /// <summary>The ONNX encoder graph of <paramref name="path"/>: the file itself, or a folder's single
    /// <c>*.onnx</c> (<c>model.onnx</c> first) when the folder has no safetensors weights. Null when it is neither.</summary>
    public static string? FindGraph(string path)
    {
        if (File.Exists(path)) return IsTextEncoder(path) ? path : null;
        if (!Directory.Exists(path) || File.Exists(Path.Combine(path, "model.safetensors")) || File.Exists(Path.Combine(path, "model.safetensors.index.json"))) return null;
        var named = Path.Combine(path, "model.onnx");
        if (IsTextEncoder(named)) return named;
        var graphs = Directory.GetFiles(path, "*.onnx").Where(IsTextEncoder).ToArray();
        return graphs.Length == 1 ? graphs[0] : null;
    }

    /// <summary>Tokenizer files copied next to a converted graph when they sit next to the ONNX file.</summary>
    private static readonly string[] TokenizerFiles = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"];

    /// <summary>
    /// The Hugging Face folder converted from the ONNX graph <paramref name="onnxPath"/>, under
    /// <paramref name="cacheRoot"/>/<c>SHA-256 prefix of the graph</c>/ — written once (atomically: a temp folder
    /// renamed into place), then reused. It holds config.json, model.safetensors, onnx_import.json (where every
    /// tensor came from, what was left out) and the tokenizer files found next to the graph; with only a
    /// <c>vocab.txt</c>, a <c>tokenizer_config.json</c> records whether the vocabulary is lower-cased.
    /// </summary>
    public static (string Folder, bool Converted) ToHfFolder(string onnxPath, string cacheRoot, TextWriter? log = null)
    {
        string hash;
        using (var f = File.OpenRead(onnxPath)) hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
        var folder = Path.Combine(cacheRoot, hash[..16]);
        if (File.Exists(Path.Combine(folder, "onnx_import.json")) && File.Exists(Path.Combine(folder, "model.safetensors"))) return (folder, false);
        log?.WriteLine($"importing {onnxPath} (ONNX encoder graph) into Hugging Face BERT naming: {folder}");
        var ckpt = Import(onnxPath);
        var tmp = folder + $".{Environment.ProcessId}.partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        ckpt.WriteHfFolder(tmp);
        var from = Path.GetDirectoryName(Path.GetFullPath(onnxPath))!;
        foreach (var name in TokenizerFiles)
            if (File.Exists(Path.Combine(from, name))) File.Copy(Path.Combine(from, name), Path.Combine(tmp, name));
        if (File.Exists(Path.Combine(from, "config.json"))) File.Copy(Path.Combine(from, "config.json"), Path.Combine(tmp, "source_config.json"));
        if (File.Exists(Path.Combine(tmp, "vocab.txt")) && !File.Exists(Path.Combine(tmp, "tokenizer_config.json")))
        {
            // a cased vocabulary has capitalised words (ASCII A–Z outside the [SPECIAL] tokens); an uncased one has none
            bool cased = File.ReadLines(Path.Combine(tmp, "vocab.txt")).Select(l => l.TrimEnd('\r'))
                .Any(l => !(l.StartsWith('[') && l.EndsWith(']')) && l.Any(ch => ch is >= 'A' and <= 'Z'));
            File.WriteAllText(Path.Combine(tmp, "tokenizer_config.json"),
                $"{{\n  \"do_lower_case\": {(cased ? "false" : "true")},\n  \"model_max_length\": {ckpt.Config["max_position_embeddings"]},\n  \"note\": \"written by Whetstone: the vocabulary has {(cased ? "" : "no ")}upper-case tokens\"\n}}\n");
        }
        Directory.CreateDirectory(cacheRoot);
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Directory.Move(tmp, folder);
        return (folder, true);
    }

    public static OnnxEncoderCheckpoint Import(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file '{path}' does not exist.", path);
        OnnxModelProto model;
        try { model = OnnxProtoReader.ReadModel(File.ReadAllBytes(path)); }
        catch (Exception e) when (e is FormatException or Google.Protobuf.InvalidProtocolBufferException)
        { throw new OnnxImportException($"{path}: not a readable ONNX model ({e.Message})", null, e); }
        var graph = model.Graph ?? throw new OnnxImportException($"{path}: the model has no graph.");
        return new Matcher(path, graph).Run();
    }

    /// <param name="StoredInOut">The initializer is [in, out] (MatMul's x · W) and is transposed into [out, in].</param>
    private sealed record Linear(string Output, int Out, int In, string WeightName, bool StoredInOut, string? BiasName, OnnxNodeProto Node);

    private sealed record Norm(string Output, float Eps, string GammaName, string BetaName);

    private sealed class Matcher
    {
        private static readonly HashSet<string> PassThrough = ["Reshape", "Transpose", "Unsqueeze", "Squeeze", "Identity", "Cast", "Dropout", "Flatten"];
        private static readonly HashSet<string> ShapeOnly = ["Shape", "Size"];

        private readonly string _path;
        private readonly OnnxGraphProto _g;
        private readonly Dictionary<string, OnnxNodeProto> _producer = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<OnnxNodeProto>> _consumers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, OnnxTensorProto> _init = new(StringComparer.Ordinal);
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (int[] Shape, float[] Data)> _tensors = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _sources = new(StringComparer.Ordinal);
        private readonly List<string> _reported = [];

        public Matcher(string path, OnnxGraphProto g)
        {
            (_path, _g) = (path, g);
            foreach (var t in g.Initializers) _init[t.Name] = t;
            foreach (var n in g.Nodes)
            {
                foreach (var o in n.Outputs) _producer[o] = n;
                foreach (var i in n.Inputs.Where(i => i.Length > 0))
                {
                    if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                    list.Add(n);
                }
            }
        }

        private OnnxImportException Fail(string what, OnnxNodeProto? at = null) =>
            new($"{_path}: not a BERT-family encoder graph this importer reads: {what}" +
                (at is null ? "" : $" (at node '{at.Name}', {at.OpType}{(at.Domain is { Length: > 0 } d ? " of " + d : "")})"));

        // ---------------------------------------------------------------- graph helpers

        private IEnumerable<OnnxNodeProto> Consumers(string t) =>
            (_consumers.GetValueOrDefault(t) ?? []).Where(n => !ShapeOnly.Contains(n.OpType));

        private OnnxTensorProto? Const(string t)
        {
            if (_init.TryGetValue(t, out var i)) return i;
            if (_producer.TryGetValue(t, out var n) && n.OpType == "Constant") return n.Attribute("value")?.T;
            return null;
        }

        private float? Scalar(string t) => Const(t) is { ElementCount: 1 } c ? c.ToFloats()[0] : null;

        /// <summary>Follows single-consumer reshapes and transposes from <paramref name="t"/> to the tensor a compute node reads.</summary>
        private (string Tensor, OnnxNodeProto Consumer) Through(string t)
        {
            while (true)
            {
                var next = Consumers(t).ToList();
                if (next.Count != 1) throw Fail($"tensor '{t}' feeds {next.Count} nodes where one was expected", next.FirstOrDefault() ?? _producer.GetValueOrDefault(t));
                var n = next[0];
                if (!PassThrough.Contains(n.OpType) || n.Inputs[0] != t) return (t, n);
                t = n.Outputs[0];
            }
        }

        /// <summary>The tensor before any reshapes/transposes that produced <paramref name="t"/>.</summary>
        private string Before(string t)
        {
            while (_producer.TryGetValue(t, out var n) && PassThrough.Contains(n.OpType)) t = n.Inputs[0];
            return t;
        }

        /// <summary>Whether <paramref name="t"/>'s values (not just its shape: Shape nodes end the search) come from <paramref name="input"/>.</summary>
        private bool DerivesFrom(string t, string input, int depth = 0)
        {
            if (t == input) return true;
            if (depth > 64 || !_producer.TryGetValue(t, out var n) || ShapeOnly.Contains(n.OpType)) return false;
            return n.Inputs.Where(i => i.Length > 0 && Const(i) is null).Any(i => DerivesFrom(i, input, depth + 1));
        }

        /// <summary>The single node that reads <paramref name="t"/>.</summary>
        private OnnxNodeProto One(string t, string what) => Consumers(t).ToList() is [var n] ? n
            : throw Fail($"{what}: '{t}' feeds {Consumers(t).Count()} nodes where one was expected", _producer.GetValueOrDefault(t));

        private float[] Take(string name, string key, int[] shape, bool transpose = false)
        {
            var t = _init.GetValueOrDefault(name) ?? throw Fail($"'{name}' ({key}) is not an initializer");
            var dims = t.Dims.Select(d => (int)d).ToArray();
            var expect = transpose ? [shape[1], shape[0]] : shape;
            if (!dims.SequenceEqual(expect))
                throw Fail($"initializer '{name}' for {key} has shape [{string.Join(", ", dims)}], expected [{string.Join(", ", expect)}]");
            if (name.Contains('.') && (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal) || name.StartsWith("pooler.", StringComparison.Ordinal)
                    || name.StartsWith("bert.", StringComparison.Ordinal)) && !name.EndsWith(key, StringComparison.Ordinal))
                throw Fail($"initializer '{name}' sits where the graph computes {key}; its name says otherwise");
            var data = t.ToFloats();
            if (transpose) data = Transpose(data, dims[0], dims[1]);
            _used.Add(name);
            return data;
        }

        private void Put(string key, int[] shape, float[] data, string source)
        {
            if (!_tensors.TryAdd(key, (shape, data))) throw Fail($"{key} was found twice");
            _sources[key] = source;
        }

        private static float[] Transpose(float[] a, int rows, int cols)
        {
            var r = new float[a.Length];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) r[j * rows + i] = a[i * cols + j];
            return r;
        }

        // ---------------------------------------------------------------- patterns

        /// <summary>A linear layer read by <paramref name="n"/> from <paramref name="x"/>: MatMul (+Add bias) or Gemm.</summary>
        private Linear? TryLinear(OnnxNodeProto n, string x)
        {
            if (n.OpType == "Gemm" && n.Inputs[0] == x)
            {
                if ((n.Attribute("transA")?.I ?? 0) != 0 || (n.Attribute("alpha")?.F ?? 1f) != 1f || (n.Attribute("beta")?.F ?? 1f) != 1f) throw Fail("Gemm with transA or alpha/beta ≠ 1", n);
                var w = _init.GetValueOrDefault(n.Inputs[1]);
                if (w is null || w.Dims.Count != 2) return null;
                bool tB = (n.Attribute("transB")?.I ?? 0) != 0;
                int outF = (int)(tB ? w.Dims[0] : w.Dims[1]), inF = (int)(tB ? w.Dims[1] : w.Dims[0]);
                string? biasName = n.Inputs.Count > 2 && n.Inputs[2].Length > 0 ? n.Inputs[2] : null;
                return new Linear(n.Outputs[0], outF, inF, n.Inputs[1], StoredInOut: !tB, biasName, n);
            }
            if (n.OpType != "MatMul" || n.Inputs[0] != x) return null;
            string wName = n.Inputs[1];
            bool transposed = false;
            if (!_init.ContainsKey(wName) && _producer.TryGetValue(wName, out var tr) && tr.OpType == "Transpose" && _init.ContainsKey(tr.Inputs[0])
                && (tr.Attribute("perm")?.Ints is null or [1, 0]))
            { wName = tr.Inputs[0]; transposed = true; }         // x · Wᵀ with W stored [out, in]
            if (!_init.TryGetValue(wName, out var wt) || wt.Dims.Count != 2) return null;
            int o = (int)(transposed ? wt.Dims[0] : wt.Dims[1]), i = (int)(transposed ? wt.Dims[1] : wt.Dims[0]);
            string output = n.Outputs[0];
            string? bias = null;
            var after = Consumers(output).ToList();
            if (after is [{ OpType: "Add" } add])
            {
                var other = add.Inputs[0] == output ? add.Inputs[1] : add.Inputs[0];
                if (_init.TryGetValue(other, out var b) && b.Dims.Count == 1 && b.Dims[0] == o) { bias = other; output = add.Outputs[0]; }
            }
            return new Linear(output, o, i, wName, StoredInOut: !transposed, bias, n);
        }

        private Linear ExpectLinear(OnnxNodeProto n, string x, string what) =>
            TryLinear(n, x) ?? throw Fail($"expected the {what} linear layer (MatMul or Gemm on a weight initializer)", n);

        private void PutLinear(Linear l, string key, int outF, int inF)
        {
            if (l.Out != outF || l.In != inF) throw Fail($"{key} is {l.In}→{l.Out}, expected {inF}→{outF}", l.Node);
            // MatMul stores [in, out] (transpose to [out, in]); Gemm with transB and MatMul on Transpose(W) store [out, in]
            var w = Take(l.WeightName, key + ".weight", [outF, inF], transpose: l.StoredInOut);
            Put(key + ".weight", [outF, inF], w, l.WeightName + (l.StoredInOut ? "ᵀ" : ""));
            if (l.BiasName is null) throw Fail($"{key} has no bias (BERT's linear layers all have one)", l.Node);
            Put(key + ".bias", [outF], Take(l.BiasName, key + ".bias", [outF]), l.BiasName);
        }

        /// <summary>Layer norm of <paramref name="x"/>: LayerNormalization, or mean/sub/pow/mean/add/sqrt/div/mul/add.</summary>
        private Norm ExpectNorm(string x, string what)
        {
            var cs = Consumers(x).ToList();
            if (cs.FirstOrDefault(c => c.OpType == "LayerNormalization" && c.Inputs[0] == x) is { } ln)
            {
                if ((ln.Attribute("axis")?.I ?? -1) != -1) throw Fail($"{what}: LayerNormalization over axis {ln.Attribute("axis")!.I}", ln);
                return new Norm(ln.Outputs[0], ln.Attribute("epsilon")?.F ?? 1e-5f, ln.Inputs[1], ln.Inputs.Count > 2 ? ln.Inputs[2] : throw Fail($"{what}: LayerNormalization without bias", ln));
            }
            var mean = cs.FirstOrDefault(c => c.OpType == "ReduceMean") ?? throw Fail($"{what}: expected a layer norm of '{x}'", cs.FirstOrDefault());
            var sub = cs.FirstOrDefault(c => c.OpType == "Sub" && c.Inputs[0] == x && c.Inputs[1] == mean.Outputs[0]) ?? throw Fail($"{what}: layer norm without x − mean", mean);
            string d = sub.Outputs[0];
            var dCons = Consumers(d).ToList();
            var sq = dCons.FirstOrDefault(c => c.OpType == "Pow" && Scalar(c.Inputs[1]) == 2f || c.OpType == "Mul" && c.Inputs[0] == d && c.Inputs[1] == d)
                ?? throw Fail($"{what}: layer norm without (x − mean)²", sub);
            var mean2 = One(sq.Outputs[0], what);
            if (mean2.OpType != "ReduceMean") throw Fail($"{what}: layer norm without the variance mean", mean2);
            var addEps = One(mean2.Outputs[0], what);
            float eps = addEps.OpType == "Add" ? Scalar(addEps.Inputs[1]) ?? Scalar(addEps.Inputs[0]) ?? throw Fail($"{what}: layer norm epsilon is not a constant", addEps) : throw Fail($"{what}: layer norm without + epsilon", addEps);
            var sqrt = One(addEps.Outputs[0], what);
            if (sqrt.OpType != "Sqrt") throw Fail($"{what}: layer norm without √", sqrt);
            var div = dCons.FirstOrDefault(c => c.OpType == "Div" && c.Inputs[1] == sqrt.Outputs[0]) ?? throw Fail($"{what}: layer norm without the division by √(var + eps)", sqrt);
            var mul = One(div.Outputs[0], what);
            string gamma = mul.OpType == "Mul" ? (mul.Inputs[0] == div.Outputs[0] ? mul.Inputs[1] : mul.Inputs[0]) : throw Fail($"{what}: layer norm without its scale", mul);
            var add = One(mul.Outputs[0], what);
            string beta = add.OpType == "Add" ? (add.Inputs[0] == mul.Outputs[0] ? add.Inputs[1] : add.Inputs[0]) : throw Fail($"{what}: layer norm without its shift", add);
            if (!_init.ContainsKey(gamma) || !_init.ContainsKey(beta)) throw Fail($"{what}: layer norm scale/shift are not initializers", add);
            return new Norm(add.Outputs[0], eps, gamma, beta);
        }

        private void PutNorm(Norm n, string key, int width)
        {
            Put(key + ".weight", [width], Take(n.GammaName, key + ".weight", [width]), n.GammaName);
            Put(key + ".bias", [width], Take(n.BetaName, key + ".bias", [width]), n.BetaName);
        }

        /// <summary>The activation between the two feed-forward linears: the nodes from <paramref name="x"/> to the next MatMul/Gemm.</summary>
        private (string Output, OnnxNodeProto Next, string Act) ExpectActivation(string x)
        {
            var region = new List<OnnxNodeProto>();
            var frontier = new Queue<string>([x]);
            var inside = new HashSet<string>(StringComparer.Ordinal) { x };
            OnnxNodeProto? next = null;
            string? output = null;
            while (frontier.Count > 0)
            {
                var t = frontier.Dequeue();
                foreach (var c in Consumers(t))
                {
                    if (c.OpType is "MatMul" or "Gemm")
                    {
                        if (next is not null && next != c) throw Fail("the feed-forward activation feeds two products", c);
                        (next, output) = (c, t);
                        continue;
                    }
                    if (region.Contains(c)) continue;
                    if (region.Count > 16) throw Fail("the feed-forward activation is longer than any known form", c);
                    region.Add(c);
                    foreach (var o in c.Outputs) if (inside.Add(o)) frontier.Enqueue(o);
                }
            }
            if (next is null || output is null) throw Fail($"nothing after the intermediate layer '{x}' reads a linear layer", _producer.GetValueOrDefault(x));
            foreach (var n in region)
                foreach (var i in n.Inputs.Where(i => i.Length > 0))
                    if (!inside.Contains(i) && Const(i) is null) throw Fail("the feed-forward activation reads a tensor from outside itself", n);
            var ops = region.Select(n => n.OpType).ToHashSet();
            string act =
                ops.SetEquals(["Gelu"]) ? (region[0].Attribute("approximate") is { } a && System.Text.Encoding.UTF8.GetString(a.S) == "tanh" ? "gelu_new" : "gelu") :
                ops.Contains("Erf") && ops.IsSubsetOf(["Div", "Mul", "Erf", "Add"]) ? "gelu" :
                ops.Contains("Tanh") && ops.IsSubsetOf(["Pow", "Mul", "Add", "Tanh"]) ? "gelu_new" :
                ops.SetEquals(["Relu"]) ? "relu" :
                throw Fail($"feed-forward activation of ops {string.Join(", ", ops.Order())} is not one of gelu (erf), gelu (tanh), relu", region.FirstOrDefault());
            return (output, next, act);
        }

        /// <summary>Heads and head width from the reshape that splits <paramref name="projected"/> into heads.</summary>
        private (int Heads, int HeadDim)? HeadsOf(string projected)
        {
            foreach (var c in _consumers.GetValueOrDefault(projected) ?? [])
            {
                if (c.OpType != "Reshape" || c.Inputs.Count < 2) continue;
                long[]? shape = Const(c.Inputs[1])?.ToLongs();
                if (shape is null && _producer.TryGetValue(c.Inputs[1], out var cat) && cat.OpType == "Concat")
                    shape = cat.Inputs.Select(i => Const(i) is { ElementCount: 1 } k ? k.ToLongs()[0] : 0).ToArray();
                if (shape is { Length: 4 } && shape[2] > 0 && shape[3] > 0) return ((int)shape[2], (int)shape[3]);
            }
            return null;
        }

        // ---------------------------------------------------------------- the walk

        public OnnxEncoderCheckpoint Run()
        {
            var inputs = _g.Inputs.Select(i => i.Name).Where(n => !_init.ContainsKey(n)).ToList();
            if (!inputs.Contains("input_ids")) throw Fail($"no 'input_ids' input (inputs: {string.Join(", ", inputs)})");

            // 1. embeddings: Gather on 2-D float initializers, told apart by the input their indices come from
            OnnxNodeProto? word = null, type = null, position = null;
            foreach (var n in _g.Nodes.Where(n => n.OpType == "Gather" && _init.TryGetValue(n.Inputs[0], out var t) && t.Dims.Count == 2 && t.DataType == OnnxDataType.Float))
            {
                var ids = Before(n.Inputs[1]);
                if (ids == "input_ids") word = word is null ? n : throw Fail("two embedding lookups of input_ids", n);
                else if (DerivesFrom(ids, "token_type_ids")) type = type is null ? n : throw Fail("two embedding lookups of token_type_ids", n);
                else if (DerivesFrom(ids, "input_ids") || DerivesFrom(ids, "attention_mask"))
                    throw Fail("position ids computed from the input's values (RoBERTa-style offsets) are not supported; only 0, 1, 2, … positions", n);
                else position = position is null ? n : throw Fail("two position-embedding lookups", n);
            }
            if (word is null) throw Fail("no embedding lookup (Gather) of input_ids");
            if (position is null) throw Fail("no position-embedding lookup");
            var wordT = _init[word.Inputs[0]];
            int vocab = (int)wordT.Dims[0], hidden = (int)wordT.Dims[1];
            int maxPos = (int)_init[position.Inputs[0]].Dims[0];
            CheckPositions(position);
            Put("embeddings.word_embeddings.weight", [vocab, hidden], Take(word.Inputs[0], "embeddings.word_embeddings.weight", [vocab, hidden]), word.Inputs[0]);
            Put("embeddings.position_embeddings.weight", [maxPos, hidden], Take(position.Inputs[0], "embeddings.position_embeddings.weight", [maxPos, hidden]), position.Inputs[0]);
            int typeVocab = 0;
            if (type is not null)
            {
                typeVocab = (int)_init[type.Inputs[0]].Dims[0];
                Put("embeddings.token_type_embeddings.weight", [typeVocab, hidden], Take(type.Inputs[0], "embeddings.token_type_embeddings.weight", [typeVocab, hidden]), type.Inputs[0]);
            }
            else if (inputs.Contains("token_type_ids")) throw Fail("a token_type_ids input that no embedding lookup reads");

            // the sum of the lookups (Adds in any order), then the embeddings' layer norm
            var others = new HashSet<string>(new[] { type, position }.Where(n => n is not null).Select(n => n!.Outputs[0]), StringComparer.Ordinal);
            string sum = word.Outputs[0];
            var added = new HashSet<string>(StringComparer.Ordinal);
            while (Consumers(sum).ToList() is [{ OpType: "Add" } add])
            {
                var other = add.Inputs[0] == sum ? add.Inputs[1] : add.Inputs[0];
                if (!others.Contains(other)) break;
                added.Add(other);
                sum = add.Outputs[0];
            }
            if (!added.SetEquals(others)) throw Fail("the embeddings are not word + position (+ token type) added up", _producer.GetValueOrDefault(sum));
            var embNorm = ExpectNorm(sum, "embeddings");
            PutNorm(embNorm, "embeddings.LayerNorm", hidden);
            float eps = embNorm.Eps;

            // 2. the layers
            string h = embNorm.Output;
            int layers = 0, heads = 0, intermediate = 0;
            string? act = null;
            for (; ; layers++)
            {
                var linears = Consumers(h).Select(c => TryLinear(c, h)).Where(l => l is not null).Select(l => l!).ToList();
                if (linears.Count == 0) break;
                if (linears.Count != 3) throw Fail($"layer {layers}: the hidden state feeds {linears.Count} linear layers, expected query, key and value", linears[0].Node);
                var p = $"encoder.layer.{layers}.";

                // where each projection goes: the scores product (query · keyᵀ) or the context product (probs · value)
                var dest = linears.Select(l => (Lin: l, To: Through(l.Output))).ToList();
                var scoresNode = dest.GroupBy(d => d.To.Consumer).FirstOrDefault(g => g.Count() == 2)?.Key
                    ?? throw Fail($"layer {layers}: no product of two projections (query · keyᵀ)", dest[0].To.Consumer);
                if (scoresNode.OpType != "MatMul") throw Fail($"layer {layers}: query · keyᵀ is not a MatMul", scoresNode);
                var q = dest.Single(d => d.To.Consumer == scoresNode && d.To.Tensor == scoresNode.Inputs[0]).Lin;
                var k = dest.Single(d => d.To.Consumer == scoresNode && d.To.Tensor == scoresNode.Inputs[1]).Lin;
                var (vLin, (vTensor, contextNode)) = dest.Single(d => d.To.Consumer != scoresNode);
                if (contextNode.OpType != "MatMul" || contextNode.Inputs[1] != vTensor) throw Fail($"layer {layers}: the value projection does not enter probs · value", contextNode);
                // between the two products: scaling, the mask, softmax (no weights)
                var probs = Before(contextNode.Inputs[0]);
                if (_producer.GetValueOrDefault(probs)?.OpType != "Softmax") throw Fail($"layer {layers}: probs · value does not read a softmax", contextNode);

                if ((HeadsOf(q.Output) ?? HeadsOf(k.Output) ?? HeadsOf(vLin.Output)) is not { } hd) throw Fail($"layer {layers}: the head split (Reshape to [B, T, heads, head_dim]) has no constant shape", q.Node);
                if (hd.Heads * hd.HeadDim != hidden) throw Fail($"layer {layers}: {hd.Heads} heads × {hd.HeadDim} ≠ hidden size {hidden}", q.Node);
                if (heads != 0 && heads != hd.Heads) throw Fail($"layer {layers}: {hd.Heads} heads, earlier layers {heads}", q.Node);
                heads = hd.Heads;
                CheckScale(scoresNode, probs, hd.HeadDim, layers);
                PutLinear(q, p + "attention.self.query", hidden, hidden);
                PutLinear(k, p + "attention.self.key", hidden, hidden);
                PutLinear(vLin, p + "attention.self.value", hidden, hidden);

                // attention output: merge heads → dense → + h → layer norm
                var (ctx, outNode) = Through(contextNode.Outputs[0]);
                var attnOut = ExpectLinear(outNode, ctx, $"layer {layers} attention output");
                PutLinear(attnOut, p + "attention.output.dense", hidden, hidden);
                var a = Residual(attnOut.Output, h, $"layer {layers} attention");
                var n1 = ExpectNorm(a, $"layer {layers} attention output");
                PutNorm(n1, p + "attention.output.LayerNorm", hidden);

                // feed-forward: intermediate → activation → output → + residual → layer norm
                var ffIn = Consumers(n1.Output).Select(c => TryLinear(c, n1.Output)).Where(l => l is not null).Select(l => l!).ToList();
                if (ffIn.Count != 1) throw Fail($"layer {layers}: the attention output feeds {ffIn.Count} linear layers, expected the intermediate one", _producer[n1.Output]);
                var inter = ffIn[0];
                if (intermediate != 0 && inter.Out != intermediate) throw Fail($"layer {layers}: intermediate size {inter.Out}, earlier layers {intermediate}", inter.Node);
                intermediate = inter.Out;
                PutLinear(inter, p + "intermediate.dense", intermediate, hidden);
                var (actOut, outDense, thisAct) = ExpectActivation(inter.Output);
                if (act is not null && act != thisAct) throw Fail($"layer {layers}: activation {thisAct}, earlier layers {act}", outDense);
                act = thisAct;
                var ffOut = ExpectLinear(outDense, actOut, $"layer {layers} output");
                PutLinear(ffOut, p + "output.dense", hidden, intermediate);
                var b = Residual(ffOut.Output, n1.Output, $"layer {layers} feed-forward");
                var n2 = ExpectNorm(b, $"layer {layers} output");
                PutNorm(n2, p + "output.LayerNorm", hidden);
                h = n2.Output;
            }
            if (layers == 0) throw Fail("no encoder layer follows the embeddings", _producer.GetValueOrDefault(h));

            // 3. optional pooler: h[:, 0] → dense → tanh
            var outputs = _g.Outputs.Select(o => o.Name).ToList();
            foreach (var c in Consumers(h).ToList())
            {
                if (c.OpType == "Gather" && (c.Attribute("axis")?.I ?? 0) == 1 && Scalar(c.Inputs[1]) == 0f
                    && Consumers(c.Outputs[0]).ToList() is [var dense] && TryLinear(dense, c.Outputs[0]) is { } pool
                    && Consumers(pool.Output).ToList() is [{ OpType: "Tanh" } tanh])
                {
                    PutLinear(pool, "pooler.dense", hidden, hidden);
                    outputs.Remove(tanh.Outputs[0]);
                }
                else _reported.Add($"node '{c.Name}' ({c.OpType}) after the encoder is not imported (no weights; the model's own head replaces it)");
            }
            if (!outputs.Remove(h)) _reported.Add($"the encoder's last hidden state '{h}' is not a graph output");
            foreach (var o in outputs) _reported.Add($"graph output '{o}' is not reproduced (computed after the encoder without weights)");

            // 4. every initializer used or reported
            var unused = _g.Initializers.Where(t => !_used.Contains(t.Name)).ToList();
            var floats = unused.Where(t => t.DataType is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double && t.ElementCount > 1).ToList();
            if (floats.Count > 0) throw Fail($"{floats.Count} weight initializer(s) are in no recognised place: {string.Join(", ", floats.Take(6).Select(t => $"'{t.Name}' [{string.Join(", ", t.Dims)}]"))}");
            foreach (var t in unused.Where(t => t.ElementCount > 1))
                _reported.Add($"initializer '{t.Name}' [{string.Join(", ", t.Dims)}] {t.DataType}: position ids / shape constant, recomputed");
            if (unused.Count(t => t.ElementCount <= 1) is > 0 and var scalars)
                _reported.Add($"{scalars} scalar initializers (axes, indices, head counts): structure, no weights");

            var config = new JsonObject
            {
                ["model_type"] = "bert",
                ["architectures"] = new JsonArray("BertModel"),
                ["vocab_size"] = vocab,
                ["hidden_size"] = hidden,
                ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads,
                ["intermediate_size"] = intermediate,
                ["max_position_embeddings"] = maxPos,
                ["type_vocab_size"] = typeVocab,
                ["layer_norm_eps"] = eps,
                ["hidden_act"] = act,
                ["pad_token_id"] = 0,
                ["imported_from"] = Path.GetFileName(_path),
            };
            return new OnnxEncoderCheckpoint(_path, _tensors, config, _sources, _reported);
        }

        /// <summary>The scores are scaled by 1/√head_dim (a Div or Mul by constants) between the product and the softmax.</summary>
        private void CheckScale(OnnxNodeProto scores, string probs, int headDim, int layer)
        {
            double scale = 1;
            string t = scores.Outputs[0];
            for (int steps = 0; steps < 8; steps++)
            {
                var n = One(t, $"layer {layer} attention scores");
                if (n.OpType == "Softmax")
                {
                    if (n.Outputs[0] != probs) throw Fail($"layer {layer}: the scores reach another softmax", n);
                    double want = 1 / Math.Sqrt(headDim);
                    if (Math.Abs(scale - want) > 1e-4 * want) throw Fail($"layer {layer}: scores scaled by {scale:G6}, BERT scales by 1/√{headDim} = {want:G6}", n);
                    return;
                }
                if (n.OpType is "Div" or "Mul" && n.Inputs[0] == t && Scalar(n.Inputs[1]) is { } c) scale *= n.OpType == "Div" ? 1 / c : c;
                else if (n.OpType is not ("Add" or "Where" or "Cast" or "Reshape")) throw Fail($"layer {layer}: unexpected {n.OpType} between the scores and the softmax", n);
                t = n.Outputs[0];
            }
            throw Fail($"layer {layer}: no softmax after the attention scores", scores);
        }

        /// <summary>The Add of <paramref name="branch"/> and <paramref name="residual"/>.</summary>
        private string Residual(string branch, string residual, string what)
        {
            var add = Consumers(branch).ToList() is [{ OpType: "Add" } a] ? a : throw Fail($"{what}: expected the residual Add after the projection", Consumers(branch).FirstOrDefault());
            if (!add.Inputs.Contains(residual)) throw Fail($"{what}: the residual Add does not read the block's input", add);
            return add.Outputs[0];
        }

        /// <summary>Positions must be 0, 1, 2, …: a slice of a position_ids initializer that is exactly that.</summary>
        private void CheckPositions(OnnxNodeProto gather)
        {
            var idx = Before(gather.Inputs[1]);
            if (_producer.TryGetValue(idx, out var slice) && slice.OpType == "Slice") idx = Before(slice.Inputs[0]);
            if (_init.TryGetValue(idx, out var ids))
            {
                var v = ids.ToLongs();
                for (int i = 0; i < v.Length; i++)
                    if (v[i] != i) throw Fail($"position ids '{idx}' are not 0, 1, 2, … (at {i}: {v[i]})", gather);
                return;
            }
            if (_producer.GetValueOrDefault(idx)?.OpType is "Range" or "ConstantOfShape" or "Expand" or "Unsqueeze") return;   // computed 0..T-1
            throw Fail("position ids that are neither a constant 0, 1, 2, … nor a Range", gather);
        }
    }
}
