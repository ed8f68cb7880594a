using Whetstone.Models.Graph;

namespace Whetstone.Training;

/// <summary>
/// Finds the importer for a pre-trained model path: an <c>.onnx</c> file (ONNX graph), a folder with one ONNX network
/// (and optionally its preprocessing graph), or a TF.js layers model (a folder with <c>model.json</c> or nsfwjs'
/// <c>model.min.js</c>, or either file itself).
/// </summary>
public static class ModelSource
{
    public static string FormatOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return "onnx";
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".min.js", StringComparison.OrdinalIgnoreCase)) return "tfjs";
        }
        else if (Directory.Exists(path))
        {
            if (File.Exists(Path.Combine(path, "model.json")) || File.Exists(Path.Combine(path, "model.min.js"))) return "tfjs";
            if (Directory.GetFiles(path, "*.onnx").Length > 0) { OnnxFiles(path); return "onnx"; }
            if (File.Exists(Path.Combine(path, "config.json")))
                throw new NotSupportedException($"'{path}' is a Hugging Face model folder; image classification here imports TF.js layers models and ONNX graphs (Hugging Face text models come with the text workflow).");
        }
        else throw new FileNotFoundException($"Model path '{path}' does not exist.");
        throw new NotSupportedException($"'{path}' is neither an .onnx file nor a TF.js layers model (a folder with model.json or model.min.js).");
    }

    /// <summary>
    /// The ONNX files of a model folder: the network, and the image preprocessing graph beside it when there is one
    /// (ML.NET's ResNet-18 asset: ResNet18.onnx + ResNetPreprocess.onnx). A preprocessing graph is recognised by what
    /// it computes (only channel splits, concatenations and arithmetic with constants; see
    /// <see cref="Models.Importers.Onnx.OnnxPreprocess.IsPreprocessingGraph"/>), not by its name.
    /// </summary>
    public static (string Model, string? Preprocess) OnnxFiles(string folder)
    {
        var files = Directory.GetFiles(folder, "*.onnx").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 1) return (files[0], null);
        var prep = files.Where(Models.Importers.Onnx.OnnxPreprocess.IsPreprocessingGraph).ToArray();
        var models = files.Except(prep).ToArray();
        if (models.Length == 1 && prep.Length <= 1) return (models[0], prep.FirstOrDefault());
        throw new NotSupportedException(models.Length == 0
            ? $"'{folder}' holds only preprocessing graphs ({string.Join(", ", files.Select(Path.GetFileName))}), no network."
            : $"'{folder}' holds {models.Length} ONNX networks and {prep.Length} preprocessing graph(s) ({string.Join(", ", files.Select(Path.GetFileName))}); a model folder has one network and at most one preprocessing graph. Name the .onnx file in model.path.");
    }

    /// <summary>The preprocessing graph that comes with the model at <paramref name="path"/> (a folder's), or null.</summary>
    public static string? PreprocessingGraph(string path) =>
        Directory.Exists(path) && FormatOf(path) == "onnx" ? OnnxFiles(path).Preprocess : null;

    /// <summary>
    /// Imports the model at <paramref name="path"/> as a layer graph (NCHW input). With <paramref name="logits"/>, a
    /// softmax that ends the graph (a Softmax layer or node, or the activation of the last layer) is left out.
    /// </summary>
    public static LayerGraph Load(string path, bool logits = false)
    {
        var format = FormatOf(path);
        if (format == "onnx" && Directory.Exists(path)) path = OnnxFiles(path).Model;
        var graph = format == "onnx" ? Models.Importers.Onnx.OnnxModel.Load(path) : Models.Importers.Tfjs.TfjsLayers.Load(path, logits);
        if (logits && graph.Contains(graph.OutputName) && graph.Node(graph.OutputName) is { Kind: "Softmax", Inputs: [var below] } && graph.Contains(below))
            graph.TruncateAt(below);
        return graph;
    }

    /// <summary>The files that make up the model at <paramref name="path"/> (what a bundle copies).</summary>
    public static IReadOnlyList<string> Files(string path)
    {
        if (Directory.Exists(path)) return Directory.GetFiles(path).Order(StringComparer.Ordinal).ToArray();
        if (FormatOf(path) == "onnx") return [path];
        return Directory.GetFiles(Path.GetDirectoryName(Path.GetFullPath(path))!).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>SHA-256 over the model's files (names and contents), identifying the base model in a bundle.</summary>
    public static string Hash(string path) => FileHash.Sha256(Files(path), withNames: true);

    /// <summary>Layer kinds that belong to a source model's own classifier (dropped by the default cut).</summary>
    private static readonly HashSet<string> HeadKinds = new(StringComparer.OrdinalIgnoreCase)
    {
        "Dense", "Dropout", "Flatten", "Softmax", "Reshape", "AveragePooling2D", "GlobalAveragePooling2D",
        "GlobalMaxPooling2D", "Gemm", "MatMul", "GlobalAveragePool", "AveragePool", "Squeeze", "Identity", "Add",
    };

    /// <summary>Of <see cref="HeadKinds"/>, those that classify (the rest only pool or reshape features).</summary>
    private static readonly HashSet<string> ClassifierKinds = new(StringComparer.OrdinalIgnoreCase) { "Dense", "Softmax", "Gemm", "MatMul", "Add" };

    /// <summary>
    /// The default feature layer: walking back from the output past the source model's classifier layers (dense,
    /// dropout, flatten, softmax, global pooling), the first layer that is none of those. A model without a classifier
    /// of its own (a featurizer such as ML.NET's ResNet-18, which ends at its pooled 512-d features) is cut at its output.
    /// </summary>
    public static string DefaultFeatureLayer(LayerGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var name = graph.OutputName;
        bool classifier = false;
        while (graph.Contains(name) && HeadKinds.Contains(graph.Node(name).Kind.Split('+')[0]))
        {
            var node = graph.Node(name);
            // a multi-input layer is followed only by its data input when the others are shapes (ONNX Reshape)
            if (node.Inputs.Count != 1 && !node.Kind.StartsWith("Reshape", StringComparison.Ordinal)) break;
            classifier |= ClassifierKinds.Contains(node.Kind.Split('+')[0]);
            name = node.Inputs[0];
        }
        if (!classifier) return graph.OutputName;
        if (!graph.Contains(name)) throw new InvalidOperationException("The model has no layer below its classifier to take features from.");
        return name;
    }
}
