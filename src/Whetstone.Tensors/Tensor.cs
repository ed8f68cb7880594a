using System.Runtime.CompilerServices;
using System.Text;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors;

/// <summary>
/// An n-dimensional float32 array: a storage plus offset, shape and strides (views share storage), and the
/// autograd state (whether it needs a gradient, its gradient, and the node that made it).
/// Allocations inside a <see cref="TensorScope"/> are pooled and released with the scope.
/// </summary>
public sealed partial class Tensor
{
    internal readonly Storage Storage;
    internal readonly int Offset;
    internal readonly int[] Dims;
    internal readonly int[] StrideArray;

    /// <summary>Optional name (parameters carry their dotted checkpoint key here).</summary>
    public string? Name { get; set; }

    internal Tensor(Storage storage, int offset, int[] shape, int[] strides)
    {
        Storage = storage;
        Offset = offset;
        Dims = shape;
        StrideArray = strides;
    }

    internal Tensor(int[] shape, bool persistent = false)
    {
        int n = Shapes.Size(shape);
        var scope = persistent ? null : TensorScope.Current;
        Storage = new Storage(n, pooled: scope is not null);
        scope?.Add(Storage);
        Dims = shape;
        StrideArray = Shapes.ContiguousStrides(shape);
    }

    public ReadOnlySpan<int> Shape => Dims;
    public ReadOnlySpan<int> Strides => StrideArray;
    public int Rank => Dims.Length;
    public int Size => Shapes.Size(Dims);
    public int Dim(int axis) => Dims[Shapes.Axis(axis, Dims.Length)];

    public bool IsContiguous => Shapes.IsContiguous(Dims, StrideArray);

