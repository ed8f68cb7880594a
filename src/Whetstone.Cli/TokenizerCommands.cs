using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Whetstone.Models.Tokenizers;

namespace Whetstone.Cli;

/// <summary><c>whet tokenizer train</c>: a byte-level BPE tokenizer from the user's own text, for pre-training from scratch.</summary>
internal static class TokenizerCommands
{
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "Tokenizers for decoder language models");
        var train = new Command("train", "Train a byte-level BPE tokenizer (GPT-2 / Llama-3 style) on text files; writes tokenizer.json + tokenizer_config.json");
        var inputs = new Argument<string[]>("inputs") { Description = ".txt files, folders of them (recursively), or asset:NAME", Arity = ArgumentArity.OneOrMore };
        var vocab = new Option<int>("--vocab-size") { Description = "Vocabulary size, special tokens and the 256 byte symbols included", DefaultValueFactory = _ => 8192 };
        var minFreq = new Option<int>("--min-frequency") { Description = "Stop merging when the most frequent pair occurs fewer times", DefaultValueFactory = _ => 2 };
        var output = new Option<string>("--out") { Description = "Folder to write (a model folder: config.json can sit beside)", Required = true };
        var special = new Option<string[]>("--special") { Description = "A special token (repeatable); they get ids 0, 1, … in this order", AllowMultipleArgumentsPerToken = false };
        var bos = new Option<string?>("--bos") { Description = "The BOS token (one of --special)" };
        var eos = new Option<string?>("--eos") { Description = "The EOS token (one of --special)" };
        var pad = new Option<string?>("--pad") { Description = "The padding token (one of --special)" };
        var maxLength = new Option<int?>("--max-length") { Description = "model_max_length written to tokenizer_config.json" };
        train.Arguments.Add(inputs);
        foreach (var o in new Option[] { vocab, minFreq, output, special, bos, eos, pad, maxLength }) train.Options.Add(o);
        train.SetAction(r => Commands.Guard(r, null, () =>
        {
            var specials = r.GetValue(special) ?? [];
            foreach (var (name, token) in new[] { ("--bos", r.GetValue(bos)), ("--eos", r.GetValue(eos)), ("--pad", r.GetValue(pad)) })
                if (token is not null && !specials.Contains(token))
                    throw new ArgumentException($"{name} '{token}' is not one of the --special tokens ({(specials.Length == 0 ? "none given" : string.Join(", ", specials))}).");
            var files = TextFiles(r.GetValue(inputs)!);
            long bytes = files.Sum(f => new FileInfo(f).Length);
            Console.WriteLine($"training a byte-level BPE of {r.GetValue(vocab):N0} tokens on {files.Count:N0} files ({bytes / 1e6:F1} MB)");
            var sw = Stopwatch.StartNew();
            var lastReport = TimeSpan.Zero;
            var tok = BpeTrainer.Train(Documents(files), new BpeTrainerOptions(r.GetValue(vocab), r.GetValue(minFreq), specials), p =>
            {
                if (p.Stage != BpeTrainerStage.Done && sw.Elapsed - lastReport < TimeSpan.FromSeconds(5)) return;
                lastReport = sw.Elapsed;
                Console.Error.WriteLine(p.Stage == BpeTrainerStage.CountingWords
                    ? $"  counting words: {p.Documents:N0} documents, {p.Words:N0} words, {p.DistinctWords:N0} distinct ({sw.Elapsed.TotalSeconds:F0} s)"
                    : $"  merges: {p.Merges:N0} / {p.MaxMerges:N0} ({sw.Elapsed.TotalSeconds:F0} s)");
            });
            var outDir = Path.GetFullPath(r.GetValue(output)!);
            tok.Save(outDir, r.GetValue(bos), r.GetValue(eos), r.GetValue(pad), r.GetValue(maxLength));
            Console.WriteLine($"{tok.VocabSize:N0} tokens ({tok.Merges.Count:N0} merges, {tok.SpecialTokens.Count} special) in {sw.Elapsed.TotalSeconds:F1} s → {outDir}");
            return 0;
        }));
        cmd.Subcommands.Add(train);
        return cmd;
    }

    /// <summary>Every .txt file the inputs name, in ordinal path order within each folder; a missing input is an error.</summary>
    private static List<string> TextFiles(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        foreach (var input in inputs)
        {
            var path = Training.Assets.Resolve(input, Directory.GetCurrentDirectory());
            if (File.Exists(path)) files.Add(path);
            else if (Directory.Exists(path))
            {
                var found = Directory.GetFiles(path, "*.txt", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
                if (found.Length == 0) throw new ArgumentException($"{input}: the folder {path} holds no .txt files.");
                files.AddRange(found);
            }
            else throw new FileNotFoundException($"{input}: no such file or folder ({path}).");
        }
        return files;
    }

    /// <summary>Each file as one document; a file over 16 MB in pieces that end at a line break, so no giant string is held.</summary>
    private static IEnumerable<string> Documents(IEnumerable<string> files)
    {
        const int piece = 1 << 20;
        foreach (var file in files)
        {
            if (new FileInfo(file).Length <= 16 << 20) { yield return File.ReadAllText(file, Encoding.UTF8); continue; }
            using var reader = new StreamReader(file, Encoding.UTF8);
            var sb = new StringBuilder();
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                sb.Append(line).Append('\n');
                if (sb.Length >= piece) { yield return sb.ToString(); sb.Clear(); }
            }
            if (sb.Length > 0) yield return sb.ToString();
        }
    }
}
