using System.Globalization;
using System.Text;
using Whetstone.Models;
using Whetstone.Models.Text;
using Whetstone.Models.WordVectors;
using Whetstone.Tensors;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Text;

/// <summary>Tiny word-vector files in the wink-embeddings layout, for tests.</summary>
internal static class TinyVectors
{
    public static readonly string[] Positive = ["good", "great", "love", "excellent", "fine"];
    public static readonly string[] Negative = ["bad", "awful", "hate", "poor", "terrible"];
    public static readonly string[] Neutral = ["the", "movie", "food", "phone", "was", "is", "it", "not", "do", "really"];

    /// <summary>Writes {dimensions, words, vectors: {w: [d floats, l2norm, index]}, unkVector} with dim 8; returns the path.</summary>
    public static string Write(string path, int dim = 8)
    {
        var words = Neutral.Concat(Positive).Concat(Negative).ToArray();
        var rng = new Rng(3);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"precision\":8,\"l2NormIndex\":{dim},\"wordIndex\":{dim + 1},\"size\":{words.Length},\"dimensions\":{dim},\"words\":[");
        sb.AppendJoin(',', words.Select(w => $"\"{w}\"")).Append("],\"vectors\":{");
        for (int i = 0; i < words.Length; i++)
        {
            var v = Enumerable.Range(0, dim).Select(_ => (float)(rng.NextNormal() * 0.3)).ToArray();
            if (Positive.Contains(words[i])) v[0] += 1;
            if (Negative.Contains(words[i])) v[0] -= 1;
            sb.Append(i > 0 ? "," : "").Append(CultureInfo.InvariantCulture, $"\"{words[i]}\":[{string.Join(',', v.Select(x => x.ToString("R", CultureInfo.InvariantCulture)))},1.5,{i}]");
        }
        sb.Append("},\"unkVector\":[").AppendJoin(',', Enumerable.Repeat("0", dim + 2)).Append("]}");
        File.WriteAllText(path, sb.ToString());
        return path;
    }
}

