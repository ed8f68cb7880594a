using SkiaSharp;
using Whetstone.Training.Data;

namespace Whetstone.Training.Reports;

/// <summary>PNG thumbnails of decoded images (SkiaSharp encoder), for the report's mistakes gallery.</summary>
internal static class Thumbnails
{
    /// <summary>
    /// The image as PNG bytes, scaled down (never up) so its longer side is at most <paramref name="maxSize"/>.
    /// Pixels are floats in [0, 255], HWC, with 1 (grey), 3 (RGB) or 4 (RGBA) channels.
    /// </summary>
    public static byte[] Png(ImageData image, int maxSize = 96)
    {
        ArgumentNullException.ThrowIfNull(image);
        int h = image.Height, w = image.Width, c = image.Channels;
        if (c is not (1 or 3 or 4)) throw new ArgumentException($"A thumbnail needs 1, 3 or 4 channels (got {c}).");
        var rgba = new byte[h * w * 4];
        var px = image.Pixels;
        for (int i = 0; i < h * w; i++)
        {
            byte B(int ch) => (byte)Math.Clamp(MathF.Round(px[i * c + ch]), 0, 255);
            byte r = B(0), g = c == 1 ? r : B(1), b = c == 1 ? r : B(2), a = c == 4 ? B(3) : (byte)255;
            (rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2], rgba[4 * i + 3]) = (r, g, b, a);
        }
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        double scale = Math.Min(1.0, (double)maxSize / Math.Max(w, h));
        if (scale < 1)
        {
            var small = new SKImageInfo(Math.Max(1, (int)Math.Round(w * scale)), Math.Max(1, (int)Math.Round(h * scale)), SKColorType.Rgba8888, SKAlphaType.Unpremul);
            using var resized = bitmap.Resize(small, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
            return Encode(resized);
        }
        return Encode(bitmap);
    }

    private static byte[] Encode(SKBitmap bitmap)
    {
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("SkiaSharp could not encode a PNG thumbnail.");
        return data.ToArray();
    }
}
