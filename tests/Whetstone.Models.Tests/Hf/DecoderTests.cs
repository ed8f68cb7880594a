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
