using System.Numerics.Tensors;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Loops over strided views. The last axis is the inner loop; outer axes are walked with an index counter.
/// Used for copies out of views, for adding gradients back into views, and for broadcasting binary ops.
/// </summary>
internal static class Strided
{
    /// <summary>Walks the rows (all axes but the last) of a shape, tracking two strided offsets.</summary>
    internal ref struct Rows
    {
        private readonly ReadOnlySpan<int> _shape, _sa, _sb;
        private readonly Span<int> _idx;
        private readonly int _rows;
        public int Row, A, B;

        public Rows(ReadOnlySpan<int> shape, ReadOnlySpan<int> sa, ReadOnlySpan<int> sb, Span<int> scratch)
        {
            _shape = shape; _sa = sa; _sb = sb; _idx = scratch[..shape.Length]; _idx.Clear();
            int rows = 1;
            for (int i = 0; i < shape.Length - 1; i++) rows *= shape[i];
            if (shape.Length > 0 && shape[^1] == 0) rows = 0;
            _rows = rows;
            Row = -1; A = 0; B = 0;
        }

        public bool MoveNext()
        {
            if (Row >= 0)
            {
                for (int d = _shape.Length - 2; d >= 0; d--)
                {
                    _idx[d]++; A += _sa[d]; B += _sb[d];
                    if (_idx[d] < _shape[d]) break;
                    A -= _sa[d] * _shape[d]; B -= _sb[d] * _shape[d]; _idx[d] = 0;
                }
            }
            return ++Row < _rows;
        }
    }

    /// <summary>Row-major copy of a (possibly strided) tensor into <paramref name="dst"/>.</summary>
    public static void Copy(Tensor src, Span<float> dst)
    {
        if (src.IsContiguous) { src.Span.CopyTo(dst); return; }
        CopyView(src.RawArray, src.Offset, src.Dims, src.StrideArray, dst);
    }

    public static void CopyView(float[] a, int offset, int[] shape, int[] strides, Span<float> dst)
    {
        int rank = shape.Length;
        int inner = rank == 0 ? 1 : shape[rank - 1];
        int si = rank == 0 ? 1 : strides[rank - 1];
        unsafe
        {
            fixed (float* pd = dst)
            fixed (float* ps = a)
            {
                var rows = new Rows(shape, strides, strides, stackalloc int[Math.Max(rank, 1)]);
                while (rows.MoveNext())
                {
                    float* o = pd + (long)rows.Row * inner;
                    float* s = ps + offset + rows.A;
                    if (si == 1) new ReadOnlySpan<float>(s, inner).CopyTo(new Span<float>(o, inner));
                    else for (int j = 0; j < inner; j++) o[j] = s[(long)j * si];
                }
            }
        }
    }

    /// <summary>view += src, where <paramref name="src"/> is contiguous with the view's shape.</summary>
    public static void AddIntoView(ReadOnlySpan<float> src, Tensor view)
    {
        if (view.IsContiguous) { TensorPrimitives.Add(view.Span, src, view.Span); return; }
        int rank = view.Rank;
        int inner = view.Dims[rank - 1];
        int si = view.StrideArray[rank - 1];
        unsafe
        {
            fixed (float* ps = src)
            fixed (float* pv = view.RawArray)
            {
                var rows = new Rows(view.Dims, view.StrideArray, view.StrideArray, stackalloc int[rank]);
                while (rows.MoveNext())
                {
                    float* s = ps + (long)rows.Row * inner;
                    float* o = pv + view.Offset + rows.A;
                    if (si == 1) TensorPrimitives.Add(new ReadOnlySpan<float>(o, inner), new ReadOnlySpan<float>(s, inner), new Span<float>(o, inner));
                    else for (int j = 0; j < inner; j++) o[(long)j * si] += s[j];
                }
            }
        }
    }

    /// <summary>
    /// out = op(a, b) with broadcasting. <paramref name="sa"/>/<paramref name="sb"/> are the inputs' strides
    /// broadcast to the output shape (0 on broadcast axes); out is contiguous.
    /// </summary>
    public static unsafe void Binary<TOp>(float* a, int[] sa, float* b, int[] sb, float* o, int[] shape)
        where TOp : IBinaryOp
    {
        int rank = shape.Length;
        int inner = rank == 0 ? 1 : shape[rank - 1];
        int ia = rank == 0 ? 1 : sa[rank - 1], ib = rank == 0 ? 1 : sb[rank - 1];
        var rows = new Rows(shape, sa, sb, stackalloc int[Math.Max(rank, 1)]);
        while (rows.MoveNext())
        {
            float* pa = a + rows.A, pb = b + rows.B, po = o + (long)rows.Row * inner;
            var dst = new Span<float>(po, inner);
            if (ia == 1 && ib == 1) TOp.Apply(new ReadOnlySpan<float>(pa, inner), new ReadOnlySpan<float>(pb, inner), dst);
            else if (ia == 1 && ib == 0) TOp.Apply(new ReadOnlySpan<float>(pa, inner), *pb, dst);
            else if (ia == 0 && ib == 1) TOp.Apply(*pa, new ReadOnlySpan<float>(pb, inner), dst);
            else for (int j = 0; j < inner; j++) po[j] = TOp.Apply(pa[(long)j * ia], pb[(long)j * ib]);
        }
    }
}

internal interface IBinaryOp
{
    static abstract float Apply(float a, float b);
    static abstract void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o);
    static abstract void Apply(ReadOnlySpan<float> a, float b, Span<float> o);
    static abstract void Apply(float a, ReadOnlySpan<float> b, Span<float> o);
}

internal struct AddOp : IBinaryOp
{
    public static float Apply(float a, float b) => a + b;
    public static void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Add(a, b, o);
    public static void Apply(ReadOnlySpan<float> a, float b, Span<float> o) => TensorPrimitives.Add(a, b, o);
    public static void Apply(float a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Add(b, a, o);
}

internal struct SubOp : IBinaryOp
{
    public static float Apply(float a, float b) => a - b;
    public static void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Subtract(a, b, o);
    public static void Apply(ReadOnlySpan<float> a, float b, Span<float> o) => TensorPrimitives.Subtract(a, b, o);
    public static void Apply(float a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Subtract(a, b, o);
}

internal struct MulOp : IBinaryOp
{
    public static float Apply(float a, float b) => a * b;
    public static void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Multiply(a, b, o);
    public static void Apply(ReadOnlySpan<float> a, float b, Span<float> o) => TensorPrimitives.Multiply(a, b, o);
    public static void Apply(float a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Multiply(b, a, o);
}

internal struct DivOp : IBinaryOp
{
    public static float Apply(float a, float b) => a / b;
    public static void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Divide(a, b, o);
    public static void Apply(ReadOnlySpan<float> a, float b, Span<float> o) => TensorPrimitives.Divide(a, b, o);
    public static void Apply(float a, ReadOnlySpan<float> b, Span<float> o) => TensorPrimitives.Divide(a, b, o);
}
