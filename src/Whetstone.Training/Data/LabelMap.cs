namespace Whetstone.Training.Data;

/// <summary>Maps a dataset's label list onto a model's fixed label list (its head order).</summary>
public static class LabelMap
{
    /// <summary>
    /// For each of <paramref name="datasetLabels"/>, its index in <paramref name="modelLabels"/> (exact, ordinal match).
    /// Labels the model does not know are a <see cref="DataException"/> that lists all of them; labels the model
    /// knows but the dataset lacks are fine (an evaluation set may cover only some classes).
    /// </summary>
    public static int[] Map(IReadOnlyList<string> datasetLabels, IReadOnlyList<string> modelLabels)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < modelLabels.Count; i++)
            if (!index.TryAdd(modelLabels[i], i)) throw new ArgumentException($"The model's label list has '{modelLabels[i]}' twice.", nameof(modelLabels));
        var map = new int[datasetLabels.Count];
        var unknown = new List<string>();
        for (int i = 0; i < map.Length; i++)
            if (!index.TryGetValue(datasetLabels[i], out map[i])) unknown.Add(datasetLabels[i]);
        if (unknown.Count > 0)
            throw new DataException($"{unknown.Count} label(s) of the data are unknown to the model: {Quote(unknown)}. The model knows {modelLabels.Count}: {Quote(modelLabels)}.");
        return map;
    }

    private static string Quote(IEnumerable<string> labels) => string.Join(", ", labels.Select(l => $"'{l}'"));
}
