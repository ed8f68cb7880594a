using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Tokenizers.ChatTemplates;
using Whetstone.Models.Transformers;
using Whetstone.Nn;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>Held-out language-model scores: mean next-token loss over target tokens, its perplexity, and the share of target tokens predicted exactly.</summary>
public sealed record LmScore(double Loss, double TokenAccuracy, long Tokens)
{
    public double Perplexity => Math.Exp(Loss);

    public IReadOnlyDictionary<string, double> Metrics(string prefix = "") => new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [prefix + "loss"] = Loss, [prefix + "perplexity"] = Perplexity, [prefix + "token_accuracy"] = TokenAccuracy,
    };
}

/// <summary>A held-out prompt, its reference answer and what the model replied (greedy).</summary>
public sealed record LmSample(string Prompt, string Reference, string Reply);

/// <summary>
/// Decoder fine-tuning as a trainer task: <c>causal-lm</c> (plain text packed into blocks for domain adaptation, or
/// prompt/completion rows) and <c>chat</c> (conversations rendered by the checkpoint's chat template, or ChatML when it
/// has none; loss on the assistant turns only). The model is a Hugging Face decoder (GPT-2, Llama, Qwen2, Mistral):
/// full fine-tuning, <c>freeze.layers</c>/<c>freeze.patterns</c>, or LoRA on the family's attention and MLP
/// projections; <c>model.scratch</c> trains the same network from a fresh initialisation (pre-training, baselines).
/// The held-out set is scored before and after (loss, perplexity, token accuracy), with sample replies.
/// </summary>
public sealed class CausalLmTask : ITrainingTask
{
    public const string CausalLmName = "causal-lm";
    public const string ChatName = "chat";
    private const string BeforeFile = "before.json";

    private readonly TrainConfig _cfg;
    private readonly TextWriter _log;
    private readonly int _padId;

    public string Name { get; }
    public CausalLm Lm { get; }
    public Module Model => Lm;
    public DecoderTokenizer Tokenizer { get; }
    /// <summary>The chat template (task chat), or null.</summary>
    public ChatTemplate? Template { get; }
    /// <summary>The checkpoint folder the run starts from.</summary>
    public string ModelFolder { get; }
    public LoraConfig? Lora { get; }
    public LmDataset TrainSet { get; }
    public LmDataset ValidationSet { get; }
    public LmDataset? TestSet { get; }
    /// <summary>Ids that end a generated reply: the tokenizer's EOS ids and the template's end-of-turn token.</summary>
    public IReadOnlyList<int> StopIds { get; }
    public LmScore? Before { get; private set; }
    public IReadOnlyList<LmSample> BeforeSamples { get; private set; } = [];

    public int TrainCount => TrainSet.Examples.Count;
    public IReadOnlySet<string> TaskKeys { get; } = new HashSet<string>(StringComparer.Ordinal);
    public IReadOnlyList<string> MetricNames { get; } = ["val_loss", "val_perplexity", "val_token_accuracy"];
    public string BaseHash { get; }
    private string HeldOutName => TestSet is null ? "validation" : "test";
    private LmDataset HeldOut => TestSet ?? ValidationSet;

