using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Parity;

/// <summary>Cross-entropy with label smoothing, class weights, ignore-index and both reductions against PyTorch.</summary>
public class CrossEntropyParityTests
{
    [Theory]
    [InlineData("plain", -100, 0f, false, true)]
    [InlineData("smooth", -100, 0.1f, false, true)]
    [InlineData("weighted_ignore", 2, 0f, true, true)]
    [InlineData("weighted_smooth_ignore", 5, 0.2f, true, true)]
    [InlineData("sum", -100, 0.05f, false, false)]
    public void LossAndGradientMatchPyTorch(string name, int ignore, float smoothing, bool weighted, bool mean)
    {
        using var f = new Fixture("cross_entropy.safetensors");
        var logits = f.Param("logits");
        var weights = weighted ? f["class_weight"].ToArray() : [];
        var loss = Tensor.CrossEntropy(logits, f.Ints("target"), ignore, smoothing, weights, mean);
        loss.Backward();
        f.Close("loss." + name, loss.Reshape(1), 1e-5);
        f.Close("grad." + name, logits.Grad, 1e-6);
    }
}
