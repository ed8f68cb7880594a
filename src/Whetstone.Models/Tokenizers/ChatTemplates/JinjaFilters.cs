using System.Globalization;
using System.Text;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>Jinja2's filters and tests, and the Python string methods templates call, with their Python semantics.</summary>
internal sealed partial class JinjaInterpreter
{
    /// <summary>Filters this subset implements; others are refused when parsed, or in conditional code when evaluated, as jinja2 does.</summary>
    internal static readonly HashSet<string> KnownFilters = new(StringComparer.Ordinal)
    {
        "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "indent", "int", "items", "join", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount",
    };

    /// <summary>Tests this subset implements.</summary>
    internal static readonly HashSet<string> KnownTests = new(StringComparer.Ordinal)
    {
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "even", "false", "float", "ge", ">=", "gt",
        "greaterthan", ">", "in", "integer", "iterable", "le", "<=", "lower", "lt", "lessthan", "<", "mapping", "ne", "!=",
        "none", "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper",
    };

    private static object? Arg(List<object?> args, Dictionary<string, object?> kwargs, int index, string name, object? fallback) =>
        index < args.Count ? args[index] : kwargs.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>Each filter's parameters after the value, as jinja2 (and transformers' tojson) declare them; absent: varargs.</summary>
    private static readonly Dictionary<string, string[]> FilterParams = new(StringComparer.Ordinal)
    {
        ["default"] = ["default_value", "boolean"], ["d"] = ["default_value", "boolean"], ["trim"] = ["chars"], ["join"] = ["d", "attribute"],
        ["tojson"] = ["ensure_ascii", "indent", "separators", "sort_keys"], ["int"] = ["default", "base"], ["float"] = ["default"],
        ["round"] = ["precision", "method"], ["replace"] = ["old", "new", "count"], ["indent"] = ["width", "first", "blank"],
        ["sort"] = ["reverse", "case_sensitive", "attribute"], ["unique"] = ["case_sensitive", "attribute"], ["max"] = ["case_sensitive", "attribute"],
        ["min"] = ["case_sensitive", "attribute"], ["sum"] = ["attribute", "start"],
        ["first"] = [], ["last"] = [], ["length"] = [], ["count"] = [], ["list"] = [], ["reverse"] = [], ["string"] = [], ["upper"] = [],
        ["lower"] = [], ["capitalize"] = [], ["title"] = [], ["abs"] = [], ["items"] = [], ["safe"] = [], ["e"] = [], ["escape"] = [], ["wordcount"] = [],
    };

    private object? ApplyFilter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        if (FilterParams.TryGetValue(name, out var ps))
        {
            if (args.Count > ps.Length) throw Fail($"the filter '{name}' takes at most {ps.Length} argument(s), {args.Count} given");
            foreach (var k in kwargs.Keys)
            {
                int at = Array.IndexOf(ps, k);
                if (at < 0) throw Fail($"the filter '{name}' got an unexpected keyword argument '{k}'");
                if (at < args.Count) throw Fail($"the filter '{name}' got multiple values for argument '{k}'");
            }
        }
        switch (name)
        {
            case "safe": return value;
            case "string": return JinjaValues.Str(value);
            case "trim":
            {
                var chars = Arg(args, kwargs, 0, "chars", null);
                return PyStrip(JinjaValues.Str(value), chars as string, true, true);
            }
            case "upper": return JinjaValues.Str(value).ToUpperInvariant();
            case "lower": return JinjaValues.Str(value).ToLowerInvariant();
            case "capitalize": return Capitalize(JinjaValues.Str(value));
            case "title": return JinjaTitle(JinjaValues.Str(value));
            case "length" or "count": return (long)Length(value);
            case "wordcount": return (long)JinjaValues.Str(value).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "default" or "d":
            {
                var fallback = Arg(args, kwargs, 0, "default_value", "");
                bool boolean = JinjaValues.Truthy(Arg(args, kwargs, 1, "boolean", false));
                return value is JinjaUndefined || boolean && !JinjaValues.Truthy(value) ? fallback : value;
            }
            case "join":
            {
                string sep = JinjaValues.Str(Arg(args, kwargs, 0, "d", ""));
                var attr = Arg(args, kwargs, 1, "attribute", null);
                var items = Iterate(value);
                if (attr is not null) items = items.ConvertAll(x => GetPath(x, attr));
                return string.Join(sep, items.Select(JinjaValues.Str));
            }
            case "tojson":
            {
                var indentArg = Arg(args, kwargs, 1, "indent", null);
                int? indent = indentArg is long or bool ? (int)JinjaValues.ToLong(indentArg) : null;
                if (indentArg is string) throw Fail("tojson: a string indent is not supported");
                if (indent > 100) throw Fail($"tojson: indent {indent} is too large");
                bool sortKeys = JinjaValues.Truthy(Arg(args, kwargs, 3, "sort_keys", false));
                bool ensureAscii = JinjaValues.Truthy(Arg(args, kwargs, 0, "ensure_ascii", false));
                string? itemSep = null, keySep = null;
                if (Arg(args, kwargs, 2, "separators", null) is { } seps)
                {
                    var parts = Iterate(seps);
                    if (parts.Count != 2) throw Fail("tojson: separators must be a pair of strings");
                    itemSep = JinjaValues.Str(parts[0]);
                    keySep = JinjaValues.Str(parts[1]);
                }
                string json = JinjaValues.ToJson(value, indent, sortKeys, itemSep, keySep);
                return ensureAscii ? EscapeNonAscii(json) : json;
            }
            case "int" or "float" or "abs" or "round" when value is JinjaUndefined u:
                throw Fail(u.Hint);
            case "int":
            {
                var fallback = Arg(args, kwargs, 0, "default", 0L);
                long b = JinjaValues.ToLong(Arg(args, kwargs, 1, "base", 10L));
                return ToInt(value, b) ?? fallback;
            }
            case "float":
            {
                var fallback = Arg(args, kwargs, 0, "default", 0.0);
                return value switch
                {
                    double or long or bool => JinjaValues.ToDouble(value),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
                    _ => fallback,
                };
            }
            case "abs":
                return value switch
                {
                    double d => (object)Math.Abs(d),
                    long or bool => checked(Math.Abs(JinjaValues.ToLong(value))),
                    _ => throw Fail($"bad operand type for abs(): '{JinjaValues.TypeName(value)}'"),
                };
            case "round":
            {
                long precision = JinjaValues.ToLong(Arg(args, kwargs, 0, "precision", 0L));
                string method = JinjaValues.Str(Arg(args, kwargs, 1, "method", "common"));
                double x = JinjaValues.ToDouble(value), scale = Math.Pow(10, precision);
                return method switch
                {
                    "common" when value is long or bool && precision >= 0 => (object)JinjaValues.ToLong(value),
                    "common" => Math.Round(x, (int)Math.Clamp(precision, 0, 15), MidpointRounding.ToEven),
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    "floor" => Math.Floor(x * scale) / scale,
                    _ => throw Fail("method must be common, ceil or floor"),
                };
            }
            case "first":
            {
                var items = Iterate(value);
                return items.Count > 0 ? items[0] : new JinjaUndefined("No first item, sequence was empty.");
            }
            case "last":
            {
                var items = Iterate(value);
                return items.Count > 0 ? items[^1] : new JinjaUndefined("No last item, sequence was empty.");
            }
            case "list": return Iterate(value);
            case "reverse":
            {
                if (value is string s) { var chars = Iterate(s); chars.Reverse(); return string.Concat(chars.Select(c => (string)c!)); }
                var items = Iterate(value);
                items.Reverse();
                return items;
            }
            case "items":
                return value switch
                {
                    JinjaUndefined => new List<object?>(),
                    Dictionary<string, object?> d => d.Select(p => (object?)new JinjaTuple([p.Key, p.Value])).ToList(),
                    _ => throw Fail("Can only get item pairs from a mapping."),
                };
            case "replace":
            {
                string s = JinjaValues.Str(value);
                if (args.Count + kwargs.Count < 2) throw Fail("replace() missing required arguments 'old' and 'new'");
                string old = JinjaValues.Str(Arg(args, kwargs, 0, "old", ""));
                string repl = JinjaValues.Str(Arg(args, kwargs, 1, "new", ""));
                var count = Arg(args, kwargs, 2, "count", null);
                return PyReplace(s, old, repl, count is null ? -1 : JinjaValues.ToLong(count));
            }
            case "indent":
            {
                var width = Arg(args, kwargs, 0, "width", 4L);
                long w = width is string ? 0 : JinjaValues.ToLong(width);
                if (w > 10_000) throw Fail($"indent width {w} is too large");
                string ind = width is string ws ? ws : new string(' ', (int)Math.Max(0, w));
                bool first = JinjaValues.Truthy(Arg(args, kwargs, 1, "first", false));
                bool blank = JinjaValues.Truthy(Arg(args, kwargs, 2, "blank", false));
                var lines = SplitLines(JinjaValues.Str(value) + "\n");
                string rv;
                if (blank) rv = string.Join("\n" + ind, lines);
                else
                {
                    rv = lines[0];
                    if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? ind + l : l));
                }
                return first ? ind + rv : rv;
            }
            case "e" or "escape":
                return JinjaValues.Str(value).Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
                    .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);
            case "map":
            {
                var items = Iterate(value);
                if (kwargs.TryGetValue("attribute", out var attr))
                {
                    bool hasDefault = kwargs.TryGetValue("default", out var dflt);
                    return items.ConvertAll(x =>
                    {
                        var r = GetPath(x, attr);
                        return hasDefault && r is JinjaUndefined ? dflt : r;
                    });
                }
                if (items.Count == 0) return items;
                if (args.Count == 0) throw Fail("map requires a filter argument");
                string filter = JinjaValues.Str(args[0]);
                if (!KnownFilters.Contains(filter)) throw Fail($"No filter named '{filter}' found.");
                var rest = args.Skip(1).ToList();
                return items.ConvertAll(x => ApplyFilter(filter, x, rest, kwargs));
            }
            case "select" or "reject":
            {
                bool keep = name == "select";
                return Iterate(value).FindAll(x => Select(x, args, 0) == keep);
            }
            case "selectattr" or "rejectattr":
            {
                if (args.Count == 0) throw Fail($"{name}: missing the attribute name");
                bool keep = name == "selectattr";
                return Iterate(value).FindAll(x => Select(GetPath(x, args[0]), args, 1) == keep);
            }
            case "unique":
            {
                var r = new List<object?>();
                foreach (var x in Iterate(value))
                    if (!r.Exists(y => JinjaValues.Equal(Fold(y), Fold(x)))) r.Add(x);
                return r;
            }
            case "sort":
            {
                bool reverse = JinjaValues.Truthy(Arg(args, kwargs, 0, "reverse", false));
                bool caseSensitive = JinjaValues.Truthy(Arg(args, kwargs, 1, "case_sensitive", false));
                var attr = Arg(args, kwargs, 2, "attribute", null);
                var items = Iterate(value);
                object? Key(object? x) { var k = attr is null ? x : GetPath(x, attr); return caseSensitive ? k : Fold(k); }
                var keyed = items.Select((x, i) => (Key: Key(x), Item: x, Index: i)).ToList();
                keyed.Sort((p, q) =>
                {
                    int c = JinjaValues.Compare(p.Key, q.Key) ?? throw Fail($"'<' not supported between instances of '{JinjaValues.TypeName(p.Key)}' and '{JinjaValues.TypeName(q.Key)}'");
                    return c != 0 ? (reverse ? -c : c) : p.Index.CompareTo(q.Index);
                });
                return keyed.ConvertAll(p => p.Item);
            }
            case "max" or "min":
            {
                var items = Iterate(value);
                if (items.Count == 0) return new JinjaUndefined($"No aggregated item, sequence was empty.");
                var best = items[0];
                foreach (var x in items.Skip(1))
                {
                    int c = JinjaValues.Compare(Fold(x), Fold(best)) ?? throw Fail("values cannot be compared");
                    if (name == "max" ? c > 0 : c < 0) best = x;
                }
                return best;
            }
            case "sum":
            {
                var attr = Arg(args, kwargs, 0, "attribute", null);
                object? total = Arg(args, kwargs, 1, "start", 0L);
                foreach (var x in Iterate(value)) total = Arithmetic("+", total, attr is null ? x : GetPath(x, attr));
                return total;
            }
            default: throw Fail($"No filter named '{name}' found.");
        }
    }

    private static object? Fold(object? v) => v is string s ? s.ToLowerInvariant() : v;

    /// <summary>select/selectattr: a test name and its arguments from <paramref name="from"/>, or truthiness.</summary>
    private bool Select(object? x, List<object?> args, int from)
    {
        if (args.Count <= from) return JinjaValues.Truthy(x);
        string test = JinjaValues.Str(args[from]);
        if (!KnownTests.Contains(test)) throw Fail($"No test named '{test}' found.");
        return ApplyTest(test, x, args.Skip(from + 1).ToList());
    }

    /// <summary>Jinja's attribute getter: "a.b.0" walks attributes and integer items.</summary>
    private object? GetPath(object? x, object? path)
    {
        if (path is long or bool) return GetItem(x, path);
        foreach (var part in JinjaValues.Str(path).Split('.'))
        {
            if (x is JinjaUndefined) return x;
            x = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? GetItem(x, i) : GetItem(x, part);
        }
        return x;
    }

    private static int Length(object? v) => v switch
    {
        string s => Iterate(s).Count,
        List<object?> l => l.Count,
        JinjaTuple t => t.Items.Count,
        Dictionary<string, object?> d => d.Count,
        JinjaUndefined => 0,
        _ => throw Fail($"object of type '{JinjaValues.TypeName(v)}' has no len()"),
    };

    private static object? ToInt(object? v, long b)
    {
        switch (v)
        {
            case long or bool: return JinjaValues.ToLong(v);
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : null;
            case string s:
            {
                string t = s.Trim().Replace("_", "", StringComparison.Ordinal);
                if (b == 10 && long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
                if (b == 16 && long.TryParse(t.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? t[2..] : t, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long h)) return h;
                if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && double.IsFinite(f)) return (long)Math.Truncate(f);
                return null;
            }
            default: return null;
        }
    }

    private static string EscapeNonAscii(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
            if (c < 0x80) sb.Append(c);
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    private static readonly HashSet<string> TestsWithOneArgument = new(StringComparer.Ordinal)
    {
        "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "sameas",
    };

    private bool ApplyTest(string name, object? v, List<object?> args)
    {
        if (!KnownTests.Contains(name)) throw Fail($"No test named '{name}' found.");
        int want = TestsWithOneArgument.Contains(name) ? 1 : 0;
        if (args.Count != want) throw Fail($"the test '{name}' takes {want} argument(s), {args.Count} given");
        object? a0 = args.Count > 0 ? args[0] : null;
        switch (name)
        {
            case "defined": return v is not JinjaUndefined;
            case "undefined": return v is JinjaUndefined;
            case "none": return v is null;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "string": return v is string;
            case "number": return v is long or double or bool;
            case "integer": return v is long;
            case "float": return v is double;
            case "mapping": return v is Dictionary<string, object?>;
            case "iterable": return v is string or List<object?> or JinjaTuple or Dictionary<string, object?> or JinjaUndefined;
            case "sequence": return v is string or List<object?> or JinjaTuple or Dictionary<string, object?> or JinjaUndefined;
            case "callable": return v is JinjaCallable or JinjaUndefined;
            case "lower": return v is string sl && sl == sl.ToLowerInvariant();
            case "upper": return v is string su && su == su.ToUpperInvariant();
            case "even": return JinjaValues.ToLong(RequireNumber(v)) % 2 == 0;
            case "odd": return JinjaValues.ToLong(RequireNumber(v)) % 2 != 0;
            case "divisibleby":
            {
                long d = JinjaValues.ToLong(RequireNumber(a0));
                if (d == 0) throw Fail("integer division or modulo by zero");
                return JinjaValues.ToLong(RequireNumber(v)) % d == 0;
            }
            case "eq" or "equalto" or "==": return JinjaValues.Equal(v, a0);
            case "ne" or "!=": return !JinjaValues.Equal(v, a0);
            case "lt" or "lessthan" or "<": return CompareOp("<", v, a0);
            case "le" or "<=": return CompareOp("<=", v, a0);
            case "gt" or "greaterthan" or ">": return CompareOp(">", v, a0);
            case "ge" or ">=": return CompareOp(">=", v, a0);
            case "in": return Contains(a0, v);
            case "sameas":
                return v is null || a0 is null || v is bool || a0 is bool ? Equals(v, a0) && v?.GetType() == a0?.GetType() : ReferenceEquals(v, a0)
                    || v is long x && a0 is long y && x == y && x is >= -5 and <= 256;
            default: throw Fail($"No test named '{name}' found.");
        }
    }

    private static object? RequireNumber(object? v) =>
        JinjaValues.IsNumber(v) ? v : v is JinjaUndefined u ? throw Fail(u.Hint) : throw Fail($"unsupported operand type(s) for %: '{JinjaValues.TypeName(v)}' and 'int'");

    // ---- Python string methods ----

    private JinjaCallable? StringMethod(string s, string name) => name switch
    {
        "strip" => (a, _) => PyStrip(s, StripChars(a, name), true, true),
        "lstrip" => (a, _) => PyStrip(s, StripChars(a, name), true, false),
        "rstrip" => (a, _) => PyStrip(s, StripChars(a, name), false, true),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => PyTitle(s),
        "capitalize" => (_, _) => Capitalize(s),
        "startswith" => (a, _) => Affix(s, a, true),
        "endswith" => (a, _) => Affix(s, a, false),
        "split" => (a, k) => PySplit(s, Arg(a, k, 0, "sep", null), JinjaValues.ToLong(Arg(a, k, 1, "maxsplit", -1L)), false),
        "rsplit" => (a, k) => PySplit(s, Arg(a, k, 0, "sep", null), JinjaValues.ToLong(Arg(a, k, 1, "maxsplit", -1L)), true),
        "splitlines" => (_, _) => SplitLines(s).ConvertAll(x => (object?)x),
        "replace" => (a, _) => a.Count < 2 ? throw Fail("replace() takes at least 2 arguments")
            : PyReplace(s, JinjaValues.Str(a[0]), JinjaValues.Str(a[1]), a.Count > 2 ? JinjaValues.ToLong(a[2]) : -1),
        "find" => (a, _) => a.Count > 0 && a[0] is string t ? (long)s.IndexOf(t, StringComparison.Ordinal) : throw Fail("find() takes a string"),
        "rfind" => (a, _) => a.Count > 0 && a[0] is string t ? (long)s.LastIndexOf(t, StringComparison.Ordinal) : throw Fail("rfind() takes a string"),
        "count" => (a, _) => a.Count > 0 && a[0] is string t ? (long)CountOf(s, t) : throw Fail("count() takes a string"),
        "join" => (a, _) => a.Count == 1 ? string.Join(s, Iterate(a[0]).Select(x => x as string ?? throw Fail($"sequence item: expected str instance, {JinjaValues.TypeName(x)} found"))) : throw Fail("join() takes one iterable"),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "isspace" => (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace),
        "isupper" => (_, _) => s.Any(char.IsLetter) && s == s.ToUpperInvariant(),
        "islower" => (_, _) => s.Any(char.IsLetter) && s == s.ToLowerInvariant(),
        _ => null,
    };

    private static string? StripChars(List<object?> a, string method) => a.Count switch
    {
        0 => null,
        1 => a[0] is null ? null : a[0] as string ?? throw Fail($"{method} arg must be None or str"),
        _ => throw Fail($"{method} expected at most 1 argument, got {a.Count}"),
    };

    private static int CountOf(string s, string t)
    {
        if (t.Length == 0) return s.Length + 1;
        int n = 0;
        for (int i = s.IndexOf(t, StringComparison.Ordinal); i >= 0; i = s.IndexOf(t, i + t.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static bool Affix(string s, List<object?> a, bool start)
    {
        if (a.Count == 0) throw Fail($"{(start ? "startswith" : "endswith")}() takes at least 1 argument");
        IEnumerable<object?> options = a[0] is JinjaTuple t ? t.Items : a[0] is List<object?> l ? l : [a[0]];
        foreach (var o in options)
        {
            if (o is not string p) throw Fail($"{(start ? "startswith" : "endswith")} first arg must be str or a tuple of str, not {JinjaValues.TypeName(o)}");
            if (start ? s.StartsWith(p, StringComparison.Ordinal) : s.EndsWith(p, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static bool IsPySpace(char c) => char.IsWhiteSpace(c) || c is '\x1c' or '\x1d' or '\x1e' or '\x1f';

    internal static string PyStrip(string s, string? chars, bool left, bool right)
    {
        int lo = 0, hi = s.Length;
        Func<char, bool> strip = chars is null ? IsPySpace : c => chars.Contains(c, StringComparison.Ordinal);
        if (left) while (lo < hi && strip(s[lo])) lo++;
        if (right) while (hi > lo && strip(s[hi - 1])) hi--;
        return s[lo..hi];
    }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's str.title(): a cased letter after an uncased character is upper case, other letters lower case.</summary>
    private static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (char c in s)
        {
            bool cased = char.IsUpper(c) || char.IsLower(c) || char.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;
            sb.Append(cased ? (prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)) : c);
            prevCased = cased;
        }
        return sb.ToString();
    }

    /// <summary>Jinja's title filter: each piece split at whitespace and "-({[&lt;" is capitalized.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            bool sep = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            sb.Append(sep ? c : start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = sep;
        }
        return sb.ToString();
    }

    private static string PyReplace(string s, string old, string repl, long count)
    {
        if (count < 0) return old.Length == 0 ? string.Concat(Iterate(s).Select(c => repl + (string)c!)) + repl : s.Replace(old, repl, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            if (old.Length == 0)
            {
                sb.Append(repl);
                if (pos < s.Length) sb.Append(s[pos++]);
                else { pos = s.Length + 1; break; }
                continue;
            }
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0) break;
            sb.Append(s, pos, i - pos).Append(repl);
            pos = i + old.Length;
        }
        if (pos <= s.Length) sb.Append(s, pos, s.Length - pos);
        return sb.ToString();
    }

    private static List<object?> PySplit(string s, object? sep, long maxsplit, bool fromRight)
    {
        var r = new List<object?>();
        if (sep is null or JinjaUndefined)
        {
            if (fromRight && maxsplit >= 0)
            {
                var rev = new List<object?>();
                int j = s.Length;
                while (j > 0)
                {
                    while (j > 0 && IsPySpace(s[j - 1])) j--;
                    if (j == 0) break;
                    if (rev.Count == maxsplit) { rev.Add(PyStrip(s[..j], null, true, false)); break; }
                    int i = j;
                    while (i > 0 && !IsPySpace(s[i - 1])) i--;
                    rev.Add(s[i..j]);
                    j = i;
                }
                rev.Reverse();
                return rev;
            }
            int k = 0;
            while (k < s.Length)
            {
                while (k < s.Length && IsPySpace(s[k])) k++;
                if (k >= s.Length) break;
                if (maxsplit >= 0 && r.Count == maxsplit) { r.Add(PyStrip(s[k..], null, false, true)); break; }
                int j = k;
                while (j < s.Length && !IsPySpace(s[j])) j++;
                r.Add(s[k..j]);
                k = j;
            }
            return r;
        }
        if (sep is not string sp) throw Fail($"must be str or None, not {JinjaValues.TypeName(sep)}");
        if (sp.Length == 0) throw Fail("empty separator");
        var parts = s.Split(sp);
        if (maxsplit < 0 || parts.Length <= maxsplit + 1) { r.AddRange(parts); return r; }
        if (!fromRight)
        {
            r.AddRange(parts.Take((int)maxsplit));
            r.Add(string.Join(sp, parts.Skip((int)maxsplit)));
        }
        else
        {
            r.Add(string.Join(sp, parts.Take(parts.Length - (int)maxsplit)));
            r.AddRange(parts.Skip(parts.Length - (int)maxsplit));
        }
        return r;
    }

    private static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
                start = i + 1;
            }
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }
}