    private CausalLmTask(TrainConfig cfg, TextWriter log)
    {
        (_cfg, _log, Name) = (cfg, log, cfg.Task);
        if (cfg.Train.Threads > 0) Par.Threads = cfg.Train.Threads;
        Validate(cfg);
        ModelFolder = Locate(cfg, log);
        var seed = (int)(cfg.Seed % int.MaxValue);
        try
        {
            if (cfg.Model.Scratch)
            {
                Lm = HfModel.CreateCausalLm(ModelFolder, seed);
                log.WriteLine($"{Lm.ModelType} from {ModelFolder}/config.json, freshly initialised (model.scratch): {Lm.ParameterCount():N0} parameters");
            }
            else
            {
                (Lm, var report) = HfModel.LoadCausalLm(ModelFolder, seed);
                log.WriteLine(report.ToString());
            }
            Tokenizer = DecoderTokenizer.Load(ModelFolder);
        }
        catch (HfCheckpointException e) { throw new ConfigException($"{cfg.Source}: model.path '{cfg.Model.Path}': {e.Message}", e); }
        if (Tokenizer.VocabSize > Lm.VocabSize)
            throw new ConfigException($"{cfg.Source}: the tokenizer ({Tokenizer.Source}) has {Tokenizer.VocabSize} ids but the model's embedding has {Lm.VocabSize} rows.");
        BaseHash = cfg.Model.Scratch ? FileHash.Sha256([Path.Combine(ModelFolder, "config.json")], withNames: true) : FileHash.Sha256(ModelFiles(ModelFolder), withNames: true);
        _padId = Tokenizer.PadId ?? Tokenizer.EosId ?? 0;

        if (Name == ChatName)
        {
            try
            {
                Template = cfg.Lm.ChatTemplate is { } file
                    ? ChatTemplate.FromTokenizerConfig(File.Exists(Path.Combine(ModelFolder, "tokenizer_config.json")) ? File.ReadAllText(Path.Combine(ModelFolder, "tokenizer_config.json")) : "{}",
                        templateOverride: File.ReadAllText(Assets.Resolve(file, cfg.BaseDirectory)))
                    : ChatTemplate.FromDirectory(ModelFolder);
            }
            catch (ChatTemplateException e) { throw new ConfigException($"{cfg.Source}: the chat template of {ModelFolder}: {e.Message}", e); }
            if (Template.IsBuiltIn) log.WriteLine($"chat template: {ModelFolder} has none; using ChatML (<|im_start|>role … <|im_end|>)");
            else log.WriteLine($"chat template: {(cfg.Lm.ChatTemplate is null ? "the checkpoint's own" : cfg.Lm.ChatTemplate)}");
        }
        StopIds = StopTokens(Tokenizer, Template);

        (TrainSet, ValidationSet, TestSet) = LoadData(cfg);
        log.WriteLine(DescribeData());
        Lora = Adapt(cfg, Lm, new Rng(cfg.Seed ^ 0x10CA));
        Lm.Train();
        Trainer.Validate(this, cfg);
    }

    /// <summary>Loads the checkpoint, tokenizer, template and data the config names.</summary>
    public static CausalLmTask Prepare(TrainConfig cfg, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        ArgumentNullException.ThrowIfNull(log);
        return new CausalLmTask(cfg, log);
    }

    private static void Validate(TrainConfig c)
    {
        void Need(bool ok, string what) { if (!ok) throw new ConfigException($"{c.Source}: {what}"); }
        var image = new TrainConfig();
        Need(c.Model.Path != image.Model.Path, "model.path must name a decoder checkpoint (a Hugging Face folder, org/name in the hub cache, or a run's model folder).");
        Need(c.Data.Train != image.Data.Train, "data.train must name the training text (.txt / folder) or JSONL rows.");
        Need(c.Data.Format is "idx" or "auto" or "text" or "instruction" or "chat", $"data.format for {c.Task} must be auto, text, instruction or chat (got '{c.Data.Format}').");
        Need(c.Task != CausalLmName || c.Data.Format != "chat", "data.format chat needs task: chat (the conversations are rendered by the chat template).");
        Need(c.Task != ChatName || c.Data.Format != "text", "task: chat trains on conversations; plain text is task: causal-lm.");
        Need(c.Data.Validation is >= 0 and < 1, $"data.validation is a fraction in [0, 1) (got {c.Data.Validation}).");
        Need(c.Lm.BlockSize >= 2 && c.Lm.MaxLength >= 2, "lm.block_size and lm.max_length must be at least 2.");
        Need(c.Lm.BadRows is "error" or "skip", $"lm.bad_rows must be error or skip (got '{c.Lm.BadRows}').");
        Need(c.Lm.Samples >= 0 && c.Lm.MaxNewTokens >= 1, "lm.samples must be ≥ 0 and lm.max_new_tokens ≥ 1.");
        Need(c.Unfreeze.Count == 0, "unfreeze: (gradual unfreezing) is not supported for decoders yet; use freeze.layers or LoRA.");
        Need(!c.Freeze.Backbone && c.Freeze.Below is null, "freeze.backbone and freeze.below do not apply to decoders (no separate head); use freeze.layers, freeze.patterns or lora:.");
        Need(c.Freeze.Layers is null or >= 0, $"freeze.layers must be ≥ 0 (got {c.Freeze.Layers}).");
        Need(c.Text.Model is null, "text.model is for text classification; a decoder is model.path.");
        if (c.Lora is { } l)
        {
            Need(l.Rank >= 1 && l.Alpha > 0 && l.Dropout is >= 0 and < 1, "lora: rank ≥ 1, alpha > 0, dropout in [0, 1).");
            Need(c.Freeze.Layers is null && c.Freeze.Patterns.Count == 0, "lora: freezes every pre-trained weight itself; remove the freeze: settings.");
            Need(!c.Model.Scratch, "lora: on a freshly initialised model (model.scratch) would train adapters over random weights; train it fully.");
        }
    }

    /// <summary>model.path as a folder: asset:NAME, a path relative to the config, a run folder (its model/), or a hub name.</summary>
    private static string Locate(TrainConfig cfg, TextWriter log)
    {
        var p = cfg.Model.Path;
        var local = p.StartsWith("asset:", StringComparison.Ordinal) ? Assets.Resolve(p, cfg.BaseDirectory, fetch: true, log) : Path.GetFullPath(Path.Combine(cfg.BaseDirectory, p));
        if (Directory.Exists(Path.Combine(local, "model")) && File.Exists(Path.Combine(local, "model", "config.json"))) return Path.Combine(local, "model");
        if (Directory.Exists(local)) return local;
        try { return HfModel.ResolveFolder(p, Environment.GetEnvironmentVariable); }
        catch (HfCheckpointException e) { throw new ConfigException($"{cfg.Source}: model.path '{p}': {e.Message}", e); }
    }

    private static IEnumerable<string> ModelFiles(string folder) =>
        Directory.GetFiles(folder).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || Path.GetFileName(f) == "config.json").Order(StringComparer.Ordinal);

