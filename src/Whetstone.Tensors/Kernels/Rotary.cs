using System.Numerics;
using System.Numerics.Tensors;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Rotary position embedding (RoPE) in the "rotate half" layout of Llama-family checkpoints: within each head of width
/// Dh, element i &lt; Dh/2 pairs with i + Dh/2 and the pair is rotated by angle pos·θ_i:
/// y_i = x_i·cos − x_{i+Dh/2}·sin, y_{i+Dh/2} = x_{i+Dh/2}·cos + x_i·sin. Rows are tokens (R = B·T) of H heads each;
/// <c>cos</c>/<c>sin</c> (R, Dh/2) hold each row's angles. Backward is the inverse rotation.
/// </summary>
internal static unsafe class RotaryKernel
{
    /// <summary>y = rotate(x) (or the inverse rotation when <paramref name="inverse"/>); y may be x.</summary>
    public static void Apply<T>(ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> cos, ReadOnlySpan<T> sin, int rows, int heads, int dh, bool inverse)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dh % 2 != 0) throw new ArgumentException($"Rotary embedding needs an even head width; got {dh}.");
        int half = dh / 2, w = heads * dh;
        if (x.Length != (long)rows * w || y.Length != x.Length) throw new ArgumentException("Rotary: x and y must be (R, H·Dh).");
        if (cos.Length != (long)rows * half || sin.Length != cos.Length) throw new ArgumentException("Rotary: cos and sin must be (R, Dh/2).");
        fixed (T* px = x) fixed (T* py = y) fixed (T* pc = cos) fixed (T* ps = sin)
        {
            T* ax = px, ay = py, ac = pc, asn = ps;
            Par.For(rows, 16, (s, e) =>
            {
                var buf = System.Buffers.ArrayPool<T>.Shared.Rent(2 * half);
                var t1 = buf.AsSpan(0, half);
                var t2 = buf.AsSpan(half, half);
                for (int r = s; r < e; r++)
                {
                    var c = new ReadOnlySpan<T>(ac + (long)r * half, half);
                    var sn = new ReadOnlySpan<T>(asn + (long)r * half, half);
                    for (int hh = 0; hh < heads; hh++)
                    {
                        long o = (long)r * w + (long)hh * dh;
                        var a = new ReadOnlySpan<T>(ax + o, half);
                        var b = new ReadOnlySpan<T>(ax + o + half, half);
                        // forward: (a, b) → (a·c − b·s, b·c + a·s); inverse: (a·c + b·s, b·c − a·s)
                        TensorPrimitives.Multiply(b, sn, t1);
                        TensorPrimitives.Multiply(a, sn, t2);
                        if (inverse) TensorPrimitives.Negate(t2, t2); else TensorPrimitives.Negate(t1, t1);
                        TensorPrimitives.FusedMultiplyAdd(a, c, t1, t1);
                        TensorPrimitives.FusedMultiplyAdd(b, c, t2, t2);
                        t1.CopyTo(new Span<T>(ay + o, half));
                        t2.CopyTo(new Span<T>(ay + o + half, half));
                    }
                }
                System.Buffers.ArrayPool<T>.Shared.Return(buf);
            });
        }
    }
}
