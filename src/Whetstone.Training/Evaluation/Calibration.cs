namespace Whetstone.Training.Evaluation;

/// <summary>
/// One bin of a reliability diagram: the examples whose confidence (top-class probability) falls in
/// (<see cref="Lower"/>, <see cref="Upper"/>], their mean confidence and the fraction of them classified correctly.
/// </summary>
public readonly record struct ReliabilityBin(double Lower, double Upper, int Count, double MeanConfidence, double Accuracy)
{
    /// <summary>|accuracy − confidence| of the bin (0 for an empty bin).</summary>
    public double Gap => Count == 0 ? 0 : Math.Abs(Accuracy - MeanConfidence);
}

/// <summary>A fitted temperature and the validation negative log-likelihood before (T = 1) and after.</summary>
public sealed record TemperatureFit(double Temperature, double NllBefore, double NllAfter, int Count);

/// <summary>
/// Calibration of class probabilities: reliability bins, expected calibration error and temperature scaling.
/// Probabilities are row-major (examples × classes). ECE uses equal-width confidence bins
/// B_m = ((m−1)/M, m/M] and ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)| (Naeini et al. 2015, Guo et al. 2017), with
/// M = 15 by default. Temperature scaling divides the logits by one scalar T fitted to minimise the negative
/// log-likelihood on held-out data; it changes no argmax, so accuracy is unchanged.
/// </summary>
public static class Calibration
{
    public const int DefaultBins = 15;

    /// <summary>The smallest log-probability used when logits are recovered from probabilities that underflowed to 0.</summary>
    private const double LogFloor = -104;   // ≈ log(float.Epsilon)

    /// <summary>Equal-width reliability bins of the top-class confidence.</summary>
    public static ReliabilityBin[] Bins(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> truth, int bins = DefaultBins)
    {
        int n = Rows(probabilities, classes, truth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bins);
        var count = new int[bins];
        var conf = new double[bins];
        var correct = new int[bins];
        for (int i = 0; i < n; i++)
        {
            var row = probabilities.Slice(i * classes, classes);
            int arg = ArgMax(row);
            double c = row[arg];
            // bin m holds ((m−1)/M, m/M]; a confidence of exactly 0 goes to the first bin
            int b = Math.Clamp((int)Math.Ceiling(c * bins) - 1, 0, bins - 1);
            count[b]++;
            conf[b] += c;
            if (arg == truth[i]) correct[b]++;
        }
        var result = new ReliabilityBin[bins];
        for (int b = 0; b < bins; b++)
            result[b] = new ReliabilityBin((double)b / bins, (double)(b + 1) / bins, count[b],
                count[b] == 0 ? 0 : conf[b] / count[b], count[b] == 0 ? 0 : (double)correct[b] / count[b]);
        return result;
    }

    /// <summary>Expected calibration error over <paramref name="bins"/> equal-width confidence bins.</summary>
    public static double ExpectedCalibrationError(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> truth, int bins = DefaultBins) =>
        ExpectedCalibrationError(Bins(probabilities, classes, truth, bins));

    /// <summary>ECE from already computed bins: Σ |B_m|/N · |acc − conf|.</summary>
    public static double ExpectedCalibrationError(IReadOnlyList<ReliabilityBin> bins)
    {
        ArgumentNullException.ThrowIfNull(bins);
        long n = bins.Sum(b => (long)b.Count);
        return n == 0 ? 0 : bins.Sum(b => b.Count * b.Gap) / n;
    }

    /// <summary>ECE of an evaluation that kept its probabilities.</summary>
    public static double ExpectedCalibrationError(EvalResult e, int bins = DefaultBins)
    {
        var (p, t, k) = Parts(e);
        return ExpectedCalibrationError(p, k, t, bins);
    }

    /// <summary>
    /// Log-probabilities as logits (softmax is shift-invariant, so softmax(log p / T) is temperature scaling of the
    /// original logits); zeros are floored at ≈ log(float.Epsilon).
    /// </summary>
    public static double[] LogitsFromProbabilities(ReadOnlySpan<float> probabilities)
    {
        var z = new double[probabilities.Length];
        for (int i = 0; i < z.Length; i++) z[i] = probabilities[i] > 0 ? Math.Max(Math.Log(probabilities[i]), LogFloor) : LogFloor;
        return z;
    }

