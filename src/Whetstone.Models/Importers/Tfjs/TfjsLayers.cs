using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Whetstone.Models.Graph;

namespace Whetstone.Models.Importers.Tfjs;

/// <summary>A TF.js model could not be read: the message names the file and what is wrong.</summary>
public sealed class TfjsModelException(string path, string message, Exception? inner = null) : Exception($"{path}: {message}", inner)
{
    public string FilePath { get; } = path;
}

/// <summary>One row of <see cref="TfjsLayers.ListLayers"/>: a Keras layer, its class and its output shape.</summary>
/// <param name="Name">Layer (and module) name; '.' in a Keras name becomes '_'.</param>
/// <param name="Kind">Keras class name (Conv2D, BatchNormalization …).</param>
/// <param name="OutputShape">Output per example in the engine's order: [C, H, W] for images, [F] for features; 0 = any.</param>
/// <param name="Inputs">Layers it reads.</param>
/// <param name="ParameterCount">Number of weight values (including batch-norm statistics).</param>
public sealed record TfjsLayerInfo(string Name, string Kind, int[] OutputShape, IReadOnlyList<string> Inputs, long ParameterCount);

/// <summary>
/// What a model expects as input, for models whose loaders normalise outside the graph: RGB images resized to
/// <paramref name="Size"/>×<paramref name="Size"/> (bilinear, align corners), pixel values p in [0, 255] mapped to
/// p·<paramref name="Scale"/> + <paramref name="Offset"/>, NCHW.
/// </summary>
public sealed record TfjsImagePreprocessing(int Size, float Scale, float Offset, IReadOnlyList<string> Labels, string Source);

/// <summary>
/// Imports TensorFlow.js <em>layers</em> models (Keras topologies) as a <see cref="LayerGraph"/>: a directory or a
/// <c>model.json</c> with binary shards, or the nsfwjs browserify form (<c>model.min.js</c> exporting the model as a
/// JavaScript object literal, <c>group1-shardXofY.min.js</c> each exporting one base64 string). Weights may be float32,
/// int32, or quantised (uint8/uint16 affine: value = min + scale·q; float16). Layers become modules named as in the
/// file (checkpoint keys <c>{layer}.weight</c>, <c>{layer}.bias</c>, <c>{layer}.running_mean</c> …) and everything runs
/// in NCHW: kernels are converted from HWIO, Flatten/Reshape/Dense keep Keras' NHWC element order.
/// Keras' <c>trainable</c> flags are ignored (freezing is the caller's choice).
/// </summary>
public static class TfjsLayers
{
    /// <summary>nsfwjs 4.x MobileNetV2 (nsfwjs' <c>infer</c>: <c>img.toFloat().div(255)</c>, resizeBilinear alignCorners to 224).</summary>
    public static readonly TfjsImagePreprocessing NsfwjsMobileNetV2 = new(224, 1f / 255, 0, NsfwjsLabels, "nsfwjs 4.4.0 dist/esm/core.js: toFloat().div(255), resizeBilinear(alignCorners = true)");

    /// <summary>nsfwjs 4.x InceptionV3: as MobileNetV2 but 299×299.</summary>
    public static readonly TfjsImagePreprocessing NsfwjsInceptionV3 = new(299, 1f / 255, 0, NsfwjsLabels, "nsfwjs 4.4.0 dist/esm/core.js: toFloat().div(255), resizeBilinear(alignCorners = true)");

    private static string[] NsfwjsLabels => ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"];

