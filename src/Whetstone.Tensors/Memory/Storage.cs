namespace Whetstone.Tensors.Memory;

/// <summary>
/// The memory behind one or more tensors (views share it). A storage made inside a <see cref="TensorScope"/>
/// is rented from the <see cref="BufferPool"/> and goes back when the scope ends; afterwards every tensor on it
/// throws on access instead of reading memory that now belongs to someone else.
/// </summary>
public sealed class Storage
{
    internal float[] Array;
    internal readonly int Length;
    internal readonly bool Pooled;
    private bool _released;

    internal Storage(int length, bool pooled)
    {
        Length = length;
        Pooled = pooled;
        Array = length == 0 ? [] : pooled ? BufferPool.Rent(length) : GC.AllocateUninitializedArray<float>(length, pinned: true);
    }

    internal Storage(float[] array)
    {
        Array = array;
        Length = array.Length;
    }

    public bool IsReleased => _released;

    internal void Release()
    {
        if (_released) return;
        _released = true;
        if (Pooled && Array.Length > 0) BufferPool.Return(Array);
        Array = [];
    }

    internal Span<float> Span
    {
        get
        {
            if (_released) throw new ObjectDisposedException(nameof(Tensor), "This tensor's memory was released when its TensorScope ended; Keep() it or copy it out before the scope ends.");
            return Array.AsSpan(0, Length);
        }
    }
}

/// <summary>
/// Owns every tensor allocated on this thread while it is the innermost scope, and releases them all at once.
/// A training step runs inside one: its activations and their gradients go back to the pool as a whole,
/// so memory stays flat over thousands of steps without the GC doing the engine's work.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;
    private readonly TensorScope? _parent;
    private readonly List<Storage> _owned = new();
    private bool _disposed;

    public TensorScope()
    {
        _parent = _current;
        _current = this;
    }

    internal static TensorScope? Current => _current;

    /// <summary>Number of storages this scope will release.</summary>
    public int Count => _owned.Count;

    internal void Add(Storage s) => _owned.Add(s);

    /// <summary>Moves <paramref name="t"/>'s memory out of this scope to the enclosing one (or to the GC if none).</summary>
    public Tensor Keep(Tensor t)
    {
        int i = _owned.LastIndexOf(t.Storage);
        if (i >= 0)
        {
            _owned.RemoveAt(i);
            _parent?._owned.Add(t.Storage);
        }
        return t;
    }

    /// <summary>
    /// Runs <paramref name="block"/> in an inner scope. If its result needs no gradient, nothing inside can be needed
    /// by backward, so everything but the result is released at once — the activations of a frozen backbone cost no
    /// memory beyond the layer being computed. Otherwise the inner scope's memory joins the enclosing scope.
    /// </summary>
    public static Tensor Release(Func<Tensor> block)
    {
        var inner = new TensorScope();
        Tensor y;
        try { y = block(); }
        catch { inner.Dispose(); throw; }
        if (y.RequiresGrad)
        {
            inner._parent?._owned.AddRange(inner._owned);   // without an enclosing scope the GC owns them, as with Keep
            inner._owned.Clear();
        }
        else inner.Keep(y);
        inner.Dispose();
        return y;
    }

    /// <summary>Releases a storage early (used by backward to recycle gradients as soon as they are consumed).</summary>
    internal bool ReleaseEarly(Storage s)
    {
        for (var sc = this; sc is not null; sc = sc._parent)
        {
            int i = sc._owned.LastIndexOf(s);
            if (i >= 0)
            {
                sc._owned.RemoveAt(i);
                s.Release();
                return true;
            }
        }
        return false;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current != this) throw new InvalidOperationException("TensorScopes must be disposed innermost first.");
        _current = _parent;
        foreach (var s in _owned) s.Release();
        _owned.Clear();
    }

    /// <summary>Runs allocations outside every scope (for parameters, optimizer state, parameter gradients).</summary>
    public static PersistentRegion Persistent() => new(_current);

    public readonly struct PersistentRegion : IDisposable
    {
        private readonly TensorScope? _saved;
        internal PersistentRegion(TensorScope? saved) { _saved = saved; _current = null; }
        public void Dispose() => _current = _saved;
    }
}
