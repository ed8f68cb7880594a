namespace Whetstone.Nn.Schedules;

/// <summary>
/// A learning-rate schedule as a pure function of the step: <see cref="Factor"/>(step) multiplies the peak learning
/// rate. <c>step</c> counts optimizer steps already taken, so the first update uses Factor(0) (as Hugging Face's
/// LambdaLR-based schedules and PyTorch's OneCycleLR). Typical use: <c>opt.LrFactor = schedule.Factor(opt.StepCount); opt.Step();</c>.
/// </summary>
public abstract class LrSchedule
{
    public abstract double Factor(long step);

    /// <summary>The learning rate at <paramref name="step"/> for peak learning rate <paramref name="peakLr"/>.</summary>
    public double Lr(long step, double peakLr) => peakLr * Factor(step);

    /// <summary>Linear ramp 0 → 1 over the warmup steps (step/warmup); 1 when there is no warmup.</summary>
    private protected static double Warmup(long step, long warmupSteps) => (double)step / Math.Max(1, warmupSteps);
}

/// <summary>1 throughout, after an optional linear warmup (HF get_constant_schedule[_with_warmup]).</summary>
public sealed class ConstantSchedule(long warmupSteps = 0) : LrSchedule
{
    public long WarmupSteps { get; } = warmupSteps;

    public override double Factor(long step) => step < WarmupSteps ? Warmup(step, WarmupSteps) : 1;
}

/// <summary>
/// Linear warmup to 1 over <c>warmupSteps</c>, then linear decay to <c>minRatio</c> at <c>totalSteps</c>, constant after
/// (HF get_linear_schedule_with_warmup when minRatio = 0: max(0, (total − step)/(total − warmup))).
/// </summary>
public sealed class LinearWarmupDecay : LrSchedule
{
    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public double MinRatio { get; }

    public LinearWarmupDecay(long warmupSteps, long totalSteps, double minRatio = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, warmupSteps);
        WarmupSteps = warmupSteps; TotalSteps = totalSteps; MinRatio = minRatio;
    }

    public override double Factor(long step)
    {
        if (step < WarmupSteps) return Warmup(step, WarmupSteps);
        double remaining = Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
        return MinRatio + (1 - MinRatio) * remaining;
    }
}

/// <summary>
/// Linear warmup, then half a cosine from 1 down to <c>minLrRatio</c> at <c>totalSteps</c>, constant after:
/// progress p = (step − warmup)/(total − warmup), factor = min + (1 − min)·½(1 + cos(π·p)).
/// With minLrRatio = 0 this is HF get_cosine_schedule_with_warmup (num_cycles = 0.5); otherwise HF's cosine_with_min_lr.
/// </summary>
public sealed class WarmupCosine : LrSchedule
{
    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public double MinLrRatio { get; }

    public WarmupCosine(long warmupSteps, long totalSteps, double minLrRatio = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, warmupSteps);
        if (minLrRatio is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(minLrRatio), "Must be in [0, 1].");
        WarmupSteps = warmupSteps; TotalSteps = totalSteps; MinLrRatio = minLrRatio;
    }

    public override double Factor(long step)
    {
        if (step < WarmupSteps) return Warmup(step, WarmupSteps);
        double p = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps));
        return MinLrRatio + (1 - MinLrRatio) * 0.5 * (1 + Math.Cos(Math.PI * p));
    }
}

/// <summary>
/// PyTorch OneCycleLR (two phases), as a factor of max_lr: from 1/divFactor up to 1 over the first
/// pctStart·total steps, then down to 1/(divFactor·finalDivFactor) at step total − 1, with cosine (default) or linear
/// annealing. Phase ends follow PyTorch exactly: phase 1 ends at step pctStart·total − 1, phase 2 at total − 1.
/// Steps beyond <c>totalSteps</c> throw, as PyTorch does. <see cref="Momentum"/> gives the matching cycled momentum (β1).
/// </summary>
public sealed class OneCycle : LrSchedule
{
    public long TotalSteps { get; }
    public double PctStart { get; }
    public double DivFactor { get; }
    public double FinalDivFactor { get; }
    public bool AnnealCos { get; }
    public double BaseMomentum { get; }
    public double MaxMomentum { get; }

    public OneCycle(long totalSteps, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4, bool annealCos = true,
        double baseMomentum = 0.85, double maxMomentum = 0.95)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalSteps);
        if (pctStart is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(pctStart), "Must be in [0, 1].");
        TotalSteps = totalSteps; PctStart = pctStart; DivFactor = divFactor; FinalDivFactor = finalDivFactor; AnnealCos = annealCos;
        BaseMomentum = baseMomentum; MaxMomentum = maxMomentum;
    }

    public double InitialFactor => 1 / DivFactor;
    public double MinFactor => InitialFactor / FinalDivFactor;

    public override double Factor(long step) => Phase(step, InitialFactor, 1, MinFactor);

    /// <summary>The cycled momentum: max → base during warm-up, base → max after (PyTorch cycle_momentum).</summary>
    public double Momentum(long step) => Phase(step, MaxMomentum, BaseMomentum, MaxMomentum);

    private double Phase(long step, double start, double peak, double end)
    {
        if (step < 0 || step > TotalSteps) throw new ArgumentOutOfRangeException(nameof(step), $"OneCycle is defined for steps 0…{TotalSteps}; got {step}.");
        double end1 = PctStart * TotalSteps - 1, end2 = TotalSteps - 1;
        if (step <= end1) return Anneal(start, peak, step / end1);
        return Anneal(peak, end, (step - end1) / (end2 - end1));
    }

    private double Anneal(double from, double to, double pct) =>
        AnnealCos ? to + (from - to) / 2 * (Math.Cos(Math.PI * pct) + 1) : (to - from) * pct + from;
}
