using System.Diagnostics;
using System.Globalization;

namespace Whetstone.Tensors.Tests;

/// <summary>
/// Runs the kernel probe in child processes with AVX-512 off and with all hardware intrinsics off, and
/// checks every kernel gives the same results as with the full instruction set.
/// </summary>
public class InstructionSetTests
{
    private static string ProbeDll()
    {
        var here = Path.GetDirectoryName(typeof(InstructionSetTests).Assembly.Location)!;
        var config = here.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        var dir = new DirectoryInfo(here);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Whetstone.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var dll = Path.Combine(dir!.FullName, "tests", "Whetstone.KernelProbe", "bin", config, "net10.0", "Whetstone.KernelProbe.dll");
        Assert.True(File.Exists(dll), $"kernel probe not built: {dll}");
        return dll;
    }

    private static Dictionary<string, float[]> Run(params (string key, string value)[] env)
    {
        var file = Path.GetTempFileName();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(ProbeDll());
        psi.ArgumentList.Add(file);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"probe failed ({p.ExitCode}): {err}");
        var result = new Dictionary<string, float[]>();
        foreach (var line in File.ReadLines(file))
        {
            if (line.StartsWith('#')) { result[line] = []; continue; }
            var parts = line.Split(' ');
            result[parts[0]] = parts.Skip(1).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        }
        File.Delete(file);
        return result;
    }

    // .NET 10 reads DOTNET_EnableAVX512 (the older DOTNET_EnableAVX512F alone is ignored), so both are set;
    // the probe reports the instruction set it really ran with and the test asserts it.
    [Theory]
    [InlineData("DOTNET_EnableAVX512F", "avx512=False avx2=True")]
    [InlineData("DOTNET_EnableHWIntrinsic", "avx512=False avx2=False")]
    public void FallbackPathsAgree(string variable, string expectIsa)
    {
        var full = Run();
        Assert.Contains(full.Keys, k => k.StartsWith('#') && k.Contains($"avx512={System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}"));
        var reduced = variable == "DOTNET_EnableAVX512F" ? Run((variable, "0"), ("DOTNET_EnableAVX512", "0")) : Run((variable, "0"));
        Assert.Contains(reduced.Keys, k => k.StartsWith('#') && k.Contains(expectIsa));
        int cases = 0;
        foreach (var (name, want) in full)
        {
            if (name.StartsWith('#')) continue;
            Assert.True(reduced.TryGetValue(name, out var got), $"{name} missing");
            Assert.Equal(want.Length, got!.Length);
            for (int i = 0; i < want.Length; i++)
            {
                double tol = 2e-5 * Math.Max(1, Math.Abs(want[i]));
                Assert.True(Math.Abs(want[i] - got[i]) <= tol || (float.IsNaN(want[i]) && float.IsNaN(got[i])),
                    $"{name}[{i}] with {variable}=0: {got[i]} vs {want[i]}");
            }
            cases++;
        }
        Assert.True(cases > 200, $"only {cases} cases compared");
    }
}
