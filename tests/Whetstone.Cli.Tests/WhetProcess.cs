using System.Diagnostics;

namespace Whetstone.Cli.Tests;

/// <summary>Runs the built <c>whet</c> as a user does: a child process in a working folder, its exit code and both streams.</summary>
internal static class WhetProcess
{
    /// <summary>Starts <c>whet</c> with both streams redirected; <paramref name="threads"/> sets WHETSTONE_THREADS when given.</summary>
    public static Process Start(string workingDir, int? threads, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "whet.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (threads is int t) psi.Environment["WHETSTONE_THREADS"] = t.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Process.Start(psi)!;
    }

    public static (int Code, string Out, string Err) Run(string workingDir, params string[] args) => Run(workingDir, null, args);

    /// <summary>Starts <c>whet</c> with standard input redirected too (an interactive command fed by the test).</summary>
    public static Process StartWithInput(string workingDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = workingDir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "whet.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static (int Code, string Out, string Err) Run(string workingDir, int? threads, params string[] args)
    {
        using var p = Start(workingDir, threads, args);
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }
}
