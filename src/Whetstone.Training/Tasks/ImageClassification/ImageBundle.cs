using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Formats;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>A loaded model bundle: the network in eval mode, its preprocessing and its label list (head order).</summary>
public sealed record LoadedImageBundle(string Path, ImageClassifier Model, Preprocess Preprocess, IReadOnlyList<string> Labels, JsonObject Info, double GoldenMaxDiff)
{
    /// <summary>A raw checkpoint scored with its own classifier (<see cref="ImageBundle.FromCheckpoint"/>), not a fine-tuned bundle: it is the model before fine-tuning.</summary>
    public bool IsCheckpoint => Info["source"]?["checkpoint"]?.GetValue<bool>() == true;

    /// <summary>The temperature the logits are divided by before the softmax (1 when the bundle has none).</summary>
    public double Temperature => Bundle.TemperatureOf(Info);

    /// <summary>Two-class bundles: the decision threshold on the second label's scaled probability; null when absent.</summary>
    public double? Threshold => Bundle.ThresholdOf(Info);

    /// <summary>The rule that chose <see cref="Threshold"/>.</summary>
    public string? ThresholdRule => Bundle.ThresholdRuleOf(Info);
}

/// <summary>
/// The model bundle in <c>runs/&lt;name&gt;/model/</c>: <c>model.safetensors</c> (every weight and statistic, dotted
/// names), <c>source/</c> (the imported model's files, which give the architecture), <c>whetstone.json</c> (task, labels
/// in head order, feature layer, head, preprocessing, base-model hash, freezing, metrics) and <c>golden.safetensors</c>
/// (a few preprocessed inputs with the logits they gave). Loading rebuilds the network, loads the weights strictly
/// and replays the golden set, so a bundle that does not reproduce its own predictions is refused.
/// </summary>
public static class ImageBundle
{
    internal static string Save(string dir, ImageClassification recipe, EvalResult before, EvalResult after, string evalName, CalibratedDecision? decision = null)
    {
        var model = recipe.Model;
        var tmp = dir + ".partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(Path.Combine(tmp, "source"));
        foreach (var f in ModelSource.Files(recipe.ModelPath)) File.Copy(f, Path.Combine(tmp, "source", Path.GetFileName(f)));
        string sourceEntry = Directory.Exists(recipe.ModelPath) ? "source" : "source/" + Path.GetFileName(recipe.ModelPath);

        SafeTensors.Save(Path.Combine(tmp, "model.safetensors"), model.StateDict(), new Dictionary<string, string> { ["format"] = Bundle.Format });

        // golden set: the first examples of the evaluation data, preprocessed, with the logits they give now
        var golden = recipe.TestSet ?? recipe.ValidationSet;
        int g = Math.Min(8, golden.Count);
        using (new TensorScope())
        using (Graph.NoGrad())
        {
            model.Eval();
            var inputs = recipe.Inputs(golden, 0, g);
            var logits = model.Forward(inputs);
            SafeTensors.Save(Path.Combine(tmp, "golden.safetensors"), new Dictionary<string, Tensor> { ["inputs"] = inputs, ["logits"] = logits });
            model.Train();
        }

        var info = new JsonObject
        {
            ["format"] = Bundle.Format,
            ["task"] = ImageClassification.TaskName,
            ["labels"] = new JsonArray(recipe.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["source"] = new JsonObject
            {
                ["path"] = sourceEntry,
                ["format"] = ModelSource.FormatOf(recipe.ModelPath),
                ["original"] = recipe.ModelPath,
                ["sha256"] = ModelSource.Hash(recipe.ModelPath),
            },
            ["features"] = recipe.FeatureLayer,
            ["feature_dim"] = model.FeatureDim,
            ["head"] = new JsonObject { ["classes"] = model.HeadSpec.Classes, ["hidden"] = model.HeadSpec.Hidden, ["dropout"] = model.HeadSpec.Dropout },
            ["preprocess"] = JsonNode.Parse(recipe.Preprocess.ToJson()),
            ["trainable_parameters"] = model.TrainableParameterCount(),
            ["frozen"] = new JsonArray(model.NamedParameters().Where(p => !p.Tensor.RequiresGrad).Select(p => (JsonNode?)JsonValue.Create(p.Name)).ToArray()),
            ["metrics"] = new JsonObject { ["split"] = evalName, ["after"] = EvalJson.ToJson(after), ["before"] = EvalJson.ToJson(before) },
            ["golden"] = new JsonObject { ["file"] = "golden.safetensors", ["count"] = g, ["tolerance"] = Bundle.GoldenTolerance },
        };
        ClassificationTask.AddDecision(info, decision, recipe.Labels);
        File.WriteAllText(Path.Combine(tmp, "whetstone.json"), info.ToJsonString(RunDirectory.Json));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.Move(tmp, dir);
        return dir;
    }

    /// <summary>
    /// A raw image checkpoint (TF.js layers model, ONNX graph, <c>asset:NAME</c>) scored with its own classifier, as a
    /// bundle with no fine-tuning: the graph is cut at its default feature layer (<see cref="ModelSource.DefaultFeatureLayer"/>)
    /// and the classifier layers above the pooled features — one dense layer or an MLP, without the final softmax — become
    /// the head. The cut network must reproduce the checkpoint's own logits on probe images within 1e-4, else it is
    /// refused with the difference. <paramref name="labels"/> names the outputs in order (default LABEL_0…); a checkpoint
    /// without a classifier of its own (a featurizer) is refused. <paramref name="height"/> × <paramref name="width"/>
    /// overrides the input size (default: the model's declared one, else 224²).
    /// </summary>
    public static LoadedImageBundle FromCheckpoint(string pathOrAsset, IReadOnlyList<string>? labels, TextWriter? log = null, int height = 0, int width = 0)
    {
        ArgumentNullException.ThrowIfNull(pathOrAsset);
        var path = Assets.Resolve(pathOrAsset, Directory.GetCurrentDirectory(), fetch: true, log);
        var graph = ModelSource.Load(path, logits: true);
        var feature = ModelSource.DefaultFeatureLayer(graph);
        if (feature == graph.OutputName)
            throw new BundleException($"{pathOrAsset}: the model has no classifier of its own (it ends at its features, layer '{feature}'), so there is nothing to score; fine-tune it first: whet train CONFIG with model.path: {pathOrAsset}.");

        var cfg = new Config.TrainConfig
        {
            BaseDirectory = Directory.GetCurrentDirectory(), Source = pathOrAsset,
            Data = new Config.DataConfig { ImageSize = height, ImageWidth = width },
        };
        var (preprocess, _) = ImageClassification.PixelPreprocess(cfg, path, graph);
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        var probe = Tensor.Rand(new Rng(7), [2, 3, preprocess.Height, preprocess.Width], -1, 1);
        var shapes = graph.TraceShapes(probe).ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        var reference = graph.Forward(probe).Reshape(2, -1).ToArray();

        // the classifier: the layers above the cut, read from the first one that outputs the pooled features [N, F]
        var featureShape = shapes[feature];
        int featureDim = featureShape.Length == 4 ? featureShape[1] : featureShape.Skip(1).Aggregate(1, (a, d) => a * d);
        var above = graph.Nodes.SkipWhile(n => n.Name != feature).Skip(1).ToArray();
        var start = featureShape.Length == 2 ? feature : above.FirstOrDefault(n => shapes[n.Name] is [_, var f] && f == featureDim)?.Name
            ?? throw new BundleException($"{pathOrAsset}: no layer of the classifier above '{feature}' ({string.Join(", ", above.Select(n => n.Name))}) takes its {featureDim} pooled features, so it cannot be re-hosted as a head; fine-tune it instead.");
        var layers = above.SkipWhile(n => start != feature && n.Name != start).Skip(start == feature ? 0 : 1).ToArray();
        var head = new Models.Graph.LayerGraph(start);
        try
        {
            foreach (var n in layers) head.Add(n.Name, n.Kind, graph.Layer(n.Name), [.. n.Inputs]);
        }
        catch (ArgumentException e) { throw new BundleException($"{pathOrAsset}: its classifier above '{start}' reads other layers than its own ({e.Message}); fine-tune it instead.", e); }
        if (layers.Length == 0 || head.ParameterCount() == 0)
            throw new BundleException($"{pathOrAsset}: nothing with weights above '{start}' ({string.Join(", ", layers.Select(n => n.Name))}); there is no classifier to score.");

        graph.TruncateAt(feature);
        int classes = head.Forward(Tensor.Zeros(1, featureDim)).Dim(1);
        if (labels is not null && labels.Count != classes)
            throw new BundleException($"{pathOrAsset}: --labels names {labels.Count} classes but the checkpoint's classifier has {classes} outputs.");
        var model = new ImageClassifier(graph, featureDim, new HeadSpec(classes), head);
        model.Eval();
        double diff = MaxDiff(model.Forward(probe).ToArray(), reference);
        if (!(diff <= 1e-4 * Math.Max(1, reference.Max(Math.Abs))))
            throw new BundleException($"{pathOrAsset}: cut at '{feature}' with its classifier ({string.Join(", ", layers.Select(n => n.Name))}) re-hosted on the pooled features, the network does not reproduce the checkpoint's logits (max |diff| {diff:G3}); fine-tune it instead.");
        log?.WriteLine($"{pathOrAsset}: scored with its own classifier ({string.Join(" → ", layers.Select(n => n.Name))}; {classes} outputs over {featureDim} features of '{feature}'), reproducing the checkpoint's logits within {diff:G2}");
        if (labels is null) log?.WriteLine($"{pathOrAsset}: no label names in the checkpoint; outputs are LABEL_0…LABEL_{classes - 1} (name them with --labels)");

        var names = labels?.ToArray() ?? Enumerable.Range(0, classes).Select(i => $"LABEL_{i}").ToArray();
        var info = new JsonObject
        {
            ["task"] = ImageClassification.TaskName,
            ["labels"] = new JsonArray(names.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["source"] = new JsonObject { ["path"] = path, ["format"] = ModelSource.FormatOf(path), ["original"] = pathOrAsset, ["checkpoint"] = true },
            ["features"] = feature,
            ["feature_dim"] = featureDim,
            ["preprocess"] = JsonNode.Parse(preprocess.ToJson()),
        };
        return new LoadedImageBundle(path, model, preprocess, names, info, 0);
    }

    private static double MaxDiff(float[] a, float[] b) =>
        a.Length != b.Length ? double.PositiveInfinity : a.Zip(b, (x, y) => (double)Math.Abs(x - y)).DefaultIfEmpty(0).Max();

    /// <summary>Loads a bundle from its folder or from a run folder (which holds it in <c>model/</c>).</summary>
    public static LoadedImageBundle Load(string path)
    {
        var (dir, infoPath, info) = Bundle.ReadInfo(path);
        string Str(string key) => info[key]?.GetValue<string>() ?? throw new BundleException($"{infoPath}: missing '{key}'.");
        if (Str("format") != Bundle.Format) throw new BundleException($"{infoPath}: format '{Str("format")}' is not {Bundle.Format}.");
        var labels = info["labels"]?.AsArray().Select(l => l!.GetValue<string>()).ToArray() ?? throw new BundleException($"{infoPath}: missing 'labels'.");
        var head = info["head"]?.AsObject() ?? throw new BundleException($"{infoPath}: missing 'head'.");
        var spec = new HeadSpec(head["classes"]!.GetValue<int>(), head["hidden"]!.GetValue<int>(), head["dropout"]!.GetValue<float>());
        if (spec.Classes != labels.Length) throw new BundleException($"{infoPath}: the head has {spec.Classes} outputs but {labels.Length} labels are listed.");
        var preprocess = Preprocess.FromJson(info["preprocess"]!.ToJsonString());

        var graph = ModelSource.Load(Path.Combine(dir, info["source"]!["path"]!.GetValue<string>()));
        graph.TruncateAt(Str("features"));
        var model = new ImageClassifier(graph, info["feature_dim"]!.GetValue<int>(), spec, new Rng(0));
        var weightsPath = Path.Combine(dir, "model.safetensors");
        try { model.LoadStateDict(SafeTensors.LoadAll(weightsPath), strict: true); }
        catch (Exception e) when (e is Nn.StateDictException or SafeTensorsFormatException or FileNotFoundException)
        { throw new BundleException($"{weightsPath}: the weights do not fit the architecture in {infoPath}: {e.Message}", e); }
        model.Eval();

        double maxDiff = Bundle.ReplayGolden(dir, golden => model.Forward(golden["inputs"]), "the weights or the source model changed");
        return new LoadedImageBundle(dir, model, preprocess, labels, info, maxDiff);
    }
}
