using Whetstone.Models.Tokenizers.ChatTemplates;

namespace Whetstone.Models.Tests.Tokenizers;

/// <summary>The Jinja2 subset, one feature per case, against jinja2's renderings (expected.json "jinja"), plus errors and limits.</summary>
public class JinjaTests
{
    public static TheoryData<string> CaseNames() =>
        [.. ChatTemplateFixture.Root.GetProperty("jinja").EnumerateArray().Select(c => c.GetProperty("name").GetString()!)];

    private static string Render(string source, Dictionary<string, object?>? vars = null, JinjaLimits? limits = null) =>
        JinjaInterpreter.RenderSource(source, vars ?? [], () => ChatTemplateFixture.Now, limits);

    /// <summary>Where our wording differs from jinja2's, the fragment our message must hold instead.</summary>
    private static readonly Dictionary<string, string> OurWording = new(StringComparer.Ordinal)
    {
        ["error-unclosed-for"] = "the 'for' tag at line 1 column 1 was never closed (expected '{% endfor %}')",
        ["error-unknown-tag"] = "unknown tag 'frob'",
    };

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Renders_as_jinja2_does(string name)
    {
        var c = ChatTemplateFixture.JinjaCase(name);
        string source = c.GetProperty("template").GetString()!;
        var vars = ChatTemplateFixture.Variables(c.GetProperty("context"));
        if (c.TryGetProperty("expected", out var expected))
        {
            Assert.Equal(expected.GetString(), Render(source, vars));
            return;
        }
        var e = Assert.ThrowsAny<ChatTemplateException>(() => Render(source, vars));
        Assert.Contains(OurWording.GetValueOrDefault(name) ?? c.GetProperty("error").GetString()!, e.Reason, StringComparison.Ordinal);
        Assert.True(e.Line >= 1 && e.Column >= 1, $"no location in: {e.Message}");
        if (name == "error-raise") Assert.IsType<ChatTemplateRaisedException>(e);
    }

