namespace Whetstone.Tensors;

/// <summary>
/// Seeded random generator (xoshiro256**, seeded through SplitMix64). Same seed, same sequence, on every
/// machine and thread count: every random tensor and every augmentation draws from one of these.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spare;
    private bool _hasSpare;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The generator's whole state (for checkpoints): four words of xoshiro state and the cached normal deviate.</summary>
    public RngState GetState() => new(_s0, _s1, _s2, _s3, _hasSpare ? BitConverter.DoubleToInt64Bits(_spare) : (long?)null);

    /// <summary>Continues exactly where the generator that gave <paramref name="state"/> was.</summary>
    public void SetState(RngState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if ((state.S0 | state.S1 | state.S2 | state.S3) == 0) throw new ArgumentException("An all-zero xoshiro256** state is invalid.", nameof(state));
        (_s0, _s1, _s2, _s3) = (state.S0, state.S1, state.S2, state.S3);
        _hasSpare = state.SpareBits is not null;
        _spare = state.SpareBits is long bits ? BitConverter.Int64BitsToDouble(bits) : 0;
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        return (int)((NextUInt64() >> 32) * (ulong)n >> 32);
    }

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextNormal()
    {
        if (_hasSpare) { _hasSpare = false; return _spare; }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double f = Math.Sqrt(-2 * Math.Log(s) / s);
        _spare = v * f; _hasSpare = true;
        return u * f;
    }

    /// <summary>Fisher–Yates shuffle of [0, n).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) { int j = NextInt(i + 1); (p[i], p[j]) = (p[j], p[i]); }
        return p;
    }
}

/// <summary>A snapshot of an <see cref="Rng"/>: the xoshiro256** words and, when one is cached, the spare normal deviate's bits.</summary>
public sealed record RngState(ulong S0, ulong S1, ulong S2, ulong S3, long? SpareBits);
