using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Whetstone.Tensors;

/// <summary>Element types a checkpoint may store. Compute is always float32; these are converted on load/save.</summary>
public enum DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool }

public static class DTypes
{
    public static int Size(this DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.I8 or DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The safetensors spelling ("F32", "BF16", "BOOL", ...).</summary>
    public static string Name(this DType t) => t == DType.Bool ? "BOOL" : t.ToString();

    public static bool TryParse(string name, out DType t)
    {
        if (name == "BOOL") { t = DType.Bool; return true; }
        return Enum.TryParse(name, ignoreCase: false, out t) && name == t.ToString();
    }

    /// <summary>Converts little-endian raw elements of type <paramref name="t"/> to float32.</summary>
    public static void ToFloat32(ReadOnlySpan<byte> src, DType t, Span<float> dst)
    {
        int n = dst.Length;
        if (src.Length != n * t.Size()) throw new ArgumentException($"{src.Length} bytes do not hold {n} elements of {t.Name()}.");
        switch (t)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case DType.BF16:
                {
                    var u = MemoryMarshal.Cast<byte, ushort>(src);
                    var d = MemoryMarshal.Cast<float, uint>(dst);
                    for (int i = 0; i < n; i++) d[i] = (uint)u[i] << 16;
                    break;
                }
            case DType.F64: { var s = MemoryMarshal.Cast<byte, double>(src); for (int i = 0; i < n; i++) dst[i] = (float)s[i]; break; }
            case DType.I64: { var s = MemoryMarshal.Cast<byte, long>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I32: { var s = MemoryMarshal.Cast<byte, int>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I16: { var s = MemoryMarshal.Cast<byte, short>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I8: for (int i = 0; i < n; i++) dst[i] = (sbyte)src[i]; break;
            case DType.U8: for (int i = 0; i < n; i++) dst[i] = src[i]; break;
            case DType.Bool: for (int i = 0; i < n; i++) dst[i] = src[i] != 0 ? 1f : 0f; break;
        }
    }

    /// <summary>Converts float32 to little-endian raw elements of type <paramref name="t"/> (round-to-nearest-even for BF16).</summary>
    public static void FromFloat32(ReadOnlySpan<float> src, DType t, Span<byte> dst)
    {
        int n = src.Length;
        if (dst.Length != n * t.Size()) throw new ArgumentException($"{dst.Length} bytes cannot hold {n} elements of {t.Name()}.");
        switch (t)
        {
            case DType.F32: MemoryMarshal.Cast<float, byte>(src).CopyTo(dst); break;
            case DType.F16: TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)); break;
            case DType.BF16:
                {
                    var s = MemoryMarshal.Cast<float, uint>(src);
                    var d = MemoryMarshal.Cast<byte, ushort>(dst);
                    for (int i = 0; i < n; i++)
                    {
                        uint x = s[i];
                        d[i] = float.IsNaN(src[i]) ? (ushort)0x7FC0 : (ushort)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
                    }
                    break;
                }
            case DType.F64: { var d = MemoryMarshal.Cast<byte, double>(dst); for (int i = 0; i < n; i++) d[i] = src[i]; break; }
            case DType.I64: { var d = MemoryMarshal.Cast<byte, long>(dst); for (int i = 0; i < n; i++) d[i] = (long)src[i]; break; }
            case DType.I32: { var d = MemoryMarshal.Cast<byte, int>(dst); for (int i = 0; i < n; i++) d[i] = (int)src[i]; break; }
            case DType.I16: { var d = MemoryMarshal.Cast<byte, short>(dst); for (int i = 0; i < n; i++) d[i] = (short)src[i]; break; }
            case DType.I8: for (int i = 0; i < n; i++) dst[i] = (byte)(sbyte)src[i]; break;
            case DType.U8: for (int i = 0; i < n; i++) dst[i] = (byte)src[i]; break;
            case DType.Bool: for (int i = 0; i < n; i++) dst[i] = src[i] != 0 ? (byte)1 : (byte)0; break;
        }
    }
}
