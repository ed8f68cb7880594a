using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tests.Parity;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Hf;

/// <summary>
/// Generation over the KV cache: left-padded batches give each prompt's own continuation (and the reference greedy one),
/// EOS and max_new_tokens end rows, and the sampler's temperature / top-k / top-p / repetition penalty have
/// Hugging Face's meanings, checked on exact distributions and by drawing.
/// </summary>
public class GenerationTests
{
    [Theory]
    [InlineData("llama-tiny")]
    [InlineData("gpt2-tiny")]
    [InlineData("qwen2-tiny")]
    public void LeftPaddedBatchGivesEachPromptsOwnGreedyContinuation(string folder)
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir(folder));
        using var fx = new Fixture(Path.Combine("hf", "expected", folder + ".safetensors"));
        var reference = fx.Ints("greedy");
        int[][] prompts = [fx.Ints("prompt"), [7, 3], [11, 12, 13, 14, 15, 16, 17]];
        var options = new GenerationOptions { MaxNewTokens = reference.Length };
        var batch = TextGeneration.Generate(model, prompts, options);
        Assert.Equal(reference, batch[0].Tokens);
        Assert.Equal(FinishReason.Length, batch[0].Finish);
        for (int r = 0; r < prompts.Length; r++)
            Assert.Equal(TextGeneration.Generate(model, [prompts[r]], options)[0].Tokens, batch[r].Tokens);
    }

    [Fact]
    public void EosEndsARowAndIsNotInTheOutputAndTokensStream()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("llama-tiny"));
        using var fx = new Fixture(Path.Combine("hf", "expected", "llama-tiny.safetensors"));
        var reference = fx.Ints("greedy");
        int eos = reference[2];
        Assert.DoesNotContain(eos, reference[..2]);
        var streamed = new List<(int Row, int Token)>();
        var rows = TextGeneration.Generate(model, [fx.Ints("prompt")], new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [eos] },
            onToken: (r, t) => streamed.Add((r, t)));
        Assert.Equal(reference[..2], rows[0].Tokens);
        Assert.Equal(FinishReason.Stop, rows[0].Finish);
        Assert.Equal(reference[..2].Select(t => (0, t)), streamed);
        var stopped = TextGeneration.Generate(model, [fx.Ints("prompt")], new GenerationOptions { MaxNewTokens = 8 }, stop: (_, toks) => toks.Count == 3);
        Assert.Equal(reference[..3], stopped[0].Tokens);
        Assert.Throws<ArgumentException>(() => TextGeneration.Generate(model, [[]], new GenerationOptions()));
        Assert.Throws<ArgumentException>(() => TextGeneration.Generate(model, [[1]], new GenerationOptions { TopP = 0 }));
    }

    [Fact]
    public void SamplingIsSeededAndTopKOfOneIsGreedy()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("gpt2-tiny"));
        int[][] prompt = [[4, 8, 15, 16]];
        var sample = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Temperature = 1.5f, Seed = 3 };
        var a = TextGeneration.Generate(model, prompt, sample)[0].Tokens;
        Assert.Equal(a, TextGeneration.Generate(model, prompt, sample)[0].Tokens);
        Assert.NotEqual(a, TextGeneration.Generate(model, prompt, sample with { Seed = 4 })[0].Tokens);
        var greedy = TextGeneration.Generate(model, prompt, new GenerationOptions { MaxNewTokens = 12 })[0].Tokens;
        Assert.Equal(greedy, TextGeneration.Generate(model, prompt, sample with { TopK = 1 })[0].Tokens);
    }

    [Fact]
    public void WarpersHaveHuggingFaceMeanings()
    {
        float[] l = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f)];
        var all = Sampling.Probabilities(l, new GenerationOptions { DoSample = true });
        Assert.Equal([0.5, 0.3, 0.2], all.Select(p => Math.Round(p, 6)));
        var topP = Sampling.Probabilities(l, new GenerationOptions { DoSample = true, TopP = 0.6f });   // 0.5 < 0.6, +0.3 reaches it
        Assert.Equal([0.625, 0.375, 0], topP.Select(p => Math.Round(p, 6)));
        var topK = Sampling.Probabilities(l, new GenerationOptions { DoSample = true, TopK = 1 });
        Assert.Equal([1.0, 0, 0], topK);
        var hot = Sampling.Probabilities(l, new GenerationOptions { DoSample = true, Temperature = 2 });   // ∝ √p
        double z = Math.Sqrt(0.5) + Math.Sqrt(0.3) + Math.Sqrt(0.2);
        Assert.Equal(Math.Sqrt(0.3) / z, hot[1], 6);

        // CTRL penalty: positive logits divided, negative multiplied, only for seen tokens
        float[] r = [2f, -2f, 1.5f];
        Sampling.Next(r, new GenerationOptions { RepetitionPenalty = 2 }, [0, 1], new Rng(1));
        Assert.Equal([1f, -4f, 1.5f], r);
    }

    [Fact]
    public void DrawsFollowTheWarpedDistribution()
    {
        float[] l = [0.3f, 1.2f, -0.4f, 0.9f, 0.0f];
        var o = new GenerationOptions { DoSample = true, Temperature = 0.8f, TopP = 0.9f };
        var p = Sampling.Probabilities(l, o);
        var counts = new int[l.Length];
        var rng = new Rng(11);
        const int n = 40000;
        for (int i = 0; i < n; i++) counts[Sampling.Next((float[])l.Clone(), o, [], rng)]++;
        for (int i = 0; i < l.Length; i++)
            Assert.True(Math.Abs(counts[i] / (double)n - p[i]) < 0.01, $"token {i}: drawn {counts[i] / (double)n:F4}, expected {p[i]:F4}");
        Assert.Equal(0, counts[2]);   // outside the nucleus
    }
}
