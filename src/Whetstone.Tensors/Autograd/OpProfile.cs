using System.Diagnostics;
using System.Text;

namespace Whetstone.Tensors.Autograd;

/// <summary>
/// Where a training step's time goes, by op (off unless <see cref="Enabled"/>; the bench turns it on with
/// <c>--profile</c>). Forward: the time since the previous recorded op is charged to the op being recorded, so each op's
/// kernel (and any view or copy it made) lands on it. Backward: each node's closure is timed on its own.
/// </summary>
internal static class OpProfile
{
    public static bool Enabled;
    private static long _last;
    private static readonly Dictionary<string, (double Ms, int Count)> Fwd = new(), Bwd = new();

    /// <summary>Starts a new forward interval (call before the first op of a step).</summary>
    public static void Mark() => _last = Stopwatch.GetTimestamp();

    public static void Forward(string op)
    {
        long now = Stopwatch.GetTimestamp();
        Add(Fwd, op, Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds);
        _last = now;
    }

    public static void Backward(string op, long start) => Add(Bwd, op, Stopwatch.GetElapsedTime(start).TotalMilliseconds);

    private static void Add(Dictionary<string, (double Ms, int Count)> d, string op, double ms)
    {
        d.TryGetValue(op, out var v);
        d[op] = (v.Ms + ms, v.Count + 1);
    }

    public static void Reset() { Fwd.Clear(); Bwd.Clear(); }

    /// <summary>A table of the totals divided by <paramref name="steps"/>, largest first.</summary>
    public static string Report(int steps)
    {
        var sb = new StringBuilder();
        foreach (var (name, d) in new[] { ("forward", Fwd), ("backward", Bwd) })
        {
            sb.AppendLine($"{name}: {d.Values.Sum(v => v.Ms) / steps:F1} ms/step");
            foreach (var (op, v) in d.OrderByDescending(kv => kv.Value.Ms))
                sb.AppendLine($"  {op,-22} {v.Ms / steps,8:F1} ms {v.Count / steps,6} calls");
        }
        return sb.ToString();
    }
}
