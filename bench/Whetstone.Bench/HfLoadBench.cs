using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Whetstone.Models.Importers.Hf;

namespace Whetstone.Bench;

/// <summary>
/// `load-bert`: HfModel.Load of a random bert-base-shaped BertForSequenceClassification checkpoint (110M parameters,
/// F32 safetensors, written once to /tmp/whet-bench-bert-base). Prints the first (cold allocation) load and the median
/// of the next ones, with the process's anonymous and file-backed resident memory after loading: the weights should
/// appear once in anonymous memory (the parameters), the mapped file only as page cache.
/// </summary>
internal static class HfLoadBench
{
    public static int Run(string[] args)
    {
        int reps = args.SkipWhile(a => a != "--reps").Skip(1).Select(int.Parse).FirstOrDefault(3);
        var dir = args.SkipWhile(a => a != "--dir").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), "whet-bench-bert-base");
        Generate(dir);
        long fileBytes = new FileInfo(Path.Combine(dir, "model.safetensors")).Length;
        var times = new List<double>();
        long parameters = 0;
        for (int i = 0; i < reps; i++)
        {
            GC.Collect();
            var sw = Stopwatch.StartNew();
            var (model, report) = HfModel.Load(dir);
            times.Add(sw.Elapsed.TotalMilliseconds);
            parameters = model.ParameterCount();
            if (i == 0)
                BenchUtil.Emit("load-bert", "first", new Dictionary<string, object?>
                {
                    ["threads"] = Environment.ProcessorCount, ["ms"] = times[0], ["params"] = parameters, ["file_mb"] = fileBytes / 1048576.0,
                    ["tensors"] = report.UsedKeys.Count, ["rss_anon_mb"] = Status("RssAnon"), ["rss_file_mb"] = Status("RssFile"),
                });
            GC.KeepAlive(model);
        }
        var rest = times.Skip(1).Order().ToList();
        if (rest.Count > 0)
            BenchUtil.Emit("load-bert", "warm", new Dictionary<string, object?>
            {
                ["threads"] = Environment.ProcessorCount, ["ms"] = rest[rest.Count / 2], ["best_ms"] = rest[0], ["reps"] = rest.Count, ["params"] = parameters,
                ["rss_anon_mb"] = Status("RssAnon"), ["rss_file_mb"] = Status("RssFile"),
            });
        return 0;
    }

    private static double Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return Math.Round(double.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0, 1);
        return 0;
    }

    /// <summary>Writes config.json + model.safetensors with bert-base shapes and small random values (streamed, never whole in memory).</summary>
    internal static void Generate(string dir)
    {
        var path = Path.Combine(dir, "model.safetensors");
        if (File.Exists(path) && File.Exists(Path.Combine(dir, "config.json"))) return;
        Directory.CreateDirectory(dir);
        const int D = 768, F = 3072, V = 30522, P = 512, L = 12;
        var shapes = new List<(string Name, int[] Shape)>
        {
            ("bert.embeddings.word_embeddings.weight", [V, D]), ("bert.embeddings.position_embeddings.weight", [P, D]),
            ("bert.embeddings.token_type_embeddings.weight", [2, D]), ("bert.embeddings.LayerNorm.weight", [D]), ("bert.embeddings.LayerNorm.bias", [D]),
        };
        for (int i = 0; i < L; i++)
        {
            var p = $"bert.encoder.layer.{i}.";
            foreach (var n in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                shapes.AddRange([(p + n + ".weight", [D, D]), (p + n + ".bias", [D])]);
            shapes.AddRange([(p + "attention.output.LayerNorm.weight", [D]), (p + "attention.output.LayerNorm.bias", [D]),
                (p + "intermediate.dense.weight", [F, D]), (p + "intermediate.dense.bias", [F]),
                (p + "output.dense.weight", [D, F]), (p + "output.dense.bias", [D]),
                (p + "output.LayerNorm.weight", [D]), (p + "output.LayerNorm.bias", [D])]);
        }
        shapes.AddRange([("bert.pooler.dense.weight", [D, D]), ("bert.pooler.dense.bias", [D]), ("classifier.weight", [2, D]), ("classifier.bias", [2])]);

        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in shapes)
        {
            long bytes = 4L * shape.Aggregate(1L, (a, b) => a * b);
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8;
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            fs.Write(BitConverter.GetBytes((ulong)(json.Length + pad)));
            fs.Write(json);
            for (int i = 0; i < pad; i++) fs.WriteByte((byte)' ');
            var buf = new float[1 << 18];
            uint s = 12345;
            for (long left = offset / 4; left > 0;)
            {
                int n = (int)Math.Min(buf.Length, left);
                for (int i = 0; i < n; i++) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; buf[i] = ((s & 0xFFFF) - 32768f) * 1e-6f; }
                fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buf.AsSpan(0, n)));
                left -= n;
            }
        }
        File.Move(tmp, path, overwrite: true);
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 768,
             "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
             "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}
            """);
    }
}
