using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Parity;

/// <summary>A BERT-style post-LN block (attention with key padding + GELU FFN) against PyTorch: outputs and every gradient.</summary>
public class AttentionBlockParityTests
{
    [Fact]
    public void OutputAndGradientsMatchPyTorch()
    {
        using var f = new Fixture("attention_block.safetensors");
        var x = f.Param("x");
        var p = new Dictionary<string, Tensor>();
        foreach (var n in new[] { "q", "k", "v", "o", "ln1", "ff1", "ff2", "ln2" })
            foreach (var s in new[] { "weight", "bias" })
                p[$"{n}.{s}"] = f.Param($"{n}.{s}");
        int b = x.Dim(0), t = x.Dim(1), d = x.Dim(2), h = 4, dh = d / h;
        Tensor Lin(Tensor input, string n) => Tensor.Linear(input, p[n + ".weight"], p[n + ".bias"]);
        Tensor Split(Tensor y) => y.Reshape(b, t, h, dh).Permute(0, 2, 1, 3);

        var ctx = Tensor.ScaledDotProductAttention(Split(Lin(x, "q")), Split(Lin(x, "k")), Split(Lin(x, "v")), causal: false, f["mask"]);
        var a = ctx.Permute(0, 2, 1, 3).Reshape(b, t, d);
        var h1 = Tensor.LayerNorm(x + Lin(a, "o"), p["ln1.weight"], p["ln1.bias"], 1e-12f);
        var y = Tensor.LayerNorm(h1 + Lin(Lin(h1, "ff1").Gelu(), "ff2"), p["ln2.weight"], p["ln2.bias"], 1e-12f);
        (y * f["loss_weight"]).Sum().Backward();

        f.Close("y", y);
        f.Close("grad.x", x.Grad);
        foreach (var (name, tensor) in p) f.Close("grad." + name, tensor.Grad);
    }
}
