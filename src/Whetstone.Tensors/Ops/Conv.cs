using System.Runtime.CompilerServices;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors;

// 2-D convolution (NCHW, weights [Cout, Cin/groups, kH, kW], as PyTorch).
public sealed partial class Tensor
{
    /// <summary>Conv2d with the same stride, padding and dilation on both axes.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Conv2d(x, weight, bias, (stride, stride), (padding, padding), (dilation, dilation), groups);

    /// <summary>
    /// Cross-correlation of x [N, Cin, H, W] with weight [Cout, Cin/groups, kH, kW] plus bias [Cout] →
    /// [N, Cout, OH, OW], OH = (H + 2·pad.h − dil.h·(kH − 1) − 1) / stride.h + 1 (likewise OW). Zero padding.
    /// groups splits the channels into independent convolutions (groups = Cin = Cout is depthwise).
    /// Gradients flow to every input that requires one; a frozen weight costs no weight-gradient work.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (int h, int w) stride, (int h, int w) padding, (int h, int w) dilation, int groups)
    {
        var g = ConvGeometry(x, weight, bias, stride, padding, dilation, groups);
        x = x.Contiguous();
        var w = weight.Contiguous();
        var b = bias?.Contiguous();
        var y = Empty(g.N, g.Cout, g.OH, g.OW);
        // 3×3 stride-1 weights that this pass cannot train (frozen, or no gradients recorded): Winograd from transformed
        // weights kept while the weights stay the same; trainable ones take Conv.Forward (Winograd too, transformed per call)
        if (!Graph.Needs(w) && Winograd.Preferred(g))
            Conv.ForwardWinograd(g, Winograd.TileSize, x.Span, WinogradWeights.Get(w, g, Winograd.TileSize), default, b is null ? default : b.Span, false, y.Span);
        else
            Conv.Forward<float>(g, x.Span, w.Span, b is null ? default : b.Span, y.Span);
        if (Graph.Needs(x, w, b))
            Graph.Record(y, "conv2d", gy =>
            {
                var dy = gy.Contiguous();
                Span<float> dx = default, dw = default, db = default;
                bool accX = false, accW = false, accB = false, fresh;
                if (x.RequiresGrad) { dx = x.GradBuffer(out fresh).Span; accX = !fresh; }
                if (w.RequiresGrad) { dw = w.GradBuffer(out fresh).Span; accW = !fresh; }
                if (b is not null && b.RequiresGrad) { db = b.GradBuffer(out fresh).Span; accB = !fresh; }
                Conv.Backward<float>(g, x.Span, w.Span, dy.Span, dx, accX, dw, accW, db, accB);
            }, b is null ? [x, w] : [x, w, b]);
        return y;
    }

    /// <summary>
    /// Inference-only conv with a per-channel epilogue: y = Conv2d(x, weight)·scale[co] + shift[co], then max(y, 0) when
    /// <paramref name="relu"/> — an eval-mode batch norm (and its ReLU) folded into the conv, one pass over y instead
    /// of three. A conv bias belongs in the shift (b·scale + shift). Records no gradient: throws when x or the weight
    /// would need one (the caller fuses only where nothing is trained).
    /// </summary>
    internal static Tensor Conv2dScaleShift(Tensor x, Tensor weight, float[]? scale, float[] shift, bool relu,
        (int h, int w) stride, (int h, int w) padding, (int h, int w) dilation, int groups)
    {
        if (Graph.Needs(x, weight)) throw new InvalidOperationException("Conv2dScaleShift records no gradient; its input and weight must not need one.");
        var g = ConvGeometry(x, weight, null, stride, padding, dilation, groups);
        if ((scale is not null && scale.Length != g.Cout) || shift.Length != g.Cout)
            throw new ArgumentException($"Conv2dScaleShift: scale and shift must have {g.Cout} values.");
        x = x.Contiguous();
        var w = weight.Contiguous();
        var y = Empty(g.N, g.Cout, g.OH, g.OW);
        if (Winograd.Preferred(g))
            Conv.ForwardWinograd(g, Winograd.TileSize, x.Span, WinogradWeights.Get(w, g, Winograd.TileSize), scale, shift, relu, y.Span);
        else
            Conv.ForwardScaleShift(g, x.Span, w.Span, scale, shift, relu, y.Span);
        return y;
    }

