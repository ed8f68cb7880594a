using System.Text;
using System.Text.Json;

namespace Whetstone.Training.Data;

/// <summary>What language-model data needs from a tokenizer: text → ids without added special tokens, and the special ids.</summary>
public interface ILmTokenizer
{
    /// <summary>Ids of <paramref name="text"/>; special tokens written in the text (<c>&lt;|im_end|&gt;</c>) are single ids; no BOS/EOS added.</summary>
    IReadOnlyList<int> Encode(string text);
    /// <summary>The beginning-of-sequence id, or null.</summary>
    int? BosId { get; }
    /// <summary>The end-of-sequence id, or null.</summary>
    int? EosId { get; }
    /// <summary>Whether a plain (non-chat) sequence starts with BOS (tokenizer_config's add_bos_token).</summary>
    bool AddBos { get; }
}

/// <summary>One turn of a conversation.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>What chat data needs from a chat template: the rendered conversation and where its assistant turns are.</summary>
public interface IChatFormat
{
    /// <summary>The conversation as the model sees it; with <paramref name="addGenerationPrompt"/>, ending where the assistant's reply starts.</summary>
    string Render(IReadOnlyList<ChatTurn> messages, bool addGenerationPrompt);
    /// <summary>Character spans [Start, End) of <see cref="Render"/>(messages, false) that are assistant output (content and end-of-turn marker).</summary>
    IReadOnlyList<(int Start, int End)> AssistantSpans(IReadOnlyList<ChatTurn> messages);
}

/// <summary>One training sequence: token ids and, per position, whether the token is a target (predicted from the one before).</summary>
public sealed record LmExample(int[] Ids, bool[] Target, string Source)
{
    public int TargetCount => Target.Count(t => t);
}

/// <summary>A language-modelling dataset: sequences, and the rows that were skipped (file:line, why).</summary>
public sealed record LmDataset(IReadOnlyList<LmExample> Examples, string Format, IReadOnlyList<string> Skipped, int Truncated)
{
    public long Tokens => Examples.Sum(e => (long)e.Ids.Length);
    public long TargetTokens => Examples.Sum(e => (long)e.TargetCount);
}

/// <summary>How to read language-modelling data.</summary>
public sealed record LmReadOptions
{
    /// <summary>auto (by extension and the first JSON row's fields), text, instruction or chat.</summary>
    public string Format { get; init; } = "auto";
    /// <summary>Plain text is packed into blocks of this many tokens.</summary>
    public int BlockSize { get; init; } = 256;
    /// <summary>Instruction and chat rows longer than this are cut to it (and counted).</summary>
    public int MaxLength { get; init; } = 512;
    public string PromptField { get; init; } = "prompt";
    public string CompletionField { get; init; } = "completion";
    /// <summary>Prompt/completion rows: the text the model reads before the completion, with <c>{prompt}</c> where the prompt field goes (null: the prompt as it is).</summary>
    public string? PromptTemplate { get; init; }
    public string MessagesField { get; init; } = "messages";
    /// <summary>error: the first bad row stops the run with its file and line; skip: bad rows are counted and reported.</summary>
    public string BadRows { get; init; } = "error";
}