public sealed class WordVectorTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Json_is_read_once_then_the_binary_cache_gives_the_same_table()
    {
        var json = TinyVectors.Write(_dir.File("v.json"));
        var first = WordVectors.Load(json);
        Assert.Equal(json, first.LoadedFrom);
        Assert.True(File.Exists(json + ".whetvec"));
        var second = WordVectors.Load(json);
        Assert.Equal(json + ".whetvec", second.LoadedFrom);
        Assert.Equal(first.Words, second.Words);
        Assert.Equal(first.Table, second.Table);
        Assert.Equal(first.Sha256, second.Sha256);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(json))), first.Sha256);
        Assert.Equal(8, first.Dim);
        Assert.Equal(22, first.Rows);                                    // 20 words + padding + unknown
        Assert.Equal(2, first.Id("the"));
        Assert.Equal(WordVectors.UnkId, first.Id("zebra"));
        Assert.All(first.Row(WordVectors.PadId).ToArray(), x => Assert.Equal(0f, x));
        Assert.True(first.Row(first.Id("great"))[0] > 0.3f);
        // a changed source invalidates the cache
        File.SetLastWriteTimeUtc(json, DateTime.UtcNow.AddMinutes(1));
        Assert.Equal(json, WordVectors.Load(json).LoadedFrom);
    }

    [Fact]
    public void Tokenizer_lowercases_splits_on_non_letters_and_handles_clitics()
    {
        Assert.Equal(["the", "movie", "wasn't", "great", "10", "10"], WordTokenizer.Words("The MOVIE wasn't great!! 10/10", known: w => w == "wasn't"));
        Assert.Equal(["do", "not", "can", "not", "it", "they", "are", "rock", "n", "roll"], WordTokenizer.Words("Don't can't it's they're rock'n'roll"));
    }

    /// <summary>Finite differences (float32, central) of L = Σ w·features against the autograd gradient of every trainable weight.</summary>
    [Theory]
    [InlineData("pool", true)]
    [InlineData("cnn", false)]
    [InlineData("cnn", true)]
    public void Encoder_gradients_match_finite_differences(string kind, bool tune)
    {
        var v = WordVectors.Load(TinyVectors.Write(_dir.File($"g{kind}{tune}.json")));
        var enc = new WordVectorEncoder(v, new WordEncoderSpec { Kind = kind, Filters = 3, KernelSizes = [2, 3], TuneVectors = tune, TunedWords = ["good", "bad", "movie"] }, new Rng(5));
        var batch = new[] { enc.Tokenize("the movie was good", null, 10), enc.Tokenize("bad", null, 10), enc.Tokenize("zebra is really awful food", null, 10) };
        var w = Tensor.Randn(new Rng(9), [3, enc.OutputDim]);
        float Loss() { using var _ = Tensors.Autograd.Graph.NoGrad(); return (enc.Encode(batch) * w).Sum().Item(); }
        (enc.Encode(batch) * w).Sum().Backward();
        var ps = enc.NamedTrainableParameters().ToArray();
        Assert.Equal(tune ? (kind == "cnn" ? 5 : 1) : 4, ps.Length);
        foreach (var (name, p) in ps)
        {
            var grad = p.Grad!.ToArray();
            var s = p.Span;
            for (int i = 0; i < s.Length; i += Math.Max(1, s.Length / 40))
            {
                float keep = s[i];
                s[i] = keep + 1e-2f; float lp = Loss();
                s[i] = keep - 1e-2f; float lm = Loss();
                s[i] = keep;
                double num = (lp - lm) / 2e-2;
                Assert.True(Math.Abs(num - grad[i]) <= 2e-2 * Math.Max(1, Math.Abs(num)), $"{name}[{i}]: numeric {num}, autograd {grad[i]}");
            }
        }
    }

    [Fact]
    public void Conv1d_as_unfold_and_gemm_equals_conv2d_with_height_one()
    {
        var v = WordVectors.Load(TinyVectors.Write(_dir.File("c.json")));
        var enc = new WordVectorEncoder(v, new WordEncoderSpec { Kind = "cnn", Filters = 4, KernelSizes = [3, 4, 5] }, new Rng(1));
        var batch = new[] { enc.Tokenize("the food was really really terrible and the phone is poor", null, 64), enc.Tokenize("great", null, 64) };
        float[] a, b;
        try
        {
            WordVectorEncoder.UseConv2d = false; a = enc.Encode(batch).ToArray();
            WordVectorEncoder.UseConv2d = true; b = enc.Encode(batch).ToArray();
        }
        finally { WordVectorEncoder.UseConv2d = false; }
        Assert.Equal(12, a.Length / 2);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 4);
    }

    [Fact]
    public void Pooling_is_mean_and_max_over_the_valid_tokens_only()
    {
        var v = WordVectors.Load(TinyVectors.Write(_dir.File("p.json")));
        var enc = new WordVectorEncoder(v, new WordEncoderSpec { Kind = "pool" }, new Rng(1));
        var model = new TextClassifier(enc, new HeadSpec(2), new Rng(1));
        var f = enc.Encode([[v.Id("good"), v.Id("bad")], [v.Id("good")]]).ToArray();
        int d = v.Dim;
        for (int j = 0; j < d; j++)
        {
            float g = v.Row(v.Id("good"))[j], b = v.Row(v.Id("bad"))[j];
            Assert.Equal((g + b) / 2, f[j], 5);
            Assert.Equal(Math.Max(g, b), f[d + j], 5);
            Assert.Equal(g, f[2 * d + j], 5);          // the padded second example: padding does not count
            Assert.Equal(g, f[3 * d + j], 5);
        }
        Assert.Equal(2 * 2, model.Forward([[2, 3], [4]]).Size);
    }
}
