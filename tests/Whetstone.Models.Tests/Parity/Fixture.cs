using Whetstone.Models.Formats;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Parity;

/// <summary>Reads a fixture written by tests/fixtures/make_fixtures.py (PyTorch, float64 compute stored as float32).</summary>
internal sealed class Fixture : IDisposable
{
    private readonly SafeTensorsFile _file;

    public Fixture(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Whetstone.slnx"))) dir = dir.Parent;
        _file = SafeTensorsFile.Open(Path.Combine(dir!.FullName, "tests", "fixtures", name));
    }

    public Tensor this[string key] => _file.Read(key);

    /// <summary>A fixture tensor as a fresh leaf that requires a gradient.</summary>
    public Tensor Param(string key)
    {
        var t = _file.Read(key);
        t.RequiresGrad = true;
        return t;
    }

    public int[] Ints(string key) => _file.Read(key).ToArray().Select(v => (int)v).ToArray();

    /// <summary>Asserts max |expected − actual| ≤ tol and reports the worst element.</summary>
    public void Close(string key, Tensor? actual, double tol = 1e-4)
    {
        Assert.NotNull(actual);
        var want = this[key];
        Assert.Equal(want.Shape.ToArray(), actual!.Shape.ToArray());
        var a = actual.ToArray(); var w = want.ToArray();
        double worst = 0; int at = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs(a[i] - w[i]);
            if (d > worst || double.IsNaN(d)) { worst = double.IsNaN(d) ? double.PositiveInfinity : d; at = i; }
        }
        Assert.True(worst <= tol, $"{key}: max abs diff {worst:E2} at {at} (ours {a[at]}, PyTorch {w[at]})");
    }

    public void Dispose() => _file.Dispose();
}
