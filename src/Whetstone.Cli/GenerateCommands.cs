using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Tokenizers;
using Whetstone.Models.Tokenizers.ChatTemplates;
using Whetstone.Models.Transformers;
using Whetstone.Training.Runs;
using Whetstone.Training.Tasks;

namespace Whetstone.Cli;

/// <summary>
/// <c>whet generate</c> and <c>whet chat</c>: text from a causal-lm / chat bundle (or a run folder, or a raw Hugging Face
/// decoder folder), streamed as it is generated, with the KV cache.
/// </summary>
internal static class GenerateCommands
{
    /// <summary>The sampling options both commands take.</summary>
    private sealed class SamplingOptions
    {
        public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { Description = "Tokens to generate at most", DefaultValueFactory = _ => 128 };
        public Option<float> Temperature { get; } = new("--temperature") { Description = "Sampling temperature; 0 = greedy (default)", DefaultValueFactory = _ => 0f };
        public Option<int> TopK { get; } = new("--top-k") { Description = "Sample from the k most likely tokens (0 = all)" };
        public Option<float> TopP { get; } = new("--top-p") { Description = "Sample from the smallest set of tokens whose probability reaches p", DefaultValueFactory = _ => 1f };
        public Option<float> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalty for tokens already present (1 = none)", DefaultValueFactory = _ => 1f };
        public Option<ulong> Seed { get; } = new("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => 0UL };
        public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when the output ends with this string (repeatable)", AllowMultipleArgumentsPerToken = false };

        public void AddTo(Command cmd)
        {
            foreach (var o in new Option[] { MaxNewTokens, Temperature, TopK, TopP, RepetitionPenalty, Seed, Stop }) cmd.Options.Add(o);
        }

        public GenerationOptions Read(ParseResult r, IReadOnlyList<int> eos)
        {
            float t = r.GetValue(Temperature);
            if (t < 0) throw new ArgumentException($"--temperature must be ≥ 0 (0 = greedy); got {t}.");
            var o = new GenerationOptions
            {
                MaxNewTokens = r.GetValue(MaxNewTokens), DoSample = t > 0, Temperature = t > 0 ? t : 1, TopK = r.GetValue(TopK), TopP = r.GetValue(TopP),
                RepetitionPenalty = r.GetValue(RepetitionPenalty), Seed = r.GetValue(Seed), EosTokenIds = eos,
            };
            o.Validate();
            return o;
        }
    }

    /// <summary>A decoder to generate with: a bundle's, or a raw folder's (tokenizer, template and stop ids from its files).</summary>
    internal sealed record Generator(CausalLm Model, DecoderTokenizer Tokenizer, ChatTemplate? Template, IReadOnlyList<int> StopIds, string Path);

    internal static Generator Open(string path, TextWriter log)
    {
        if (Bundle.InfoPath(path) is not null)
        {
            var b = LmBundle.Load(path);
            return new Generator(b.Model, b.Tokenizer, b.Template ?? ChatTemplate.FromDirectory(b.Path), b.StopIds, b.Path);
        }
        var (model, report) = HfModel.LoadCausalLm(path);
        log.WriteLine(report.ToString());
        var tok = DecoderTokenizer.Load(report.Folder);
        return new Generator(model, tok, ChatTemplate.FromDirectory(report.Folder), tok.EosIds.Count > 0 ? tok.EosIds : tok.EosId is int e ? [e] : [], report.Folder);
    }

    /// <summary>
    /// Generates one reply to <paramref name="prompt"/> ids, passing text to <paramref name="onText"/> as soon as it is
    /// whole characters that cannot still become a stop string; stops at a stop id, a stop string (cut from the output)
    /// or the token limit. Returns the text, why it ended and the tokens generated.
    /// </summary>
    internal static (string Text, FinishReason Finish, int Tokens) Stream(Generator g, int[] prompt, GenerationOptions options, IReadOnlyList<string> stops,
        Action<string> onText, CancellationToken cancel = default)
    {
        var decoder = g.Tokenizer.CreateIncrementalDecoder(skipSpecialTokens: true);
        var text = new StringBuilder();
        int sent = 0, tokens = 0;
        int holdBack = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;   // text that may still become a stop string
        bool hit = false;
        void Send(bool final)
        {
            int upTo = final ? text.Length : Math.Max(sent, text.Length - holdBack);
            if (upTo > sent) { onText(text.ToString(sent, upTo - sent)); sent = upTo; }
        }
        var rows = TextGeneration.Generate(g.Model, [prompt], options,
            onToken: (_, id) => { tokens++; text.Append(decoder.Add(id)); },
            stop: (_, _) =>
            {
                foreach (var s in stops)
                {
                    int at = text.ToString().IndexOf(s, StringComparison.Ordinal);
                    if (at >= 0) { hit = true; text.Length = at; break; }
                }
                if (!hit) Send(final: false);
                return hit;
            }, cancel: cancel);
        if (!hit) text.Append(decoder.Flush());
        Send(final: true);
        return (text.ToString(), rows[0].Finish, tokens);
    }

