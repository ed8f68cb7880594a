using Whetstone.Models.Bert;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.DistilBert;
using Whetstone.Models.Roberta;
using Whetstone.Models.Tests.Parity;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Tests.Hf;

internal static class HfFixtures
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Whetstone.slnx"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, "tests", "fixtures", "hf");
    }

    public static string Dir(string name) => Path.Combine(Root, name);

    /// <summary>A scratch copy of a fixture folder that a test may damage.</summary>
    public static string Copy(string name)
    {
        var to = Path.Combine(Path.GetTempPath(), "whet-hf-" + Guid.NewGuid().ToString("N")[..8], name);
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(Dir(name))) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        return to;
    }
}

/// <summary>
/// Loads the tiny checkpoints of tests/fixtures/make_hf_fixtures.py (an independent PyTorch implementation in the exact
/// Hugging Face layout) and compares hidden states and logits for a padded batch (max abs diff ≤ 1e-4).
/// </summary>
public class HfModelTests
{
    private static void Parity(string folder, string expected, string type, int labels)
    {
        var (model, report) = HfModel.Load(HfFixtures.Dir(folder));
        Assert.Equal(type, model.ModelType);
        Assert.Equal(labels, model.NumLabels);
        Assert.True(report.Complete, report.ToString());
        using var fx = new Fixture(Path.Combine("hf", "expected", expected + ".safetensors"));
        var ids = fx.Ints("input_ids");
        var types = fx.Ints("token_type_ids");
        int b = 3, t = 7;
        using var scope = new TensorScope();
        var mask = fx["attention_mask"];
        var hidden = model.Encode(ids, b, t, mask, types);
        var logits = model.Forward(ids, b, t, mask, types);
        // padded positions' hidden states are computed but meaningless in both implementations; compare real tokens
        var h = hidden.ToArray();
        var eh = fx["hidden"].ToArray();
        var m = mask.ToArray();
        double worst = 0;
        for (int i = 0; i < h.Length; i++)
            if (m[i / model.HiddenSize] > 0) worst = Math.Max(worst, Math.Abs(h[i] - eh[i]));
        Assert.True(worst <= 1e-4, $"{folder}: hidden max abs diff {worst:E2}");
        fx.Close("logits", logits, 1e-4);
    }

    [Fact] public void BertMatchesReference() => Parity("bert-tiny", "bert", "bert", 3);
    [Fact] public void DistilBertMatchesReference() => Parity("distilbert-tiny", "distilbert", "distilbert", 5);
    [Fact] public void RobertaMatchesReference() => Parity("roberta-tiny", "roberta", "roberta", 4);

    [Fact]
    public void ReportListsUsedAndIgnoredKeys()
    {
        var (_, report) = HfModel.Load(HfFixtures.Dir("bert-tiny"));
        Assert.Contains("bert.embeddings.position_ids", report.IgnoredKeys);
        Assert.Contains(report.UsedKeys, u => u.Key == "bert.encoder.layer.1.attention.self.value.bias" && u.ModulePath == u.Key);
        Assert.Equal(2 * 16 + 5 + 2 + 2, report.UsedKeys.Count);
        Assert.Equal(["neg", "neu", "pos"], report.Labels);
    }

    [Fact]
    public void ShardedBareBertModelGetsAFreshHeadAndSaysSo()
    {
        var (model, report) = HfModel.Load(HfFixtures.Dir("bert-sharded"), numLabels: 6, seed: 3);
        Assert.Equal(2, report.WeightFiles.Count);
        Assert.Equal(["classifier"], report.NewModules);
        Assert.False(report.Complete);
        Assert.Equal(6, model.NumLabels);
        Assert.Contains("classifier", report.ToString());
        // same encoder weights as bert-tiny (keys without the bert. prefix): same hidden states
        var (tiny, _) = HfModel.Load(HfFixtures.Dir("bert-tiny"));
        using var scope = new TensorScope();
        int[] ids = [2, 40, 41, 3, 5, 6, 7];
        Assert.Equal(tiny.Encode(ids, 1, 7).ToArray(), model.Encode(ids, 1, 7).ToArray());
        // the fresh head is HF-initialised: N(0, 0.02) weights, zero bias
        var w = model.GetTensor("classifier.weight").ToArray();
        Assert.All(model.GetTensor("classifier.bias").ToArray(), v => Assert.Equal(0f, v));
        Assert.InRange(Math.Sqrt(w.Average(v => (double)v * v)), 0.01, 0.03);
    }

