using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;

namespace Whetstone.Models;

/// <summary>
/// A model family as the importers see it: a backbone with its Hugging Face checkpoint naming and the heads it can
/// carry. Each family declares one of these in its own file (<c>Bert/Bert.cs</c>: <c>BertFamily.Definition</c>) and
/// <see cref="Families"/> lists it; nothing else about a family is written down twice.
/// </summary>
/// <param name="ModelTypes">The <c>config.json</c> <c>model_type</c> values this family reads.</param>
/// <param name="Keys">The backbone's checkpoint naming: base prefix, renames, ignored buffers. The module tree supplies
/// the rest of the key map.</param>
/// <param name="SequenceClassification">Backbone + classifier head, or null when the family has none.</param>
/// <param name="InitStd">σ of freshly initialised head weights; default <c>initializer_range</c> (0.02).</param>
/// <param name="CausalLm">Backbone + language-modelling head (decoders), or null when the family has none.</param>
internal sealed record ModelFamily(
    IReadOnlyList<string> ModelTypes,
    HfCheckpointKeys Keys,
    SequenceClassificationHead? SequenceClassification,
    Func<HfConfig, float>? InitStd = null,
    CausalLmHead? CausalLm = null)
{
    /// <summary>The standard deviation fresh modules are drawn with (transformers' <c>_init_weights</c>).</summary>
    public float Std(HfConfig config) => InitStd?.Invoke(config) ?? config.Float("initializer_range", 0.02f);
}

/// <summary>A sequence-classification head on a family's backbone (transformers' <c>…ForSequenceClassification</c>).</summary>
/// <param name="Create">(config, model_type, label count, generator) → the whole model; weights are left at zero
/// inside <see cref="ModelInit.SkipWeightInit"/>.</param>
/// <param name="LabelsModule">The linear layer whose output count is the label count; with another count in the
/// checkpoint it is initialised fresh and reported.</param>
/// <param name="OptionalModules">Modules a checkpoint may lack (pooler, classifier): initialised fresh and reported
/// instead of failing the load.</param>
/// <param name="Ignore">Checkpoint tensors of other heads that this head drops (pre-training and masked-LM heads).</param>
internal sealed record SequenceClassificationHead(
    Func<HfConfig, string, int, Rng, TextEncoderClassifier> Create,
    string LabelsModule,
    IReadOnlyList<string> OptionalModules,
    IReadOnlyList<string> Ignore);

/// <summary>A language-modelling head on a family's decoder (transformers' <c>…ForCausalLM</c>).</summary>
/// <param name="Create">(config, model_type, generator) → the whole model; weights are left at zero inside
/// <see cref="ModelInit.SkipWeightInit"/>.</param>
/// <param name="Transposed">Regular expressions over module tensor paths whose checkpoint tensors are stored [in, out]
/// (GPT-2's Conv1D) and are transposed on load.</param>
internal sealed record CausalLmHead(
    Func<HfConfig, string, Rng, CausalLm> Create,
    IReadOnlyList<string> Transposed)
{
    private System.Text.RegularExpressions.Regex[]? _transposed;

    /// <summary>Whether the checkpoint stores module tensor <paramref name="path"/> [in, out] (one of <see cref="Transposed"/>, matched whole).</summary>
    public bool IsTransposed(string path) =>
        (_transposed ??= Transposed.Select(p => new System.Text.RegularExpressions.Regex("^(?:" + p + ")$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)).ToArray())
        .Any(rx => rx.IsMatch(path));
}

/// <summary>The family registry, keyed by Hugging Face <c>model_type</c>. A new family adds its definition here.</summary>
internal static class Families
{
    private static readonly ModelFamily[] All =
    [
        Bert.BertFamily.Definition,
        DistilBert.DistilBertFamily.Definition,
        Roberta.RobertaFamily.Definition,
        Gpt2.Gpt2Family.Definition,
        Llama.LlamaFamily.Definition,
    ];

    private static readonly Dictionary<string, ModelFamily> ByModelType = Index();

    private static Dictionary<string, ModelFamily> Index()
    {
        var d = new Dictionary<string, ModelFamily>(StringComparer.Ordinal);
        foreach (var f in All)
            foreach (var t in f.ModelTypes)
                if (!d.TryAdd(t, f)) throw new InvalidOperationException($"model_type '{t}' is registered by two families.");
        return d;
    }

    /// <summary>Every registered <c>model_type</c>, sorted.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ByModelType.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>The <c>model_type</c> values with a sequence-classification head (the encoders), sorted.</summary>
    public static IReadOnlyList<string> SequenceClassificationModelTypes { get; } = ModelTypes.Where(t => ByModelType[t].SequenceClassification is not null).ToList();

    /// <summary>The <c>model_type</c> values with a language-modelling head (the decoders), sorted.</summary>
    public static IReadOnlyList<string> CausalLmModelTypes { get; } = ModelTypes.Where(t => ByModelType[t].CausalLm is not null).ToList();

    /// <summary>The family that reads <paramref name="modelType"/>, or null.</summary>
    public static ModelFamily? Find(string modelType) => ByModelType.GetValueOrDefault(modelType);
}
