using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Parity;

/// <summary>conv (stride 2, pad 1, dilation 2) → batch norm (training) → ReLU6 → depthwise 3×3 → global average pool, against PyTorch.</summary>
public class ConvBnParityTests
{
    [Fact]
    public void OutputsGradientsAndRunningStatisticsMatchPyTorch()
    {
        using var f = new Fixture("conv_bn.safetensors");
        var x = f.Param("x");
        var w = f.Param("conv.weight"); var b = f.Param("conv.bias");
        var gamma = f.Param("bn.weight"); var beta = f.Param("bn.bias");
        var wd = f.Param("dw.weight");
        var runMean = f["bn.running_mean.before"]; var runVar = f["bn.running_var.before"];

        var c = Tensor.Conv2d(x, w, b, stride: 2, padding: 1, dilation: 2);
        var bn = Tensor.BatchNorm(c, gamma, beta, runMean, runVar, training: true, momentum: 0.1f, eps: 1e-5f);
        var d = Tensor.Conv2d(bn.Relu6(), wd, null, stride: 1, padding: 1, groups: wd.Dim(0));
        var y = d.GlobalAvgPool2d(keepDims: false);
        (y * f["loss_weight"]).Sum().Backward();

        f.Close("conv_out", c);
        f.Close("y", y);
        f.Close("bn.running_mean.after", runMean, 1e-5);
        f.Close("bn.running_var.after", runVar, 1e-5);
        f.Close("grad.x", x.Grad);
        f.Close("grad.conv.weight", w.Grad);
        f.Close("grad.conv.bias", b.Grad);
        f.Close("grad.bn.weight", gamma.Grad);
        f.Close("grad.bn.bias", beta.Grad);
        f.Close("grad.dw.weight", wd.Grad);
    }
}
