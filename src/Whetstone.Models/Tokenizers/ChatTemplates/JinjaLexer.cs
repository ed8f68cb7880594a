using System.Globalization;
using System.Text;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

internal enum JinjaTokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

/// <summary>One lexed token; <see cref="Position"/> is its offset in the template source.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Value, int Position);

/// <summary>
/// Splits a Jinja2 template into text, <c>{{ }}</c> and <c>{% %}</c> tokens (comments dropped), applying whitespace
/// control as Jinja's lexer does: <c>{%-</c>/<c>-%}</c> strip all whitespace on that side, <c>+</c> keeps it, and with
/// trim_blocks the first newline after a block or comment tag is removed, with lstrip_blocks the spaces and tabs from
/// the start of a line up to a block or comment tag.
/// </summary>
internal sealed class JinjaLexer
{
    private readonly string _src;
    private readonly bool _trimBlocks;
    private readonly bool _lstripBlocks;
    private readonly List<JinjaToken> _tokens = [];
    private readonly int[] _lineStarts;
    private int _pos;

    private JinjaLexer(string src, bool trimBlocks, bool lstripBlocks)
    {
        _src = src;
        _trimBlocks = trimBlocks;
        _lstripBlocks = lstripBlocks;
        var starts = new List<int> { 0 };
        for (int i = 0; i < src.Length; i++) if (src[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    /// <summary>1-based line and column of an offset.</summary>
    public static (int Line, int Column) Locate(int[] lineStarts, int position)
    {
        int idx = Array.BinarySearch(lineStarts, position);
        if (idx < 0) idx = ~idx - 1;
        return (idx + 1, position - lineStarts[idx] + 1);
    }

    /// <summary>
    /// Tokenizes after Jinja's source normalization: "\r\n" and "\r" become "\n", and one trailing newline is dropped
    /// (keep_trailing_newline=False).
    /// </summary>
    public static (List<JinjaToken> Tokens, int[] LineStarts) Tokenize(string src, bool trimBlocks = true, bool lstripBlocks = true)
    {
        src = Normalize(src);
        var lx = new JinjaLexer(src, trimBlocks, lstripBlocks);
        lx.Run();
        return (lx._tokens, lx._lineStarts);
    }

    /// <summary>The source as Jinja's lexer sees it (newlines normalized, one trailing newline removed).</summary>
    public static string Normalize(string src)
    {
        if (src.Contains('\r', StringComparison.Ordinal)) src = src.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return src.EndsWith('\n') ? src[..^1] : src;
    }

    private ChatTemplateException Error(string reason, int position)
    {
        var (line, col) = Locate(_lineStarts, position);
        return new ChatTemplateException(reason, line, col);
    }

    private void Run()
    {
        bool lineStarting = true;
        while (_pos < _src.Length)
        {
            int tag = FindTagStart(_pos);
            string text = tag < 0 ? _src[_pos..] : _src[_pos..tag];
            int textPos = _pos;
            if (tag < 0)
            {
                if (text.Length > 0) _tokens.Add(new(JinjaTokenKind.Text, text, textPos));
                _pos = _src.Length;
                break;
            }
            char kind = _src[tag + 1];
            char sign = tag + 2 < _src.Length && _src[tag + 2] is '-' or '+' ? _src[tag + 2] : '\0';
            if (sign == '-') text = text.TrimEnd();
            else if (sign != '+' && kind != '{' && _lstripBlocks)
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && IsAllWhitespace(text, lpos)) text = text[..lpos];
            }
            if (text.Length > 0) _tokens.Add(new(JinjaTokenKind.Text, text, textPos));
            _pos = tag + 2 + (sign != '\0' ? 1 : 0);
            if (kind == '%' && RawBegin.Match(_src, _pos) is { Success: true } raw)
            {
                _pos += raw.Length;
                lineStarting = LexRaw(tag, raw.Length > 0 && _src[_pos - 1] == '\n');
                continue;
            }
            if (kind == '#') lineStarting = LexComment(tag);
            else lineStarting = LexTag(tag, kind == '{');
        }
        _tokens.Add(new(JinjaTokenKind.End, "", _src.Length));
    }

    private static readonly System.Text.RegularExpressions.Regex RawBegin = new(@"\G\s*raw\s*(?:-%\}\s*|%\})");
    private static readonly System.Text.RegularExpressions.Regex RawEnd = new(@"\{%(-|\+|)\s*endraw\s*(\+%\}|-%\}\s*|%\})");

    /// <summary>
    /// <c>{% raw %}…{% endraw %}</c>: the content is text, with the end tag's whitespace control (and lstrip_blocks)
    /// applied to it; returns whether what was consumed ended with a newline.
    /// </summary>
    private bool LexRaw(int tag, bool lineStarting)
    {
        var end = RawEnd.Match(_src, _pos);
        if (!end.Success) throw Error("unclosed raw block: expected '{% endraw %}'", tag);
        string text = _src[_pos..end.Index];
        string sign = end.Groups[1].Value;
        if (sign == "-") text = text.TrimEnd();
        else if (sign != "+" && _lstripBlocks)
        {
            int lpos = text.LastIndexOf('\n') + 1;
            if ((lpos > 0 || lineStarting) && lpos < text.Length && IsAllWhitespace(text, lpos)) text = text[..lpos];
        }
        if (text.Length > 0) _tokens.Add(new(JinjaTokenKind.Text, text, _pos));
        _pos = end.Index + end.Length;
        string close = end.Groups[2].Value;
        bool consumedNewline = close.Length > 0 && close[^1] == '\n';
        if (close == "%}" && _trimBlocks && _pos < _src.Length && _src[_pos] == '\n') { _pos++; consumedNewline = true; }
        return consumedNewline;
    }

    private static bool IsAllWhitespace(string s, int from)
    {
        for (int i = from; i < s.Length; i++) if (!char.IsWhiteSpace(s[i])) return false;
        return true;
    }

    private int FindTagStart(int from)
    {
        int i = from;
        while (true)
        {
            i = _src.IndexOf('{', i);
            if (i < 0 || i + 1 >= _src.Length) return -1;
            if (_src[i + 1] is '{' or '%' or '#') return i;
            i++;
        }
    }

    /// <summary>Skips a comment; returns whether what it consumed ended with a newline.</summary>
    private bool LexComment(int tag)
    {
        if (_pos >= _src.Length) return false; // "{#" ending the template: jinja2 lets it pass as an empty comment
        int end = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0) throw Error("unclosed comment: expected '#}'", tag);
        bool strip = end > _pos && _src[end - 1] == '-';
        bool keep = end > _pos && _src[end - 1] == '+';
        _pos = end + 2;
        return AfterEnd(strip, keep, block: true);
    }

