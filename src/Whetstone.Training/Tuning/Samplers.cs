using System.Globalization;
using Whetstone.Training.Config;

namespace Whetstone.Training.Tuning;

/// <summary>
/// Chooses the next trial's parameters from the study's history. Draws are seeded by (seed, trial number), so a study
/// replays the same way whichever process claims a trial. Returns null when the space is exhausted (grid).
/// </summary>
public interface ISampler
{
    IReadOnlyDictionary<string, string?>? Sample(IReadOnlyList<TrialRecord> history, int number);
}

public static class Samplers
{
    public static ISampler Create(SearchConfig search, SearchSpace space, TrainConfig baseConfig, Direction direction, ulong seed, string source)
    {
        ArgumentNullException.ThrowIfNull(search);
        return search.Sampler switch
        {
            "grid" => new GridSampler(space, baseConfig, source),
            "random" => new RandomSampler(space, baseConfig, seed),
            "tpe" => new TpeSampler(space, baseConfig, direction, seed, search.StartupTrials, search.Gamma, search.Candidates),
            _ => throw new ConfigException($"{source}: search.sampler must be grid, random or tpe (got '{search.Sampler}')."),
        };
    }

    internal static Random RngFor(ulong seed, int number, int salt = 0) =>
        new((int)((seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)number * 0xC2B2AE3D27D4EB4FUL ^ (ulong)(uint)salt * 0x165667B19E3779F9UL) >> 33));

    internal static string Uniform(Distribution d, Random rng) => d.Kind switch
    {
        DistributionKind.Choice => d.Choices[rng.Next(d.Choices.Count)]!,
        DistributionKind.Int => Distribution.Format(d.Low + rng.Next((int)(d.High - d.Low) + 1)),
        DistributionKind.LogUniform => Distribution.Format(Math.Exp(Math.Log(d.Low) + rng.NextDouble() * (Math.Log(d.High) - Math.Log(d.Low)))),
        _ => Distribution.Format(d.Low + rng.NextDouble() * (d.High - d.Low)),
    };

    internal static string Signature(IReadOnlyDictionary<string, string?> p) =>
        string.Join("\n", p.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + (kv.Value ?? "\0")));
}

/// <summary>Every combination of the int and choice keys, in order (the first key varies slowest); each point once.</summary>
public sealed class GridSampler : ISampler
{
    private readonly List<Dictionary<string, string?>> _points = [];

    public GridSampler(SearchSpace space, TrainConfig baseConfig, string source)
    {
        ArgumentNullException.ThrowIfNull(space);
        foreach (var d in space.Parameters)
            if (d.GridSize == 0) throw new ConfigException($"{source}: search.sampler grid needs int() or choice() for every key; '{d.Key}' is {d.Kind.ToString().ToLowerInvariant()}.");
        var seen = new HashSet<string>();
        var index = new int[space.Parameters.Count];
        long total = space.Parameters.Aggregate(1L, (a, d) => a * d.GridSize);
        if (total > 1_000_000) throw new ConfigException($"{source}: the grid has {total:N0} points; narrow it or use random/tpe.");
        for (long i = 0; i < total; i++)
        {
            var point = new Dictionary<string, string?>();
            for (int k = 0; k < index.Length; k++)
            {
                var d = space.Parameters[k];
                if (!space.IsActive(d, point, baseConfig)) continue;
                point[d.Key] = d.Kind == DistributionKind.Choice ? d.Choices[index[k]] : Distribution.Format(d.Low + index[k]);
            }
            if (seen.Add(Samplers.Signature(point))) _points.Add(point);
            for (int k = index.Length - 1; k >= 0; k--)
            {
                if (++index[k] < space.Parameters[k].GridSize) break;
                index[k] = 0;
            }
        }
    }

    public int Size => _points.Count;

    public IReadOnlyDictionary<string, string?>? Sample(IReadOnlyList<TrialRecord> history, int number)
    {
        var taken = history.Select(t => Samplers.Signature(t.Params)).ToHashSet();
        return _points.FirstOrDefault(p => !taken.Contains(Samplers.Signature(p)));
    }
}

