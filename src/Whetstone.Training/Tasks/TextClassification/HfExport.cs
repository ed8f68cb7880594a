using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Models.Formats;
using Whetstone.Nn.Lora;
using Whetstone.Tensors;
using Whetstone.Training.Runs;

namespace Whetstone.Training.Tasks;

/// <summary>What <see cref="HfExport.Export"/> wrote.</summary>
public sealed record HfExportResult(string Folder, IReadOnlyList<string> Files, bool Merged, bool Adapters, int Tensors);

/// <summary>
/// Writes a transformer text bundle as a Hugging Face folder: <c>config.json</c> (the base model's, with this run's
/// <c>id2label</c>/<c>label2id</c>/<c>num_labels</c>/<c>architectures</c>), the weights under Hugging Face key names
/// (our module paths are the checkpoint names) and the base model's tokenizer files. A LoRA bundle is written either
/// merged into plain weights (<c>model.safetensors</c>, loadable as an ordinary model) or as a PEFT adapter
/// (<c>adapter_model.safetensors</c> with <c>base_model.model.</c> keys + <c>adapter_config.json</c>).
/// </summary>
public static class HfExport
{
    private static readonly string[] TokenizerFiles =
        ["vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "sentencepiece.bpe.model"];

    public static HfExportResult Export(string bundlePath, string outDir, bool mergeLora, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(bundlePath);
        ArgumentNullException.ThrowIfNull(outDir);
        var bundle = TextBundle.Load(bundlePath, log);
        var model = bundle.Net.Transformer
            ?? throw new BundleException($"{bundle.Path}: a word-vector bundle has no Hugging Face form; export needs a run with text.model.");
        var basePath = bundle.BaseModelPath!;
        var lora = bundle.Lora;
        Directory.CreateDirectory(outDir);
        var files = new List<string>();
        string Out(string name) { files.Add(name); return Path.Combine(outDir, name); }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(basePath, "config.json")))!.AsObject();
        config["architectures"] = new JsonArray(JsonValue.Create(model.GetType().Name));
        config["num_labels"] = bundle.Labels.Count;
        config["id2label"] = new JsonObject(bundle.Labels.Select((l, i) => KeyValuePair.Create(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)JsonValue.Create(l))));
        config["label2id"] = new JsonObject(bundle.Labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)JsonValue.Create(i))));
        config["problem_type"] = "single_label_classification";
        if (model.Pooling == Whetstone.Models.Transformers.TextPooling.Mean)
        {
            // ModernBERT's key: Whetstone reads it back; transformers' BertForSequenceClassification ignores it and would use the pooler
            config["classifier_pooling"] = "mean";
            log?.WriteLine("note: the head reads the mean over tokens (config.json classifier_pooling: mean); transformers' own BERT classes ignore that key and read the pooled [CLS] vector.");
        }
        File.WriteAllText(Out("config.json"), config.ToJsonString(RunDirectory.Json));
        foreach (var name in TokenizerFiles)
            if (File.Exists(Path.Combine(basePath, name))) File.Copy(Path.Combine(basePath, name), Out(name), overwrite: true);

        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        int count;
        bool adapters = lora is not null && !mergeLora;
        if (adapters)
        {
            var state = new Dictionary<string, Tensor>();
            foreach (var (k, v) in model.AdapterStateDict()) state[LoraInjector.PeftAdapterKey(k)] = v;
            SafeTensors.Save(Out("adapter_model.safetensors"), state, meta);
            var targets = LoraInjector.Layers(model).Select(l => l.Name[(l.Name.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal);
            var adapterConfig = new JsonObject
            {
                ["peft_type"] = "LORA", ["task_type"] = "SEQ_CLS", ["base_model_name_or_path"] = basePath,
                ["r"] = lora!.Rank, ["lora_alpha"] = lora.Alpha, ["lora_dropout"] = lora.Dropout,
                ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
                ["modules_to_save"] = new JsonArray((lora.ModulesToSave ?? "").Split('|', StringSplitOptions.RemoveEmptyEntries).Select(m => (JsonNode?)JsonValue.Create(m)).ToArray()),
                ["bias"] = "none", ["fan_in_fan_out"] = false, ["inference_mode"] = true, ["use_rslora"] = lora.UseRsLora,
            };
            File.WriteAllText(Out("adapter_config.json"), adapterConfig.ToJsonString(RunDirectory.Json));
            count = state.Count;
        }
        else
        {
            if (lora is not null) LoraInjector.MergeAndUnload(model);
            var state = model.StateDict();
            SafeTensors.Save(Out("model.safetensors"), state, meta);
            count = state.Count;
        }
        log?.WriteLine($"exported {bundle.Path} to {outDir}: {string.Join(", ", files)} ({count} tensors{(lora is null ? "" : adapters ? ", PEFT adapter" : ", LoRA merged")})");
        return new HfExportResult(Path.GetFullPath(outDir), files, lora is not null && mergeLora, adapters, count);
    }
}
