using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Training.Config;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tasks;

/// <summary>
/// The pixel preprocessing a backbone expects, from the config's data keys: a preprocessing graph (<c>data.preprocess_graph</c>,
/// by default the one in the model folder) or the hand-set <c>data.channels</c>, <c>data.mean_image</c>,
/// <c>data.normalization</c> / <c>data.mean</c> + <c>data.std</c>. The two ways do not mix: a key set by hand while a
/// graph is in effect is an error naming both.
/// </summary>
internal static class ModelPreprocessing
{
    /// <summary>What the pixels go through before the backbone, and where it came from (for the log and dry run).</summary>
    internal sealed record Resolved(Normalization Normalization, ChannelOrder Channels, MeanImage? MeanImage, string? Graph);

    public static Resolved Resolve(TrainConfig cfg, string modelPath, int height, int width)
    {
        var d = cfg.Data;
        string? graph = d.PreprocessGraph switch
        {
            "auto" => ModelSource.PreprocessingGraph(modelPath),
            "none" => null,
            null or "" => throw new ConfigException($"{cfg.Source}: data.preprocess_graph must be auto, none or a path to an .onnx preprocessing graph."),
            var p => Assets.Resolve(p, cfg.BaseDirectory, fetch: true),
        };
        if (d.Channels is not ("auto" or "rgb" or "bgr"))
            throw new ConfigException($"{cfg.Source}: data.channels must be auto, rgb or bgr (got '{d.Channels}').");
        if (graph is not null)
        {
            var hand = new List<string>();
            if (d.Channels != "auto") hand.Add("data.channels");
            if (d.MeanImage is not null) hand.Add("data.mean_image");
            if (d.Normalization != "auto") hand.Add("data.normalization");
            if (d.Mean is not null || d.Std is not null) hand.Add("data.mean/std");
            if (hand.Count > 0)
                throw new ConfigException($"{cfg.Source}: {string.Join(", ", hand)} cannot be set by hand while the preprocessing graph '{graph}' is in effect (it defines the channel order, mean and scale); set data.preprocess_graph: none to give them yourself.");
            if (!File.Exists(graph)) throw new ConfigException($"{cfg.Source}: data.preprocess_graph '{graph}' does not exist.");
            OnnxPreprocessing imported;
            try { imported = OnnxPreprocess.Import(graph); }
            catch (OnnxImportException e) { throw new ConfigException($"{cfg.Source}: data.preprocess_graph: {e.Message}", e); }
            try { return FromGraph(imported, height, width); }
            catch (ArgumentException e) { throw new ConfigException($"{cfg.Source}: data.preprocess_graph: {e.Message}", e); }
        }

        var channels = d.Channels == "bgr" ? ChannelOrder.Bgr : ChannelOrder.Rgb;
        MeanImage? mean = null;
        if (d.MeanImage is not null)
        {
            var path = Assets.Resolve(d.MeanImage, cfg.BaseDirectory, fetch: true);
            try { mean = ReadMeanImage(path); }
            catch (Exception e) when (e is ArgumentException or SafeTensorsFormatException or FileNotFoundException or IOException)
            { throw new ConfigException($"{cfg.Source}: data.mean_image: {e.Message}", e); }
            if (mean.Height != height || mean.Width != width)
                throw new ConfigException($"{cfg.Source}: data.mean_image '{path}' is 3×{mean.Height}×{mean.Width} but the model input is 3×{height}×{width}; set data.image_size to match or use a mean image of that size.");
        }
        return new Resolved(HandNormalization(cfg, modelPath), channels, mean, null);
    }