    /// <summary>
    /// Loads the model at <paramref name="path"/> (a directory holding <c>model.json</c> or <c>model.min.js</c>, or either
    /// file). The graph's input is NCHW float images normalised as the model expects; <see cref="LayerGraph.InputShape"/>
    /// is [C, H, W] from the input layer. The graph is in evaluation mode.
    /// With <paramref name="logits"/>, a softmax on the output layer is dropped, so the graph returns pre-softmax scores.
    /// Every layer class and every weight (name, shape, shard size) is checked before any weight is decoded.
    /// </summary>
    public static LayerGraph Load(string path, bool logits = false)
    {
        var file = TfjsModelFile.Read(path);
        var (spec, built) = Plan(file);
        var graph = new LayerGraph(KerasLayers.ModuleName(spec.InputName)) { InputShape = KerasLayers.EngineShape(spec.InputShape) };
        foreach (var (layer, b) in built)
            graph.Add(KerasLayers.ModuleName(layer.Name), layer.ClassName, b.Module, layer.Inputs.Select(KerasLayers.ModuleName).ToArray());
        if (graph.OutputName != KerasLayers.ModuleName(spec.OutputName)) graph.TruncateAt(KerasLayers.ModuleName(spec.OutputName));

        var needed = MatchWeights(file, built.SelectMany(b => b.Built.Weights).ToList());
        var values = file.ReadWeights(needed.Keys.ToHashSet(StringComparer.Ordinal));
        foreach (var (name, w) in needed) w.Assign(values[name]);

        if (logits)
        {
            var output = graph.Layer(graph.OutputName);
            if (output is KerasDense { Activation.Kind: KerasActivationKind.Softmax } d) d.Activation = KerasActivation.Linear;
            else if (output is KerasConv2D { Activation.Kind: KerasActivationKind.Softmax } cv) cv.Activation = KerasActivation.Linear;
            else if (output is KerasActivationLayer { Activation.Kind: KerasActivationKind.Softmax } a) a.Activation = KerasActivation.Linear;
        }
        graph.Eval();
        return graph;
    }

    /// <summary>
    /// The layers of the model at <paramref name="path"/> in graph order with their output shapes (engine order) and
    /// parameter counts, for a dry run. Reads the topology and manifest only (no shard is opened), and fails as
    /// <see cref="Load"/> would on unsupported layers or weights that do not fit the topology.
    /// </summary>
    public static IReadOnlyList<TfjsLayerInfo> ListLayers(string path)
    {
        var file = TfjsModelFile.Read(path);
        var (spec, built) = Plan(file);
        MatchWeights(file, built.SelectMany(b => b.Built.Weights).ToList());
        var rows = new List<TfjsLayerInfo> { new(KerasLayers.ModuleName(spec.InputName), "InputLayer", KerasLayers.EngineShape(spec.InputShape), [], 0) };
        foreach (var (layer, b) in built)
            rows.Add(new(KerasLayers.ModuleName(layer.Name), layer.ClassName, KerasLayers.EngineShape(b.OutputShape),
                layer.Inputs.Select(KerasLayers.ModuleName).ToArray(), b.ParameterCount));
        return rows;
    }

    /// <summary>Topology → modules with shape inference; unsupported layers are all listed before anything is built.</summary>
    private static (KerasModelSpec Spec, List<(KerasLayerSpec Layer, KerasBuiltLayer Built)> Built) Plan(TfjsModelFile file)
    {
        KerasModelSpec spec;
        try { spec = KerasLayers.ParseTopology(file.Topology); }
        catch (InvalidDataException e) { throw new TfjsModelException(file.Path, e.Message, e); }

        var unsupported = spec.Layers.Select(l => (l, Why: KerasLayers.Unsupported(l))).Where(u => u.Why is not null).ToList();
        if (unsupported.Count > 0)
            throw new TfjsModelException(file.Path, $"{unsupported.Count} unsupported layer(s):" +
                string.Concat(unsupported.Select(u => $"\n  {u.l.Name} ({u.l.ClassName}): {u.Why}")));

        var names = new Dictionary<string, string>(StringComparer.Ordinal) { [KerasLayers.ModuleName(spec.InputName)] = spec.InputName };
        foreach (var l in spec.Layers)
            if (!names.TryAdd(KerasLayers.ModuleName(l.Name), l.Name))
                throw new TfjsModelException(file.Path, $"Layers '{names[KerasLayers.ModuleName(l.Name)]}' and '{l.Name}' have the same module name once '.' is replaced by '_'.");

        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal) { [spec.InputName] = spec.InputShape };
        var built = new List<(KerasLayerSpec, KerasBuiltLayer)>();
        foreach (var l in spec.Layers)
        {
            KerasBuiltLayer b;
            try { b = KerasLayers.Build(l, l.Inputs.Select(i => shapes[i]).ToArray()); }
            catch (InvalidDataException e) { throw new TfjsModelException(file.Path, e.Message, e); }
            shapes[l.Name] = b.OutputShape;
            built.Add((l, b));
        }
        if (!shapes.ContainsKey(spec.OutputName)) throw new TfjsModelException(file.Path, $"The output layer '{spec.OutputName}' is not a layer of the model.");
        return (spec, built);
    }

    /// <summary>
    /// Pairs each weight the layers need with a manifest entry (<c>{layer}/{weight}</c>) and checks its shape. All
    /// problems (missing weights, wrong shapes, manifest weights no layer uses) are reported together.
    /// </summary>
    private static Dictionary<string, KerasWeight> MatchWeights(TfjsModelFile file, List<KerasWeight> wanted)
    {
        var byName = file.Weights.ToDictionary(w => w.Name, StringComparer.Ordinal);
        var result = new Dictionary<string, KerasWeight>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var w in wanted)
        {
            string key = $"{w.Layer}/{w.Name}";
            var entry = byName.GetValueOrDefault(key) ?? byName.GetValueOrDefault(key + ":0");
            if (entry is null)
            {
                var suffix = file.Weights.Where(e => e.Name.EndsWith("/" + key, StringComparison.Ordinal) || e.Name.EndsWith("/" + key + ":0", StringComparison.Ordinal)).ToArray();
                if (suffix.Length == 1) entry = suffix[0];
            }
            if (entry is null) { problems.Add($"layer '{w.Layer}': weight '{w.Name}' {KerasLayers.Fmt(w.Shape)} is missing from the manifest"); continue; }
            if (!entry.Shape.SequenceEqual(w.Shape))
            {
                problems.Add($"layer '{w.Layer}': weight '{w.Name}' has shape {KerasLayers.Fmt(entry.Shape)} in the manifest but the topology needs {KerasLayers.Fmt(w.Shape)}");
                continue;
            }
            result[entry.Name] = w;
        }
        var unused = file.Weights.Where(e => !result.ContainsKey(e.Name) && e.Group != "optimizer").Select(e => e.Name).ToArray();
        if (problems.Count == 0 && unused.Length > 0)
            problems.Add($"{unused.Length} manifest weight(s) belong to no layer of the topology: {string.Join(", ", unused.Take(10))}{(unused.Length > 10 ? ", …" : "")}");
        if (problems.Count > 0)
            throw new TfjsModelException(file.Path, $"the weights do not fit the topology ({problems.Count} problem(s)):" + string.Concat(problems.Take(30).Select(p => "\n  " + p)) +
                (problems.Count > 30 ? $"\n  … and {problems.Count - 30} more" : ""));
        return result;
    }
}

