using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Data;

/// <summary>
/// What the data looks like before training: class balance per split, token-length percentiles and the share of
/// examples truncated at the max length (training data), unknown-word rate, and texts that appear in both the training
/// and the validation data (which inflate validation scores).
/// </summary>
public sealed record TextDataReport(
    IReadOnlyList<string> Labels, int[] TrainCounts, int[] ValidationCounts, int[]? TestCounts,
    int[] LengthPercentiles, int MaxLength, double TruncatedShare, double UnknownShare,
    int DuplicatesAcrossSplits, int DuplicatesInTrain, int Skipped)
{
    public static readonly int[] Percentiles = [50, 90, 95, 99, 100];

    /// <param name="count">Tokens of a text and how many of them the vocabulary lacks.</param>
    public static TextDataReport Build(TextDataset train, TextDataset validation, TextDataset? test, Func<string, (int Tokens, int Unknown)> count, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(count);
        var lengths = new int[train.Count];
        long tokens = 0, unknown = 0;
        for (int i = 0; i < train.Count; i++)
        {
            var r = train.Rows[i];
            var (n, u) = count(r.Pair is null ? r.Text : r.Text + " " + r.Pair);
            lengths[i] = n;
            tokens += n;
            unknown += u;
        }
        var sorted = lengths.Order().ToArray();
        var pct = Percentiles.Select(p => sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Length) - 1, 0, sorted.Length - 1)]).ToArray();
        var trainKeys = new HashSet<string>(StringComparer.Ordinal);
        int dupTrain = 0;
        foreach (var r in train.Rows) if (!trainKeys.Add(Key(r))) dupTrain++;
        int dupAcross = validation.Rows.Count(r => trainKeys.Contains(Key(r)));
        return new TextDataReport(train.LabelNames, train.ClassCounts(), validation.ClassCounts(), test?.ClassCounts(), pct, maxLength,
            train.Count == 0 ? 0 : lengths.Count(l => l > maxLength) / (double)train.Count,
            tokens == 0 ? 0 : unknown / (double)tokens, dupAcross, dupTrain, train.Skipped.Count);
    }

    /// <summary>Texts compared for duplicates: lower case, whitespace collapsed.</summary>
    private static string Key(TextRow r) =>
        string.Join(' ', (r.Text + "\u0001" + r.Pair).ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    public string ToText()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("data report");
        int w = Math.Max(8, Labels.Max(l => l.Length));
        sb.AppendLine($"  {"label".PadRight(w)}  {"train",8}  {"valid",8}{(TestCounts is null ? "" : $"  {"test",8}")}");
        for (int c = 0; c < Labels.Count; c++)
            sb.AppendLine($"  {Labels[c].PadRight(w)}  {TrainCounts[c],8}  {ValidationCounts[c],8}{(TestCounts is null ? "" : $"  {TestCounts[c],8}")}  ({100.0 * TrainCounts[c] / Math.Max(1, TrainCounts.Sum()):F1} % of train)");
        sb.AppendLine(string.Create(inv, $"  tokens per example (train): {string.Join(", ", Percentiles.Select((p, i) => $"p{p} {LengthPercentiles[i]}"))}; {TruncatedShare:P1} truncated at max_length {MaxLength}; {UnknownShare:P1} of tokens unknown"));
        sb.Append(inv, $"  duplicates: {DuplicatesAcrossSplits} validation texts also in train, {DuplicatesInTrain} repeated within train");
        if (Skipped > 0) sb.Append(inv, $"; {Skipped} bad rows skipped");
        return sb.ToString();
    }

    public JsonObject ToJson()
    {
        JsonObject Counts(int[] c) => new(Labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)c[i])));
        var o = new JsonObject
        {
            ["labels"] = new JsonArray(Labels.Select(l => (JsonNode?)l).ToArray()),
            ["train"] = Counts(TrainCounts),
            ["validation"] = Counts(ValidationCounts),
            ["length_percentiles"] = new JsonObject(Percentiles.Select((p, i) => KeyValuePair.Create($"p{p}", (JsonNode?)LengthPercentiles[i]))),
            ["max_length"] = MaxLength,
            ["truncated"] = RunDirectory.Num(TruncatedShare),
            ["unknown_tokens"] = RunDirectory.Num(UnknownShare),
            ["duplicates_across_splits"] = DuplicatesAcrossSplits,
            ["duplicates_in_train"] = DuplicatesInTrain,
            ["skipped"] = Skipped,
        };
        if (TestCounts is not null) o["test"] = Counts(TestCounts);
        return o;
    }
}
