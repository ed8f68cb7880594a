namespace Whetstone.Tensors;

/// <summary>Shape arithmetic: sizes, strides, broadcasting, axis normalisation.</summary>
public static class Shapes
{
    public static int Size(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape {Format(shape)}.");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"Shape {Format(shape)} has more than 2^31 elements.");
        return (int)n;
    }

    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    public static bool IsContiguous(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] != 1 && strides[i] != acc) return false;
            acc *= shape[i];
        }
        return true;
    }

    public static int Axis(int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ArgumentOutOfRangeException(nameof(axis), $"Axis {axis} is out of range for rank {rank}.");
        return a;
    }

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    internal static int FlatIndex(ReadOnlySpan<int> index, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        if (index.Length != shape.Length) throw new ArgumentException($"Index of rank {index.Length} for a tensor of rank {shape.Length}.");
        int off = 0;
        for (int i = 0; i < index.Length; i++)
        {
            int ix = index[i] < 0 ? index[i] + shape[i] : index[i];
            if ((uint)ix >= (uint)shape[i]) throw new IndexOutOfRangeException($"Index {index[i]} out of range for axis {i} of size {shape[i]}.");
            off += ix * strides[i];
        }
        return off;
    }

    /// <summary>NumPy broadcasting of two shapes.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"Shapes {Format(a)} and {Format(b)} cannot be broadcast together (axis {i}: {da} vs {db}).");
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides that read a tensor of <paramref name="shape"/>/<paramref name="strides"/> as if it had <paramref name="target"/> shape (0 on broadcast axes).</summary>
    internal static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> target)
    {
        var r = new int[target.Length];
        int lead = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            if (i < lead) { r[i] = 0; continue; }
            int d = shape[i - lead];
            if (d == target[i]) r[i] = strides[i - lead];
            else if (d == 1) r[i] = 0;
            else throw new ArgumentException($"Shape {Format(shape)} cannot be broadcast to {Format(target)}.");
        }
        return r;
    }

    /// <summary>Resolves one -1 in a reshape target.</summary>
    internal static int[] Infer(ReadOnlySpan<int> shape, int size)
    {
        var r = shape.ToArray();
        int unknown = -1, known = 1;
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] == -1)
            {
                if (unknown >= 0) throw new ArgumentException($"Reshape target {Format(shape)} has more than one -1.");
                unknown = i;
            }
            else known *= r[i];
        }
        if (unknown >= 0)
        {
            if (known == 0 || size % known != 0) throw new ArgumentException($"Cannot reshape {size} elements to {Format(shape)}.");
            r[unknown] = size / known;
        }
        if (Size(r) != size) throw new ArgumentException($"Cannot reshape {size} elements to {Format(shape)}.");
        return r;
    }
}