    [Fact]
    public void DifferentLabelCountReplacesOnlyTheOutputLayer()
    {
        var (model, report) = HfModel.Load(HfFixtures.Dir("roberta-tiny"), numLabels: 2);
        Assert.Equal(["classifier.out_proj"], report.NewModules);
        Assert.Contains("classifier.out_proj.weight", report.IgnoredKeys);
        Assert.Contains(report.UsedKeys, u => u.Key == "classifier.dense.weight");
        Assert.Equal(2, model.NumLabels);
        Assert.Contains(report.Notes, n => n.Contains("4 labels", StringComparison.Ordinal));
    }

    [Fact]
    public void UnknownModelTypeListsSupported()
    {
        var dir = HfFixtures.Copy("bert-tiny");
        File.WriteAllText(Path.Combine(dir, "config.json"), File.ReadAllText(Path.Combine(dir, "config.json")).Replace("\"model_type\": \"bert\"", "\"model_type\": \"electra\""));
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.UnknownModelType, e.Fault);
        Assert.Contains("electra", e.Message);
        Assert.Contains("bert, distilbert, roberta, xlm-roberta", e.Message);
    }

    [Fact]
    public void UnknownKeyShapeMismatchAndMissingKeyAreNamed()
    {
        var good = SafeTensors.LoadAll(Path.Combine(HfFixtures.Dir("bert-tiny"), "model.safetensors"));

        var dir = HfFixtures.Copy("bert-tiny");
        var extra = new Dictionary<string, Tensor>(good) { ["bert.encoder.layer.0.attention.self.rotary.weight"] = Tensor.Persistent(2) };
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), extra);
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.UnexpectedKey, e.Fault);
        Assert.Equal("bert.encoder.layer.0.attention.self.rotary.weight", e.Key);
        Assert.EndsWith("model.safetensors", e.FilePath);

        var bad = new Dictionary<string, Tensor>(good) { ["bert.encoder.layer.1.intermediate.dense.weight"] = Tensor.Persistent(36, 32) };
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), bad);
        e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.ShapeMismatch, e.Fault);
        Assert.Contains("[36, 32]", e.Message);

        var missing = new Dictionary<string, Tensor>(good);
        missing.Remove("bert.encoder.layer.1.output.LayerNorm.bias");
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), missing);
        e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.MissingKey, e.Fault);
        Assert.Contains("bert.encoder.layer.1.output.LayerNorm.bias", e.Message);

        File.Delete(Path.Combine(dir, "model.safetensors"));
        e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.MissingFile, e.Fault);
    }

    [Fact]
    public void MissingShardIsNamed()
    {
        var dir = HfFixtures.Copy("bert-sharded");
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.MissingFile, e.Fault);
        Assert.EndsWith("model-00002-of-00002.safetensors", e.FilePath);
    }

    [Fact]
    public void HubCacheLayoutIsFoundByName()
    {
        var hub = Path.Combine(Path.GetTempPath(), "whet-hub-" + Guid.NewGuid().ToString("N")[..8]);
        var repo = Path.Combine(hub, "models--tiny-org--bert-tiny");
        var snap = Path.Combine(repo, "snapshots", "0123abcd");
        Directory.CreateDirectory(snap);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), "0123abcd");
        foreach (var f in Directory.GetFiles(HfFixtures.Dir("bert-tiny")))   // the hub stores blobs and links them from the snapshot
        {
            var blob = Path.Combine(repo, "blobs", Guid.NewGuid().ToString("N"));
            File.Copy(f, blob);
            File.CreateSymbolicLink(Path.Combine(snap, Path.GetFileName(f)), blob);
        }
        Assert.Equal(snap, HfModel.ResolveFolder("tiny-org/bert-tiny", v => v == "HF_HUB_CACHE" ? hub : null));
        var home = Path.Combine(Path.GetTempPath(), "whet-home-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(home);
        Directory.CreateSymbolicLink(Path.Combine(home, "hub"), hub);
        Assert.Equal(Path.Combine(home, "hub", "models--tiny-org--bert-tiny", "snapshots", "0123abcd"),
            HfModel.ResolveFolder("tiny-org/bert-tiny", v => v == "HF_HOME" ? home : null));
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.ResolveFolder("tiny-org/absent", v => v == "HF_HUB_CACHE" ? hub : null));
        Assert.Equal(HfFault.ModelNotFound, e.Fault);

        // and loads through the links
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", hub);
        try
        {
            var (model, report) = HfModel.Load("tiny-org/bert-tiny");
            Assert.Equal(3, model.NumLabels);
            Assert.True(report.Complete);
        }
        finally { Environment.SetEnvironmentVariable("HF_HUB_CACHE", null); }
    }

    [Fact]
    public void RobertaPositionsFollowTransformers()
    {
        // padding_idx 1: real tokens count from 2, padding stays at 1
        Assert.Equal([2, 3, 4, 1, 1, 2, 3, 4, 5, 6], RobertaEmbeddings.PositionIds([0, 9, 2, 1, 1, 0, 9, 9, 9, 2], 2, 5, 1));
    }

    [Fact]
    public void CommonInterfacePathsExist()
    {
        foreach (var name in new[] { "bert-tiny", "distilbert-tiny", "roberta-tiny" })
        {
            var (model, _) = HfModel.Load(HfFixtures.Dir(name));
            Assert.True(model.TryGetModule(model.EmbeddingsPath, out _), model.EmbeddingsPath);
            for (int i = 0; i < model.NumLayers; i++) Assert.True(model.TryGetModule(model.LayerPath(i), out _), model.LayerPath(i));
            Assert.False(model.TryGetModule(model.LayerPath(model.NumLayers), out _));
            foreach (var h in model.HeadPaths) Assert.True(model.TryGetModule(h, out _), h);
            Assert.NotNull(model.Tokenizer);
            Assert.Equal(2, model.NumLayers);
            Assert.Equal(32, model.HiddenSize);
        }
    }

    [Fact]
    public void EndToEndTokenizeAndClassify()
    {
        var (model, _) = HfModel.Load(HfFixtures.Dir("bert-tiny"));
        var batch = model.Tokenizer!.EncodeBatch(["The cat sat on the mat.", "A good movie!"], ["It was great.", "not bad"]);
        using var scope = new TensorScope();
        var logits = model.Forward(batch.Ids, batch.Batch, batch.SeqLen, batch.MaskTensor(), batch.TokenTypeIds);
        Assert.Equal([2, 3], logits.Shape.ToArray());
    }

    [Theory]
    [InlineData("bert-tiny")]
    [InlineData("distilbert-tiny")]
    [InlineData("roberta-tiny")]
    public void LoraMergedMatchesUnmergedAndHeadIsSaved(string name)
    {
        var (model, _) = HfModel.Load(HfFixtures.Dir(name));
        var wrapped = LoraInjector.Inject(model, new LoraConfig { TargetModules = model.LoraTargets, Rank = 4, Alpha = 8, ModulesToSave = model.LoraModulesToSave }, new Rng(5));
        Assert.Equal(2 * model.NumLayers, wrapped.Count);
        foreach (var (_, layer) in LoraInjector.Layers(model)) Whetstone.Nn.Init.Normal(layer.LoraB.Weight, new Rng(6), 0, 0.3);
        model.Eval();
        int[] ids = [2, 40, 41, 42, 3, 0, 2, 50, 51, 52, 53, 3];
        if (name.StartsWith("roberta", StringComparison.Ordinal)) ids = ids.Select(i => i == 0 ? 1 : i).ToArray();
        using var scope = new TensorScope();
        var mask = Tensor.From([1f, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], 2, 6);
        var baseLogits = TensorScope.Release(() => { foreach (var (_, l) in LoraInjector.Layers(model)) l.AdaptersDisabled = true; return model.Forward(ids, 2, 6, mask); }).ToArray();
        foreach (var (_, l) in LoraInjector.Layers(model)) l.AdaptersDisabled = false;
        var unmerged = model.Forward(ids, 2, 6, mask).ToArray();
        LoraInjector.Merge(model);
        var merged = model.Forward(ids, 2, 6, mask).ToArray();
        Assert.True(unmerged.Zip(merged).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5, "merged vs unmerged");
        Assert.True(unmerged.Zip(baseLogits).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the adapters change the output");
        // what a PEFT adapter file holds: the adapters plus the trainable head (modules_to_save)
        var trainable = model.NamedTrainableParameters().Select(p => p.Name).ToList();
        Assert.Contains(trainable, n => n.StartsWith("classifier.", StringComparison.Ordinal));
        Assert.All(trainable, n => Assert.True(n.Contains("lora_") || n.StartsWith("classifier.", StringComparison.Ordinal) || n.StartsWith("pre_classifier.", StringComparison.Ordinal), n));
        Assert.Equal(4 * model.NumLayers, LoraInjector.AdapterStateDict(model).Count);
        var saved = model.AdapterStateDict();
        Assert.Equal(trainable.Order(StringComparer.Ordinal), saved.Keys.Order(StringComparer.Ordinal));
    }
}
