using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Text;
using Whetstone.Models.WordVectors;
using Whetstone.Nn;
using Whetstone.Nn.Lora;
using Whetstone.Nn.Optimizers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>Texts turned into token ids once, with their labels.</summary>
internal sealed record EncodedTexts(TextDataset Data, TokenizedText[] Ids);

/// <summary>
/// Text classification by transfer learning, as a trainer task: pre-trained word vectors (GloVe) under a small
/// trainable encoder (pooling or a 1-D CNN) and a head sized from the labels, or a Hugging Face encoder with its
/// sequence-classification head (full, partial or LoRA fine-tuning). Texts are tokenized once; features below the head
/// are computed once when nothing under it trains. The loop is the <see cref="Trainer"/>'s; the end of the run is
/// <see cref="ClassificationTask"/>'s.
/// </summary>
public sealed class TextClassification : ClassificationTask
{
    public const string TaskName = "text-classification";

    public override string Name => TaskName;

    private readonly Rng _rng;
    private readonly Dictionary<TextDataset, EncodedTexts> _encoded = new(ReferenceEqualityComparer.Instance);

    /// <summary>The model that trains (either path).</summary>
    public TextNet Net { get; }
    protected override Module TrainedModule => Net.Module;
    /// <summary>The word vectors (word-vector path; null for transformers).</summary>
    public WordVectors? Vectors { get; }
    public string? VectorsPath { get; }
    /// <summary>The Hugging Face model folder (transformer path; null for word vectors).</summary>
    public string? BaseModelPath { get; }
    /// <summary>The LoRA adapters' settings when the run injects them.</summary>
    public LoraConfig? Lora { get; }
    public TextDataset TrainSet { get; }
    public TextDataset ValidationSet { get; }
    public TextDataset? TestSet { get; }
    public TextDataReport Report { get; }
    public override IReadOnlyList<string> Labels => TrainSet.LabelNames;
    public int MaxLength => Config.Text.MaxLength;

    private TextClassification(TrainConfig cfg, TextWriter log) : base(cfg, log)
    {
        _rng = new Rng(cfg.Seed);
        Validate(cfg);
        (TrainSet, ValidationSet, TestSet) = LoadData(cfg);
        if (cfg.Text.Model is { } hf)
        {
            (Net, BaseModelPath, Lora) = TransformerText.Prepare(cfg, hf, Labels, log);
        }
        else
        {
            VectorsPath = Assets.Resolve(cfg.Text.Vectors, cfg.BaseDirectory, fetch: true, log);
            Vectors = LoadVectors(VectorsPath, log);
            Net = new TextNet(new TextClassifier(MakeEncoder(cfg, Vectors, TrainSet, _rng), new HeadSpec(Labels.Count, cfg.Model.HeadHidden, cfg.Model.HeadDropout), _rng, cfg.Text.Dropout));
        }
        Report = TextDataReport.Build(TrainSet, ValidationSet, TestSet, Net.Count, cfg.Text.MaxLength);
        log.WriteLine(Report.ToText());
        foreach (var s in TrainSet.Skipped.Take(3)) log.WriteLine($"  skipped {s}");
        _weights = cfg.Text.ClassWeights == "balanced" ? TrainSet.BalancedClassWeights() : [];
        CheckBackboneLrScale(Model.NamedTrainableParameters().Any(p => !IsHead(p.Name)));
        Trainer.Validate(this, cfg);
    }

    /// <summary>Loads everything the config names (fetching assets it needs).</summary>
    public static TextClassification Prepare(TrainConfig cfg, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        ArgumentNullException.ThrowIfNull(log);
        return new TextClassification(cfg, log);
    }

    internal static WordVectors LoadVectors(string path, TextWriter log)
    {
        var v = WordVectors.Load(path, fallbackCacheDir: Path.Combine(Assets.Home, "vectors"));
        log.WriteLine($"word vectors: {v.Words.Count:N0} × {v.Dim} from {v.LoadedFrom} in {v.LoadSeconds:F2} s");
        return v;
    }

