using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Module = Whetstone.Nn.Module;
using System.Text.Json;
using System.Text.Json.Nodes;
using Whetstone.Models.Formats;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Nn.Schedules;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Runs;
using YamlDotNet.Serialization.NamingConventions;

namespace Whetstone.Training;

/// <summary>
/// Called after each epoch's validation (1-based epoch) with the task's validation metrics (<c>val_loss</c>,
/// <c>val_macro_f1</c>, …). Returning false stops training there (a tuner pruning a trial); the selected epoch so far
/// is still evaluated and saved.
/// </summary>
public delegate bool EpochCallback(int epoch, IReadOnlyDictionary<string, double> validation);

/// <summary>What a training run produced, whatever the task.</summary>
public sealed record TrainerResult(string RunDir, TaskOutcome? Outcome, IReadOnlyList<double> EpochSeconds, double TrainSeconds,
    long TrainableParameters, int BestEpoch, bool Stopped, bool Interrupted, string? Checkpoint);

/// <summary>Points where tests can look at (or break into) a run; null members are skipped.</summary>
public sealed class TrainerHooks
{
    /// <summary>Once the run folder is created or opened.</summary>
    public Action<string>? RunFolder { get; init; }

    /// <summary>After each micro-batch's backward (epoch, 0-based batch in the epoch). Throwing simulates a crash there.</summary>
    public Action<int, int>? AfterMicroBatch { get; init; }
}

