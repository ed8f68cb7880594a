using System.CommandLine;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;

namespace Whetstone.Cli;

/// <summary><c>whet export RUN OUT_DIR [--merge-lora]</c>: a transformer text run as a Hugging Face model folder.</summary>
internal static class ExportCommand
{
    public static Command Create(Option<int> threads)
    {
        var run = new Argument<string>("run") { Description = "A run folder or its model/ bundle (text.model runs)." };
        var output = new Argument<string>("out-dir") { Description = "The folder to write (config.json, weights, tokenizer files)." };
        var merge = new Option<bool>("--merge-lora") { Description = "Merge LoRA adapters into plain weights (model.safetensors) instead of writing a PEFT adapter." };
        var cmd = new Command("export", "Write a fine-tuned transformer as a Hugging Face folder (merged weights, or a PEFT adapter for LoRA runs).");
        cmd.Arguments.Add(run);
        cmd.Arguments.Add(output);
        cmd.Options.Add(merge);
        cmd.SetAction(r => Commands.Guard(r, threads, () =>
        {
            HfExport.Export(r.GetValue(run)!, r.GetValue(output)!, r.GetValue(merge), Console.Out);
            return 0;
        }));
        return cmd;
    }
}
