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

namespace Whetstone.Training.Recipes;

/// <summary>Texts turned into token ids once, with their labels.</summary>
internal sealed record EncodedTexts(TextDataset Data, TokenizedText[] Ids);

/// <summary>
/// Text classification by transfer learning: pre-trained word vectors (GloVe) under a small trainable encoder (pooling
/// or a 1-D CNN) and a head sized from the labels; the same run folder, metrics, checkpoints, best-epoch selection by
/// validation macro-F1, before/after evaluation and bundle as <see cref="ImageClassification"/>. The encoder is an
/// <see cref="ITextEncoder"/>, so another pre-trained encoder (a transformer) plugs in at <see cref="MakeEncoder"/>.
/// </summary>
public sealed class TextClassification
{
    public const string TaskName = "text-classification";

    private readonly TrainConfig _cfg;
    private readonly TextWriter _log;
    private readonly Rng _rng;
    private readonly Dictionary<TextDataset, EncodedTexts> _encoded = new(ReferenceEqualityComparer.Instance);

    /// <summary>The model that trains (either path).</summary>
    public TextNet Net { get; }
    public Module Model => Net.Module;
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
    public IReadOnlyList<string> Labels => TrainSet.LabelNames;
    public int MaxLength => _cfg.Text.MaxLength;

    private TextClassification(TrainConfig cfg, TextWriter log)
    {
        _cfg = cfg;
        _log = log;
        _rng = new Rng(cfg.Seed);
        if (cfg.Train.Threads > 0) Par.Threads = cfg.Train.Threads;
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
        var t = c.Train;
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        Need(t.Epochs >= 1, $"train.epochs must be ≥ 1 (got {t.Epochs}).");
        Need(t.BatchSize >= 1, $"train.batch_size must be ≥ 1 (got {t.BatchSize}).");
        Need(t.Lr > 0, $"train.lr must be > 0 (got {t.Lr}).");
        Need(t.Warmup is >= 0 and < 1, $"train.warmup is a fraction of all steps in [0, 1) (got {t.Warmup}).");
        Need(t.Optimizer is "adamw" or "sgd", $"train.optimizer must be adamw or sgd (got '{t.Optimizer}').");
        Need(t.Schedule is "cosine" or "linear" or "constant" or "onecycle", $"train.schedule must be cosine, linear, constant or onecycle (got '{t.Schedule}').");
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
        Format = _cfg.Data.Format == "idx" ? "auto" : _cfg.Data.Format,   // idx is the image default: read as "not set"
        TextColumn = _cfg.Text.TextColumn, PairColumn = _cfg.Text.PairColumn, LabelColumn = _cfg.Text.LabelColumn,
        LabelMap = _cfg.Text.LabelMap, BadRows = _cfg.Text.BadRows, FilePattern = _cfg.Text.FilePattern,
    };

    private (TextDataset, TextDataset, TextDataset?) LoadData(TrainConfig cfg)
    {
        var d = cfg.Data;
        var opts = ReadOptions();
        var train = TextFiles.Read(Assets.Resolve(d.Train, cfg.BaseDirectory, fetch: true, _log), opts);
        if (train.LabelNames.Count < 2) throw new DataException($"The training data has {train.LabelNames.Count} label(s) ({string.Join(", ", train.LabelNames)}); a classifier needs at least 2.");
        TextDataset validation;
        if (d.ValidationPath is not null) validation = TextFiles.Read(Assets.Resolve(d.ValidationPath, cfg.BaseDirectory, true, _log), opts).WithLabels(train.LabelNames, "validation data");
        else if (d.Validation > 0) (train, validation) = train.SplitStratified(d.Validation, cfg.Seed);
        else validation = train;
        var test = d.Test is null ? null : TextFiles.Read(Assets.Resolve(d.Test, cfg.BaseDirectory, true, _log), opts).WithLabels(train.LabelNames, "test data");
        return (train, validation, test);
    }

    internal EncodedTexts Encoded(TextDataset data)
    {
        if (_encoded.TryGetValue(data, out var e)) return e;
        var ids = data.Rows.Select(r => Net.Tokenize(r.Text, r.Pair, MaxLength)).ToArray();
        return _encoded[data] = new EncodedTexts(data, ids);
    }

    // ------------------------------------------------------------------ dry run

    public string DescribeLayers()
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
        ? $"{m.ModelType} from {_cfg.Text.Model} ({m.NumLayers} layers, hidden {m.HiddenSize}){(Lora is { } l ? $", LoRA r={l.Rank} α={l.Alpha} on {l.TargetModules}" : "")}"
        : $"{_cfg.Text.Vectors} word vectors, {_cfg.Text.Encoder} encoder";

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

    // ------------------------------------------------------------------ training

