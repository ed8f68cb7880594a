namespace Whetstone.Training.Config;

/// <summary>
/// Text-specific settings (<c>text:</c> in a config with <c>task: text-classification</c>): the pre-trained word vectors
/// and the encoder over them, how examples are read from the data files, and how bad rows and imbalance are handled.
/// </summary>
public sealed record TextConfig
{
    /// <summary>
    /// A Hugging Face encoder (BERT, DistilBERT, RoBERTa/XLM-R) to fine-tune instead of word vectors: a model folder
    /// (config.json, safetensors weights, tokenizer files) or a hub name <c>org/name</c> already in the local Hugging Face
    /// cache. When set, <see cref="Vectors"/>, <see cref="Encoder"/>, <see cref="Filters"/>, <see cref="KernelSizes"/>,
    /// <see cref="TuneVectors"/> and <see cref="Dropout"/> are unused (the model's own dropout applies).
    /// </summary>
    public string? Model { get; init; }
    /// <summary>
    /// What a transformer's head reads: <c>cls</c> (the first token, through the family's pooler) or <c>mean</c> (the
    /// mean over real tokens, as sentence-transformers embeds). Default: what the checkpoint says (config.json
    /// classifier_pooling, a sentence-transformers Pooling module), else mean when it has no pooler, else cls.
    /// </summary>
    public string? Pooling { get; init; }
    /// <summary>Word vectors: a wink-embeddings JSON (GloVe), a <c>.whetvec</c> cache, or <c>asset:glove100</c>.</summary>
    public string Vectors { get; init; } = "asset:glove100";
    /// <summary><c>pool</c> (mean + max over tokens) or <c>cnn</c> (1-D convolutions, max over time).</summary>
    public string Encoder { get; init; } = "pool";
    public int Filters { get; init; } = 100;
    public List<int> KernelSizes { get; init; } = [3, 4, 5];
    /// <summary>Let the vectors of the training data's words train too (the rest of the vocabulary stays frozen).</summary>
    public bool TuneVectors { get; init; }
    /// <summary>Dropout on the encoder's features.</summary>
    public float Dropout { get; init; } = 0.3f;
    /// <summary>Tokens kept per example (longer ones are truncated; the data report says how many).</summary>
    public int MaxLength { get; init; } = 256;
    public string TextColumn { get; init; } = "text";
    /// <summary>A second text column for pair tasks (joined after the first).</summary>
    public string? PairColumn { get; init; }
    public string LabelColumn { get; init; } = "label";
    /// <summary>Raw label → label (keys may be globs: <c>"spam-*": spam</c>); unmapped labels stay as they are.</summary>
    public Dictionary<string, string>? LabelMap { get; init; }
    /// <summary>A row with a missing text or label: <c>error</c> (stop, naming file and line) or <c>skip</c> (report and leave out).</summary>
    public string BadRows { get; init; } = "error";
    /// <summary><c>none</c> or <c>balanced</c> (weight each class by n / (k · n_class) in the loss).</summary>
    public string ClassWeights { get; init; } = "none";
    /// <summary>Files read from a data folder (for <c>data.format: email</c>, or several csv/jsonl/json files).</summary>
    public string FilePattern { get; init; } = "*";
}
