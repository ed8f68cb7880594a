using Whetstone.Models.Importers.Hf;
using Whetstone.Tensors;

namespace Whetstone.Models.Transformers;

/// <summary>
/// Rotary position embedding as Llama-family checkpoints define it: frequencies θ_i = rope_theta^(−2i/Dh) for
/// i &lt; Dh/2, rescaled by <c>rope_scaling</c> (none/default, <c>linear</c>: θ/factor, <c>llama3</c>: long wavelengths
/// divided by the factor, short ones kept, the band between interpolated), applied to q and k in the rotate-half
/// layout. Angles are computed in float32 as transformers computes them (θ in float32, position·θ in float32).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq;

    public int HeadDim { get; }
    /// <summary>The scaling kind in effect: default, linear or llama3.</summary>
    public string Kind { get; }

    public RotaryEmbedding(int headDim, double theta, string kind = "default", double factor = 1, double lowFreqFactor = 1, double highFreqFactor = 4, int originalMaxPositions = 8192)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"Rotary embedding needs an even head width; got {headDim}.");
        if (!(theta > 0)) throw new ArgumentException($"rope_theta must be positive; got {theta}.");
        HeadDim = headDim;
        Kind = kind;
        int half = headDim / 2;
        _invFreq = new float[half];
        for (int i = 0; i < half; i++) _invFreq[i] = 1f / MathF.Pow((float)theta, 2 * i / (float)headDim);
        switch (kind)
        {
            case "default":
                break;
            case "linear":
                if (!(factor > 0)) throw new ArgumentException($"rope_scaling linear needs a positive factor; got {factor}.");
                for (int i = 0; i < half; i++) _invFreq[i] /= (float)factor;
                break;
            case "llama3":
                if (!(factor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0)
                    throw new ArgumentException($"rope_scaling llama3 needs factor > 0, high_freq_factor > low_freq_factor and original_max_position_embeddings > 0; got {factor}, {lowFreqFactor}, {highFreqFactor}, {originalMaxPositions}.");
                double lowWavelen = originalMaxPositions / lowFreqFactor, highWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < half; i++)
                {
                    double f = _invFreq[i], wavelen = 2 * Math.PI / f;
                    if (wavelen > lowWavelen) f /= factor;                        // long wavelengths: interpolated
                    else if (wavelen >= highWavelen)                              // the band between: blended
                    {
                        double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                        f = (1 - smooth) * f / factor + smooth * f;
                    }
                    _invFreq[i] = (float)f;
                }
                break;
            default:
                throw new NotSupportedException($"rope_scaling type '{kind}' is not supported (default, linear, llama3).");
        }
    }

    /// <summary>From a Llama-family config: head width, <c>rope_theta</c> (default 10000) and <c>rope_scaling</c>.</summary>
    internal static RotaryEmbedding FromHf(HfConfig c, int headDim)
    {
        double theta = c.Float("rope_theta", 10000f);
        var rs = c.Section("rope_scaling");
        if (rs is null) return new RotaryEmbedding(headDim, theta);
        var kind = rs.StringOrNull("rope_type") ?? rs.StringOrNull("type")
            ?? throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, "rope_scaling has neither rope_type nor type.", "rope_scaling");
        try
        {
            return new RotaryEmbedding(headDim, theta, kind, rs.Float("factor", 1f), rs.Float("low_freq_factor", 1f), rs.Float("high_freq_factor", 4f),
                rs.Int("original_max_position_embeddings", 8192));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new HfCheckpointException(HfFault.InvalidConfig, c.Path, e.Message, "rope_scaling");
        }
    }

    /// <summary>cos and sin (R, Dh/2) of the angles of <paramref name="positions"/> (one row each), in the current scope.</summary>
    public (Tensor Cos, Tensor Sin) Angles(ReadOnlySpan<int> positions)
    {
        int half = _invFreq.Length;
        var cos = Tensor.Empty(positions.Length, half);
        var sin = Tensor.Empty(positions.Length, half);
        var cs = cos.Span;
        var ss = sin.Span;
        for (int r = 0; r < positions.Length; r++)
        {
            float p = positions[r];
            for (int i = 0; i < half; i++)
            {
                double a = p * _invFreq[i];   // float32 product, as transformers
                cs[r * half + i] = (float)Math.Cos(a);
                ss[r * half + i] = (float)Math.Sin(a);
            }
        }
        return (cos, sin);
    }
}
