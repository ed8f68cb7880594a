using Whetstone.Tensors.Autograd;

namespace Whetstone.Tensors;

// Reductions over any axes.
public sealed partial class Tensor
{
    private (int outer, int r, int inner) Split(int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= Dims[i];
        for (int i = axis + 1; i < Rank; i++) inner *= Dims[i];
        return (outer, Dims[axis], inner);
    }

    private static int[] KeepShape(int[] dims, int axis) { var s = (int[])dims.Clone(); s[axis] = 1; return s; }

    private static int[] DropShape(int[] dims, IEnumerable<int> axes)
    {
        var drop = new HashSet<int>(axes);
        return dims.Where((_, i) => !drop.Contains(i)).ToArray();
    }

    /// <summary>Sum of all elements.</summary>
    public Tensor Sum() => Rank == 0 ? this : Sum(Enumerable.Range(0, Rank).ToArray(), keepDim: false);

    public Tensor Sum(int axis, bool keepDim = false) => Sum([axis], keepDim);

    public Tensor Sum(int[] axes, bool keepDim = false)
    {
        var norm = axes.Select(a => Shapes.Axis(a, Rank)).Distinct().OrderByDescending(a => a).ToArray();
        var x = this;
        var cur = Contiguous();
        var keepShape = (int[])Dims.Clone();
        using (Graph.NoGrad())
        {
            foreach (int a in norm)
            {
                var (outer, r, inner) = cur.Split(a);
                var y = Empty(KeepShape(cur.Dims, a));
                Kernels.Reduce.Sum<float>(cur.Span, y.Span, outer, r, inner);
                cur = y;
                keepShape[a] = 1;
            }
        }
        var result = new Tensor(cur.Storage, cur.Offset, keepDim ? keepShape : DropShape(Dims, norm), Shapes.ContiguousStrides(keepDim ? keepShape : DropShape(Dims, norm)));
        if (Graph.Needs(x))
            Graph.Record(result, "sum", g => AccumulateGrad(x, g.Reshape(keepShape).Expand(x.Dims)), x);
        return result;
    }

    public Tensor Mean() => Sum() * (1f / Math.Max(Size, 1));

    public Tensor Mean(int axis, bool keepDim = false) => Mean([axis], keepDim);

    public Tensor Mean(int[] axes, bool keepDim = false)
    {
        int count = 1;
        foreach (int a in axes.Select(a => Shapes.Axis(a, Rank)).Distinct()) count *= Dims[a];
        return Sum(axes, keepDim) * (1f / Math.Max(count, 1));
    }

    /// <summary>Variance along an axis (Bessel-corrected unless <paramref name="unbiased"/> is false).</summary>
    public Tensor Var(int axis, bool unbiased = true, bool keepDim = false)
    {
        int n = Dim(axis);
        var centered = this - Mean(axis, keepDim: true);
        return centered.Square().Sum(axis, keepDim) * (1f / Math.Max(unbiased ? n - 1 : n, 1));
    }

    /// <summary>Maximum along an axis; the gradient flows to the first maximal element.</summary>
    public Tensor Max(int axis, bool keepDim = false) => MaxWithIndex(axis, keepDim).values;

    /// <summary>Maximum of all elements.</summary>
    public Tensor Max() => Reshape(-1).Max(0);

    /// <summary>Index of the maximum along an axis.</summary>
    public int[] ArgMax(int axis) => MaxWithIndex(axis, false).indices;

    public (Tensor values, int[] indices) MaxWithIndex(int axis, bool keepDim = false)
    {
        axis = Shapes.Axis(axis, Rank);
        if (Dims[axis] == 0) throw new ArgumentException("Max over an empty axis.");
        var x = Contiguous();
        var (outer, r, inner) = Split(axis);
        var shape = keepDim ? KeepShape(Dims, axis) : DropShape(Dims, [axis]);
        var y = Empty(shape);
        var arg = new int[outer * inner];
        Kernels.Reduce.Max<float>(x.Span, y.Span, arg, outer, r, inner);
        if (Graph.Needs(x))
            Graph.Record(y, "max", g =>
            {
                var gx = x.GradBufferZeroed().Span;
                var gs = g.Contiguous().Span;
                for (int o = 0; o < outer; o++)
                    for (int i = 0; i < inner; i++)
                        gx[(o * r + arg[o * inner + i]) * inner + i] += gs[o * inner + i];
            }, x);
        return (y, arg);
    }
}
