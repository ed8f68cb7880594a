using System.Globalization;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Transformers;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;

namespace Whetstone.Cli;

/// <summary><c>whet evaluate</c> for causal-lm and chat bundles: held-out loss, perplexity and token accuracy, next to the base model.</summary>
internal static class LmCommands
{
    public static bool IsLmBundle(string path) =>
        Bundle.InfoPath(path) is not null && Bundle.TaskOf(path) is CausalLmTask.CausalLmName or CausalLmTask.ChatName;

    public static int Evaluate(string modelPath, string dataPath, string? format, bool json, bool noBefore, int bleuBeams = 0, int limit = 0)
    {
        var bundle = LmBundle.Load(modelPath);
        // read the data as the run did (block size, lengths, fields, bad rows) from its resolved config when there is one
        var runConfig = Path.Combine(Path.GetDirectoryName(bundle.Path)!, "config.yaml");
        var cfg = File.Exists(runConfig) ? ConfigLoader.Parse(string.Join('\n', File.ReadAllLines(runConfig).Skip(1)), runConfig) : new TrainConfig();
        var lm = cfg.Lm;
        var options = new LmReadOptions
        {
            Format = format ?? "auto", BlockSize = lm.BlockSize, MaxLength = lm.MaxLength, PromptField = lm.PromptField,
            CompletionField = lm.CompletionField, PromptTemplate = lm.PromptTemplate, MessagesField = lm.MessagesField, BadRows = lm.BadRows,
        };
        var tok = new DecoderLmTokenizer(bundle.Tokenizer);
        var data = LmFiles.Read(Path.GetFullPath(dataPath), tok, options, bundle.Template is null ? null : new TemplateChatFormat(bundle.Template));
        if (limit > 0 && limit < data.Examples.Count) data = data with { Examples = data.Examples.Take(limit).ToArray() };
        int pad = bundle.Tokenizer.PadId ?? bundle.Tokenizer.EosId ?? 0;
        var after = CausalLmTask.Score(bundle.Model, data, pad, cfg.Train.BatchSize);
        LmScore? before = null;
        CausalLm? baseModel = null;
        string? why = null;
        var basePath = bundle.Info["source"]?["path"]?.GetValue<string>();
        if (!noBefore)
        {
            if (basePath is not null && Directory.Exists(basePath) && Directory.GetFiles(basePath, "*.safetensors").Length > 0)
            {
                baseModel = HfModel.LoadCausalLm(basePath).Model;
                before = CausalLmTask.Score(baseModel, data, pad, cfg.Train.BatchSize);
            }
            else why = $"the base model ({basePath ?? "unknown"}) is not there to score";
        }
        TranslationScores? mtAfter = null, mtBefore = null;
        PairedBootstrapResult? bleuDiff = null, chrfDiff = null;
        if (bleuBeams > 0)
        {
            var (prompts, references, lengths) = PromptsAndReferences(data, bundle.Tokenizer, bundle.StopIds);
            mtAfter = Translate(bundle.Model, bundle.Tokenizer, bundle.StopIds, prompts, references, lengths, bleuBeams, json ? null : "fine-tuned");
            if (baseModel is not null)
            {
                mtBefore = Translate(baseModel, bundle.Tokenizer, bundle.StopIds, prompts, references, lengths, bleuBeams, json ? null : "before fine-tuning");
                bleuDiff = PairedBootstrap.Compare(mtBefore.Hypotheses, mtAfter.Hypotheses, references);
                chrfDiff = PairedBootstrap.Compare(mtBefore.Hypotheses, mtAfter.Hypotheses, references, TranslationMetric.ChrF());
            }
        }
        if (json)
        {
            var o = new JsonObject { ["split"] = Path.GetFileName(dataPath), ["examples"] = data.Examples.Count, ["after"] = CausalLmTask.ScoreJson(after, []) };
            if (before is not null) o["before"] = CausalLmTask.ScoreJson(before, []);
            if (mtAfter is not null) o["after"]!["translation"] = mtAfter.Json();
            if (mtBefore is not null) o["before"]!["translation"] = mtBefore.Json();
            if (bleuDiff is not null) o["bleu_difference"] = DiffJson(bleuDiff);
            if (chrfDiff is not null) o["chrf_difference"] = DiffJson(chrfDiff);
            Console.WriteLine(o.ToJsonString());
        }
        else
        {
            Console.WriteLine($"{Path.GetFileName(dataPath)}: {data.Examples.Count:N0} sequences, {after.Tokens:N0} target tokens ({data.Format})");
            Console.WriteLine(before is null
                ? $"  fine-tuned: loss {after.Loss:F4}, perplexity {after.Perplexity:F2}, token accuracy {after.TokenAccuracy:P1}{(why is null ? "" : $" (before fine-tuning not scored: {why})")}"
                : CausalLmTask.Table(before, after, Path.GetFileName(dataPath)));
            if (mtAfter is not null)
            {
                var c = CultureInfo.InvariantCulture;
                Console.WriteLine();
                Console.WriteLine($"  generated (beam {bleuBeams}, {mtAfter.Hypotheses.Count:N0} rows)     BLEU   chrF2  chrF2++  length ratio");
                foreach (var (name, m) in new[] { ("before fine-tuning", mtBefore), ("after fine-tuning", mtAfter) })
                    if (m is not null)
                        Console.WriteLine(string.Create(c, $"  {name,-32} {m.Bleu.Score,6:F2}  {m.ChrF.Score,6:F2}   {m.ChrFPlusPlus.Score,6:F2}        {m.Bleu.Ratio,6:F3}"));
                if (bleuDiff is not null && chrfDiff is not null)
                    foreach (var (name, d) in new[] { ("BLEU", bleuDiff), ("chrF2", chrfDiff) })
                        Console.WriteLine(string.Create(c, $"  {name} after − before: {d.Difference.Score:+0.00;-0.00} (95 % CI {d.Difference.Lower:+0.00;-0.00} … {d.Difference.Upper:+0.00;-0.00}, p = {d.PValue:F4}, paired bootstrap, {d.Resamples} resamples)"));
                Console.WriteLine($"  {mtAfter.Bleu.Signature}");
                Console.WriteLine($"  {mtAfter.ChrF.Signature}");
            }
        }
        return 0;
    }

