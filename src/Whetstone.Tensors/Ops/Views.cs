using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors;

// Views (reshape, permute, narrow, expand) share storage; concat, gather, masked fill and where copy.
public sealed partial class Tensor
{
    private Tensor View(int[] shape, int[] strides, int offset, string op, Action<Tensor> backward)
    {
        var y = new Tensor(Storage, offset, shape, strides);
        if (Graph.Needs(this)) Graph.Record(y, op, backward, this);
        return y;
    }

    /// <summary>Same elements, new shape (one axis may be -1). A view when contiguous, else a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var x = this;
        var target = Shapes.Infer(shape, Size);
        if (Shapes.Equal(target, Dims)) return this;
        if (!IsContiguous) x = Contiguous();
        return x.View(target, Shapes.ContiguousStrides(target), x.Offset, "reshape", g => AccumulateGrad(x, g.Reshape(x.Dims)));
    }

    public Tensor Flatten(int startAxis = 0)
    {
        startAxis = Shapes.Axis(startAxis, Rank);
        var shape = Dims[..startAxis].Append(-1).ToArray();
        return Reshape(shape);
    }

    public Tensor Unsqueeze(int axis)
    {
        axis = axis < 0 ? axis + Rank + 1 : axis;
        var s = Dims.ToList();
        s.Insert(axis, 1);
        return Reshape(s.ToArray());
    }

    public Tensor Squeeze(int axis)
    {
        axis = Shapes.Axis(axis, Rank);
        if (Dims[axis] != 1) throw new ArgumentException($"Cannot squeeze axis {axis} of size {Dims[axis]}.");
        var s = Dims.ToList();
        s.RemoveAt(axis);
        return Reshape(s.ToArray());
    }

    /// <summary>Reorders axes (a strided view).</summary>
    public Tensor Permute(params int[] perm)
    {
        if (perm.Length != Rank) throw new ArgumentException($"Permutation of length {perm.Length} for rank {Rank}.");
        var shape = new int[Rank];
        var strides = new int[Rank];
        var inverse = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int p = Shapes.Axis(perm[i], Rank);
            if (seen[p]) throw new ArgumentException($"Axis {p} repeats in permutation.");
            seen[p] = true;
            shape[i] = Dims[p];
            strides[i] = StrideArray[p];
            inverse[p] = i;
        }
        var x = this;
        return View(shape, strides, Offset, "permute", g => AccumulateGrad(x, g.Permute(inverse)));
    }

    public Tensor Transpose(int a0, int a1)
    {
        var perm = Enumerable.Range(0, Rank).ToArray();
        a0 = Shapes.Axis(a0, Rank); a1 = Shapes.Axis(a1, Rank);
        (perm[a0], perm[a1]) = (perm[a1], perm[a0]);
        return Permute(perm);
    }

    /// <summary>Swaps the last two axes.</summary>
    public Tensor T => Transpose(-2, -1);

    /// <summary>Elements [start, start+length) along <paramref name="axis"/> (a view).</summary>
    public Tensor Narrow(int axis, int start, int length)
    {
        axis = Shapes.Axis(axis, Rank);
        if (start < 0) start += Dims[axis];
        if (start < 0 || length < 0 || start + length > Dims[axis])
            throw new ArgumentOutOfRangeException(nameof(start), $"Narrow [{start}, {start + length}) is outside axis {axis} of size {Dims[axis]}.");
        var shape = (int[])Dims.Clone();
        shape[axis] = length;
        var x = this;
        return View(shape, StrideArray, Offset + start * StrideArray[axis], "narrow", g =>
        {
            var gx = x.GradBufferZeroed();
            Strided.AddIntoView(g.Contiguous().Span, gx.Narrow(axis, start, length));
        });
    }

    /// <summary>Python-style slice [start, end) along an axis (negative indices count from the end).</summary>
    public Tensor Slice(int axis, int start, int end)
    {
        int n = Dim(axis);
        if (start < 0) start += n;
        if (end < 0) end += n;
        return Narrow(axis, start, Math.Max(0, Math.Min(end, n) - start));
    }

    /// <summary>Index <paramref name="index"/> along <paramref name="axis"/>, dropping the axis.</summary>
    public Tensor Select(int axis, int index) => Narrow(axis, index, 1).Squeeze(axis);

    /// <summary>Broadcasts to <paramref name="shape"/> without copying (stride 0 on broadcast axes).</summary>
    public Tensor Expand(params int[] shape)
    {
        var strides = Shapes.BroadcastStrides(Dims, StrideArray, shape);
        var x = this;
        return View((int[])shape.Clone(), strides, Offset, "expand", g => AccumulateGrad(x, g));
    }

    /// <summary>This tensor if contiguous, else a row-major copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var y = Empty(Dims);
        Strided.Copy(this, y.Span);
        var x = this;
        if (Graph.Needs(x)) Graph.Record(y, "contiguous", g => AccumulateGrad(x, g), x);
        return y;
    }

    /// <summary>Joins tensors along an axis.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> parts, int axis)
    {
        if (parts.Count == 0) throw new ArgumentException("Concat of nothing.");
        var first = parts[0];
        axis = Shapes.Axis(axis, first.Rank);
        var shape = (int[])first.Dims.Clone();
        shape[axis] = 0;
        foreach (var p in parts)
        {
            if (p.Rank != first.Rank) throw new ArgumentException("Concat needs tensors of equal rank.");
            for (int i = 0; i < p.Rank; i++)
                if (i != axis && p.Dims[i] != first.Dims[i])
                    throw new ArgumentException($"Concat along axis {axis}: shapes {Shapes.Format(first.Dims)} and {Shapes.Format(p.Dims)} differ on axis {i}.");
            shape[axis] += p.Dims[axis];
        }
        var y = Empty(shape);
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        var ys = y.Span;
        int at = 0;
        foreach (var p in parts)
        {
            var ps = p.Contiguous().Span;
            int block = p.Dims[axis] * inner, row = shape[axis] * inner;
            for (int o = 0; o < outer; o++) ps.Slice(o * block, block).CopyTo(ys.Slice(o * row + at * inner, block));
            at += p.Dims[axis];
        }
        if (Graph.IsEnabled && parts.Any(p => p.RequiresGrad))
        {
            var inputs = parts.ToArray();
            Graph.Record(y, "concat", g =>
            {
                int start = 0;
                foreach (var p in inputs)
                {
                    if (p.RequiresGrad) AccumulateGrad(p, g.Narrow(axis, start, p.Dims[axis]));
                    start += p.Dims[axis];
                }
            }, inputs);
        }
        return y;
    }

    /// <summary>Picks entries along <paramref name="axis"/> by index (gather / index_select); backward scatter-adds.</summary>
    public Tensor IndexSelect(int axis, ReadOnlySpan<int> indices)
    {
        axis = Shapes.Axis(axis, Rank);
        var x = Contiguous();
        int n = Dims[axis];
        var idx = indices.ToArray();
        foreach (int i in idx)
            if ((uint)i >= (uint)n) throw new IndexOutOfRangeException($"Index {i} out of range for axis {axis} of size {n}.");
        var shape = (int[])Dims.Clone();
        shape[axis] = idx.Length;
        var y = Empty(shape);
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= Dims[i];
        for (int i = axis + 1; i < Rank; i++) inner *= Dims[i];
        var xs = x.Span; var ys = y.Span;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < idx.Length; j++)
                xs.Slice((o * n + idx[j]) * inner, inner).CopyTo(ys.Slice((o * idx.Length + j) * inner, inner));
        if (Graph.Needs(x))
            Graph.Record(y, "index_select", g =>
            {
                var gx = x.GradBufferZeroed().Span;
                var gs = g.Span;
                for (int o = 0; o < outer; o++)
                    for (int j = 0; j < idx.Length; j++)
                        Elementwise.AddInto(gs.Slice((o * idx.Length + j) * inner, inner), gx.Slice((o * n + idx[j]) * inner, inner));
            }, x);
        return y;
    }

    /// <summary>Where <paramref name="mask"/> (broadcastable) is non-zero the result is <paramref name="value"/>, elsewhere this tensor.</summary>
    public Tensor MaskedFill(Tensor mask, float value)
    {
        var shape = Shapes.Broadcast(Dims, mask.Dims);
        var x = Rank == shape.Length && Shapes.Equal(Dims, shape) ? Contiguous() : Expand(shape).Contiguous();
        var m = mask.Expand(shape).Contiguous().Span;
        var y = Empty(shape);
        var xs = x.Span; var ys = y.Span;
        for (int i = 0; i < ys.Length; i++) ys[i] = m[i] != 0 ? value : xs[i];
        if (Graph.Needs(x))
        {
            var keep = m.ToArray();
            Graph.Record(y, "masked_fill", g =>
            {
                var gx = x.GradBuffer(out bool fresh).Span;
                var gs = g.Span;
                for (int i = 0; i < gx.Length; i++)
                {
                    float v = keep[i] != 0 ? 0 : gs[i];
                    gx[i] = fresh ? v : gx[i] + v;
                }
            }, x);
        }
        return y;
    }

    /// <summary>Elementwise choice: <paramref name="condition"/> non-zero takes <paramref name="a"/>, else <paramref name="b"/> (all broadcast).</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        var shape = Shapes.Broadcast(Shapes.Broadcast(condition.Dims, a.Dims), b.Dims);
        var c = condition.Expand(shape).Contiguous().Span.ToArray();
        Tensor av, bv;
        using (Graph.NoGrad()) { av = a.Expand(shape).Contiguous(); bv = b.Expand(shape).Contiguous(); }
        var y = Empty(shape);
        var ys = y.Span; var aspan = av.Span; var bspan = bv.Span;
        for (int i = 0; i < ys.Length; i++) ys[i] = c[i] != 0 ? aspan[i] : bspan[i];
        if (Graph.Needs(a, b))
            Graph.Record(y, "where", g =>
            {
                using var _ = Graph.NoGrad();
                var gs = g.Span;
                if (a.RequiresGrad)
                {
                    var ga = Empty(shape); var s = ga.Span;
                    for (int i = 0; i < s.Length; i++) s[i] = c[i] != 0 ? gs[i] : 0;
                    AccumulateGrad(a, ga);
                }
                if (b.RequiresGrad)
                {
                    var gb = Empty(shape); var s = gb.Span;
                    for (int i = 0; i < s.Length; i++) s[i] = c[i] != 0 ? 0 : gs[i];
                    AccumulateGrad(b, gb);
                }
            }, a, b);
        return y;
    }
}