/// <summary>One manifest entry: name, shape, stored dtype, optional quantisation, and its weight group.</summary>
internal sealed record TfjsWeightSpec(string Name, int[] Shape, string DType, TfjsQuantization? Quantization, int GroupIndex, string? Group)
{
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes in the shard: quantised entries are stored in the quantisation dtype.</summary>
    public long ByteLength => Count * TfjsWeights.BytesPer(Quantization?.DType ?? DType);
}

/// <summary>Quantisation: uint8/uint16 affine (value = min + scale·q) or float16.</summary>
internal sealed record TfjsQuantization(string DType, double Min, double Scale);

internal sealed record TfjsWeightGroup(string[] Paths, TfjsWeightSpec[] Weights);

/// <summary>A TF.js model file read as far as its topology and weight manifest (shards are opened by <see cref="ReadWeights"/>).</summary>
internal sealed class TfjsModelFile
{
    public required string Path { get; init; }
    public required string Directory { get; init; }
    public required JsonNode Topology { get; init; }
    public required IReadOnlyList<TfjsWeightGroup> Groups { get; init; }
    public IEnumerable<TfjsWeightSpec> Weights => Groups.SelectMany(g => g.Weights);

    public static TfjsModelFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string file = path;
        if (System.IO.Directory.Exists(path))
        {
            file = new[] { "model.json", "model.min.js" }.Select(n => System.IO.Path.Combine(path, n)).FirstOrDefault(File.Exists)
                   ?? throw new TfjsModelException(path, "the directory has neither model.json nor model.min.js.");
        }
        else if (!File.Exists(path)) throw new TfjsModelException(path, "no such file or directory.");

