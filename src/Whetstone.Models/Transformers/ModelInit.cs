using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Tensors;

namespace Whetstone.Models.Transformers;

/// <summary>
/// While a <see cref="SkipWeightInit"/> scope is open, model constructors leave weights at zero instead of drawing
/// them: a checkpoint is about to overwrite them, and drawing 110M numbers would cost more than the load itself.
/// </summary>
internal static class ModelInit
{
    [ThreadStatic] private static int _skip;

    public static IDisposable SkipWeightInit()
    {
        _skip++;
        return new Scope();
    }

    /// <summary>The generator to initialise weights with, or null while skipping.</summary>
    public static Rng? Weights(Rng rng) => _skip > 0 ? null : rng;

    public static Linear Linear(int inFeatures, int outFeatures, Rng rng, bool bias = true) => new(inFeatures, outFeatures, bias, Weights(rng));

    public static Embedding Embedding(int count, int dim, Rng rng) => new(count, dim, Weights(rng));

    private sealed class Scope : IDisposable
    {
        private bool _done;
        public void Dispose() { if (!_done) { _done = true; _skip--; } }
    }

    /// <summary>Hugging Face's <c>_init_weights</c> for a fresh module: Linear/Embedding N(0, σ), bias 0, LayerNorm 1/0, RMSNorm 1.</summary>
    public static void HfInit(Module module, Rng rng, double std)
    {
        foreach (var (_, m) in module.NamedModules())
            switch (m)
            {
                case Linear l:
                    Init.Normal(l.Weight, rng, 0, std);
                    if (l.Bias is not null) Init.Zeros(l.Bias);
                    break;
                case Embedding e:
                    Init.Normal(e.Weight, rng, 0, std);
                    break;
                case LayerNorm n:
                    Init.Ones(n.Weight);
                    Init.Zeros(n.Bias);
                    break;
                case RmsNorm r:
                    Init.Ones(r.Weight);
                    break;
            }
    }
}