    /// <summary>Trains as configured, writing the run folder; returns the before/after scores.</summary>
    public TrainResult Run(EpochCallback? onEpoch = null)
    {
        var cfg = _cfg;
        var t = cfg.Train;
        using var run = RunDirectory.Create(Path.GetFullPath(cfg.Runs), cfg.Name);   // relative to the working directory
        run.WriteText("config.yaml", ConfigWriter.ToYaml(cfg));
        run.WriteText("data_report.json", Report.ToJson().ToJsonString(RunDirectory.Json));
        _log.WriteLine($"run folder: {run.Path}");
        bool cache = Net.CachesFeatures;
        var featureCache = new Dictionary<TextDataset, float[]>(ReferenceEqualityComparer.Instance);
        float[]? FeaturesOf(TextDataset d) => !cache ? null : featureCache.TryGetValue(d, out var f) ? f : featureCache[d] = Features(Net.WordModel!, Encoded(d).Ids);
        EvalResult Eval(TextDataset d) => Score(Net, Encoded(d).Ids, d.Labels, d.LabelNames, FeaturesOf(d));

        var evalSet = TestSet ?? ValidationSet;
        string evalName = TestSet is null ? "validation" : "test";
        var end = new EpochEnd(run, Model, _log);
        var before = Eval(evalSet);
        end.Result("before", evalName, before);

        var optimizer = EpochEnd.Optimizer(t, Model.NamedTrainableParameters());
        int stepsPerEpoch = (TrainSet.Count + t.BatchSize - 1) / t.BatchSize;
        long totalSteps = (long)stepsPerEpoch * t.Epochs;
        var schedule = EpochEnd.Schedule(t, totalSteps);
        float[] weights = cfg.Text.ClassWeights == "balanced" ? TrainSet.BalancedClassWeights() : [];
        if (weights.Length > 0) _log.WriteLine($"class weights: {string.Join(", ", Labels.Select((l, i) => $"{l} {weights[i]:F3}"))}");

        var train = Encoded(TrainSet);
        var trainFeatures = FeaturesOf(TrainSet);
        int f = Net.WordModel?.Encoder.OutputDim ?? 0;
        var shuffle = new Rng(cfg.Seed ^ 0x5EED);
        var epochSeconds = new List<double>();
        var trainClock = Stopwatch.StartNew();
        bool stopped = false;
        for (int epoch = 1; epoch <= t.Epochs && !stopped; epoch++)
        {
            var clock = Stopwatch.StartNew();
            Model.Train();
            var order = shuffle.Permutation(TrainSet.Count);
            double lossSum = 0;
            int seen = 0;
            for (int s = 0; s < order.Length; s += t.BatchSize)
            {
                int n = Math.Min(t.BatchSize, order.Length - s);
                var idx = order.AsSpan(s, n).ToArray();
                var y = idx.Select(i => TrainSet.Labels[i]).ToArray();
                float loss;
                using (new TensorScope())
                {
                    Tensor logits;
                    if (trainFeatures is null) logits = Net.Logits(idx.Select(i => train.Ids[i]).ToArray());
                    else
                    {
                        var x = Tensor.Empty(n, f);
                        for (int r = 0; r < n; r++) trainFeatures.AsSpan(idx[r] * f, f).CopyTo(x.Span.Slice(r * f, f));
                        logits = Net.WordModel!.ForwardFeatures(x);
                    }
                    var l = Tensor.CrossEntropy(logits, y, labelSmoothing: t.LabelSmoothing, classWeights: weights);
                    loss = l.Item();
                    l.Backward();
                }
                if (!float.IsFinite(loss)) throw new InvalidOperationException($"epoch {epoch}: the loss became {loss} (learning rate {t.Lr} may be too high).");
                double norm = t.ClipGradNorm > 0 ? GradClip.ClipGradNorm(Model.Parameters().Where(p => p.RequiresGrad), t.ClipGradNorm) : double.NaN;
                optimizer.LrFactor = schedule.Factor(optimizer.StepCount);
                optimizer.Step();
                optimizer.ZeroGrad();
                lossSum += loss * n;
                seen += n;
                end.Step(optimizer.StepCount, epoch, loss, t.Lr * optimizer.LrFactor, norm);
            }
            var val = Eval(ValidationSet);
            clock.Stop();
            epochSeconds.Add(clock.Elapsed.TotalSeconds);
            stopped = !end.Finish(epoch, lossSum / seen, val, clock.Elapsed.TotalSeconds, "", new JsonObject { ["features_cached"] = cache }, onEpoch);
        }
        trainClock.Stop();
        end.RestoreBest(epochSeconds.Count);
        var after = Eval(evalSet);
        end.Result("after", evalName, after);

        var bundle = TextBundle.Save(run.BundleDir, this, before, after, evalName);
        run.WriteText("eval.json", EvalJson.Write(after, before, evalName));
        var validation = ReferenceEquals(evalSet, ValidationSet) ? after : Eval(ValidationSet);
        Reports.RunReport.Write(run, cfg, Labels, before, after, evalName, validation, i => (evalSet.Rows[i].Text, null), _log,
            model: Describe());
        return new TrainResult(run.Path, bundle, before, after, evalName, epochSeconds, trainClock.Elapsed.TotalSeconds, Model.TrainableParameterCount(), cache ? "encoder" : null, stopped);
    }
}
