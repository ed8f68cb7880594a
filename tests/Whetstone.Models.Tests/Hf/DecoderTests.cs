using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Llama;
using Whetstone.Models.Tests.Parity;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Tests.Hf;

/// <summary>
/// Decoder checkpoints of tests/fixtures/make_decoder_fixtures.py (an independent PyTorch implementation in float64,
/// exact Hugging Face layout: GPT-2 Conv1D weights, Llama bf16 shards with GQA, llama3 and linear rope scaling in f16/f32,
/// tied embeddings, Qwen2 biases, Mistral): logits of a padded batch and greedy continuations within 1e-4 / exactly,
/// the KV cache against full recomputation, and the loader's refusals.
/// </summary>
public class DecoderTests
{
    public static TheoryData<string, string, int> Checkpoints => new()
    {
        { "gpt2-tiny", "gpt2", 2 },                  // attn.bias buffers
        { "llama-tiny", "llama", 2 },                // rotary_emb.inv_freq buffers
        { "llama3-tied", "llama", 0 },
        { "llama-linear", "llama", 0 },
        { "qwen2-tiny", "qwen2", 0 },
        { "mistral-tiny", "mistral", 0 },
    };

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void LogitsMatchTheReference(string folder, string modelType, int ignoredBuffers)
    {
        var (model, report) = HfModel.LoadCausalLm(HfFixtures.Dir(folder));
        Assert.Equal(modelType, model.ModelType);
        Assert.Equal(ignoredBuffers, report.IgnoredKeys.Count(k => k.Contains("attn.bias", StringComparison.Ordinal) || k.Contains("inv_freq", StringComparison.Ordinal)));
        Assert.Equal(model.StateDict().Count, report.UsedKeys.Count);
        using var fx = new Fixture(Path.Combine("hf", "expected", folder + ".safetensors"));
        using var scope = new TensorScope();
        fx.Close("logits", model.Forward(fx.Ints("input_ids"), 2, 9, fx["attention_mask"]), 1e-4);
    }

    public static TheoryData<string> Folders => new() { "gpt2-tiny", "llama-tiny", "llama3-tied", "llama-linear", "qwen2-tiny", "mistral-tiny" };

    [Theory]
    [MemberData(nameof(Folders))]
    public void GreedyWithTheKvCacheGivesTheReferenceContinuation(string folder)
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir(folder));
        using var fx = new Fixture(Path.Combine("hf", "expected", folder + ".safetensors"));
        var prompt = fx.Ints("prompt");
        var expected = fx.Ints("greedy");
        var cache = model.NewCache(1, prompt.Length + expected.Length);
        var got = new List<int>();
        using (Tensors.Autograd.Graph.NoGrad())
        {
            int[] next = prompt;
            for (int step = 0; step < expected.Length; step++)
            {
                using var scope = new TensorScope();
                var logits = model.Forward(next, 1, next.Length, cache: cache).ToArray();
                var last = logits.AsSpan(logits.Length - model.VocabSize);
                int best = 0;
                for (int v = 1; v < last.Length; v++) if (last[v] > last[best]) best = v;
                got.Add(best);
                next = [best];
            }
        }
        Assert.Equal(expected, got);
        Assert.Equal(prompt.Length + expected.Length - 1, cache.Length);
    }

    [Fact]
    public void CachedStepsEqualTheFullForwardPass()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("llama-tiny"));
        int[] ids = [5, 17, 99, 3, 42, 8, 61];
        using var scope = new TensorScope();
        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        var full = model.Forward(ids, 1, ids.Length).ToArray();
        var cache = model.NewCache(1, 16);
        var prefix = model.Forward(ids[..4], 1, 4, cache: cache).ToArray();
        var rest = model.Forward(ids[4..], 1, 3, cache: cache).ToArray();
        var stepped = prefix.Concat(rest).ToArray();
        for (int i = 0; i < full.Length; i++) Assert.True(Math.Abs(full[i] - stepped[i]) < 1e-5, $"logit {i}: {full[i]} vs {stepped[i]}");
        Assert.Equal(7, cache.Length);
        Assert.Throws<InvalidOperationException>(() => model.Forward(new int[10], 1, 10, cache: cache));   // 17 > 16 positions
    }

    [Fact]
    public void ReportNamesTheTiedHeadAndGpt2TransposedWeights()
    {
        var (_, qwen) = HfModel.LoadCausalLm(HfFixtures.Dir("qwen2-tiny"));
        Assert.DoesNotContain(qwen.UsedKeys, u => u.Key.StartsWith("lm_head", StringComparison.Ordinal));
        var (gpt2, report) = HfModel.LoadCausalLm(HfFixtures.Dir("gpt2-tiny"));
        Assert.Contains(report.UsedKeys, u => u.Key == "h.0.attn.c_attn.weight" && u.ModulePath == "transformer.h.0.attn.c_attn.weight");
        Assert.Equal([96, 32], gpt2.StateDict()["transformer.h.0.attn.c_attn.weight"].Shape.ToArray());   // [out, in] here, [in, out] on disk
        Assert.True(gpt2.TiedEmbeddings);
    }

    [Fact]
    public void LoaderRefusesWhatItCannotLoadExactly()
    {
        var encoder = Assert.Throws<HfCheckpointException>(() => HfModel.LoadCausalLm(HfFixtures.Dir("bert-tiny")));
        Assert.Contains("is an encoder", encoder.Message);

        var dir = HfFixtures.Copy("llama3-tied");
        var cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"llama3\"", "\"yarn\"", StringComparison.Ordinal));
        var yarn = Assert.Throws<HfCheckpointException>(() => HfModel.LoadCausalLm(dir));
        Assert.Contains("rope_scaling type 'yarn' is not supported", yarn.Message);

        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"yarn\"", "\"llama3\"", StringComparison.Ordinal).Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", StringComparison.Ordinal));
        var untied = Assert.Throws<HfCheckpointException>(() => HfModel.LoadCausalLm(dir));
        Assert.Equal(HfFault.MissingKey, untied.Fault);
        Assert.Contains("lm_head.weight", untied.Message);

        var gpt2 = HfFixtures.Copy("gpt2-tiny");
        var g = Path.Combine(gpt2, "config.json");
        File.WriteAllText(g, File.ReadAllText(g).Replace("\"n_embd\": 32", "\"n_embd\": 36", StringComparison.Ordinal));
        var shape = Assert.Throws<HfCheckpointException>(() => HfModel.LoadCausalLm(gpt2));
        Assert.Equal(HfFault.ShapeMismatch, shape.Fault);
    }

    [Fact]
    public void Llama3RopeScalingKeepsShortWavelengthsAndDividesLongOnes()
    {
        // head 8, θ = 10000: frequencies 1, 0.1, 0.01, 0.001 → wavelengths 6.3, 63, 628, 6283; original context 64,
        // low factor 1 (≥ 64 → divided by 8), high factor 4 (≤ 16 → kept), 63 is between: blended
        var rope = new RotaryEmbedding(8, 10000, "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64);
        using var scope = new TensorScope();
        var (_, sin) = rope.Angles([1]);
        var angles = sin.ToArray().Select(s => Math.Asin(s)).ToArray();
        double smooth = (64 / (2 * Math.PI / 0.1) - 1) / 3;
        double[] expected = [1.0, (1 - smooth) * 0.1 / 8 + smooth * 0.1, 0.01 / 8, 0.001 / 8];
        for (int i = 0; i < 4; i++) Assert.True(Math.Abs(expected[i] - angles[i]) <= 1e-4 * expected[i], $"θ_{i}: {angles[i]} vs {expected[i]}");
    }
}

