namespace Whetstone.Training.Evaluation;

/// <summary>Per-class precision, recall, F1 and support.</summary>
public sealed record ClassScore(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>Accuracy, macro-F1, per-class scores and the confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record ClassificationReport(double Accuracy, double MacroF1, IReadOnlyList<ClassScore> PerClass, int[,] ConfusionMatrix, IReadOnlyList<string> Labels)
{
    /// <summary>Builds the report from true and predicted class indices.</summary>
    public static ClassificationReport From(ReadOnlySpan<int> truth, ReadOnlySpan<int> predicted, IReadOnlyList<string> labels)
    {
        if (truth.Length != predicted.Length) throw new ArgumentException($"{truth.Length} true labels but {predicted.Length} predictions.");
        int k = labels.Count;
        var cm = new int[k, k];
        int correct = 0;
        for (int i = 0; i < truth.Length; i++)
        {
            int t = truth[i], p = predicted[i];
            if ((uint)t >= (uint)k || (uint)p >= (uint)k) throw new ArgumentOutOfRangeException(nameof(truth), $"Class index out of range at item {i}: true {t}, predicted {p}, {k} labels.");
            cm[t, p]++;
            if (t == p) correct++;
        }
        var per = new ClassScore[k];
        double f1Sum = 0;
        for (int c = 0; c < k; c++)
        {
            int tp = cm[c, c], fp = 0, fn = 0;
            for (int j = 0; j < k; j++)
            {
                if (j == c) continue;
                fp += cm[j, c];
                fn += cm[c, j];
            }
            // Conventions as scikit-learn with zero_division=0: an undefined ratio counts as 0.
            double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp);
            double recall = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            per[c] = new ClassScore(labels[c], precision, recall, f1, tp + fn);
            f1Sum += f1;
        }
        double accuracy = truth.Length == 0 ? 0 : (double)correct / truth.Length;
        return new ClassificationReport(accuracy, k == 0 ? 0 : f1Sum / k, per, cm, labels);
    }
}
