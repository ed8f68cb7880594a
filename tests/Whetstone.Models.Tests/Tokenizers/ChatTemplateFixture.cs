using System.Text.Json;
using System.Text.Json.Nodes;
using Whetstone.Models.Tokenizers.ChatTemplates;

namespace Whetstone.Models.Tests.Tokenizers;

/// <summary>
/// tests/fixtures/chat_templates/expected.json, written by generate.py: chat templates and small Jinja templates
/// rendered by Python's jinja2 the way transformers renders them (the independent reference).
/// </summary>
internal static class ChatTemplateFixture
{
    /// <summary>The fixed clock generate.py gives strftime_now.</summary>
    public static readonly DateTime Now = new(2026, 3, 7, 14, 5, 9);

    public static JsonElement Root { get; } = Load();

    private static JsonElement Load()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Whetstone.slnx"))) dir = dir.Parent;
        string path = Path.Combine(dir!.FullName, "tests", "fixtures", "chat_templates", "expected.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    public static string CaseId(JsonElement c) =>
        $"{c.GetProperty("template").GetString()}/{c.GetProperty("conversation").GetString()}/{(c.GetProperty("add_generation_prompt").GetBoolean() ? "gen" : "nogen")}";

    public static IEnumerable<JsonElement> ChatCases => Root.GetProperty("chat").EnumerateArray();

    public static JsonElement ChatCase(string id) => ChatCases.Single(c => CaseId(c) == id);

    public static JsonElement JinjaCase(string name) => Root.GetProperty("jinja").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    /// <summary>The tokenizer_config.json text a checkpoint with this template would carry.</summary>
    public static string TokenizerConfig(string template)
    {
        var t = Root.GetProperty("templates").GetProperty(template);
        var config = (JsonObject)JsonNode.Parse(t.GetProperty("tokenizer_config").GetRawText())!;
        config["chat_template"] = t.GetProperty("source").GetString();
        return config.ToJsonString();
    }

    public static ChatTemplate Template(string name)
    {
        var t = ChatTemplate.FromTokenizerConfig(TokenizerConfig(name));
        t.Clock = () => Now;
        return t;
    }

    public static List<ChatMessage> Messages(JsonElement messages)
    {
        var list = new List<ChatMessage>();
        foreach (var m in messages.EnumerateArray())
        {
            Dictionary<string, object?>? extra = null;
            foreach (var p in m.EnumerateObject())
            {
                if (p.Name is "role" or "content") continue;
                extra ??= [];
                extra[p.Name] = p.Value.Clone();
            }
            var content = m.GetProperty("content");
            list.Add(new ChatMessage(m.GetProperty("role").GetString()!, content.ValueKind == JsonValueKind.Null ? null : content.GetString()) { Extra = extra });
        }
        return list;
    }

    public static Dictionary<string, object?> Variables(JsonElement obj)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in obj.EnumerateObject()) d[p.Name] = p.Value.Clone();
        return d;
    }
}