    /// <summary>The encoder the config asks for over pre-trained <paramref name="vectors"/>.</summary>
    internal static ITextEncoder MakeEncoder(TrainConfig cfg, WordVectors vectors, TextDataset train, Rng rng)
    {
        var t = cfg.Text;
        IReadOnlyList<string> tuned = [];
        if (t.TuneVectors)
            tuned = train.Rows.SelectMany(r => WordTokenizer.Words(r.Pair is null ? r.Text : r.Text + " " + r.Pair, vectors.Contains))
                .Where(vectors.Contains).Distinct().Order(StringComparer.Ordinal).ToArray();
        return new WordVectorEncoder(vectors, new WordEncoderSpec { Kind = t.Encoder, Filters = t.Filters, KernelSizes = t.KernelSizes.ToArray(), TuneVectors = t.TuneVectors, TunedWords = tuned }, rng);
    }

    private static void Validate(TrainConfig c)
    {
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        Need(c.Data.Validation is >= 0 and < 1, $"data.validation is a fraction in [0, 1) (got {c.Data.Validation}).");
        Need(c.Data.Format is "idx" or "auto" or "csv" or "tsv" or "jsonl" or "json" or "email", $"data.format for text must be csv, tsv, jsonl, json, email or auto (got '{c.Data.Format}').");
        TransformerText.Validate(c);
        Need(c.Text.Encoder is "pool" or "cnn", $"text.encoder must be pool or cnn (got '{c.Text.Encoder}').");
        Need(c.Text.MaxLength >= 1, $"text.max_length must be ≥ 1 (got {c.Text.MaxLength}).");
        Need(c.Text.BadRows is "error" or "skip", $"text.bad_rows must be error or skip (got '{c.Text.BadRows}').");
        Need(c.Text.ClassWeights is "none" or "balanced", $"text.class_weights must be none or balanced (got '{c.Text.ClassWeights}').");
        Need(c.Text.Dropout is >= 0 and < 1, $"text.dropout must be in [0, 1) (got {c.Text.Dropout}).");
    }

    private TextReadOptions ReadOptions() => new()
    {
        Format = Config.Data.Format == "idx" ? "auto" : Config.Data.Format,   // idx is the image default: read as "not set"
        TextColumn = Config.Text.TextColumn, PairColumn = Config.Text.PairColumn, LabelColumn = Config.Text.LabelColumn,
        LabelMap = Config.Text.LabelMap, BadRows = Config.Text.BadRows, FilePattern = Config.Text.FilePattern,
    };

    private (TextDataset, TextDataset, TextDataset?) LoadData(TrainConfig cfg)
    {
        var d = cfg.Data;
        var opts = ReadOptions();
        var train = TextFiles.Read(Assets.Resolve(d.Train, cfg.BaseDirectory, fetch: true, Log), opts);
        if (train.LabelNames.Count < 2) throw new DataException($"The training data has {train.LabelNames.Count} label(s) ({string.Join(", ", train.LabelNames)}); a classifier needs at least 2.");
        TextDataset validation;
        if (d.ValidationPath is not null) validation = TextFiles.Read(Assets.Resolve(d.ValidationPath, cfg.BaseDirectory, true, Log), opts).WithLabels(train.LabelNames, "validation data");
        else if (d.Validation > 0) (train, validation) = train.SplitStratified(d.Validation, cfg.Seed);
        else validation = train;
        var test = d.Test is null ? null : TextFiles.Read(Assets.Resolve(d.Test, cfg.BaseDirectory, true, Log), opts).WithLabels(train.LabelNames, "test data");
        return (train, validation, test);
    }

    internal EncodedTexts Encoded(TextDataset data)
    {
        if (_encoded.TryGetValue(data, out var e)) return e;
        var ids = data.Rows.Select(r => Net.Tokenize(r.Text, r.Pair, MaxLength)).ToArray();
        return _encoded[data] = new EncodedTexts(data, ids);
    }

    // ------------------------------------------------------------------ dry run

