using System.Text.Json.Nodes;
using Whetstone.Models.Formats;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Tokenizers.ChatTemplates;
using Whetstone.Models.Transformers;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>A loaded language-model bundle: the decoder (eval mode), its tokenizer, chat template (chat bundles) and stop ids.</summary>
public sealed record LoadedLmBundle(string Path, CausalLm Model, DecoderTokenizer Tokenizer, ChatTemplate? Template, IReadOnlyList<int> StopIds,
    JsonObject Info, double GoldenMaxDiff)
{
    public string Task => Info["task"]!.GetValue<string>();
}

/// <summary>
/// The bundle of a causal-lm or chat run (<c>runs/NAME/model/</c>): an ordinary Hugging Face folder — config.json,
/// model.safetensors (LoRA merged), the tokenizer files, generation_config.json and the chat template the run used
/// (chat_template.jinja) — that transformers and <see cref="HfModel.LoadCausalLm"/> load as they are, plus
/// <c>adapter/</c> (the PEFT adapter alone, for LoRA runs), <c>golden.safetensors</c> (a few ids with the logits they
/// gave) and <c>whetstone.json</c> (task, base model and hash, LoRA settings, stop ids, scores before and after).
/// </summary>
public static class LmBundle
{
    internal static string Save(string dir, CausalLmTask task, LmScore before, LmScore after)
    {
        var model = task.Lm;
        var tmp = dir + ".partial";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (task.Lora is { } lora)
        {
            var adapterDir = Path.Combine(tmp, "adapter");
            Directory.CreateDirectory(adapterDir);
            var state = LoraInjector.AdapterStateDict(model).ToDictionary(kv => LoraInjector.PeftAdapterKey(kv.Key), kv => kv.Value);
            SafeTensors.Save(Path.Combine(adapterDir, "adapter_model.safetensors"), state, meta);
            var targets = LoraInjector.Layers(model).Select(l => l.Name[(l.Name.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal);
            var config = new JsonObject
            {
                ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["base_model_name_or_path"] = task.ModelFolder,
                ["r"] = lora.Rank, ["lora_alpha"] = lora.Alpha, ["lora_dropout"] = lora.Dropout,
                ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
                ["bias"] = "none", ["fan_in_fan_out"] = model.ModelType == "gpt2", ["inference_mode"] = true, ["use_rslora"] = lora.UseRsLora,
            };
            File.WriteAllText(Path.Combine(adapterDir, "adapter_config.json"), config.ToJsonString(RunDirectory.Json));
            LoraInjector.MergeAndUnload(model);
        }
        model.Eval();
        HfModel.SaveCausalLm(model, task.ModelFolder, tmp);
        if (task.Template is { } template && (template.IsBuiltIn || !File.Exists(Path.Combine(task.ModelFolder, "chat_template.jinja"))))
            File.WriteAllText(Path.Combine(tmp, "chat_template.jinja"), template.Source);
        if (!File.Exists(Path.Combine(tmp, "generation_config.json")))
        {
            var gen = new JsonObject { ["eos_token_id"] = new JsonArray(task.StopIds.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()) };
            if (task.Tokenizer.BosId is int bos) gen["bos_token_id"] = bos;
            File.WriteAllText(Path.Combine(tmp, "generation_config.json"), gen.ToJsonString(RunDirectory.Json));
        }

        // golden: the first held-out sequence (up to 16 tokens) with the logits it gives now
        var ex = (task.TestSet ?? task.ValidationSet).Examples[0];
        var ids = ex.Ids[..Math.Min(16, ex.Ids.Length)];
        using (new TensorScope())
        using (Tensors.Autograd.Graph.NoGrad())
        {
            var logits = model.Forward(ids, 1, ids.Length);
            SafeTensors.Save(Path.Combine(tmp, "golden.safetensors"), new Dictionary<string, Tensor>
            {
                ["ids"] = Tensor.From(ids.Select(i => (float)i).ToArray(), 1, ids.Length), ["logits"] = logits,
            });
        }
        var info = new JsonObject
        {
            ["format"] = Bundle.Format,
            ["task"] = task.Name,
            ["model_type"] = model.ModelType,
            ["source"] = new JsonObject { ["path"] = task.ModelFolder, ["sha256"] = task.BaseHash },
            ["chat_template"] = task.Template is null ? null : task.Template.IsBuiltIn ? "chatml (built-in)" : "the checkpoint's or lm.chat_template",
            ["stop_ids"] = new JsonArray(task.StopIds.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()),
            ["lora"] = task.Lora is null ? null : new JsonObject { ["rank"] = task.Lora.Rank, ["alpha"] = task.Lora.Alpha, ["targets"] = task.Lora.TargetModules, ["merged"] = true, ["adapter"] = "adapter/" },
            ["metrics"] = new JsonObject { ["after"] = CausalLmTask.ScoreJson(after, []), ["before"] = CausalLmTask.ScoreJson(before, []) },
            ["golden"] = new JsonObject { ["file"] = "golden.safetensors", ["tokens"] = ids.Length, ["tolerance"] = Bundle.GoldenTolerance },
        };
        File.WriteAllText(Path.Combine(tmp, "whetstone.json"), info.ToJsonString(RunDirectory.Json));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.Move(tmp, dir);
        return dir;
    }

    /// <summary>Loads a causal-lm or chat bundle (or the run folder holding it), replaying its golden set.</summary>
    public static LoadedLmBundle Load(string path, TextWriter? log = null)
    {
        var (dir, infoPath, info) = Bundle.ReadInfo(path);
        var task = info["task"]?.GetValue<string>();
        if (task is not (CausalLmTask.CausalLmName or CausalLmTask.ChatName)) throw new BundleException($"{infoPath}: a '{task}' bundle, not a causal-lm or chat bundle.");
        CausalLm model;
        try
        {
            (model, var report) = HfModel.LoadCausalLm(dir);
            log?.WriteLine(report.ToString());
        }
        catch (HfCheckpointException e) { throw new BundleException($"{dir}: the bundle's weights do not load: {e.Message}", e); }
        var tokenizer = DecoderTokenizer.Load(dir);
        var template = task == CausalLmTask.ChatName ? ChatTemplate.FromDirectory(dir) : null;
        var stop = info["stop_ids"]?.AsArray().Select(x => x!.GetValue<int>()).ToArray() ?? tokenizer.EosIds.ToArray();
        double maxDiff = Bundle.ReplayGolden(dir, g =>
        {
            var ids = g["ids"].ToArray().Select(v => (int)v).ToArray();
            return model.Forward(ids, 1, ids.Length);
        }, "the weights or the tokenizer changed");
        return new LoadedLmBundle(dir, model, tokenizer, template, stop, info, maxDiff);
    }
}
