using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Whetstone.Models.Formats;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Tensors;

namespace Whetstone.Models.Importers.Hf;

/// <summary>One checkpoint tensor copied into the model.</summary>
public sealed record HfKeyUse(string Key, string File, string ModulePath);

/// <summary>What <see cref="HfModel.Load"/> did: every checkpoint key is either used or ignored; fresh modules are named.</summary>
public sealed record HfLoadReport(
    string ModelType,
    string Folder,
    IReadOnlyList<string> WeightFiles,
    int NumLabels,
    IReadOnlyList<string>? Labels,
    IReadOnlyList<HfKeyUse> UsedKeys,
    IReadOnlyList<string> IgnoredKeys,
    IReadOnlyList<string> NewModules,
    IReadOnlyList<string> Notes,
    double LoadMilliseconds)
{
    /// <summary>True when the whole model, head included, came from the checkpoint.</summary>
    public bool Complete => NewModules.Count == 0;

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"{ModelType} from {Folder} ({string.Join(", ", WeightFiles.Select(System.IO.Path.GetFileName))}): ")
          .Append($"{UsedKeys.Count} tensors used, {IgnoredKeys.Count} ignored, {NumLabels} labels, {LoadMilliseconds:F0} ms");
        if (NewModules.Count > 0) sb.Append($"\n  newly initialised (train before use): {string.Join(", ", NewModules)}");
        foreach (var n in Notes) sb.Append("\n  ").Append(n);
        return sb.ToString();
    }
}

/// <summary>
/// Loads Hugging Face checkpoints of the families in <see cref="Families"/> (today the encoders: BERT incl.
/// MiniLM/TinyBERT/sentence-transformers, DistilBERT, RoBERTa/XLM-R) from a model folder or the hub cache into a
/// <see cref="TextEncoderClassifier"/>, exactly: every checkpoint key is used or explicitly ignored by the key map
/// derived from the model's module tree and the family's <see cref="HfCheckpointKeys"/>, every shape is checked, and
/// tensors are converted straight from the memory-mapped safetensors file into parameter storage.
/// </summary>
public static class HfModel
{
    /// <summary>The <c>model_type</c> values <see cref="Load"/> reads (families with a sequence-classification head).</summary>
    public static IReadOnlyList<string> SupportedModelTypes => Families.SequenceClassificationModelTypes;

    /// <summary>
    /// Loads a sequence classifier from a folder (config.json + model.safetensors, or shards with
    /// model.safetensors.index.json; tokenizer files when present) or a hub name <c>org/name</c> found in the local
    /// Hugging Face cache (<c>HF_HUB_CACHE</c>, else <c>HF_HOME</c>/hub, else ~/.cache/huggingface/hub).
    /// The head is taken from the checkpoint when it has one with <paramref name="numLabels"/> outputs (default: the
    /// checkpoint's or config's label count, else 2); otherwise it is initialised fresh (seeded by <paramref name="seed"/>)
    /// and the report names it. The model is returned in evaluation mode.
    /// </summary>
    public static (TextEncoderClassifier Model, HfLoadReport Report) Load(string pathOrName, int? numLabels = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrName);
        if (numLabels is <= 0) throw new ArgumentOutOfRangeException(nameof(numLabels), "numLabels must be positive.");
        var sw = Stopwatch.StartNew();
        var folder = ResolveFolder(pathOrName, Environment.GetEnvironmentVariable);
        var config = HfConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var modelType = config.StringOrNull("model_type")
            ?? throw new HfCheckpointException(HfFault.UnknownModelType, config.Path, $"config.json has no model_type; supported: {string.Join(", ", SupportedModelTypes)}.", "model_type");
        var family = Families.Find(modelType)
            ?? throw new HfCheckpointException(HfFault.UnknownModelType, config.Path, $"model_type '{modelType}' is not supported; supported: {string.Join(", ", SupportedModelTypes)}.", "model_type");
        var head = family.SequenceClassification
            ?? throw new HfCheckpointException(HfFault.UnknownModelType, config.Path, $"model_type '{modelType}' has no sequence-classification head.", "model_type");

