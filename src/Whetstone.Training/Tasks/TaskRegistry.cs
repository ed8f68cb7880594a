using Whetstone.Training.Config;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>A task Whetstone trains: its name (<c>task:</c> in configs, <c>task</c> in bundles) and how a config becomes one.</summary>
public sealed record TaskKind(string Name, string Summary, Func<TrainConfig, TextWriter, ITrainingTask> Prepare);

/// <summary>
/// Every task, by name: what <c>whet train</c>, <c>whet tune</c> and bundle loading look a config's <c>task:</c> or a
/// bundle's <c>task</c> up in. A new task is one entry here plus its task class.
/// </summary>
public static class TaskRegistry
{
    public static IReadOnlyList<TaskKind> All { get; } =
    [
        new(ImageClassification.TaskName, "images → one of N labels, from a TF.js or ONNX backbone", ImageClassification.Prepare),
        new(TextClassification.TaskName, "texts (or text pairs) → one of N labels, from word vectors or a Hugging Face encoder", TextClassification.Prepare),
        new(CausalLmTask.CausalLmName, "a decoder LM on plain text (domain adaptation) or prompt/completion rows", CausalLmTask.Prepare),
        new(CausalLmTask.ChatName, "a decoder LM on conversations (messages JSONL), loss on the assistant turns", CausalLmTask.Prepare),
    ];

    /// <summary>The task named <paramref name="name"/>; an unknown name is a config error listing the known ones.</summary>
    public static TaskKind Get(string name, string source = "config")
    {
        return All.FirstOrDefault(t => t.Name == name)
            ?? throw new ConfigException($"{source}: task must be one of {string.Join(", ", All.Select(t => t.Name))} (got '{name}').");
    }

    /// <summary>The task of the bundle in <paramref name="path"/> (a bundle folder or a run folder).</summary>
    public static TaskKind OfBundle(string path)
    {
        var name = Bundle.TaskOf(path);
        return All.FirstOrDefault(t => t.Name == name)
            ?? throw new BundleException($"{path}: a '{name}' bundle; this Whetstone reads {string.Join(", ", All.Select(t => t.Name))} bundles.");
    }

    /// <summary>Prepares the task a config names and runs it through the <see cref="Trainer"/> (fresh, or resuming <paramref name="resume"/>).</summary>
    public static TrainerResult Train(TrainConfig config, TextWriter log, EpochCallback? onEpoch = null, string? resume = null, StopSignal? stop = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var task = Get(config.Task, config.Source).Prepare(config, log);
        return new Trainer(task, config, log) { Stop = stop }.Run(onEpoch, resume);
    }
}
