using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Nn.Schedules;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>
/// Image classification by transfer learning, as a trainer task: import the pre-trained backbone, cut it at its feature
/// layer, put a head sized from the labels on it, freeze as declared (gradual unfreezing at epoch starts), and cache the
/// frozen bottom's features when nothing below the trainable layers changes between epochs. The loop, checkpoints and
/// best-epoch selection are the <see cref="Trainer"/>'s; the end of the run is <see cref="ClassificationTask"/>'s.
/// </summary>
public sealed class ImageClassification : ClassificationTask
{
    public const string TaskName = "image-classification";

    private readonly Rng _rng;
    private readonly DataLoader _loader;
    private readonly Dictionary<string, double> _lrScale = new(StringComparer.Ordinal);
    private readonly Dictionary<(ImageDataset, string), FeatureCache> _caches = [];
    private string? _cacheLayer;
    private string? _baseHash;

    public override string Name => TaskName;
    public new ImageClassifier Model { get; }
    public Preprocess Preprocess { get; }
    public ImageDataset TrainSet { get; }
    public ImageDataset ValidationSet { get; }
    public ImageDataset? TestSet { get; }
    public string ModelPath { get; }
    public string FeatureLayer { get; }

    /// <summary>The ONNX preprocessing graph the pixel preprocessing was read from, or null when it was set by hand.</summary>
    public string? PreprocessGraph { get; }

    public override IReadOnlyList<string> Labels => TrainSet.Labels;

    private ImageClassification(TrainConfig cfg, TextWriter log) : base(cfg, log)
    {
        _rng = new Rng(cfg.Seed);
        Validate(cfg);

        // ---- model: import, cut at the feature layer
        ModelPath = Assets.Resolve(cfg.Model.Path, cfg.BaseDirectory, fetch: true, log);
        var graph = ModelSource.Load(ModelPath);
        FeatureLayer = cfg.Model.Features ?? ModelSource.DefaultFeatureLayer(graph);
        graph.Node(FeatureLayer);   // an unknown layer throws here, naming similar ones
        graph.TruncateAt(FeatureLayer);

        // ---- data
        (Preprocess, PreprocessGraph) = PixelPreprocess(cfg, ModelPath, graph);
        if (PreprocessGraph is not null)
            log.WriteLine($"preprocessing from {Path.GetFileName(PreprocessGraph)}: {DescribePixels(Preprocess)}");
        (TrainSet, ValidationSet, TestSet) = LoadData(cfg);

        // ---- head sized from the labels
        var (_, featureDim) = ImageClassifier.ProbeFeatures(graph, [3, Preprocess.Height, Preprocess.Width]);
        Model = new ImageClassifier(graph, featureDim, new HeadSpec(TrainSet.Labels.Count, cfg.Model.HeadHidden, cfg.Model.HeadDropout), _rng);
        if (cfg.Model.Scratch) ImageClassifier.Reinitialize(Model.Backbone, _rng);
        ApplyFreezing(Model, cfg);
        ApplyBatchNormMode();
        foreach (var (name, _) in Model.NamedTrainableParameters()) _lrScale[name] = name.StartsWith("head", StringComparison.Ordinal) ? 1 : cfg.Train.BackboneLrScale;
        _loader = new DataLoader(TrainSet, Preprocess, cfg.Train.BatchSize, shuffle: true, augment: true, seed: cfg.Seed);
        CheckBackboneLrScale(cfg.Unfreeze.Count > 0 || Model.Backbone.Parameters().Any(p => p.RequiresGrad));
        if (cfg.Train.BnMomentum != new TrainSection().BnMomentum && !Model.NamedModules().Any(m => m.Module is BatchNorm2d { StatisticsFrozen: false }) && cfg.Unfreeze.Count == 0)
            throw new ConfigException($"{cfg.Source}: train.bn_momentum has no batch norm to act on: no batch-norm statistics update in this run (they do with train.bn_statistics: update, or auto with model.scratch, in layers that train).");
        Trainer.Validate(this, cfg);
    }

    /// <summary>Sets the statistics mode of every batch norm whose parameters train (frozen ones stay frozen).</summary>
    private void ApplyBatchNormMode()
    {
        var t = Config.Train;
        bool update = t.BnStatistics == "update" || (t.BnStatistics == "auto" && Config.Model.Scratch);
        Freezing.SyncBatchNormStatistics(Model);
        foreach (var (_, m) in Model.NamedModules())
            if (m is BatchNorm2d bn && !bn.StatisticsFrozen)
            {
                bn.StatisticsFrozen = !update;
                bn.Momentum = t.BnMomentum;
            }
    }

