using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>
/// Jinja's default Undefined: falsy, empty when printed, iterates as nothing; attribute access, calls and arithmetic on
/// it fail with <see cref="Hint"/> ("'x' is undefined", "'dict object' has no attribute 'y'").
/// </summary>
internal sealed class JinjaUndefined(string hint)
{
    public string Hint { get; } = hint;
}

/// <summary>What <c>namespace()</c> returns: attributes that <c>{% set ns.x = … %}</c> may assign from inside loops.</summary>
internal sealed class JinjaNamespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A tuple (from <c>(a, b)</c>, <c>dict.items()</c>, <c>loop.cycle</c>'s arguments): a list printed with parentheses.</summary>
internal sealed class JinjaTuple(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>A callable value: a global function, a bound method or a macro. Arguments positional, then by name.</summary>
internal delegate object? JinjaCallable(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>Python semantics for template values: truth, str(), repr(), ==, ordering, json.dumps.</summary>
/// <remarks>
/// Values are: null (None), <see cref="JinjaUndefined"/>, bool, long, double, string, <see cref="List{T}"/> of values,
/// <see cref="JinjaTuple"/>, <see cref="Dictionary{TKey,TValue}"/> with string keys in insertion order,
/// <see cref="JinjaNamespace"/>, <see cref="JinjaLoop"/>, <see cref="JinjaCallable"/>.
/// </remarks>
internal static class JinjaValues
{
    public static bool IsNumber(object? v) => v is long or double or bool;

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        JinjaTuple t => t.Items.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        JinjaUndefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        JinjaTuple => "tuple",
        Dictionary<string, object?> => "dict",
        JinjaNamespace => "Namespace",
        JinjaLoop => "LoopContext",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python's str(): what <c>{{ }}</c> prints.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v, int depth)
    {
        if (depth > 100) throw new InvalidOperationException("value nested too deeply to print");
        switch (v)
        {
            case string s: AppendStringRepr(sb, s); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++) { if (i > 0) sb.Append(", "); AppendRepr(sb, list[i], depth + 1); }
                sb.Append(']');
                break;
            case JinjaTuple t:
                sb.Append('(');
                for (int i = 0; i < t.Items.Count; i++) { if (i > 0) sb.Append(", "); AppendRepr(sb, t.Items[i], depth + 1); }
                if (t.Items.Count == 1) sb.Append(',');
                sb.Append(')');
                break;
            case Dictionary<string, object?> d:
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in d)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendStringRepr(sb, k);
                    sb.Append(": ");
                    AppendRepr(sb, x, depth + 1);
                }
                sb.Append('}');
                break;
            case JinjaNamespace ns:
                sb.Append("<Namespace ");
                AppendRepr(sb, ns.Attributes, depth + 1);
                sb.Append('>');
                break;
            case JinjaLoop loop: sb.Append("<LoopContext ").Append(loop.Index0 + 1).Append('/').Append(loop.Items.Count).Append('>'); break;
            case JinjaUndefined: sb.Append("Undefined"); break;
            case JinjaCallable: sb.Append("<function>"); break;
            default: sb.Append(Str(v)); break;
        }
    }

    private static void AppendStringRepr(StringBuilder sb, string s)
    {
        char q = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        sb.Append(q);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == q) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append(q);
    }

    /// <summary>Python's repr of a float: shortest round-trip digits, "1.0" for integers, exponent below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // shortest round-trip digits, then Python's layout: positional for 1e-4 <= |d| < 1e16, else d.ddde±XX
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        bool neg = r[0] == '-';
        if (neg) r = r[1..];
        int ePos = r.IndexOf('E', StringComparison.Ordinal);
        int exp = ePos >= 0 ? int.Parse(r.AsSpan(ePos + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        string mant = ePos >= 0 ? r[..ePos] : r;
        int dot = mant.IndexOf('.', StringComparison.Ordinal);
        string intPart = dot < 0 ? mant : mant[..dot];
        string all = intPart + (dot < 0 ? "" : mant[(dot + 1)..]);
        int point = intPart.Length + exp;
        int lead = 0;
        while (lead < all.Length - 1 && all[lead] == '0') lead++;
        all = all[lead..].TrimEnd('0');
        point -= lead;
        if (all.Length == 0) return neg ? "-0.0" : "0.0";
        int sci = point - 1;
        string body;
        if (sci < -4 || sci >= 16)
            body = all[..1] + (all.Length > 1 ? "." + all[1..] : "") + "e" + (sci < 0 ? "-" : "+") + Math.Abs(sci).ToString("00", CultureInfo.InvariantCulture);
        else if (point <= 0) body = "0." + new string('0', -point) + all;
        else if (point >= all.Length) body = all + new string('0', point - all.Length) + ".0";
        else body = all[..point] + "." + all[point..];
        return neg ? "-" + body : body;
    }

    public static bool Equal(object? a, object? b)
    {
        if (a is JinjaUndefined || b is JinjaUndefined) return a is JinjaUndefined && b is JinjaUndefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        switch (a)
        {
            case string s: return b is string s2 && string.Equals(s, s2, StringComparison.Ordinal);
            case List<object?> l: return b is List<object?> m && SeqEqual(l, m);
            case JinjaTuple t: return b is JinjaTuple u && SeqEqual(t.Items, u.Items);
            case Dictionary<string, object?> d:
                if (b is not Dictionary<string, object?> e || d.Count != e.Count) return false;
                foreach (var (k, v) in d) if (!e.TryGetValue(k, out var w) || !Equal(v, w)) return false;
                return true;
            default: return ReferenceEquals(a, b);
        }
    }

    private static bool SeqEqual(List<object?> a, List<object?> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (!Equal(a[i], b[i])) return false;
        return true;
    }

    public static long ToLong(object? v) => v switch { bool b => b ? 1 : 0, long l => l, double d => (long)d, _ => 0 };
    public static double ToDouble(object? v) => v switch { bool b => b ? 1 : 0, long l => l, double d => d, _ => 0 };

    /// <summary>Python ordering (&lt;): numbers with numbers, strings with strings, lists element-wise; else null (TypeError).</summary>
    public static int? Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (a is string s && b is string t) return Math.Sign(string.CompareOrdinal(s, t));
        List<object?>? x = a is List<object?> la ? la : (a as JinjaTuple)?.Items;
        List<object?>? y = b is List<object?> lb ? lb : (b as JinjaTuple)?.Items;
        if (x is not null && y is not null && a?.GetType() == b?.GetType())
        {
            for (int i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (Equal(x[i], y[i])) continue;
                return Compare(x[i], y[i]);
            }
            return x.Count.CompareTo(y.Count);
        }
        return null;
    }

    /// <summary>json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson filter calls it.</summary>
    public static string ToJson(object? v, int? indent, bool sortKeys = false, string? itemSep = null, string? keySep = null)
    {
        var sb = new StringBuilder();
        itemSep ??= indent is null ? ", " : ",";
        keySep ??= ": ";
        AppendJson(sb, v, indent, 0, sortKeys, itemSep, keySep);
        return sb.ToString();
    }

    private static void Newline(StringBuilder sb, int? indent, int level)
    {
        if (indent is null) return;
        sb.Append('\n').Append(' ', indent.Value * level);
    }

    private static void AppendJson(StringBuilder sb, object? v, int? indent, int level, bool sortKeys, string itemSep, string keySep)
    {
        if (level > 100) throw new InvalidOperationException("value nested too deeply for tojson");
        switch (v)
        {
            case null: sb.Append("null"); break;
            case JinjaUndefined: throw new InvalidOperationException("Object of type Undefined is not JSON serializable");
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FloatRepr(d));
                break;
            case string s: AppendJsonString(sb, s); break;
            case List<object?> or JinjaTuple:
            {
                var items = v is List<object?> list ? list : ((JinjaTuple)v).Items;
                if (items.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    Newline(sb, indent, level + 1);
                    AppendJson(sb, items[i], indent, level + 1, sortKeys, itemSep, keySep);
                }
                Newline(sb, indent, level);
                sb.Append(']');
                break;
            }
            case Dictionary<string, object?> or JinjaNamespace:
            {
                var d = v is Dictionary<string, object?> dd ? dd : ((JinjaNamespace)v).Attributes;
                if (d.Count == 0) { sb.Append("{}"); break; }
                IEnumerable<KeyValuePair<string, object?>> pairs = sortKeys ? d.OrderBy(p => p.Key, StringComparer.Ordinal) : d;
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in pairs)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    Newline(sb, indent, level + 1);
                    AppendJsonString(sb, k);
                    sb.Append(keySep);
                    AppendJson(sb, x, indent, level + 1, sortKeys, itemSep, keySep);
                }
                Newline(sb, indent, level);
                sb.Append('}');
                break;
            }
            default: throw new InvalidOperationException($"Object of type {TypeName(v)} is not JSON serializable");
        }
    }

    private static void AppendJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>A .NET value (string, numbers, bool, lists, dictionaries, <see cref="JsonElement"/>) as a template value.</summary>
    public static object? FromClr(object? v, int depth = 0)
    {
        if (depth > 100) throw new ChatTemplateException("a value passed to the template is nested too deeply");
        switch (v)
        {
            case null: return null;
            case string or bool or long or double or JinjaUndefined or JinjaNamespace or JinjaCallable or JinjaTuple: return v;
            case int i: return (long)i;
            case short sh: return (long)sh;
            case byte by: return (long)by;
            case uint ui: return (long)ui;
            case sbyte sb: return (long)sb;
            case ushort us: return (long)us;
            case ulong ul: return ul <= long.MaxValue ? (object)(long)ul : (double)ul;
            case float f: return (double)f;
            case decimal m: return (double)m;
            case JsonElement e: return FromJson(e, depth);
            case System.Text.Json.Nodes.JsonNode node:
            {
                using var doc = JsonDocument.Parse(node.ToJsonString());
                return FromJson(doc.RootElement, depth);
            }
            case List<object?> l:
            {
                var r = new List<object?>(l.Count);
                foreach (var x in l) r.Add(FromClr(x, depth + 1));
                return r;
            }
            case System.Collections.IDictionary d:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (System.Collections.DictionaryEntry kv in d) r[Str(FromClr(kv.Key, depth + 1))] = FromClr(kv.Value, depth + 1);
                return r;
            }
            case IEnumerable<KeyValuePair<string, object?>> kvs:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, x) in kvs) r[k] = FromClr(x, depth + 1);
                return r;
            }
            case System.Collections.IEnumerable seq:
            {
                var r = new List<object?>();
                foreach (var x in seq) r.Add(FromClr(x, depth + 1));
                return r;
            }
            default: return v.ToString();
        }
    }

    public static object? FromJson(JsonElement e, int depth = 0)
    {
        if (depth > 100) throw new ChatTemplateException("a value passed to the template is nested too deeply");
        switch (e.ValueKind)
        {
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.Null or JsonValueKind.Undefined: return null;
            case JsonValueKind.Number:
                return e.TryGetInt64(out long l) ? (object)l : e.GetDouble();
            case JsonValueKind.Array:
            {
                var r = new List<object?>();
                foreach (var x in e.EnumerateArray()) r.Add(FromJson(x, depth + 1));
                return r;
            }
            default:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject()) r[p.Name] = FromJson(p.Value, depth + 1);
                return r;
            }
        }
    }
}
