using System.Diagnostics;
using System.Text.Json.Nodes;
using Whetstone.Models.Gpt2;
using Whetstone.Models.Transformers;
using Whetstone.Tensors;

namespace Whetstone.Bench;

/// <summary>
/// Greedy generation with the KV cache, batch 1, on a GPT-2 small-shaped model (124M, random weights): tokens/s over
/// the whole run and ms per token by position (is it flat from position 16 to 1,000?), beside the same loop in
/// PyTorch eager with a KV cache (bench/peer/gpt2_generate.py, run with the tuned settings of ../shared/peer/run.sh).
/// </summary>
internal static class GenerateBench
{
    public static int Run(string[] args)
    {
        int prompt = Opt(args, "--prompt", 16), fresh = Opt(args, "--new", 1000), threads = Opt(args, "--threads", 2);
        Par.Threads = threads;
        var model = new Gpt2LMHeadModel(new Gpt2Config { ResidPdrop = 0, EmbdPdrop = 0, AttnPdrop = 0 }, new Rng(0));
        model.Eval();
        var rng = new Rng(1);
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
        TextGeneration.Generate(model, [Ids(prompt)], new GenerationOptions { MaxNewTokens = 8 });   // warm-up
        var stamps = new List<long>(fresh);
        var sw = Stopwatch.StartNew();
        TextGeneration.Generate(model, [Ids(prompt)], new GenerationOptions { MaxNewTokens = fresh }, onToken: (_, _) => stamps.Add(sw.ElapsedTicks));
        double total = sw.Elapsed.TotalSeconds;
        var perToken = stamps.Zip(stamps.Skip(1), (a, b) => (b - a) * 1000.0 / Stopwatch.Frequency).ToArray();   // token i+1's step
        var rec = new JsonObject
        {
            ["bench"] = "generate", ["case"] = $"gpt2-small b1 prompt {prompt} + {fresh} greedy", ["threads"] = threads,
            ["tokens_per_s"] = Math.Round(fresh / total, 2),
        };
        AddFlatness(rec, "", perToken, prompt);
        if (!args.Contains("--no-peer") && RunPeer(threads, prompt, fresh) is { } peer)
        {
            rec["ref"] = "pytorch " + peer["torch"]!.GetValue<string>() + " eager, KV cache";
            rec["ref_openblas_core"] = peer["OPENBLAS_CORETYPE"]!.GetValue<string>();
            rec["ref_tokens_per_s"] = Math.Round(peer["tokens_per_s"]!.GetValue<double>(), 2);
            AddFlatness(rec, "ref_", peer["ms_per_token"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray(), prompt);
            rec["ratio"] = Math.Round(rec["tokens_per_s"]!.GetValue<double>() / rec["ref_tokens_per_s"]!.GetValue<double>(), 3);
        }
        rec["loadavg1"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        Console.WriteLine(rec.ToJsonString());
        return 0;
    }

    /// <summary>Median ms/token over the first and the last 32 generated positions, and their ratio (1 = flat).</summary>
    private static void AddFlatness(JsonObject rec, string prefix, double[] ms, int prompt)
    {
        static double Median(IEnumerable<double> v) { var a = v.Order().ToArray(); return a[a.Length / 2]; }
        int n = Math.Min(32, ms.Length / 2);
        double early = Median(ms.Take(n)), late = Median(ms.Skip(ms.Length - n));
        rec[prefix + "ms_per_token_early"] = Math.Round(early, 2);
        rec[prefix + "ms_per_token_late"] = Math.Round(late, 2);
        rec[prefix + "positions"] = $"{prompt + 1}-{prompt + n} vs {prompt + ms.Length - n + 1}-{prompt + ms.Length}";
        rec[prefix + "late_over_early"] = Math.Round(late / early, 3);
    }

    private static JsonObject? RunPeer(int threads, int prompt, int fresh)
    {
        string? script = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null && script is null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "bench", "peer", "gpt2_generate.py"))) script = Path.Combine(dir.FullName, "bench", "peer", "gpt2_generate.py");
        if (script is null || !File.Exists("/usr/bin/python3")) { Console.Error.WriteLine("peer: bench/peer/gpt2_generate.py or /usr/bin/python3 missing; skipping PyTorch"); return null; }
        // the tuned settings of ../shared/peer/run.sh
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, threads.ToString(), "--prompt", prompt.ToString(), "--new", fresh.ToString() }) psi.ArgumentList.Add(a);
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        if (File.ReadAllText("/proc/cpuinfo").Contains(" avx512f", StringComparison.Ordinal)) psi.Environment["OPENBLAS_CORETYPE"] = "SkylakeX";
        psi.Environment["OMP_NUM_THREADS"] = psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString();
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        psi.Environment["OPENBLAS_THREAD_TIMEOUT"] = "4";
        psi.Environment["GLIBC_TUNABLES"] = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var line = p.StandardOutput.ReadToEnd().Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        p.WaitForExit();
        if (line is null) { Console.Error.WriteLine("peer failed: " + err.Result.Trim().Split('\n').LastOrDefault()); return null; }
        return JsonNode.Parse(line["RESULT ".Length..])!.AsObject();
    }

    private static int Opt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }
}
