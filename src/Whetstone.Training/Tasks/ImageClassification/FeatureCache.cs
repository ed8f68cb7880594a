using Whetstone.Models;
using Whetstone.Models.Graph;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;

namespace Whetstone.Training.Tasks;

/// <summary>
/// Backbone outputs at a cut point, computed once for a whole dataset. When every layer up to the cut is frozen
/// (batch norm statistics frozen with it, no dropout) and the inputs are not augmented, those layers compute the same
/// values every epoch, so later epochs start from here and cost only the layers above it.
/// </summary>
internal sealed class FeatureCache
{
    /// <summary>The backbone layer whose output is cached.</summary>
    public string Layer { get; }
    /// <summary>Shape of one example's cached value (e.g. [C, H, W]).</summary>
    public int[] ExampleShape { get; }
    private readonly float[] _data;
    private readonly int _stride;

    private FeatureCache(string layer, int[] exampleShape, float[] data)
    {
        Layer = layer;
        ExampleShape = exampleShape;
        _data = data;
        _stride = Shapes.Size(exampleShape);
    }

    public int Count => _stride == 0 ? 0 : _data.Length / _stride;

    public long Bytes => (long)_data.Length * sizeof(float);

    /// <summary>
    /// The latest layer of <paramref name="backbone"/> that can be cached: a cut point all of whose ancestors are
    /// frozen and free of dropout. Null when the first layer already trains (nothing to cache).
    /// </summary>
    public static string? ChooseLayer(LayerGraph backbone)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        string? best = null;
        bool computes = false;                          // caching only pays once a weighted layer is below the cut
        foreach (var node in backbone.Nodes)
        {
            var layer = backbone.Layer(node.Name);
            computes |= layer.Parameters().Any();
            bool frozen = layer.Parameters().All(p => !p.RequiresGrad);
            bool deterministic = !layer.NamedModules().Any(m => m.Module is Dropout { P: > 0 } || m.Module is BatchNorm2d { StatisticsFrozen: false });
            if (!frozen || !deterministic) break;       // graph order: everything after this may depend on it
            if (computes && backbone.IsCutPoint(node.Name)) best = node.Name;
        }
        return best;
    }

    /// <summary>Runs the backbone up to <paramref name="layer"/> over all <paramref name="count"/> examples, in batches.</summary>
    /// <param name="batch">Fills a batch of inputs for examples [start, start + n) into a tensor (allocated in the current scope).</param>
    public static FeatureCache Build(LayerGraph backbone, string layer, int count, int batchSize, Func<int, int, Tensor> batch, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(batch);
        float[]? data = null;
        int[] shape = [];
        int stride = 0;
        bool training = backbone.IsTraining;
        backbone.Eval();
        try
        {
            for (int start = 0; start < count; start += batchSize)
            {
                int n = Math.Min(batchSize, count - start);
                using var scope = new TensorScope();
                using var noGrad = Graph.NoGrad();
                var y = backbone.Run(batch(start, n), layer).Contiguous();
                if (data is null)
                {
                    shape = y.Shape[1..].ToArray();
                    stride = Shapes.Size(shape);
                    data = GC.AllocateUninitializedArray<float>(checked(count * stride));
                }
                y.Span.CopyTo(data.AsSpan(start * stride, n * stride));
                progress?.Invoke(start + n);
            }
        }
        finally { backbone.Train(training); }
        return new FeatureCache(layer, shape, data ?? []);
    }

    /// <summary>The cached values of <paramref name="indices"/> as one batch tensor (in the current scope).</summary>
    public Tensor Gather(ReadOnlySpan<int> indices)
    {
        var t = Tensor.Empty([indices.Length, .. ExampleShape]);
        var dst = t.Span;
        for (int i = 0; i < indices.Length; i++)
            _data.AsSpan(indices[i] * _stride, _stride).CopyTo(dst.Slice(i * _stride, _stride));
        return t;
    }

    /// <summary>A contiguous range of cached values as one batch tensor (in the current scope).</summary>
    public Tensor Range(int start, int n)
    {
        var t = Tensor.Empty([n, .. ExampleShape]);
        _data.AsSpan(start * _stride, n * _stride).CopyTo(t.Span);
        return t;
    }
}
