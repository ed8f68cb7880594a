using Whetstone.Models.Bert;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Hf;

/// <summary>
/// Key maps derived from the module tree (<see cref="HfKeyMap.Derive"/>) plus each family's declared data, and the
/// family registry's declarations checked against the models they build.
/// </summary>
public class HfKeyMapTests
{
    private static readonly BertConfig Tiny = new(VocabSize: 99, HiddenSize: 32, NumHiddenLayers: 2, NumAttentionHeads: 4,
        IntermediateSize: 37, MaxPositionEmbeddings: 64);

    private static HfKeyMap BertMap()
    {
        var head = BertFamily.Definition.SequenceClassification!;
        using var _ = ModelInit.SkipWeightInit();
        var model = new BertForSequenceClassification(Tiny, 3, new Rng(0));
        return HfKeyMap.Derive(model.StateDict().Keys, BertFamily.Definition.Keys.WithIgnored(head.Ignore));
    }

    private static string? Map(HfKeyMap map, string key) => map.TryMap(key, out var t) ? t ?? "(ignored)" : null;

    [Fact]
    public void DerivedBertMapAcceptsKeysWithAndWithoutTheBasePrefix()
    {
        var map = BertMap();
        Assert.Equal("bert.encoder.layer.1.attention.self.value.bias", Map(map, "bert.encoder.layer.1.attention.self.value.bias"));
        Assert.Equal("bert.encoder.layer.1.attention.self.value.bias", Map(map, "encoder.layer.1.attention.self.value.bias"));
        Assert.Equal("bert.embeddings.LayerNorm.weight", Map(map, "embeddings.LayerNorm.weight"));
        Assert.Equal("bert.pooler.dense.weight", Map(map, "pooler.dense.weight"));
        Assert.Equal("classifier.weight", Map(map, "classifier.weight"));
        // ignored: buffers with or without the prefix, pre-training heads
        Assert.Equal("(ignored)", Map(map, "bert.embeddings.position_ids"));
        Assert.Equal("(ignored)", Map(map, "embeddings.token_type_ids"));
        Assert.Equal("(ignored)", Map(map, "cls.predictions.transform.dense.weight"));
        // unknown: not in the tree (a layer the config does not have, the head under the base prefix), not ignored
        Assert.Null(Map(map, "bert.encoder.layer.2.attention.self.value.bias"));
        Assert.Null(Map(map, "bert.classifier.weight"));
        Assert.Null(Map(map, "encoder.layer.0.attention.self.rotary.weight"));
        Assert.Null(Map(map, "cls"));
        Assert.Contains("{base}encoder.layer.{n}.attention.self.query.weight", map.Patterns);
        Assert.Contains("cls.* → null", map.Patterns);
    }

    [Fact]
    public void RenamesAreAppliedBeforeTheTree()
    {
        var keys = new HfCheckpointKeys("bert.", Ignore: [],
            Renames: [("{base}encoder.layer.{n}.attention.self.q.{w}", "bert.encoder.layer.{n}.attention.self.query.{w}")]);
        var map = HfKeyMap.Derive(["bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.attention.self.query.bias"], keys);
        Assert.Equal("bert.encoder.layer.1.attention.self.query.bias", Map(map, "encoder.layer.1.attention.self.q.bias"));
        Assert.Equal("bert.encoder.layer.0.attention.self.query.weight", Map(map, "bert.encoder.layer.0.attention.self.q.weight"));
        Assert.Equal("bert.encoder.layer.0.attention.self.query.weight", Map(map, "bert.encoder.layer.0.attention.self.query.weight"));
        Assert.Null(Map(map, "bert.encoder.layer.0.attention.self.q.gamma"));
    }

    [Fact]
    public void UnprefixedCheckpointLoadsAndAnUnknownKeyIsRefusedWithFileAndKey()
    {
        var good = SafeTensors.LoadAll(Path.Combine(HfFixtures.Dir("bert-tiny"), "model.safetensors"));
        var bare = good.ToDictionary(p => p.Key.StartsWith("bert.", StringComparison.Ordinal) ? p.Key["bert.".Length..] : p.Key, p => p.Value);
        var dir = HfFixtures.Copy("bert-tiny");
        var file = Path.Combine(dir, "model.safetensors");
        SafeTensors.Save(file, bare);
        var (model, report) = HfModel.Load(dir);
        Assert.True(report.Complete, report.ToString());
        Assert.Contains(report.UsedKeys, u => u.Key == "encoder.layer.0.output.dense.weight" && u.ModulePath == "bert.encoder.layer.0.output.dense.weight");
        Assert.Contains("embeddings.position_ids", report.IgnoredKeys);
        var (reference, _) = HfModel.Load(HfFixtures.Dir("bert-tiny"));
        foreach (var (name, t) in reference.StateDict()) Assert.Equal(t.ToArray(), model.GetTensor(name).ToArray());

        SafeTensors.Save(file, new Dictionary<string, Tensor>(bare) { ["encoder.layer.0.attention.self.rotary.weight"] = Tensor.Persistent(2) });
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.UnexpectedKey, e.Fault);
        Assert.Equal("encoder.layer.0.attention.self.rotary.weight", e.Key);
        Assert.Equal(file, e.FilePath);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void AKeyWithAndWithoutThePrefixIsADuplicateFill()
    {
        var good = SafeTensors.LoadAll(Path.Combine(HfFixtures.Dir("bert-tiny"), "model.safetensors"));
        var dir = HfFixtures.Copy("bert-tiny");
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"),
            new Dictionary<string, Tensor>(good) { ["pooler.dense.bias"] = good["bert.pooler.dense.bias"] });
        var e = Assert.Throws<HfCheckpointException>(() => HfModel.Load(dir));
        Assert.Equal(HfFault.DuplicateKey, e.Fault);
        Assert.Contains("bert.pooler.dense.bias", e.Message);
    }

    [Fact]
    public void RegistryDeclarationsNameRealModules()
    {
        Assert.Equal(["bert", "distilbert", "roberta", "xlm-roberta"], HfModel.SupportedModelTypes);
        foreach (var type in HfModel.SupportedModelTypes)
        {
            var family = Families.Find(type)!;
            var head = family.SequenceClassification!;
            var config = HfConfig.Parse("config.json",
                """{"vocab_size": 99, "hidden_size": 32, "dim": 32, "num_hidden_layers": 2, "n_layers": 2, "num_attention_heads": 4, "n_heads": 4, "intermediate_size": 37, "hidden_dim": 37, "max_position_embeddings": 64}""");
            TextEncoderClassifier model;
            using (ModelInit.SkipWeightInit()) model = head.Create(config, type, 3, new Rng(0));
            Assert.Equal(type, model.ModelType);
            var names = model.StateDict().Keys.ToList();
            Assert.True(model.TryGetModule(head.LabelsModule, out _), head.LabelsModule);
            foreach (var m in head.OptionalModules) Assert.True(model.TryGetModule(m, out _), $"{type}: {m}");
            foreach (var n in names.Where(n => !head.OptionalModules.Any(m => n.StartsWith(m + ".", StringComparison.Ordinal))))
                Assert.StartsWith(family.Keys.BasePrefix, n);    // the backbone lives under the base prefix
            // no ignore pattern hides a tensor the model has: every module tensor maps to itself
            var map = HfKeyMap.Derive(names, family.Keys.WithIgnored(head.Ignore));
            foreach (var n in names) Assert.Equal(n, Map(map, n));
        }
        Assert.Null(Families.Find("electra"));
    }
}