/// <summary>LoRA on a decoder's default targets, merged and written as a Hugging Face folder that reloads with the same logits.</summary>
public class DecoderLoraExportTests
{
    private static float[] Logits(CausalLm model, int[] ids)
    {
        using var scope = new TensorScope();
        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        return model.Forward(ids, 1, ids.Length).ToArray();
    }

    [Theory]
    [InlineData("llama-tiny", 14)]   // q, k, v, o, gate, up, down × 2 layers
    [InlineData("gpt2-tiny", 8)]     // c_attn, attn.c_proj, c_fc, mlp.c_proj × 2 layers
    public void MergedLoraExportReloadsWithTheSameLogits(string folder, int wrapped)
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir(folder));
        int[] ids = [3, 14, 15, 92, 65, 35, 89, 79];
        var before = Logits(model, ids);
        var rng = new Rng(5);
        var names = Nn.Lora.LoraInjector.Inject(model, model.LoraTargets, rank: 4, alpha: 8, rng);
        Assert.Equal(wrapped, names.Count);
        Assert.Equal(before, Logits(model, ids));                       // B = 0: the adapters change nothing yet
        foreach (var (_, l) in Nn.Lora.LoraInjector.Layers(model)) Nn.Init.Normal(l.LoraB.Weight, rng, 0, 0.05);
        var adapted = Logits(model, ids);
        Assert.True(adapted.Zip(before).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the adapters should change the logits");
        Nn.Lora.LoraInjector.MergeAndUnload(model);
        var merged = Logits(model, ids);
        var dir = Path.Combine(Path.GetTempPath(), "whet-dec-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var files = HfModel.SaveCausalLm(model, HfFixtures.Dir(folder), dir);
            Assert.Contains("model.safetensors", files);
            var (reloaded, report) = HfModel.LoadCausalLm(dir);
            var again = Logits(reloaded, ids);
            for (int i = 0; i < adapted.Length; i++)
            {
                Assert.True(Math.Abs(adapted[i] - merged[i]) < 1e-4, $"merge changed logit {i}: {adapted[i]} → {merged[i]}");
                Assert.True(Math.Abs(merged[i] - again[i]) < 1e-5, $"reload changed logit {i}: {merged[i]} → {again[i]}");
            }
            Assert.Equal(model.StateDict().Count, report.UsedKeys.Count);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void LoraTrainingMemorisesASequence()
    {
        // next-token loss on one sequence falls from chance to near zero within 60 AdamW steps on the adapters alone
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("llama-tiny"));
        Nn.Lora.LoraInjector.Inject(model, model.LoraTargets, rank: 8, alpha: 16, new Rng(1));
        model.Train();
        int[] ids = [5, 9, 2, 77, 31, 31, 64, 12, 8, 40, 3, 99];
        int[] targets = [.. ids[1..], -100];
        var opt = new Nn.Optimizers.AdamW(model, lr: 1e-2, weightDecay: 0);
        float first = 0, last = 0;
        for (int step = 0; step < 60; step++)
        {
            using var scope = new TensorScope();
            opt.ZeroGrad();
            var logits = model.Forward(ids, 1, ids.Length).Reshape(ids.Length, model.VocabSize);
            var loss = Tensor.CrossEntropy(logits, targets);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(first > 3, $"initial loss {first}");
        Assert.True(last < 0.1, $"loss after 60 steps {last} (from {first})");
        Assert.All(model.NamedParameters().Where(p => p.Tensor.RequiresGrad), p => Assert.Contains("lora_", p.Name, StringComparison.Ordinal));
    }
}
