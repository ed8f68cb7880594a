using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// An elementwise function with its derivative. <see cref="F(double)"/>/<see cref="D(double)"/> are the scalar
/// reference (used for double-precision gradient checks and when SIMD is off); the vector forms are the float
/// fast paths. Backward is dx (+)= dy · f'(x).
/// </summary>
internal interface IUnaryKernel
{
    static abstract double F(double x);
    static abstract double D(double x);
    static abstract Vector512<float> F(Vector512<float> x);
    static abstract Vector512<float> D(Vector512<float> x);
    static abstract Vector256<float> F(Vector256<float> x);
    static abstract Vector256<float> D(Vector256<float> x);
}

/// <summary>Drivers that run an <see cref="IUnaryKernel"/> over spans: Vector512, else Vector256, else scalar.</summary>
internal static class Elementwise
{
    private const int Grain = 1 << 15;

    /// <summary>f(x) in float through the double reference (edges of vector loops).</summary>
    public static float ScalarF<TOp>(float x) where TOp : IUnaryKernel => (float)TOp.F(x);

    /// <summary>dst += src.</summary>
    public static void AddInto(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Add(dst, src, dst);

    /// <summary>y = f(x).</summary>
    public static void Forward<TOp, T>(ReadOnlySpan<T> x, Span<T> y) where TOp : IUnaryKernel where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != y.Length) throw new ArgumentException("Length mismatch.");
        if (typeof(T) == typeof(float)) { ForwardF<TOp>(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y)); return; }
        for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(TOp.F(double.CreateTruncating(x[i])));
    }

    /// <summary>dx = dy · f'(x), or dx += dy · f'(x) when <paramref name="accumulate"/>.</summary>
    public static void Backward<TOp, T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, bool accumulate) where TOp : IUnaryKernel where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != dy.Length || x.Length != dx.Length) throw new ArgumentException("Length mismatch.");
        if (typeof(T) == typeof(float)) { BackwardF<TOp>(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(dy), MemoryMarshal.Cast<T, float>(dx), accumulate); return; }
        for (int i = 0; i < x.Length; i++)
        {
            T g = dy[i] * T.CreateTruncating(TOp.D(double.CreateTruncating(x[i])));
            dx[i] = accumulate ? dx[i] + g : g;
        }
    }

    private static unsafe void ForwardF<TOp>(ReadOnlySpan<float> x, Span<float> y) where TOp : IUnaryKernel
    {
        fixed (float* px = x) fixed (float* py = y)
        {
            float* ax = px, ay = py;
            int n = x.Length;
            Par.For(n, Grain, (s, e) => ForwardRange<TOp>(ax, ay, s, e));
        }
    }

    private static unsafe void ForwardRange<TOp>(float* x, float* y, int i, int end) where TOp : IUnaryKernel
    {
        if (Vector512.IsHardwareAccelerated)
            for (; i <= end - 16; i += 16) Vector512.Store(TOp.F(Vector512.Load(x + i)), y + i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= end - 8; i += 8) Vector256.Store(TOp.F(Vector256.Load(x + i)), y + i);
        for (; i < end; i++) y[i] = (float)TOp.F(x[i]);
    }

    private static unsafe void BackwardF<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool acc) where TOp : IUnaryKernel
    {
        fixed (float* px = x) fixed (float* pdy = dy) fixed (float* pdx = dx)
        {
            float* ax = px, ady = pdy, adx = pdx;
            Par.For(x.Length, Grain, (s, e) => BackwardRange<TOp>(ax, ady, adx, s, e, acc));
        }
    }

    private static unsafe void BackwardRange<TOp>(float* x, float* dy, float* dx, int i, int end, bool acc) where TOp : IUnaryKernel
    {
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= end - 16; i += 16)
            {
                var g = TOp.D(Vector512.Load(x + i)) * Vector512.Load(dy + i);
                if (acc) g += Vector512.Load(dx + i);
                Vector512.Store(g, dx + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= end - 8; i += 8)
            {
                var g = TOp.D(Vector256.Load(x + i)) * Vector256.Load(dy + i);
                if (acc) g += Vector256.Load(dx + i);
                Vector256.Store(g, dx + i);
            }
        }
        for (; i < end; i++)
        {
            float g = (float)TOp.D(x[i]) * dy[i];
            dx[i] = acc ? dx[i] + g : g;
        }
    }
}