        var files = OpenWeights(folder);
        try
        {
            var (model, report) = Build(modelType, family, head, config, folder, files, numLabels, seed);
            model.Tokenizer = HfTokenizer.TryLoad(folder, modelType);
            var (pooling, why) = DefaultPooling(folder, config, model, report.NewModules);
            model.Pooling = pooling;
            if (why is not null) report = report with { Notes = [.. report.Notes, why] };
            return (model, report with { LoadMilliseconds = sw.Elapsed.TotalMilliseconds });
        }
        finally
        {
            foreach (var (f, _) in files) f.Dispose();
        }
    }

    private static (TextEncoderClassifier, HfLoadReport) Build(string modelType, ModelFamily family, SequenceClassificationHead head,
        HfConfig config, string folder, List<(SafeTensorsFile File, IReadOnlyList<string> Keys)> files, int? requestedLabels, int seed)
    {
        // 1. the label count: asked for, else the checkpoint head's, else the config's, else 2
        var names = family.Keys.WithIgnored(head.Ignore);
        var headWeight = head.LabelsModule + ".weight";
        var headKeys = HfKeyMap.Derive([headWeight], names);          // which checkpoint key fills the head, before the model exists
        var ckptHead = files.SelectMany(f => f.Keys.Select(k => (f.File, Key: k)))
            .FirstOrDefault(k => headKeys.TryMap(k.Key, out var t) && t == headWeight);
        int? ckptLabels = ckptHead.File is null ? null : ckptHead.File.Info(ckptHead.Key).Shape[0];
        var labels = config.Labels();
        int numLabels = requestedLabels ?? ckptLabels ?? config.LabelCount() ?? 2;
        if (labels is not null && labels.Count != numLabels) labels = null;

        TextEncoderClassifier model;
        using (ModelInit.SkipWeightInit()) model = head.Create(config, modelType, numLabels, new Rng((ulong)seed));
        var tensors = model.StateDict();

        // 2-3. map every checkpoint key (used / ignored / unknown) and check it against the model
        var keys = PlanKeys(modelType, HfKeyMap.Derive(tensors.Keys, names), tensors, files, transposed: _ => false,
            dropOnMismatch: target => IsUnder(target, head.LabelsModule) && ckptLabels != numLabels);
        var (plan, filled, used, ignored) = (keys.Plan, keys.Filled, keys.Used, keys.Ignored);
        var notes = new List<string>();
        if (ckptLabels is not null && ckptLabels != numLabels)
            notes.Add($"the checkpoint's classifier has {ckptLabels} labels, {numLabels} were asked for: '{head.LabelsModule}' is new.");

        // 4. every model tensor must be filled, unless it belongs to an optional (head) module
        var fresh = new List<string>();
        var missing = new List<string>();
        foreach (var (name, _) in tensors)
        {
            if (filled.ContainsKey(name)) continue;
            var owner = head.OptionalModules.FirstOrDefault(m => IsUnder(name, m));
            if (owner is null) missing.Add(name);
            else if (!fresh.Contains(owner)) fresh.Add(owner);
        }
        if (missing.Count > 0)
            throw new HfCheckpointException(HfFault.MissingKey, files[0].File.Path,
                $"{missing.Count} model tensor(s) are in no checkpoint file: {string.Join(", ", missing.Take(12))}{(missing.Count > 12 ? ", …" : "")}.");

        // 5. convert straight from the mapped files into parameter storage
        Fill(plan);

        // 6. fresh modules as transformers initialises them
        var rng = new Rng((ulong)seed * 7919 + 17);
        float std = family.Std(config);
        foreach (var m in fresh) ModelInit.HfInit(model.GetModule(m), rng, std);
        if (fresh.Count > 0) notes.Add($"{string.Join(", ", fresh)} initialised fresh (N(0, {std})): fine-tune before predicting.");
        model.Eval();

        var report = new HfLoadReport(modelType, folder, files.Select(f => f.File.Path).ToList(), numLabels, labels,
            used, ignored, fresh, notes, 0);
        return (model, report);
    }

    /// <summary>
    /// The pooling a checkpoint asks for: config.json's <c>classifier_pooling</c> (written by whet export), else a
    /// sentence-transformers folder's Pooling module (<c>modules.json</c> → its <c>config.json</c>), else mean when the
    /// checkpoint has no pooler (a sentence-embedding checkpoint), else the family's first-token head.
    /// </summary>
    internal static (TextPooling Pooling, string? Why) DefaultPooling(string folder, HfConfig config, TextEncoderClassifier model, IReadOnlyList<string> fresh)
    {
        if (config.StringOrNull("classifier_pooling") is { } cp)
            return cp switch
            {
                "mean" => (TextPooling.Mean, "pooling: mean over tokens (config.json classifier_pooling)"),
                "cls" => (TextPooling.Cls, null),
                _ => throw new HfCheckpointException(HfFault.InvalidConfig, config.Path, $"classifier_pooling '{cp}' is not mean or cls.", "classifier_pooling"),
            };
        var modules = System.IO.Path.Combine(folder, "modules.json");
        if (File.Exists(modules))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(modules));
                foreach (var m in doc.RootElement.EnumerateArray())
                    if (m.TryGetProperty("type", out var type) && type.GetString()?.EndsWith("Pooling", StringComparison.Ordinal) == true
                        && m.TryGetProperty("path", out var path) && File.Exists(System.IO.Path.Combine(folder, path.GetString()!, "config.json")))
                    {
                        using var pc = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(folder, path.GetString()!, "config.json")));
                        bool Mode(string name) => pc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
                        if (Mode("pooling_mode_mean_tokens")) return (TextPooling.Mean, "pooling: mean over tokens (the sentence-transformers Pooling module)");
                        if (Mode("pooling_mode_cls_token")) return (TextPooling.Cls, "pooling: first token (the sentence-transformers Pooling module)");
                    }
            }
            catch (JsonException e) { throw new HfCheckpointException(HfFault.InvalidConfig, modules, $"not valid JSON ({e.Message})."); }
        }
        if (model.UnusedWhenMean.Count > 0 && model.UnusedWhenMean.All(u => fresh.Any(f => f == u || f.StartsWith(u + ".", StringComparison.Ordinal))))
            return (TextPooling.Mean, $"pooling: mean over tokens (the checkpoint has no {string.Join(", ", model.UnusedWhenMean)}: a sentence-embedding checkpoint)");
        return (TextPooling.Cls, null);
    }

    private static bool IsUnder(string name, string module) =>
        name.Length > module.Length && name.StartsWith(module, StringComparison.Ordinal) && name[module.Length] == '.';

    /// <summary>The safetensors files of a folder with their keys: one file, or the shards an index names.</summary>
    private static List<(SafeTensorsFile, IReadOnlyList<string>)> OpenWeights(string folder)
    {
        var single = System.IO.Path.Combine(folder, "model.safetensors");
        var index = System.IO.Path.Combine(folder, "model.safetensors.index.json");
        var result = new List<(SafeTensorsFile, IReadOnlyList<string>)>();
        try
        {
            if (File.Exists(single))
            {
                var f = SafeTensorsFile.Open(HfHubCache.RealPath(single));
                result.Add((f, f.Names));
                return result;
            }
            if (!File.Exists(index))
            {
                var other = new[] { "pytorch_model.bin", "tf_model.h5", "model.onnx", "flax_model.msgpack" }.FirstOrDefault(n => File.Exists(System.IO.Path.Combine(folder, n)));
                throw new HfCheckpointException(HfFault.MissingFile, folder,
                    "no model.safetensors or model.safetensors.index.json" + (other is null ? "." : $"; {other} is not read (convert it to safetensors)."));
            }
            var byFile = ReadIndex(index);
            foreach (var (name, keys) in byFile)
            {
                var path = System.IO.Path.Combine(folder, name);
                if (!File.Exists(path)) throw new HfCheckpointException(HfFault.MissingFile, path, $"shard named by {System.IO.Path.GetFileName(index)} is missing.");
                var f = SafeTensorsFile.Open(HfHubCache.RealPath(path));
                result.Add((f, f.Names));
                foreach (var k in keys)
                    if (!f.Contains(k)) throw new HfCheckpointException(HfFault.MissingKey, path, "the index places this tensor in this shard, which lacks it.", k);
                foreach (var k in f.Names)
                    if (!keys.Contains(k)) throw new HfCheckpointException(HfFault.UnexpectedKey, path, "this shard holds a tensor its index does not list.", k);
            }
            return result;
        }
        catch
        {
            foreach (var (f, _) in result) f.Dispose();
            throw;
        }
    }

    private static SortedDictionary<string, HashSet<string>> ReadIndex(string path)
    {
        var byFile = new SortedDictionary<string, HashSet<string>>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new HfCheckpointException(HfFault.InvalidConfig, path, "no 'weight_map' object.", "weight_map");
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw new HfCheckpointException(HfFault.InvalidConfig, path, "the shard name is not a string.", p.Name);
                var file = p.Value.GetString()!;
                if (file.Contains('/') || file.Contains('\\') || file.StartsWith('.')) throw new HfCheckpointException(HfFault.InvalidConfig, path, $"shard name '{file}' is not a plain file name.", p.Name);
                if (!byFile.TryGetValue(file, out var keys)) byFile[file] = keys = new HashSet<string>(StringComparer.Ordinal);
                keys.Add(p.Name);
            }
        }
        catch (JsonException e) { throw new HfCheckpointException(HfFault.InvalidConfig, path, $"not valid JSON ({e.Message})."); }
        return byFile;
    }

    /// <summary>A folder path as is, else a hub name looked up in the local hub cache (<see cref="HfHubCache.Resolve"/>).</summary>
    internal static string ResolveFolder(string pathOrName, Func<string, string?> env) => HfHubCache.Resolve(pathOrName, env);

    /// <summary>Checkpoint tensors matched to model tensors: what fills what, and what was ignored.</summary>
    private sealed record KeyPlan(List<(SafeTensorsFile File, string Key, Tensor Target, bool Transposed)> Plan,
        Dictionary<string, string> Filled, List<HfKeyUse> Used, List<string> Ignored);

    /// <summary>
    /// Maps every checkpoint key by <paramref name="keyMap"/> (used, ignored or unknown → error) and checks each used one:
    /// the model has the target, it is filled once, and the shape matches (reversed for a <paramref name="transposed"/>
    /// target, whose checkpoint stores it [in, out]). A mismatching tensor that <paramref name="dropOnMismatch"/> accepts
    /// is ignored instead (a classifier with another label count).
    /// </summary>
    private static KeyPlan PlanKeys(string modelType, HfKeyMap keyMap, IReadOnlyDictionary<string, Tensor> tensors,
        List<(SafeTensorsFile File, IReadOnlyList<string> Keys)> files, Func<string, bool> transposed, Func<string, bool> dropOnMismatch)
    {
        var result = new KeyPlan([], new(StringComparer.Ordinal), [], []);
        foreach (var (file, keys) in files)
            foreach (var key in keys)
            {
                if (!keyMap.TryMap(key, out var target))
                    throw new HfCheckpointException(HfFault.UnexpectedKey, file.Path,
                        $"the {modelType} key map neither uses nor ignores this tensor (is model_type right?). Known patterns: {string.Join(", ", keyMap.Patterns.Take(8))}, …", key);
                if (target is null) { result.Ignored.Add(key); continue; }
                if (!tensors.TryGetValue(target, out var t))
                    throw new HfCheckpointException(HfFault.UnexpectedKey, file.Path, $"maps to '{target}', which this {modelType} model does not have.", key);
                if (result.Filled.TryGetValue(target, out var other))
                    throw new HfCheckpointException(HfFault.DuplicateKey, file.Path, $"fills '{target}', which '{other}' already filled.", key);
                var info = file.Info(key);
                bool swap = transposed(target);
                int[] expected = swap ? [.. t.Shape.ToArray().Reverse()] : t.Shape.ToArray();
                if (!info.Shape.AsSpan().SequenceEqual(expected))
                {
                    if (dropOnMismatch(target)) { result.Ignored.Add(key); continue; }
                    throw new HfCheckpointException(HfFault.ShapeMismatch, file.Path,
                        $"shape {Shapes.Format(info.Shape)} in the checkpoint, {Shapes.Format(expected)} expected from config.json ('{target}'{(swap ? ", stored [in, out]" : "")}).", key);
                }
                result.Filled[target] = key;
                result.Plan.Add((file, key, t, swap));
                result.Used.Add(new HfKeyUse(key, System.IO.Path.GetFileName(file.Path), target));
            }
        return result;
    }

    /// <summary>Converts each planned tensor straight from its memory-mapped file into parameter storage (transposing [in, out] ones).</summary>
    private static void Fill(List<(SafeTensorsFile File, string Key, Tensor Target, bool Transposed)> plan)
    {
        using (Whetstone.Tensors.Autograd.Graph.NoGrad())
            Parallel.ForEach(plan, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, p =>
            {
                var info = p.File.Info(p.Key);
                if (!p.Transposed) { DTypes.ToFloat32(p.File.RawBytes(p.Key), info.DType, p.Target.Span); return; }
                int rows = info.Shape[0], cols = info.Shape[1];              // stored [in, out] = [rows, cols]
                var tmp = new float[rows * cols];
                DTypes.ToFloat32(p.File.RawBytes(p.Key), info.DType, tmp);
                var dst = p.Target.Span;                                     // [out, in] = [cols, rows]
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++) dst[c * rows + r] = tmp[r * cols + c];
            });
    }

    /// <summary>
    /// Loads a decoder language model (<see cref="CausalLm"/>: GPT-2, Llama, Qwen2, Mistral) from a folder or hub name as
    /// <see cref="Load"/> does, exactly: every checkpoint key used or explicitly ignored (buffers, a tied lm_head),
    /// every model tensor filled, every shape checked (GPT-2's Conv1D weights transposed from [in, out]); f32, f16 and
    /// bf16 tensors, one file or shards. The model is returned in evaluation mode.
    /// </summary>
    public static (CausalLm Model, HfLoadReport Report) LoadCausalLm(string pathOrName, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrName);
        var sw = Stopwatch.StartNew();
        var folder = ResolveFolder(pathOrName, Environment.GetEnvironmentVariable);
        var config = HfConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var (model, modelType, family, head) = BuildDecoder(config, new Rng((ulong)seed));
        var files = OpenWeights(folder);
        try
        {
            var tensors = model.StateDict();
            var keys = PlanKeys(modelType, HfKeyMap.Derive(tensors.Keys, family.Keys), tensors, files, transposed: head.IsTransposed, dropOnMismatch: _ => false);
            var missing = tensors.Keys.Where(k => !keys.Filled.ContainsKey(k)).ToList();
            if (missing.Count > 0)
                throw new HfCheckpointException(HfFault.MissingKey, files[0].Item1.Path,
                    $"{missing.Count} model tensor(s) are in no checkpoint file: {string.Join(", ", missing.Take(12))}{(missing.Count > 12 ? ", …" : "")}.");
            Fill(keys.Plan);
            model.Eval();
            var notes = new List<string>();
            if (model.TiedEmbeddings && keys.Ignored.Contains("lm_head.weight"))
                notes.Add($"lm_head.weight ignored: the output projection is tied to {model.EmbeddingsPath} (tie_word_embeddings).");
            var report = new HfLoadReport(modelType, folder, files.Select(f => f.Item1.Path).ToList(), 0, null, keys.Used, keys.Ignored, [], notes,
                sw.Elapsed.TotalMilliseconds);
            return (model, report);
        }
        finally
        {
            foreach (var (f, _) in files) f.Dispose();
        }
    }

    /// <summary>Tokenizer and generation files a decoder folder may carry; <see cref="SaveCausalLm"/> copies those present.</summary>
    private static readonly string[] DecoderSideFiles =
        ["generation_config.json", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "chat_template.jinja"];

    /// <summary>
    /// Writes <paramref name="model"/> as a Hugging Face folder that <see cref="LoadCausalLm"/> (and transformers) reads:
    /// <paramref name="config"/> (default: the source folder's config.json), the source's generation and tokenizer
    /// files, and <c>model.safetensors</c> under the checkpoint names (GPT-2's Conv1D weights transposed back to
    /// [in, out]; a tied head is not written twice). LoRA adapters must be merged first
    /// (<see cref="Nn.Lora.LoraInjector.MergeAndUnload"/>). Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> SaveCausalLm(CausalLm model, string sourceFolder, string outDir, System.Text.Json.Nodes.JsonObject? config = null, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sourceFolder);
        ArgumentNullException.ThrowIfNull(outDir);
        if (Nn.Lora.LoraInjector.Layers(model).Any())
            throw new InvalidOperationException("The model still has LoRA adapters; merge them (LoraInjector.MergeAndUnload) or save the adapter alone.");
        var head = Families.Find(model.ModelType)?.CausalLm ?? throw new InvalidOperationException($"model_type '{model.ModelType}' has no registered decoder family.");
        Directory.CreateDirectory(outDir);
        var files = new List<string>();
        var cfg = config ?? System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(sourceFolder, "config.json")))!.AsObject();
        cfg["torch_dtype"] = dtype switch { DType.F16 => "float16", DType.BF16 => "bfloat16", _ => "float32" };
        File.WriteAllText(System.IO.Path.Combine(outDir, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        files.Add("config.json");
        bool sameFolder = string.Equals(System.IO.Path.GetFullPath(sourceFolder).TrimEnd('/'), System.IO.Path.GetFullPath(outDir).TrimEnd('/'), StringComparison.Ordinal);
        foreach (var name in DecoderSideFiles)
        {
            var from = System.IO.Path.Combine(sourceFolder, name);
            if (!File.Exists(from)) continue;
            if (sameFolder) { files.Add(name); continue; }
            File.Copy(from, System.IO.Path.Combine(outDir, name), overwrite: true);
            files.Add(name);
        }
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (new Tensors.Memory.TensorScope())
        {
            foreach (var (name, t) in model.StateDict())
                state[name] = head.IsTransposed(name) ? t.Transpose(0, 1).Contiguous() : t;
            SafeTensors.Save(System.IO.Path.Combine(outDir, "model.safetensors"), state, new Dictionary<string, string> { ["format"] = "pt" }, dtype);
        }
        files.Add("model.safetensors");
        return files;
    }

    /// <summary>
    /// A decoder built from <paramref name="folder"/>'s config.json alone, freshly initialised as transformers' <c>_init_weights</c>
    /// does (Linear and Embedding weights N(0, initializer_range), biases 0, norms 1): for pre-training and the
    /// "same network from scratch" baseline. Weights in the folder, if any, are not read.
    /// </summary>
    public static CausalLm CreateCausalLm(string folder, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var config = HfConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var rng = new Rng((ulong)seed);
        var (model, _, family, _) = BuildDecoder(config, rng);
        ModelInit.HfInit(model, rng, family.Std(config));
        model.Eval();
        return model;
    }

    /// <summary>
    /// The decoder <paramref name="config"/> describes, built with its weights left at zero (a checkpoint or
    /// <see cref="ModelInit.HfInit"/> fills them): its model_type's family and language-modelling head; a config that is
    /// not a supported decoder, or that the family refuses, is an <see cref="HfCheckpointException"/>.
    /// </summary>
    private static (CausalLm Model, string ModelType, ModelFamily Family, CausalLmHead Head) BuildDecoder(HfConfig config, Rng rng)
    {
        var modelType = config.StringOrNull("model_type")
            ?? throw new HfCheckpointException(HfFault.UnknownModelType, config.Path, $"config.json has no model_type; decoders supported: {string.Join(", ", CausalLmModelTypes)}.", "model_type");
        var family = Families.Find(modelType);
        var head = family?.CausalLm
            ?? throw new HfCheckpointException(HfFault.UnknownModelType, config.Path, family is null
                ? $"model_type '{modelType}' is not supported; decoders supported: {string.Join(", ", CausalLmModelTypes)}."
                : $"model_type '{modelType}' is an encoder (no language-modelling head); decoders supported: {string.Join(", ", CausalLmModelTypes)}.", "model_type");
        try
        {
            using (ModelInit.SkipWeightInit()) return (head.Create(config, modelType, rng), modelType, family, head);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new HfCheckpointException(HfFault.InvalidConfig, config.Path, e.Message);
        }
    }

    /// <summary>The <c>model_type</c> values <see cref="LoadCausalLm"/> reads.</summary>
    public static IReadOnlyList<string> CausalLmModelTypes => Families.CausalLmModelTypes;
}
