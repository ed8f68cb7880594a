using System.CommandLine;
using System.Runtime.Intrinsics;
using Whetstone.Tensors;

namespace Whetstone.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("whet — fine-tune pre-trained neural networks in .NET");
        var threads = new Option<int>("--threads") { Description = "Threads for the kernels (default: WHETSTONE_THREADS or all cores)", Recursive = true };
        root.Options.Add(threads);

        root.Subcommands.Add(Commands.Quickstart(threads));
        root.Subcommands.Add(Commands.Train(threads));
        root.Subcommands.Add(Commands.Evaluate(threads));
        root.Subcommands.Add(Commands.Predict(threads));
        root.Subcommands.Add(Commands.Assets());
        root.Subcommands.Add(Commands.ModelsList());
        root.Subcommands.Add(Commands.Layers());
        root.Subcommands.Add(TuneCommand.Create(threads));
        root.Subcommands.Add(ExportCommand.Create(threads));
        root.Subcommands.Add(GenerateCommands.Generate(threads));
        root.Subcommands.Add(GenerateCommands.Chat(threads));
        root.Subcommands.Add(ServeCommand.Create(threads));
        root.Subcommands.Add(TokenizerCommands.Create());
        root.Subcommands.Add(DataCommands.Create());

        var info = new Command("info", "Show the engine's configuration: instruction sets, threads");
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
}
