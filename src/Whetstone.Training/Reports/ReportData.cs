using System.Text.Json.Nodes;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Reports;

/// <summary>
/// Everything an evaluation report shows, gathered by its caller (the training recipe, <c>whet evaluate</c>,
/// <c>whet tune</c>). Only <see cref="Title"/>, <see cref="Labels"/> and <see cref="After"/> are required; each
/// section whose input is missing is left out (with a line saying why).
/// </summary>
public sealed record ReportData
{
    public required string Title { get; init; }
    /// <summary>Key/value lines shown under the title (model, data, run folder, …), in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> RunInfo { get; init; } = [];
    /// <summary>The run's <c>metrics.jsonl</c> lines (see <see cref="ReadMetrics"/>): steps, epochs and events.</summary>
    public IReadOnlyList<JsonObject> Metrics { get; init; } = [];
    /// <summary>Label names in class-index order.</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>The fine-tuned model on the evaluation set, with per-example truth, predictions and probabilities.</summary>
    public required EvalResult After { get; init; }
    /// <summary>The model before fine-tuning on the same examples.</summary>
    public EvalResult? Before { get; init; }
    /// <summary>The evaluation set's name (test, validation, a folder name).</summary>
    public string EvaluatedOn { get; init; } = "test";
    /// <summary>The fine-tuned model on the validation set: the temperature and the decision threshold are fitted on it.</summary>
    public EvalResult? Validation { get; init; }
    /// <summary>
    /// The input of example <c>i</c> of the evaluation set, for the mistakes gallery: a PNG thumbnail, a text, or both
    /// (see <see cref="HtmlReport.ImageExamples"/>). Null: mistakes are listed without their input.
    /// </summary>
    public Func<int, (string? Text, byte[]? Png)>? Example { get; init; }
    /// <summary>Without <see cref="Validation"/>: a temperature fitted earlier (the bundle's) to report calibration with.</summary>
    public double? Temperature { get; init; }
    /// <summary>Without <see cref="Validation"/>: a two-class decision threshold chosen earlier (the bundle's), by <see cref="ThresholdRule"/>.</summary>
    public double? Threshold { get; init; }
    /// <summary>How a binary task's decision threshold is chosen (<see cref="ThresholdRule.Parse"/> forms).</summary>
    public string ThresholdRule { get; init; } = "max_f1";
    /// <summary>How many of the most confident mistakes to show.</summary>
    public int Mistakes { get; init; } = 12;
    /// <summary>Seed of the bootstrap resampling.</summary>
    public ulong Seed { get; init; } = Bootstrap.DefaultSeed;
    /// <summary>A hyperparameter study to show (trial history, best so far, each parameter against the objective).</summary>
    public StudyData? Study { get; init; }

    /// <summary>Reads a <c>metrics.jsonl</c> file (blank lines skipped; a missing file is an empty list).</summary>
    public static IReadOnlyList<JsonObject> ReadMetrics(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) return [];
        var lines = new List<JsonObject>();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { if (JsonNode.Parse(line) is JsonObject o) lines.Add(o); }
            catch (System.Text.Json.JsonException e) { throw new DataException($"{path}:{number}: not a JSON object ({e.Message})."); }
        }
        return lines;
    }
}

/// <summary>
/// One trial of a hyperparameter study: its number, parameter values (numbers or strings), the objective value
/// (the final one, or the last reported for a pruned trial; null when none) and its state (<c>complete</c>,
/// <c>pruned</c>, <c>failed</c>, <c>running</c>).
/// </summary>
public sealed record StudyTrial(int Number, IReadOnlyDictionary<string, object?> Params, double? Value, string State)
{
    public bool IsComplete => string.Equals(State, "complete", StringComparison.OrdinalIgnoreCase);
}

/// <summary>A study to report: its name, the objective's name and direction, and its trials.</summary>
public sealed record StudyData(string Name, string Objective, bool Maximize, IReadOnlyList<StudyTrial> Trials);