/// <summary>
/// Reads language-modelling data into token sequences with their loss masks:
/// <list type="bullet">
/// <item><b>text</b> (.txt files, a folder of them): documents tokenized, each ended by EOS, concatenated and packed
/// into blocks of <see cref="LmReadOptions.BlockSize"/>; every token is a target.</item>
/// <item><b>instruction</b> (JSONL with prompt/completion): with a chat format, a user turn and an assistant turn;
/// without, prompt + completion + EOS; the completion (and EOS) are the targets.</item>
/// <item><b>chat</b> (JSONL with <c>messages</c>: role/content, the OpenAI / Hugging Face format): rendered by the chat
/// template; the targets are the assistant turns as the template delimits them (content and end-of-turn token).</item>
/// </list>
/// Rows that are malformed, or have no target token left after truncation, are an error naming file and line, or
/// skipped and counted with <c>bad_rows: skip</c>.
/// </summary>
public static class LmFiles
{
    public static LmDataset Read(string path, ILmTokenizer tokenizer, LmReadOptions options, IChatFormat? chat = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BadRows is not ("error" or "skip")) throw new ArgumentException($"bad_rows must be error or skip (got '{options.BadRows}').");
        if (options.BlockSize < 2 || options.MaxLength < 2) throw new ArgumentException("block_size and max_length must be at least 2 tokens.");
        var files = Directory.Exists(path)
            ? Directory.GetFiles(path, "*", SearchOption.AllDirectories).Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).ToArray()
            : File.Exists(path) ? [path] : throw new DataException($"Language-model data '{path}' does not exist.");
        if (files.Length == 0) throw new DataException($"'{path}' holds no .txt or .jsonl files.");
        var format = options.Format == "auto" ? Detect(files[0]) : options.Format;
        if (format is not ("text" or "instruction" or "chat"))
            throw new DataException($"data.format for language modelling must be auto, text, instruction or chat (got '{format}').");
        if (format == "chat" && chat is null) throw new DataException($"{path} holds conversations (messages): they are rendered by a chat template, so train them with task: chat.");
        return format == "text" ? ReadText(files, tokenizer, options) : ReadRows(files, format, tokenizer, options, chat);
    }

    /// <summary>text for .txt; for .jsonl the first row's fields: messages → chat, prompt/completion → instruction.</summary>
    public static string Detect(string file)
    {
        if (file.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)) return "text";
        foreach (var line in File.ReadLines(file))
        {
            if (line.Trim().Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("messages", out _)) return "chat";
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("prompt", out _)) return "instruction";
            }
            catch (JsonException e) { throw new DataException($"{file}:1: not JSON ({e.Message}); set data.format."); }
            break;
        }
        throw new DataException($"{file}: cannot tell the format from the first row (neither 'messages' nor 'prompt'); set data.format to text, instruction or chat.");
    }

    private static LmDataset ReadText(string[] files, ILmTokenizer tok, LmReadOptions o)
    {
        var stream = new List<int>();
        foreach (var f in files)
        {
            if (tok.AddBos && tok.BosId is int bos) stream.Add(bos);
            stream.AddRange(tok.Encode(File.ReadAllText(f, Encoding.UTF8)));
            if (tok.EosId is int eos) stream.Add(eos);
        }
        var examples = new List<LmExample>();
        for (int start = 0; start + 1 < stream.Count; start += o.BlockSize)
        {
            int n = Math.Min(o.BlockSize, stream.Count - start);
            if (n < 2) break;
            var ids = stream.GetRange(start, n).ToArray();
            var target = Enumerable.Repeat(true, n).ToArray();
            examples.Add(new LmExample(ids, target, $"{Path.GetFileName(files[0])}{(files.Length > 1 ? $" (+{files.Length - 1} files)" : "")} block {examples.Count}"));
        }
        if (examples.Count == 0) throw new DataException($"{files[0]}: no text to train on.");
        return new LmDataset(examples, "text", [], 0);
    }

    private static LmDataset ReadRows(string[] files, string format, ILmTokenizer tok, LmReadOptions o, IChatFormat? chat)
    {
        var examples = new List<LmExample>();
        var skipped = new List<string>();
        int truncated = 0;
        foreach (var f in files)
        {
            int lineNo = 0;
            foreach (var line in File.ReadLines(f))
            {
                lineNo++;
                if (line.Trim().Length == 0) continue;
                string where = $"{f}:{lineNo}";
                try
                {
                    var turns = Parse(line, format, o, where);
                    var ex = chat is not null ? FromChat(turns, tok, chat, where) : FromInstruction(turns, tok, where);
                    if (ex.Ids.Length > o.MaxLength)
                    {
                        ex = ex with { Ids = ex.Ids[..o.MaxLength], Target = ex.Target[..o.MaxLength] };
                        truncated++;
                    }
                    if (ex.TargetCount == 0)
                        throw new DataException($"{where}: no target tokens{(truncated > 0 && ex.Ids.Length == o.MaxLength ? $" within the first {o.MaxLength} tokens (max_length)" : "")}: the row would train nothing.");
                    examples.Add(ex);
                }
                catch (DataException e) when (o.BadRows == "skip")
                {
                    skipped.Add(e.Message);
                }
            }
        }
        if (examples.Count == 0) throw new DataException($"{files[0]}: no usable rows{(skipped.Count > 0 ? $" ({skipped.Count} skipped; first: {skipped[0]})" : "")}.");
        return new LmDataset(examples, format, skipped, truncated);
    }

    /// <summary>A row as turns: an instruction row is one user turn and one assistant turn.</summary>
    private static List<ChatTurn> Parse(string line, string format, LmReadOptions o, string where)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new DataException($"{where}: not valid JSON ({e.Message})."); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DataException($"{where}: expected a JSON object per line.");
            string Str(JsonElement obj, string field)
            {
                if (!obj.TryGetProperty(field, out var v)) throw new DataException($"{where}: missing \"{field}\".");
                return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new DataException($"{where}: \"{field}\" must be a string, found {v.ValueKind}.");
            }
            if (format == "instruction")
            {
                var prompt = Str(root, o.PromptField);
                return [new("user", o.PromptTemplate is null ? prompt : o.PromptTemplate.Replace("{prompt}", prompt, StringComparison.Ordinal)), new("assistant", Str(root, o.CompletionField))];
            }
            if (!root.TryGetProperty(o.MessagesField, out var msgs) || msgs.ValueKind != JsonValueKind.Array)
                throw new DataException($"{where}: expected \"{o.MessagesField}\": [{{\"role\": …, \"content\": …}}, …].");
            var turns = new List<ChatTurn>();
            int i = 0;
            foreach (var m in msgs.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object) throw new DataException($"{where}: message {i} is not an object.");
                var role = Str(m, "role");
                if (role is not ("system" or "user" or "assistant"))
                    throw new DataException($"{where}: message {i} has role '{role}'; expected system, user or assistant.");
                turns.Add(new ChatTurn(role, Str(m, "content")));
                i++;
            }
            if (!turns.Any(t => t.Role == "assistant")) throw new DataException($"{where}: no assistant message: the row would train nothing.");
            return turns;
        }
    }

    /// <summary>Prompt then completion + EOS, the completion (and EOS) as targets; BOS first when the tokenizer adds it.</summary>
    private static LmExample FromInstruction(List<ChatTurn> turns, ILmTokenizer tok, string where)
    {
        if (turns.Count != 2 || turns[0].Role != "user" || turns[1].Role != "assistant")
            throw new DataException($"{where}: without a chat template only prompt/completion rows can be read; chat rows need task: chat.");
        var ids = new List<int>();
        var target = new List<bool>();
        void Add(IEnumerable<int> part, bool t) { foreach (var id in part) { ids.Add(id); target.Add(t); } }
        if (tok.AddBos && tok.BosId is int bos) Add([bos], false);
        Add(tok.Encode(turns[0].Content), false);
        Add(tok.Encode(turns[1].Content), true);
        if (tok.EosId is int eos) Add([eos], true);
        return new LmExample([.. ids], [.. target], where);
    }

    /// <summary>
    /// The rendered conversation, encoded segment by segment so that each assistant span is its own run of tokens
    /// (the template's turn markers are special tokens, so the segments are where tokenization splits anyway).
    /// </summary>
    private static LmExample FromChat(List<ChatTurn> turns, ILmTokenizer tok, IChatFormat chat, string where)
    {
        string text;
        IReadOnlyList<(int Start, int End)> spans;
        try
        {
            text = chat.Render(turns, addGenerationPrompt: false);
            spans = chat.AssistantSpans(turns);
        }
        catch (Exception e) when (e is not DataException && e.GetType().Name.Contains("Template", StringComparison.Ordinal))
        {
            throw new DataException($"{where}: the chat template refused the conversation: {e.Message}");
        }
        if (spans.Count == 0) throw new DataException($"{where}: the chat template marks no assistant text in the conversation.");
        if (spans.Count == 1 && spans[0].Start == 0 && spans[0].End == text.Length)
            throw new DataException($"{where}: the chat template marks the whole conversation as assistant text; the loss mask would be all ones.");
        var ids = new List<int>();
        var target = new List<bool>();
        int at = 0;
        void Add(string part, bool t)
        {
            if (part.Length == 0) return;
            foreach (var id in tok.Encode(part)) { ids.Add(id); target.Add(t); }
        }
        foreach (var (s, e) in spans)
        {
            if (s < at || e > text.Length || e < s) throw new DataException($"{where}: the template's assistant spans are out of order or outside the text.");
            Add(text[at..s], false);
            Add(text[s..e], true);
            at = e;
        }
        Add(text[at..], false);
        return new LmExample([.. ids], [.. target], where);
    }
}
