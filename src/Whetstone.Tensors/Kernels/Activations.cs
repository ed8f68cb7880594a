using System.Runtime.Intrinsics;

namespace Whetstone.Tensors.Kernels;

/// <summary>Scalar special functions in double, precise enough to serve as the reference for the float fast paths.</summary>
internal static class MathX
{
    private static readonly double TwoOverSqrtPi = 2 / Math.Sqrt(Math.PI);

    /// <summary>erf(x) to ~1e-15: Maclaurin series below 2.5, continued fraction for erfc above.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 2.5)
        {
            double x2 = x * x, term = x, sum = x;
            for (int n = 1; n < 80; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            return TwoOverSqrtPi * sum;
        }
        if (ax > 6) return Math.Sign(x);
        double f = ax;
        for (int n = 60; n >= 1; n--) f = ax + n * 0.5 / f;
        double erfc = Math.Exp(-ax * ax) / (Math.Sqrt(Math.PI) * f);
        return Math.Sign(x) * (1 - erfc);
    }

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), vectorised for the float paths.
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    internal const float ErfP = P, ErfA1 = A1, ErfA2 = A2, ErfA3 = A3, ErfA4 = A4, ErfA5 = A5;

    // exp in single precision: x = n·ln2 + r (ln2 split in two, Cody–Waite), |r| ≤ ln2/2, exp(r) by a degree-7 minimax-
    // style polynomial (1 + r + r²·p(r)), 2ⁿ put into the exponent bits. Relative error ≲ 2 ulp over the whole range;
    // below −87.3 (where the result would be subnormal) it returns 0, above 88.7 +∞, and NaN stays NaN.
    // Vector512.Exp widens to double for every lane, which makes softmax and GELU several times slower.
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float E0 = 5.0000001201e-1f, E1 = 1.6666665459e-1f, E2 = 4.1665795894e-2f, E3 = 8.3334519073e-3f, E4 = 1.3981999507e-3f, E5 = 1.9875691500e-4f;
    private const float ExpHi = 88.72283f, ExpLo = -87.33654f;

    public static Vector512<float> Exp(Vector512<float> x)
    {
        var xc = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpLo)), Vector512.Create(ExpHi));
        var n = Vector512.Round(xc * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(E5), r, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E0));
        var e = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        // 2ⁿ for n in [−126, 128): (n + 127) << 23; n = 128 only at the clamp, where the result is +∞ anyway
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        var y = e * Vector512.Min(scale, Vector512.Create(float.MaxValue));
        y = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(ExpHi)), Vector512.Create(float.PositiveInfinity), y);
        y = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpLo)), Vector512<float>.Zero, y);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), y, x);
    }

    public static Vector256<float> Exp(Vector256<float> x)
    {
        var xc = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpLo)), Vector256.Create(ExpHi));
        var n = Vector256.Round(xc * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), xc);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(E5), r, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E0));
        var e = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        var y = e * Vector256.Min(scale, Vector256.Create(float.MaxValue));
        y = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(ExpHi)), Vector256.Create(float.PositiveInfinity), y);
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpLo)), Vector256<float>.Zero, y);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), y, x);
    }

    public static Vector512<float> Erf(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(P) * ax);
        var poly = ((((Vector512.Create(A5) * t + Vector512.Create(A4)) * t + Vector512.Create(A3)) * t + Vector512.Create(A2)) * t + Vector512.Create(A1)) * t;
        var r = Vector512<float>.One - poly * Exp(-ax * ax);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -r, r);
    }

    public static Vector256<float> Erf(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(P) * ax);
        var poly = ((((Vector256.Create(A5) * t + Vector256.Create(A4)) * t + Vector256.Create(A3)) * t + Vector256.Create(A2)) * t + Vector256.Create(A1)) * t;
        var r = Vector256<float>.One - poly * Exp(-ax * ax);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -r, r);
    }

    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
    public static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));

    /// <summary>tanh via exp, saturating correctly at ±inf.</summary>
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var e = Vector512.Exp(Vector512.Min(x * Vector512.Create(2f), Vector512.Create(88f)));
        return Vector512<float>.One - Vector512.Create(2f) / (e + Vector512<float>.One);
    }

    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var e = Vector256.Exp(Vector256.Min(x * Vector256.Create(2f), Vector256.Create(88f)));
        return Vector256<float>.One - Vector256.Create(2f) / (e + Vector256<float>.One);
    }
}

internal struct Relu : IUnaryKernel
{
    public static double F(double x) => x > 0 ? x : 0;
    public static double D(double x) => x > 0 ? 1 : 0;
    public static Vector512<float> F(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
    public static Vector512<float> D(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), Vector512<float>.One, Vector512<float>.Zero);
    public static Vector256<float> F(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);
    public static Vector256<float> D(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), Vector256<float>.One, Vector256<float>.Zero);
}

