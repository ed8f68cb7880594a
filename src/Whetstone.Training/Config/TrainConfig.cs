using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Whetstone.Training.Config;

/// <summary>
/// A fine-tuning run as written in YAML (snake_case keys). Every section has defaults a careful user would pick;
/// unknown keys are errors naming the file, line and the keys that exist. Paths are relative to the config file;
/// <c>asset:NAME</c> names a cached asset (see <c>whet assets list</c>).
/// </summary>
public sealed record TrainConfig
{
    /// <summary>Run name: the run directory is <c>{runs}/{name}</c> (runs is relative to the working directory).</summary>
    public string Name { get; init; } = "run";
    public string Runs { get; init; } = "runs";
    public ulong Seed { get; init; } = 42;
    public string Task { get; init; } = "image-classification";
    public ModelConfig Model { get; init; } = new();
    public DataConfig Data { get; init; } = new();
    public TextConfig Text { get; init; } = new();
    public LmConfig Lm { get; init; } = new();
    public FreezeConfig Freeze { get; init; } = new();
    public LoraSection? Lora { get; init; }
    public List<UnfreezeStep> Unfreeze { get; init; } = [];
    public TrainSection Train { get; init; } = new();
    public SearchConfig? Search { get; init; }

    /// <summary>The folder relative paths are read from (the config file's folder); set by the loader.</summary>
    [YamlIgnore] public string BaseDirectory { get; init; } = ".";

    /// <summary>The YAML text the config was parsed from and the <c>--set</c> overrides applied to it (a run keeps both to resume).</summary>
    [YamlIgnore] public string Yaml { get; init; } = "";
    [YamlIgnore] public IReadOnlyList<string> Overrides { get; init; } = [];

    /// <summary>The config file (or "built-in"); set by the loader, for messages.</summary>
    [YamlIgnore] public string Source { get; init; } = "built-in";
}

public sealed record ModelConfig
{
    /// <summary>A TF.js layers model (folder, model.json or nsfwjs .min.js folder), an .onnx file, or asset:NAME.</summary>
    public string Path { get; init; } = "asset:mobilenet_v2";
    /// <summary>The layer whose output feeds the head (the backbone is cut there); default: the layer before the source model's own classifier.</summary>
    public string? Features { get; init; }
    /// <summary>0 → a linear head; &gt; 0 → an MLP with one hidden layer of this width.</summary>
    public int HeadHidden { get; init; }
    public float HeadDropout { get; init; }
    /// <summary>Start from random weights instead of the pre-trained ones (the "from scratch" baseline).</summary>
    public bool Scratch { get; init; }
}

