using System.Text.Json;
using System.Text.Json.Serialization;
using Whetstone.Tensors;

namespace Whetstone.Training.Data;

/// <summary>How an image is brought to the model's input size (before the crop to <see cref="Preprocess.ImageSize"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ResizeMode>))]
public enum ResizeMode
{
    /// <summary>Resize the whole image to ImageSize × ImageSize (aspect ratio not kept).</summary>
    Stretch,
    /// <summary>Resize so the shorter side is <see cref="Preprocess.ResizeTo"/> (aspect kept), then crop ImageSize × ImageSize (centre; random when augmenting).</summary>
    ShorterSide,
    /// <summary>No resize: crop ImageSize × ImageSize from the image as it is; a smaller image is an error.</summary>
    None,
}

/// <summary>
/// Per-channel normalisation of pixels scaled to [0, 1]: <c>(pixel/255 − Mean[c]) / Std[c]</c>. One value in an
/// array applies to all three channels. Every affine form <c>pixel·a + b</c> is one of these
/// (<see cref="FromScaleOffset"/>); Keras' MobileNetV2 <c>x/127.5 − 1</c> is <see cref="MinusOneToOne"/>.
/// </summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>torchvision's ImageNet statistics.</summary>
    public static Normalization ImageNet => new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Pixels scaled to [0, 1].</summary>
    public static Normalization ZeroToOne => new([0f], [1f]);

    /// <summary>Pixels mapped to [−1, 1]: <c>x/127.5 − 1</c> (Keras MobileNetV2 / Inception "tf" mode).</summary>
    public static Normalization MinusOneToOne => new([0.5f], [0.5f]);

    /// <summary>The normalisation that computes <c>pixel·<paramref name="scale"/> + <paramref name="offset"/></c> on pixels in [0, 255].</summary>
    public static Normalization FromScaleOffset(float scale, float offset)
    {
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale must be positive.");
        double std = 1.0 / (255.0 * scale);
        return new([(float)(-offset * std)], [(float)std]);
    }

    /// <summary>The affine map of channel <paramref name="c"/> on raw pixels: out = pixel·A + B.</summary>
    internal (float A, float B) Affine(int c)
    {
        double mean = Mean.Length == 1 ? Mean[0] : Mean[c], std = Std.Length == 1 ? Std[0] : Std[c];
        return ((float)(1.0 / (255.0 * std)), (float)(-mean / std));
    }

    internal void Validate()
    {
        if (Mean is null || Std is null || Mean.Length is not (1 or 3) || Std.Length is not (1 or 3))
            throw new ArgumentException("Normalization needs 1 or 3 means and 1 or 3 standard deviations.");
        if (Std.Any(s => !(s > 0))) throw new ArgumentException($"Normalization standard deviations must be positive: [{string.Join(", ", Std)}].");
    }

    public bool Equals(Normalization? other) =>
        other is not null && Mean.AsSpan().SequenceEqual(other.Mean) && Std.AsSpan().SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Mean.Length, Mean.FirstOrDefault(), Std.FirstOrDefault());
}

/// <summary>Seeded training augmentation; every option off by default. Used only where a loader augments.</summary>
public sealed record AugmentOptions
{
    /// <summary>Mirror left–right with probability ½.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Pad the resized image by this many zero pixels on each side, then crop ImageSize at a random place (torchvision <c>RandomCrop(size, padding)</c>).</summary>
    public int CropPadding { get; init; }

    /// <summary>
    /// Below 1: a random-resized crop instead of the resize — a box of [MinCropScale, 1] of the image's area with aspect
    /// ratio in [3/4, 4/3] (log-uniform), resized to ImageSize (torchvision <c>RandomResizedCrop(size, scale=(MinCropScale, 1))</c>;
    /// after 10 misses the whole image).
    /// </summary>
    public float MinCropScale { get; init; } = 1f;

    public static AugmentOptions None => new();

