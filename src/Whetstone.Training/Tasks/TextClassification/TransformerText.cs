using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Training.Config;

namespace Whetstone.Training.Tasks;

/// <summary>
/// The transformer path of <see cref="TextClassification"/> (<c>text.model</c>): loading a Hugging Face encoder with a
/// head sized from the labels, freezing (<c>freeze.backbone</c>, <c>freeze.layers</c>, <c>freeze.below</c>,
/// <c>freeze.patterns</c>) and LoRA injection (<c>lora:</c>).
/// </summary>
internal static class TransformerText
{
    public static void Validate(TrainConfig c)
    {
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        if (c.Text.Model is null)
        {
            Need(c.Lora is null, "lora: needs a transformer (text.model: a Hugging Face model folder or org/name); word vectors have no Linear layers to adapt — drop the lora: section or set text.model.");
            Need(c.Freeze.Layers is null, "freeze.layers applies to transformers (text.model); with word vectors use text.tune_vectors.");
            Need(c.Text.Pooling is null, "text.pooling applies to transformers (text.model); the word-vector encoder's pooling is text.encoder.");
            return;
        }
        Need(c.Text.Model.Length > 0, "text.model is empty.");
        Need(c.Text.Pooling is null or "mean" or "cls", $"text.pooling must be mean or cls (got '{c.Text.Pooling}').");
        Need(c.Freeze.Layers is null or >= 0, $"freeze.layers must be ≥ 0 (got {c.Freeze.Layers}).");
        if (c.Lora is { } l)
        {
            Need(l.Rank >= 1, $"lora.rank must be ≥ 1 (got {l.Rank}).");
            Need(l.Alpha > 0, $"lora.alpha must be > 0 (got {l.Alpha}).");
            Need(l.Dropout is >= 0 and < 1, $"lora.dropout must be in [0, 1) (got {l.Dropout}).");
            Need(c.Freeze.Layers is null && c.Freeze.Below is null && !c.Freeze.Backbone && c.Freeze.Patterns.Count == 0,
                "lora: freezes every pre-trained weight itself (only adapters and the head train); remove the freeze: settings.");
        }
    }

    /// <summary>
    /// The Hugging Face folder or hub name of <paramref name="name"/>: <c>asset:NAME</c>, a folder or file relative to
    /// the config file, or a hub name. An ONNX encoder graph (an <c>.onnx</c> file, or a folder holding one and no
    /// safetensors) is imported once into a cached Hugging Face folder (<see cref="OnnxEncoder.ToHfFolder"/>).
    /// </summary>
    public static string Locate(TrainConfig cfg, string name, TextWriter? log = null) => Locate(name, cfg.BaseDirectory, log);

