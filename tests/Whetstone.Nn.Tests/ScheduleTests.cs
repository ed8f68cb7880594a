using Whetstone.Nn.Schedules;

namespace Whetstone.Nn.Tests;

public class ScheduleTests
{
    [Fact]
    public void Constant()
    {
        Assert.Equal(1, new ConstantSchedule().Factor(0));
        var w = new ConstantSchedule(4);
        Assert.Equal([0, 0.25, 0.5, 0.75, 1, 1], Enumerable.Range(0, 6).Select(s => w.Factor(s)));
    }

    [Fact]
    public void LinearWarmupThenLinearDecay()
    {
        var s = new LinearWarmupDecay(10, 100);
        Assert.Equal(0, s.Factor(0));
        Assert.Equal(0.5, s.Factor(5), 12);
        Assert.Equal(1, s.Factor(10), 12);
        Assert.Equal(0.5, s.Factor(55), 12);      // (100 − 55) / 90
        Assert.Equal(0.1, s.Factor(91), 12);
        Assert.Equal(0, s.Factor(100), 12);
        Assert.Equal(0, s.Factor(150), 12);
        Assert.Equal(0.02, s.Lr(55, 0.04), 12);
        var floor = new LinearWarmupDecay(0, 10, minRatio: 0.2);
        Assert.Equal(0.6, floor.Factor(5), 12);    // 0.2 + 0.8·0.5
        Assert.Equal(0.2, floor.Factor(20), 12);
    }

    [Fact]
    public void WarmupCosineWithMinRatio()
    {
        var s = new WarmupCosine(10, 110, minLrRatio: 0.1);
        Assert.Equal(0.3, s.Factor(3), 12);
        Assert.Equal(1, s.Factor(10), 12);
        Assert.Equal(0.1 + 0.9 * (0.5 + Math.Sqrt(2) / 4), s.Factor(35), 12);   // progress ¼: ½(1 + cos π/4)
        Assert.Equal(0.55, s.Factor(60), 12);                                   // progress ½
        Assert.Equal(0.1, s.Factor(110), 12);
        Assert.Equal(0.1, s.Factor(500), 12);
        Assert.Equal(0.5, new WarmupCosine(0, 100).Factor(50), 12);
    }

    [Fact]
    public void OneCycleFollowsPyTorchPhases()
    {
        // total 100, pct 0.3: phase 1 ends at step 29, phase 2 at step 99; initial 1/25, final 1/25/1e4.
        var s = new OneCycle(100);
        Assert.Equal(0.04, s.Factor(0), 12);
        // step 10: 1 + (0.04 − 1)/2·(cos(10π/29) + 1) (value also printed by torch OneCycleLR: 0.29516394846410077)
        Assert.Equal(0.29516394846410077, s.Factor(10), 12);
        Assert.Equal(1, s.Factor(29), 12);
        Assert.Equal(0.9994965352845243, s.Factor(30), 12);
        Assert.Equal(0.500002, s.Factor(64), 12);   // halfway down: min + (1 − min)/2
        Assert.Equal(4e-6, s.Factor(99), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Factor(101));
        Assert.Equal(0.95, s.Momentum(0), 12);
        Assert.Equal(0.85, s.Momentum(29), 12);
        Assert.Equal(0.9, s.Momentum(64), 12);
        Assert.Equal(0.95, s.Momentum(99), 12);
        var lin = new OneCycle(10, pctStart: 0.5, divFactor: 10, finalDivFactor: 10, annealCos: false);
        Assert.Equal(0.1, lin.Factor(0), 12);
        Assert.Equal(0.55, lin.Factor(2), 12);      // halfway from 0.1 to 1 over steps 0…4
        Assert.Equal(1, lin.Factor(4), 12);
        Assert.Equal(0.01, lin.Factor(9), 12);
    }
}
