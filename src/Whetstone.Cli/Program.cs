using System.CommandLine;
using System.Runtime.Intrinsics;
using Whetstone.Tensors;

namespace Whetstone.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("whet — fine-tune pre-trained neural networks in .NET");

        var threads = new Option<int>("--threads") { Description = "Threads for the kernels (default: WHETSTONE_THREADS or all cores)" };
        var quickstart = new Command("quickstart", "Run the built-in transfer-learning demo: pre-train, then fine-tune frozen / partially frozen / from scratch, and compare");
        quickstart.Options.Add(threads);
        quickstart.SetAction(r =>
        {
            ApplyThreads(r.GetValue(threads));
            return Quickstart.Run(Console.Out);
        });
        root.Subcommands.Add(quickstart);

        var info = new Command("info", "Show the engine's configuration: instruction sets, threads, memory pool");
        info.SetAction(_ =>
        {
            Console.WriteLine($"whetstone {typeof(Program).Assembly.GetName().Version}");
            Console.WriteLine($"runtime   .NET {Environment.Version}");
            Console.WriteLine($"simd      Vector512={Vector512.IsHardwareAccelerated} Vector256={Vector256.IsHardwareAccelerated}");
            Console.WriteLine($"threads   {Par.Threads} of {Environment.ProcessorCount} cores");
            return 0;
        });
        root.Subcommands.Add(info);

        return root.Parse(args).Invoke();
    }

    private static void ApplyThreads(int n)
    {
        if (n > 0) Par.Threads = n;
    }
}