internal struct Relu6 : IUnaryKernel
{
    public static double F(double x) => Math.Min(Math.Max(x, 0), 6);
    public static double D(double x) => x > 0 && x < 6 ? 1 : 0;
    public static Vector512<float> F(Vector512<float> x) => Vector512.Min(Vector512.Max(x, Vector512<float>.Zero), Vector512.Create(6f));
    public static Vector512<float> D(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero) & Vector512.LessThan(x, Vector512.Create(6f)), Vector512<float>.One, Vector512<float>.Zero);
    public static Vector256<float> F(Vector256<float> x) => Vector256.Min(Vector256.Max(x, Vector256<float>.Zero), Vector256.Create(6f));
    public static Vector256<float> D(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero) & Vector256.LessThan(x, Vector256.Create(6f)), Vector256<float>.One, Vector256<float>.Zero);
}

/// <summary>x·σ(x).</summary>
internal struct Silu : IUnaryKernel
{
    public static double F(double x) => x * MathX.Sigmoid(x);
    public static double D(double x) { double s = MathX.Sigmoid(x); return s * (1 + x * (1 - s)); }
    public static Vector512<float> F(Vector512<float> x) => x * MathX.Sigmoid(x);
    public static Vector512<float> D(Vector512<float> x) { var s = MathX.Sigmoid(x); return s * (Vector512<float>.One + x * (Vector512<float>.One - s)); }
    public static Vector256<float> F(Vector256<float> x) => x * MathX.Sigmoid(x);
    public static Vector256<float> D(Vector256<float> x) { var s = MathX.Sigmoid(x); return s * (Vector256<float>.One + x * (Vector256<float>.One - s)); }
}

/// <summary>PyTorch's hard-sigmoid: relu6(x + 3) / 6.</summary>
internal struct HardSigmoid : IUnaryKernel
{
    public static double F(double x) => Math.Min(Math.Max(x + 3, 0), 6) / 6;
    public static double D(double x) => x > -3 && x < 3 ? 1.0 / 6 : 0;
    public static Vector512<float> F(Vector512<float> x) => Relu6.F(x + Vector512.Create(3f)) * Vector512.Create(1f / 6);
    public static Vector512<float> D(Vector512<float> x) => Relu6.D(x + Vector512.Create(3f)) * Vector512.Create(1f / 6);
    public static Vector256<float> F(Vector256<float> x) => Relu6.F(x + Vector256.Create(3f)) * Vector256.Create(1f / 6);
    public static Vector256<float> D(Vector256<float> x) => Relu6.D(x + Vector256.Create(3f)) * Vector256.Create(1f / 6);
}

/// <summary>x · relu6(x + 3) / 6.</summary>
internal struct HardSwish : IUnaryKernel
{
    public static double F(double x) => x * HardSigmoid.F(x);
    public static double D(double x) => x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6;
    public static Vector512<float> F(Vector512<float> x) => x * HardSigmoid.F(x);
    public static Vector512<float> D(Vector512<float> x)
    {
        var mid = (x * Vector512.Create(2f) + Vector512.Create(3f)) * Vector512.Create(1f / 6);
        var r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512.Create(3f)), Vector512<float>.One, mid);
        return Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512.Create(-3f)), Vector512<float>.Zero, r);
    }
    public static Vector256<float> F(Vector256<float> x) => x * HardSigmoid.F(x);
    public static Vector256<float> D(Vector256<float> x)
    {
        var mid = (x * Vector256.Create(2f) + Vector256.Create(3f)) * Vector256.Create(1f / 6);
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256.Create(3f)), Vector256<float>.One, mid);
        return Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256.Create(-3f)), Vector256<float>.Zero, r);
    }
}

internal struct Tanh : IUnaryKernel
{
    public static double F(double x) => Math.Tanh(x);
    public static double D(double x) { double t = Math.Tanh(x); return 1 - t * t; }
    public static Vector512<float> F(Vector512<float> x) => MathX.Tanh(x);
    public static Vector512<float> D(Vector512<float> x) { var t = MathX.Tanh(x); return Vector512<float>.One - t * t; }
    public static Vector256<float> F(Vector256<float> x) => MathX.Tanh(x);
    public static Vector256<float> D(Vector256<float> x) { var t = MathX.Tanh(x); return Vector256<float>.One - t * t; }
}

internal struct Sigmoid : IUnaryKernel
{
    public static double F(double x) => MathX.Sigmoid(x);
    public static double D(double x) { double s = MathX.Sigmoid(x); return s * (1 - s); }
    public static Vector512<float> F(Vector512<float> x) => MathX.Sigmoid(x);
    public static Vector512<float> D(Vector512<float> x) { var s = MathX.Sigmoid(x); return s * (Vector512<float>.One - s); }
    public static Vector256<float> F(Vector256<float> x) => MathX.Sigmoid(x);
    public static Vector256<float> D(Vector256<float> x) { var s = MathX.Sigmoid(x); return s * (Vector256<float>.One - s); }
}

