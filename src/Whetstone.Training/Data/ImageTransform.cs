using System.Buffers;
using System.Numerics;
using Whetstone.Tensors;

namespace Whetstone.Training.Data;

/// <summary>
/// One image (HWC pixels) → one CHW plane set of ImageSize² per channel, in a single pass per axis: the resize,
/// the (padded) crop and the flip are folded into per-axis filter taps, then a horizontal and a vertical pass.
/// Axis letters: H, W source size; S output side; rH, rW the size after resize (before the crop).
/// </summary>
internal static class ImageTransform
{
    /// <summary>Where output pixels come from along one axis: source taps and weights, or padding (Count 0).</summary>
    private readonly struct AxisTaps(int[] start, int[] count, float[] weights, int stride)
    {
        public readonly int[] Start = start, Count = count;
        public readonly float[] Weights = weights;   // (S, Stride)
        public readonly int Stride = stride;
    }

    /// <summary>
    /// Taps for <paramref name="outLen"/> outputs: source pixels [srcStart, srcStart+srcLen) resized to
    /// <paramref name="resized"/> pixels, read from resized position <paramref name="offset"/> on (outside → padding).
    /// Triangle filter, support widened by the scale when shrinking, weights normalised over the taps in range (PIL's scheme).
    /// </summary>
    private static AxisTaps Taps(int srcStart, int srcLen, int resized, int offset, int outLen)
    {
        double scale = (double)srcLen / resized;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterScale;   // triangle filter has radius 1
        int stride = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outLen];
        var count = new int[outLen];
        var weights = new float[outLen * stride];
        Span<double> w = stackalloc double[stride];
        for (int o = 0; o < outLen; o++)
        {
            int r = o + offset;
            if (r < 0 || r >= resized) continue;   // padding
            double center = (r + 0.5) * scale;
            int lo = Math.Max(0, (int)(center - support + 0.5));
            int hi = Math.Min(srcLen, (int)(center + support + 0.5));
            double sum = 0;
            int n = hi - lo;
            for (int k = 0; k < n; k++)
            {
                double t = Math.Abs((lo + k + 0.5 - center) / filterScale);
                w[k] = t < 1 ? 1 - t : 0;
                sum += w[k];
            }
            start[o] = srcStart + lo;
            count[o] = n;
            for (int k = 0; k < n; k++) weights[o * stride + k] = (float)(w[k] / sum);
        }
        return new AxisTaps(start, count, weights, stride);
    }

    /// <summary>The crop plan along both axes: source box, size after resize, offset of the output window in it, flip.</summary>
    internal readonly record struct Plan(int Y0, int BoxH, int X0, int BoxW, int ResizedH, int ResizedW, int OffY, int OffX, bool Flip);

    /// <summary>Draws the plan; <paramref name="rng"/> null means evaluation (centre crop, no augmentation).</summary>
    internal static Plan MakePlan(int h, int w, Preprocess p, Rng? rng, string what)
    {
        int sh = p.Height, sw = p.Width;
        var aug = rng is null ? AugmentOptions.None : p.Augment;
        int y0 = 0, x0 = 0, boxH = h, boxW = w, rh, rw;
        if (aug.MinCropScale < 1)
        {
            (y0, x0, boxH, boxW) = RandomResizedBox(h, w, aug.MinCropScale, rng!);
            (rh, rw) = (sh, sw);
        }
        else
        {
            (rh, rw) = p.Resize switch
            {
                ResizeMode.Stretch => (sh, sw),
                ResizeMode.None => (h, w),
                _ => ShorterSide(h, w, p.ResizeTo > 0 ? p.ResizeTo : Math.Max(sh, sw)),
            };
        }
        int pad = aug.CropPadding;
        if (rh + 2 * pad < sh || rw + 2 * pad < sw)
            throw new DataException($"Image {what} is {h}×{w}{(rh != h || rw != w ? $" ({rh}×{rw} after resize)" : "")}, smaller than the {sh}×{sw} crop. Resize it (Preprocess.Resize) or use larger images.");
        int offY = Offset(rh, pad, sh, rng), offX = Offset(rw, pad, sw, rng);
        bool flip = aug.HorizontalFlip && rng!.NextDouble() < 0.5;
        return new Plan(y0, boxH, x0, boxW, rh, rw, offY, offX, flip);
    }

    /// <summary>torchvision's Resize(int): the shorter side becomes <paramref name="target"/>, the longer one scales and truncates.</summary>
    private static (int, int) ShorterSide(int h, int w, int target) =>
        h <= w ? (target, Math.Max(1, (int)((long)target * w / h))) : (Math.Max(1, (int)((long)target * h / w)), target);

    /// <summary>Window start in the resized image: random over the padded range when augmenting, else centred (Python's round).</summary>
    private static int Offset(int resized, int pad, int s, Rng? rng) =>
        rng is not null && resized + 2 * pad > s ? rng.NextInt(resized + 2 * pad - s + 1) - pad
        : (int)Math.Round((resized - s) / 2.0, MidpointRounding.ToEven);

    private static (int Y0, int X0, int H, int W) RandomResizedBox(int h, int w, float minScale, Rng rng)
    {
        double area = (double)h * w, logLo = Math.Log(3.0 / 4), logHi = Math.Log(4.0 / 3);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (minScale + (1 - minScale) * rng.NextDouble());
            double ratio = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int cw = (int)Math.Round(Math.Sqrt(target * ratio)), ch = (int)Math.Round(Math.Sqrt(target / ratio));
            if (cw > 0 && cw <= w && ch > 0 && ch <= h)
                return (rng.NextInt(h - ch + 1), rng.NextInt(w - cw + 1), ch, cw);
        }
        return (0, 0, h, w);
    }

    /// <summary>
    /// Writes the transformed image into <paramref name="dst"/> (3 planes of H×W, CHW), normalised. Pixels are HWC with
    /// <paramref name="c"/> channels: 1 or 2 (grey, grey + alpha) replicate the grey, 3 or 4 (RGB, RGBA) drop alpha.
    /// </summary>
    internal static void Apply<T>(ReadOnlySpan<T> pixels, int h, int w, int c, Preprocess p, Rng? rng, Span<float> dst, string what)
        where T : unmanaged, INumberBase<T>
    {
        int sh = p.Height, sw = p.Width;
        var plan = MakePlan(h, w, p, rng, what);
        var ty = Taps(plan.Y0, plan.BoxH, plan.ResizedH, plan.OffY, sh);
        var tx = Taps(plan.X0, plan.BoxW, plan.ResizedW, plan.OffX, sw);

        // Source rows the vertical pass reads.
        int rowLo = int.MaxValue, rowHi = -1;
        for (int o = 0; o < sh; o++)
            if (ty.Count[o] > 0) { rowLo = Math.Min(rowLo, ty.Start[o]); rowHi = Math.Max(rowHi, ty.Start[o] + ty.Count[o] - 1); }
        int rows = Math.Max(0, rowHi - rowLo + 1);

        // Horizontal pass: tmp (rows, W, 3).
        var tmp = ArrayPool<float>.Shared.Rent(Math.Max(1, rows * sw * 3));
        try
        {
            bool grey = c < 3;
            for (int r = 0; r < rows; r++)
            {
                var src = pixels.Slice((rowLo + r) * w * c, w * c);
                var row = tmp.AsSpan(r * sw * 3, sw * 3);
                for (int o = 0; o < sw; o++)
                {
                    float a0 = 0, a1 = 0, a2 = 0;
                    int n = tx.Count[o], x = tx.Start[o], wb = o * tx.Stride;
                    for (int k = 0; k < n; k++)
                    {
                        float wk = tx.Weights[wb + k];
                        int i = (x + k) * c;
                        if (grey) { a0 += wk * float.CreateTruncating(src[i]); }
                        else
                        {
                            a0 += wk * float.CreateTruncating(src[i]);
                            a1 += wk * float.CreateTruncating(src[i + 1]);
                            a2 += wk * float.CreateTruncating(src[i + 2]);
                        }
                    }
                    if (grey) a1 = a2 = a0;
                    row[o * 3] = a0; row[o * 3 + 1] = a1; row[o * 3 + 2] = a2;
                }
            }

            // Vertical pass, channel order, mean image, normalisation, padding, flip: dst (3, H, W). Padding is a 0 pixel.
            int plane = sh * sw;
            var mean = p.MeanImage?.Values;
            for (int ch = 0; ch < 3; ch++)
            {
                var (a, b) = p.Normalization.Affine(ch);
                int src = p.Channels == ChannelOrder.Bgr ? 2 - ch : ch;
                var outPlane = dst.Slice(ch * plane, plane);
                var meanPlane = mean is null ? default : mean.AsSpan(ch * plane, plane);
                for (int oy = 0; oy < sh; oy++)
                {
                    var outRow = outPlane.Slice(oy * sw, sw);
                    var meanRow = mean is null ? default : meanPlane.Slice(oy * sw, sw);
                    int n = ty.Count[oy];
                    if (n == 0)
                    {
                        if (mean is null) outRow.Fill(b);
                        else for (int ox = 0; ox < sw; ox++) outRow[ox] = -meanRow[ox] * a + b;
                        continue;
                    }
                    int r0 = ty.Start[oy] - rowLo, wb = oy * ty.Stride;
                    for (int ox = 0; ox < sw; ox++)
                    {
                        int dx = plan.Flip ? sw - 1 - ox : ox;
                        float m = mean is null ? 0 : meanRow[dx];
                        if (tx.Count[ox] == 0) { outRow[dx] = -m * a + b; continue; }
                        float v = 0;
                        for (int k = 0; k < n; k++) v += ty.Weights[wb + k] * tmp[((r0 + k) * sw + ox) * 3 + src];
                        outRow[dx] = (v - m) * a + b;
                    }
                }
            }
        }
        finally { ArrayPool<float>.Shared.Return(tmp); }
    }
}