    private static ConvGeom ConvGeometry(Tensor x, Tensor weight, Tensor? bias, (int h, int w) stride, (int h, int w) padding, (int h, int w) dilation, int groups)
    {
        string shapes = $"input {Shapes.Format(x.Dims)}, weight {Shapes.Format(weight.Dims)}" + (bias is null ? "" : $", bias {Shapes.Format(bias.Dims)}");
        if (x.Rank != 4) throw new ArgumentException($"Conv2d needs a 4-D input [N, C, H, W]; got {shapes}.");
        if (weight.Rank != 4) throw new ArgumentException($"Conv2d needs a 4-D weight [Cout, Cin/groups, kH, kW]; got {shapes}.");
        if (groups < 1) throw new ArgumentException($"Conv2d groups must be ≥ 1; got {groups}.");
        if (stride.h < 1 || stride.w < 1 || dilation.h < 1 || dilation.w < 1 || padding.h < 0 || padding.w < 0)
            throw new ArgumentException($"Conv2d needs stride ≥ 1, dilation ≥ 1 and padding ≥ 0; got stride {stride}, padding {padding}, dilation {dilation}.");
        int cin = x.Dims[1], cout = weight.Dims[0];
        if (cin % groups != 0 || cout % groups != 0)
            throw new ArgumentException($"Conv2d: input channels {cin} and output channels {cout} must both divide by groups = {groups} ({shapes}).");
        if (weight.Dims[1] != cin / groups)
            throw new ArgumentException($"Conv2d: weight expects {weight.Dims[1]} input channels per group but the input has {cin} channels in {groups} group(s) ({shapes}).");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != cout))
            throw new ArgumentException($"Conv2d: bias must be [{cout}] ({shapes}).");
        var g = new ConvGeom(x.Dims[0], cin, x.Dims[2], x.Dims[3], cout, weight.Dims[2], weight.Dims[3],
            stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups);
        if (g.OH <= 0 || g.OW <= 0)
            throw new ArgumentException($"Conv2d: the padded input is smaller than the dilated kernel ({shapes}, padding {padding}, dilation {dilation}).");
        return g;
    }
}

/// <summary>
/// Winograd-transformed weights (<see cref="Winograd.TransformWeights"/>) of frozen conv weights, kept per weight tensor
/// (weakly: they go with the tensor) together with a copy of the weights they were made from. Every use compares the
/// weights with that copy (a vectorised pass, a fraction of the transform's cost) and transforms again when anything
/// changed, so writes into a frozen weight's memory never leave stale transforms behind.
/// </summary>
internal static class WinogradWeights
{
    private sealed class Entry
    {
        public int M;
        public float[] Source = [], U = [];
    }

    private static readonly ConditionalWeakTable<Tensor, Entry> Cache = new();

    /// <summary>u (α², Cout, Cin) for the contiguous weight w (Cout, Cin, 3, 3) and tile size m.</summary>
    public static unsafe ReadOnlySpan<float> Get(Tensor w, ConvGeom g, int m)
    {
        var entry = Cache.GetOrCreateValue(w);
        lock (entry)
        {
            var span = w.Span;
            if (entry.M == m && entry.Source.Length == span.Length && span.SequenceEqual(entry.Source)) return entry.U;
            var u = new float[Winograd.WeightFloats(g, m)];
            fixed (float* pw = span) fixed (float* pu = u) Winograd.TransformWeights(g, m, pw, pu);
            entry.Source = span.ToArray();
            entry.U = u;
            entry.M = m;
            return u;
        }
    }
}
