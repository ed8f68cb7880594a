using Whetstone.Tensors.Autograd;

namespace Whetstone.Tensors;

// Batch normalisation over (N, spatial) per channel, as PyTorch's BatchNorm1d/2d.
public sealed partial class Tensor
{
    /// <summary>
    /// Normalises x [N, C], [N, C, L] or [N, C, H, W] per channel, then scales by gamma [C] and shifts by beta [C]
    /// (either may be null: 1 / 0).
    /// <para>Training: uses the batch mean and biased variance, backpropagates through them, and updates
    /// <paramref name="runningMean"/>/<paramref name="runningVar"/> in place (if given): running = (1 − momentum)·running
    /// + momentum·batch, with the unbiased variance (as PyTorch). Eval: normalises with the running statistics;
    /// the backward is the affine map dx = dy·gamma/√(runningVar + eps).</para>
    /// </summary>
    public static Tensor BatchNorm(Tensor x, Tensor? gamma, Tensor? beta, Tensor? runningMean, Tensor? runningVar,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        string shapes = $"input {Shapes.Format(x.Dims)}" +
            (gamma is null ? "" : $", gamma {Shapes.Format(gamma.Dims)}") + (beta is null ? "" : $", beta {Shapes.Format(beta.Dims)}") +
            (runningMean is null ? "" : $", running mean {Shapes.Format(runningMean.Dims)}") + (runningVar is null ? "" : $", running var {Shapes.Format(runningVar.Dims)}");
        if (x.Rank < 2) throw new ArgumentException($"BatchNorm needs an input [N, C, ...]; got {shapes}.");
        int n = x.Dims[0], c = x.Dims[1], s = 1;
        for (int i = 2; i < x.Rank; i++) s *= x.Dims[i];
        foreach (var p in new[] { gamma, beta, runningMean, runningVar })
            if (p is not null && (p.Rank != 1 || p.Dims[0] != c))
                throw new ArgumentException($"BatchNorm: per-channel tensors must be [{c}]; got {shapes}.");
        if (!training && (runningMean is null || runningVar is null))
            throw new ArgumentException("BatchNorm in eval mode needs the running mean and variance.");
        if (training && n * s <= 1)
            throw new ArgumentException($"BatchNorm in training needs more than one value per channel; got {shapes}.");

        x = x.Contiguous();
        var gm = gamma?.Contiguous();
        var bt = beta?.Contiguous();
        var y = Empty(x.Dims);
        var mean = new float[c];
        var rstd = new float[c];
        if (training)
        {
            var var = new float[c];
            Kernels.BatchNorm.ForwardTrain<float>(n, c, s, x.Span, gm is null ? default : gm.Span, bt is null ? default : bt.Span, eps, y.Span, mean, var, rstd);
            if (runningMean is not null && runningVar is not null)
                Kernels.BatchNorm.UpdateRunning<float>(n * s, mean, var, momentum, runningMean.Span, runningVar.Span);
        }
        else
        {
            runningMean!.Contiguous().Span.CopyTo(mean);   // a snapshot: the backward must use the statistics of this forward
            Kernels.BatchNorm.ForwardEval<float>(n, c, s, x.Span, gm is null ? default : gm.Span, bt is null ? default : bt.Span,
                mean, runningVar!.Contiguous().Span, eps, y.Span, rstd);
        }

        bool needs = Graph.IsEnabled && (x.RequiresGrad || (gm?.RequiresGrad ?? false) || (bt?.RequiresGrad ?? false));
        if (needs)
        {
            var inputs = new List<Tensor> { x };
            if (gm is not null) inputs.Add(gm);
            if (bt is not null) inputs.Add(bt);
            Graph.Record(y, training ? "batchnorm_train" : "batchnorm_eval", gy =>
            {
                Span<float> dx = default, dg = default, db = default;
                bool accX = false, accG = false, accB = false, fresh;
                if (x.RequiresGrad) { dx = x.GradBuffer(out fresh).Span; accX = !fresh; }
                if (gm is not null && gm.RequiresGrad) { dg = gm.GradBuffer(out fresh).Span; accG = !fresh; }
                if (bt is not null && bt.RequiresGrad) { db = bt.GradBuffer(out fresh).Span; accB = !fresh; }
                Kernels.BatchNorm.Backward<float>(training, n, c, s, x.Span, gy.Contiguous().Span, gm is null ? default : gm.Span,
                    mean, rstd, dx, accX, dg, accG, db, accB);
            }, inputs.ToArray());
        }
        return y;
    }
}