    /// <summary>Loads everything the config names (fetching assets it needs) and applies its freezing.</summary>
    public static ImageClassification Prepare(TrainConfig cfg, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        ArgumentNullException.ThrowIfNull(log);
        return new ImageClassification(cfg, log);
    }

    // ------------------------------------------------------------------ set-up

    private static void Validate(TrainConfig c)
    {
        var t = c.Train;
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        Need(c.Lora is null, "lora: applies to transformer text models (task: text-classification with text.model); image backbones use freeze: instead.");
        Need(c.Freeze.Layers is null, "freeze.layers applies to transformer text models; image backbones use freeze.below: LAYER.");
        Need(t.BnStatistics is "auto" or "frozen" or "update", $"train.bn_statistics must be auto, frozen or update (got '{t.BnStatistics}').");
        Need(t.BnMomentum is > 0 and <= 1, $"train.bn_momentum must be in (0, 1] (got {t.BnMomentum}).");
        Need(c.Data.Format is "idx" or "folder" or "csv", $"data.format must be idx, folder or csv (got '{c.Data.Format}').");
        Need(c.Data.Validation is >= 0 and < 1, $"data.validation is a fraction in [0, 1) (got {c.Data.Validation}).");
        foreach (var u in c.Unfreeze)
            Need(u.Epoch >= 1 && u.Epoch <= t.Epochs && u.From.Length > 0, $"unfreeze: each step needs epoch in 1..{t.Epochs} and a layer in 'from' (got epoch {u.Epoch}, from '{u.From}').");
    }

    private (ImageDataset Train, ImageDataset Validation, ImageDataset? Test) LoadData(TrainConfig cfg)
    {
        var d = cfg.Data;
        var trainPath = Assets.Resolve(d.Train, cfg.BaseDirectory, fetch: true, Log);
        ImageDataset Open(string path, bool train) => DataSources.Open(d.Format, path, train, d.Labels, d.ImageColumn, d.LabelColumn);
        var train = Open(trainPath, train: true);
        if (train.Count == 0) throw new DataException($"The training set '{trainPath}' is empty.");
        if (d.PerClass > 0) train = train.PerClass(d.PerClass, cfg.Seed);
        ImageDataset validation;
        if (d.ValidationPath is not null) validation = Open(Assets.Resolve(d.ValidationPath, cfg.BaseDirectory, true, Log), train: false).WithLabels(train.Labels);
        else if (d.Validation > 0) (train, validation) = train.SplitStratified(d.Validation, cfg.Seed);
        else validation = train;
        ImageDataset? test = null;
        if (d.Test is not null || d.Format == "idx")
        {
            var testPath = d.Test is null ? trainPath : Assets.Resolve(d.Test, cfg.BaseDirectory, fetch: true, Log);
            test = Open(testPath, train: false).WithLabels(train.Labels);
            if (d.TestLimit > 0 && d.TestLimit < test.Count)
                test = test.PerClass((d.TestLimit + test.Labels.Count - 1) / test.Labels.Count, cfg.Seed, allowFewer: true);
        }
        return (train, validation, test);
    }

    /// <summary>Resolves a layer name given in a config to the model's module path (<c>backbone.X</c>).</summary>
    private static string LayerPath(ImageClassifier model, string name, string key)
    {
        if (name == "head") return "head";
        if (name.StartsWith("backbone.", StringComparison.Ordinal)) name = name["backbone.".Length..];
        try { model.Backbone.Node(name); }
        catch (KeyNotFoundException e) { throw new ConfigException($"{key}: {e.Message}"); }
        return "backbone." + name;
    }

    /// <summary>
    /// <see cref="LayerPath"/>, moved on to the first layer with weights at or after it when the named one has none
    /// (ReLU, Add, padding): freezing "below" or unfreezing "from" such a layer splits there.
    /// </summary>
    private static string WeightedLayerPath(ImageClassifier model, string name, string key)
    {
        var path = LayerPath(model, name, key);
        if (path == "head" || model.GetModule(path).Parameters().Any()) return path;
        var nodes = model.Backbone.LayerNames;
        var next = nodes.Skip(nodes.ToList().IndexOf(path["backbone.".Length..])).FirstOrDefault(n => model.Backbone.Layer(n).Parameters().Any());
        return next is null ? "head" : "backbone." + next;
    }

