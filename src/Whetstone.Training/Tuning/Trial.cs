namespace Whetstone.Training.Tuning;

public enum TrialState { Running, Complete, Pruned, Fail, Interrupted }

/// <summary>One trial as the study stores it. <see cref="Params"/> holds the active keys' values as YAML text (null = YAML null).</summary>
public sealed record TrialRecord
{
    public long Id { get; init; }
    public int Number { get; init; }
    public TrialState State { get; init; }
    public IReadOnlyDictionary<string, string?> Params { get; init; } = new Dictionary<string, string?>();
    public double? Value { get; init; }
    /// <summary>Validation metric per epoch (1-based).</summary>
    public IReadOnlyDictionary<int, double> Intermediate { get; init; } = new Dictionary<int, double>();
    public DateTime? Started { get; init; }
    public DateTime? Ended { get; init; }
    public string? RunDir { get; init; }
    public int Pid { get; init; }
    public long PidStart { get; init; }
    /// <summary>The interrupted trial this one runs again.</summary>
    public int? RetryOf { get; init; }
    public string? Message { get; init; }
    public double? TestAccuracy { get; init; }
    public double? TestMacroF1 { get; init; }

    public bool Finished => State is TrialState.Complete or TrialState.Pruned or TrialState.Fail;
    public int EpochsRun => Intermediate.Count == 0 ? 0 : Intermediate.Keys.Max();

    public static string StateName(TrialState s) => s.ToString().ToUpperInvariant();
    public static TrialState ParseState(string s) => Enum.Parse<TrialState>(s, ignoreCase: true);
}

/// <summary>Whether larger or smaller metric values are better.</summary>
public readonly record struct Direction(bool Maximize)
{
    public bool Better(double a, double b) => Maximize ? a > b : a < b;
    public double Best(IEnumerable<double> values) => Maximize ? values.Max() : values.Min();
    public override string ToString() => Maximize ? "maximize" : "minimize";
}
