using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Whetstone.Models.Bert;
using Whetstone.Nn;
using Whetstone.Nn.Lora;
using Whetstone.Nn.Optimizers;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Bench;

/// <summary>
/// One training step of a BERT-shaped classifier (post-LN, GELU, [CLS] pooler + 2-class head, AdamW, dropout 0) in five
/// modes, side by side with the same workload in PyTorch (../shared/peer/models.py). <c>--model bert</c> (default):
/// bert-base (vocab 30522, hidden 768, 12 layers, 12 heads, FFN 3072), batch 8 × 128; <c>--model minilm</c>:
/// all-MiniLM-L6-v2's shape (hidden 384, 6 layers, 12 heads of 32, FFN 1536), batch 32 × 128. Each mode runs in its
/// own child process so peak RSS is that mode's alone, exactly as the peer does.
/// </summary>
internal static class EncoderStepBench
{
    private static readonly string[] Modes = ["full", "top2", "head", "lora", "infer"];

    /// <summary>The peer's model name → (config, default batch, default sequence length, label in the JSON).</summary>
    private static (BertConfig Config, int Batch, int Seq, string Label) Shape(string model) => model switch
    {
        "bert" => (BertConfig.Base, 8, 128, "bert-base"),
        "minilm" => (BertConfig.Base with { HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536 }, 32, 128, "minilm"),
        "gpt2" => (BertConfig.Base, 4, 256, "gpt2-small"),   // a decoder: the BERT config is unused (see ChildGpt2)
        _ => throw new ArgumentException($"unknown model {model} (bert, minilm, gpt2)"),
    };

