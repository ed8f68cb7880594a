using Whetstone.Models.Graph;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models;

/// <summary>
/// The task head put on a backbone: a linear layer, or an MLP with one hidden layer (ReLU, dropout) when
/// <paramref name="Hidden"/> &gt; 0. Sized from the dataset's labels.
/// </summary>
public sealed record HeadSpec(int Classes, int Hidden = 0, float Dropout = 0)
{
    public string Describe() => Hidden > 0 ? $"mlp({Hidden}, dropout {Dropout}) → {Classes}" : $"linear → {Classes}";

    /// <summary>The head over <paramref name="featureDim"/> inputs, initialised from <paramref name="rng"/>.</summary>
    public Module<Tensor, Tensor> Build(int featureDim, Rng rng)
    {
        if (Classes < 2) throw new ArgumentException($"A classification head needs at least 2 classes; got {Classes}.");
        return Hidden > 0
            ? new Sequential(new Linear(featureDim, Hidden, true, rng), new Relu(), new Dropout(Dropout, rng), new Linear(Hidden, Classes, true, rng))
            : new Linear(featureDim, Classes, true, rng);
    }
}

/// <summary>
/// An imported backbone cut at its feature layer, plus a fresh task head: <c>head(pool(backbone(x)))</c>, where pool is a
/// global average over H×W when the features are a 4-D map and nothing when they are already [N, F].
/// Checkpoint names: <c>backbone.{layer}.{weight}</c>, <c>head.…</c>.
/// </summary>
public sealed class ImageClassifier : Module<Tensor, Tensor>
{
    public LayerGraph Backbone { get; }
    public Module<Tensor, Tensor> Head { get; }
    public HeadSpec HeadSpec { get; }
    public int FeatureDim { get; }

    /// <param name="featureDim">Channels of the backbone's output (see <see cref="ProbeFeatures"/>).</param>
    public ImageClassifier(LayerGraph backbone, int featureDim, HeadSpec head, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        Backbone = RegisterModule("backbone", backbone);
        FeatureDim = featureDim;
        HeadSpec = head;
        Head = RegisterModule("head", head.Build(featureDim, rng));
    }

    /// <summary>
    /// A backbone with a given head — a checkpoint's own classifier re-hosted on the pooled features — described by
    /// <paramref name="spec"/> only by its class count.
    /// </summary>
    public ImageClassifier(LayerGraph backbone, int featureDim, HeadSpec spec, Module<Tensor, Tensor> head)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(head);
        Backbone = RegisterModule("backbone", backbone);
        FeatureDim = featureDim;
        HeadSpec = spec;
        Head = RegisterModule("head", head);
    }

    public override Tensor Forward(Tensor input) => Classify(Backbone.Forward(input));

    /// <summary>The logits from a cached value of backbone layer <paramref name="layer"/> (a cut point).</summary>
    public Tensor ForwardFrom(string layer, Tensor cached) => Classify(Backbone.RunFrom(layer, cached));

    private Tensor Classify(Tensor features) => Head.Forward(Pool(features));

    /// <summary>Global average over H×W for [N, C, H, W]; [N, F] as it is; other ranks flattened after the batch axis.</summary>
    public static Tensor Pool(Tensor features) => features.Rank switch
    {
        4 => features.GlobalAvgPool2d(keepDims: false),
        2 => features,
        _ => features.Reshape(features.Dim(0), -1),
    };

    /// <summary>
    /// Runs <paramref name="backbone"/> once on a zero image of <paramref name="inputShape"/> [C, H, W] and returns the
    /// shape of its raw output and the feature size after <see cref="Pool"/>.
    /// </summary>
    public static (int[] OutputShape, int FeatureDim) ProbeFeatures(LayerGraph backbone, int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(inputShape);
        using var scope = new Tensors.Memory.TensorScope();
        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        bool training = backbone.IsTraining;
        backbone.Eval();
        var y = backbone.Forward(Tensor.Zeros([1, .. inputShape]));
        backbone.Train(training);
        return (y.Shape.ToArray(), Pool(y).Dim(1));
    }

    /// <summary>
    /// Re-initialises every parameter and statistic of <paramref name="root"/> as a fresh network would be: batch norm
    /// γ = 1, β = 0, mean 0, var 1; every weight of rank ≥ 2 (conv, dense, whatever the module type) Kaiming-uniform as
    /// PyTorch's layers do, and a bias beside it uniform in ±1/√fan-in — the "same network from scratch" baseline.
    /// Throws for any other kind of parameter, rather than leave it pre-trained.
    /// </summary>
    public static void Reinitialize(Module root, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(rng);
        foreach (var (name, m) in root.NamedModules())
        {
            if (m is BatchNorm2d bn)
            {
                Init.Ones(bn.Weight); Init.Zeros(bn.Bias); Init.Zeros(bn.RunningMean); Init.Ones(bn.RunningVar); Init.Zeros(bn.NumBatchesTracked);
                continue;
            }
            var own = m.NamedParameters().Where(p => !p.Name.Contains('.', StringComparison.Ordinal)).ToArray();
            var weight = own.Where(p => p.Tensor.Rank >= 2).Select(p => p.Tensor).FirstOrDefault();
            foreach (var (pn, p) in own)
            {
                if (p.Rank >= 2) Init.KaimingUniform(p, rng);
                else if (pn == "bias" && weight is not null) Init.Uniform(p, rng, -FanBound(weight), FanBound(weight));
                else throw new NotSupportedException($"Cannot re-initialise parameter '{(name.Length == 0 ? pn : name + "." + pn)}' of {m.GetType().Name}: not a weight of rank ≥ 2 or its bias.");
            }
        }
    }

    private static double FanBound(Tensor weight) => 1 / Math.Sqrt(Math.Max(1, Init.Fans(weight).FanIn));

    protected override string ExtraRepr() => $"features {FeatureDim}, head {HeadSpec.Describe()}";
}
