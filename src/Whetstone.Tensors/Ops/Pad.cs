using Whetstone.Tensors.Autograd;

namespace Whetstone.Tensors;

// Constant padding of the last two axes of [N, C, H, W] (or [C, H, W]), each side on its own: Keras' ZeroPadding2D,
// ONNX Pad, TF "same" padding with an even kernel or stride 2 (one more row/column at the bottom/right).
public sealed partial class Tensor
{
    /// <summary>
    /// [.., H, W] → [.., top + H + bottom, left + W + right], the border filled with <paramref name="value"/>.
    /// Backward crops the gradient back to the interior.
    /// </summary>
    public Tensor Pad2d(int top, int bottom, int left, int right, float value = 0)
    {
        if (Rank < 2) throw new ArgumentException($"Pad2d needs at least 2 axes; got {Shapes.Format(Dims)}.");
        if (top < 0 || bottom < 0 || left < 0 || right < 0)
            throw new ArgumentException($"Pad2d amounts must be ≥ 0; got top {top}, bottom {bottom}, left {left}, right {right}.");
        var x = Contiguous();
        int h = Dims[^2], w = Dims[^1], oh = h + top + bottom, ow = w + left + right;
        int planes = h * w == 0 ? 0 : x.Size / (h * w);
        var shape = (int[])Dims.Clone();
        shape[^2] = oh;
        shape[^1] = ow;
        var y = Empty(shape);
        var src = x.Span;
        var dst = y.Span;
        for (int p = 0; p < planes; p++)
        {
            var plane = dst.Slice(p * oh * ow, oh * ow);
            if (value == 0) plane.Clear(); else plane.Fill(value);
            for (int r = 0; r < h; r++)
                src.Slice((p * h + r) * w, w).CopyTo(plane.Slice((top + r) * ow + left, w));
        }
        if (Graph.Needs(x))
            Graph.Record(y, "pad2d", gy =>
            {
                var g = gy.Contiguous().Span;
                var gx = x.GradBuffer(out bool fresh).Span;
                for (int p = 0; p < planes; p++)
                    for (int r = 0; r < h; r++)
                    {
                        var from = g.Slice(p * oh * ow + (top + r) * ow + left, w);
                        var to = gx.Slice((p * h + r) * w, w);
                        if (fresh) from.CopyTo(to); else Kernels.Elementwise.AddInto(from, to);
                    }
            }, x);
        return y;
    }
}