    private static void ApplyFreezing(ImageClassifier model, TrainConfig cfg)
    {
        var f = cfg.Freeze;
        if (f.Backbone) Freezing.SetModuleTrainable(model, "backbone", false);
        if (f.Below is not null)
        {
            Freezing.FreezeBefore(model, WeightedLayerPath(model, f.Below, "freeze.below"));
        }
        foreach (var p in f.Patterns)
        {
            var pattern = p.StartsWith("re:", StringComparison.Ordinal) || p.StartsWith("backbone.", StringComparison.Ordinal) || p.StartsWith("head", StringComparison.Ordinal) ? p : "backbone." + p;
            if (Freezing.Freeze(model, pattern) == 0 && !model.NamedParameters().Any(n => Freezing.Matches(pattern, n.Name)))
                throw new ConfigException($"freeze.patterns: '{p}' matches no parameter (names look like {string.Join(", ", model.NamedParameters().Take(3).Select(n => n.Name))}).");
        }
        foreach (var u in cfg.Unfreeze) LayerPath(model, u.From, "unfreeze.from");   // validate now, not at epoch N
    }

    // ------------------------------------------------------------------ dry run

    /// <summary>The layer table (trainable/frozen, parameters, BN mode, output shape) and a memory estimate.</summary>
    public override string DescribeLayers()
    {
        var sb = new StringBuilder();
        int h = Preprocess.Height, w = Preprocess.Width;
        IReadOnlyList<(string Name, int[] Shape)> shapes;
        using (new TensorScope())
        using (Graph.NoGrad())
        {
            bool training = Model.IsTraining;
            Model.Eval();
            shapes = Model.Backbone.TraceShapes(Tensor.Zeros(1, 3, h, w));
            Model.Train(training);
        }
        var shapeOf = shapes.ToDictionary(x => x.Name, x => x.Shape);
        var cache = Config.Train.FeatureCache && !Config.Data.Augment.Enabled ? FeatureCache.ChooseLayer(Model.Backbone) : null;
        int wName = Math.Max(12, Model.Backbone.LayerNames.Max(n => n.Length)), wKind = Math.Max(8, Model.Backbone.Nodes.Max(n => n.Kind.Length));
        sb.AppendLine($"{"layer".PadRight(wName)}  {"kind".PadRight(wKind)}  {"output",-16} {"params",10}  {"trainable",-9}  bn");
        long activations = 0;
        bool aboveCache = cache is null;
        foreach (var node in Model.Backbone.Nodes)
        {
            var layer = Model.Backbone.Layer(node.Name);
            var ps = layer.Parameters().ToArray();
            long count = ps.Sum(p => (long)p.Size);
            string trainable = ps.Length == 0 ? "-" : ps.All(p => p.RequiresGrad) ? "yes" : ps.Any(p => p.RequiresGrad) ? "partly" : "frozen";
            string bn = layer is BatchNorm2d b ? (b.StatisticsFrozen ? "frozen stats" : "batch stats") : "";
            var shape = shapeOf.TryGetValue(node.Name, out var sh) ? "[" + string.Join(",", sh[1..]) + "]" : "";
            if (aboveCache && sh is not null) activations += Shapes.Size(sh);
            if (node.Name == cache) aboveCache = true;
            sb.AppendLine($"{node.Name.PadRight(wName)}  {node.Kind.PadRight(wKind)}  {shape,-16} {count,10:N0}  {trainable,-9}  {bn}".TrimEnd());
            if (node.Name == cache) sb.AppendLine($"{"  ── features cached here: the layers above run each epoch ──"}");
        }
        long headParams = Model.Head.ParameterCount();
        sb.AppendLine($"{"head".PadRight(wName)}  {Model.HeadSpec.Describe().PadRight(wKind)}  {"[" + Model.HeadSpec.Classes + "]",-16} {headParams,10:N0}  {"yes",-9}");
        long total = Model.ParameterCount(), trainableCount = Model.TrainableParameterCount();
        int batch = Config.Train.BatchSize;
        double mb(long bytes) => bytes / 1048576.0;
        long weights = total * 4, grads = trainableCount * 4, optState = trainableCount * (Config.Train.Optimizer == "adamw" ? 8 : 4);
        long acts = activations * batch * 4 * 2;   // kept for backward + their gradients, roughly
        long cacheBytes = cache is null ? 0 : (long)Shapes.Size(shapeOf[cache][1..]) * 4 * (TrainSet.Count + ValidationSet.Count + (TestSet?.Count ?? 0));
        sb.AppendLine();
        sb.AppendLine($"parameters: {total:N0} total, {trainableCount:N0} trainable ({100.0 * trainableCount / total:F2}%)");
        sb.AppendLine($"input: [3, {h}, {w}], {DescribePixels(Preprocess)}{(PreprocessGraph is null ? "" : $" (from {Path.GetFileName(PreprocessGraph)})")}; data: {TrainSet.Count} train, {ValidationSet.Count} validation, {TestSet?.Count ?? 0} test, {Labels.Count} classes");
        sb.AppendLine($"feature cache: {(cache is null ? "off (" + (Config.Data.Augment.Enabled ? "augmentation on" : !Config.Train.FeatureCache ? "disabled" : "the first layer trains") + ")" : $"at '{cache}', {mb(cacheBytes):F0} MB")}");
        sb.AppendLine($"memory estimate (batch {batch}): weights {mb(weights):F1} MB + gradients {mb(grads):F1} MB + optimizer {mb(optState):F1} MB + activations ~{mb(acts):F0} MB + cache {mb(cacheBytes):F0} MB ≈ {mb(weights + grads + optState + acts + cacheBytes):F0} MB");
        return sb.ToString();
    }

