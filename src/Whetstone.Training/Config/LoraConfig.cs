namespace Whetstone.Training.Config;

/// <summary>
/// LoRA adapters for a transformer text model (<c>lora:</c>; needs <c>text.model</c>). Injecting them freezes every
/// pre-trained weight: only the adapters and the family's classification head (PEFT's modules_to_save) train, and the
/// bundle stores only those plus the base model's path and weight hash.
/// </summary>
public sealed record LoraSection
{
    /// <summary>The adapters' rank r; 0 switches LoRA off (the section is dropped: a full fine-tune, or what freeze: says), so a search can choose it.</summary>
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public double Dropout { get; init; }
    /// <summary>Regex over module names (whole name or dotted suffix), e.g. <c>query|value</c>; default: the model family's own (BERT/RoBERTa <c>query|value</c>, DistilBERT <c>q_lin|v_lin</c>).</summary>
    public string? Targets { get; init; }
}