    /// <summary>EOS ids (generation_config and tokenizer) and, with a template, the end-of-turn marker its assistant turns close with.</summary>
    private static IReadOnlyList<int> StopTokens(DecoderTokenizer tok, ChatTemplate? template)
    {
        var ids = new List<int>(tok.EosIds);
        if (tok.EosId is int e && !ids.Contains(e)) ids.Add(e);
        if (template is not null)
        {
            var probe = new List<ChatMessage> { new("user", "x"), new("assistant", "y") };
            var text = template.Render(probe, addGenerationPrompt: false);
            var span = template.AssistantSpans(probe)[^1];
            var marker = text[span.Start..span.End];
            int at = marker.IndexOf('y', StringComparison.Ordinal);
            var tail = at >= 0 ? marker[(at + 1)..] : marker;
            var tailIds = tok.Encode(tail, addSpecialTokens: false);
            foreach (var id in tailIds)
                if (tok.IsSpecial(id) && !ids.Contains(id)) ids.Add(id);
        }
        return ids;
    }

    private LmReadOptions ReadOptions() => new()
    {
        Format = _cfg.Data.Format == "idx" ? "auto" : _cfg.Data.Format, BlockSize = _cfg.Lm.BlockSize, MaxLength = _cfg.Lm.MaxLength,
        PromptField = _cfg.Lm.PromptField, CompletionField = _cfg.Lm.CompletionField, PromptTemplate = _cfg.Lm.PromptTemplate, MessagesField = _cfg.Lm.MessagesField, BadRows = _cfg.Lm.BadRows,
    };

    private (LmDataset, LmDataset, LmDataset?) LoadData(TrainConfig cfg)
    {
        var tok = new DecoderLmTokenizer(Tokenizer);
        var chat = Template is null ? null : new TemplateChatFormat(Template);
        LmDataset Read(string path)
        {
            return LmFiles.Read(Assets.Resolve(path, cfg.BaseDirectory, fetch: true, _log), tok, ReadOptions(), chat);
        }
        var train = Read(cfg.Data.Train);
        LmDataset validation;
        if (cfg.Data.ValidationPath is not null) validation = Read(cfg.Data.ValidationPath);
        else if (cfg.Data.Validation > 0 && train.Examples.Count >= 2)
        {
            var order = new Rng(cfg.Seed).Permutation(train.Examples.Count);
            int n = Math.Clamp((int)Math.Round(cfg.Data.Validation * train.Examples.Count), 1, train.Examples.Count - 1);
            var val = order.Take(n).Order().Select(i => train.Examples[i]).ToArray();
            var rest = order.Skip(n).Order().Select(i => train.Examples[i]).ToArray();
            validation = train with { Examples = val, Skipped = [], Truncated = 0 };
            train = train with { Examples = rest };
        }
        else validation = train;
        var test = cfg.Data.Test is null ? null : Read(cfg.Data.Test);
        return (train, validation, test);
    }