        JsonNode? root;
        try
        {
            var text = File.ReadAllText(file);
            root = file.EndsWith(".js", StringComparison.OrdinalIgnoreCase) ? TfjsWeights.ModuleExport(text) : JsonNode.Parse(text);
        }
        catch (Exception e) when (e is JsonException or JsLiteralException or InvalidDataException)
        {
            throw new TfjsModelException(file, e.Message, e);
        }
        if (root is not JsonObject o) throw new TfjsModelException(file, "the model is not an object.");
        var topology = o["modelTopology"] ?? throw new TfjsModelException(file, "no modelTopology (is this a TF.js layers model? graph models are not supported).");
        if (o["format"] is JsonValue fv && fv.TryGetValue(out string? format) && format != "layers-model")
            throw new TfjsModelException(file, $"format '{format}' is not supported (only layers-model).");
        var manifest = o["weightsManifest"] as JsonArray ?? throw new TfjsModelException(file, "no weightsManifest.");
        var groups = new List<TfjsWeightGroup>();
        try
        {
            for (int g = 0; g < manifest.Count; g++)
            {
                var group = manifest[g] as JsonObject ?? throw new InvalidDataException($"weightsManifest[{g}] is not an object.");
                var paths = (group["paths"] as JsonArray ?? throw new InvalidDataException($"weightsManifest[{g}] has no paths."))
                    .Select(p => p is JsonValue pv && pv.TryGetValue(out string? s) ? s : throw new InvalidDataException($"weightsManifest[{g}].paths holds a non-string.")).ToArray();
                var weights = (group["weights"] as JsonArray ?? throw new InvalidDataException($"weightsManifest[{g}] has no weights."))
                    .Select(w => ParseSpec(w as JsonObject ?? throw new InvalidDataException($"weightsManifest[{g}].weights holds a non-object."), g)).ToArray();
                groups.Add(new TfjsWeightGroup(paths, weights));
            }
        }
        catch (InvalidDataException e) { throw new TfjsModelException(file, e.Message, e); }
        return new TfjsModelFile { Path = file, Directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file))!, Topology = topology, Groups = groups };
    }

    private static TfjsWeightSpec ParseSpec(JsonObject w, int group)
    {
        string name = Str(w, "name") ?? throw new InvalidDataException("a manifest weight has no name.");
        var shape = (w["shape"] as JsonArray ?? throw new InvalidDataException($"weight '{name}' has no shape.")).Select(v => KerasLayers.ToInt(v!, $"shape of '{name}'")).ToArray();
        if (shape.Any(s => s < 0)) throw new InvalidDataException($"weight '{name}' has a negative size in {KerasLayers.Fmt(shape)}.");
        string dtype = Str(w, "dtype") ?? "float32";
        if (dtype is not ("float32" or "int32")) throw new InvalidDataException($"weight '{name}' has dtype '{dtype}' (only float32 and int32).");
        TfjsQuantization? q = null;
        if (w["quantization"] is JsonObject qo)
        {
            string qd = Str(qo, "dtype") ?? throw new InvalidDataException($"weight '{name}': quantization without dtype.");
            if (qd is "uint8" or "uint16")
            {
                double min = Num(qo, "min", name), scale = Num(qo, "scale", name);
                q = new TfjsQuantization(qd, min, scale);
            }
            else if (qd == "float16") q = new TfjsQuantization(qd, 0, 1);
            else throw new InvalidDataException($"weight '{name}': quantization dtype '{qd}' (only uint8, uint16, float16).");
        }
        return new TfjsWeightSpec(name, shape, dtype, q, group, Str(w, "group"));
    }

    /// <summary>
    /// Reads the shards of every group, checks each group's bytes equal the sum of its weights' sizes, and returns the
    /// weights named in <paramref name="names"/> as float32 values in their Keras layout.
    /// </summary>
    public Dictionary<string, float[]> ReadWeights(IReadOnlySet<string> names)
    {
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var group in Groups)
        {
            if (!group.Weights.Any(w => names.Contains(w.Name))) continue;
            var (bytes, files) = ReadGroup(group);
            long need = group.Weights.Sum(w => w.ByteLength);
            if (bytes.Length != need)
            {
                string which = files.Count == 1 ? $"shard {files[0].Path} ({files[0].Bytes} bytes)" :
                    $"shards {string.Join(", ", files.Select(f => $"{System.IO.Path.GetFileName(f.Path)} ({f.Bytes} bytes)"))}";
                throw new TfjsModelException(files[^1].Path, bytes.Length < need
                    ? $"truncated shard: {which} hold {bytes.Length} bytes in all but the manifest's {group.Weights.Length} weights need {need} bytes."
                    : $"{which} hold {bytes.Length} bytes in all but the manifest's {group.Weights.Length} weights need only {need} bytes (wrong manifest or shard).");
            }
            long offset = 0;
            foreach (var w in group.Weights)
            {
                if (names.Contains(w.Name)) result[w.Name] = TfjsWeights.Decode(bytes.AsSpan((int)offset, (int)w.ByteLength), w);
                offset += w.ByteLength;
            }
        }
        return result;
    }

    private (byte[] Bytes, List<(string Path, long Bytes)> Files) ReadGroup(TfjsWeightGroup group)
    {
        var parts = new List<byte[]>();
        var files = new List<(string, long)>();
        foreach (var p in group.Paths)
        {
            string file = ResolveShard(p);
            byte[] data;
            if (file.EndsWith(".js", StringComparison.OrdinalIgnoreCase))
            {
                JsonNode? v;
                try { v = TfjsWeights.ModuleExport(File.ReadAllText(file)); }
                catch (Exception e) when (e is JsLiteralException or InvalidDataException) { throw new TfjsModelException(file, e.Message, e); }
                if (v is not JsonValue sv || !sv.TryGetValue(out string? b64)) throw new TfjsModelException(file, "the shard module does not export a string.");
                try { data = Convert.FromBase64String(b64); }
                catch (FormatException e) { throw new TfjsModelException(file, "the shard's string is not valid base64: " + e.Message, e); }
            }
            else data = File.ReadAllBytes(file);
            parts.Add(data);
            files.Add((file, data.LongLength));
        }
        long total = parts.Sum(p => p.LongLength);
        if (total > Array.MaxLength) throw new TfjsModelException(files[0].Item1, $"weight group of {total} bytes is too large.");
        var all = new byte[total];
        long at = 0;
        foreach (var p in parts) { p.CopyTo(all, at); at += p.LongLength; }
        return (all, files);
    }

    /// <summary>A manifest path as written, or with .bin or .min.js appended (nsfwjs writes <c>group1-shard1of1</c>).</summary>
    private string ResolveShard(string relative)
    {
        var basePath = System.IO.Path.Combine(Directory, relative);
        foreach (var candidate in new[] { basePath, basePath + ".bin", basePath + ".min.js" })
            if (File.Exists(candidate)) return candidate;
        throw new TfjsModelException(Path, $"shard '{relative}' not found in {Directory} (tried the name as is, .bin and .min.js).");
    }

    private static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static double Num(JsonObject o, string key, string weight) =>
        o[key] is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d) ? d : throw new InvalidDataException($"weight '{weight}': quantization {key} is missing or not a number.");
}