    public static string Locate(string name, string baseDirectory, TextWriter? log = null)
    {
        var local = name.StartsWith("asset:", StringComparison.Ordinal) ? Assets.Resolve(name, baseDirectory, log: log) : Path.GetFullPath(Path.Combine(baseDirectory, name));
        if (OnnxEncoder.FindGraph(local) is { } graph) return OnnxEncoder.ToHfFolder(graph, ConvertedCache, log).Folder;
        if (File.Exists(local) && local.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ConfigException($"'{name}' is an ONNX graph without an input_ids input: not a text encoder (image models go in model.path).");
        return Directory.Exists(local) ? local : name;
    }

    /// <summary>Where ONNX encoders converted to Hugging Face folders are kept (<c>$WHETSTONE_HOME/converted</c>).</summary>
    public static string ConvertedCache => Path.Combine(Assets.Home, "converted");

    public static (TextNet Net, string Folder, LoraConfig? Lora) Prepare(TrainConfig cfg, string name, IReadOnlyList<string> labels, TextWriter log)
    {
        TextEncoderClassifier model;
        HfLoadReport report;
        try { (model, report) = HfModel.Load(Locate(cfg, name, log), labels.Count, (int)(cfg.Seed % int.MaxValue)); }
        catch (HfCheckpointException e) when (e.Fault == HfFault.ModelNotFound)
        { throw new ConfigException($"{cfg.Source}: text.model '{name}' {e.Message}", e); }
        log.WriteLine(report.ToString());
        if (report.Complete && report.Labels is { } own && !own.SequenceEqual(labels, StringComparer.Ordinal))
            log.WriteLine($"  note: the checkpoint's own head ({string.Join(", ", own)}) is kept and trained for this data's labels in head order ({string.Join(", ", labels)}).");
        if (cfg.Text.Pooling is { } pooling) model.Pooling = pooling == "mean" ? TextPooling.Mean : TextPooling.Cls;
        log.WriteLine($"  head input: {(model.Pooling == TextPooling.Mean ? "mean over tokens" : "first token")} (text.pooling: {(cfg.Text.Pooling ?? "the checkpoint's")})");
        if (model.Tokenizer is null) throw new ConfigException($"{cfg.Source}: text.model '{name}' ({report.Folder}) has no tokenizer files (vocab.txt, vocab.json + merges.txt or tokenizer.json).");
        var lora = Adapt(cfg, model, new Rng(cfg.Seed ^ 0x10CA));
        model.Train();
        return (new TextNet(model), report.Folder, lora);
    }

    /// <summary>Applies the config's freezing or LoRA to a freshly loaded model; returns the LoRA settings used, if any.</summary>
    public static LoraConfig? Adapt(TrainConfig cfg, TextEncoderClassifier model, Rng rng)
    {
        var f = cfg.Freeze;
        try
        {
            if (model.Pooling == TextPooling.Mean)                      // modules the mean-pooled head skips take no part
                foreach (var m in model.UnusedWhenMean) Freezing.SetModuleTrainable(model, m, false);
            if (cfg.Lora is { } l)
            {
                var lora = new LoraConfig { Rank = l.Rank, Alpha = l.Alpha, Dropout = l.Dropout, TargetModules = l.Targets ?? model.LoraTargets, ModulesToSave = model.LoraModulesToSave };
                LoraInjector.Inject(model, lora, rng);
                return lora;
            }
            if (f.Backbone)
            {
                Freezing.FreezeAll(model);
                foreach (var h in model.HeadPaths) Freezing.SetModuleTrainable(model, h, true);
            }
            if (f.Layers is { } k)
            {
                if (k > model.NumLayers) throw new ConfigException($"{cfg.Source}: freeze.layers is {k}, but the {model.ModelType} model has {model.NumLayers} layers.");
                Freezing.SetModuleTrainable(model, model.EmbeddingsPath, false);
                for (int i = 0; i < k; i++) Freezing.SetModuleTrainable(model, model.LayerPath(i), false);
            }
            if (f.Below is { } below) Freezing.FreezeBefore(model, ModulePath(model, below));
            foreach (var p in f.Patterns)
                if (Freezing.Freeze(model, p) == 0)
                    throw new ConfigException($"{cfg.Source}: freeze.patterns '{p}' matches no parameter of the {model.ModelType} model (names look like {model.LayerPath(0)}.attention.self.query.weight).");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or KeyNotFoundException)
        {
            throw new ConfigException($"{cfg.Source}: {e.Message}", e);
        }
        return null;
    }

    /// <summary>A module path as given, or under the model's base prefix (<c>encoder.layer.2</c> → <c>bert.encoder.layer.2</c>).</summary>
    public static string ModulePath(TextEncoderClassifier model, string path)
    {
        if (model.NamedModules().Any(m => m.Name == path)) return path;
        var prefixed = model.EmbeddingsPath[..(model.EmbeddingsPath.IndexOf('.', StringComparison.Ordinal) + 1)] + path;
        if (model.NamedModules().Any(m => m.Name == prefixed)) return prefixed;
        throw new ArgumentException($"freeze.below '{path}' is not a module of the {model.ModelType} model (e.g. {model.LayerPath(model.NumLayers - 1)}).");
    }
}
