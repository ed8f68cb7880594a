using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
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

    public static int Evaluate(string modelPath, string dataPath, string? format, bool json, bool noBefore)
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
        int pad = bundle.Tokenizer.PadId ?? bundle.Tokenizer.EosId ?? 0;
        var after = CausalLmTask.Score(bundle.Model, data, pad, cfg.Train.BatchSize);
        LmScore? before = null;
        string? why = null;
        var basePath = bundle.Info["source"]?["path"]?.GetValue<string>();
        if (!noBefore)
        {
            if (basePath is not null && Directory.Exists(basePath) && Directory.GetFiles(basePath, "*.safetensors").Length > 0)
                before = CausalLmTask.Score(HfModel.LoadCausalLm(basePath).Model, data, pad, cfg.Train.BatchSize);
            else why = $"the base model ({basePath ?? "unknown"}) is not there to score";
        }
        if (json)
        {
            var o = new JsonObject { ["split"] = Path.GetFileName(dataPath), ["examples"] = data.Examples.Count, ["after"] = CausalLmTask.ScoreJson(after, []) };
            if (before is not null) o["before"] = CausalLmTask.ScoreJson(before, []);
            Console.WriteLine(o.ToJsonString());
        }
        else
        {
            Console.WriteLine($"{Path.GetFileName(dataPath)}: {data.Examples.Count:N0} sequences, {after.Tokens:N0} target tokens ({data.Format})");
            Console.WriteLine(before is null
                ? $"  fine-tuned: loss {after.Loss:F4}, perplexity {after.Perplexity:F2}, token accuracy {after.TokenAccuracy:P1}{(why is null ? "" : $" (before fine-tuning not scored: {why})")}"
                : CausalLmTask.Table(before, after, Path.GetFileName(dataPath)));
        }
        return 0;
    }
}