    public override string DescribeLayers()
    {
        var sb = new StringBuilder();
        int width = Math.Max(28, Model.NamedParameters().Select(p => p.Name.Length).DefaultIfEmpty(0).Max());
        sb.AppendLine($"{"parameter".PadRight(width)} {"shape",-14} {"params",10}  trainable");
        if (Vectors is not null) sb.AppendLine($"{"(word vectors)".PadRight(width)} {$"[{Vectors.Rows},{Vectors.Dim}]",-14} {(long)Vectors.Rows * Vectors.Dim,10:N0}  frozen");
        foreach (var (name, p) in Model.NamedParameters())
            sb.AppendLine($"{name.PadRight(width)} {"[" + string.Join(",", p.Shape.ToArray()) + "]",-14} {p.Size,10:N0}  {(p.RequiresGrad ? "yes" : "frozen")}");
        sb.AppendLine();
        if (Net.WordModel is { } w)
            sb.AppendLine($"encoder: {w.Encoder.Spec()["encoder"]}, {w.Encoder.OutputDim} features, dropout {w.FeatureDropout}; head {w.HeadSpec.Describe()}; {Model.TrainableParameterCount():N0} trainable parameters");
        else sb.AppendLine($"encoder: {Describe()}; {Model.TrainableParameterCount():N0} trainable parameters");
        sb.AppendLine($"data: {TrainSet.Count} train, {ValidationSet.Count} validation, {TestSet?.Count ?? 0} test, {Labels.Count} classes; features {(Net.CachesFeatures ? "cached once (the encoder has no trainable weights)" : "computed each step (the encoder trains)")}");
        sb.Append(Report.ToText());
        return sb.ToString();
    }

    // ------------------------------------------------------------------ evaluation

    /// <summary>Scores <see cref="Model"/> on <paramref name="data"/> (eval mode, no gradients).</summary>
    public EvalResult Evaluate(TextDataset data) => Score(Net, Encoded(data).Ids, data.Labels, data.LabelNames);

    /// <summary>The model in words, for logs and the report.</summary>
    public string Describe() => Net.Transformer is { } m
        ? $"{m.ModelType} from {Config.Text.Model} ({m.NumLayers} layers, hidden {m.HiddenSize}){(Lora is { } l ? $", LoRA r={l.Rank} α={l.Alpha} on {l.TargetModules}" : "")}"
        : $"{Config.Text.Vectors} word vectors, {Config.Text.Encoder} encoder";

    /// <summary>Features [n, F] of <paramref name="ids"/> in eval mode, as plain floats (kept across steps).</summary>
    internal static float[] Features(TextClassifier model, TokenizedText[] ids)
    {
        int f = model.Encoder.OutputDim;
        var o = new float[ids.Length * f];
        bool training = model.IsTraining;
        model.Eval();
        try
        {
            for (int s = 0; s < ids.Length; s += 256)
            {
                int n = Math.Min(256, ids.Length - s);
                using var scope = new TensorScope();
                using var noGrad = Graph.NoGrad();
                model.Encoder.Encode(ids.AsSpan(s, n).ToArray().Select(e => e.Ids).ToArray()).Span.CopyTo(o.AsSpan(s * f, n * f));
            }
        }
        finally { model.Train(training); }
        return o;
    }

    /// <summary>Scores <paramref name="model"/> on token ids with true labels; keeps every example's probabilities.</summary>
    internal static EvalResult Score(TextNet net, TokenizedText[] ids, int[] truth, IReadOnlyList<string> labels, float[]? features = null)
    {
        var model = net.Module;
        bool training = model.IsTraining;
        model.Eval();
        int k = net.Classes, f = net.WordModel?.Encoder.OutputDim ?? 0;
        var predicted = new int[ids.Length];
        var probabilities = new float[ids.Length * k];
        double lossSum = 0;
        try
        {
            for (int s = 0; s < ids.Length; s += 128)
            {
                int n = Math.Min(128, ids.Length - s);
                using var scope = new TensorScope();
                using var noGrad = Graph.NoGrad();
                var logits = features is null ? net.Logits(ids.AsSpan(s, n).ToArray()) : net.WordModel!.ForwardFeatures(Tensor.From(features.AsSpan(s * f, n * f), n, f));
                lossSum += Tensor.CrossEntropy(logits, truth.AsSpan(s, n)).Item() * n;
                logits.ArgMax(1).CopyTo(predicted, s);
                logits.Softmax().Span.CopyTo(probabilities.AsSpan(s * k, n * k));
            }
        }
        finally { model.Train(training); }
        return new EvalResult(ClassificationReport.From(truth, predicted, labels), ids.Length == 0 ? 0 : lossSum / ids.Length, ids.Length)
        {
            Truth = truth, Predicted = predicted, Probabilities = probabilities,
        };
    }