    /// <summary>Generated text for every row and its corpus scores.</summary>
    private sealed record TranslationScores(IReadOnlyList<string> Hypotheses, BleuScore Bleu, ChrFScore ChrF, ChrFScore ChrFPlusPlus)
    {
        public JsonObject Json() => new()
        {
            ["bleu"] = Bleu.Score, ["chrf"] = ChrF.Score, ["chrf_plus_plus"] = ChrFPlusPlus.Score, ["length_ratio"] = Bleu.Ratio,
            ["bleu_signature"] = Bleu.Signature, ["chrf_signature"] = ChrF.Signature,
        };
    }

    private static JsonObject DiffJson(PairedBootstrapResult d) => new()
    {
        ["difference"] = d.Difference.Score, ["lower"] = d.Difference.Lower, ["upper"] = d.Difference.Upper, ["p_value"] = d.PValue,
        ["resamples"] = d.Resamples, ["signature"] = d.Signature,
    };

    /// <summary>
    /// Each row's prompt (every token before its first target token), its reference (the target tokens, end tokens left
    /// out, as text) and how many tokens that reference has.
    /// </summary>
    private static (List<int[]> Prompts, List<string> References, List<int> Lengths) PromptsAndReferences(LmDataset data, DecoderTokenizer tok, IReadOnlyList<int> stopIds)
    {
        var prompts = new List<int[]>();
        var references = new List<string>();
        var lengths = new List<int>();
        foreach (var ex in data.Examples)
        {
            int first = Array.IndexOf(ex.Target, true);
            if (first <= 0) throw new DataException($"{ex.Source}: the row has no prompt before its target; --bleu needs prompt/completion or chat rows.");
            prompts.Add(ex.Ids[..first]);
            var target = ex.Ids.Where((id, i) => ex.Target[i] && !stopIds.Contains(id)).ToArray();
            references.Add(tok.Decode(target, skipSpecialTokens: true).Trim());
            lengths.Add(target.Length);
        }
        return (prompts, references, lengths);
    }

    /// <summary>Beam search over the prompts in batches of 8 (room for twice the reference's tokens + 8), decoded and scored.</summary>
    private static TranslationScores Translate(CausalLm model, DecoderTokenizer tok, IReadOnlyList<int> stopIds, List<int[]> prompts, List<string> references,
        List<int> referenceLengths, int beams, string? progress)
    {
        var hyps = new List<string>();
        bool training = model.IsTraining;
        model.Eval();
        for (int start = 0; start < prompts.Count; start += 8)
        {
            var batch = prompts.Skip(start).Take(8).ToArray();
            int room = referenceLengths.Skip(start).Take(8).Max() * 2 + 8;
            var results = BeamSearch.Search(model, batch, new BeamOptions { NumBeams = beams, MaxNewTokens = room, EosTokenIds = stopIds });
            hyps.AddRange(results.Select(r => tok.Decode(r.Tokens, skipSpecialTokens: true).Trim()));
            if (progress is not null) Console.Error.Write($"\r  generating ({progress}): {hyps.Count}/{prompts.Count}");
        }
        if (progress is not null) Console.Error.WriteLine();
        if (training) model.Train();
        return new TranslationScores(hyps, Bleu.Corpus(hyps, references), ChrF.Corpus(hyps, references), ChrF.Corpus(hyps, references, ChrFOptions.ChrFPlusPlus));
    }
}
