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
