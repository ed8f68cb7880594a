using System.Diagnostics;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Tfjs;
using Whetstone.Models.Graph;
using Whetstone.Tensors;
using Xunit.Abstractions;

namespace Whetstone.Models.Tests.Tfjs;

/// <summary>
/// Our import against TensorFlow.js 4.22 itself (fixtures by tests/fixtures/tfjs/make_tfjs_fixtures.mjs): the checked-in
/// small model (every mapped layer kind) and the nsfwjs MobileNetV2 / InceptionV3 from the asset cache.
/// </summary>
public class TfjsParityTests(ITestOutputHelper output)
{
    private const double Tol = 1e-4;

    [Theory]
    [InlineData("small")]          // model.json + weights.bin as tfjs' model.save writes them
    [InlineData("small_minjs")]    // the same model as browserify .min.js modules (JS literal + base64 shard)
    public void SmallModelMatchesTfjsAtEveryLayer(string dir)
    {
        var graph = TfjsLayers.Load(Path.Combine(TfjsFixtures.Root, dir));
        Assert.Equal([3, 12, 10], graph.InputShape!);
        using var f = SafeTensorsFile.Open(Path.Combine(TfjsFixtures.Root, "small.safetensors"));
        var x = TfjsFixtures.Input(3, 12, 10, 3);
        using var _ = Whetstone.Tensors.Autograd.Graph.NoGrad();
        foreach (var layer in graph.LayerNames.Where(f.Contains))
        {
            double d = TfjsFixtures.MaxDiff(f, layer, graph.Run(x, layer));
            output.WriteLine($"{layer,-6} {d:E2}");
            Assert.True(d <= Tol, $"{layer}: max abs diff {d:E2}");
        }
        double probs = TfjsFixtures.MaxDiff(f, "probs", graph.Forward(x));
        var logitsGraph = TfjsLayers.Load(Path.Combine(TfjsFixtures.Root, dir), logits: true);
        double logits = TfjsFixtures.MaxDiff(f, "logits", logitsGraph.Forward(x));
        output.WriteLine($"probs {probs:E2}, logits {logits:E2}");
        Assert.True(probs <= Tol && logits <= Tol, $"probs {probs:E2}, logits {logits:E2}");
    }

    [Fact]
    public void MobileNetV2MatchesTfjs() => Nsfwjs("mobilenet_v2", 224, ["Conv1_relu", "block_1_depthwise_relu", "block_2_add", "out_relu"]);

    [Fact]
    public void InceptionV3MatchesTfjs() => Nsfwjs("inception_v3", 299, ["activation_1", "max_pooling2d_1", "mixed0", "mixed5", "mixed10"]);

    private void Nsfwjs(string name, int size, string[] patched)
    {
        var dir = TfjsFixtures.Asset(name);
        var graph = TfjsLayers.Load(dir);
        Assert.Equal([3, size, size], graph.InputShape!);
        using var f = SafeTensorsFile.Open(Path.Combine(TfjsFixtures.Root, name + ".safetensors"));
        var x = TfjsFixtures.Input(3, size, size, 3);
        using var _ = Whetstone.Tensors.Autograd.Graph.NoGrad();
        foreach (var layer in patched)
        {
            var y = graph.Run(x, layer);
            double scale = Math.Max(1, y.ToArray().Max(Math.Abs));
            double d = TfjsFixtures.MaxDiffPatches(f, layer, y);
            output.WriteLine($"{layer,-24} {d:E2} (max |value| {scale:F2})");
            Assert.True(d <= Tol * scale, $"{layer}: max abs diff {d:E2} (values up to {scale:F2})");
        }
        foreach (var layer in new[] { "flatten_1", "dense_1", "dense_2" })
        {
            double d = TfjsFixtures.MaxDiff(f, layer, graph.Run(x, layer));
            output.WriteLine($"{layer,-24} {d:E2}");
            Assert.True(d <= Tol, $"{layer}: max abs diff {d:E2}");
        }
        double probs = TfjsFixtures.MaxDiff(f, "probs", graph.Forward(x));
        double logits = TfjsFixtures.MaxDiff(f, "logits", TfjsLayers.Load(dir, logits: true).Forward(x));
        output.WriteLine($"probs {probs:E2}, logits {logits:E2}");
        Assert.True(probs <= Tol, $"probabilities: max abs diff {probs:E2}");
        Assert.True(logits <= Tol, $"logits: max abs diff {logits:E2}");
    }

    [Fact]
    public void MobileNetV2ForwardOnABatchOf32IsFast()
    {
        var graph = TfjsLayers.Load(TfjsFixtures.Asset("mobilenet_v2"));
        var x = Tensor.Rand(new Rng(1), [32, 3, 224, 224]);
        using var _ = Whetstone.Tensors.Autograd.Graph.NoGrad();
        var times = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            using var scope = new Whetstone.Tensors.Memory.TensorScope();
            var sw = Stopwatch.StartNew();
            var y = graph.Forward(x);
            times.Add(sw.Elapsed.TotalMilliseconds);
            Assert.Equal([32, 5], y.Shape.ToArray());
        }
        output.WriteLine($"MobileNetV2 forward, batch 32 × 224², {Par.Threads} threads: {string.Join(", ", times.Select(t => $"{t:F0}"))} ms");
        Assert.True(times.Skip(1).Min() < 5000, $"forward took {times.Skip(1).Min():F0} ms");
    }
}
