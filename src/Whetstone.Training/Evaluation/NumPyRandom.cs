namespace Whetstone.Training.Evaluation;

/// <summary>
/// NumPy's <c>np.random.default_rng(seed)</c> — a PCG64 (XSL-RR 128/64) generator seeded through
/// <c>SeedSequence</c> — and the one draw sacreBLEU's bootstrap makes from it, <c>choice(n, size, replace=True)</c>,
/// which is <c>integers(0, n)</c>: Lemire's bounded multiply-shift with rejection on 32-bit outputs (each 64-bit
/// output gives its low half, then its high half). With it <see cref="PairedBootstrap"/> draws the very indices
/// sacreBLEU draws for the same seed.
/// </summary>
internal sealed class NumPyRandom
{
    private static readonly UInt128 Multiplier = new(2549297995355413924UL, 4865540595714422341UL);
    private UInt128 _state;
    private readonly UInt128 _increment;
    private bool _hasHalf;
    private uint _half;

    public NumPyRandom(ulong seed)
    {
        uint[] entropy = seed >> 32 == 0 ? [(uint)seed] : [(uint)seed, (uint)(seed >> 32)];
        var s = SeedSequenceState(entropy, 4);
        // pcg64_set_seed: state = (s[0] << 64) | s[1], sequence = (s[2] << 64) | s[3]; then pcg's srandom
        var initState = new UInt128(s[0], s[1]);
        var initSequence = new UInt128(s[2], s[3]);
        _state = 0;
        _increment = (initSequence << 1) | 1;
        Step();
        _state += initState;
        Step();
    }

    private void Step() => _state = unchecked(_state * Multiplier + _increment);

    public ulong NextUInt64()
    {
        Step();
        ulong hi = (ulong)(_state >> 64), lo = (ulong)_state;
        return ulong.RotateRight(hi ^ lo, (int)(hi >> 58));
    }

    public uint NextUInt32()
    {
        if (_hasHalf) { _hasHalf = false; return _half; }
        ulong next = NextUInt64();
        _hasHalf = true;
        _half = (uint)(next >> 32);
        return (uint)next;
    }

    /// <summary><c>integers(0, n)</c> for 1 ≤ n ≤ 2^32 − 1, as NumPy draws it for an int64 output.</summary>
    public int NextIndex(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        if (n == 1) return 0;
        uint exclusive = (uint)n;
        ulong m = (ulong)NextUInt32() * exclusive;
        uint leftover = (uint)m;
        if (leftover < exclusive)
        {
            uint threshold = (uint.MaxValue - (exclusive - 1)) % exclusive;
            while (leftover < threshold)
            {
                m = (ulong)NextUInt32() * exclusive;
                leftover = (uint)m;
            }
        }
        return (int)(m >> 32);
    }

    /// <summary><c>SeedSequence(entropy).generate_state(words, np.uint64)</c> with the default pool of four 32-bit words.</summary>
    internal static ulong[] SeedSequenceState(uint[] entropy, int words)
    {
        const uint initA = 0x43b0d7e5, multA = 0x931e8875, initB = 0x8b51f9dd, multB = 0x58f38ded;
        const uint mixL = 0xca01f9dd, mixR = 0x4973f715;
        const int poolSize = 4;
        uint hashConst = initA;
        uint HashMix(uint value)
        {
            value ^= hashConst;
            hashConst = unchecked(hashConst * multA);
            value = unchecked(value * hashConst);
            return value ^ (value >> 16);
        }
        static uint Mix(uint x, uint y)
        {
            uint r = unchecked(mixL * x - mixR * y);
            return r ^ (r >> 16);
        }
        var pool = new uint[poolSize];
        for (int i = 0; i < poolSize; i++) pool[i] = HashMix(i < entropy.Length ? entropy[i] : 0);
        for (int src = 0; src < poolSize; src++)
            for (int dst = 0; dst < poolSize; dst++)
                if (src != dst) pool[dst] = Mix(pool[dst], HashMix(pool[src]));
        for (int src = poolSize; src < entropy.Length; src++)
            for (int dst = 0; dst < poolSize; dst++) pool[dst] = Mix(pool[dst], HashMix(entropy[src]));

        var state32 = new uint[2 * words];
        uint h = initB;
        for (int i = 0; i < state32.Length; i++)
        {
            uint v = pool[i % poolSize] ^ h;
            h = unchecked(h * multB);
            v = unchecked(v * h);
            state32[i] = v ^ (v >> 16);
        }
        var state = new ulong[words];
        for (int i = 0; i < words; i++) state[i] = state32[2 * i] | ((ulong)state32[2 * i + 1] << 32);
        return state;
    }
}
