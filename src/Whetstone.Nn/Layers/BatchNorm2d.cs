using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>
/// Batch normalisation per channel with <c>weight</c>, <c>bias</c> and the buffers <c>running_mean</c>, <c>running_var</c>,
/// <c>num_batches_tracked</c> (nn.BatchNorm2d layout; also accepts (N, C) input).
/// In training mode it normalises with batch statistics and updates the running ones — unless
/// <see cref="StatisticsFrozen"/> is set, which keeps it in inference behaviour whatever the mode: the right
/// thing for a frozen pre-trained backbone (the Keras fine-tuning trap), and what freezing sets.
/// </summary>
public sealed class BatchNorm2d : Module<Tensor, Tensor>
{
    public int Channels { get; }
    public float Eps { get; }
    /// <summary>Weight of the batch statistic in the running-average update (PyTorch convention: 0.1 = fast).</summary>
    public float Momentum { get; set; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }
    public Tensor NumBatchesTracked { get; }

    /// <summary>Use the running statistics and never update them, even in training mode.</summary>
    public bool StatisticsFrozen { get; set; }

    /// <summary>Whether the next forward normalises with batch statistics.</summary>
    public bool UsesBatchStatistics => IsTraining && !StatisticsFrozen;

    public BatchNorm2d(int channels, float eps = 1e-5f, float momentum = 0.1f)
    {
        Channels = channels;
        Eps = eps;
        Momentum = momentum;
        Weight = RegisterParameter("weight", Init.Ones(Init.Parameter(channels)));
        Bias = RegisterParameter("bias", Init.Zeros(Init.Parameter(channels)));
        RunningMean = RegisterBuffer("running_mean", Init.Zeros(Tensor.Persistent(channels)));
        RunningVar = RegisterBuffer("running_var", Init.Ones(Tensor.Persistent(channels)));
        NumBatchesTracked = RegisterBuffer("num_batches_tracked", Init.Zeros(Tensor.Persistent()));
    }

    public override Tensor Forward(Tensor input)
    {
        if (input.Dim(1) != Channels) throw new ArgumentException($"BatchNorm2d({Channels}) got input {Shapes.Format(input.Shape)} with {input.Dim(1)} channels.");
        bool batchStats = UsesBatchStatistics;
        if (batchStats) NumBatchesTracked.Span[0] += 1;
        return Tensor.BatchNorm(input, Weight, Bias, RunningMean, RunningVar, batchStats, Momentum, Eps);
    }

    protected override string ExtraRepr() => $"{Channels}, eps={Eps}, momentum={Momentum}" + (StatisticsFrozen ? ", statistics frozen" : "");
}
