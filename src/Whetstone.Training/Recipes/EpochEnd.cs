using System.Text.Json.Nodes;
using Whetstone.Nn;
using Whetstone.Nn.Optimizers;
using Whetstone.Nn.Schedules;
using Whetstone.Tensors;
using Whetstone.Training.Config;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Recipes;

/// <summary>What every recipe does at the end of an epoch and of training: checkpoints, best-epoch selection by validation macro-F1, the tuner's callback.</summary>
internal sealed class EpochEnd(RunDirectory run, Module model, TextWriter log)
{
    public string BestPath { get; } = Path.Combine(run.CheckpointDir, "best.safetensors");
    public string LastPath { get; } = Path.Combine(run.CheckpointDir, "last.safetensors");
    public double BestScore { get; private set; } = double.NegativeInfinity;
    public int BestEpoch { get; private set; }

    /// <summary>The schedule a config names over <paramref name="totalSteps"/>.</summary>
    public static LrSchedule Schedule(TrainSection t, long totalSteps) => t.Schedule switch
    {
        "linear" => new LinearWarmupDecay((long)(t.Warmup * totalSteps), totalSteps),
        "constant" => new ConstantSchedule((long)(t.Warmup * totalSteps)),
        "onecycle" => new OneCycle(totalSteps),
        _ => new WarmupCosine((long)(t.Warmup * totalSteps), totalSteps),
    };

    /// <summary>
    /// Logs the epoch (a line, and a metrics.jsonl record with <paramref name="extra"/> fields), saves last (and best when
    /// it is); returns false when the callback stops training.
    /// </summary>
    public bool Finish(int epoch, double trainLoss, EvalResult val, double seconds, string note, JsonObject extra, EpochCallback? onEpoch)
    {
        log.WriteLine($"epoch {epoch}: train loss {trainLoss:F4}, validation loss {val.Loss:F4}, accuracy {val.Report.Accuracy:P1}, macro-F1 {val.Report.MacroF1:F3} ({seconds:F2} s{note})");
        var record = new JsonObject
        {
            ["epoch"] = epoch, ["train_loss"] = RunDirectory.Num(trainLoss), ["val_loss"] = RunDirectory.Num(val.Loss),
            ["val_accuracy"] = RunDirectory.Num(val.Report.Accuracy), ["val_macro_f1"] = RunDirectory.Num(val.Report.MacroF1),
            ["seconds"] = RunDirectory.Num(seconds), ["trainable"] = model.TrainableParameterCount(),
        };
        foreach (var (k, v) in extra.ToArray()) { extra.Remove(k); record[k] = v; }
        run.Log(record);
        return Finish(epoch, val, onEpoch);
    }

    /// <summary>Every tenth optimiser step: a metrics.jsonl record with the batch loss, learning rate and gradient norm.</summary>
    public void Step(long step, int epoch, double loss, double lr, double gradNorm)
    {
        if (step % 10 == 0)
            run.Log(new JsonObject { ["step"] = step, ["epoch"] = epoch, ["loss"] = RunDirectory.Num(loss), ["lr"] = RunDirectory.Num(lr), ["grad_norm"] = RunDirectory.Num(gradNorm) });
    }

    /// <summary>Logs the model's scores before or after fine-tuning (a line and a metrics.jsonl event).</summary>
    public void Result(string when, string split, EvalResult r)
    {
        log.WriteLine($"{when} fine-tuning: {split} accuracy {r.Report.Accuracy:P1}, macro-F1 {r.Report.MacroF1:F3}, loss {r.Loss:F3}");
        var record = new JsonObject { ["event"] = when, ["split"] = split };
        if (when == "after") record["best_epoch"] = BestEpoch;
        record["accuracy"] = RunDirectory.Num(r.Report.Accuracy);
        record["macro_f1"] = RunDirectory.Num(r.Report.MacroF1);
        record["loss"] = RunDirectory.Num(r.Loss);
        run.Log(record);
    }

    /// <summary>
    /// The optimiser a config names over <paramref name="trainable"/>, grouped by learning-rate multiplier
    /// (<paramref name="lrScale"/>, 1 when null) and decay (none on biases and normalisation weights).
    /// </summary>
    public static Optimizer Optimizer(TrainSection t, IEnumerable<(string Name, Tensor Tensor)> trainable, Func<Tensor, double>? lrScale = null)
    {
        var groups = trainable
            .GroupBy(p => (Scale: lrScale?.Invoke(p.Tensor) ?? 1.0, Decay: !ParamGroups.IsNoDecay(p.Name, p.Tensor)))
            .Select(g => new ParamGroup(g, weightDecay: g.Key.Decay ? t.WeightDecay : 0, lrScale: g.Key.Scale, label: $"lr×{g.Key.Scale}{(g.Key.Decay ? "" : " no-decay")}"))
            .ToArray();
        return t.Optimizer == "sgd" ? new Sgd(groups, t.Lr, momentum: t.Momentum, weightDecay: t.WeightDecay) : new AdamW(groups, t.Lr, weightDecay: t.WeightDecay);
    }

    /// <summary>Saves last (and best when it is); returns false when the callback stops training.</summary>
    public bool Finish(int epoch, EvalResult val, EpochCallback? onEpoch)
    {
        Models.Formats.SafeTensors.Save(LastPath, model.StateDict(), new Dictionary<string, string> { ["epoch"] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        if (val.Report.MacroF1 > BestScore)
        {
            BestScore = val.Report.MacroF1;
            BestEpoch = epoch;
            File.Copy(LastPath, BestPath + ".tmp", overwrite: true);
            File.Move(BestPath + ".tmp", BestPath, overwrite: true);
        }
        if (onEpoch is null || onEpoch(epoch, val)) return true;
        log.WriteLine($"stopped after epoch {epoch} (pruned)");
        run.Log(new JsonObject { ["event"] = "stopped", ["epoch"] = epoch });
        return false;
    }

    /// <summary>Loads the best epoch's weights when training ended on another.</summary>
    public void RestoreBest(int epochsRun)
    {
        if (BestEpoch == epochsRun) return;
        model.LoadStateDict(Models.Formats.SafeTensors.LoadAll(BestPath), strict: true);
        log.WriteLine($"best validation macro-F1 {BestScore:F3} at epoch {BestEpoch}: using those weights");
    }
}
