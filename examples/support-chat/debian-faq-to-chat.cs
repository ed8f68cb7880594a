// Turns the Debian FAQ (the plain-text render in the debian-faq package, asset debian_faq) into chat JSONL for
// `task: chat`: one conversation per question — a system line, the FAQ's question as the user turn, and the start of
// its answer (whole paragraphs, up to --max-chars) as the assistant turn. Questions are those numbered entries
// (N.M. or N.M.K.) whose title ends in '?'; every 7th of them (in FAQ order) is held out as the test set.
//   dotnet run --file examples/support-chat/debian-faq-to-chat.cs -- FAQ.txt[.gz] OUT_DIR [--max-chars 600]
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

if (args.Length < 2) { Console.Error.WriteLine("usage: debian-faq-to-chat FAQ.txt[.gz] OUT_DIR [--max-chars N]"); return 2; }
int maxChars = 600;
for (int i = 2; i < args.Length; i++)
    if (args[i] == "--max-chars" && i + 1 < args.Length && int.TryParse(args[++i], out int m) && m > 0) maxChars = m;
    else { Console.Error.WriteLine($"unknown or malformed option '{args[i]}'"); return 2; }

string[] lines;
using (var raw = File.OpenRead(args[0]))
using (var s = args[0].EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(raw, CompressionMode.Decompress) : (Stream)raw)
using (var reader = new StreamReader(s, Encoding.UTF8))
    lines = reader.ReadToEnd().Replace('\u00a0', ' ').Split('\n').Select(l => l.TrimEnd('\r', ' ')).ToArray();

// An entry header starts at column 0: "1.2. What is Debian GNU/Linux?" (the title may wrap onto unindented lines).
var header = new Regex(@"^(\d+(?:\.\d+)+)\.\s+(\S.*)$");
var chapter = new Regex(@"^\d+\.\s+\S");
// The table of contents repeats every header (indented); the body starts at the first header at column 0.
var entries = new List<(string Number, string Title, List<string> Body)>();
for (int i = 0; i < lines.Length; i++)
{
    var h = header.Match(lines[i]);
    if (!h.Success) continue;
    var title = new StringBuilder(h.Groups[2].Value);
    int j = i + 1;
    for (; j < lines.Length && lines[j].Length > 0 && !char.IsWhiteSpace(lines[j][0]) && !header.IsMatch(lines[j]); j++) title.Append(' ').Append(lines[j]);
    var body = new List<string>();
    for (; j < lines.Length && !header.IsMatch(lines[j]) && !(chapter.IsMatch(lines[j]) && !lines[j].StartsWith(' ')); j++) body.Add(lines[j]);
    entries.Add((h.Groups[1].Value, title.ToString(), body));
    i = j - 1;
}

// Paragraphs: runs of non-blank lines, whitespace collapsed; URLs the renderer broke over lines joined back.
static List<string> Paragraphs(List<string> body)
{
    var result = new List<string>();
    var current = new StringBuilder();
    void Flush()
    {
        var p = Regex.Replace(current.ToString(), @"\s+", " ").Trim();
        p = Regex.Replace(p, @"(https?:) ?//", "$1//");
        p = Regex.Replace(p, @"\((https?://[^)\s]*) ([^)\s]*)\)", "($1$2)");
        if (p.Length > 0) result.Add(p);
        current.Clear();
    }
    foreach (var line in body)
    {
        if (line.Trim().Length == 0) Flush();
        else current.Append(' ').Append(line.Trim());
    }
    Flush();
    return result;
}

const string SystemPrompt = "You are Debian's support assistant. Answer the user's question about Debian GNU/Linux briefly and accurately.";
var train = new List<string>();
var test = new List<string>();
int questions = 0, skipped = 0;
foreach (var (number, title, body) in entries)
{
    if (!title.EndsWith('?')) continue;
    var paragraphs = Paragraphs(body);
    if (paragraphs.Count == 0) { skipped++; continue; }
    var answer = new StringBuilder(paragraphs[0]);
    foreach (var p in paragraphs.Skip(1))
    {
        if (answer.Length + 1 + p.Length > maxChars) break;
        answer.Append('\n').Append(p);
    }
    JsonObject Turn(string role, string content) => new() { ["role"] = role, ["content"] = content };
    var row = new JsonObject
    {
        ["messages"] = new JsonArray(Turn("system", SystemPrompt), Turn("user", title), Turn("assistant", answer.ToString())),
        ["faq"] = number,
    }.ToJsonString();
    (questions % 7 == 6 ? test : train).Add(row);
    questions++;
}
if (questions == 0) { Console.Error.WriteLine($"{args[0]}: no numbered questions found; is this the Debian FAQ's text render?"); return 1; }
Directory.CreateDirectory(args[1]);
File.WriteAllLines(Path.Combine(args[1], "train.jsonl"), train);
File.WriteAllLines(Path.Combine(args[1], "test.jsonl"), test);
Console.WriteLine($"{questions} questions ({skipped} without an answer left out): {train.Count} train, {test.Count} test → {args[1]}");
return 0;
