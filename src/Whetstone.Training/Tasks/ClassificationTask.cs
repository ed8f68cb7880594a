using System.Text.Json.Nodes;
using Whetstone.Nn;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>What a classification run produced: the trainer's result with the before/after evaluations in full.</summary>
public sealed record TrainResult(string RunDir, string? BundleDir, EvalResult Before, EvalResult? After, string EvaluatedOn,
    IReadOnlyList<double> EpochSeconds, double TrainSeconds, long TrainableParameters, string? CachedAt, bool Stopped = false,
    bool Interrupted = false, int BestEpoch = 0, string? Checkpoint = null);

/// <summary>
/// What image and text classification share as trainer tasks: the validation metrics (macro-F1, accuracy, loss, and
/// ROC-AUC / PR-AUC for two classes), the model before fine-tuning scored on the held-out set (kept in the run folder
/// so a resumed run does not score it again), and the end of a run — the selected epoch scored on the held-out set,
/// temperature and (two classes) decision threshold fitted on validation, the bundle, eval.json and the HTML report.
/// </summary>
public abstract class ClassificationTask : ITrainingTask
{
    private const string BeforeFile = "before.json";

    protected TrainConfig Config { get; }
    protected TextWriter Log { get; }

    protected ClassificationTask(TrainConfig config, TextWriter log)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
        Log = log ?? throw new ArgumentNullException(nameof(log));
        if (config.Train.Threads > 0) Par.Threads = config.Train.Threads;
        try { ThresholdRule.Parse(config.Train.Threshold); }
        catch (ArgumentException e) { throw new ConfigException($"{config.Source}: train.threshold: {e.Message}", e); }
    }

    public abstract string Name { get; }
    /// <summary>The module that trains.</summary>
    public Module Model => TrainedModule;
    protected abstract Module TrainedModule { get; }
    public abstract int TrainCount { get; }
    public abstract string BaseHash { get; }
    public abstract IReadOnlyList<string> Labels { get; }

    /// <summary>The classification keys both tasks honour, plus the task's own (<see cref="OwnKeys"/>).</summary>
    public IReadOnlySet<string> TaskKeys => new HashSet<string>(["label_smoothing", "threshold", "backbone_lr_scale", .. OwnKeys], StringComparer.Ordinal);

    protected virtual IEnumerable<string> OwnKeys => [];

    public IReadOnlyList<string> MetricNames => Labels.Count == 2
        ? ["val_macro_f1", "val_accuracy", "val_loss", "val_roc_auc", "val_pr_auc"]
        : ["val_macro_f1", "val_accuracy", "val_loss"];

    /// <summary>The model before fine-tuning, scored on the held-out set (after <see cref="Start"/>).</summary>
    public EvalResult? Before { get; private set; }

    /// <summary>The selected epoch scored on the held-out set (after <see cref="Finish"/>).</summary>
    public EvalResult? After { get; private set; }

    /// <summary>The held-out set's name: test when there is one, else validation.</summary>
    protected abstract string HeldOutName { get; }

    /// <summary>Scores the model (eval mode, no gradients) on the held-out set or, with <paramref name="validation"/>, the validation set.</summary>
    protected abstract EvalResult Score(bool validation);

    /// <summary>The task's own files at the start of a run (data report); nothing by default.</summary>
    protected virtual void OnStart(RunDirectory run) { }

    /// <summary>Writes the bundle into <paramref name="dir"/>; returns it.</summary>
    protected abstract string SaveBundle(string dir, EvalResult before, EvalResult after, CalibratedDecision decision);

    /// <summary>Writes report.html.</summary>
    protected abstract void WriteReport(RunDirectory run, EvalResult before, EvalResult after, EvalResult validation);

    /// <summary>The cache note of <see cref="TrainResult.CachedAt"/> (where features are cached, if they are).</summary>
    protected virtual string? CachedAt => null;

    public abstract bool BeginEpoch(int epoch, TextWriter log);
    public abstract double LrScale(string name);
    public abstract Tensor Loss(int[] indices, int epoch);
    public virtual JsonObject EpochFields() => [];
    public abstract string DescribeLayers();

    public void Start(RunDirectory run, bool resumed, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(run);
        OnStart(run);
        var path = Path.Combine(run.Path, BeforeFile);
        if (resumed && File.Exists(path))
        {
            Before = EvalJson.ReadScores(path, Labels);
            return;
        }
        Before = Score(validation: false);
        RunDirectory.WriteAtomic(path, EvalJson.WriteScores(Before));
        LogResult(run, "before", Before, null);
    }

    public IReadOnlyDictionary<string, double> Validate() => Metrics(Score(validation: true), "val_");

    /// <summary>The metrics of an evaluation by name (<paramref name="prefix"/> + macro_f1, accuracy, loss, roc_auc, pr_auc).</summary>
    public static Dictionary<string, double> Metrics(EvalResult r, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(r);
        var m = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            [prefix + "macro_f1"] = r.Report.MacroF1, [prefix + "accuracy"] = r.Report.Accuracy, [prefix + "loss"] = r.Loss,
        };
        if (EvalJson.Binary(r) is var (auc, ap)) { m[prefix + "roc_auc"] = auc; m[prefix + "pr_auc"] = ap; }
        return m;
    }

    public TaskOutcome Finish(RunDirectory run, TrainingSummary summary, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        var before = Before ?? throw new InvalidOperationException("Finish before Start.");
        var after = After = Score(validation: false);
        LogResult(run, "after", after, summary);
        var validation = HeldOutName == "validation" ? after : Score(validation: true);
        var decision = CalibratedDecision.Fit(validation, ThresholdRule.Parse(Config.Train.Threshold));
        var bundle = SaveBundle(run.BundleDir, before, after, decision);
        run.WriteText("eval.json", EvalJson.Write(after, before, HeldOutName));
        WriteReport(run, before, after, validation);
        return new TaskOutcome(bundle, HeldOutName, Metrics(before), Metrics(after), EvalJson.Text(after, before));
    }

    /// <summary>
    /// Puts a bundle's decisions into its whetstone.json: the temperature fitted on validation and, for two classes, the
    /// threshold on the scaled probability of <paramref name="labels"/>[1] (what <c>whet predict</c> applies).
    /// </summary>
    internal static void AddDecision(JsonObject info, CalibratedDecision? decision, IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (decision?.Temperature is { } temperature) info["temperature"] = temperature.Temperature;
        if (decision?.Threshold is { } threshold)
            info["threshold"] = new JsonObject { ["value"] = threshold.Threshold, ["rule"] = threshold.Rule.ToString(), ["positive"] = labels[1] };
    }

    /// <summary>
    /// Refuses <c>train.backbone_lr_scale</c> when it could change nothing: only the head trains, now and later.
    /// Call at the end of the task's construction.
    /// </summary>
    protected void CheckBackboneLrScale(bool anythingBelowTheHeadTrains)
    {
        if (Config.Train.BackboneLrScale != 1 && !anythingBelowTheHeadTrains)
            throw new ConfigException($"{Config.Source}: train.backbone_lr_scale has nothing to scale: only the head trains (unfreeze layers, or drop the key).");
    }

    private void LogResult(RunDirectory run, string when, EvalResult r, TrainingSummary? summary)
    {
        Log.WriteLine($"{when} fine-tuning: {HeldOutName} accuracy {r.Report.Accuracy:P1}, macro-F1 {r.Report.MacroF1:F3}, loss {r.Loss:F3}");
        var record = new JsonObject { ["event"] = when, ["split"] = HeldOutName };
        if (summary is not null)
        {
            record["best_epoch"] = summary.BestEpoch;
            record["select"] = summary.Select;
        }
        record["accuracy"] = RunDirectory.Num(r.Report.Accuracy);
        record["macro_f1"] = RunDirectory.Num(r.Report.MacroF1);
        record["loss"] = RunDirectory.Num(r.Loss);
        run.Log(record);
    }

    /// <summary>Trains as configured (or resumes the run folder <paramref name="resume"/>), writing the run folder.</summary>
    public TrainResult Run(EpochCallback? onEpoch = null, string? resume = null, StopSignal? stop = null, TrainerHooks? hooks = null)
    {
        var r = new Trainer(this, Config, Log) { Stop = stop, Hooks = hooks ?? new TrainerHooks() }.Run(onEpoch, resume);
        return new TrainResult(r.RunDir, r.Outcome?.BundleDir, Before!, After, r.Outcome?.EvaluatedOn ?? HeldOutName, r.EpochSeconds, r.TrainSeconds,
            r.TrainableParameters, CachedAt, r.Stopped, r.Interrupted, r.BestEpoch, r.Checkpoint);
    }
}
