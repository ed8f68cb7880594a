using Whetstone.Tensors;

namespace Whetstone.Nn;

/// <summary>
/// In-place parameter initialisers (PyTorch <c>torch.nn.init</c> semantics), drawing from a seeded <see cref="Rng"/>
/// in row-major order, so the same seed gives the same weights everywhere.
/// </summary>
public static class Init
{
    /// <summary>A zeroed persistent tensor that requires a gradient (a fresh parameter).</summary>
    public static Tensor Parameter(params int[] shape)
    {
        var t = Tensor.Persistent(shape);
        t.Span.Clear();
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>A persistent copy of <paramref name="source"/> (any memory, any layout) that requires a gradient.</summary>
    public static Tensor ParameterFrom(Tensor source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var t = Tensor.Persistent(source.Shape.ToArray());
        source.ToArray().AsSpan().CopyTo(t.Span);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>fan_in = size(1) × receptive field (product of dims after the first two); fan_out = size(0) × receptive field.</summary>
    public static (int FanIn, int FanOut) Fans(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t.Rank < 2) throw new ArgumentException($"Fan in/out need at least 2 dimensions; shape has {t.Rank}.");
        int receptive = 1;
        for (int i = 2; i < t.Rank; i++) receptive *= t.Dim(i);
        return (t.Dim(1) * receptive, t.Dim(0) * receptive);
    }

    public static Tensor Uniform(Tensor t, Rng rng, double low, double high)
    {
        ArgumentNullException.ThrowIfNull(t); ArgumentNullException.ThrowIfNull(rng);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(low + (high - low) * rng.NextDouble());
        return t;
    }

    public static Tensor Normal(Tensor t, Rng rng, double mean = 0, double std = 1)
    {
        ArgumentNullException.ThrowIfNull(t); ArgumentNullException.ThrowIfNull(rng);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(mean + std * rng.NextNormal());
        return t;
    }

    public static Tensor Constant(Tensor t, float value) { ArgumentNullException.ThrowIfNull(t); t.Span.Fill(value); return t; }

    public static Tensor Zeros(Tensor t) => Constant(t, 0);

    public static Tensor Ones(Tensor t) => Constant(t, 1);

    /// <summary>
    /// kaiming_uniform_(a, mode=fan_in, nonlinearity=leaky_relu): U(−b, b) with b = gain·√(3/fan_in), gain = √(2/(1+a²)).
    /// With the default a = √5 (nn.Linear / nn.Conv2d default init) b = 1/√fan_in.
    /// </summary>
    public static Tensor KaimingUniform(Tensor t, Rng rng, double a = 2.23606797749979)
    {
        var (fanIn, _) = Fans(t);
        double gain = Math.Sqrt(2.0 / (1 + a * a));
        double bound = gain * Math.Sqrt(3.0 / fanIn);
        return Uniform(t, rng, -bound, bound);
    }

    /// <summary>xavier_uniform_: U(−b, b) with b = gain·√(6/(fan_in+fan_out)).</summary>
    public static Tensor XavierUniform(Tensor t, Rng rng, double gain = 1)
    {
        var (fanIn, fanOut) = Fans(t);
        double bound = gain * Math.Sqrt(6.0 / (fanIn + fanOut));
        return Uniform(t, rng, -bound, bound);
    }
}