    // ------------------------------------------------------------------ the trainer's task

    private readonly float[] _weights;
    private readonly Dictionary<TextDataset, float[]> _features = new(ReferenceEqualityComparer.Instance);
    private string? _baseHash;

    public override int TrainCount => TrainSet.Count;
    protected override string HeldOutName => TestSet is null ? "validation" : "test";
    protected override IEnumerable<string> OwnKeys => ["feature_cache"];
    private bool CachesFeatures => Net.CachesFeatures && Config.Train.FeatureCache;
    protected override string? CachedAt => CachesFeatures ? "encoder" : null;

    /// <summary>SHA-256 of what the run starts from: the word vectors, or the Hugging Face folder's weight files.</summary>
    public override string BaseHash => _baseHash ??= Vectors is not null ? Vectors.Sha256 : TextNet.WeightsSha256(BaseModelPath!);

    /// <summary>Encoder features of <paramref name="d"/> when they are cached (computed once, eval mode), else null.</summary>
    private float[]? FeaturesOf(TextDataset d) =>
        !CachesFeatures ? null : _features.TryGetValue(d, out var f) ? f : _features[d] = Features(Net.WordModel!, Encoded(d).Ids);

    protected override void OnStart(RunDirectory run)
    {
        run.WriteText("data_report.json", Report.ToJson().ToJsonString(RunDirectory.Json));
        if (_weights.Length > 0) Log.WriteLine($"class weights: {string.Join(", ", Labels.Select((l, i) => $"{l} {_weights[i]:F3}"))}");
    }

    protected override EvalResult Score(bool validation)
    {
        var d = validation || TestSet is null ? ValidationSet : TestSet;
        return Score(Net, Encoded(d).Ids, d.Labels, d.LabelNames, FeaturesOf(d));
    }

    public override bool BeginEpoch(int epoch, TextWriter log) => false;

    /// <summary>The head learns at train.lr; everything under it at train.lr × train.backbone_lr_scale.</summary>
    public override double LrScale(string name) => IsHead(name) ? 1 : Config.Train.BackboneLrScale;

    private bool IsHead(string name) => Net.WordModel is not null ? name.StartsWith("head", StringComparison.Ordinal)
        : Net.Transformer!.HeadPaths.Any(h => name == h || name.StartsWith(h + ".", StringComparison.Ordinal));

    public override Tensor Loss(int[] indices, int epoch)
    {
        var y = Array.ConvertAll(indices, i => TrainSet.Labels[i]);
        Tensor logits;
        if (FeaturesOf(TrainSet) is { } features)
        {
            int f = Net.WordModel!.Encoder.OutputDim;
            var x = Tensor.Empty(indices.Length, f);
            for (int r = 0; r < indices.Length; r++) features.AsSpan(indices[r] * f, f).CopyTo(x.Span.Slice(r * f, f));
            logits = Net.WordModel.ForwardFeatures(x);
        }
        else
        {
            var ids = Encoded(TrainSet).Ids;
            logits = Net.Logits(Array.ConvertAll(indices, i => ids[i]));
        }
        return Tensor.CrossEntropy(logits, y, labelSmoothing: Config.Train.LabelSmoothing, classWeights: _weights);
    }

    public override JsonObject EpochFields() => new() { ["features_cached"] = CachesFeatures };

    protected override string SaveBundle(string dir, EvalResult before, EvalResult after, CalibratedDecision decision) =>
        TextBundle.Save(dir, this, before, after, HeldOutName, decision);

    protected override void WriteReport(RunDirectory run, EvalResult before, EvalResult after, EvalResult validation)
    {
        var held = TestSet ?? ValidationSet;
        Reports.RunReport.Write(run, Config, Labels, before, after, HeldOutName, validation, i => (held.Rows[i].Text, null), Log, model: Describe());
    }
}
