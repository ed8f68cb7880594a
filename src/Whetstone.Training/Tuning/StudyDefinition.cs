using Whetstone.Training.Config;
using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Tuning;

/// <summary>
/// A study as a config describes it: the base config (with <c>--set</c> overrides), its <c>search:</c> block parsed and
/// checked against the schema, and where the study lives. Everything that can be wrong with the config is an error
/// here, before any trial starts.
/// </summary>
public sealed class StudyDefinition
{
    /// <summary>Validation metrics the image-classification task reports each epoch, and whether larger is better.</summary>
    /// <summary>The objectives of classification studies (image and text) and whether larger is better; ROC/PR AUC need two classes.</summary>
    public static readonly IReadOnlyDictionary<string, bool> Metrics = new Dictionary<string, bool>
    {
        ["val_macro_f1"] = true, ["val_accuracy"] = true, ["val_loss"] = false, ["val_roc_auc"] = true, ["val_pr_auc"] = true,
    };

    /// <summary>The objectives of causal-lm and chat studies.</summary>
    public static readonly IReadOnlyDictionary<string, bool> LmMetrics = new Dictionary<string, bool>
    {
        ["val_loss"] = false, ["val_perplexity"] = false, ["val_token_accuracy"] = true,
    };

    private readonly string _yaml;
    private readonly IReadOnlyList<string> _overrides;

    public TrainConfig Base { get; }
    public SearchConfig Search { get; }
    public SearchSpace Space { get; }
    public string Source { get; }
    public string Name { get; }
    public string Metric { get; }
    public Direction Direction { get; }
    public ulong Seed { get; }
    /// <summary>The SQLite file.</summary>
    public string StoragePath { get; }
    /// <summary>The folder holding the trials' run folders, logs and <c>best</c>.</summary>
    public string StudyDir { get; }
    public string ConfigText => _yaml;

    private StudyDefinition(string yaml, string source, string baseDir, IReadOnlyList<string> overrides, string? storage)
    {
        _yaml = yaml;
        _overrides = overrides;
        Source = source;
        Base = ConfigLoader.Parse(yaml, source, overrides) with { BaseDirectory = baseDir, Source = source };
        Search = Base.Search ?? throw new ConfigException($"{source}: no search: block — whet tune needs search.space (see examples/fashion-mnist-tune.yaml).");
        var s = Search;
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{source}: {what}"); }
        Need(s.Trials >= 1, $"search.trials must be ≥ 1 (got {s.Trials}).");
        Need(s.Timeout >= 0, $"search.timeout is seconds ≥ 0 (got {s.Timeout}).");
        Need(s.OnInterrupted is "retry" or "skip", $"search.on_interrupted must be retry or skip (got '{s.OnInterrupted}').");
        Need(s.Gamma is > 0 and < 1, $"search.gamma must be in (0, 1) (got {s.Gamma}).");
        Need(s.Candidates >= 1 && s.StartupTrials >= 0, "search.candidates must be ≥ 1 and search.startup_trials ≥ 0.");
        var known = Base.Task is "causal-lm" or "chat" ? LmMetrics : Metrics;
        if (!known.TryGetValue(s.Metric, out bool larger))
            throw new ConfigException($"{source}: search.metric '{s.Metric}' is not a validation metric of task {Base.Task}; it reports {string.Join(", ", known.Keys)}.");
        Metric = s.Metric;
        Need(s.Direction is null or "maximize" or "minimize", $"search.direction must be maximize or minimize (got '{s.Direction}').");
        Direction = new Direction(s.Direction is null ? larger : s.Direction == "maximize");
        Name = s.Study ?? Base.Name;
        Need(Name.Length > 0 && Name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0, $"search.study '{Name}' is not a valid file name.");
        Seed = s.Seed ?? Base.Seed;
        var runs = Path.GetFullPath(Base.Runs);                      // runs: relative to the working directory, as whet train
        StoragePath = Path.GetFullPath(storage ?? s.Storage ?? Path.Combine(runs, "tune", Name + ".db"));
        StudyDir = Path.Combine(Path.GetDirectoryName(StoragePath)!, Name);

        Space = SearchSpace.Parse(s.Space, source);
        Space.CheckAgainst(extra => ConfigLoader.Parse(yaml, source, overrides.Concat(extra)), source);
        // samplers and pruners check their own settings (a grid over a continuous range, η < 2 …)
        Samplers.Create(s, Space, Base, Direction, Seed, source);
        Pruners.Create(s, Direction, source);
    }

    public static StudyDefinition Load(string configPath, IEnumerable<string>? overrides = null, string? storage = null)
    {
        if (!File.Exists(configPath)) throw new ConfigException($"Config file '{configPath}' does not exist.");
        var full = Path.GetFullPath(configPath);
        return new StudyDefinition(File.ReadAllText(full), full, Path.GetDirectoryName(full)!, (overrides ?? []).ToArray(), storage);
    }

    public static StudyDefinition Parse(string yaml, string source, string baseDirectory, IEnumerable<string>? overrides = null, string? storage = null) =>
        new(yaml, source, baseDirectory, (overrides ?? []).ToArray(), storage);

    public ISampler CreateSampler() => Samplers.Create(Search, Space, Base, Direction, Seed, Source);

    public IPruner CreatePruner() => Pruners.Create(Search, Direction, Source);

    /// <summary>The trial's config: the base with the trial's values set, named <c>trial-NNN</c> under <see cref="StudyDir"/>.</summary>
    public TrainConfig TrialConfig(TrialRecord trial)
    {
        ArgumentNullException.ThrowIfNull(trial);
        var c = ConfigLoader.Parse(_yaml, Source, _overrides.Concat(SearchSpace.Overrides(trial.Params)));
        return c with
        {
            BaseDirectory = Base.BaseDirectory, Source = Source, Name = $"trial-{trial.Number:D3}", Runs = StudyDir,
            Train = c.Train with { Select = c.Train.Select ?? Metric },   // the epoch kept is the one the study scores
        };
    }

    public double MetricOf(IReadOnlyDictionary<string, double> validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        return validation.TryGetValue(Metric, out var v) ? v
            : throw new InvalidOperationException($"The task reported {string.Join(", ", validation.Keys)}, not the study's metric {Metric}.");
    }
}