public sealed record DataConfig
{
    /// <summary><c>idx</c> (MNIST-style files in a folder), <c>folder</c> (one subfolder per class) or <c>csv</c> (image path + label columns).</summary>
    public string Format { get; init; } = "idx";
    public string Train { get; init; } = "asset:fashion_mnist";
    /// <summary>The held-out evaluation set; for idx, the same folder's t10k files when not given.</summary>
    public string? Test { get; init; }
    /// <summary>Class names for formats that store only numbers (idx); Fashion-MNIST's are known.</summary>
    public List<string>? Labels { get; init; }
    /// <summary>Take this many training examples per class (seeded); 0 = all.</summary>
    public int PerClass { get; init; }
    /// <summary>Limit the evaluation set to this many examples (seeded, stratified); 0 = all.</summary>
    public int TestLimit { get; init; }
    /// <summary>Fraction of the training data held out for validation (stratified) when no validation set is given.</summary>
    public double Validation { get; init; } = 0.1;
    public string? ValidationPath { get; init; }
    /// <summary>Square input size the images are resized to; 0 = the model's own input size.</summary>
    public int ImageSize { get; init; }
    /// <summary>Width for a non-square input (with image_size as the height); 0: square. Without either, the model's own input shape.</summary>
    public int ImageWidth { get; init; }
    /// <summary>
    /// Pixel normalisation the backbone expects: <c>auto</c> (the model's own: TF.js nsfwjs models take pixels/255, the
    /// PaddleOCR ONNX models (x/255 − 0.5)/0.5), <c>zero_to_one</c>, <c>minus_one_to_one</c>, <c>imagenet</c>, or
    /// <c>mean,std</c> lists in <see cref="Mean"/>/<see cref="Std"/> (on pixels scaled to [0, 1]).
    /// </summary>
    public string Normalization { get; init; } = "auto";
    public List<float>? Mean { get; init; }
    public List<float>? Std { get; init; }
    /// <summary>
    /// Channel order the backbone reads: <c>auto</c> (the preprocessing graph's, else RGB), <c>rgb</c> or <c>bgr</c>.
    /// <see cref="Mean"/>/<see cref="Std"/> and the mean image are in this order.
    /// </summary>
    public string Channels { get; init; } = "auto";
    /// <summary>
    /// A per-pixel mean image subtracted from the pixels (0–255 units, model channel order) before mean/std: a
    /// <c>.safetensors</c> file with one tensor [3, H, W] or [1, 3, H, W], H × W the input size.
    /// </summary>
    public string? MeanImage { get; init; }
    /// <summary>
    /// An ONNX image preprocessing graph (channel split/concat reorder, Sub of a constant mean image, Mul/Div/Add by
    /// constants) read into channels, mean image and mean/std: <c>auto</c> (the one in the model folder, when it has
    /// one, e.g. asset:resnet18's ResNetPreprocess.onnx), <c>none</c>, or a path to an .onnx file.
    /// </summary>
    public string PreprocessGraph { get; init; } = "auto";
    public string ImageColumn { get; init; } = "image";
    public string LabelColumn { get; init; } = "label";
    public AugmentConfig Augment { get; init; } = new();
}

public sealed record AugmentConfig
{
    public bool Flip { get; init; }
    /// <summary>Random crop after padding each side by this many pixels (0 = off).</summary>
    public int CropPadding { get; init; }
    [YamlIgnore] public bool Enabled => Flip || CropPadding > 0;
}

/// <summary>Language-model tasks (<c>causal-lm</c>, <c>chat</c>): how the data becomes sequences, and the samples in the report.</summary>
public sealed record LmConfig
{
    /// <summary>Plain text is packed into blocks of this many tokens.</summary>
    public int BlockSize { get; init; } = 256;
    /// <summary>Prompt/completion and chat rows are cut to this many tokens (and counted).</summary>
    public int MaxLength { get; init; } = 512;
    public string PromptField { get; init; } = "prompt";
    public string CompletionField { get; init; } = "completion";
    /// <summary>Prompt/completion rows: what the model reads before the completion, <c>{prompt}</c> standing for the prompt field (e.g. "Translate English to Spanish: {prompt}\n").</summary>
    public string? PromptTemplate { get; init; }
    public string MessagesField { get; init; } = "messages";
    /// <summary>error (the first bad row stops the run, naming file and line) or skip (counted and reported).</summary>
    public string BadRows { get; init; } = "error";
    /// <summary>A chat template file (Jinja) to use instead of the checkpoint's own.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>Held-out prompts answered before and after fine-tuning in the report.</summary>
    public int Samples { get; init; } = 3;
    /// <summary>Tokens generated per sample reply (greedy).</summary>
    public int MaxNewTokens { get; init; } = 64;
}

public sealed record FreezeConfig
{
    /// <summary>Freeze every backbone layer before this one (nearer the input).</summary>
    public string? Below { get; init; }
    /// <summary>Freeze the whole backbone (only the head trains).</summary>
    public bool Backbone { get; init; }
    /// <summary>
    /// Transformer text models (<c>text.model</c>): freeze the embeddings and the first K transformer layers (0 = only
    /// the embeddings stay trainable too; null = nothing frozen). The layers above and the head train.
    /// </summary>
    public int? Layers { get; init; }
    /// <summary>Extra name patterns to freeze (globs over dotted parameter names, or re:REGEX).</summary>
    public List<string> Patterns { get; init; } = [];
}

