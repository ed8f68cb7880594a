using Whetstone.Tensors;

namespace Whetstone.Training.Data;

/// <summary>Train/validation splits over label indices.</summary>
public static class Split
{
    /// <summary>
    /// Splits example indices so that every label keeps its share: a label with n examples puts
    /// round(n · <paramref name="validationFraction"/>) of them (half away from zero) in validation, but at least one
    /// and at most n − 1 when n ≥ 2 (a single example stays in training). Which examples go where is drawn with
    /// <paramref name="seed"/> (same seed, same split); both index lists come back in ascending order.
    /// </summary>
    public static (int[] Train, int[] Validation) Stratified(IReadOnlyList<int> labels, double validationFraction, ulong seed)
    {
        if (!(validationFraction is >= 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be in [0, 1).");
        int classes = 0;
        foreach (int y in labels)
        {
            if (y < 0) throw new ArgumentException($"Label indices must be non-negative; found {y}.", nameof(labels));
            classes = Math.Max(classes, y + 1);
        }
        var rng = new Rng(seed);
        var train = new List<int>(labels.Count);
        var val = new List<int>();
        foreach (var members in ByClass(labels, classes))
        {
            int n = members.Length;
            int nVal = validationFraction == 0 || n < 2 ? 0 : Math.Clamp((int)Math.Round(n * validationFraction, MidpointRounding.AwayFromZero), 1, n - 1);
            var order = rng.Permutation(n);
            for (int k = 0; k < n; k++) (k < nVal ? val : train).Add(members[order[k]]);
        }
        train.Sort();
        val.Sort();
        return (train.ToArray(), val.ToArray());
    }

    /// <summary>The indices of each label's examples, in index order (entry c: label c).</summary>
    internal static int[][] ByClass(IReadOnlyList<int> labels, int classes)
    {
        var counts = new int[classes];
        foreach (int y in labels) counts[y]++;
        var byClass = new int[classes][];
        for (int c = 0; c < classes; c++) byClass[c] = new int[counts[c]];
        Array.Clear(counts);
        for (int i = 0; i < labels.Count; i++) byClass[labels[i]][counts[labels[i]]++] = i;
        return byClass;
    }
}
