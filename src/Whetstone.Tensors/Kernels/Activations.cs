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

    public static Vector512<float> Erf(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(P) * ax);
        var poly = ((((Vector512.Create(A5) * t + Vector512.Create(A4)) * t + Vector512.Create(A3)) * t + Vector512.Create(A2)) * t + Vector512.Create(A1)) * t;
        var r = Vector512<float>.One - poly * Vector512.Exp(-ax * ax);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -r, r);
    }

    public static Vector256<float> Erf(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(P) * ax);
        var poly = ((((Vector256.Create(A5) * t + Vector256.Create(A4)) * t + Vector256.Create(A3)) * t + Vector256.Create(A2)) * t + Vector256.Create(A1)) * t;
        var r = Vector256<float>.One - poly * Vector256.Exp(-ax * ax);
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
        var e = Vector512.Exp(-ax * ax);
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
        var e = Vector256.Exp(-ax * ax);
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
