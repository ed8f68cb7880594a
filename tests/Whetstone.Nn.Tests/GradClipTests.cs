using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

public class GradClipTests
{
    [Fact]
    public void ClipsToMaxNormAndReturnsPreClipNorm()
    {
        var a = TestUtil.Param([0f, 0f]);
        var b = TestUtil.Param([0f, 0f, 0f]);
        var c = TestUtil.Param([1f]);                 // no gradient: ignored
        TestUtil.SetGrad(a, [3f, 0f]);
        TestUtil.SetGrad(b, [0f, 4f, 0f]);
        double norm = GradClip.ClipGradNorm([a, b, c], 1.0);
        Assert.Equal(5.0, norm, 12);
        double coef = 1.0 / (5.0 + 1e-6);
        TestUtil.AssertClose(3 * coef, a.Grad!.ToArray()[0]);
        TestUtil.AssertClose(4 * coef, b.Grad!.ToArray()[1]);
        Assert.Equal(1.0, GradClip.GlobalNorm([a, b]), 5);
        // below the limit: unchanged
        Assert.Equal(1.0, GradClip.ClipGradNorm([a, b], 10), 5);
        TestUtil.AssertClose(3 * coef, a.Grad!.ToArray()[0]);
    }

    [Fact]
    public void NormAccumulatesInDouble()
    {
        var n = 1_000_003;
        var p = Init.Parameter(n);
        var g = Enumerable.Repeat(1e-3f, n).ToArray();
        g[5] = 3f;
        TestUtil.SetGrad(p, g);
        double expected = Math.Sqrt((n - 1) * (double)1e-3f * 1e-3f + 9);
        Assert.Equal(expected, GradClip.GlobalNorm([p]), 10);
    }

    [Fact]
    public void NonFiniteNormLeavesGradientsOrThrows()
    {
        var p = TestUtil.Param([0f, 0f]);
        TestUtil.SetGrad(p, [float.PositiveInfinity, 1f]);
        Assert.True(double.IsInfinity(GradClip.ClipGradNorm([p], 1)));
        Assert.Equal(1f, p.Grad!.ToArray()[1]);
        Assert.Throws<InvalidOperationException>(() => GradClip.ClipGradNorm([p], 1, errorIfNonFinite: true));
    }

    [Fact]
    public void ClipByValue()
    {
        var p = TestUtil.Param([0f, 0f, 0f]);
        TestUtil.SetGrad(p, [-3f, 0.5f, 7f]);
        GradClip.ClipGradValue([p], 1f);
        Assert.Equal([-1f, 0.5f, 1f], p.Grad!.ToArray());
    }
}
