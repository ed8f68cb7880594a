using System.CommandLine;
using Whetstone.Training.Data;

namespace Whetstone.Cli;

/// <summary><c>whet data</c>: datasets built from the asset cache.</summary>
internal static class DataCommands
{
    public static Command Create()
    {
        var cmd = new Command("data", "Build datasets from the asset cache");
        var bible = new Command("bible", "English–Spanish verse pairs (World English Bible × Reina-Valera 1909, SWORD modules), split by book, as train/validation/test files");
        var output = new Option<string>("--out") { Description = "Folder for train, validation and test files", Required = true };
        var format = new Option<string>("--format") { Description = "jsonl ({ref, source, target} per line) or tsv", DefaultValueFactory = _ => "jsonl" };
        var direction = new Option<string>("--direction") { Description = "en-es (English source) or es-en", DefaultValueFactory = _ => "en-es" };
        var english = new Option<string>("--english") { Description = "The English SWORD module (a .conf, a folder with mods.d/, or asset:NAME)", DefaultValueFactory = _ => "asset:bible_web" };
        var spanish = new Option<string>("--spanish") { Description = "The Spanish SWORD module", DefaultValueFactory = _ => "asset:bible_sparv" };
        foreach (var o in new Option[] { output, format, direction, english, spanish }) bible.Options.Add(o);
        bible.SetAction(r => Commands.Guard(r, null, () =>
        {
            var fmt = r.GetValue(format)!;
            var dir = r.GetValue(direction)!;
            if (fmt is not ("jsonl" or "tsv")) throw new ArgumentException($"--format must be jsonl or tsv (got '{fmt}').");
            if (dir is not ("en-es" or "es-en")) throw new ArgumentException($"--direction must be en-es or es-en (got '{dir}').");
            string Module(string spec) => Training.Assets.Resolve(spec, Directory.GetCurrentDirectory(), log: Console.Out);
            var result = BiblePairs.Align(Module(r.GetValue(english)!), Module(r.GetValue(spanish)!));
            var split = BiblePairs.Split(result.Pairs);
            var outDir = Path.GetFullPath(r.GetValue(output)!);
            Directory.CreateDirectory(outDir);
            bool flip = dir == "es-en";
            foreach (var (name, pairs) in new[] { ("train", split.Train), ("validation", split.Validation), ("test", split.Test) })
            {
                var path = Path.Combine(outDir, $"{name}.{fmt}");
                if (fmt == "jsonl") BiblePairs.WriteJsonl(path, pairs, flip); else BiblePairs.WriteTsv(path, pairs, flip);
            }
            Console.WriteLine($"{result.Pairs.Count:N0} verse pairs ({dir}): train {split.Train.Count:N0}, validation {split.Validation.Count:N0} ({string.Join(" ", BiblePairs.ValidationBooks)}), test {split.Test.Count:N0} ({string.Join(" ", BiblePairs.TestBooks)}) → {outDir}");
            Console.WriteLine($"dropped {result.Dropped:N0}: {result.OnlyInEnglish:N0} only in the English versification, {result.OnlyInSpanish:N0} only in the Spanish, "
                + $"{result.EmptyInEnglish + result.EmptyInSpanish + result.EmptyInBoth:N0} empty on a side, {result.InMisalignedRuns:N0} in {result.MisalignedRuns.Count} runs numbered differently, "
                + $"{result.LengthMismatch:N0} with one side over 2.5× the other's length");
            return 0;
        }));
        cmd.Subcommands.Add(bible);
        return cmd;
    }
}
