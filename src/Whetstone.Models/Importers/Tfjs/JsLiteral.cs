using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Whetstone.Models.Importers.Tfjs;

/// <summary>A JavaScript value literal could not be read; the message gives the line, column and offset.</summary>
public sealed class JsLiteralException(string message, int offset) : FormatException(message)
{
    /// <summary>Character offset of the problem in the source text.</summary>
    public int Offset { get; } = offset;
}

/// <summary>
/// A strict reader for the JavaScript object literals that minifiers write (the nsfwjs <c>model.min.js</c> bundles):
/// objects with identifier, string or number keys; arrays; strings in double or single quotes with JS escapes;
/// numbers such as <c>.87</c>, <c>-.03</c>, <c>1e-5</c>; <c>!0</c>/<c>!1</c>, <c>true</c>/<c>false</c>, <c>null</c>,
/// <c>void 0</c> (read as null). Anything else (expressions, identifiers as values, comments, trailing garbage inside
/// a value) fails with the line and column. The result is the same <see cref="JsonNode"/> tree JSON would give.
/// </summary>
internal ref struct JsLiteral
{
    private readonly ReadOnlySpan<char> _s;
    private int _i;

    private JsLiteral(ReadOnlySpan<char> s, int start) { _s = s; _i = start; }

    /// <summary>Reads the whole text as one value (only whitespace may follow).</summary>
    public static JsonNode? Parse(string text)
    {
        var r = new JsLiteral(text, 0);
        var v = r.Value();
        r.SkipSpace();
        if (r._i != r._s.Length) r.Fail("unexpected text after the value");
        return v;
    }

    /// <summary>Reads one value starting at <paramref name="start"/>; returns it and the offset just after it.</summary>
    public static (JsonNode? Value, int End) ParseAt(string text, int start)
    {
        var r = new JsLiteral(text, start);
        var v = r.Value();
        return (v, r._i);
    }

    private JsonNode? Value()
    {
        SkipSpace();
        if (_i >= _s.Length) Fail("unexpected end of text, expected a value");
        char c = _s[_i];
        switch (c)
        {
            case '{': return Object();
            case '[': return Array();
            case '"' or '\'': return JsonValue.Create(String());
            case '!':
                if (_i + 1 < _s.Length && _s[_i + 1] is '0' or '1' && !IsIdentPart(At(_i + 2)) && !char.IsAsciiDigit(At(_i + 2)))
                {
                    bool v = _s[_i + 1] == '0';
                    _i += 2;
                    return JsonValue.Create(v);
                }
                Fail("only !0 and !1 are accepted after '!'");
                break;
        }
        if (c == '-' || c == '+' || c == '.' || char.IsAsciiDigit(c)) return JsonValue.Create(Number());
        if (IsIdentStart(c))
        {
            int start = _i;
            var word = Identifier();
            switch (word)
            {
                case "true": return JsonValue.Create(true);
                case "false": return JsonValue.Create(false);
                case "null": return null;
                case "void":
                    SkipSpace();
                    if (At(_i) == '0' && !char.IsAsciiDigit(At(_i + 1))) { _i++; return null; }
                    Fail("only 'void 0' is accepted");
                    break;
            }
            _i = start;
            Fail($"'{word}' is not a literal value (expressions and variables are not accepted)");
        }
        Fail($"unexpected character '{c}'");
        return null;
    }

    private JsonObject Object()
    {
        _i++; // {
        var o = new JsonObject();
        SkipSpace();
        if (At(_i) == '}') { _i++; return o; }
        while (true)
        {
            SkipSpace();
            int keyAt = _i;
            char c = At(_i);
            string key;
            if (c is '"' or '\'') key = String();
            else if (IsIdentStart(c)) key = Identifier();
            else if (char.IsAsciiDigit(c) || c == '.') key = Number().ToString("R", CultureInfo.InvariantCulture);
            else { Fail("expected a property name"); return o; }
            if (o.ContainsKey(key)) { _i = keyAt; Fail($"duplicate property '{key}'"); }
            SkipSpace();
            Expect(':');
            o[key] = Value();
            SkipSpace();
            if (At(_i) == ',') { _i++; SkipSpace(); if (At(_i) == '}') { _i++; return o; } continue; }
            if (At(_i) == '}') { _i++; return o; }
            Fail("expected ',' or '}' in an object");
        }
    }

    private JsonArray Array()
    {
        _i++; // [
        var a = new JsonArray();
        SkipSpace();
        if (At(_i) == ']') { _i++; return a; }
        while (true)
        {
            SkipSpace();
            if (At(_i) == ',') Fail("holes in arrays are not accepted");
            a.Add(Value());
            SkipSpace();
            if (At(_i) == ',') { _i++; SkipSpace(); if (At(_i) == ']') { _i++; return a; } continue; }
            if (At(_i) == ']') { _i++; return a; }
            Fail("expected ',' or ']' in an array");
        }
    }

    private string String()
    {
        char quote = _s[_i++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_i >= _s.Length) Fail("unterminated string");
            char c = _s[_i++];
            if (c == quote) return sb.ToString();
            if (c is '\n' or '\r') { _i--; Fail("line break inside a string"); }
            if (c != '\\') { sb.Append(c); continue; }
            if (_i >= _s.Length) Fail("unterminated string");
            char e = _s[_i++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '0' when !char.IsAsciiDigit(At(_i)): sb.Append('\0'); break;
                case 'x': sb.Append((char)Hex(2)); break;
                case 'u':
                    if (At(_i) == '{')
                    {
                        int close = _s[_i..].IndexOf('}');
                        if (close < 2 || close > 7) Fail("bad \\u{...} escape");
                        _i++;
                        int cp = Hex(close - 1);
                        _i++;
                        if (cp > 0x10FFFF) Fail("code point out of range");
                        sb.Append(char.ConvertFromUtf32(cp));
                    }
                    else sb.Append((char)Hex(4));
                    break;
                case '\r': if (At(_i) == '\n') _i++; break;   // line continuation
                case '\n': break;
                default:
                    if (char.IsAsciiDigit(e)) { _i--; Fail("octal escapes are not accepted"); }
                    sb.Append(e);   // \" \' \\ \/ and identity escapes
                    break;
            }
        }
    }

    private int Hex(int digits)
    {
        int v = 0;
        for (int k = 0; k < digits; k++)
        {
            char h = At(_i);
            int d = char.IsAsciiDigit(h) ? h - '0' : h is >= 'a' and <= 'f' ? h - 'a' + 10 : h is >= 'A' and <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) Fail("bad hexadecimal digit in an escape");
            v = v * 16 + d;
            _i++;
        }
        return v;
    }

    private double Number()
    {
        int start = _i;
        if (At(_i) is '-' or '+') _i++;
        int digits = 0;
        while (char.IsAsciiDigit(At(_i))) { _i++; digits++; }
        if (At(_i) == '.')
        {
            _i++;
            while (char.IsAsciiDigit(At(_i))) { _i++; digits++; }
        }
        if (digits == 0) { _i = start; Fail("malformed number"); }
        if (At(_i) is 'e' or 'E')
        {
            _i++;
            if (At(_i) is '-' or '+') _i++;
            if (!char.IsAsciiDigit(At(_i))) { _i = start; Fail("malformed exponent in a number"); }
            while (char.IsAsciiDigit(At(_i))) _i++;
        }
        if (IsIdentPart(At(_i)) || At(_i) == '.') { _i = start; Fail("malformed number (hex, octal, BigInt and separators are not accepted)"); }
        var text = _s[start.._i];
        if (text.Length > 1 && (text[0] == '0' || (text[0] is '-' or '+' && text[1] == '0')))
        {
            int z = text[0] == '0' ? 0 : 1;
            if (z + 1 < text.Length && char.IsAsciiDigit(text[z + 1])) { _i = start; Fail("numbers with a leading zero (legacy octal) are not accepted"); }
        }
        return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    private string Identifier()
    {
        int start = _i;
        _i++;
        while (IsIdentPart(At(_i))) _i++;
        return _s[start.._i].ToString();
    }

    private void Expect(char c)
    {
        if (At(_i) != c) Fail($"expected '{c}'");
        _i++;
    }

    private void SkipSpace()
    {
        while (_i < _s.Length && char.IsWhiteSpace(_s[_i])) _i++;
        if (_i + 1 < _s.Length && _s[_i] == '/' && _s[_i + 1] is '/' or '*') Fail("comments are not accepted");
    }

    private char At(int i) => i < _s.Length ? _s[i] : '\0';

    private static bool IsIdentStart(char c) => char.IsAsciiLetter(c) || c is '_' or '$';
    private static bool IsIdentPart(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '$';

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(string what)
    {
        int line = 1, col = 1;
        for (int k = 0; k < _i && k < _s.Length; k++)
            if (_s[k] == '\n') { line++; col = 1; } else col++;
        int from = Math.Max(0, _i - 30), to = Math.Min(_s.Length, _i + 30);
        var near = _s[from..to].ToString().Replace('\n', ' ');
        throw new JsLiteralException($"JavaScript literal: {what} at line {line}, column {col} (offset {_i}) near «{near}».", _i);
    }
}
