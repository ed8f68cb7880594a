using System.Diagnostics;

namespace Whetstone.Cli.Tests;

/// <summary>Runs the built <c>whet</c> as a user does: a child process in a working folder, its exit code and both streams.</summary>
internal static class WhetProcess
{
    public static (int Code, string Out, string Err) Run(string workingDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "whet.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }
}
