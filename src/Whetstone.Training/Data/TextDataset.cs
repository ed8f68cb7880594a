namespace Whetstone.Training.Data;

/// <summary>One example as read: its text (and second text), raw label, and where it came from (<c>file:line</c>).</summary>
public sealed record TextRow(string Text, string? Pair, string Label, string Origin);

/// <summary>
/// Labelled texts with a fixed label list (head order). Training data infers it (sorted, ordinal); validation and test
/// data take the training set's (<see cref="WithLabels"/>), and a label only they have is an error.
/// </summary>
public sealed class TextDataset
{
    public IReadOnlyList<TextRow> Rows { get; }
    public int[] Labels { get; }
    public IReadOnlyList<string> LabelNames { get; }
    /// <summary>Rows left out (missing text or label) with <c>bad_rows: skip</c>: one message each, naming file and line.</summary>
    public IReadOnlyList<string> Skipped { get; init; } = [];

    public int Count => Rows.Count;

    public TextDataset(IReadOnlyList<TextRow> rows, IReadOnlyList<string>? labels = null, string what = "data")
    {
        ArgumentNullException.ThrowIfNull(rows);
        Rows = rows;
        LabelNames = labels ?? rows.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < LabelNames.Count; i++) index.TryAdd(LabelNames[i], i);
        Labels = new int[rows.Count];
        var unknown = new List<TextRow>();
        for (int i = 0; i < rows.Count; i++)
            if (!index.TryGetValue(rows[i].Label, out Labels[i])) unknown.Add(rows[i]);
        if (unknown.Count > 0)
        {
            var seen = unknown.GroupBy(r => r.Label).Select(g => $"'{g.Key}' ({g.Count()}×, first at {g.First().Origin})");
            throw new DataException($"The {what} has label(s) the training data does not: {string.Join(", ", seen)}. Training labels: {string.Join(", ", LabelNames.Select(l => $"'{l}'"))}. Add examples of them to the training data, or map them with text.label_map.");
        }
    }

    public TextDataset Subset(IReadOnlyList<int> indices) => new(indices.Select(i => Rows[i]).ToArray(), LabelNames) { Skipped = Skipped };

    /// <summary>The same rows with <paramref name="labels"/> as the label list (a label outside it is an error naming the row).</summary>
    public TextDataset WithLabels(IReadOnlyList<string> labels, string what) => new(Rows, labels, what) { Skipped = Skipped };

    /// <summary>Stratified split (same seed, same split): see <see cref="Split.Stratified"/>.</summary>
    public (TextDataset Train, TextDataset Validation) SplitStratified(double fraction, ulong seed)
    {
        var (train, val) = Split.Stratified(Labels, fraction, seed);
        return (Subset(train), Subset(val));
    }

    /// <summary>Examples per class, in label order.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[LabelNames.Count];
        foreach (int y in Labels) counts[y]++;
        return counts;
    }

    /// <summary>Loss weights n / (k · n_c) per class (1 for a class with no examples).</summary>
    public float[] BalancedClassWeights()
    {
        var counts = ClassCounts();
        return counts.Select(c => c == 0 ? 1f : (float)Count / (counts.Length * c)).ToArray();
    }
}