/// <summary>
/// The one training loop every task runs through: data order (a seeded permutation per epoch), micro-batches and
/// gradient accumulation, the optimiser over parameter groups (learning-rate multiplier × decay), warm-up + decay
/// schedule, gradient clipping, per-epoch validation and best-epoch selection (<c>train.select</c>), checkpoints every
/// epoch and every <c>train.checkpoint_every</c> steps (by default at most 10 minutes apart), exact resume from them,
/// <c>metrics.jsonl</c>, progress and a clean stop on request (Ctrl-C).
/// <para>
/// <b>Exact resume.</b> A checkpoint holds what trains (parameters that require a gradient and batch-norm statistics
/// that update; nothing of a frozen base), the optimiser's moments and step counts, the schedule position, the state
/// of every module's random generator, the epoch's data cursor and partial loss, the best epoch so far and the length
/// of metrics.jsonl. Data order and augmentation are functions of (seed, epoch, example), so nothing else is needed:
/// a run killed at any point and resumed writes the same losses, bit for bit, as one never interrupted (same seed and
/// thread count).
/// </para>
/// </summary>
public sealed class Trainer
{
    /// <summary>The <c>train.*</c> keys the trainer itself honours for every task.</summary>
    public static readonly IReadOnlySet<string> CommonKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "schedule", "warmup", "clip_grad_norm",
        "grad_accum", "threads", "select", "checkpoint_every", "log_every",
    };

    /// <summary>Checkpoints are at most this far apart when <c>train.checkpoint_every</c> is not set.</summary>
    public static readonly TimeSpan DefaultCheckpointInterval = TimeSpan.FromMinutes(10);

    private readonly ITrainingTask _task;
    private readonly TrainConfig _cfg;
    private readonly TextWriter _log;

    public Trainer(ITrainingTask task, TrainConfig config, TextWriter log)
    {
        _task = task ?? throw new ArgumentNullException(nameof(task));
        _cfg = config ?? throw new ArgumentNullException(nameof(config));
        _log = log ?? throw new ArgumentNullException(nameof(log));
        Validate(task, config);
        Select = config.Train.Select ?? task.MetricNames[0];
    }

    /// <summary>The validation metric that picks the epoch whose weights are kept.</summary>
    public string Select { get; }

    /// <summary>Whether a larger <see cref="Select"/> is better (everything but losses and perplexities).</summary>
    public bool Maximize => !Select.EndsWith("loss", StringComparison.Ordinal) && !Select.EndsWith("perplexity", StringComparison.Ordinal);

    public TrainerHooks Hooks { get; init; } = new();

    /// <summary>Seconds the training thread spent on checkpoints (snapshot copies, waiting for the previous write) in the last <see cref="Run"/>.</summary>
    public double CheckpointSeconds { get; private set; }

    /// <summary>Checkpoints written by the last <see cref="Run"/>.</summary>
    public int CheckpointCount { get; private set; }

    /// <summary>When set, the run stops cleanly after the step during which it was requested (checkpoint written).</summary>
    public StopSignal? Stop { get; init; }

    // ------------------------------------------------------------------ config checks

    /// <summary>
    /// Refuses, before anything runs, every <c>train.*</c> key set to a non-default value that neither the trainer nor
    /// the task honours, and the values the trainer cannot use.
    /// </summary>
    public static void Validate(ITrainingTask task, TrainConfig c)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(c);
        var t = c.Train;
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        foreach (var key in SetKeys(t))
            Need(CommonKeys.Contains(key) || task.TaskKeys.Contains(key),
                $"train.{key} does not apply to {task.Name} (it honours {string.Join(", ", CommonKeys.Concat(task.TaskKeys).Order(StringComparer.Ordinal))}).");
        Need(t.Epochs >= 1, $"train.epochs must be ≥ 1 (got {t.Epochs}).");
        Need(t.BatchSize >= 1, $"train.batch_size must be ≥ 1 (got {t.BatchSize}).");
        Need(t.Lr > 0, $"train.lr must be > 0 (got {t.Lr}).");
        Need(t.GradAccum >= 1, $"train.grad_accum must be ≥ 1 (got {t.GradAccum}).");
        Need(t.Warmup is >= 0 and < 1, $"train.warmup is a fraction of all steps in [0, 1) (got {t.Warmup}).");
        Need(t.WeightDecay >= 0, $"train.weight_decay must be ≥ 0 (got {t.WeightDecay}).");
        Need(t.ClipGradNorm >= 0, $"train.clip_grad_norm must be ≥ 0 (0 = off; got {t.ClipGradNorm}).");
        Need(t.Optimizer is "adamw" or "sgd", $"train.optimizer must be adamw or sgd (got '{t.Optimizer}').");
        Need(t.Schedule is "cosine" or "linear" or "constant" or "onecycle", $"train.schedule must be cosine, linear, constant or onecycle (got '{t.Schedule}').");
        var defaults = new TrainSection();
        Need(t.Optimizer == "sgd" || t.Momentum == defaults.Momentum, "train.momentum applies to optimizer: sgd (AdamW's betas are fixed at 0.9, 0.999).");
        Need(t.Schedule != "onecycle" || t.Warmup == defaults.Warmup, "train.warmup does not apply to schedule: onecycle (it warms up over its first 30 % itself).");
        Need(t.CheckpointEvery >= 0, $"train.checkpoint_every is a step count ≥ 1, or 0 for every {DefaultCheckpointInterval.TotalMinutes:F0} minutes (got {t.CheckpointEvery}).");
        Need(t.LogEvery >= 1, $"train.log_every must be ≥ 1 (got {t.LogEvery}).");
        Need(t.Threads >= 0, $"train.threads must be ≥ 0 (0 = all cores; got {t.Threads}).");
        if (t.Select is { } s)
            Need(task.MetricNames.Contains(s), $"train.select '{s}' is not a validation metric of {task.Name}; it reports {string.Join(", ", task.MetricNames)}.");
    }

    /// <summary>The snake_case names of the <see cref="TrainSection"/> keys whose value differs from the default.</summary>
    public static IEnumerable<string> SetKeys(TrainSection t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var defaults = new TrainSection();
        foreach (var p in typeof(TrainSection).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            if (p.CanWrite && !Equals(p.GetValue(t), p.GetValue(defaults)))
                yield return UnderscoredNamingConvention.Instance.Apply(p.Name);
    }

    /// <summary>The schedule a config names over <paramref name="totalSteps"/>.</summary>
    public static LrSchedule Schedule(TrainSection t, long totalSteps)
    {
        ArgumentNullException.ThrowIfNull(t);
        return t.Schedule switch
        {
            "linear" => new LinearWarmupDecay((long)(t.Warmup * totalSteps), totalSteps),
            "constant" => new ConstantSchedule((long)(t.Warmup * totalSteps)),
            "onecycle" => new OneCycle(totalSteps),
            _ => new WarmupCosine((long)(t.Warmup * totalSteps), totalSteps),
        };
    }

    /// <summary>
    /// The optimiser a config names over <paramref name="trainable"/>, grouped by learning-rate multiplier
    /// (<paramref name="lrScale"/>) and decay (none on biases and normalisation weights).
    /// </summary>
    public static Optimizer BuildOptimizer(TrainSection t, IEnumerable<(string Name, Tensor Tensor)> trainable, Func<string, double> lrScale)
    {
        ArgumentNullException.ThrowIfNull(t);
        ArgumentNullException.ThrowIfNull(lrScale);
        var groups = trainable
            .GroupBy(p => (Scale: lrScale(p.Name), Decay: !ParamGroups.IsNoDecay(p.Name, p.Tensor)))
            .Select(g => new ParamGroup(g, weightDecay: g.Key.Decay ? t.WeightDecay : 0, lrScale: g.Key.Scale, label: $"lr×{g.Key.Scale}{(g.Key.Decay ? "" : " no-decay")}"))
            .ToArray();
        return t.Optimizer == "sgd" ? new Sgd(groups, t.Lr, momentum: t.Momentum, weightDecay: t.WeightDecay) : new AdamW(groups, t.Lr, weightDecay: t.WeightDecay);
    }

    /// <summary>
    /// What a checkpoint holds of <paramref name="model"/>: every parameter that trains, and the buffers of batch norms
    /// whose statistics update. Everything else is the pre-trained model, rebuilt from its source on resume.
    /// </summary>
    public static IEnumerable<(string Name, Tensor Tensor)> TrainedState(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var p in model.NamedTrainableParameters()) yield return p;
        foreach (var (name, m) in model.NamedModules())
            if (m is BatchNorm2d { StatisticsFrozen: false })
                foreach (var (b, t) in m.NamedBuffers()) yield return (name.Length == 0 ? b : name + "." + b, t);
    }

    private static List<(string Name, Rng Rng)> Generators(Module model) =>
        model.NamedModules().Where(m => m.Module is IRandomModule).Select(m => (m.Name, ((IRandomModule)m.Module).Generator)).ToList();

    // ------------------------------------------------------------------ the loop

    /// <summary>
    /// Trains in a new run folder (<c>{runs}/{name}</c>), or continues the run in <paramref name="resume"/> from its
    /// newest intact checkpoint.
    /// </summary>
    public TrainerResult Run(EpochCallback? onEpoch = null, string? resume = null)
    {
        var cfg = _cfg;
        var t = cfg.Train;
        if (t.Threads > 0) Par.Threads = t.Threads;
        CheckpointSeconds = 0;
        CheckpointCount = 0;
        var model = _task.Model;
        using var run = resume is null ? RunDirectory.Create(Path.GetFullPath(cfg.Runs), cfg.Name) : RunDirectory.Open(resume);
        using var store = new CheckpointStore(run.CheckpointDir);
        var bestPath = Path.Combine(run.CheckpointDir, "best.safetensors");
        Hooks.RunFolder?.Invoke(run.Path);

        LoadedCheckpoint? ckpt = null;
        if (resume is not null)
        {
            if (File.Exists(Path.Combine(run.BundleDir, "whetstone.json")))
                throw new ConfigException($"{run.Path}: the run has finished (its bundle is in model/); nothing to resume.");
            ckpt = store.LoadLatest(_log);
            if (ckpt is null)
            {
                // stopped before its first checkpoint: nothing was done that cannot be done again
                _log.WriteLine($"{run.Path}: no intact checkpoint yet; starting the run again from its beginning.");
                run.TruncateMetrics(0);
            }
        }
        if (ckpt is null)
        {
            run.WriteText("config.yaml", ConfigWriter.ToYaml(cfg));
            run.WriteText("run.json", new JsonObject
            {
                ["task"] = _task.Name, ["source"] = cfg.Source, ["base_directory"] = Path.GetFullPath(cfg.BaseDirectory),
                // the text it was parsed from and its --set overrides; a config built in code is saved resolved
                ["config"] = cfg.Yaml.Length > 0 ? cfg.Yaml : ConfigWriter.ToYaml(cfg),
                ["overrides"] = new JsonArray((cfg.Yaml.Length > 0 ? cfg.Overrides : []).Select(o => (JsonNode?)JsonValue.Create(o)).ToArray()),
                ["threads"] = Par.Threads, ["started"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            }.ToJsonString(RunDirectory.Json));
            _log.WriteLine($"run folder: {run.Path}");
        }
        else
        {
            var s = ckpt.State;
            if (s.Task != _task.Name) throw new ConfigException($"{ckpt.Path}: a {s.Task} checkpoint, but the run's config is {_task.Name}.");
            if (s.BaseSha256 != _task.BaseHash) throw new ConfigException($"{ckpt.Path}: trained from base weights with SHA-256 {s.BaseSha256}, but the model the config names now has {_task.BaseHash}.");
            if (s.Seed != cfg.Seed) throw new ConfigException($"{ckpt.Path}: seed {s.Seed}, but the config says {cfg.Seed}.");
            if (s.Threads != Par.Threads) _log.WriteLine($"note: the run used {s.Threads} threads and resumes on {Par.Threads}; results stay correct but may differ in the last bits from an uninterrupted run.");
            run.TruncateMetrics(s.MetricsBytes);
            _log.WriteLine($"resuming {run.Path} from {Path.GetFileName(ckpt.Path)}: epoch {s.Epoch}, batch {s.Batch}, step {s.Step}");
        }
        _task.Start(run, resumed: ckpt is not null, _log);

        int n = _task.TrainCount;
        int batchesPerEpoch = (n + t.BatchSize - 1) / t.BatchSize;
        int stepsPerEpoch = (batchesPerEpoch + t.GradAccum - 1) / t.GradAccum;
        long totalSteps = (long)stepsPerEpoch * t.Epochs;
        var schedule = Schedule(t, totalSteps);

        // ---- where we start: the beginning, or the checkpoint's cursor
        int startEpoch = ckpt?.State.Epoch ?? 1, startBatch = ckpt?.State.Batch ?? 0;
        var epochSeconds = ckpt?.State.EpochSeconds.ToList() ?? [];
        double trainSecondsBefore = ckpt?.State.TrainSeconds ?? 0;
        int bestEpoch = ckpt?.State.BestEpoch ?? 0;
        double? bestValue = ckpt?.State.BestValue;

        Optimizer? optimizer = null;
        Optimizer Rebuild()
        {
            var trainable = model.NamedTrainableParameters().ToArray();
            if (trainable.Length == 0) throw new ConfigException($"{cfg.Source}: nothing is left to train — the freezing froze every parameter, the head included.");
            var opt = BuildOptimizer(t, trainable, _task.LrScale);
            if (optimizer is not null) opt.LoadStateDict(optimizer.StateDict(), strict: false);
            return opt;
        }
        if (ckpt is not null)
        {
            for (int e = 1; e <= Math.Min(startEpoch, t.Epochs); e++) _task.BeginEpoch(e, _log);   // unfreezing as the run did it
            optimizer = Rebuild();
            Restore(ckpt, model, optimizer);
        }

        var trainClock = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
        bool stopped = false, interrupted = false;
        string? lastCheckpoint = ckpt?.Path;

        string Checkpoint(int epoch, int batch, double lossSum, long seen, double epochSecondsSoFar)
        {
            long t0 = Stopwatch.GetTimestamp();
            try { return WriteCheckpoint(epoch, batch, lossSum, seen, epochSecondsSoFar); }
            finally { CheckpointSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds; CheckpointCount++; }
        }
        string WriteCheckpoint(int epoch, int batch, double lossSum, long seen, double epochSecondsSoFar)
        {
            run.Log(new JsonObject { ["event"] = "checkpoint", ["epoch"] = epoch, ["batch"] = batch, ["step"] = optimizer!.StepCount });
            var opt = optimizer.StateDict();
            var state = new ResumeState
            {
                Task = _task.Name, Epoch = epoch, Batch = batch, Step = optimizer.StepCount, EpochLossSum = lossSum, EpochSeen = seen,
                EpochSecondsSoFar = epochSecondsSoFar, EpochSeconds = epochSeconds.ToList(), TrainSeconds = trainSecondsBefore + trainClock.Elapsed.TotalSeconds,
                Select = Select, BestEpoch = bestEpoch, BestValue = bestValue, MetricsBytes = run.MetricsBytes, BaseSha256 = _task.BaseHash,
                Seed = cfg.Seed, Threads = Par.Threads, OptimizerSteps = opt.Steps.ToDictionary(),
                Rngs = Generators(model).GroupBy(g => g.Name).ToDictionary(g => g.Key, g => g.First().Rng.GetState()),
            };
            sinceCheckpoint.Restart();
            return lastCheckpoint = store.Save(state, TrainedState(model), opt.Buffers.Select(kv => (kv.Key, kv.Value)));
        }

        for (int epoch = startEpoch; epoch <= t.Epochs && !stopped && !interrupted; epoch++)
        {
            bool resumingHere = ckpt is not null && epoch == startEpoch;
            if (!resumingHere && (_task.BeginEpoch(epoch, _log) || optimizer is null)) optimizer = Rebuild();
            var clock = Stopwatch.StartNew();
            double lossSum = resumingHere ? ckpt!.State.EpochLossSum : 0, secondsBefore = resumingHere ? ckpt!.State.EpochSecondsSoFar : 0;
            long seen = resumingHere ? ckpt!.State.EpochSeen : 0;
            int batch = resumingHere ? startBatch : 0;
            model.Train();
            var order = new Rng(Seeds.Derive(cfg.Seed, epoch, -1)).Permutation(n);
            var bar = new Progress(_log, $"epoch {epoch}/{t.Epochs}", n);
            while (batch < batchesPerEpoch)
            {
                // one optimiser step: up to grad_accum micro-batches, never across the epoch's end
                int micro = Math.Min(t.GradAccum, batchesPerEpoch - batch);
                int stepExamples = Math.Min(n, (batch + micro) * t.BatchSize) - batch * t.BatchSize;
                double stepLoss = 0;
                for (int m = 0; m < micro; m++, batch++)
                {
                    var idx = order.AsSpan(batch * t.BatchSize, Math.Min(t.BatchSize, n - batch * t.BatchSize)).ToArray();
                    float loss;
                    using (new TensorScope())
                    {
                        var l = _task.Loss(idx, epoch);
                        loss = l.Item();
                        (micro > 1 ? l * ((float)idx.Length / stepExamples) : l).Backward();
                    }
                    if (!float.IsFinite(loss))
                        throw new InvalidOperationException($"epoch {epoch}: the loss became {loss} (learning rate {t.Lr} may be too high){(lastCheckpoint is null ? "" : $"; the last good state is {lastCheckpoint}")}.");
                    stepLoss += (double)loss * idx.Length;
                    lossSum += (double)loss * idx.Length;
                    seen += idx.Length;
                    Hooks.AfterMicroBatch?.Invoke(epoch, batch);
                }
                double norm = t.ClipGradNorm > 0 ? GradClip.ClipGradNorm(model.Parameters().Where(p => p.RequiresGrad), t.ClipGradNorm) : double.NaN;
                optimizer!.LrFactor = schedule.Factor(optimizer.StepCount);
                optimizer.Step();
                optimizer.ZeroGrad();
                if (optimizer.StepCount % t.LogEvery == 0)
                    run.Log(new JsonObject
                    {
                        ["step"] = optimizer.StepCount, ["epoch"] = epoch, ["loss"] = Exact(stepLoss / stepExamples),
                        ["lr"] = RunDirectory.Num(t.Lr * optimizer.LrFactor), ["grad_norm"] = RunDirectory.Num(norm),
                    });
                bar.Report(seen, $"loss {lossSum / seen:F4}");
                bool due = t.CheckpointEvery > 0 ? optimizer.StepCount % t.CheckpointEvery == 0 : sinceCheckpoint.Elapsed >= DefaultCheckpointInterval;
                interrupted = Stop?.IsRequested == true && batch < batchesPerEpoch;
                if ((due || interrupted) && batch < batchesPerEpoch) Checkpoint(epoch, batch, lossSum, seen, secondsBefore + clock.Elapsed.TotalSeconds);
                if (interrupted) break;
            }
            if (interrupted) break;

            var val = _task.Validate();
            clock.Stop();
            double seconds = secondsBefore + clock.Elapsed.TotalSeconds;
            epochSeconds.Add(seconds);
            double trainLoss = lossSum / Math.Max(1, seen);
            var record = new JsonObject { ["epoch"] = epoch, ["train_loss"] = Exact(trainLoss) };
            foreach (var (k, v) in val) record[k] = Exact(v);
            record["seconds"] = RunDirectory.Num(seconds);
            record["trainable"] = model.TrainableParameterCount();
            record["threads"] = Par.Threads;
            foreach (var (k, v) in _task.EpochFields().ToArray()) record[k] = v?.DeepClone();
            run.Log(record);
            _log.WriteLine($"epoch {epoch}: train loss {trainLoss:F4}, {string.Join(", ", val.Select(kv => $"{kv.Key[(kv.Key.StartsWith("val_", StringComparison.Ordinal) ? 4 : 0)..].Replace('_', '-')} {kv.Value:F4}"))} ({seconds:F2} s)");

            double score = val[Select];
            if (bestValue is null || (Maximize ? score > bestValue : score < bestValue))
            {
                bestValue = score;
                bestEpoch = epoch;
                SafeTensors.Save(bestPath, TrainedState(model).Select(p => KeyValuePair.Create(p.Name, p.Tensor)), new Dictionary<string, string> { ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture), ["select"] = Select });
            }
            if (onEpoch is not null && !onEpoch(epoch, val))
            {
                _log.WriteLine($"stopped after epoch {epoch} (pruned)");
                run.Log(new JsonObject { ["event"] = "stopped", ["epoch"] = epoch });
                stopped = true;
                break;
            }
            Checkpoint(epoch + 1, 0, 0, 0, 0);
            if (Stop?.IsRequested == true && epoch < t.Epochs) { interrupted = true; break; }
        }
        long flushStart = Stopwatch.GetTimestamp();
        store.Flush();
        CheckpointSeconds += Stopwatch.GetElapsedTime(flushStart).TotalSeconds;
        trainClock.Stop();
        double trainSeconds = trainSecondsBefore + trainClock.Elapsed.TotalSeconds;

        if (interrupted)
        {
            _log.WriteLine($"interrupted: checkpoint {lastCheckpoint}; continue with: whet train --resume {run.Path}");
            return new TrainerResult(run.Path, null, epochSeconds, trainSeconds, model.TrainableParameterCount(), bestEpoch, false, true, lastCheckpoint);
        }

        // ---- the selected epoch's weights, then the task's evaluation, bundle and report
        if (bestEpoch != epochSeconds.Count)
        {
            var best = SafeTensors.LoadAll(bestPath);
            var r = model.LoadStateDict(best, strict: false);
            if (r.UnexpectedKeys.Count > 0) throw new InvalidOperationException($"{bestPath}: holds tensors the model lacks: {string.Join(", ", r.UnexpectedKeys.Take(5))}.");
            _log.WriteLine($"best validation {Select} {bestValue:F4} at epoch {bestEpoch}: using those weights");
        }
        var summary = new TrainingSummary(epochSeconds, trainSeconds, bestEpoch, Select, bestValue ?? double.NaN, stopped);
        var outcome = _task.Finish(run, summary, _log);
        return new TrainerResult(run.Path, outcome, epochSeconds, trainSeconds, model.TrainableParameterCount(), bestEpoch, stopped, false, lastCheckpoint);
    }

    /// <summary>Puts a checkpoint's trained tensors, optimiser state and generator states into the live objects.</summary>
    private static void Restore(LoadedCheckpoint ckpt, Module model, Optimizer optimizer)
    {
        var expected = TrainedState(model).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = expected.Where(k => !ckpt.Model.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new CheckpointException(ckpt.Path, $"lacks trained tensors {string.Join(", ", missing.Take(5))} (was the config changed?)");
        var r = model.LoadStateDict(ckpt.Model, strict: false);
        if (r.UnexpectedKeys.Count > 0) throw new CheckpointException(ckpt.Path, $"holds tensors the model lacks: {string.Join(", ", r.UnexpectedKeys.Take(5))}");
        try { optimizer.LoadStateDict(new OptimizerState(ckpt.State.Step, ckpt.State.OptimizerSteps, ckpt.Optimizer), strict: true); }
        catch (InvalidOperationException e) { throw new CheckpointException(ckpt.Path, $"its optimiser state does not fit this run: {e.Message}", e); }
        foreach (var (name, rng) in Generators(model))
        {
            if (!ckpt.State.Rngs.TryGetValue(name, out var s)) throw new CheckpointException(ckpt.Path, $"has no generator state for module '{name}'");
            rng.SetState(s);
        }
    }

    /// <summary>A loss or metric as logged: every bit of the double (round-trip), NaN/∞ as null.</summary>
    private static JsonNode? Exact(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
}