/// <summary>Independent uniform draws (log-uniform for loguniform), seeded by (seed, trial number).</summary>
public sealed class RandomSampler(SearchSpace space, TrainConfig baseConfig, ulong seed) : ISampler
{
    public IReadOnlyDictionary<string, string?>? Sample(IReadOnlyList<TrialRecord> history, int number)
    {
        var rng = Samplers.RngFor(seed, number);
        var p = new Dictionary<string, string?>();
        foreach (var d in space.Parameters)
        {
            var v = Samplers.Uniform(d, rng);   // drawn even when inactive: the other keys' draws do not depend on conditions
            if (space.IsActive(d, p, baseConfig)) p[d.Key] = v;
        }
        return p;
    }
}

/// <summary>
/// Tree-structured Parzen estimator, one key at a time (keys sampled in order, so conditions see earlier choices).
/// Finished trials are ranked (complete ones by value, then pruned ones by how far they got and their last value);
/// the best ⌈γ·n⌉ are "good", the rest "bad". For each key a density l(x) is fitted to the good values and g(x) to the
/// bad ones — truncated Gaussian mixtures over the range (in log space for loguniform, the int range widened by ½ on
/// each side) with one broad prior component, or category frequencies plus one pseudo-count per category — and the
/// candidate with the largest l(x)/g(x) among <c>candidates</c> draws from l wins. The first <c>startup</c> trials are random.
/// </summary>
public sealed class TpeSampler(SearchSpace space, TrainConfig baseConfig, Direction direction, ulong seed, int startup, double gamma, int candidates) : ISampler
{
    public IReadOnlyDictionary<string, string?>? Sample(IReadOnlyList<TrialRecord> history, int number)
    {
        ArgumentNullException.ThrowIfNull(history);
        var finished = history.Where(t => t.State == TrialState.Complete && t.Value is not null || t.State == TrialState.Pruned && t.Intermediate.Count > 0).ToList();
        if (finished.Count < Math.Max(1, startup)) return new RandomSampler(space, baseConfig, seed).Sample(history, number);
        var ranked = Rank(finished);
        int nGood = Math.Max(1, (int)Math.Ceiling(gamma * ranked.Count));
        var good = ranked.Take(nGood).ToList();
        var bad = ranked.Skip(nGood).ToList();
        var p = new Dictionary<string, string?>();
        for (int k = 0; k < space.Parameters.Count; k++)
        {
            var d = space.Parameters[k];
            if (!space.IsActive(d, p, baseConfig)) continue;
            var rng = Samplers.RngFor(seed, number, k + 1);
            var g = good.Where(t => t.Params.ContainsKey(d.Key)).Select(t => t.Params[d.Key]).ToList();
            var b = bad.Where(t => t.Params.ContainsKey(d.Key)).Select(t => t.Params[d.Key]).ToList();
            p[d.Key] = d.Kind == DistributionKind.Choice ? Categorical(d, g, b, rng) : Numeric(d, g, b, rng);
        }
        return p;
    }

    private List<TrialRecord> Rank(List<TrialRecord> finished)
    {
        double Sign(double v) => direction.Maximize ? -v : v;   // ascending = best first
        return finished
            .OrderBy(t => t.State == TrialState.Complete ? 0 : 1)
            .ThenBy(t => t.State == TrialState.Complete ? 0 : -t.EpochsRun)
            .ThenBy(t => Sign(t.State == TrialState.Complete ? t.Value!.Value : t.Intermediate[t.EpochsRun]))
            .ThenBy(t => t.Number)
            .ToList();
    }

    private string? Categorical(Distribution d, List<string?> good, List<string?> bad, Random rng)
    {
        int k = d.Choices.Count;
        double[] Weights(List<string?> obs)
        {
            var w = Enumerable.Repeat(1.0, k).ToArray();   // one pseudo-count per category
            foreach (var o in obs) { int i = IndexOf(d, o); if (i >= 0) w[i] += 1; }
            double s = w.Sum();
            return w.Select(x => x / s).ToArray();
        }
        var l = Weights(good);
        var g = Weights(bad);
        int best = -1;
        double bestScore = double.NegativeInfinity;
        for (int c = 0; c < Math.Max(1, candidates); c++)
        {
            double u = rng.NextDouble(), acc = 0;
            int i = 0;
            for (; i < k - 1; i++) { acc += l[i]; if (u < acc) break; }
            double score = Math.Log(l[i]) - Math.Log(g[i]);
            if (score > bestScore) { bestScore = score; best = i; }
        }
        return d.Choices[best];
    }