    /// <summary>An imported graph as channels, mean image and mean/std for a <paramref name="height"/> × <paramref name="width"/> input.</summary>
    public static Resolved FromGraph(OnnxPreprocessing g, int height, int width)
    {
        ChannelOrder channels = g.ChannelOrder switch
        {
            [0, 1, 2] => ChannelOrder.Rgb,
            [2, 1, 0] => ChannelOrder.Bgr,
            var o => throw new ArgumentException($"'{g.Source}' reorders the channels to [{string.Join(", ", o)}] of RGB, which is neither RGB nor BGR."),
        };
        // (x − M)·A + B = ((x − M)/255 − mean)/std with std = 1/(255·A), mean = −B·std.
        var std = new float[3];
        var meanValues = new float[3];
        for (int c = 0; c < 3; c++)
        {
            if (!(g.Scale[c] > 0)) throw new ArgumentException($"'{g.Source}' scales channel {c} by {g.Scale[c]}; only a positive scale is expressible.");
            double s = 1.0 / (255.0 * g.Scale[c]);
            std[c] = (float)s;
            meanValues[c] = (float)(-g.Offset[c] * s) + 0f;   // + 0: no "-0" for a zero offset
        }
        if ((g.Height > 0 && g.Height != height) || (g.Width > 0 && g.Width != width))
            throw new ArgumentException($"'{g.Source}' is written for {g.Height}×{g.Width} images but the model input is {height}×{width}; set data.image_size to {g.Height}{(g.Width != g.Height ? $" and data.image_width to {g.Width}" : "")}.");
        MeanImage? mean = g.MeanImage is null ? null : new MeanImage(3, g.Height, g.Width, g.MeanImage, $"{Path.GetFileName(g.Source)} (per-pixel mean)");
        var norm = new Normalization(meanValues.Distinct().Count() == 1 ? [meanValues[0]] : meanValues, std.Distinct().Count() == 1 ? [std[0]] : std);
        return new Resolved(norm, channels, mean, g.Source);
    }

    /// <summary>A mean image from a .safetensors file holding one float tensor [3, H, W] or [1, 3, H, W].</summary>
    public static MeanImage ReadMeanImage(string path)
    {
        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' is not a .safetensors file (a mean image is one tensor [3, H, W] in a .safetensors file; an ONNX preprocessing graph goes in data.preprocess_graph).");
        var tensors = SafeTensors.LoadAll(path);
        if (tensors.Count != 1) throw new ArgumentException($"'{path}' holds {tensors.Count} tensors; a mean image file holds one.");
        var t = tensors.Values.Single();
        var shape = t.Shape.ToArray();
        if (shape is [1, 3, _, _]) shape = shape[1..];
        if (shape is not [3, > 0, > 0]) throw new ArgumentException($"'{path}' holds a tensor [{string.Join(", ", t.Shape.ToArray())}]; a mean image is [3, H, W] or [1, 3, H, W].");
        return new MeanImage(3, shape[1], shape[2], t.ToArray(), Path.GetFileName(path));
    }

    private static Normalization HandNormalization(TrainConfig cfg, string modelPath)
    {
        var d = cfg.Data;
        if (d.Mean is not null || d.Std is not null)
        {
            if (d.Mean is null || d.Std is null) throw new ConfigException($"{cfg.Source}: data.mean and data.std go together.");
            var n = new Normalization(d.Mean.ToArray(), d.Std.ToArray());
            try { n.Validate(); } catch (ArgumentException e) { throw new ConfigException($"{cfg.Source}: data.mean/std: {e.Message}", e); }
            return n;
        }
        return d.Normalization switch
        {
            // nsfwjs feeds its TF.js models pixels / 255 (dist/esm/core.js); PaddleOCR's classifier expects (x/255 − 0.5) / 0.5.
            "auto" => ModelSource.FormatOf(modelPath) == "onnx" ? Normalization.MinusOneToOne : Normalization.ZeroToOne,
            "zero_to_one" => Normalization.ZeroToOne,
            "minus_one_to_one" => Normalization.MinusOneToOne,
            "imagenet" => Normalization.ImageNet,
            _ => throw new ConfigException($"{cfg.Source}: data.normalization must be auto, zero_to_one, minus_one_to_one or imagenet (or give data.mean and data.std); got '{d.Normalization}'."),
        };
    }
}