    /// <summary>Whitespace control after an end delimiter; returns whether the consumed text ended with a newline.</summary>
    private bool AfterEnd(bool strip, bool keep, bool block)
    {
        int start = _pos;
        if (strip) { while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos])) _pos++; }
        else if (block && !keep && _trimBlocks && _pos < _src.Length && _src[_pos] == '\n') _pos++;
        return _pos > start ? _src[_pos - 1] == '\n' : false;
    }

    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}", ";"];

    private bool LexTag(int tag, bool variable)
    {
        _tokens.Add(new(variable ? JinjaTokenKind.VariableBegin : JinjaTokenKind.BlockBegin, "", tag));
        var brackets = new Stack<char>();
        string close = variable ? "}}" : "%}";
        while (true)
        {
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos])) _pos++;
            if (_pos >= _src.Length) throw Error($"unexpected end of template: expected '{close}'", tag);
            if (brackets.Count == 0)
            {
                if (string.CompareOrdinal(_src, _pos, close, 0, 2) == 0)
                {
                    _tokens.Add(new(variable ? JinjaTokenKind.VariableEnd : JinjaTokenKind.BlockEnd, "", _pos));
                    _pos += 2;
                    return AfterEnd(false, false, !variable);
                }
                if ((_src[_pos] == '-' || _src[_pos] == '+' && !variable) && string.CompareOrdinal(_src, _pos + 1, close, 0, 2) == 0)
                {
                    char sign = _src[_pos];
                    _tokens.Add(new(variable ? JinjaTokenKind.VariableEnd : JinjaTokenKind.BlockEnd, "", _pos));
                    _pos += 3;
                    return AfterEnd(sign == '-', sign == '+', !variable);
                }
            }
            char c = _src[_pos];
            int p = _pos;
            if (char.IsLetter(c) || c == '_')
            {
                while (_pos < _src.Length && (char.IsLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
                _tokens.Add(new(JinjaTokenKind.Name, _src[p.._pos], p));
            }
            else if (char.IsAsciiDigit(c)) LexNumber();
            else if (c is '\'' or '"') _tokens.Add(new(JinjaTokenKind.String, LexString(), p));
            else
            {
                string? op = null;
                foreach (var o in Operators)
                    if (string.CompareOrdinal(_src, _pos, o, 0, o.Length) == 0) { op = o; break; }
                if (op is null) throw Error($"unexpected character '{c}'", _pos);
                if (op is "(" or "[" or "{") brackets.Push(op[0]);
                else if (op is ")" or "]" or "}")
                {
                    if (brackets.Count == 0) throw Error($"unexpected '{op}'", _pos);
                    char want = brackets.Pop() switch { '(' => ')', '[' => ']', _ => '}' };
                    if (op[0] != want) throw Error($"unexpected '{op}', expected '{want}'", _pos);
                }
                _pos += op.Length;
                _tokens.Add(new(JinjaTokenKind.Operator, op, p));
            }
        }
    }

    private void LexNumber()
    {
        int p = _pos;
        bool isFloat = false;
        if (_src[_pos] == '0' && _pos + 1 < _src.Length && (char.IsAsciiDigit(_src[_pos + 1]) || _src[_pos + 1] == '_'))
        {
            while (_pos < _src.Length && (_src[_pos] == '0' || _src[_pos] == '_' && _pos + 1 < _src.Length && _src[_pos + 1] == '0')) _pos++;
            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) throw Error("invalid integer literal: leading zeros are not allowed", p);
            _tokens.Add(new(JinjaTokenKind.Integer, "0", p));
            return;
        }
        void Digits() { while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_' && _pos + 1 < _src.Length && char.IsAsciiDigit(_src[_pos + 1]))) _pos++; }
        Digits();
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1])) { isFloat = true; _pos++; Digits(); }
        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int q = _pos + 1;
            if (q < _src.Length && _src[q] is '+' or '-') q++;
            if (q < _src.Length && char.IsAsciiDigit(_src[q])) { isFloat = true; _pos = q; Digits(); }
        }
        string text = _src[p.._pos].Replace("_", "", StringComparison.Ordinal);
        _tokens.Add(new(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, text, p));
    }

    /// <summary>A quoted string with Python's escapes (\n, \t, \r, \\, \', \", \xNN, \uNNNN, \UNNNNNNNN; others kept).</summary>
    private string LexString()
    {
        char quote = _src[_pos];
        int start = _pos;
        _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _src.Length) throw Error("unterminated string literal", start);
            char c = _src[_pos];
            if (c == quote) { _pos++; return sb.ToString(); }
            if (c != '\\') { sb.Append(c); _pos++; continue; }
            if (_pos + 1 >= _src.Length) throw Error("unterminated string literal", start);
            char e = _src[_pos + 1];
            _pos += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case >= '0' and <= '7':
                {
                    // Python's octal escape: up to three digits
                    int v = e - '0', n = 1;
                    while (n < 3 && _pos < _src.Length && _src[_pos] is >= '0' and <= '7') { v = v * 8 + (_src[_pos] - '0'); _pos++; n++; }
                    sb.Append((char)v);
                    break;
                }
                case '\n': break;
                case 'x': sb.Append(HexEscape(2, start)); break;
                case 'u': sb.Append(HexEscape(4, start)); break;
                case 'U': sb.Append(HexEscape(8, start)); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    private string HexEscape(int digits, int start)
    {
        if (_pos + digits > _src.Length || !int.TryParse(_src.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp)
            || cp > 0x10FFFF)
            throw Error($"invalid \\{(digits == 2 ? "x" : digits == 4 ? "u" : "U")} escape in string literal", start);
        _pos += digits;
        return char.ConvertFromUtf32(cp is >= 0xD800 and <= 0xDFFF ? 0xFFFD : cp);
    }
}
