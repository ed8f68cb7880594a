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

/// <summary>The order of the three colour channels the model reads (decoded images are RGB).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ChannelOrder>))]
public enum ChannelOrder
{
    Rgb,
    /// <summary>Blue, green, red (Caffe/CNTK-trained models such as ML.NET's ResNet-18).</summary>
    Bgr,
}

/// <summary>
/// A per-pixel mean image subtracted from the pixels (0–255 units) before the normalisation: (Channels, Height, Width)
/// in the model's channel order, as ML.NET's ResNet-18 preprocessing does with its 3×224×224 ImageNet mean. In JSON
/// the values travel as base64 of little-endian float32 next to their shape, source and SHA-256.
/// </summary>
[JsonConverter(typeof(MeanImageJsonConverter))]
public sealed class MeanImage : IEquatable<MeanImage>
{
    public MeanImage(int channels, int height, int width, float[] values, string source)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (channels != 3 || height <= 0 || width <= 0) throw new ArgumentException($"A mean image is [3, H, W]; got [{channels}, {height}, {width}].");
        if (values.Length != channels * height * width) throw new ArgumentException($"A [{channels}, {height}, {width}] mean image needs {channels * height * width} values; got {values.Length}.");
        if (values.Any(v => !float.IsFinite(v))) throw new ArgumentException("A mean image must hold finite values.");
        (Channels, Height, Width, Values, Source) = (channels, height, width, values, source ?? "");
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>(Channels, Height, Width), row-major.</summary>
    public float[] Values { get; }

    /// <summary>Where it came from (a file, or a preprocessing graph's node), for messages.</summary>
    public string Source { get; }

    /// <summary>SHA-256 (hex) of the values as little-endian float32.</summary>
    public string Sha256 => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Values.AsSpan())));

    public bool Equals(MeanImage? other) =>
        other is not null && Channels == other.Channels && Height == other.Height && Width == other.Width && Values.AsSpan().SequenceEqual(other.Values);

    public override bool Equals(object? obj) => Equals(obj as MeanImage);
    public override int GetHashCode() => HashCode.Combine(Channels, Height, Width, Values.Length > 0 ? Values[0] : 0);
}

internal sealed class MeanImageJsonConverter : JsonConverter<MeanImage>
{
    public override MeanImage Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var doc = JsonDocument.ParseValue(ref reader);
        var e = doc.RootElement;
        try
        {
            var shape = e.GetProperty("Shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            if (shape.Length != 3) throw new DataException($"MeanImage.Shape must have 3 entries, not {shape.Length}.");
            var bytes = Convert.FromBase64String(e.GetProperty("F32Base64").GetString() ?? "");
            if (bytes.Length % 4 != 0) throw new DataException("MeanImage.F32Base64 is not a whole number of float32 values.");
            var values = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            var image = new MeanImage(shape[0], shape[1], shape[2], values, e.TryGetProperty("Source", out var src) ? src.GetString() ?? "" : "");
            if (e.TryGetProperty("Sha256", out var sha) && sha.GetString() is { } want && want != image.Sha256)
                throw new DataException($"MeanImage values do not match their SHA-256 ({want}).");
            return image;
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FormatException or InvalidOperationException or ArgumentException)
        {
            throw new DataException($"MeanImage in the preprocessing JSON is malformed: {ex.Message}", ex);
        }
    }

    public override void Write(Utf8JsonWriter writer, MeanImage value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("Shape");
        writer.WriteNumberValue(value.Channels);
        writer.WriteNumberValue(value.Height);
        writer.WriteNumberValue(value.Width);
        writer.WriteEndArray();
        writer.WriteString("Source", value.Source);
        writer.WriteString("Sha256", value.Sha256);
        var bytes = new byte[value.Values.Length * 4];
        Buffer.BlockCopy(value.Values, 0, bytes, 0, bytes.Length);
        writer.WriteString("F32Base64", Convert.ToBase64String(bytes));
        writer.WriteEndObject();
    }
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
/// → channel order (<see cref="Channels"/>) → minus the mean image (<see cref="MeanImage"/>, when there is one) →
/// normalise → NCHW float. Resizing is bilinear with half-pixel centres (align_corners=False) and, when shrinking,
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

    /// <summary>The channel order the model reads; mean, std and the mean image are given in this order.</summary>
    public ChannelOrder Channels { get; init; } = ChannelOrder.Rgb;

    /// <summary>Subtracted from the pixels (0–255 units) before <see cref="Normalization"/>; [3, Height, Width]; null for none.</summary>
    public MeanImage? MeanImage { get; init; }

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
        if (!Enum.IsDefined(Channels)) throw new ArgumentException($"Channels must be Rgb or Bgr, not {Channels}.");
        if (MeanImage is { } m && (m.Height != Height || m.Width != Width))
            throw new ArgumentException($"The mean image ({m.Source}) is {m.Channels}×{m.Height}×{m.Width} but the model input is 3×{Height}×{Width}; use that input size (data.image_size) or a mean image of this size.");
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
