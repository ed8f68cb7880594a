using System.Text.Json;
using Whetstone.Models.Tokenizers.ChatTemplates;

namespace Whetstone.Models.Tests.Tokenizers;

/// <summary>
/// Chat templates of real checkpoints (ChatML, Qwen2/2.5, Llama-2/3/3.1/3.2, Mistral v0.1/v0.3, Zephyr, Gemma, Phi-3)
/// rendered natively and compared with Python's jinja2 as transformers runs it (tests/fixtures/chat_templates/generate.py).
/// </summary>
public class ChatTemplateTests
{
    public static TheoryData<string> ChatCaseIds() => [.. ChatTemplateFixture.ChatCases.Select(ChatTemplateFixture.CaseId)];

    public static TheoryData<string> SpanCaseIds() =>
        [.. ChatTemplateFixture.ChatCases.Where(c => c.TryGetProperty("spans", out _) || c.TryGetProperty("span_error", out _)).Select(ChatTemplateFixture.CaseId)];

    private static Dictionary<string, object?> Extra(JsonElement c) => ChatTemplateFixture.Variables(c.GetProperty("extra"));

    [Theory]
    [MemberData(nameof(ChatCaseIds))]
    public void Renders_as_jinja2_does(string id)
    {
        var c = ChatTemplateFixture.ChatCase(id);
        var template = ChatTemplateFixture.Template(c.GetProperty("template").GetString()!);
        var messages = ChatTemplateFixture.Messages(c.GetProperty("messages"));
        bool gen = c.GetProperty("add_generation_prompt").GetBoolean();
        if (c.TryGetProperty("expected", out var expected))
            Assert.Equal(expected.GetString(), template.Render(messages, gen, Extra(c)));
        else if (c.TryGetProperty("error_kind", out _))
        {
            // jinja2 failed on its own (a TypeError, an UndefinedError): ours must fail too, with a location
            var e = Assert.ThrowsAny<ChatTemplateException>(() => template.Render(messages, gen, Extra(c)));
            Assert.IsNotType<ChatTemplateRaisedException>(e);
            Assert.True(e.Line > 0 && e.Column > 0, e.Message);
        }
        else
        {
            var e = Assert.Throws<ChatTemplateRaisedException>(() => template.Render(messages, gen, Extra(c)));
            Assert.Equal(c.GetProperty("error").GetString(), e.Reason);
            Assert.True(e.Line > 0 && e.Column > 0);
        }
    }

    [Theory]
    [MemberData(nameof(SpanCaseIds))]
    public void Assistant_spans_match_the_reference(string id)
    {
        var c = ChatTemplateFixture.ChatCase(id);
        var template = ChatTemplateFixture.Template(c.GetProperty("template").GetString()!);
        var messages = ChatTemplateFixture.Messages(c.GetProperty("messages"));
        if (c.TryGetProperty("span_error", out var spanError))
        {
            var e = Assert.ThrowsAny<ChatTemplateException>(() => template.RenderWithAssistantSpans(messages, Extra(c)));
            if (spanError.GetString() == "not prefix-stable") Assert.Contains("not prefix-stable", e.Message, StringComparison.Ordinal);
            return;
        }
        var r = template.RenderWithAssistantSpans(messages, Extra(c));
        Assert.Equal(c.GetProperty("expected").GetString(), r.Text);
        var want = c.GetProperty("spans").EnumerateArray().Select(s => s.GetString()!).ToList();
        Assert.Equal(want, r.AssistantSpans.Select(s => r.Text[s.Start..s.End]).ToList());
        Assert.Equal(messages.Count(m => m.Role == "assistant"), r.AssistantSpans.Count);
        for (int i = 1; i < r.AssistantSpans.Count; i++) Assert.True(r.AssistantSpans[i].Start >= r.AssistantSpans[i - 1].End);
    }

    private static readonly List<ChatMessage> TwoTurns =
    [
        new("user", "What is the capital of France?"), new("assistant", "Paris."),
        new("user", "And of Italy?"), new("assistant", "Rome."),
    ];

    private static List<string> SpanTexts(ChatRendering r) => [.. r.AssistantSpans.Select(s => r.Text[s.Start..s.End])];

