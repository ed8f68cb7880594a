using System.Text.Json.Nodes;
using Whetstone.Nn;
using Whetstone.Tensors;
using Whetstone.Training.Runs;

namespace Whetstone.Training;

/// <summary>
/// What the <see cref="Trainer"/> needs from a task (image classification, text classification, and the tasks to come):
/// the model, the training examples by index, the loss of a batch, the validation metrics, and what happens before and
/// after training (scoring the model before fine-tuning, the bundle, the report). The trainer owns everything else:
/// data order, optimiser and parameter groups, schedule, clipping, accumulation, best-epoch selection, checkpoints and
/// resume, metrics.jsonl, progress and interruption.
/// </summary>
public interface ITrainingTask
{
    /// <summary>The task's name in configs and bundles (<c>task:</c>), e.g. <c>image-classification</c>.</summary>
    string Name { get; }

    /// <summary>The module that trains; its trainable parameters are what the optimiser updates.</summary>
    Module Model { get; }

    /// <summary>Training examples; batches are index arrays into [0, TrainCount).</summary>
    int TrainCount { get; }

    /// <summary>
    /// The <c>train.*</c> keys this task honours beyond the trainer's own (<see cref="Trainer.CommonKeys"/>); any other
    /// key set to a non-default value is refused before anything runs.
    /// </summary>
    IReadOnlySet<string> TaskKeys { get; }

    /// <summary>The validation metrics it reports each epoch (keys of <see cref="Validate"/>), e.g. <c>val_loss</c>, <c>val_macro_f1</c>; the first is the default <c>train.select</c>.</summary>
    IReadOnlyList<string> MetricNames { get; }

    /// <summary>SHA-256 of the pre-trained weights the run starts from; a checkpoint records it and resume refuses another.</summary>
    string BaseHash { get; }

    /// <summary>
    /// Before the first step, fresh or resumed: writes the task's own files (data report), scores the model before
    /// fine-tuning (or, when <paramref name="resumed"/>, reads that score back from the run folder) and logs it.
    /// </summary>
    void Start(RunDirectory run, bool resumed, TextWriter log);

    /// <summary>
    /// At the start of each 1-based epoch, also when a resume enters it: gradual unfreezing and the like. True when the
    /// set of trainable parameters (or their learning-rate multipliers) changed, so the optimiser is rebuilt.
    /// </summary>
    bool BeginEpoch(int epoch, TextWriter log);

    /// <summary>Learning-rate multiplier of a trainable parameter (discriminative learning rates; 1 for most).</summary>
    double LrScale(string name);

    /// <summary>Mean loss over the examples <paramref name="indices"/> in training mode (called inside the step's scope).</summary>
    Tensor Loss(int[] indices, int epoch);

    /// <summary>Validation metrics (eval mode, no gradients) by name: <see cref="MetricNames"/>.</summary>
    IReadOnlyDictionary<string, double> Validate();

    /// <summary>Fields added to each epoch's metrics.jsonl record (e.g. where features are cached).</summary>
    JsonObject EpochFields();

    /// <summary>
    /// After training, with the selected epoch's weights in the model: scores it against the model before fine-tuning,
    /// writes the bundle, eval.json and the report.
    /// </summary>
    TaskOutcome Finish(RunDirectory run, TrainingSummary summary, TextWriter log);

    /// <summary>What <c>whet train --dry-run</c> prints: the layers or parameters (trainable or frozen), the data, a memory estimate.</summary>
    string DescribeLayers();
}

/// <summary>What the trainer knows when training ends: the epochs run, their times, the selected epoch and its score.</summary>
public sealed record TrainingSummary(IReadOnlyList<double> EpochSeconds, double TrainSeconds, int BestEpoch, string Select, double BestValue, bool Stopped);

/// <summary>What a task's <see cref="ITrainingTask.Finish"/> produced: the bundle, the held-out scores before and after, and them as a table to print.</summary>
public sealed record TaskOutcome(string BundleDir, string EvaluatedOn, IReadOnlyDictionary<string, double> Before, IReadOnlyDictionary<string, double> After, string Text);