    /// <summary>"BGR, minus a 3×224×224 mean image, mean 0 / std 0.00392" and the like.</summary>
    /// <summary>
    /// The pixel preprocessing of the model at <paramref name="modelPath"/> from the config's data keys: input size (the
    /// config's, else the model's own [C, H, W] with a non-square one kept, else 224²), channel order, mean image and
    /// normalisation (<see cref="ModelPreprocessing"/>), augmentation; and the preprocessing graph it came from, if any.
    /// </summary>
    internal static (Preprocess Preprocess, string? Graph) PixelPreprocess(TrainConfig cfg, string modelPath, LayerGraph graph)
    {
        var declared = graph.InputShape is { Length: 3 } s && s[1] > 0 ? s : null;
        int height = cfg.Data.ImageSize > 0 ? cfg.Data.ImageSize : declared?[1] ?? 224;
        int width = cfg.Data.ImageWidth > 0 ? cfg.Data.ImageWidth : cfg.Data.ImageSize > 0 ? height : declared is not null && declared[2] > 0 ? declared[2] : height;
        var pixels = ModelPreprocessing.Resolve(cfg, modelPath, height, width);
        var preprocess = new Preprocess
        {
            ImageSize = height,
            ImageWidth = width == height ? 0 : width,
            Normalization = pixels.Normalization,
            Channels = pixels.Channels,
            MeanImage = pixels.MeanImage,
            Augment = new AugmentOptions { HorizontalFlip = cfg.Data.Augment.Flip, CropPadding = cfg.Data.Augment.CropPadding },
        };
        preprocess.Validate();
        return (preprocess, pixels.Graph);
    }

    internal static string DescribePixels(Preprocess p)
    {
        static string List(float[] v) => v.Length == 1 ? v[0].ToString("G4", System.Globalization.CultureInfo.InvariantCulture)
            : "[" + string.Join(", ", v.Select(x => x.ToString("G4", System.Globalization.CultureInfo.InvariantCulture))) + "]";
        return $"{p.Channels.ToString().ToUpperInvariant()}"
            + (p.MeanImage is { } m ? $", minus a {m.Channels}×{m.Height}×{m.Width} mean image" : "")
            + $", mean {List(p.Normalization.Mean)} / std {List(p.Normalization.Std)} (on pixels/255)";
    }

    // ------------------------------------------------------------------ evaluation

    /// <summary>Scores <see cref="Model"/> on <paramref name="data"/> (eval mode, no gradients).</summary>
    public EvalResult Evaluate(ImageDataset data) => Score(Model, Preprocess, data, null);

    /// <summary>
    /// Scores <paramref name="model"/> on <paramref name="data"/> in eval mode without gradients (restoring its mode after),
    /// starting from <paramref name="cache"/> when given: report, mean loss, and every example's class probabilities.
    /// </summary>
    internal static EvalResult Score(ImageClassifier model, Preprocess preprocess, ImageDataset data, FeatureCache? cache = null, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        bool training = model.IsTraining;
        model.Eval();
        int k = model.HeadSpec.Classes;
        var predicted = new int[data.Count];
        var probabilities = new float[data.Count * k];
        var truth = data.GetLabels();
        double lossSum = 0;
        const int batch = 64;
        var loader = new DataLoader(data, preprocess, batch);
        try
        {
            for (int start = 0; start < data.Count; start += batch)
            {
                int n = Math.Min(batch, data.Count - start);
                using var scope = new TensorScope();
                using var noGrad = Graph.NoGrad();
                var logits = cache is null ? model.Forward(loader.LoadImages(Enumerable.Range(start, n).ToArray(), 0)) : model.ForwardFrom(cache.Layer, cache.Range(start, n));
                lossSum += Tensor.CrossEntropy(logits, truth.AsSpan(start, n)).Item() * n;
                logits.ArgMax(1).CopyTo(predicted, start);
                logits.Softmax().Span.CopyTo(probabilities.AsSpan(start * k, n * k));
                progress?.Invoke(start + n);
            }
        }
        finally { model.Train(training); }
        return new EvalResult(ClassificationReport.From(truth, predicted, data.Labels), data.Count == 0 ? 0 : lossSum / data.Count, data.Count)
        {
            Truth = truth, Predicted = predicted, Probabilities = probabilities,
        };
    }

