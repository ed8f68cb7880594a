namespace Whetstone.Tensors.Tests;

public class PadTests
{
    [Fact]
    public void Pad2dPlacesTheInputAndFillsTheBorder()
    {
        var x = Tensor.From([1f, 2, 3, 4, 5, 6], 1, 1, 2, 3);
        var y = x.Pad2d(top: 0, bottom: 1, left: 2, right: 1, value: -1);
        Assert.Equal([1, 1, 3, 6], y.Shape.ToArray());
        Assert.Equal([-1f, -1, 1, 2, 3, -1, -1, -1, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1], y.ToArray());
    }

    [Fact]
    public void Pad2dGradientIsTheInteriorOfTheOutputGradient()
    {
        // sizes all differ so a swapped axis cannot hide; asymmetric amounts as Keras' ZeroPadding2D((0, 1), (0, 1))
        GradCheck.Op(t => t[0].Pad2d(1, 2, 0, 3), [GradCheck.Random(5, 2, 3, 4, 5)]);
        GradCheck.Op(t => t[0].Pad2d(0, 1, 0, 1) * t[0].Pad2d(0, 1, 0, 1), [GradCheck.Random(6, 3, 7, 6)]);
    }

    [Fact]
    public void Pad2dRejectsNegativeAmounts() =>
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(1, 1, 2, 2).Pad2d(-1, 0, 0, 0));
}
