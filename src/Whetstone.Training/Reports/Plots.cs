using ScottPlot;
using Whetstone.Training.Evaluation;

namespace Whetstone.Training.Reports;

/// <summary>A named (x, y) series for a line chart.</summary>
internal sealed record Series(string Name, double[] X, double[] Y, bool Markers = false, bool Dashed = false);

/// <summary>
/// The report's charts, drawn with ScottPlot 5 (SkiaSharp) and returned as PNG bytes, never touching the disk.
/// SkiaSharp's native library needs fontconfig (Debian: <c>libfontconfig1</c>) and a font; when it cannot load,
/// <see cref="Render"/> throws an <see cref="InvalidOperationException"/> that says so.
/// </summary>
internal static class Plots
{
    public const int Width = 560, Height = 360;
    private static readonly Color[] Palette = [new("#1f77b4"), new("#ff7f0e"), new("#2ca02c"), new("#d62728"), new("#9467bd"), new("#8c564b")];

    public static Color ColorOf(int i) => Palette[i % Palette.Length];

    /// <summary>Renders to PNG bytes in memory.</summary>
    public static byte[] Render(Plot plot, int width = Width, int height = Height)
    {
        try { return plot.GetImageBytes(width, height, ImageFormat.Png); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new InvalidOperationException(
                "The report's plots cannot be rendered: SkiaSharp's native library (libSkiaSharp) failed to load " +
                $"({e.GetBaseException().Message}). On Debian/Ubuntu install its dependencies: apt-get install -y libfontconfig1 fonts-dejavu-core", e);
        }
        finally { plot.Dispose(); }
    }

