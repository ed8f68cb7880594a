using StbImageSharp;

namespace Whetstone.Training.Data;

/// <summary>
/// One decoded image: <see cref="Height"/> × <see cref="Width"/> × <see cref="Channels"/> float pixels in
/// row-major HWC order, values in [0, 255] as decoded (1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA).
/// </summary>
public sealed class ImageData
{
    public int Height { get; }
    public int Width { get; }
    public int Channels { get; }

    /// <summary>Pixels in HWC order, length Height·Width·Channels.</summary>
    public float[] Pixels { get; }

    public ImageData(int height, int width, int channels, float[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (channels is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(channels), channels, "An image has 1 to 4 channels.");
        if (pixels.Length != height * width * channels)
            throw new ArgumentException($"{pixels.Length} pixels do not fill {height}×{width}×{channels}.", nameof(pixels));
        (Height, Width, Channels, Pixels) = (height, width, channels, pixels);
    }

    public float this[int y, int x, int c] => Pixels[(y * Width + x) * Channels + c];
}

/// <summary>A decoded image as bytes (HWC): how every source stores pixels, a quarter of the float size.</summary>
internal readonly record struct RawImage(ReadOnlyMemory<byte> Pixels, int Height, int Width, int Channels)
{
    public ImageData ToImageData()
    {
        var src = Pixels.Span;
        var f = new float[src.Length];
        for (int i = 0; i < f.Length; i++) f[i] = src[i];
        return new ImageData(Height, Width, Channels, f);
    }
}

/// <summary>Decodes image files with StbImageSharp; failures become <see cref="DataException"/>s naming the file.</summary>
internal static class ImageDecoder
{
    /// <summary>Extensions StbImageSharp decodes; other files in an image folder are skipped.</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".psd", ".hdr", ".pic", ".pnm", ".ppm", ".pgm" };

    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path));

    public static RawImage Decode(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException($"Cannot read image file '{path}': {e.Message}", e);
        }
        ImageResult result;
        try { result = ImageResult.FromMemory(bytes, ColorComponents.Default); }
        catch (Exception e)
        {
            throw new DataException($"Cannot decode image file '{path}' ({bytes.Length} bytes): {e.Message}. Expected a PNG, JPEG, BMP, GIF or TGA image.", e);
        }
        if (result?.Data is null || result.Width <= 0 || result.Height <= 0)
            throw new DataException($"Cannot decode image file '{path}' ({bytes.Length} bytes). Expected a PNG, JPEG, BMP, GIF or TGA image.");
        int c = (int)result.Comp;
        return new RawImage(result.Data, result.Height, result.Width, c);
    }
}