/// <summary>GELU with the exact erf: 0.5·x·(1 + erf(x/√2)) (BERT, PyTorch's default).</summary>
internal struct GeluErf : IUnaryKernel
{
    private const double InvSqrt2 = 0.70710678118654752440;
    private const double InvSqrt2Pi = 0.39894228040143267794;
    public static double F(double x) => 0.5 * x * (1 + MathX.Erf(x * InvSqrt2));
    public static double D(double x) => 0.5 * (1 + MathX.Erf(x * InvSqrt2)) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x);
    public static Vector512<float> F(Vector512<float> x) => Vector512.Create(0.5f) * x * (Vector512<float>.One + MathX.Erf(x * Vector512.Create((float)InvSqrt2)));
    // erf(x/√2) by A&S 7.1.26 needs exp(−x²/2), which is also the density term of the derivative: one exp for both.
    public static Vector512<float> D(Vector512<float> x)
    {
        var ax = Vector512.Abs(x) * Vector512.Create((float)InvSqrt2);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(MathX.ErfP) * ax);
        var poly = ((((Vector512.Create(MathX.ErfA5) * t + Vector512.Create(MathX.ErfA4)) * t + Vector512.Create(MathX.ErfA3)) * t
            + Vector512.Create(MathX.ErfA2)) * t + Vector512.Create(MathX.ErfA1)) * t;
        var e = MathX.Exp(-ax * ax);
        var erf = Vector512<float>.One - poly * e;
        erf = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -erf, erf);
        return Vector512.Create(0.5f) * (Vector512<float>.One + erf) + x * Vector512.Create((float)InvSqrt2Pi) * e;
    }
    public static Vector256<float> F(Vector256<float> x) => Vector256.Create(0.5f) * x * (Vector256<float>.One + MathX.Erf(x * Vector256.Create((float)InvSqrt2)));
    public static Vector256<float> D(Vector256<float> x)
    {
        var ax = Vector256.Abs(x) * Vector256.Create((float)InvSqrt2);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(MathX.ErfP) * ax);
        var poly = ((((Vector256.Create(MathX.ErfA5) * t + Vector256.Create(MathX.ErfA4)) * t + Vector256.Create(MathX.ErfA3)) * t
            + Vector256.Create(MathX.ErfA2)) * t + Vector256.Create(MathX.ErfA1)) * t;
        var e = MathX.Exp(-ax * ax);
        var erf = Vector256<float>.One - poly * e;
        erf = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -erf, erf);
        return Vector256.Create(0.5f) * (Vector256<float>.One + erf) + x * Vector256.Create((float)InvSqrt2Pi) * e;
    }
}

/// <summary>GELU, tanh approximation (GPT-2's "gelu_new").</summary>
internal struct GeluTanh : IUnaryKernel
{
    private const double C = 0.79788456080286535588; // √(2/π)
    private const double K = 0.044715;
    public static double F(double x) => 0.5 * x * (1 + Math.Tanh(C * (x + K * x * x * x)));
    public static double D(double x)
    {
        double t = Math.Tanh(C * (x + K * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * K * x * x);
    }
    public static Vector512<float> F(Vector512<float> x) =>
        Vector512.Create(0.5f) * x * (Vector512<float>.One + MathX.Tanh(Vector512.Create((float)C) * (x + Vector512.Create((float)K) * x * x * x)));
    public static Vector512<float> D(Vector512<float> x)
    {
        var t = MathX.Tanh(Vector512.Create((float)C) * (x + Vector512.Create((float)K) * x * x * x));
        var h = Vector512.Create(0.5f);
        return h * (Vector512<float>.One + t) + h * x * (Vector512<float>.One - t * t) * Vector512.Create((float)C) * (Vector512<float>.One + Vector512.Create((float)(3 * K)) * x * x);
    }
    public static Vector256<float> F(Vector256<float> x) =>
        Vector256.Create(0.5f) * x * (Vector256<float>.One + MathX.Tanh(Vector256.Create((float)C) * (x + Vector256.Create((float)K) * x * x * x)));
    public static Vector256<float> D(Vector256<float> x)
    {
        var t = MathX.Tanh(Vector256.Create((float)C) * (x + Vector256.Create((float)K) * x * x * x));
        var h = Vector256.Create(0.5f);
        return h * (Vector256<float>.One + t) + h * x * (Vector256<float>.One - t * t) * Vector256.Create((float)C) * (Vector256<float>.One + Vector256.Create((float)(3 * K)) * x * x);
    }
}
