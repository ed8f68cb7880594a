namespace Whetstone.Training.Config;

/// <summary>
/// The <c>search:</c> block of a config (<c>whet tune</c>): the space over dotted config keys — the keys <c>--set</c>
/// takes — with one distribution each, the objective, the budget, the sampler and the pruner. <c>whet train</c> ignores it.
/// <code>
/// search:
///   space:
///     train.lr: loguniform(1e-5, 1e-2)
///     train.batch_size: choice(8, 16, 32)
///     model.head_hidden: choice(0, 128)
///     model.head_dropout: uniform(0, 0.5) if model.head_hidden > 0   # conditional: sampled only when the condition holds
///   metric: val_macro_f1      # val_macro_f1 | val_accuracy | val_loss (direction follows, or set direction:)
///   trials: 20
///   sampler: tpe              # grid | random | tpe
///   pruner: asha              # none | median | asha
/// </code>
/// </summary>
public sealed record SearchConfig
{
    /// <summary>Study name (default: the config's <c>name</c>); the study file is <c>{runs}/tune/{study}.db</c>.</summary>
    public string? Study { get; init; }
    /// <summary>The study's SQLite file (relative to the config's folder); default <c>{runs}/tune/{study}.db</c>.</summary>
    public string? Storage { get; init; }
    /// <summary>
    /// Dotted key → distribution: <c>uniform(a, b)</c>, <c>loguniform(a, b)</c>, <c>int(a, b)</c> (inclusive),
    /// <c>choice(v1, v2, …)</c> (YAML scalars; <c>null</c> allowed), optionally followed by
    /// <c>if KEY OP VALUE</c> (OP one of == != &gt; &gt;= &lt; &lt;=; KEY another searched key or any config key).
    /// </summary>
    public Dictionary<string, string> Space { get; init; } = [];
    /// <summary><c>val_macro_f1</c>, <c>val_accuracy</c> or <c>val_loss</c>: the trial's value is its best epoch's.</summary>
    public string Metric { get; init; } = "val_macro_f1";
    /// <summary><c>maximize</c> or <c>minimize</c>; default: minimize for losses, maximize otherwise.</summary>
    public string? Direction { get; init; }
    /// <summary>Trials to finish (complete, pruned or failed); interrupted trials do not count.</summary>
    public int Trials { get; init; } = 20;
    /// <summary>Stop starting trials after this many seconds of this invocation (0 = no limit).</summary>
    public double Timeout { get; init; }
    /// <summary><c>grid</c>, <c>random</c> or <c>tpe</c>.</summary>
    public string Sampler { get; init; } = "tpe";
    /// <summary>TPE: random trials before the model takes over.</summary>
    public int StartupTrials { get; init; } = 5;
    /// <summary>TPE: the fraction of finished trials that count as good.</summary>
    public double Gamma { get; init; } = 0.25;
    /// <summary>TPE: candidates drawn from the good density per parameter.</summary>
    public int Candidates { get; init; } = 24;
    /// <summary>Sampler seed (default: the config's seed).</summary>
    public ulong? Seed { get; init; }
    /// <summary><c>none</c>, <c>median</c> or <c>asha</c>, fed each epoch's validation metric.</summary>
    public string Pruner { get; init; } = "asha";
    /// <summary>ASHA: the first rung's epoch; rungs are at min_resource · reduction_factor^k.</summary>
    public int MinResource { get; init; } = 1;
    /// <summary>ASHA: η — a trial continues past a rung when among the top 1/η there.</summary>
    public int ReductionFactor { get; init; } = 3;
    /// <summary>Median: never prune before this epoch (1-based: epochs ≤ warmup are never pruned).</summary>
    public int WarmupEpochs { get; init; } = 1;
    /// <summary>Median: compare only when at least this many other trials reported at that epoch.</summary>
    public int MinTrials { get; init; } = 3;
    /// <summary>A trial that was running when tune died: <c>retry</c> (run its parameters again) or <c>skip</c>.</summary>
    public string OnInterrupted { get; init; } = "retry";
}
