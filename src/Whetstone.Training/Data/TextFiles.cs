using System.Text;
using System.Text.Json;
using CsvHelper;

namespace Whetstone.Training.Data;

/// <summary>How <see cref="TextFiles.Read"/> reads examples.</summary>
public sealed record TextReadOptions
{
    /// <summary><c>csv</c>, <c>tsv</c>, <c>jsonl</c>, <c>json</c> (an array of objects), <c>email</c> (a folder of raw e-mails, one subfolder per raw label), or <c>auto</c> (from the extension).</summary>
    public string Format { get; init; } = "auto";
    public string TextColumn { get; init; } = "text";
    public string? PairColumn { get; init; }
    public string LabelColumn { get; init; } = "label";
    public IReadOnlyDictionary<string, string>? LabelMap { get; init; }
    /// <summary><c>error</c> or <c>skip</c>.</summary>
    public string BadRows { get; init; } = "error";
    public string FilePattern { get; init; } = "*";
}

/// <summary>
/// Reads labelled texts from CSV/TSV (CsvHelper), JSON Lines, JSON arrays of objects, or folders of raw e-mails. A
/// folder path reads every matching file in it (sorted). Files must be UTF-8 (e-mails carry their own charsets); a
/// missing text or label is an error naming file and line, or skipped and reported with <c>bad_rows: skip</c>.
/// </summary>
public static class TextFiles
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static TextDataset Read(string path, TextReadOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BadRows is not ("error" or "skip")) throw new ArgumentException($"bad_rows must be error or skip; got '{options.BadRows}'.");
        var format = options.Format == "auto" ? Detect(path) : options.Format;
        var rows = new List<TextRow>();
        var skipped = new List<string>();
        if (format == "email") ReadEmails(path, options, rows);
        else
        {
            string[] files;
            if (Directory.Exists(path))
            {
                var pattern = options.FilePattern == "*" ? "*." + format : options.FilePattern;
                files = Directory.GetFiles(path, pattern).Order(StringComparer.Ordinal).ToArray();
                if (files.Length == 0) throw new DataException($"The folder '{path}' has no {pattern} files.");
            }
            else if (File.Exists(path)) files = [path];
            else throw new DataException($"The data file '{path}' does not exist.");
            foreach (var f in files)
            {
                var text = ReadUtf8(f);
                switch (format)
                {
                    case "csv": case "tsv": ReadCsv(f, format == "tsv" ? '\t' : ',', options, rows, skipped); break;
                    case "jsonl": ReadJsonLines(f, text, options, rows, skipped); break;
                    case "json": ReadJsonArray(f, text, options, rows, skipped); break;
                    default: throw new DataException($"Unknown text data format '{format}' for '{f}'; use csv, tsv, jsonl, json or email.");
                }
            }
        }
        if (rows.Count == 0)
            throw new DataException($"'{path}' has no examples{(skipped.Count > 0 ? $" ({skipped.Count} bad rows skipped; the first: {skipped[0]})" : "")}.");
        return new TextDataset(rows) { Skipped = skipped };
    }

    public static string Detect(string path)
    {
        if (Directory.Exists(path))
        {
            var ext = Directory.EnumerateFiles(path).Select(f => Path.GetExtension(f).TrimStart('.').ToLowerInvariant())
                .FirstOrDefault(e => e is "csv" or "tsv" or "jsonl" or "json");
            return ext ?? (Directory.EnumerateDirectories(path).Any() ? "email" : throw new DataException($"Cannot tell the format of the folder '{path}'; set data.format."));
        }
        return Path.GetExtension(path).TrimStart('.').ToLowerInvariant() switch
        {
            "csv" => "csv", "tsv" or "tab" => "tsv", "jsonl" or "ndjson" => "jsonl", "json" => "json",
            var e => throw new DataException($"Cannot tell the format of '{path}' from its extension '.{e}'; set data.format to csv, tsv, jsonl, json or email."),
        };
    }

    /// <summary>The file's text; invalid UTF-8 is an error naming the file, line and byte.</summary>
    internal static string ReadUtf8(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException e)
        {
            var span = bytes.AsSpan();
            int at = 0;
            while (at < span.Length && System.Text.Rune.DecodeFromUtf8(span[at..], out _, out int used) == System.Buffers.OperationStatus.Done) at += used;
            at = Math.Min(at, span.Length - 1);
            int line = 1 + span[..at].Count((byte)'\n');
            throw new DataException($"{path}, line {line}: the text is not valid UTF-8 (byte 0x{bytes[at]:X2} at offset {at}). Convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8).", e);
        }
    }

    private static bool Bad(string origin, string what, TextReadOptions o, List<string> skipped)
    {
        var message = $"{origin}: {what}";
        if (o.BadRows == "error") throw new DataException(message + " (set text.bad_rows: skip to leave such rows out).");
        skipped.Add(message);
        return true;
    }

    private static void Add(string origin, string? text, string? pair, string? label, TextReadOptions o, List<TextRow> rows, List<string> skipped)
    {
        if (string.IsNullOrWhiteSpace(text)) { Bad(origin, $"the text (column '{o.TextColumn}') is missing or empty", o, skipped); return; }
        if (o.PairColumn is not null && pair is null) { Bad(origin, $"the second text (column '{o.PairColumn}') is missing", o, skipped); return; }
        if (string.IsNullOrWhiteSpace(label)) { Bad(origin, $"the label (column '{o.LabelColumn}') is missing or empty", o, skipped); return; }
        rows.Add(new TextRow(text, pair, MapLabel(label.Trim(), o.LabelMap), origin));
    }

    /// <summary>The label a raw label maps to: an exact key first, then the first glob key that matches.</summary>
    public static string MapLabel(string raw, IReadOnlyDictionary<string, string>? map)
    {
        if (map is null) return raw;
        if (map.TryGetValue(raw, out var exact)) return exact;
        foreach (var (k, v) in map)
            if (k.Contains('*', StringComparison.Ordinal) && System.IO.Enumeration.FileSystemName.MatchesSimpleExpression(k, raw)) return v;
        return raw;
    }

    private static void ReadCsv(string path, char separator, TextReadOptions o, List<TextRow> rows, List<string> skipped)
    {
        using var csv = CsvReader.FromFile(path, new CsvReaderOptions { Separator = separator, TrackLineNumbers = true });
        int Column(string name)
        {
            IReadOnlyList<string> header;
            try { header = csv.Headers; }
            catch (Exception e) { throw new DataException($"{path}, line 1: cannot read the header: {e.Message}", e); }
            if (csv.TryGetFieldIndex(name, out int i)) return i;
            throw new DataException(header.Count == 0 ? $"{path} is empty; expected a header row with columns '{o.TextColumn}' and '{o.LabelColumn}'."
                : $"{path}, line 1: no column '{name}'. Columns: {string.Join(", ", header.Select(h => $"'{h}'"))}.");
        }
        bool Next()
        {
            try { return csv.Read(); }
            catch (Exception e) { throw new DataException($"{path}, after line {csv.LineNumber}: {e.Message}", e); }
        }
        int textCol = -1, pairCol = -1, labelCol = -1;
        while (Next())
        {
            if (textCol < 0)
            {
                textCol = Column(o.TextColumn);
                labelCol = Column(o.LabelColumn);
                if (o.PairColumn is not null) pairCol = Column(o.PairColumn);
            }
            string? Field(int i) => i < csv.FieldCount ? csv.GetString(i) : null;
            Add($"{path}:{csv.LineNumber}", Field(textCol), pairCol < 0 ? null : Field(pairCol), Field(labelCol), o, rows, skipped);
        }
        if (textCol < 0) Column(o.TextColumn);   // a header-only or empty file: say which
    }

    private static string? Str(JsonElement obj, string? key) =>
        key is null || obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(key, out var v) ? null : v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
            _ => null,
        };

    private static void ReadJsonLines(string path, string text, TextReadOptions o, List<TextRow> rows, List<string> skipped)
    {
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { Bad($"{path}:{i + 1}", $"not a JSON object ({e.Message})", o, skipped); continue; }
            using (doc) Add($"{path}:{i + 1}", Str(doc.RootElement, o.TextColumn), Str(doc.RootElement, o.PairColumn), Str(doc.RootElement, o.LabelColumn), o, rows, skipped);
        }
    }

    private static void ReadJsonArray(string path, string text, TextReadOptions o, List<TextRow> rows, List<string> skipped)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var reader = new Utf8JsonReader(bytes);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray) throw new DataException($"{path}: expected a JSON array of objects ({{\"{o.TextColumn}\": …, \"{o.LabelColumn}\": …}}).");
            int item = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                long start = reader.TokenStartIndex;
                using var doc = JsonDocument.ParseValue(ref reader);
                int line = 1 + bytes.AsSpan(0, (int)start).Count((byte)'\n');
                Add($"{path}:{line} (item {item++})", Str(doc.RootElement, o.TextColumn), Str(doc.RootElement, o.PairColumn), Str(doc.RootElement, o.LabelColumn), o, rows, skipped);
            }
        }
        catch (JsonException e) { throw new DataException($"{path}, line {e.LineNumber + 1}: not valid JSON: {e.Message}", e); }
    }

    private static void ReadEmails(string path, TextReadOptions o, List<TextRow> rows)
    {
        if (!Directory.Exists(path)) throw new DataException($"data.format email needs a folder with one subfolder of raw e-mails per label; '{path}' is not a folder.");
        foreach (var dir in Directory.GetDirectories(path).Order(StringComparer.Ordinal))
        {
            var label = MapLabel(Path.GetFileName(dir), o.LabelMap);
            foreach (var f in Directory.GetFiles(dir, o.FilePattern, SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var mail = Email.Parse(File.ReadAllBytes(f));
                var text = mail.ToText();
                rows.Add(new TextRow(text.Length == 0 ? "(empty)" : text, null, label, f));
            }
        }
    }
}