    /// <summary>Mean negative log-likelihood of softmax(<paramref name="logits"/> / T).</summary>
    public static double NegativeLogLikelihood(ReadOnlySpan<double> logits, int classes, ReadOnlySpan<int> truth, double temperature)
    {
        int n = truth.Length;
        if (classes < 1 || logits.Length != n * classes) throw new ArgumentException($"{logits.Length} logits do not make {n} rows of {classes} classes.");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be > 0.");
        double inv = 1 / temperature, sum = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.Slice(i * classes, classes);
            double max = double.NegativeInfinity;
            foreach (double v in row) max = Math.Max(max, v * inv);
            double s = 0;
            foreach (double v in row) s += Math.Exp(v * inv - max);
            sum += max + Math.Log(s) - row[truth[i]] * inv;
        }
        return n == 0 ? 0 : sum / n;
    }

    /// <summary>
    /// The temperature T ∈ [0.05, 20] minimising the mean NLL of softmax(logits / T): golden-section search on log T
    /// (the NLL is convex in 1/T, hence unimodal in log T), to a relative precision of about 1e-7.
    /// </summary>
    public static TemperatureFit FitTemperature(ReadOnlySpan<double> logits, int classes, ReadOnlySpan<int> truth)
    {
        if (truth.Length == 0) throw new ArgumentException("Fitting a temperature needs at least one example.");
        var z = logits.ToArray();
        var y = truth.ToArray();
        for (int i = 0; i < y.Length; i++)
            if ((uint)y[i] >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(truth), $"Label {y[i]} of example {i} is not one of {classes} classes.");
        double F(double logT) => NegativeLogLikelihood(z, classes, y, Math.Exp(logT));
        double a = Math.Log(0.05), b = Math.Log(20);
        double g = (Math.Sqrt(5) - 1) / 2;
        double c = b - g * (b - a), d = a + g * (b - a);
        double fc = F(c), fd = F(d);
        while (b - a > 1e-7)
        {
            if (fc <= fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = F(c); }
            else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = F(d); }
        }
        double t = Math.Exp((a + b) / 2);
        return new TemperatureFit(t, F(0), F(Math.Log(t)), y.Length);
    }

    /// <summary>Fits the temperature on probabilities (through their logarithms).</summary>
    public static TemperatureFit FitTemperature(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> truth)
    {
        Rows(probabilities, classes, truth);
        return FitTemperature(LogitsFromProbabilities(probabilities), classes, truth);
    }

    /// <summary>Fits the temperature on an evaluation that kept its probabilities (normally the validation set).</summary>
    public static TemperatureFit FitTemperature(EvalResult validation)
    {
        var (p, t, k) = Parts(validation);
        return FitTemperature(p, k, t);
    }

    /// <summary>softmax(log p / T) for each row of <paramref name="probabilities"/>.</summary>
    public static float[] Apply(ReadOnlySpan<float> probabilities, int classes, double temperature)
    {
        if (classes < 1 || probabilities.Length % classes != 0) throw new ArgumentException($"{probabilities.Length} probabilities do not divide into rows of {classes} classes.");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be > 0.");
        var z = LogitsFromProbabilities(probabilities);
        var result = new float[z.Length];
        double inv = 1 / temperature;
        for (int r = 0; r < z.Length; r += classes)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < classes; j++) max = Math.Max(max, z[r + j] * inv);
            double s = 0;
            for (int j = 0; j < classes; j++) s += z[r + j] = Math.Exp(z[r + j] * inv - max);
            for (int j = 0; j < classes; j++) result[r + j] = (float)(z[r + j] / s);
        }
        return result;
    }

    /// <summary>The evaluation with temperature-scaled probabilities (predictions and report are unchanged: T keeps every argmax).</summary>
    public static EvalResult Apply(EvalResult e, double temperature)
    {
        var (p, _, k) = Parts(e);
        return e with { Probabilities = Apply(p, k, temperature) };
    }

    private static (float[] Probabilities, int[] Truth, int Classes) Parts(EvalResult e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Probabilities is null || e.Truth is null)
            throw new ArgumentException("The evaluation kept no per-example probabilities (score it with the recipe's scorer).");
        return (e.Probabilities, e.Truth, e.Report.Labels.Count);
    }

    private static int Rows(ReadOnlySpan<float> probabilities, int classes, ReadOnlySpan<int> truth)
    {
        if (classes < 1 || probabilities.Length != truth.Length * classes)
            throw new ArgumentException($"{probabilities.Length} probabilities do not make {truth.Length} rows of {classes} classes.");
        return truth.Length;
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int arg = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[arg]) arg = j;
        return arg;
    }
}
