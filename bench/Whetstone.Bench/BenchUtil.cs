using System.Diagnostics;
using System.Text.Json;

namespace Whetstone.Bench;

/// <summary>Shared benchmark helpers: option parsing, timing, one JSON line per result.</summary>
internal static class BenchUtil
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Writes one result as a single JSON line on stdout (fields in insertion order, peak_rss_mb added).</summary>
    public static void Emit(string bench, string @case, IEnumerable<KeyValuePair<string, object?>> fields)
    {
        var row = new Dictionary<string, object?> { ["bench"] = bench, ["case"] = @case };
        foreach (var (k, v) in fields) row[k] = v is double d ? Round6(d) : v;
        row["peak_rss_mb"] = Math.Round(PeakRssMb(), 1);
        Console.WriteLine(JsonSerializer.Serialize(row, Json));
        Console.Out.Flush();
    }

    /// <summary>Six significant digits: enough for timings, keeps tiny values (relative errors) visible.</summary>
    public static double Round6(double d) =>
        double.IsFinite(d) ? double.Parse(d.ToString("G6", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture) : d;

    /// <summary>Peak resident set size of this process (VmHWM), in MiB; 0 where /proc is missing.</summary>
    public static double PeakRssMb()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    /// <summary>Timing statistics in milliseconds.</summary>
    public readonly record struct Stats(double Median, double Best, int Reps)
    {
        public static Stats Of(List<double> ms)
        {
            var s = ms.Order().ToArray();
            double med = s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
            return new Stats(med, s[0], s.Length);
        }
    }

    /// <summary>Runs <paramref name="body"/> <paramref name="warmup"/> times untimed, then <paramref name="reps"/> times timed.</summary>
    public static Stats Time(Action body, int reps, int warmup = 2)
    {
        Warm(() => body(), warmup);
        var ms = new List<double>(reps);
        for (int i = 0; i < reps; i++) ms.Add(TimeOnce(body));
        return Stats.Of(ms);
    }

    /// <summary>
    /// Times two bodies in turn, each as a block (warm-up, then its reps), in two rounds (a b a b) so slow drift in
    /// machine load hits both alike. Blocks rather than alternating single runs: a library whose threads spin after
    /// a call (OpenBLAS does, for a while) would otherwise slow down the other body's runs.
    /// </summary>
    public static (Stats A, Stats B) TimePair(Action a, Action b, int reps, int warmup = 2)
    {
        var ta = new List<double>(reps);
        var tb = new List<double>(reps);
        for (int round = 0; round < 2; round++)
        {
            int n = round == 0 ? (reps + 1) / 2 : reps / 2;
            foreach (var (body, into) in new[] { (a, ta), (b, tb) })
            {
                Thread.Sleep(150); // let the other's spinning threads go quiet
                Warm(body, warmup);
                for (int i = 0; i < n; i++) into.Add(TimeOnce(body));
            }
        }
        return (Stats.Of(ta), Stats.Of(tb));
    }

    /// <summary>At least <paramref name="runs"/> runs and 0.4 s, so tiered compilation has settled before timing.</summary>
    private static void Warm(Action body, int runs)
    {
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < runs || (Stopwatch.GetElapsedTime(t0).TotalSeconds < 0.25 && i < 200); i++) body();
    }

    public static double TimeOnce(Action body)
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    /// <summary>Command-line options of the form --name value (or --flag).</summary>
    public sealed class Options(string[] args)
    {
        public string? Get(string name)
        {
            for (int i = 0; i < args.Length; i++)
                if (args[i] == "--" + name) return i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[i + 1] : "";
            return null;
        }

        public bool Has(string name) => Get(name) is not null;
        public int Int(string name, int fallback) => int.TryParse(Get(name), out int v) ? v : fallback;

        public int[] Ints(string name, int[] fallback) =>
            Get(name) is { Length: > 0 } s ? s.Split(',').Select(int.Parse).ToArray() : fallback;
    }

    /// <summary>
    /// Makes sure <paramref name="name"/>=<paramref name="value"/> is in the environment from process start (native
    /// libraries read it when loaded): if not, runs this program again with it set and returns its exit code.
    /// </summary>
    public static int? ReexecWith(string name, string value, string[] args)
    {
        if (Environment.GetEnvironmentVariable(name) == value) return null;
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false };
        // launched as `dotnet Whetstone.Bench.dll`: pass the assembly again
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            psi.ArgumentList.Add(typeof(BenchUtil).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment[name] = value;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not re-run the benchmark");
        p.WaitForExit();
        return p.ExitCode;
    }
}
