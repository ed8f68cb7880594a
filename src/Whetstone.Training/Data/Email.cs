using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Whetstone.Training.Data;

/// <summary>
/// A raw e-mail (RFC 5322) reduced to what a text classifier reads: the decoded headers, and the text of the body —
/// MIME multipart walked (text/plain preferred in multipart/alternative, attachments skipped), quoted-printable and
/// base64 decoded, the declared charset applied (UTF-8 when valid, else Windows-1252), HTML turned into plain text.
/// </summary>
public sealed partial class Email
{
    private static readonly Encoding Latin1 = Encoding.Latin1;

    static Email() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    /// <summary>Header names (lower case) and decoded values, in order.</summary>
    public IReadOnlyList<(string Name, string Value)> Headers { get; }
    public string Body { get; }

    private Email(IReadOnlyList<(string, string)> headers, string body)
    {
        Headers = headers;
        Body = body;
    }

    public string? Header(string name) => Headers.FirstOrDefault(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public string Subject => Header("subject") ?? "";

    /// <summary>The subject line, a blank line, and the body text: what the classifier reads.</summary>
    public string ToText() => Subject.Length == 0 ? Body : Subject + "\n\n" + Body;

    public static Email Parse(byte[] raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var (headers, body) = Split(Latin1.GetString(raw));   // one char per byte: charsets are applied per part
        return new Email(headers.Select(h => (h.Name, DecodeWords(h.Value))).ToArray(), PartText(headers, body).Trim());
    }

    public static Email Parse(string raw) => Parse(Encoding.UTF8.GetBytes(raw ?? throw new ArgumentNullException(nameof(raw))));

    /// <summary>Headers (unfolded) and the body of a message or MIME part.</summary>
    private static (List<(string Name, string Value)> Headers, string Body) Split(string s)
    {
        var headers = new List<(string, string)>();
        int pos = 0;
        // mbox "From " line
        if (s.StartsWith("From ", StringComparison.Ordinal)) pos = NextLine(s, 0);
        while (pos < s.Length)
        {
            int end = NextLine(s, pos);
            var line = s[pos..end].TrimEnd('\r', '\n');
            if (line.Length == 0) { pos = end; break; }
            if ((line[0] == ' ' || line[0] == '\t') && headers.Count > 0)
                headers[^1] = (headers[^1].Item1, headers[^1].Item2 + " " + line.Trim());
            else
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0) { break; }   // not a header: the body starts here (no blank line)
                headers.Add((line[..colon].Trim().ToLowerInvariant(), line[(colon + 1)..].Trim()));
            }
            pos = end;
        }
        return (headers, pos < s.Length ? s[pos..] : "");
    }

    private static int NextLine(string s, int from)
    {
        int i = s.IndexOf('\n', from);
        return i < 0 ? s.Length : i + 1;
    }

    private static string? Get(List<(string Name, string Value)> headers, string name) =>
        headers.FirstOrDefault(h => h.Name == name).Value;

    /// <summary>Content type (lower case) and its parameters.</summary>
    private static (string Type, Dictionary<string, string> Params) ContentType(List<(string Name, string Value)> headers)
    {
        var ps = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var v = Get(headers, "content-type");
        if (v is null) return ("text/plain", ps);
        var fields = v.Split(';');
        foreach (var f in fields.Skip(1))
        {
            int eq = f.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0) ps[f[..eq].Trim()] = f[(eq + 1)..].Trim().Trim('"');
        }
        return (fields[0].Trim().ToLowerInvariant(), ps);
    }

    private static string PartText(List<(string Name, string Value)> headers, string body)
    {
        var (type, ps) = ContentType(headers);
        if (type.StartsWith("multipart/", StringComparison.Ordinal) && ps.TryGetValue("boundary", out var boundary))
        {
            var parts = MultipartParts(body, boundary).Select(Split).ToList();
            if (type == "multipart/alternative")
            {
                var plain = parts.FirstOrDefault(p => ContentType(p.Headers).Type == "text/plain");
                var chosen = plain.Headers is not null ? plain : parts.LastOrDefault();
                return chosen.Headers is null ? "" : PartText(chosen.Headers, chosen.Body);
            }
            return string.Join("\n\n", parts.Select(p => PartText(p.Headers, p.Body)).Where(t => t.Length > 0));
        }
        if (type == "message/rfc822") { var (h, b) = Split(body); return PartText(h, b); }
        if (!type.StartsWith("text/", StringComparison.Ordinal)) return "";   // attachments: images, archives …
        var disposition = Get(headers, "content-disposition");
        if (disposition is not null && disposition.StartsWith("attachment", StringComparison.OrdinalIgnoreCase) && type != "text/plain" && type != "text/html") return "";
        var bytes = Transfer(Get(headers, "content-transfer-encoding"), body);
        var text = Decode(bytes, ps.GetValueOrDefault("charset"));
        return type == "text/html" ? HtmlToText(text) : text.Replace("\r\n", "\n", StringComparison.Ordinal);
    }

    private static IEnumerable<string> MultipartParts(string body, string boundary)
    {
        var delimiter = "--" + boundary;
        var lines = body.Split('\n');
        StringBuilder? part = null;
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith(delimiter, StringComparison.Ordinal))
            {
                if (part is not null) yield return part.ToString();
                if (line.AsSpan(delimiter.Length).StartsWith("--")) yield break;   // the closing delimiter
                part = new StringBuilder();
                continue;
            }
            part?.Append(raw).Append('\n');
        }
        if (part is not null) yield return part.ToString();
    }

    /// <summary>Bytes of a body after its content-transfer-encoding (quoted-printable, base64, or none).</summary>
    internal static byte[] Transfer(string? encoding, string body)
    {
        switch (encoding?.Trim().ToLowerInvariant())
        {
            case "base64":
                var clean = new StringBuilder(body.Length);
                foreach (char c in body) if (char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=') clean.Append(c);
                while (clean.Length % 4 != 0) clean.Length--;   // drop a truncated tail rather than fail
                try { return Convert.FromBase64String(clean.ToString()); }
                catch (FormatException) { return Latin1.GetBytes(body); }
            case "quoted-printable":
                return QuotedPrintable(body, header: false);
            default:
                return Latin1.GetBytes(body);
        }
    }

    /// <summary>Decodes quoted-printable (<c>=XX</c>, soft line breaks <c>=\n</c>; in headers also <c>_</c> for space).</summary>
    internal static byte[] QuotedPrintable(string s, bool header)
    {
        var o = new List<byte>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '=' && i + 1 < s.Length && (s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < s.Length && s[i + 2] == '\n')))
            {
                i += s[i + 1] == '\r' ? 2 : 1;   // soft line break
                continue;
            }
            if (c == '=' && i + 2 < s.Length && char.IsAsciiHexDigit(s[i + 1]) && char.IsAsciiHexDigit(s[i + 2]))
            {
                o.Add(Convert.ToByte(s.Substring(i + 1, 2), 16));
                i += 2;
                continue;
            }
            o.Add(header && c == '_' ? (byte)' ' : (byte)c);
        }
        return o.ToArray();
    }

    /// <summary>Text of <paramref name="bytes"/> in <paramref name="charset"/>; without one, UTF-8 when valid, else Windows-1252.</summary>
    internal static string Decode(byte[] bytes, string? charset)
    {
        if (charset is not null)
        {
            try { return Encoding.GetEncoding(charset.Trim().Trim('"')).GetString(bytes); }
            catch (ArgumentException) { }   // an unknown charset: guess below
        }
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return Encoding.UTF8.GetString(bytes);
        return Encoding.GetEncoding(1252).GetString(bytes);
    }

    /// <summary>RFC 2047 encoded words in a header: <c>=?charset?B|Q?text?=</c>.</summary>
    internal static string DecodeWords(string value) => EncodedWord().Replace(EncodedWordGap().Replace(value, "$1$2"), m =>
    {
        var text = m.Groups["text"].Value;
        byte[] bytes;
        if (m.Groups["enc"].Value.Equals("b", StringComparison.OrdinalIgnoreCase))
        {
            try { bytes = Convert.FromBase64String(text); } catch (FormatException) { return m.Value; }
        }
        else bytes = QuotedPrintable(text, header: true);
        return Decode(bytes, m.Groups["cs"].Value);
    });

    [GeneratedRegex(@"=\?(?<cs>[^?]+)\?(?<enc>[bBqQ])\?(?<text>[^?]*)\?=")]
    private static partial Regex EncodedWord();

    [GeneratedRegex(@"(\?=)\s+(=\?)")]
    private static partial Regex EncodedWordGap();

    /// <summary>Plain text of an HTML document: scripts, styles and comments dropped, block tags as line breaks, entities decoded, spaces collapsed.</summary>
    public static string HtmlToText(string html)
    {
        ArgumentNullException.ThrowIfNull(html);
        var s = Invisible().Replace(html, " ");
        s = BlockTag().Replace(s, "\n");
        s = Tag().Replace(s, " ");
        s = WebUtility.HtmlDecode(s).Replace('\u00a0', ' ');
        s = Spaces().Replace(s, " ");
        s = BlankLines().Replace(s, "\n");
        return string.Join('\n', s.Split('\n').Select(l => l.Trim())).Trim();
    }

    [GeneratedRegex(@"<!--.*?-->|<(script|style|head)\b.*?</\1\s*>", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex Invisible();

    [GeneratedRegex(@"<\s*(br|/p|p|/div|div|/tr|tr|/li|li|/h[1-6]|/table|hr)\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex BlockTag();

    [GeneratedRegex(@"<[^>]*>", RegexOptions.Singleline)]
    private static partial Regex Tag();

    [GeneratedRegex(@"[ \t\r\f\v]+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\n\s*\n+")]
    private static partial Regex BlankLines();
}