    /// <summary>Examples [start, start + n) of <paramref name="data"/> preprocessed, without augmentation, in the current scope.</summary>
    internal Tensor Inputs(ImageDataset data, int start, int n) =>
        new DataLoader(data, Preprocess, Math.Max(1, n)).LoadImages(Enumerable.Range(start, n).ToArray(), 0);

    // ------------------------------------------------------------------ the trainer's task

    protected override Module TrainedModule => Model;
    public override int TrainCount => TrainSet.Count;
    public override string BaseHash => _baseHash ??= ModelSource.Hash(ModelPath);
    protected override string HeldOutName => TestSet is null ? "validation" : "test";
    protected override IEnumerable<string> OwnKeys => ["bn_statistics", "bn_momentum", "feature_cache"];
    protected override string? CachedAt => _cacheLayer;

    /// <summary>The layer whose output can be cached now (null: caching off, augmentation on, or the first layer trains).</summary>
    private string? CacheLayer() => Config.Train.FeatureCache && !Config.Data.Augment.Enabled ? FeatureCache.ChooseLayer(Model.Backbone) : null;

    private FeatureCache? CacheFor(ImageDataset data, string what)
    {
        var layer = _cacheLayer;
        if (layer is null) return null;
        if (_caches.TryGetValue((data, layer), out var c)) return c;
        var bar = new Progress(Log, $"features of {what} at {layer}", data.Count);
        c = FeatureCache.Build(Model.Backbone, layer, data.Count, 64, (s, n) => Inputs(data, s, n), done => bar.Report(done));
        return _caches[(data, layer)] = c;
    }

    protected override void OnStart(RunDirectory run) => _cacheLayer = CacheLayer();

    protected override EvalResult Score(bool validation)
    {
        var data = validation || TestSet is null ? ValidationSet : TestSet;
        return Score(Model, Preprocess, data, CacheFor(data, validation ? "validation" : HeldOutName));
    }

    public override bool BeginEpoch(int epoch, TextWriter log)
    {
        bool changed = false;
        foreach (var u in Config.Unfreeze.Where(u => u.Epoch == epoch))
        {
            Freezing.UnfreezeFrom(Model, WeightedLayerPath(Model, u.From, "unfreeze.from"));
            ApplyBatchNormMode();
            foreach (var (name, _) in Model.NamedTrainableParameters()) _lrScale.TryAdd(name, u.LrScale);
            log.WriteLine($"epoch {epoch}: unfroze from '{u.From}' (lr × {u.LrScale}); {Model.TrainableParameterCount():N0} parameters train now");
            changed = true;
        }
        var layer = CacheLayer();
        if (layer != _cacheLayer) { _caches.Clear(); _cacheLayer = layer; }
        return changed;
    }

    public override double LrScale(string name) => _lrScale.GetValueOrDefault(name, 1.0);

    public override Tensor Loss(int[] indices, int epoch)
    {
        var cache = CacheFor(TrainSet, "train");
        var logits = cache is null ? Model.Forward(_loader.LoadImages(indices, epoch)) : Model.ForwardFrom(cache.Layer, cache.Gather(indices));
        return Tensor.CrossEntropy(logits, Array.ConvertAll(indices, TrainSet.GetLabel), labelSmoothing: Config.Train.LabelSmoothing);
    }

    public override JsonObject EpochFields() => new() { ["cached_at"] = _cacheLayer };

    protected override string SaveBundle(string dir, EvalResult before, EvalResult after, CalibratedDecision decision) =>
        ImageBundle.Save(dir, this, before, after, HeldOutName, decision);

    protected override void WriteReport(RunDirectory run, EvalResult before, EvalResult after, EvalResult validation) =>
        Reports.RunReport.Write(run, Config, Labels, before, after, HeldOutName, validation, Reports.HtmlReport.ImageExamples(TestSet ?? ValidationSet), Log);
}