    internal bool IsNone => !HorizontalFlip && CropPadding == 0 && MinCropScale >= 1f;
}

/// <summary>
/// Image preprocessing, as it travels with a model bundle (plain properties, System.Text.Json round trip):
/// decode → RGB (grey replicated, alpha dropped) → resize (<see cref="Resize"/>) → crop <see cref="ImageSize"/>²
/// → normalise → NCHW float. Resizing is bilinear with half-pixel centres (align_corners=False) and, when shrinking,
/// PIL's antialiasing (the triangle filter widened by the scale): torchvision's <c>resize(antialias=True)</c> on
/// float tensors. Upscaling equals <c>F.interpolate(mode="bilinear", align_corners=False)</c>.
/// </summary>
public sealed record Preprocess
{
    /// <summary>Side of the square model input.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Width of a non-square model input (e.g. 192 for a 48×192 text-line model); 0: square, ImageSize × ImageSize.</summary>
    public int ImageWidth { get; init; }

    /// <summary>Output height: <see cref="ImageSize"/>.</summary>
    [JsonIgnore] public int Height => ImageSize;

    /// <summary>Output width: <see cref="ImageWidth"/>, or <see cref="ImageSize"/> when that is 0.</summary>
    [JsonIgnore] public int Width => ImageWidth > 0 ? ImageWidth : ImageSize;

    public ResizeMode Resize { get; init; } = ResizeMode.Stretch;

    /// <summary>Shorter-side target for <see cref="ResizeMode.ShorterSide"/>; 0 means ImageSize (256 for 224 is ImageNet's usual).</summary>
    public int ResizeTo { get; init; }

    public Normalization Normalization { get; init; } = Normalization.ImageNet;

    /// <summary>Training augmentation (a loader applies it only when asked to augment).</summary>
    public AugmentOptions Augment { get; init; } = AugmentOptions.None;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static Preprocess FromJson(string json)
    {
        var p = JsonSerializer.Deserialize<Preprocess>(json, Json) ?? throw new DataException("Preprocess JSON is null.");
        p.Validate();
        return p;
    }

    /// <summary>Checks the settings (a loader calls this); throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (ImageSize <= 0) throw new ArgumentException($"ImageSize must be positive, not {ImageSize}.");
        if (ImageWidth < 0) throw new ArgumentException($"ImageWidth must be 0 (square) or positive, not {ImageWidth}.");
        if (ResizeTo < 0 || (Resize == ResizeMode.ShorterSide && ResizeTo != 0 && ResizeTo < Math.Max(Height, Width)))
            throw new ArgumentException($"ResizeTo {ResizeTo} must be 0 or at least the crop's larger side {Math.Max(Height, Width)}.");
        (Normalization ?? throw new ArgumentException("Normalization is required.")).Validate();
        var a = Augment ?? throw new ArgumentException("Augment is required (AugmentOptions.None for none).");
        if (a.CropPadding < 0) throw new ArgumentException($"CropPadding must be ≥ 0, not {a.CropPadding}.");
        if (!(a.MinCropScale is > 0 and <= 1)) throw new ArgumentException($"MinCropScale must be in (0, 1], not {a.MinCropScale}.");
    }

    /// <summary>One image (no augmentation) as a [1, 3, Height, Width] tensor in the current scope, for inference.</summary>
    public Tensor ToTensor(ImageData image) => ToTensor([image]);

    /// <summary>Images (no augmentation) as a [N, 3, Height, Width] tensor in the current scope, for inference.</summary>
    public Tensor ToTensor(IReadOnlyList<ImageData> images)
    {
        Validate();
        int plane = 3 * Height * Width;
        var t = Tensor.Empty(images.Count, 3, Height, Width);
        Loading.ForEach(images.Count, i =>
        {
            var im = images[i];
            ImageTransform.Apply<float>(im.Pixels, im.Height, im.Width, im.Channels, this, null, t.Span.Slice(i * plane, plane), $"{i} of {images.Count}");
        });
        return t;
    }
}