    [Fact]
    public void Spans_hold_the_content_and_the_end_of_turn_marker_but_not_the_next_header()
    {
        Assert.Equal(["Paris.<|im_end|>\n", "Rome.<|im_end|>\n"], SpanTexts(ChatTemplateFixture.Template("qwen2").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal(["Paris.<|eot_id|>", "Rome.<|eot_id|>"], SpanTexts(ChatTemplateFixture.Template("llama-3").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal(["Paris.<|eot_id|>", "Rome.<|eot_id|>"], SpanTexts(ChatTemplateFixture.Template("llama-3.1").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal([" Paris. </s>", " Rome. </s>"], SpanTexts(ChatTemplateFixture.Template("llama-2").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal(["Paris.</s> ", "Rome.</s> "], SpanTexts(ChatTemplateFixture.Template("mistral-v0.1").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal([" Paris.</s>", " Rome.</s>"], SpanTexts(ChatTemplateFixture.Template("mistral-v0.3").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal(["Paris.</s>\n", "Rome.</s>\n"], SpanTexts(ChatTemplateFixture.Template("zephyr").RenderWithAssistantSpans(TwoTurns)));
        Assert.Equal(["Paris.<end_of_turn>\n", "Rome.<end_of_turn>\n"], SpanTexts(ChatTemplateFixture.Template("gemma").RenderWithAssistantSpans(TwoTurns)));
    }

    [Fact]
    public void Prompt_completion_is_one_user_and_one_assistant_turn()
    {
        var t = ChatTemplateFixture.Template("chatml");
        var r = t.RenderPromptCompletion("2+2?", "4");
        Assert.Equal("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n", r.Text);
        Assert.Equal(["4<|im_end|>\n"], SpanTexts(r));
        var l3 = ChatTemplateFixture.Template("llama-3").RenderPromptCompletion("2+2?", "4");
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>", l3.Text);
        Assert.Equal(["4<|eot_id|>"], SpanTexts(l3));
    }

    [Fact]
    public void A_template_that_moves_the_system_message_is_not_prefix_stable()
    {
        // Mistral v0.3 puts the system message into the last user turn, so earlier turns render differently.
        var t = ChatTemplateFixture.Template("mistral-v0.3");
        var e = Assert.Throws<ChatTemplateException>(() => t.AssistantSpans([new("system", "Be brief."), .. TwoTurns]));
        Assert.Contains("not prefix-stable", e.Message, StringComparison.Ordinal);
        Assert.Contains("message 2", e.Message, StringComparison.Ordinal);
        // Phi-3 ends a rendering without a generation prompt with eos_token, which the next turn does not follow.
        var phi = ChatTemplateFixture.Template("phi-3");
        Assert.Throws<ChatTemplateException>(() => phi.AssistantSpans(TwoTurns));
        Assert.Equal(["Paris.<|end|>\n<|endoftext|>"], SpanTexts(phi.RenderWithAssistantSpans(TwoTurns.GetRange(0, 2))));
    }

    [Fact]
    public void Role_alternation_errors_are_typed_with_the_templates_message()
    {
        var t = ChatTemplateFixture.Template("mistral-v0.1");
        var e = Assert.Throws<ChatTemplateRaisedException>(() => t.Render([new("user", "a"), new("user", "b")], true));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Reason);
        Assert.Equal(1, e.Line);
        Assert.Contains("line 1 column", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Strftime_now_uses_the_injected_clock()
    {
        var t = ChatTemplateFixture.Template("llama-3.2");
        t.Clock = () => new DateTime(2031, 12, 25);
        Assert.Contains("Today Date: 25 Dec 2031\n", t.Render([new("user", "hi")], true), StringComparison.Ordinal);
        Assert.Contains("Today Date: 01 Jan 2030\n", t.Render([new("user", "hi")], true, new Dictionary<string, object?> { ["date_string"] = "01 Jan 2030" }), StringComparison.Ordinal);
    }

    [Fact]
    public void Special_tokens_come_from_the_config_in_string_or_object_form()
    {
        const string config = """
            {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
             "additional_special_tokens": ["<x>", {"content": "<y>"}],
             "chat_template": "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ additional_special_tokens | join(',') }}"}
            """;
        var t = ChatTemplate.FromTokenizerConfig(config);
        Assert.False(t.IsBuiltIn);
        Assert.Equal("<s>|</s>|False|<x>,<y>", t.Render([], false));
    }

    [Fact]
    public void A_list_of_templates_gives_default_or_the_named_one()
    {
        const string config = """
            {"eos_token": "</s>", "chat_template": [
              {"name": "default", "template": "D{{ messages | length }}"},
              {"name": "tool_use", "template": "T{{ tools | length }}"},
              {"name": "rag", "template": "R{{ documents is none }}"}]}
            """;
        var msgs = new List<ChatMessage> { new("user", "x") };
        Assert.Equal("D1", ChatTemplate.FromTokenizerConfig(config).Render(msgs, false));
        Assert.Equal("default", ChatTemplate.FromTokenizerConfig(config).Name);
        var tool = ChatTemplate.FromTokenizerConfig(config, toolUse: true);
        Assert.Equal("tool_use", tool.Name);
        Assert.Equal("T2", tool.Render(msgs, false, new Dictionary<string, object?> { ["tools"] = new List<object?> { "a", "b" } }));
        Assert.Equal("RTrue", ChatTemplate.FromTokenizerConfig(config, name: "rag").Render(msgs, false));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(config, name: "nope"));
        Assert.Contains("default, tool_use, rag", e.Message, StringComparison.Ordinal);
        const string noDefault = """{"chat_template": [{"name": "a", "template": "x"}, {"name": "b", "template": "y"}]}""";
        Assert.Contains("none named 'default'", Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(noDefault)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_without_a_template_gets_the_built_in_chatml()
    {
        var t = ChatTemplate.FromTokenizerConfig("""{"eos_token": "<|endoftext|>"}""");
        Assert.True(t.IsBuiltIn);
        Assert.Equal(ChatTemplate.ChatMLSource, t.Source);
        var fixture = ChatTemplateFixture.ChatCase("chatml/system-two-turns/gen");
        Assert.Equal(fixture.GetProperty("expected").GetString(), t.Render(ChatTemplateFixture.Messages(fixture.GetProperty("messages")), true));
        Assert.True(ChatTemplate.ChatML().IsBuiltIn);
    }

    [Fact]
    public void A_directory_prefers_chat_template_jinja()
    {
        string dir = Path.Combine(Path.GetTempPath(), "whet-chat-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"bos_token": "<s>", "chat_template": "config"}""");
            Assert.Equal("config", ChatTemplate.FromDirectory(dir).Render([], false));
            File.WriteAllText(Path.Combine(dir, "chat_template.jinja"), "{{ bos_token }}jinja");
            Assert.Equal("<s>jinja", ChatTemplate.FromDirectory(dir).Render([], false));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Message_extra_fields_and_null_content_reach_the_template()
    {
        var t = ChatTemplate.Parse("{% for m in messages %}{{ m.role }}:{{ m.content }}:{{ m.name | default('-') }}:{{ m.tool_calls[0].function.name if m.tool_calls else '' }};{% endfor %}");
        var call = new Dictionary<string, object?> { ["function"] = new Dictionary<string, object?> { ["name"] = "f", ["arguments"] = new Dictionary<string, object?> { ["x"] = 1 } } };
        string s = t.Render([new("user", "q") { Extra = new Dictionary<string, object?> { ["name"] = "ann" } },
            new("assistant", null) { Extra = new Dictionary<string, object?> { ["tool_calls"] = new List<object?> { call } } }], false);
        Assert.Equal("user:q:ann:;assistant:None:-:f;", s);

        // JsonNode values, and a content list of parts replacing the text
        var parts = System.Text.Json.Nodes.JsonNode.Parse("""[{"type": "image"}, {"type": "text", "text": "what is it?"}]""");
        var multimodal = ChatTemplate.Parse("{% for p in messages[0].content %}{{ '<img>' if p.type == 'image' else p.text }}{% endfor %}|{{ messages[0].n + 1 }}");
        Assert.Equal("<img>what is it?|3", multimodal.Render([new("user", null) { Extra = new Dictionary<string, object?> { ["content"] = parts, ["n"] = 2UL } }], false));
    }

    [Fact]
    public void Malformed_tokenizer_configs_are_clear_errors()
    {
        Assert.Contains("not valid JSON", Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("{")).Message, StringComparison.Ordinal);
        Assert.Contains("string or a list", Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("""{"chat_template": 5}""")).Message, StringComparison.Ordinal);
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("""{"chat_template": "{% for m in messages %}\n{{ m.content }"}"""));
        Assert.Equal(2, e.Line);
    }
}
