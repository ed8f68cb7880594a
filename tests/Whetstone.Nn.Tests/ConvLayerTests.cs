using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Nn.Tests;

public class ConvLayerTests
{
    private sealed class Block : Module<Tensor, Tensor>
    {
        public Conv2d Conv { get; }
        public BatchNorm2d Bn { get; }
        public Block(Rng rng)
        {
            Conv = RegisterModule("conv", new Conv2d(3, 4, 3, padding: 1, bias: false, rng: rng));
            Bn = RegisterModule("bn", new BatchNorm2d(4));
        }
        public override Tensor Forward(Tensor x) => Bn.Forward(Conv.Forward(x)).Relu6();
    }

    [Fact]
    public void FrozenBatchNormKeepsItsRunningStatisticsInTrainingMode()
    {
        var block = new Block(new Rng(1));
        var x = Tensor.Randn(new Rng(2), [5, 3, 6, 7], mean: 2, std: 3);
        block.Train();
        block.Forward(x);
        var trained = block.Bn.RunningMean.ToArray();
        Assert.NotEqual(new float[4], trained);                     // unfrozen: statistics move
        Assert.Equal(1f, block.Bn.NumBatchesTracked.Item());

        Freezing.Freeze(block, "bn.*");
        Assert.True(block.Bn.StatisticsFrozen);
        block.Train();
        var y1 = block.Forward(x).ToArray();
        Assert.Equal(trained, block.Bn.RunningMean.ToArray());     // frozen: untouched despite training mode
        block.Eval();
        Assert.Equal(y1, block.Forward(x).ToArray());              // and it behaves exactly as in inference

        Freezing.Unfreeze(block, "bn.*");
        Assert.False(block.Bn.StatisticsFrozen);
    }

    [Fact]
    public void StateDictKeysFollowPyTorch()
    {
        var keys = new Block(new Rng(1)).StateDict().Keys.ToArray();
        Assert.Equal(["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"], keys);
    }
}