    private string DescribeData()
    {
        string One(string name, LmDataset d) => $"{name} {d.Examples.Count:N0} sequences, {d.Tokens:N0} tokens ({d.TargetTokens:N0} trained)" +
            (d.Skipped.Count > 0 ? $", {d.Skipped.Count} rows skipped" : "") + (d.Truncated > 0 ? $", {d.Truncated} cut to {_cfg.Lm.MaxLength} tokens" : "");
        var sb = new StringBuilder($"data ({TrainSet.Format}): {One("train", TrainSet)}; {One("validation", ValidationSet)}");
        if (TestSet is not null) sb.Append("; ").Append(One("test", TestSet));
        foreach (var s in TrainSet.Skipped.Take(3)) sb.Append("\n  skipped ").Append(s);
        return sb.ToString();
    }

    /// <summary>LoRA (the family's attention + MLP projections unless lora.targets), or freezing, on the loaded decoder.</summary>
    private static LoraConfig? Adapt(TrainConfig cfg, CausalLm model, Rng rng)
    {
        try
        {
            if (cfg.Lora is { } l)
            {
                var lora = new LoraConfig { Rank = l.Rank, Alpha = l.Alpha, Dropout = l.Dropout, TargetModules = l.Targets ?? model.LoraTargets };
                LoraInjector.Inject(model, lora, rng);
                return lora;
            }
            if (cfg.Freeze.Layers is { } k)
            {
                if (k > model.NumLayers) throw new ConfigException($"{cfg.Source}: freeze.layers is {k}, but the {model.ModelType} model has {model.NumLayers} layers.");
                Freezing.SetModuleTrainable(model, model.EmbeddingsPath, false);
                for (int i = 0; i < k; i++) Freezing.SetModuleTrainable(model, model.LayerPath(i), false);
            }
            foreach (var p in cfg.Freeze.Patterns)
                if (Freezing.Freeze(model, p) == 0)
                    throw new ConfigException($"{cfg.Source}: freeze.patterns '{p}' matches no parameter of the {model.ModelType} model (names look like {model.LayerPath(0)}.…weight).");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or KeyNotFoundException)
        {
            throw new ConfigException($"{cfg.Source}: {e.Message}", e);
        }
        return null;
    }

    /// <summary>A right-padded batch: ids (B·T) and next-token targets (−100 where nothing is predicted).</summary>
    internal static (int[] Ids, int[] Targets, int B, int T) Batch(LmDataset data, IReadOnlyList<int> indices, int padId)
    {
        int b = indices.Count, t = indices.Max(i => data.Examples[i].Ids.Length);
        var ids = new int[b * t];
        var targets = new int[b * t];
        Array.Fill(ids, padId);
        Array.Fill(targets, -100);
        for (int r = 0; r < b; r++)
        {
            var ex = data.Examples[indices[r]];
            ex.Ids.CopyTo(ids, r * t);
            for (int i = 0; i + 1 < ex.Ids.Length; i++)
                if (ex.Target[i + 1]) targets[r * t + i] = ex.Ids[i + 1];
        }
        return (ids, targets, b, t);
    }

    public Tensor Loss(int[] indices, int epoch)
    {
        var (ids, targets, b, t) = Batch(TrainSet, indices, _padId);
        if (targets.All(x => x == -100)) throw new DataException($"A training batch has no target tokens (rows {string.Join(", ", indices.Take(5))}…).");
        // right padding and causal attention: real tokens never attend to the padding, so no mask is needed
        var logits = Lm.Forward(ids, b, t);
        return Tensor.CrossEntropy(logits.Reshape(b * t, Lm.VocabSize), targets);
    }

    /// <summary>Loss, perplexity and token accuracy over the target tokens of <paramref name="data"/> (eval mode, no gradients).</summary>
    public LmScore Score(LmDataset data) => Score(Lm, data, _padId, _cfg.Train.BatchSize);