    public static void Run(string[] args)
    {
        // Child: `encoder-step --child MODE THREADS` measures one mode and prints one JSON object.
        string model = OptS(args, "--model", "bert");
        var shape = Shape(model);
        int batch = Opt(args, "--batch", shape.Batch), seq = Opt(args, "--seq", shape.Seq);
        if (args.Length >= 3 && args[0] == "--child")
        {
            Tensors.Autograd.OpProfile.Enabled = args.Contains("--profile");
            if (model == "gpt2") ChildGpt2(batch, seq, args[1], int.Parse(args[2]), Opt(args, "--iters", 5), Opt(args, "--warmup", 2));
            else Child(shape.Config, batch, seq, args[1], int.Parse(args[2]), Opt(args, "--iters", 5), Opt(args, "--warmup", 2));
            return;
        }

        var modes = args.Where(a => Modes.Contains(a)).ToArray();
        if (modes.Length == 0) modes = model == "gpt2" ? ["full", "lora", "infer"] : Modes;
        int threads = Opt(args, "--threads", 2);
        bool peer = !args.Contains("--no-peer");
        // --rounds N: N (ours, peer) pairs in turn, so that load from other work on the machine falls on both alike;
        // the record gives the medians over rounds of each side's step median, and the fastest single steps.
        int rounds = Opt(args, "--rounds", 1);
        foreach (var mode in modes)
        {
            var oursRuns = new List<JsonObject>();
            var theirRuns = new List<JsonObject>();
            for (int round = 0; round < rounds; round++)
            {
                oursRuns.Add(RunChild(mode, threads, args, model, batch, seq));
                if (peer && RunPeer(model, mode, threads, batch, seq) is { } t) theirRuns.Add(t);
            }
            static double Med(IEnumerable<double> v) { var a = v.OrderBy(x => x).ToArray(); return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2; }
            static double MedOf(List<JsonObject> runs, string key) => Med(runs.Where(r => r[key] is not null).Select(r => r[key]!.GetValue<double>()));
            static double MinStep(List<JsonObject> runs) => runs.SelectMany(r => r["all_ms"]!.AsArray().Select(x => x!.GetValue<double>())).Min();
            var ours = oursRuns[^1];
            double ms = MedOf(oursRuns, "ms");
            var rec = new JsonObject
            {
                ["bench"] = "encoder-step",
                ["case"] = $"{shape.Label} b{batch}x{seq} {mode}",
                ["threads"] = threads,
                ["rounds"] = rounds,
                ["ms"] = Math.Round(ms, 1),
                ["min_ms"] = Math.Round(MinStep(oursRuns), 1),
                ["peak_rss_mb"] = oursRuns.Max(r => r["peak_rss_mb"]!.GetValue<double>()),
                ["params_trainable"] = ours["params_trainable"]!.GetValue<long>(),
                ["round_ms"] = new JsonArray(oursRuns.Select(r => (JsonNode)r["ms"]!.GetValue<double>()).ToArray()),
            };
            foreach (var part in new[] { "fwd_ms", "bwd_ms", "opt_ms" })
            {
                if (ours[part] is not null) rec[part] = Math.Round(MedOf(oursRuns, part), 1);
                if (theirRuns.Count > 0 && theirRuns[0][part] is not null) rec["ref_" + part] = Math.Round(MedOf(theirRuns, part), 1);
            }
            if (theirRuns.Count > 0)
            {
                double refMs = MedOf(theirRuns, "ms");
                rec["ref_ms"] = Math.Round(refMs, 1);
                rec["ref_min_ms"] = Math.Round(MinStep(theirRuns), 1);
                rec["ref_peak_rss_mb"] = theirRuns.Max(r => r["peak_rss_mb"]!.GetValue<double>());
                rec["ref_round_ms"] = new JsonArray(theirRuns.Select(r => (JsonNode)Math.Round(r["ms"]!.GetValue<double>(), 1)).ToArray());
                rec["ratio"] = Math.Round(ms / refMs, 3);
                rec["ratio_min"] = Math.Round(rec["min_ms"]!.GetValue<double>() / rec["ref_min_ms"]!.GetValue<double>(), 3);
                rec["ratio_rounds"] = new JsonArray(oursRuns.Zip(theirRuns, (o, t) => (JsonNode)Math.Round(o["ms"]!.GetValue<double>() / t["ms"]!.GetValue<double>(), 3)).ToArray());
                rec["ref"] = "pytorch " + (theirRuns[0]["torch"]?.GetValue<string>() ?? "");
                rec["ref_openblas_core"] = theirRuns[0]["OPENBLAS_CORETYPE"]?.GetValue<string>() ?? "?";
                rec["ref_blas"] = BlasLibrary();
            }
            rec["loadavg1"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            Console.WriteLine(rec.ToJsonString());
        }
    }

    private static int Opt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static string OptS(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private static JsonObject RunChild(string mode, int threads, string[] args, string model, int batch, int seq)
    {
        var self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(EncoderStepBench).Assembly.Location);
        foreach (var a in new[] { "encoder-step", "--child", mode, threads.ToString(), "--iters", Opt(args, "--iters", 5).ToString(), "--warmup", Opt(args, "--warmup", 2).ToString(),
                     "--model", model, "--batch", batch.ToString(), "--seq", seq.ToString() })
            psi.ArgumentList.Add(a);
        psi.Environment["WHETSTONE_THREADS"] = threads.ToString();
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"encoder-step child for {mode} failed with exit code {p.ExitCode}.");
        return JsonNode.Parse(output.Trim().Split('\n')[^1])!.AsObject();
    }

