using System.Text.Json.Nodes;
using Whetstone.Nn;
using Whetstone.Nn.Schedules;
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

    /// <summary>Saves last (and best when it is); returns false when the callback stops training.</summary>
    public bool Finish(int epoch, EvalResult val, EpochCallback? onEpoch)
    {
        Models.Checkpoints.SafeTensors.Save(LastPath, model.StateDict(), new Dictionary<string, string> { ["epoch"] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture) });
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
        model.LoadStateDict(Models.Checkpoints.SafeTensors.LoadAll(BestPath), strict: true);
        log.WriteLine($"best validation macro-F1 {BestScore:F3} at epoch {BestEpoch}: using those weights");
    }
}
