using System.Text.Json;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>One message of a conversation: a role ("system", "user", "assistant", "tool"…) and its text.</summary>
/// <param name="Role">The role the template switches on.</param>
/// <param name="Content">The text; null renders as Python's None (tool-call messages without text).</param>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>
    /// Further fields the template may read (tool_calls, tool_call_id, name, reasoning_content…): strings, numbers,
    /// bools, lists, dictionaries, JsonElements or JsonNodes. A "content" entry replaces <see cref="Content"/>, say
    /// with a list of parts ({"type": "text", "text": …}) for templates that take multimodal content.
    /// </summary>
    public IReadOnlyDictionary<string, object?>? Extra { get; init; }
}

/// <summary>A range [<see cref="Start"/>, <see cref="End"/>) of characters of a rendered conversation.</summary>
public readonly record struct CharSpan(int Start, int End)
{
    public int Length => End - Start;
}

/// <summary>A rendered conversation and the spans of it that the assistant turns produced (content and end-of-turn marker).</summary>
public sealed record ChatRendering(string Text, IReadOnlyList<CharSpan> AssistantSpans);

/// <summary>
/// A Hugging Face chat template (tokenizer_config.json's <c>chat_template</c>, Jinja2) rendered natively, as
/// transformers' <c>apply_chat_template</c> renders it: variables <c>messages</c>, <c>tools</c> and <c>documents</c>
/// (None unless given), <c>add_generation_prompt</c>, the special tokens (<c>bos_token</c>, <c>eos_token</c>…) and any
/// extra variables; <c>raise_exception</c> and <c>strftime_now</c> as globals; trim_blocks and lstrip_blocks on.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The template used when a checkpoint has none (transformers' former default, ChatML).</summary>
    public const string ChatMLSource =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly IReadOnlyList<JinjaStmt> _ast;
    private readonly int[] _lineStarts;
    private readonly Dictionary<string, object?> _specialTokens;

    /// <summary>The Jinja source.</summary>
    public string Source { get; }
    /// <summary>The name of the template when the checkpoint lists several ("default", "tool_use", "rag"…), else null.</summary>
    public string? Name { get; }
    /// <summary>True when the checkpoint has no template and <see cref="ChatMLSource"/> stands in (the caller should say so).</summary>
    public bool IsBuiltIn { get; }
    /// <summary>The special tokens the template sees as variables (bos_token, eos_token…; additional_special_tokens as a list).</summary>
    public IReadOnlyDictionary<string, object?> SpecialTokens => _specialTokens;
    /// <summary>The clock behind <c>strftime_now</c> (local time, as transformers); replace it for reproducible renderings.</summary>
    public Func<DateTime> Clock { get; set; } = () => DateTime.Now;

    private ChatTemplate(string source, string? name, bool builtIn, Dictionary<string, object?> specialTokens)
    {
        Source = source;
        Name = name;
        IsBuiltIn = builtIn;
        _specialTokens = specialTokens;
        _ast = JinjaParser.Parse(source, out _lineStarts);
    }

    /// <summary>Parses a template; <paramref name="specialTokens"/> maps names such as "bos_token" to their text.</summary>
    /// <exception cref="ChatTemplateException">The template does not parse (with line and column).</exception>
    public static ChatTemplate Parse(string source, IReadOnlyDictionary<string, string>? specialTokens = null, string? name = null)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (specialTokens is not null) foreach (var (k, v) in specialTokens) tokens[k] = v;
        return new ChatTemplate(source, name, false, tokens);
    }

    /// <summary>The built-in ChatML template (<see cref="IsBuiltIn"/> true).</summary>
    public static ChatTemplate ChatML(IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (specialTokens is not null) foreach (var (k, v) in specialTokens) tokens[k] = v;
        return new ChatTemplate(ChatMLSource, null, true, tokens);
    }

    /// <summary>
    /// The template of a tokenizer_config.json (its text): <c>chat_template</c> as a string, or as a list of
    /// {name, template} from which <paramref name="name"/> is taken, else "tool_use" when <paramref name="toolUse"/>
    /// and present, else "default". No <c>chat_template</c> gives the built-in ChatML (<see cref="IsBuiltIn"/>).
    /// Special tokens come from the same file (strings or {"content": …} objects).
    /// </summary>
    /// <exception cref="ChatTemplateException">The file or the chosen template is malformed, or the name is not there.</exception>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigJson, string? name = null, bool toolUse = false, string? templateOverride = null)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(tokenizerConfigJson, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new ChatTemplateException($"tokenizer_config.json is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ChatTemplateException("tokenizer_config.json is not a JSON object");
            var tokens = ReadSpecialTokens(root);
            if (templateOverride is not null) return new ChatTemplate(templateOverride, null, false, tokens);
            if (!root.TryGetProperty("chat_template", out var ct) || ct.ValueKind == JsonValueKind.Null)
            {
                if (name is not null) throw new ChatTemplateException($"tokenizer_config.json has no chat template named '{name}' (it has none)");
                return new ChatTemplate(ChatMLSource, null, true, tokens);
            }
            if (ct.ValueKind == JsonValueKind.String)
            {
                if (name is not null and not "default") throw new ChatTemplateException($"tokenizer_config.json has a single chat template, not one named '{name}'");
                return new ChatTemplate(ct.GetString()!, null, false, tokens);
            }
            if (ct.ValueKind != JsonValueKind.Array) throw new ChatTemplateException("chat_template must be a string or a list of {name, template}");
            var named = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var item in ct.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                    || !item.TryGetProperty("template", out var t) || t.ValueKind != JsonValueKind.String)
                    throw new ChatTemplateException("each entry of chat_template must be {\"name\": string, \"template\": string}");
                named[n.GetString()!] = t.GetString()!;
            }
            string chosen = name ?? (toolUse && named.ContainsKey("tool_use") ? "tool_use" : "default");
            if (!named.TryGetValue(chosen, out var source))
                throw new ChatTemplateException(name is null
                    ? $"the checkpoint has several chat templates ({string.Join(", ", named.Keys)}) and none named 'default': choose one by name"
                    : $"the checkpoint has no chat template named '{name}' (it has {string.Join(", ", named.Keys)})");
            return new ChatTemplate(source, chosen, false, tokens);
        }
    }

    /// <summary>
    /// A checkpoint folder's template: chat_template.jinja when present (newer transformers save it there), else
    /// tokenizer_config.json's, else chat_template.json's; the built-in ChatML when none has one.
    /// </summary>
    public static ChatTemplate FromDirectory(string directory, string? name = null, bool toolUse = false)
    {
        string configPath = Path.Combine(directory, "tokenizer_config.json");
        string config = File.Exists(configPath) ? File.ReadAllText(configPath) : "{}";
        string jinjaPath = Path.Combine(directory, "chat_template.jinja");
        if (File.Exists(jinjaPath) && name is null) return FromTokenizerConfig(config, templateOverride: File.ReadAllText(jinjaPath));
        var fromConfig = FromTokenizerConfig(config, name, toolUse);
        string jsonPath = Path.Combine(directory, "chat_template.json");
        if (fromConfig.IsBuiltIn && File.Exists(jsonPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(jsonPath));
            if (doc.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String)
                return FromTokenizerConfig(config, templateOverride: t.GetString());
        }
        return fromConfig;
    }

    private static Dictionary<string, object?> ReadSpecialTokens(JsonElement root)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var key in SpecialTokenKeys)
            if (root.TryGetProperty(key, out var v) && TokenText(v) is { } text) tokens[key] = text;
        if (root.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array)
        {
            var list = new List<object?>();
            foreach (var e in extra.EnumerateArray()) if (TokenText(e) is { } t) list.Add(t);
            tokens["additional_special_tokens"] = list;
        }
        return tokens;
    }

    private static string? TokenText(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };

    /// <summary>
    /// Renders a conversation. <paramref name="extra"/> adds or overrides variables (tools, documents, date_string,
    /// enable_thinking…); its values are strings, numbers, bools, lists, dictionaries or JsonElements.
    /// </summary>
    /// <exception cref="ChatTemplateRaisedException">The template refused the conversation (raise_exception).</exception>
    /// <exception cref="ChatTemplateException">Any other error of the template, with line and column.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(ToValue).ToList(),
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (k, v) in _specialTokens) vars[k] = v is List<object?> l ? new List<object?>(l) : v;
        if (extra is not null) foreach (var (k, v) in extra) vars[k] = JinjaValues.FromClr(v);
        return JinjaInterpreter.Render(_ast, _lineStarts, vars, Clock);
    }

    private static object? ToValue(ChatMessage m)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content };
        if (m.Extra is not null) foreach (var (k, v) in m.Extra) d[k] = JinjaValues.FromClr(v);
        return d;
    }

    /// <summary>
    /// The character spans of <see cref="Render"/>(messages, false) that belong to assistant turns, derived from the
    /// template itself: for each assistant message i, the conversation before it is rendered with the generation
    /// prompt, the conversation through it without; the first must be a prefix of the second, and the second of the
    /// whole, and the span is their difference — the assistant's content and its end-of-turn marker (&lt;|im_end|&gt;,
    /// &lt;|eot_id|&gt;, &lt;/s&gt; and whatever separator the template writes with it), never the next turn's header.
    /// </summary>
    /// <exception cref="ChatTemplateException">The template is not prefix-stable for this conversation (say, it moves
    /// the system message into the last user turn), or it fails on a prefix of it.</exception>
    public ChatRendering RenderWithAssistantSpans(IReadOnlyList<ChatMessage> messages, IReadOnlyDictionary<string, object?>? extra = null)
    {
        string full = Render(messages, false, extra);
        var spans = new List<CharSpan>();
        var list = messages as List<ChatMessage> ?? [.. messages];
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].Role != "assistant") continue;
            string prefix = Render(list.GetRange(0, i), true, extra);
            string through = Render(list.GetRange(0, i + 1), false, extra);
            if (!through.StartsWith(prefix, StringComparison.Ordinal))
                throw new ChatTemplateException(
                    $"the template is not prefix-stable: the conversation through message {i} (assistant) does not start with the " +
                    $"conversation before it plus the generation prompt; they part at character {CommonPrefix(prefix, through)}: " +
                    $"{Excerpt(prefix, CommonPrefix(prefix, through))} vs {Excerpt(through, CommonPrefix(prefix, through))}");
            if (!full.StartsWith(through, StringComparison.Ordinal))
                throw new ChatTemplateException(
                    $"the template is not prefix-stable: the whole conversation does not start with its rendering through message {i} " +
                    $"(assistant); they part at character {CommonPrefix(through, full)}: " +
                    $"{Excerpt(through, CommonPrefix(through, full))} vs {Excerpt(full, CommonPrefix(through, full))}");
            if (through.Length == prefix.Length)
                throw new ChatTemplateException($"the assistant message {i} renders as nothing: the template drops it");
            spans.Add(new CharSpan(prefix.Length, through.Length));
        }
        return new ChatRendering(full, spans);
    }

    /// <summary>The assistant spans alone (see <see cref="RenderWithAssistantSpans"/>).</summary>
    public IReadOnlyList<CharSpan> AssistantSpans(IReadOnlyList<ChatMessage> messages, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderWithAssistantSpans(messages, extra).AssistantSpans;

    /// <summary>A prompt/completion pair as one user and one assistant message; the span is the completion's turn.</summary>
    public ChatRendering RenderPromptCompletion(string prompt, string completion, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderWithAssistantSpans([new ChatMessage("user", prompt), new ChatMessage("assistant", completion)], extra);

    private static int CommonPrefix(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    private static string Excerpt(string s, int at) =>
        JsonSerializer.Serialize(at >= s.Length ? "" : s.Substring(at, Math.Min(40, s.Length - at)));
}