    /// <summary>Runs ../shared/peer/models.py MODEL MODE THREADS --batch B --seq T with the tuned settings of peer/run.sh.</summary>
    private static JsonObject? RunPeer(string model, string mode, int threads, int batch, int seq)
    {
        var script = FindPeer();
        if (script is null) { Console.Error.WriteLine("peer: ../shared/peer/run.sh not found; skipping PyTorch reference"); return null; }
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, "models.py", model, mode, threads.ToString(), "--batch", batch.ToString(), "--seq", seq.ToString() }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (line is null) { Console.Error.WriteLine($"peer {mode} failed: {err.Trim().Split('\n').LastOrDefault()}"); return null; }
        var rec = JsonNode.Parse(line["RESULT ".Length..])!.AsObject();
        rec["torch"] = "1.13";
        if (!BlasLibrary().Contains("openblas", StringComparison.Ordinal))
            Console.Error.WriteLine($"peer: libblas.so.3 is {BlasLibrary()}, not OpenBLAS: the PyTorch figures are not the tuned peer's (apt-get install libopenblas0-pthread)");
        return rec;
    }

    /// <summary>
    /// What Debian's libblas.so.3 alternative resolves to. PyTorch from Debian calls the generic BLAS through it; when
    /// only the reference libblas3 is installed the peer runs ~40× slower and the OPENBLAS_CORETYPE it reports means nothing.
    /// </summary>
    private static string BlasLibrary()
    {
        try
        {
            var link = new FileInfo("/usr/lib/x86_64-linux-gnu/libblas.so.3").ResolveLinkTarget(returnFinalTarget: true);
            return link?.FullName ?? "/usr/lib/x86_64-linux-gnu/libblas.so.3";
        }
        catch (IOException) { return "?"; }
    }

    private static string? FindPeer()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "..", "shared", "peer", "run.sh");
            if (File.Exists(candidate)) return Path.GetFullPath(candidate);
            candidate = Path.Combine(dir.FullName, "shared", "peer", "run.sh");
            if (File.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        return null;
    }

    private static void Child(BertConfig shape, int B, int T, string mode, int threads, int iters, int warmup)
    {
        Par.Threads = threads;
        var rng = new Rng(0);
        var config = shape with { TypeVocabSize = 0, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, LayerNormEps = 1e-5f };
        var model = new BertForSequenceClassification(config, 2, rng);
        var bert = model.Bert;
        switch (mode)
        {
            case "full": break;
            case "top2":
                Freeze(bert.Embeddings);
                for (int i = 0; i < config.NumHiddenLayers - 2; i++) Freeze(bert.Encoder.Layer[i]);
                break;
            case "head":
                Freeze(bert.Embeddings);
                Freeze(bert.Encoder);
                break;
            case "lora":
                Freeze(model);
                LoraInjector.Inject(bert.Encoder, "query|value", rank: 8, alpha: 16, rng);
                foreach (var p in bert.Pooler.Parameters().Concat(model.Classifier.Parameters())) p.RequiresGrad = true;
                break;
            case "infer":
                Freeze(model);
                model.Eval();
                break;
            default: throw new ArgumentException($"unknown mode {mode}");
        }
        var ids = new int[B * T];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(config.VocabSize);
        var targets = new int[B];
        for (int i = 0; i < B; i++) targets[i] = rng.NextInt(2);
        var trainable = model.NamedParameters().Where(p => p.Tensor.RequiresGrad).ToList();
        var opt = trainable.Count > 0 ? new AdamW(model, lr: 1e-4) : null;   // torch.optim.AdamW(trainable, lr=1e-4): weight decay 0.01 on all

        Measure(opt, () => model.Forward(ids, B, T), () => Tensor.CrossEntropy(model.Forward(ids, B, T), targets), trainable.Sum(p => (long)p.Tensor.Size), iters, warmup);
    }

    /// <summary>
    /// GPT-2 small (124M: vocab 50257, 12 layers of 768, 12 heads, FFN 3072, tied head, dropout 0) language-model step
    /// on B × T random tokens, next-token cross-entropy over every position; modes full, lora (r = 8 on the fused
    /// c_attn, the peer puts r = 8 on its separate q and v), infer.
    /// </summary>
    private static void ChildGpt2(int B, int T, string mode, int threads, int iters, int warmup)
    {
        Par.Threads = threads;
        var rng = new Rng(0);
        var model = new Whetstone.Models.Gpt2.Gpt2LMHeadModel(new Whetstone.Models.Gpt2.Gpt2Config { ResidPdrop = 0, EmbdPdrop = 0, AttnPdrop = 0 }, rng);
        switch (mode)
        {
            case "full": break;
            case "lora": LoraInjector.Inject(model, "c_attn", rank: 8, alpha: 16, rng); break;
            case "infer": Freeze(model); model.Eval(); break;
            default: throw new ArgumentException($"mode {mode} is not a decoder mode (full, lora, infer)");
        }
        int v = model.VocabSize;
        var ids = new int[B * T];
        var targets = new int[B * T];
        for (int i = 0; i < ids.Length; i++) { ids[i] = rng.NextInt(v); targets[i] = rng.NextInt(v); }
        var trainable = model.NamedParameters().Where(p => p.Tensor.RequiresGrad).ToList();
        var opt = trainable.Count > 0 ? new AdamW(model, lr: 1e-4) : null;
        Measure(opt, () => model.Forward(ids, B, T), () => Tensor.CrossEntropy(model.Forward(ids, B, T).Reshape(B * T, v), targets),
            trainable.Sum(p => (long)p.Tensor.Size), iters, warmup);
    }

    /// <summary>Times <paramref name="iters"/> steps after <paramref name="warmup"/>: forward only without an optimiser, else loss, backward, step; prints the child's JSON.</summary>
    private static void Measure(AdamW? opt, Func<Tensor> forward, Func<Tensor> loss, long trainableCount, int iters, int warmup)
    {
        var parts = new List<(double Fwd, double Bwd, double Opt)>();
        void Step()
        {
            using var scope = new TensorScope();
            if (opt is null)
            {
                using (Tensors.Autograd.Graph.NoGrad()) forward();
                return;
            }
            var sw = Stopwatch.StartNew();
            Tensors.Autograd.OpProfile.Mark();
            opt.ZeroGrad();
            var l = loss();
            double fwd = sw.Elapsed.TotalMilliseconds;
            l.Backward();
            double bwd = sw.Elapsed.TotalMilliseconds;
            opt.Step();
            parts.Add((fwd, bwd - fwd, sw.Elapsed.TotalMilliseconds - bwd));
        }

        var times = new List<double>();
        for (int i = 0; i < warmup + iters; i++)
        {
            var sw = Stopwatch.StartNew();
            Step();
            if (i >= warmup) times.Add(sw.Elapsed.TotalMilliseconds);
            if (i == warmup - 1) Tensors.Autograd.OpProfile.Reset();
        }
        if (Tensors.Autograd.OpProfile.Enabled) Console.Error.Write(Tensors.Autograd.OpProfile.Report(iters));
        double Median(IEnumerable<double> v) { var a = v.OrderBy(t => t).ToArray(); return a.Length == 0 ? 0 : a[a.Length / 2]; }
        var sorted = times.OrderBy(t => t).ToArray();
        var rec = new JsonObject
        {
            ["ms"] = Math.Round(sorted[sorted.Length / 2], 1),
            ["peak_rss_mb"] = Math.Round(PeakRssMb()),
            ["params_trainable"] = trainableCount,
            ["all_ms"] = new JsonArray(times.Select(t => (JsonNode)Math.Round(t, 1)).ToArray()),
        };
        if (parts.Count > warmup)
        {
            var timed = parts.Skip(warmup).ToArray();
            rec["fwd_ms"] = Math.Round(Median(timed.Select(p => p.Fwd)), 1);
            rec["bwd_ms"] = Math.Round(Median(timed.Select(p => p.Bwd)), 1);
            rec["opt_ms"] = Math.Round(Median(timed.Select(p => p.Opt)), 1);
        }
        Console.WriteLine(rec.ToJsonString());
    }

    private static void Freeze(Module m)
    {
        foreach (var p in m.Parameters()) p.RequiresGrad = false;
    }

    internal static double PeakRssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return double.NaN;
    }
}