/// <summary>Gradual unfreezing: at the start of <see cref="Epoch"/> (1-based), unfreeze from layer <see cref="From"/> up.</summary>
public sealed record UnfreezeStep
{
    public int Epoch { get; init; }
    public string From { get; init; } = "";
    /// <summary>Learning-rate multiplier for the newly unfrozen layers (discriminative learning rates).</summary>
    public double LrScale { get; init; } = 1;
}

public sealed record TrainSection
{
    public int Epochs { get; init; } = 5;
    public int BatchSize { get; init; } = 32;
    public string Optimizer { get; init; } = "adamw";
    public double Lr { get; init; } = 1e-3;
    /// <summary>Learning-rate multiplier for trainable backbone layers (the head uses 1).</summary>
    public double BackboneLrScale { get; init; } = 1;
    public double WeightDecay { get; init; } = 0.01;
    public double Momentum { get; init; } = 0.9;
    /// <summary><c>cosine</c>, <c>linear</c>, <c>constant</c> or <c>onecycle</c>.</summary>
    public string Schedule { get; init; } = "cosine";
    /// <summary>Warm-up as a fraction of all steps.</summary>
    public double Warmup { get; init; } = 0.05;
    /// <summary>Clip the global gradient norm to this value (0 = off).</summary>
    public double ClipGradNorm { get; init; } = 1.0;
    public int GradAccum { get; init; } = 1;
    public float LabelSmoothing { get; init; }
    /// <summary>
    /// Batch-norm statistics of the layers that train: <c>auto</c> (frozen when starting from pre-trained weights — the
    /// running averages of a small dataset would replace the pre-trained ones, and train/eval behaviour would diverge —
    /// and updated when training from scratch), <c>frozen</c> or <c>update</c>. Frozen layers' statistics are always frozen.
    /// </summary>
    public string BnStatistics { get; init; } = "auto";
    /// <summary>Running-average momentum (PyTorch convention) for statistics that update.</summary>
    public float BnMomentum { get; init; } = 0.1f;
    /// <summary>Cache the frozen bottom's features when nothing below the trainable layers changes between epochs.</summary>
    public bool FeatureCache { get; init; } = true;
    /// <summary>Threads for the kernels (0 = all cores).</summary>
    public int Threads { get; init; }
    /// <summary>
    /// Two-class tasks: how the decision threshold stored in the bundle is chosen on the validation set —
    /// <c>max_f1</c>, <c>recall:0.95</c> (highest precision at that recall) or <c>cost:FP,FN</c> (lowest total cost).
    /// </summary>
    public string Threshold { get; init; } = "max_f1";
    /// <summary>
    /// The validation metric whose best epoch is kept (<c>val_macro_f1</c>, <c>val_accuracy</c>, <c>val_loss</c>, or any
    /// other the task reports); default: the task's first metric, or under <c>whet tune</c> the study's metric.
    /// </summary>
    public string? Select { get; init; }
    /// <summary>Write a resume checkpoint every this many optimiser steps (besides every epoch); 0 = at most 10 minutes apart.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Log the step's loss, learning rate and gradient norm to metrics.jsonl every this many optimiser steps.</summary>
    public int LogEvery { get; init; } = 10;
}