    /// <summary>Loss, perplexity and token accuracy of <paramref name="model"/> over the target tokens of <paramref name="data"/>, in batches (eval mode, no gradients).</summary>
    public static LmScore Score(CausalLm model, LmDataset data, int padId, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        bool training = model.IsTraining;
        model.Eval();
        double nll = 0;
        long count = 0, correct = 0;
        int bs = Math.Max(1, batchSize);
        using (Tensors.Autograd.Graph.NoGrad())
            for (int start = 0; start < data.Examples.Count; start += bs)
            {
                using var scope = new TensorScope();
                var idx = Enumerable.Range(start, Math.Min(bs, data.Examples.Count - start)).ToArray();
                var (ids, targets, b, t) = Batch(data, idx, padId);
                var logits = model.Forward(ids, b, t).Reshape(b * t, model.VocabSize);
                nll += Tensor.CrossEntropy(logits, targets, mean: false).Item();
                var l = logits.Span;
                int v = model.VocabSize;
                for (int i = 0; i < targets.Length; i++)
                {
                    if (targets[i] < 0) continue;
                    count++;
                    var row = l.Slice(i * v, v);
                    int best = 0;
                    for (int j = 1; j < v; j++) if (row[j] > row[best]) best = j;
                    if (best == targets[i]) correct++;
                }
            }
        if (training) model.Train();
        return new LmScore(count == 0 ? double.NaN : nll / count, count == 0 ? double.NaN : correct / (double)count, count);
    }

    /// <summary>Greedy replies to the first <c>lm.samples</c> held-out rows: the conversation up to its last assistant turn, or the prompt, or a text block's first tokens.</summary>
    public IReadOnlyList<LmSample> Samples()
    {
        var rows = HeldOut.Examples.Take(_cfg.Lm.Samples).ToArray();
        if (rows.Length == 0) return [];
        var prompts = new List<int[]>();
        var references = new List<string>();
        foreach (var ex in rows)
        {
            int first = Array.IndexOf(ex.Target, true);
            if (HeldOut.Format == "text") first = Math.Min(ex.Ids.Length - 1, 32);
            int end = first;
            while (end < ex.Ids.Length && (HeldOut.Format == "text" || ex.Target[end])) end++;
            prompts.Add(ex.Ids[..Math.Max(1, first)]);
            references.Add(Tokenizer.Decode(ex.Ids[first..Math.Min(end, first + _cfg.Lm.MaxNewTokens)], skipSpecialTokens: true));
        }
        bool training = Lm.IsTraining;
        Lm.Eval();
        var replies = TextGeneration.Generate(Lm, prompts, new GenerationOptions { MaxNewTokens = _cfg.Lm.MaxNewTokens, EosTokenIds = StopIds });
        if (training) Lm.Train();
        return prompts.Select((p, i) => new LmSample(Tokenizer.Decode(p, skipSpecialTokens: false), references[i], Tokenizer.Decode(replies[i].Tokens, skipSpecialTokens: true))).ToArray();
    }

    public void Start(RunDirectory run, bool resumed, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(run);
        var path = Path.Combine(run.Path, BeforeFile);
        if (resumed && File.Exists(path))
        {
            var j = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            Before = new LmScore(j["loss"]!.GetValue<double>(), j["token_accuracy"]!.GetValue<double>(), j["tokens"]!.GetValue<long>());
            BeforeSamples = ReadSamples(j["samples"]?.AsArray());
            return;
        }
        Before = Score(HeldOut);
        BeforeSamples = Samples();
        RunDirectory.WriteAtomic(path, ScoreJson(Before, BeforeSamples).ToJsonString(RunDirectory.Json));
        log.WriteLine($"before fine-tuning: {HeldOutName} loss {Before.Loss:F4}, perplexity {Before.Perplexity:F2}, token accuracy {Before.TokenAccuracy:P1} ({Before.Tokens:N0} tokens)");
        run.Log(new JsonObject { ["event"] = "before", ["split"] = HeldOutName, ["loss"] = RunDirectory.Num(Before.Loss), ["perplexity"] = RunDirectory.Num(Before.Perplexity), ["token_accuracy"] = RunDirectory.Num(Before.TokenAccuracy) });
    }

    internal static JsonObject ScoreJson(LmScore s, IReadOnlyList<LmSample> samples) => new()
    {
        ["loss"] = RunDirectory.Num(s.Loss), ["perplexity"] = RunDirectory.Num(s.Perplexity), ["token_accuracy"] = RunDirectory.Num(s.TokenAccuracy), ["tokens"] = s.Tokens,
        ["samples"] = new JsonArray(samples.Select(x => (JsonNode)new JsonObject { ["prompt"] = x.Prompt, ["reference"] = x.Reference, ["reply"] = x.Reply }).ToArray()),
    };

    private static LmSample[] ReadSamples(JsonArray? a) =>
        a?.Select(x => new LmSample(x!["prompt"]!.GetValue<string>(), x["reference"]!.GetValue<string>(), x["reply"]!.GetValue<string>())).ToArray() ?? [];