    private static int IndexOf(Distribution d, string? v)
    {
        for (int i = 0; i < d.Choices.Count; i++) if (d.Choices[i] == v) return i;
        return -1;
    }

    private string Numeric(Distribution d, List<string?> good, List<string?> bad, Random rng)
    {
        bool log = d.Kind == DistributionKind.LogUniform;
        double lo = log ? Math.Log(d.Low) : d.Kind == DistributionKind.Int ? d.Low - 0.5 : d.Low;
        double hi = log ? Math.Log(d.High) : d.Kind == DistributionKind.Int ? d.High + 0.5 : d.High;
        double ToInternal(string? s)
        {
            double v = double.Parse(s!, NumberStyles.Float, CultureInfo.InvariantCulture);
            return log ? Math.Log(v) : v;
        }
        var l = new Parzen(good.Select(ToInternal), lo, hi);
        var g = new Parzen(bad.Select(ToInternal), lo, hi);
        double bestX = double.NaN, bestScore = double.NegativeInfinity;
        for (int c = 0; c < Math.Max(1, candidates); c++)
        {
            double x = l.Draw(rng);
            if (d.Kind == DistributionKind.Int) x = Math.Clamp(Math.Round(x), d.Low, d.High);
            double score = l.LogDensity(x) - g.LogDensity(x);
            if (score > bestScore) { bestScore = score; bestX = x; }
        }
        return Distribution.Format(log ? Math.Clamp(Math.Exp(bestX), d.Low, d.High) : bestX);
    }

    /// <summary>A mixture of Gaussians truncated to [lo, hi]: one per observation plus a prior centred on the range.</summary>
    internal sealed class Parzen
    {
        private readonly double[] _mu, _sigma;
        private readonly double _lo, _hi;

        public Parzen(IEnumerable<double> observations, double lo, double hi)
        {
            _lo = lo;
            _hi = hi;
            double range = hi - lo;
            var obs = observations.Select(x => Math.Clamp(x, lo, hi)).ToList();
            var mus = obs.Append((lo + hi) / 2).ToArray();
            var order = Enumerable.Range(0, mus.Length).OrderBy(i => mus[i]).ToArray();
            var sigma = new double[mus.Length];
            double minSigma = range / Math.Min(100.0, 1 + obs.Count);
            for (int r = 0; r < order.Length; r++)
            {
                int i = order[r];
                double left = r == 0 ? mus[i] - lo : mus[i] - mus[order[r - 1]];
                double right = r == order.Length - 1 ? hi - mus[i] : mus[order[r + 1]] - mus[i];
                sigma[i] = Math.Clamp(Math.Max(left, right), minSigma, range);
            }
            sigma[^1] = range;   // the prior is broad
            _mu = mus;
            _sigma = sigma;
        }

        public double Draw(Random rng)
        {
            int i = rng.Next(_mu.Length);
            for (int tries = 0; tries < 100; tries++)
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                double x = _mu[i] + _sigma[i] * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                if (x >= _lo && x <= _hi) return x;
            }
            return Math.Clamp(_mu[i], _lo, _hi);
        }

        public double LogDensity(double x)
        {
            double sum = 0;
            for (int i = 0; i < _mu.Length; i++)
            {
                double z = (x - _mu[i]) / _sigma[i];
                double mass = Phi((_hi - _mu[i]) / _sigma[i]) - Phi((_lo - _mu[i]) / _sigma[i]);
                sum += Math.Exp(-0.5 * z * z) / (Math.Sqrt(2 * Math.PI) * _sigma[i] * Math.Max(mass, 1e-12));
            }
            return Math.Log(Math.Max(sum / _mu.Length, 1e-300));
        }

        private static double Phi(double z) => 0.5 * (1 + Erf(z / Math.Sqrt(2)));

        /// <summary>erf to ~1e-7 (Abramowitz &amp; Stegun 7.1.26).</summary>
        private static double Erf(double x)
        {
            double s = Math.Sign(x);
            x = Math.Abs(x);
            double t = 1 / (1 + 0.3275911 * x);
            double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
            return s * y;
        }
    }
}
