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