    /// <summary>The elements of a contiguous tensor, in row-major order.</summary>
    public Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException($"Span needs a contiguous tensor; this {Shapes.Format(Dims)} view is strided. Call Contiguous() first.");
            return Storage.Span.Slice(Offset, Size);
        }
    }

    internal float[] RawArray { get { _ = Storage.Span; return Storage.Array; } }

    // ---------------- creation ----------------

    /// <summary>Uninitialized tensor (pooled inside a scope).</summary>
    public static Tensor Empty(params int[] shape) => new((int[])shape.Clone());

    public static Tensor Zeros(params int[] shape) { var t = Empty(shape); t.Span.Clear(); return t; }

    public static Tensor Ones(params int[] shape) => Full(1f, shape);

    public static Tensor Full(float value, params int[] shape) { var t = Empty(shape); t.Span.Fill(value); return t; }

    public static Tensor Scalar(float value) => Full(value);

    /// <summary>Wraps a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor From(ReadOnlySpan<float> data, params int[] shape)
    {
        if (shape.Length == 0 && data.Length != 1) shape = [data.Length];
        if (Shapes.Size(shape) != data.Length) throw new ArgumentException($"{data.Length} values do not fill shape {Shapes.Format(shape)}.");
        var t = Empty(shape);
        data.CopyTo(t.Span);
        return t;
    }

    public static Tensor From(ReadOnlySpan<double> data, params int[] shape)
    {
        var f = new float[data.Length];
        for (int i = 0; i < f.Length; i++) f[i] = (float)data[i];
        return From(f, shape);
    }

    public static Tensor Arange(int count) => Arange(0, count, 1);

    public static Tensor Arange(float start, float end, float step = 1)
    {
        int n = Math.Max(0, (int)Math.Ceiling((end - start) / step));
        var t = Empty(n);
        var s = t.Span;
        for (int i = 0; i < n; i++) s[i] = start + i * step;
        return t;
    }

    /// <summary>Normal(mean, std) samples from a seeded generator.</summary>
    public static Tensor Randn(Rng rng, int[] shape, float mean = 0, float std = 1)
    {
        var t = Empty(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(mean + std * rng.NextNormal());
        return t;
    }

    /// <summary>Uniform [low, high) samples from a seeded generator.</summary>
    public static Tensor Rand(Rng rng, int[] shape, float low = 0, float high = 1)
    {
        var t = Empty(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(low + (high - low) * rng.NextDouble());
        return t;
    }

    /// <summary>A tensor that lives outside every scope (parameters, optimizer state).</summary>
    public static Tensor Persistent(params int[] shape) => new((int[])shape.Clone(), persistent: true);

    // ---------------- reading ----------------

    public float Item()
    {
        if (Size != 1) throw new InvalidOperationException($"Item() needs a single element; shape is {Shapes.Format(Dims)}.");
        return Storage.Span[Offset];
    }

    [IndexerName("At")]
    public float this[params int[] index]
    {
        get => Storage.Span[Offset + Shapes.FlatIndex(index, Dims, StrideArray)];
        set => Storage.Span[Offset + Shapes.FlatIndex(index, Dims, StrideArray)] = value;
    }

    /// <summary>Row-major copy of the elements (works for views too).</summary>
    public float[] ToArray()
    {
        var result = new float[Size];
        Kernels.Strided.Copy(this, result);
        return result;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor").Append(Shapes.Format(Dims));
        if (Name is not null) sb.Append(' ').Append(Name);
        if (Storage.IsReleased) return sb.Append(" (released)").ToString();
        var a = ToArray();
        sb.Append(" [");
        for (int i = 0; i < Math.Min(a.Length, 8); i++) sb.Append(i > 0 ? ", " : "").Append(a[i].ToString("G5"));
        if (a.Length > 8) sb.Append(", …");
        sb.Append(']');
        if (RequiresGrad) sb.Append(" requires_grad");
        return sb.ToString();
    }

    // ---------------- autograd state ----------------

    private bool _requiresGrad;
    private Tensor? _grad;
    private bool _gradValid;
    internal Node? Node;

    /// <summary>Whether backward computes a gradient for this tensor. Setting it is only allowed on leaves.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (Node is not null && !value) throw new InvalidOperationException("Only leaf tensors can stop requiring a gradient; use Detach().");
            _requiresGrad = value;
        }
    }

    public bool IsLeaf => Node is null;

    /// <summary>The accumulated gradient, or null when none has been computed since the last <see cref="ZeroGrad"/>.</summary>
    public Tensor? Grad => _gradValid ? _grad : null;

    /// <summary>Marks the gradient as empty. The buffer is kept, so the next backward overwrites it without a memset or page fault.</summary>
    public void ZeroGrad() => _gradValid = false;

    /// <summary>
    /// The gradient buffer to write into. <paramref name="fresh"/> says it holds nothing yet (overwrite it);
    /// otherwise add into it. Leaves get a persistent buffer, intermediates one from the current scope.
    /// </summary>
    internal Tensor GradBuffer(out bool fresh)
    {
        fresh = !_gradValid;
        if (_grad is null || _grad.Storage.IsReleased)
        {
            if (IsLeaf) { using (TensorScope.Persistent()) _grad = new Tensor((int[])Dims.Clone()); }
            else _grad = new Tensor((int[])Dims.Clone());
            fresh = true;
        }
        _gradValid = true;
        return _grad;
    }

    /// <summary>The gradient buffer, zeroed if it held nothing (for kernels that can only add).</summary>
    internal Tensor GradBufferZeroed()
    {
        var g = GradBuffer(out bool fresh);
        if (fresh) g.Span.Clear();
        return g;
    }

    /// <summary>Hands this tensor's gradient buffer to <paramref name="target"/> when that has none (zero-copy pass-through).</summary>
    internal bool TryGiveGrad(Tensor target)
    {
        if (target._gradValid || _grad is null || !Shapes.Equal(target.Dims, Dims) || target.IsLeaf) return false;
        target._grad = _grad;
        target._gradValid = true;
        _grad = null;
        _gradValid = false;
        return true;
    }

    /// <summary>Frees an intermediate's gradient once backward has consumed it.</summary>
    internal void DropGrad()
    {
        if (_grad is not null && !IsLeaf)
        {
            TensorScope.Current?.ReleaseEarly(_grad.Storage);
            _grad = null;
        }
        _gradValid = false;
    }

    /// <summary>Sets this tensor's gradient from outside (e.g. the seed of backward).</summary>
    internal void SetGrad(Tensor g) { _grad = g; _gradValid = true; }

    /// <summary>Runs backward from this tensor (a scalar, unless <paramref name="gradient"/> is given).</summary>
    public void Backward(Tensor? gradient = null) => Graph.Backward(this, gradient);

    /// <summary>Same data, no history: gradients stop here.</summary>
    public Tensor Detach() => new(Storage, Offset, Dims, StrideArray);
}
