using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tests.Parity;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Hf;

/// <summary>
/// Beam search over the KV cache: one beam is greedy decoding, a beam as wide as the vocabulary finds the exhaustive
/// best two-token continuation, left-padded batches give each prompt's own result, and end tokens close hypotheses.
/// </summary>
public class BeamSearchTests
{
    [Theory]
    [InlineData("llama-tiny")]
    [InlineData("gpt2-tiny")]
    [InlineData("qwen2-tiny")]
    public void OneBeamIsGreedyDecoding(string folder)
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir(folder));
        using var fx = new Fixture(Path.Combine("hf", "expected", folder + ".safetensors"));
        var greedy = fx.Ints("greedy");   // PyTorch's greedy continuation
        var beam = BeamSearch.Search(model, [fx.Ints("prompt")], new BeamOptions { NumBeams = 1, MaxNewTokens = greedy.Length, LengthPenalty = 0 });
        Assert.Equal(greedy, beam[0].Tokens);
        Assert.Equal(FinishReason.Length, beam[0].Finish);
    }

    /// <summary>log p of every token after <paramref name="prefix"/>: one forward without a cache.</summary>
    private static double[] NextLogProbs(CausalLm model, int[] prefix)
    {
        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        var logits = model.Forward(prefix, 1, prefix.Length).ToArray();
        int v = model.VocabSize;
        var last = logits.AsSpan((prefix.Length - 1) * v, v).ToArray().Select(x => (double)x).ToArray();
        double max = last.Max(), lse = max + Math.Log(last.Sum(x => Math.Exp(x - max)));
        return last.Select(x => x - lse).ToArray();
    }

    [Fact]
    public void ABeamAsWideAsTheVocabularyFindsTheExhaustiveBestPair()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("llama-tiny"));
        int[] prompt = [5, 17, 42, 8];
        int v = model.VocabSize;
        var first = NextLogProbs(model, prompt);
        double bestLp = double.NegativeInfinity;
        int[] best = [];
        for (int a = 0; a < v; a++)
        {
            var second = NextLogProbs(model, [.. prompt, a]);
            for (int b = 0; b < v; b++)
                if (first[a] + second[b] > bestLp) { bestLp = first[a] + second[b]; best = [a, b]; }
        }
        var beam = BeamSearch.Search(model, [prompt], new BeamOptions { NumBeams = v, MaxNewTokens = 2, LengthPenalty = 0 })[0];
        Assert.Equal(best, beam.Tokens);
        Assert.Equal(bestLp, beam.LogProb, 1e-4);
        Assert.Equal(beam.LogProb, beam.Score, 1e-12);   // length penalty 0: the raw sum
        // greedy's pair is no better than the exhaustive best, and here it is a different one or the same with the same score
        int g1 = Array.IndexOf(first, first.Max());
        var greedySecond = NextLogProbs(model, [.. prompt, g1]);
        Assert.True(first[g1] + greedySecond.Max() <= bestLp + 1e-9);
    }

    [Fact]
    public void LeftPaddedBatchGivesEachPromptsOwnBeams()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("gpt2-tiny"));
        int[][] prompts = [[7, 3], [11, 12, 13, 14, 15, 16, 17], [40, 2, 9, 30]];
        var o = new BeamOptions { NumBeams = 3, MaxNewTokens = 6, EosTokenIds = [0] };
        var batch = BeamSearch.Search(model, prompts, o);
        for (int r = 0; r < prompts.Length; r++)
        {
            var alone = BeamSearch.Search(model, [prompts[r]], o)[0];
            Assert.Equal(alone.Tokens, batch[r].Tokens);
            Assert.Equal(alone.LogProb, batch[r].LogProb, 1e-4);
        }
    }

    [Fact]
    public void AnEndTokenClosesTheHypothesisAndIsNotInTheOutput()
    {
        var (model, _) = HfModel.LoadCausalLm(HfFixtures.Dir("llama-tiny"));
        using var fx = new Fixture(Path.Combine("hf", "expected", "llama-tiny.safetensors"));
        var greedy = fx.Ints("greedy");
        int eos = greedy[1];
        Assert.NotEqual(eos, greedy[0]);
        var r = BeamSearch.Search(model, [fx.Ints("prompt")], new BeamOptions { NumBeams = 1, MaxNewTokens = 8, EosTokenIds = [eos] })[0];
        Assert.Equal([greedy[0]], r.Tokens);
        Assert.Equal(FinishReason.Stop, r.Finish);
        // with a length penalty the score is the summed log-probability over the length, end token included
        Assert.Equal(r.LogProb / 2, r.Score, 1e-9);
        // max_length_ratio bounds the output by the prompt's length
        var ratio = BeamSearch.Search(model, [[3, 4]], new BeamOptions { NumBeams = 2, MaxNewTokens = 50, MaxLengthRatio = 0.5 })[0];
        Assert.True(ratio.Tokens.Length <= 9, $"{ratio.Tokens.Length} tokens for a 2-token prompt at ratio 0.5 (⌈1⌉ + 8)");
        Assert.Throws<ArgumentException>(() => BeamSearch.Search(model, [[3]], new BeamOptions { NumBeams = 0 }));
    }
}
