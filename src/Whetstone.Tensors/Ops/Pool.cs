using System.Buffers;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors;

// 2-D pooling over the last two axes of [N, C, H, W] (or [C, H, W]); floor output size (ceil_mode = false).
public sealed partial class Tensor
{
    /// <summary>Max pool with a square window; <paramref name="stride"/> defaults to the kernel size (as PyTorch).</summary>
    public Tensor MaxPool2d(int kernel, int? stride = null, int padding = 0) =>
        MaxPool2d((kernel, kernel), (stride ?? kernel, stride ?? kernel), (padding, padding));

    /// <summary>Max over each window; padding never wins (implicit −∞). Backward routes dy to the first maximum.</summary>
    public Tensor MaxPool2d((int h, int w) kernel, (int h, int w) stride, (int h, int w) padding)
    {
        var g = PoolGeometry("MaxPool2d", kernel, stride, padding);
        var x = Contiguous();
        var y = Empty(PoolShape(g));
        int count = y.Size;
        if (!Graph.Needs(x))
        {
            Pool.MaxForward<float>(g, x.Span, y.Span, []);   // no backward: no argmax to keep (the vectorised path)
            return y;
        }
        var arg = ArrayPool<int>.Shared.Rent(count);   // argmax per output; goes back after the backward
        Pool.MaxForward<float>(g, x.Span, y.Span, arg.AsSpan(0, count));
        Graph.Record(y, "maxpool2d", gy =>
        {
            var gx = x.GradBuffer(out bool fresh);
            Pool.MaxBackward<float>(g, gy.Contiguous().Span, arg.AsSpan(0, count), gx.Span, accumulate: !fresh);
            ArrayPool<int>.Shared.Return(arg);
        }, x);
        return y;
    }

    /// <summary>Average pool with a square window; <paramref name="stride"/> defaults to the kernel size (as PyTorch).</summary>
    public Tensor AvgPool2d(int kernel, int? stride = null, int padding = 0, bool countIncludePad = true) =>
        AvgPool2d((kernel, kernel), (stride ?? kernel, stride ?? kernel), (padding, padding), countIncludePad);

    /// <summary>
    /// Mean over each window. With <paramref name="countIncludePad"/> (PyTorch's default) every window divides by
    /// kH·kW; otherwise by the number of in-bounds elements.
    /// </summary>
    public Tensor AvgPool2d((int h, int w) kernel, (int h, int w) stride, (int h, int w) padding, bool countIncludePad = true)
    {
        var g = PoolGeometry("AvgPool2d", kernel, stride, padding);
        var x = Contiguous();
        var y = Empty(PoolShape(g));
        Pool.AvgForward<float>(g, countIncludePad, x.Span, y.Span);
        if (Graph.Needs(x))
            Graph.Record(y, "avgpool2d", gy =>
            {
                var gx = x.GradBuffer(out bool fresh);
                Pool.AvgBackward<float>(g, countIncludePad, gy.Contiguous().Span, gx.Span, accumulate: !fresh);
            }, x);
        return y;
    }

    /// <summary>
    /// Mean over H and W of [N, C, H, W]: [N, C, 1, 1] by default (PyTorch's AdaptiveAvgPool2d(1)), or [N, C]
    /// with <paramref name="keepDims"/> = false (ready for a Linear head).
    /// </summary>
    public Tensor GlobalAvgPool2d(bool keepDims = true)
    {
        if (Rank != 4) throw new ArgumentException($"GlobalAvgPool2d needs a 4-D input [N, C, H, W]; got {Shapes.Format(Dims)}.");
        int planes = Dims[0] * Dims[1], hw = Dims[2] * Dims[3];
        if (hw == 0) throw new ArgumentException($"GlobalAvgPool2d over an empty plane: {Shapes.Format(Dims)}.");
        var x = Contiguous();
        var y = keepDims ? Empty(Dims[0], Dims[1], 1, 1) : Empty(Dims[0], Dims[1]);
        Pool.GlobalAvgForward<float>(planes, hw, x.Span, y.Span);
        if (Graph.Needs(x))
            Graph.Record(y, "global_avgpool2d", gy =>
            {
                var gx = x.GradBuffer(out bool fresh);
                Pool.GlobalAvgBackward<float>(planes, hw, gy.Contiguous().Span, gx.Span, accumulate: !fresh);
            }, x);
        return y;
    }

    private PoolGeom PoolGeometry(string op, (int h, int w) kernel, (int h, int w) stride, (int h, int w) padding)
    {
        if (Rank is not (3 or 4)) throw new ArgumentException($"{op} needs a 3-D [C, H, W] or 4-D [N, C, H, W] input; got {Shapes.Format(Dims)}.");
        if (kernel.h < 1 || kernel.w < 1 || stride.h < 1 || stride.w < 1 || padding.h < 0 || padding.w < 0)
            throw new ArgumentException($"{op} needs kernel ≥ 1, stride ≥ 1, padding ≥ 0; got kernel {kernel}, stride {stride}, padding {padding}.");
        if (2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
            throw new ArgumentException($"{op}: padding {padding} must be at most half the kernel {kernel}.");
        int planes = 1;
        for (int i = 0; i < Rank - 2; i++) planes *= Dims[i];
        var g = new PoolGeom(planes, Dims[^2], Dims[^1], kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w);
        if (g.OH <= 0 || g.OW <= 0)
            throw new ArgumentException($"{op}: input {Shapes.Format(Dims)} with padding {padding} is smaller than the kernel {kernel}.");
        return g;
    }

    private int[] PoolShape(PoolGeom g)
    {
        var s = (int[])Dims.Clone();
        s[^2] = g.OH; s[^1] = g.OW;
        return s;
    }
}
