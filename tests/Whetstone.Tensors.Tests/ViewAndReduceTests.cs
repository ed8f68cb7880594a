namespace Whetstone.Tensors.Tests;

public class ViewAndReduceTests
{
    [Fact]
    public void PermuteIsAViewWithCorrectValues()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);
        var p = x.Permute(2, 0, 1);
        Assert.Equal([4, 2, 3], p.Shape.ToArray());
        Assert.False(p.IsContiguous);
        Assert.Equal(x[1, 2, 3], p[3, 1, 2]);
        Assert.Equal(x[0, 1, 2], p.Contiguous()[2, 0, 1]);
    }

    [Fact]
    public void ViewGradients()
    {
        GradCheck.Op(t => t[0].Permute(2, 0, 1).Narrow(0, 1, 2).Reshape(-1), [GradCheck.Random(1, 3, 5, 7)]);
        GradCheck.Op(t => t[0].Expand(4, 3, 5) * t[1], [GradCheck.Random(2, 3, 1), GradCheck.Random(3, 4, 3, 5)]);
        GradCheck.Op(t => Tensor.Concat([t[0], t[1].T], 1), [GradCheck.Random(4, 3, 2), GradCheck.Random(5, 5, 3)]);
        GradCheck.Op(t => t[0].IndexSelect(0, [2, 0, 2, 1]), [GradCheck.Random(6, 3, 5)]);
        GradCheck.Op(t => t[0].MaskedFill(Tensor.From([1f, 0, 0, 1, 0], 5), -3f), [GradCheck.Random(7, 2, 5)]);
        GradCheck.Op(t => Tensor.Where(Tensor.From([1f, 0, 1], 3), t[0], t[1]), [GradCheck.Random(8, 2, 3), GradCheck.Random(9, 3)]);
    }

    [Fact]
    public void ReductionsOverEveryAxis()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);
        Assert.Equal(276f, x.Sum().Item());
        Assert.Equal([12f, 15, 18, 21, 48, 51, 54, 57], x.Sum(1).ToArray());
        Assert.Equal([6f, 22, 38, 54, 70, 86], x.Sum(-1).ToArray());
        Assert.Equal([3f, 7, 11, 15, 19, 23], x.Max(2).ToArray());
        Assert.Equal([2, 2, 2, 2, 2, 2, 2, 2], x.ArgMax(1));
        Assert.Equal(1.6666666f, x.Var(-1).ToArray()[0], 5);
        Assert.Equal(11.5f, x.Mean().Item());
    }

    [Fact]
    public void ReductionGradients()
    {
        GradCheck.Op(t => t[0].Sum([0, 2], keepDim: true), [GradCheck.Random(1, 3, 5, 7)]);
        GradCheck.Op(t => t[0].Mean(1), [GradCheck.Random(2, 4, 6)]);
        GradCheck.Op(t => t[0].Var(0), [GradCheck.Random(3, 5, 3)]);
        GradCheck.Op(t => t[0].Max(1), [GradCheck.Random(4, 4, 6)]);
    }

    [Fact]
    public void MatMulWithTransposesAndBatches()
    {
        GradCheck.Op(t => Tensor.MatMul(t[0], t[1]), [GradCheck.Random(1, 13, 7), GradCheck.Random(2, 7, 5)]);
        GradCheck.Op(t => Tensor.MatMul(t[0].T, t[1].T), [GradCheck.Random(3, 7, 4), GradCheck.Random(4, 5, 7)]);
        GradCheck.Op(t => Tensor.MatMul(t[0], t[1]), [GradCheck.Random(5, 3, 4, 6), GradCheck.Random(6, 6, 5)]);
        GradCheck.Op(t => Tensor.MatMul(t[0], t[1].Transpose(1, 2)), [GradCheck.Random(7, 2, 4, 6), GradCheck.Random(8, 2, 5, 6)]);
        GradCheck.Op(t => Tensor.Linear(t[0], t[1], t[2]), [GradCheck.Random(9, 2, 3, 6), GradCheck.Random(10, 5, 6), GradCheck.Random(11, 5)]);
    }

    [Fact]
    public void ScopeReleasesAndPoolReuses()
    {
        float[] first;
        using (new Memory.TensorScope())
        {
            var t = Tensor.Zeros(1000);
            first = t.RawArray;
        }
        using (new Memory.TensorScope())
        {
            var t = Tensor.Zeros(1000);
            Assert.Same(first, t.RawArray);
        }
        Tensor escaped;
        using (new Memory.TensorScope()) escaped = Tensor.Zeros(10);
        Assert.Throws<ObjectDisposedException>(() => escaped.Sum());
    }
}