    [Fact]
    public void Mutated_templates_that_jinja2_renders_render_the_same()
    {
        var messages = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "s" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = " u \n" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "a" },
        };
        var failures = new List<string>();
        int n = 0;
        foreach (var c in ChatTemplateFixture.Root.GetProperty("mutations").EnumerateArray())
        {
            n++;
            string source = c.GetProperty("template").GetString()!, expected = c.GetProperty("expected").GetString()!;
            var vars = new Dictionary<string, object?>
            {
                ["messages"] = messages, ["tools"] = null, ["documents"] = null,
                ["add_generation_prompt"] = c.GetProperty("add_generation_prompt").GetBoolean(), ["bos_token"] = "<s>", ["eos_token"] = "</s>",
            };
            try
            {
                string got = Render(source, vars);
                if (got != expected) failures.Add($"--- template\n{source}\n--- jinja2\n{expected}\n--- ours\n{got}");
            }
            catch (ChatTemplateException e) { failures.Add($"--- template\n{source}\n--- jinja2\n{expected}\n--- ours failed: {e.Message}"); }
        }
        Assert.True(n >= 400, $"only {n} mutation cases");
        Assert.True(failures.Count == 0, $"{failures.Count} of {n} differ; first ones:\n" + string.Join("\n", failures.Take(5)));
    }

    private static ChatTemplateException Fails(string source, Dictionary<string, object?>? vars = null, JinjaLimits? limits = null) =>
        Assert.ThrowsAny<ChatTemplateException>(() => Render(source, vars, limits));

    [Fact]
    public void Parse_errors_name_the_line_and_column_and_what_was_expected()
    {
        var e = Fails("line one\n  {{ 1 + }}");
        Assert.Equal((2, 10), (e.Line, e.Column));
        Assert.Equal("expected an expression, found '}}'", e.Reason);

        e = Fails("{% if x %}\n{% for y in z %}\n{% endif %}");
        Assert.Equal((3, 4), (e.Line, e.Column));
        Assert.Equal("unexpected 'endif': the innermost open tag is 'for' at line 2 column 1, expecting '{% endfor %}' first", e.Reason);

        e = Fails("ab\n{{ 'unterminated }}");
        Assert.Equal((2, 4), (e.Line, e.Column));
        Assert.Equal("unterminated string literal", e.Reason);

        e = Fails("{% set x 1 %}");
        Assert.Equal((1, 10), (e.Line, e.Column));
        Assert.Equal("expected '=' or '%}' in the 'set' tag, found '1'", e.Reason);

        e = Fails("{{ x | nosuch }}");
        Assert.Equal((1, 8), (e.Line, e.Column));
        Assert.Equal("No filter named 'nosuch'.", e.Reason);

        e = Fails("{{ x is nosuch }}");
        Assert.Equal("No test named 'nosuch'.", e.Reason);

        e = Fails("{# never closed");
        Assert.Contains("expected '#}'", e.Reason, StringComparison.Ordinal);

        e = Fails("{{ a[1 }}");
        Assert.Equal("unexpected '}', expected ']'", e.Reason);

        e = Fails("{% call foo() %}{% endcall %}");
        Assert.Contains("not supported", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Runtime_errors_point_at_the_failing_expression()
    {
        var e = Fails("ok\n{% for m in ms %}\n  {{ m.content.text.upper() }}\n{% endfor %}",
            new() { ["ms"] = new List<object?> { new Dictionary<string, object?> { ["content"] = new Dictionary<string, object?>() } } });
        Assert.Equal("'dict object' has no attribute 'text'", e.Reason);
        Assert.Equal(3, e.Line);

        e = Fails("{{ raise_exception('bad ' ~ n) }}", new() { ["n"] = 3 });
        Assert.IsType<ChatTemplateRaisedException>(e);
        Assert.Equal("bad 3", e.Reason);
        Assert.Equal((1, 4), (e.Line, e.Column));

        e = Fails("{% set x = 5 %}{{ x() }}");
        Assert.Equal("'int' object is not callable", e.Reason);
        e = Fails("{% set ns = 1 %}{% set ns.a = 2 %}");
        Assert.Contains("not a namespace()", e.Reason, StringComparison.Ordinal);
        e = Fails("{% for a, b in [[1, 2, 3]] %}{% endfor %}");
        Assert.Contains("too many values to unpack", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_stop_runaway_templates_with_clear_errors()
    {
        var e = Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        Assert.Contains("nested deeper than 100", e.Reason, StringComparison.Ordinal);

        e = Fails("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(10) %}{% endfor %}{% endfor %}{% endfor %}");
        Assert.Contains("more than 1000000 loop iterations", e.Reason, StringComparison.Ordinal);

        e = Fails("{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}", limits: new JinjaLimits(MaxOutputChars: 50_000));
        Assert.Contains("longer than 50000 characters", e.Reason, StringComparison.Ordinal);

        e = Fails("{{ 'x' * 100000000000 }}");
        Assert.Contains("repeated to more than", e.Reason, StringComparison.Ordinal);

        e = Fails("{{ " + string.Concat(Enumerable.Repeat("(", 500)) + "1" + string.Concat(Enumerable.Repeat(")", 500)) + " }}");
        Assert.Contains("nested deeper than", e.Reason, StringComparison.Ordinal);

        e = Fails("{{ 2 ** 70 }}");
        Assert.Contains("overflow", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Whitespace_control_follows_trim_blocks_and_lstrip_blocks()
    {
        Assert.Equal("a\nb\n", Render("{% if true %}\na\n{% endif %}\n    {% if true %}\nb\n    {% endif %}\n"));
        Assert.Equal("x  y", Render("x  {{ '' }}y"));          // no trimming around {{ }}
        Assert.Equal("xy", Render("x  \n {{- '' -}} \n y"));
        Assert.Equal("  a", Render("  {%+ if true %}a{% endif %}"));
        Assert.Equal("1\n2\n", Render("{% for i in [1, 2] %}\n{{ i }}\n{% endfor %}"));
    }

    [Fact]
    public void Undefined_values_behave_as_jinjas_default_undefined()
    {
        Assert.Equal("[]|0|False|none", Render("[{{ u }}]|{{ u | length }}|{{ u is defined }}|{{ u | default('none') }}"));
        Assert.Equal("'u' is undefined", Fails("{{ u.x }}").Reason);
        Assert.Equal("'u' is undefined", Fails("{{ u + 1 }}").Reason);
        Assert.Equal("'u' is undefined", Fails("{{ u() }}").Reason);
        Assert.Equal("", Render("{% for x in u %}{{ x }}{% endfor %}"));
        Assert.Equal("'dict object' has no attribute 'a'", Fails("{{ d.a.b }}", new() { ["d"] = new Dictionary<string, object?>() }).Reason);
    }

    [Fact]
    public void Values_print_with_python_str()
    {
        Assert.Equal("1.0 0.1 1e-05 1e+16 123456789012345.0 -0.0 [1.5, 'a'] {'k': None}", Render("{{ 1.0 }} {{ 0.1 }} {{ 0.00001 }} {{ 1e16 }} {{ 123456789012345.0 }} {{ -0.0 }} {{ [1.5, 'a'] }} {{ {'k': none} }}"));
        Assert.Equal("True 3", Render("{{ 1 == 1 }} {{ true + 2 }}"));
    }

    [Fact]
    public void Mutated_templates_fail_only_with_chat_template_errors()
    {
        // Seeded mutations of every fixture template (spans deleted, duplicated, or tag/operator fragments inserted):
        // whatever the result, rendering ends normally or with a ChatTemplateException, never another exception.
        string[] fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".", ",", ":",
            "=", "~", "*", "**", "//", " is ", " not ", " in ", " if ", " else ", "for ", "endfor", "endif", "set ", "loop", "messages",
            "namespace()", "[::-1]", "[1:]", "| tojson", "| length", "\\", "\n", "0", "1e9", "none", "macro ", "endmacro"];
        var sources = ChatTemplateFixture.Root.GetProperty("templates").EnumerateObject().Select(t => t.Value.GetProperty("source").GetString()!)
            .Concat(ChatTemplateFixture.Root.GetProperty("jinja").EnumerateArray().Select(c => c.GetProperty("template").GetString()!)).ToList();
        var messages = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "s" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "u" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "a" },
        };
        var rng = new Random(20260307);
        int rendered = 0, refused = 0;
        for (int iter = 0; iter < 3000; iter++)
        {
            string s = sources[rng.Next(sources.Count)];
            int edits = 1 + rng.Next(3);
            for (int k = 0; k < edits && s.Length > 0; k++)
            {
                int at = rng.Next(s.Length), len = Math.Min(1 + rng.Next(12), s.Length - at);
                s = rng.Next(3) switch
                {
                    0 => s.Remove(at, len),
                    1 => s.Insert(at, s.Substring(at, len)),
                    _ => s.Insert(at, fragments[rng.Next(fragments.Length)]),
                };
            }
            try
            {
                Render(s, new() { ["messages"] = messages, ["add_generation_prompt"] = rng.Next(2) == 0, ["bos_token"] = "<s>", ["eos_token"] = "</s>" },
                    new JinjaLimits(MaxOutputChars: 1 << 20, MaxLoopIterations: 100_000));
                rendered++;
            }
            catch (ChatTemplateException e) when (!e.Message.Contains(JinjaInterpreter.InternalError, StringComparison.Ordinal)) { refused++; }
            catch (Exception e) { Assert.Fail($"{e.GetType().Name}: {e.Message}\n--- template ---\n{s}\n{e.InnerException?.StackTrace ?? e.StackTrace}"); }
        }
        Assert.True(rendered > 100 && refused > 100, $"rendered {rendered}, refused {refused}");
    }
}
