using Whetstone.Training.Config;

namespace Whetstone.Training.Tuning;

/// <summary>Decides, after a trial's epoch, whether it should stop, from the other trials' values at that epoch.</summary>
public interface IPruner
{
    /// <param name="epoch">1-based epoch just validated.</param>
    /// <param name="value">This trial's metric at that epoch.</param>
    /// <param name="others">Every other trial of the study (any state) with its per-epoch values.</param>
    bool ShouldPrune(int epoch, double value, IEnumerable<TrialRecord> others);
}

public static class Pruners
{
    public static IPruner Create(SearchConfig search, Direction direction, string source)
    {
        ArgumentNullException.ThrowIfNull(search);
        return search.Pruner switch
        {
            "none" => new NoPruner(),
            "median" => search.WarmupEpochs >= 0 && search.MinTrials >= 1
                ? new MedianPruner(direction, search.WarmupEpochs, search.MinTrials)
                : throw new ConfigException($"{source}: search.warmup_epochs must be ≥ 0 and search.min_trials ≥ 1."),
            "asha" => search.MinResource >= 1 && search.ReductionFactor >= 2
                ? new AshaPruner(direction, search.MinResource, search.ReductionFactor)
                : throw new ConfigException($"{source}: search.min_resource must be ≥ 1 and search.reduction_factor ≥ 2 (got {search.MinResource}, {search.ReductionFactor})."),
            _ => throw new ConfigException($"{source}: search.pruner must be none, median or asha (got '{search.Pruner}')."),
        };
    }
}

public sealed class NoPruner : IPruner
{
    public bool ShouldPrune(int epoch, double value, IEnumerable<TrialRecord> others) => false;
}

/// <summary>
/// Stops a trial whose value at epoch e is strictly worse than the median of the other trials' values at e — once
/// e &gt; warm-up and at least <c>minTrials</c> other trials reported at e.
/// </summary>
public sealed class MedianPruner(Direction direction, int warmupEpochs, int minTrials) : IPruner
{
    public bool ShouldPrune(int epoch, double value, IEnumerable<TrialRecord> others)
    {
        if (epoch <= warmupEpochs) return false;
        var at = others.Where(t => t.Intermediate.ContainsKey(epoch)).Select(t => t.Intermediate[epoch]).Order().ToArray();
        if (at.Length < minTrials) return false;
        double median = at.Length % 2 == 1 ? at[at.Length / 2] : (at[at.Length / 2 - 1] + at[at.Length / 2]) / 2;
        return direction.Better(median, value);
    }
}

/// <summary>
/// Asynchronous successive halving. Rungs sit at epochs r·η^k (r = min_resource). At a rung, with n trials having
/// reported there (this one included), a trial continues when fewer than max(1, ⌊n/η⌋) of the others are strictly
/// better; otherwise it stops. Epochs between rungs never stop a trial. Decisions use whatever has reached the rung so
/// far, so no trial waits for another.
/// </summary>
public sealed class AshaPruner(Direction direction, int minResource, int reductionFactor) : IPruner
{
    /// <summary>Whether <paramref name="epoch"/> is a rung.</summary>
    public bool IsRung(int epoch)
    {
        for (long r = minResource; r <= epoch; r *= reductionFactor)
            if (r == epoch) return true;
        return false;
    }

    public bool ShouldPrune(int epoch, double value, IEnumerable<TrialRecord> others)
    {
        if (!IsRung(epoch)) return false;
        var at = others.Where(t => t.Intermediate.ContainsKey(epoch)).Select(t => t.Intermediate[epoch]).ToArray();
        int n = at.Length + 1;
        int keep = Math.Max(1, n / reductionFactor);
        int better = at.Count(v => direction.Better(v, value));
        return better >= keep;
    }
}
