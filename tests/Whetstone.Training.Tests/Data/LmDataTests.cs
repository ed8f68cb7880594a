using Whetstone.Training.Data;
using Whetstone.Training.Tests.Data;

namespace Whetstone.Training.Tests.Data;

/// <summary>
/// Language-model data: plain text packed into blocks, prompt/completion and chat rows with their loss masks, and the
/// errors (file:line) for rows that are malformed or would train nothing.
/// </summary>
public sealed class LmDataTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>One id per character ('a' = 10 …), markers "&lt;a&gt;" / "&lt;/a&gt;" / "&lt;u&gt;" / "&lt;/u&gt;" as single ids 1-4; BOS 0, EOS 5.</summary>
    private sealed class CharTokenizer(bool addBos) : ILmTokenizer
    {
        private static readonly string[] Markers = ["<a>", "</a>", "<u>", "</u>"];

        public IReadOnlyList<int> Encode(string text)
        {
            var ids = new List<int>();
            for (int i = 0; i < text.Length;)
            {
                int m = Array.FindIndex(Markers, k => string.CompareOrdinal(text, i, k, 0, k.Length) == 0);
                if (m >= 0) { ids.Add(1 + m); i += Markers[m].Length; }
                else ids.Add(10 + text[i++]);
            }
            return ids;
        }

        public int? BosId => 0;
        public int? EosId => 5;
        public bool AddBos => addBos;
    }

    /// <summary>"&lt;u&gt;…&lt;/u&gt;" for user and system turns, "&lt;a&gt;…&lt;/a&gt;" for the assistant; the assistant span is its content and "&lt;/a&gt;".</summary>
    private sealed class TagFormat(bool everything = false) : IChatFormat
    {
        public string Render(IReadOnlyList<ChatTurn> messages, bool addGenerationPrompt) =>
            string.Concat(messages.Select(m => m.Role == "assistant" ? $"<a>{m.Content}</a>" : $"<u>{m.Content}</u>")) + (addGenerationPrompt ? "<a>" : "");

        public IReadOnlyList<(int Start, int End)> AssistantSpans(IReadOnlyList<ChatTurn> messages)
        {
            if (everything) return [(0, Render(messages, false).Length)];
            var spans = new List<(int, int)>();
            int at = 0;
            foreach (var m in messages)
            {
                int len = Render([m], false).Length;
                if (m.Role == "assistant") spans.Add((at + 3, at + len));
                at += len;
            }
            return spans;
        }
    }

    private string Write(string name, params string[] lines)
    {
        var path = _dir.File(name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void PlainTextIsPackedIntoBlocksWithEosBetweenDocuments()
    {
        var folder = Path.Combine(_dir.Path, "corpus");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "a.txt"), "abcdef");
        File.WriteAllText(Path.Combine(folder, "b.txt"), "xyz");
        var set = LmFiles.Read(folder, new CharTokenizer(addBos: true), new LmReadOptions { BlockSize = 4 });
        Assert.Equal("text", set.Format);
        // [BOS a b c] [d e f EOS] [BOS x y z] [EOS] → the last block of 1 token predicts nothing and is dropped
        Assert.Equal(3, set.Examples.Count);
        Assert.Equal([0, 10 + 'a', 10 + 'b', 10 + 'c'], set.Examples[0].Ids);
        Assert.Equal([10 + 'd', 10 + 'e', 10 + 'f', 5], set.Examples[1].Ids);
        Assert.All(set.Examples, e => Assert.All(e.Target, Assert.True));
    }

    [Fact]
    public void PromptCompletionTrainsTheCompletionAndEosOnly()
    {
        var path = Write("instr.jsonl", """{"prompt": "hi", "completion": "yo"}""");
        var set = LmFiles.Read(path, new CharTokenizer(addBos: true), new LmReadOptions());
        Assert.Equal("instruction", set.Format);
        var ex = set.Examples.Single();
        Assert.Equal([0, 10 + 'h', 10 + 'i', 10 + 'y', 10 + 'o', 5], ex.Ids);
        Assert.Equal([false, false, false, true, true, true], ex.Target);
    }

    [Fact]
    public void PromptTemplateWrapsTheSourceFieldAndOnlyTheTargetTrains()
    {
        // parallel text as prompt/completion rows: source → target, the template's words are read, not trained
        var path = Write("pairs.jsonl", """{"ref": "Ruth.1.1", "source": "hi", "target": "yo"}""");
        var o = new LmReadOptions { Format = "instruction", PromptField = "source", CompletionField = "target", PromptTemplate = "T: {prompt}=" };
        var ex = LmFiles.Read(path, new CharTokenizer(addBos: false), o).Examples.Single();
        Assert.Equal("T: hi=yo".Select(c => 10 + c).Append(5), ex.Ids);
        Assert.Equal(Enumerable.Repeat(false, 6).Concat(Enumerable.Repeat(true, 3)), ex.Target);
    }

    [Fact]
    public void ChatTrainsTheAssistantTurnsAsTheTemplateDelimitsThem()
    {
        var path = Write("chat.jsonl",
            """{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "ab"}, {"role": "user", "content": "r"}, {"role": "assistant", "content": "c"}]}""");
        var set = LmFiles.Read(path, new CharTokenizer(addBos: false), new LmReadOptions(), new TagFormat());
        Assert.Equal("chat", set.Format);
        var ex = set.Examples.Single();
        // <u>s</u><u>q</u><a>ab</a><u>r</u><a>c</a>: targets are "ab</a>" and "c</a>", not the <a> that opens a turn
        var tok = new CharTokenizer(false);
        Assert.Equal(tok.Encode("<u>s</u><u>q</u><a>ab</a><u>r</u><a>c</a>"), ex.Ids);
        var expected = new[] { false, false, false, false, false, false, false, true, true, true, false, false, false, false, true, true };
        Assert.Equal(expected, ex.Target);
        Assert.Equal(5, ex.TargetCount);
    }

    [Fact]
    public void BadRowsNameTheirFileAndLineOrAreSkippedAndCounted()
    {
        var path = Write("bad.jsonl",
            """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}""",
            "{not json",
            """{"messages": [{"role": "user", "content": "only a question"}]}""",
            """{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}]}""",
            """{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}""");
        var tok = new CharTokenizer(false);
        var e = Assert.Throws<DataException>(() => LmFiles.Read(path, tok, new LmReadOptions(), new TagFormat()));
        Assert.Contains($"{path}:2: not valid JSON", e.Message);
        var skipped = LmFiles.Read(path, tok, new LmReadOptions { BadRows = "skip" }, new TagFormat());
        Assert.Single(skipped.Examples);
        Assert.Equal(4, skipped.Skipped.Count);
        Assert.Contains(skipped.Skipped, s => s.Contains(":3: no assistant message", StringComparison.Ordinal));
        Assert.Contains(skipped.Skipped, s => s.Contains(":4: message 0 has role 'robot'", StringComparison.Ordinal));
        Assert.Contains(skipped.Skipped, s => s.Contains(":5: \"content\" must be a string", StringComparison.Ordinal));
    }

    [Fact]
    public void RowsThatWouldTrainNothingOrEverythingAreErrors()
    {
        var tok = new CharTokenizer(false);
        var longPrompt = Write("long.jsonl", $$"""{"prompt": "{{new string('p', 40)}}", "completion": "c"}""");
        var cut = Assert.Throws<DataException>(() => LmFiles.Read(longPrompt, tok, new LmReadOptions { MaxLength = 16 }));
        Assert.Contains("no target tokens within the first 16 tokens", cut.Message);

        var chat = Write("all.jsonl", """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}""");
        var all = Assert.Throws<DataException>(() => LmFiles.Read(chat, tok, new LmReadOptions(), new TagFormat(everything: true)));
        Assert.Contains("loss mask would be all ones", all.Message);

        var chatless = Assert.Throws<DataException>(() => LmFiles.Read(Write("x.jsonl", """{"text": "?"}"""), tok, new LmReadOptions()));
        Assert.Contains("set data.format", chatless.Message);
    }
}