    public bool BeginEpoch(int epoch, TextWriter log) => false;

    public double LrScale(string name) => 1;

    public IReadOnlyDictionary<string, double> Validate() => Score(ValidationSet).Metrics("val_");

    public JsonObject EpochFields() => [];

    public TaskOutcome Finish(RunDirectory run, TrainingSummary summary, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        var before = Before ?? throw new InvalidOperationException("Finish before Start.");
        var after = Score(HeldOut);
        var afterSamples = Samples();
        log.WriteLine($"after fine-tuning: {HeldOutName} loss {after.Loss:F4}, perplexity {after.Perplexity:F2}, token accuracy {after.TokenAccuracy:P1}");
        run.Log(new JsonObject { ["event"] = "after", ["split"] = HeldOutName, ["best_epoch"] = summary.BestEpoch, ["loss"] = RunDirectory.Num(after.Loss), ["perplexity"] = RunDirectory.Num(after.Perplexity), ["token_accuracy"] = RunDirectory.Num(after.TokenAccuracy) });
        var eval = new JsonObject
        {
            ["task"] = Name, ["split"] = HeldOutName,
            ["after"] = ScoreJson(after, afterSamples), ["before"] = ScoreJson(before, BeforeSamples),
        };
        run.WriteText("eval.json", eval.ToJsonString(RunDirectory.Json));
        var bundle = LmBundle.Save(run.BundleDir, this, before, after);
        Reports.LmReport.Write(Path.Combine(run.Path, "report.html"), this, run, before, BeforeSamples, after, afterSamples);
        return new TaskOutcome(bundle, HeldOutName, before.Metrics(), after.Metrics(), Table(before, after, HeldOutName));
    }

    /// <summary>Before/after as a small text table.</summary>
    public static string Table(LmScore before, LmScore after, string split)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"  {split,-22} {"loss",8} {"perplexity",11} {"token acc",10}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  {"before fine-tuning",-22} {before.Loss,8:F4} {before.Perplexity,11:F2} {before.TokenAccuracy,10:P1}");
        sb.Append(CultureInfo.InvariantCulture, $"  {"after fine-tuning",-22} {after.Loss,8:F4} {after.Perplexity,11:F2} {after.TokenAccuracy,10:P1}");
        return sb.ToString();
    }

    public string DescribeLayers()
    {
        var sb = new StringBuilder();
        var groups = Lm.NamedParameters().GroupBy(p => Group(p.Name)).ToList();
        int w = Math.Max(24, groups.Max(g => g.Key.Length));
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"module".PadRight(w)} {"parameters",12} {"trainable",12}");
        foreach (var g in groups)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{g.Key.PadRight(w)} {g.Sum(p => (long)p.Tensor.Size),12:N0} {g.Where(p => p.Tensor.RequiresGrad).Sum(p => (long)p.Tensor.Size),12:N0}");
        long total = Lm.ParameterCount(), trainable = Lm.NamedParameters().Where(p => p.Tensor.RequiresGrad).Sum(p => (long)p.Tensor.Size);
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Lm.ModelType}: {total:N0} parameters, {trainable:N0} trainable{(Lora is null ? "" : $" (LoRA r={Lora.Rank} on {Lora.TargetModules})")}");
        int t = Math.Max(TrainSet.Examples.Max(e => e.Ids.Length), 1), b = _cfg.Train.BatchSize;
        // weights + gradients and AdamW moments of what trains + activations (~16 D-wide tensors per layer per token, kept for backward) + logits
        double bytes = 4.0 * (total + 3 * trainable) + 4.0 * b * t * (16.0 * Lm.HiddenSize * Lm.NumLayers + 2.0 * Lm.VocabSize);
        sb.AppendLine(CultureInfo.InvariantCulture, $"memory estimate: {bytes / 1e9:F1} GB at batch {b} × {t} tokens");
        sb.Append(DescribeData());
        return sb.ToString();
    }

    /// <summary>Parameters grouped by block: embeddings, each layer, the final norm and head; a LoRA adapter with its layer.</summary>
    private static string Group(string name)
    {
        var parts = name.Split('.');
        int layer = Array.FindIndex(parts, p => p is "layers" or "h");
        return layer >= 0 && layer + 1 < parts.Length ? string.Join('.', parts[..(layer + 2)]) : string.Join('.', parts[..^1]);
    }
}
