using System.Diagnostics;

namespace Whetstone.Training;

/// <summary>
/// Progress of a long loop: a bar redrawn in place on a terminal, or a plain line every few seconds (and at the end)
/// when the output is redirected to a file or pipe, so logs stay readable.
/// </summary>
public sealed class Progress
{
    private readonly TextWriter _out;
    private readonly bool _interactive;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _label;
    private readonly long _total;
    private double _lastDraw;
    private bool _done;

    public Progress(TextWriter output, string label, long total, bool? interactive = null)
    {
        _out = output ?? throw new ArgumentNullException(nameof(output));
        _label = label;
        _total = Math.Max(1, total);
        _interactive = interactive ?? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected);
    }

    /// <summary>Reports <paramref name="done"/> of the total with an optional status text (e.g. the running loss).</summary>
    public void Report(long done, string status = "")
    {
        if (_done) return;
        double t = _clock.Elapsed.TotalSeconds;
        bool last = done >= _total;
        if (!last && t - _lastDraw < (_interactive ? 0.2 : 10)) return;
        _lastDraw = t;
        double frac = Math.Clamp((double)done / _total, 0, 1);
        string eta = frac > 0 && !last ? $" eta {Format(t / frac - t)}" : "";
        if (_interactive)
        {
            const int width = 28;
            int filled = (int)(frac * width);
            _out.Write($"\r  {_label} [{new string('#', filled)}{new string('.', width - filled)}] {done}/{_total} {Format(t)}{eta} {status}".PadRight(100));
            if (last) _out.WriteLine();
        }
        else _out.WriteLine($"  {_label} {done}/{_total} ({frac:P0}) {Format(t)}{eta} {status}".TrimEnd());
        _done = last;
    }

    private static string Format(double seconds) => seconds < 60 ? $"{seconds:F1}s" : $"{(int)seconds / 60}m{(int)seconds % 60:D2}s";
}
