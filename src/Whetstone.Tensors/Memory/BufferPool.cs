using System.Runtime.CompilerServices;

namespace Whetstone.Tensors.Memory;

/// <summary>
/// Pool of pinned float buffers, bucketed by size class. On these VMs the first touch of a page costs
/// ~10 µs, so a training step must reuse the memory the previous step used instead of allocating anew.
/// Size classes are powers of two split in four, so the waste is at most 25% and varying shapes
/// (dynamic padding) still find a buffer.
/// </summary>
public static class BufferPool
{
    private static readonly Dictionary<int, Stack<float[]>> Free = new();
    private static readonly Lock Gate = new();
    private static long _pooledBytes, _liveBytes, _peakLiveBytes;

    /// <summary>Bytes currently held by the pool, ready for reuse.</summary>
    public static long PooledBytes => Interlocked.Read(ref _pooledBytes);

    /// <summary>Bytes of pooled buffers currently rented out.</summary>
    public static long LiveBytes => Interlocked.Read(ref _liveBytes);

    /// <summary>Highest <see cref="LiveBytes"/> seen since start or the last <see cref="ResetPeak"/>.</summary>
    public static long PeakLiveBytes => Interlocked.Read(ref _peakLiveBytes);

    public static void ResetPeak() => Interlocked.Exchange(ref _peakLiveBytes, LiveBytes);

    internal static int SizeClass(int length)
    {
        if (length <= 64) return 64;
        int log = 31 - BitOperations.LeadingZeroCount((uint)(length - 1)); // floor(log2(length-1))
        int step = 1 << Math.Max(log - 2, 0);
        long cls = ((long)length + step - 1) / step * step;
        return cls > int.MaxValue - 64 ? length : (int)cls;
    }

    /// <summary>Rents a buffer of at least <paramref name="length"/> floats. Contents are arbitrary.</summary>
    public static float[] Rent(int length)
    {
        int cls = SizeClass(length);
        float[]? a = null;
        lock (Gate)
        {
            if (Free.TryGetValue(cls, out var stack) && stack.Count > 0) a = stack.Pop();
        }
        if (a is not null) Interlocked.Add(ref _pooledBytes, -4L * a.Length);
        else a = GC.AllocateUninitializedArray<float>(cls, pinned: true);
        long live = Interlocked.Add(ref _liveBytes, 4L * a.Length);
        long peak;
        while (live > (peak = Interlocked.Read(ref _peakLiveBytes)) &&
               Interlocked.CompareExchange(ref _peakLiveBytes, live, peak) != peak) { }
        return a;
    }

    public static void Return(float[] a)
    {
        Interlocked.Add(ref _liveBytes, -4L * a.Length);
        Interlocked.Add(ref _pooledBytes, 4L * a.Length);
        lock (Gate)
        {
            if (!Free.TryGetValue(a.Length, out var stack)) Free[a.Length] = stack = new Stack<float[]>();
            stack.Push(a);
        }
    }

    /// <summary>Drops every pooled buffer so the GC can reclaim it (e.g. between unrelated jobs).</summary>
    public static void Trim()
    {
        lock (Gate) { Free.Clear(); }
        Interlocked.Exchange(ref _pooledBytes, 0);
    }
}

internal static class BitOperations
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LeadingZeroCount(uint v) => System.Numerics.BitOperations.LeadingZeroCount(v);
}
