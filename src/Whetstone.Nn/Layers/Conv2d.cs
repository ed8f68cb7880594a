using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>
/// 2-D convolution over NCHW input with <c>weight</c> [out, in/groups, kH, kW] and optional <c>bias</c> [out]
/// (nn.Conv2d layout and init: kaiming-uniform a=√5, bias U(−1/√fanIn, 1/√fanIn)). Depthwise when groups == in.
/// </summary>
public sealed class Conv2d : Module<Tensor, Tensor>
{
    public int InChannels { get; }
    public int OutChannels { get; }
    public (int H, int W) Kernel { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) Dilation { get; }
    public int Groups { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Conv2d(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups = 1, bool bias = true, Rng? rng = null)
    {
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d: {inChannels} in and {outChannels} out channels are not divisible by groups = {groups}.");
        (InChannels, OutChannels, Kernel, Stride, Padding, Dilation, Groups) = (inChannels, outChannels, kernel, stride, padding, dilation, groups);
        Weight = RegisterParameter("weight", Init.Parameter(outChannels, inChannels / groups, kernel.H, kernel.W));
        if (bias) Bias = RegisterParameter("bias", Init.Parameter(outChannels));
        if (rng is not null)
        {
            Init.KaimingUniform(Weight, rng);
            if (Bias is not null)
            {
                double bound = 1 / Math.Sqrt(inChannels / groups * kernel.H * kernel.W);
                Init.Uniform(Bias, rng, -bound, bound);
            }
        }
    }

    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, Rng? rng = null)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, rng) { }

    public override Tensor Forward(Tensor input) => Tensor.Conv2d(input, Weight, Bias, Stride, Padding, Dilation, Groups);

    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={Kernel}, stride={Stride}, padding={Padding}" + (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}