    /// <summary>A line chart of several series.</summary>
    public static byte[] Lines(string title, string xLabel, string yLabel, IReadOnlyList<Series> series, bool logY = false)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? $"{yLabel} (log₁₀)" : yLabel);
        int i = 0;
        foreach (var s in series)
        {
            if (s.X.Length == 0) { i++; continue; }
            var y = logY ? s.Y.Select(v => v > 0 ? Math.Log10(v) : double.NaN).ToArray() : s.Y;
            var sc = plot.Add.Scatter(s.X, y, ColorOf(i++));
            sc.LegendText = s.Name;
            sc.LineWidth = 2;
            sc.MarkerSize = s.Markers || s.X.Length == 1 ? 6 : 0;
            if (s.Dashed) sc.LinePattern = LinePattern.Dashed;
        }
        if (series.Count(s => s.X.Length > 0) > 1) plot.ShowLegend(Alignment.UpperRight);
        return Render(plot);
    }

    /// <summary>ROC or PR curves (one per model) in the unit square, with a marker at the chosen threshold.</summary>
    public static byte[] Curve(string title, string xLabel, string yLabel, IReadOnlyList<Series> curves, (double X, double Y, string Label)? marker, bool diagonal)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (diagonal)
        {
            var d = plot.Add.Line(0, 0, 1, 1);
            d.LineColor = Colors.Gray;
            d.LinePattern = LinePattern.Dashed;
        }
        int i = 0;
        foreach (var c in curves)
        {
            var sc = plot.Add.Scatter(c.X, c.Y, ColorOf(i++));
            sc.LegendText = c.Name;
            sc.LineWidth = 2;
            sc.MarkerSize = 0;
            if (c.Dashed) sc.LinePattern = LinePattern.Dashed;
        }
        if (marker is var (mx, my, label))
        {
            var m = plot.Add.Marker(mx, my, MarkerShape.FilledCircle, 11, Colors.Black);
            m.LegendText = label;
        }
        plot.Axes.SetLimits(-0.02, 1.02, -0.02, 1.02);
        plot.ShowLegend(Alignment.LowerRight);
        return Render(plot);
    }

    /// <summary>A reliability diagram: accuracy per confidence bin as bars, the ideal diagonal, and the mean confidence per bin.</summary>
    public static byte[] Reliability(string title, IReadOnlyList<ReliabilityBin> bins)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel("confidence (top-class probability)");
        plot.YLabel("accuracy");
        var bars = new List<Bar>();
        foreach (var b in bins)
        {
            if (b.Count == 0) continue;
            double w = b.Upper - b.Lower;
            bars.Add(new Bar { Position = (b.Lower + b.Upper) / 2, Value = b.Accuracy, Size = w * 0.92, FillColor = ColorOf(0).WithAlpha(0.75), LineWidth = 0 });
        }
        var bp = plot.Add.Bars(bars);
        bp.LegendText = "accuracy in bin";
        var d = plot.Add.Line(0, 0, 1, 1);
        d.LineColor = Colors.Gray;
        d.LinePattern = LinePattern.Dashed;
        d.LegendText = "perfect calibration";
        var filled = bins.Where(b => b.Count > 0).ToArray();
        var conf = plot.Add.Markers(filled.Select(b => (b.Lower + b.Upper) / 2).ToArray(), filled.Select(b => b.MeanConfidence).ToArray(), MarkerShape.FilledDiamond, 7, ColorOf(3));
        conf.LegendText = "mean confidence in bin";
        plot.Axes.SetLimits(0, 1, 0, 1.02);
        plot.ShowLegend(Alignment.UpperLeft);
        return Render(plot);
    }

    /// <summary>Trial values in order with the best-so-far line; pruned/failed trials in grey.</summary>
    public static byte[] StudyHistory(string objective, bool maximize, IReadOnlyList<StudyTrial> trials)
    {
        var plot = new Plot();
        plot.Title("trial history");
        plot.XLabel("trial");
        plot.YLabel(objective);
        var done = trials.Where(t => t.Value is double v && double.IsFinite(v)).OrderBy(t => t.Number).ToArray();
        var complete = done.Where(t => t.IsComplete).ToArray();
        var other = done.Where(t => !t.IsComplete).ToArray();
        if (other.Length > 0)
        {
            var m = plot.Add.Markers(other.Select(t => (double)t.Number).ToArray(), other.Select(t => t.Value!.Value).ToArray(), MarkerShape.OpenCircle, 7, Colors.Gray);
            m.LegendText = "pruned / failed (last reported)";
        }
        if (complete.Length > 0)
        {
            var m = plot.Add.Markers(complete.Select(t => (double)t.Number).ToArray(), complete.Select(t => t.Value!.Value).ToArray(), MarkerShape.FilledCircle, 7, ColorOf(0));
            m.LegendText = "complete";
            var xs = new double[complete.Length];
            var ys = new double[complete.Length];
            double best = complete[0].Value!.Value;
            for (int i = 0; i < complete.Length; i++)
            {
                double v = complete[i].Value!.Value;
                best = maximize ? Math.Max(best, v) : Math.Min(best, v);
                (xs[i], ys[i]) = (complete[i].Number, best);
            }
            var line = plot.Add.Scatter(xs, ys, ColorOf(1));
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.MarkerSize = 0;
            line.LineWidth = 2;
            line.LegendText = "best so far";
        }
        plot.ShowLegend(maximize ? Alignment.LowerRight : Alignment.UpperRight);
        return Render(plot);
    }

    /// <summary>One parameter against the objective: numbers on a linear or log axis, categories as ticks.</summary>
    public static byte[] ParameterVsObjective(string name, string objective, IReadOnlyList<(object? Value, double Objective, bool Complete)> points)
    {
        var plot = new Plot();
        plot.Title(name);
        plot.YLabel(objective);
        bool numeric = points.All(p => p.Value is null || TryNumber(p.Value, out _));
        double[] xs;
        if (numeric)
        {
            var raw = points.Select(p => TryNumber(p.Value, out var v) ? v : double.NaN).ToArray();
            var finite = raw.Where(double.IsFinite).ToArray();
            bool log = finite.Length > 1 && finite.All(v => v > 0) && finite.Max() / finite.Min() >= 100;
            xs = log ? raw.Select(Math.Log10).ToArray() : raw;
            plot.XLabel(log ? $"log₁₀({name})" : name);
        }
        else
        {
            var categories = points.Select(p => Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "").Distinct().Order(StringComparer.Ordinal).ToList();
            xs = points.Select(p => (double)categories.IndexOf(Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "")).ToArray();
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
            plot.Axes.SetLimitsX(-0.5, categories.Count - 0.5);
            plot.XLabel(name);
        }
        var ys = points.Select(p => p.Objective).ToArray();
        int[] c = Enumerable.Range(0, points.Count).Where(i => points[i].Complete).ToArray(), o = Enumerable.Range(0, points.Count).Where(i => !points[i].Complete).ToArray();
        if (o.Length > 0) plot.Add.Markers(o.Select(i => xs[i]).ToArray(), o.Select(i => ys[i]).ToArray(), MarkerShape.OpenCircle, 7, Colors.Gray);
        if (c.Length > 0) plot.Add.Markers(c.Select(i => xs[i]).ToArray(), c.Select(i => ys[i]).ToArray(), MarkerShape.FilledCircle, 7, ColorOf(0));
        return Render(plot, 420, 300);
    }

    private static bool TryNumber(object? value, out double v)
    {
        switch (value)
        {
            case double d: v = d; return true;
            case float f: v = f; return true;
            case int i: v = i; return true;
            case long l: v = l; return true;
            case decimal m: v = (double)m; return true;
            case System.Text.Json.Nodes.JsonValue j when j.TryGetValue<double>(out var x): v = x; return true;
            default: v = double.NaN; return false;
        }
    }
}