    /// <summary><see cref="Stream(Generator, int[], GenerationOptions, IReadOnlyList{string}, Action{string}, CancellationToken)"/> written to <paramref name="output"/>.</summary>
    private static (string Text, FinishReason Finish) Stream(Generator g, int[] prompt, GenerationOptions options, IReadOnlyList<string> stops, TextWriter output)
    {
        var (text, finish, _) = Stream(g, prompt, options, stops, piece => { output.Write(piece); output.Flush(); });
        return (text, finish);
    }

    public static Command Generate(Option<int> threads)
    {
        var cmd = new Command("generate", "Continue a prompt with a decoder: a causal-lm or chat bundle, a run folder or a Hugging Face decoder folder (streamed)");
        var model = new Argument<string>("model") { Description = "A run folder, a causal-lm/chat bundle, or a Hugging Face decoder folder" };
        var prompt = new Argument<string>("prompt") { Description = "The text to continue (with --chat: a user message)" };
        var chat = new Option<bool>("--chat") { Description = "Send the prompt as one user turn through the model's chat template" };
        var system = new Option<string?>("--system") { Description = "With --chat: a system message first" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (text, tokens, finish_reason) instead of streaming" };
        var s = new SamplingOptions();
        cmd.Arguments.Add(model);
        cmd.Arguments.Add(prompt);
        cmd.Options.Add(chat);
        cmd.Options.Add(system);
        cmd.Options.Add(json);
        s.AddTo(cmd);
        cmd.SetAction(r => Commands.Guard(r, threads, () =>
        {
            var g = Open(r.GetValue(model)!, Console.Error);
            var options = s.Read(r, g.StopIds);
            int[] ids;
            if (r.GetValue(chat))
            {
                var messages = new List<ChatMessage>();
                if (r.GetValue(system) is { } sys) messages.Add(new ChatMessage("system", sys));
                messages.Add(new ChatMessage("user", r.GetValue(prompt)!));
                ids = g.Tokenizer.Encode(g.Template!.Render(messages, addGenerationPrompt: true), addSpecialTokens: false);
            }
            else ids = g.Tokenizer.Encode(r.GetValue(prompt)!, addSpecialTokens: true);
            var stops = r.GetValue(s.Stop) ?? [];
            if (r.GetValue(json))
            {
                var (text, finish) = Stream(g, ids, options, stops, TextWriter.Null);
                Console.WriteLine(new JsonObject { ["text"] = text, ["prompt_tokens"] = ids.Length, ["finish_reason"] = finish == FinishReason.Stop ? "stop" : "length" }.ToJsonString());
            }
            else
            {
                Stream(g, ids, options, stops, Console.Out);
                Console.WriteLine();
            }
            return 0;
        }));
        return cmd;
    }

    public static Command Chat(Option<int> threads)
    {
        var cmd = new Command("chat", "Talk with a chat bundle (or any decoder with a chat template) in the terminal: history kept, replies streamed; /reset, /exit");
        var model = new Argument<string>("model") { Description = "A run folder, a chat bundle, or a Hugging Face decoder folder" };
        var system = new Option<string?>("--system") { Description = "A system message at the start of the conversation" };
        var s = new SamplingOptions();
        cmd.Arguments.Add(model);
        cmd.Options.Add(system);
        s.AddTo(cmd);
        cmd.SetAction(r => Commands.Guard(r, threads, () =>
        {
            var g = Open(r.GetValue(model)!, Console.Error);
            var options = s.Read(r, g.StopIds);
            var stops = r.GetValue(s.Stop) ?? [];
            var history = new List<ChatMessage>();
            if (r.GetValue(system) is { } sys) history.Add(new ChatMessage("system", sys));
            if (g.Template!.IsBuiltIn) Console.Error.WriteLine("note: the model has no chat template; using ChatML");
            bool interactive = !Console.IsInputRedirected;
            while (true)
            {
                if (interactive) Console.Write("> ");
                var line = Console.ReadLine();
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset") { history.RemoveAll(m => m.Role != "system"); continue; }
                if (line.Trim().Length == 0) continue;
                history.Add(new ChatMessage("user", line));
                var ids = g.Tokenizer.Encode(g.Template.Render(history, addGenerationPrompt: true), addSpecialTokens: false);
                if (ids.Length >= g.Model.MaxPositions)
                {
                    Console.Error.WriteLine($"the conversation is {ids.Length} tokens, the model's limit is {g.Model.MaxPositions}; /reset to start again");
                    history.RemoveAt(history.Count - 1);
                    continue;
                }
                var (text, finish) = Stream(g, ids, options with { MaxNewTokens = Math.Min(options.MaxNewTokens, g.Model.MaxPositions - ids.Length) }, stops, Console.Out);
                Console.WriteLine(finish == FinishReason.Length ? " […]" : "");
                history.Add(new ChatMessage("assistant", text));
            }
            return 0;
        }));
        return cmd;
    }
}