/// <summary>A config file that does not parse or does not fit the schema: names the file, line and what was expected.</summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Reads configs from YAML with <c>--set key=value</c> overrides (dotted keys, YAML values).</summary>
public static class ConfigLoader
{
    public static TrainConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new ConfigException($"Config file '{path}' does not exist.");
        var full = System.IO.Path.GetFullPath(path);
        return Parse(File.ReadAllText(full), full, overrides) with { BaseDirectory = System.IO.Path.GetDirectoryName(full)!, Source = full };
    }

    /// <summary>Parses YAML text; <paramref name="source"/> names it in errors.</summary>
    public static TrainConfig Parse(string yaml, string source, IEnumerable<string>? overrides = null)
    {
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            root = stream.Documents.Count == 0 ? new YamlMappingNode() : stream.Documents[0].RootNode as YamlMappingNode
                ?? throw new ConfigException($"{source}: the config must be a mapping of sections (name:, model:, data:, train: …).");
        }
        catch (YamlException e)
        {
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: not valid YAML: {e.Message}", e);
        }
        var sets = (overrides ?? []).ToArray();
        foreach (var o in sets) ApplyOverride(root, o);
        var text = sets.Length == 0 ? yaml : Serialize(root);   // the file's own text keeps its line numbers
        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        try
        {
            var cfg = (deserializer.Deserialize<TrainConfig>(text) ?? new TrainConfig()) with { Yaml = yaml, Overrides = sets };
            // lora.rank: 0 switches the adapters off (a search can then choose between LoRA and a full fine-tune)
            return cfg.Lora is { Rank: 0 } ? cfg with { Lora = null } : cfg;
        }
        catch (YamlException e)
        {
            var inner = e.InnerException?.Message ?? e.Message;
            throw new ConfigException($"{source}:{e.Start.Line}: {Explain(inner)}", e);
        }
    }

    /// <summary>Applies <c>a.b.c=value</c> (value read as YAML: numbers, true/false, [lists]).</summary>
    public static void ApplyOverride(YamlMappingNode root, string assignment)
    {
        ArgumentNullException.ThrowIfNull(root);
        int eq = assignment.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0) throw new ConfigException($"--set '{assignment}': expected key=value, e.g. train.lr=3e-4.");
        var keys = assignment[..eq].Trim().Split('.');
        var valueText = assignment[(eq + 1)..];
        YamlNode value;
        try
        {
            var s = new YamlStream();
            s.Load(new StringReader("v: " + valueText));
            value = ((YamlMappingNode)s.Documents[0].RootNode).Children[new YamlScalarNode("v")];
        }
        catch (YamlException e)
        {
            throw new ConfigException($"--set '{assignment}': the value is not valid YAML ({e.Message}).", e);
        }
        var node = root;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            var k = new YamlScalarNode(keys[i]);
            if (!node.Children.TryGetValue(k, out var child))
                node.Children[k] = child = new YamlMappingNode();
            node = child as YamlMappingNode ?? throw new ConfigException($"--set '{assignment}': '{string.Join('.', keys[..(i + 1)])}' is a value, not a section.");
        }
        node.Children[new YamlScalarNode(keys[^1])] = value;
    }

    private static string Serialize(YamlMappingNode root)
    {
        var sw = new StringWriter();
        new YamlStream(new YamlDocument(root)).Save(sw, assignAnchors: false);
        return sw.ToString();
    }

    private static string Explain(string message)
    {
        // YamlDotNet: "Property 'lrr' not found on type 'Whetstone.Training.Config.TrainSection'."
        var m = System.Text.RegularExpressions.Regex.Match(message, @"Property '(?<p>[^']+)' not found on type '(?<t>[^']+)'");
        if (!m.Success) return message;
        var type = Type.GetType(m.Groups["t"].Value);
        var known = type?.GetProperties().Where(p => p.GetCustomAttributes(typeof(YamlIgnoreAttribute), false).Length == 0 && p.CanWrite)
            .Select(p => UnderscoredNamingConvention.Instance.Apply(p.Name)).ToArray() ?? [];
        var section = type is null ? "" : $" in '{UnderscoredNamingConvention.Instance.Apply(type.Name.Replace("Config", "", StringComparison.Ordinal).Replace("Section", "", StringComparison.Ordinal))}'";
        return $"unknown key '{m.Groups["p"].Value}'{section}; known keys: {string.Join(", ", known)}.";
    }
}

/// <summary>Writes a config back as YAML (the resolved config saved in a run folder).</summary>
public static class ConfigWriter
{
    public static string ToYaml(TrainConfig config)
    {
        var serializer = new SerializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance)
            .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull).Build();
        return $"# resolved from {config?.Source}\n" + serializer.Serialize(config);
    }
}