/// <summary>Byte-level helpers: dtype sizes, dequantisation, and the value a browserify module exports.</summary>
internal static partial class TfjsWeights
{
    public static int BytesPer(string dtype) => dtype switch
    {
        "float32" or "int32" => 4,
        "uint16" or "float16" => 2,
        "uint8" => 1,
        _ => throw new InvalidDataException($"dtype '{dtype}' is not supported."),
    };

    /// <summary>Little-endian stored values → float32 (quantised: min + scale·q; float16: widened; int32: converted).</summary>
    public static float[] Decode(ReadOnlySpan<byte> bytes, TfjsWeightSpec w)
    {
        var r = new float[w.Count];
        var q = w.Quantization;
        switch (q?.DType ?? w.DType)
        {
            case "uint8":
                for (int i = 0; i < r.Length; i++) r[i] = (float)(q!.Min + q.Scale * bytes[i]);
                break;
            case "uint16":
                for (int i = 0; i < r.Length; i++) r[i] = (float)(q!.Min + q.Scale * BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(2 * i)));
                break;
            case "float16":
                for (int i = 0; i < r.Length; i++) r[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.Slice(2 * i));
                break;
            case "int32":
                for (int i = 0; i < r.Length; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(4 * i));
                break;
            default:
                for (int i = 0; i < r.Length; i++) r[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(4 * i));
                break;
        }
        return r;
    }

    [GeneratedRegex(@"\.exports\s*=\s*(?=[{\[""'])")]
    private static partial Regex ExportsAssignment();

    /// <summary>
    /// The value of the first <c>X.exports = literal</c> in a browserify/UMD bundle (the nsfwjs model and shard files):
    /// an object/array/string literal read by the strict JavaScript literal reader.
    /// </summary>
    public static JsonNode? ModuleExport(string source)
    {
        var m = ExportsAssignment().Match(source);
        if (!m.Success) throw new InvalidDataException("no 'exports = {…}' or 'exports = \"…\"' assignment found in the JavaScript module.");
        var (value, end) = JsLiteral.ParseAt(source, m.Index + m.Length);
        while (end < source.Length && char.IsWhiteSpace(source[end])) end++;
        if (end < source.Length && source[end] is not ('}' or ';' or ','))
            throw new InvalidDataException($"unexpected '{source[end]}' after the exported literal at offset {end.ToString(CultureInfo.InvariantCulture)}.");
        return value;
    }
}
