using System.Globalization;
using System.Text;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>An error raised while evaluating, without a location yet; the node that failed adds its line and column.</summary>
internal sealed class JinjaRuntimeError(string reason, bool raised = false) : Exception(reason)
{
    public bool Raised { get; } = raised;
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class JinjaLoop(List<object?> items)
{
    public List<object?> Items { get; } = items;
    public int Index0 { get; set; }
}

/// <summary>Limits that keep a hostile or broken template from running away.</summary>
internal sealed record JinjaLimits(int MaxOutputChars = 16 << 20, long MaxLoopIterations = 1_000_000, int MaxCallDepth = 100, int MaxRange = 100_000);

/// <summary>
/// Evaluates a parsed template (<see cref="JinjaParser"/>) against variables, with Jinja2's semantics as Hugging Face
/// runs chat templates: an immutable sandbox (no list.append, dict.update), default Undefined, Python str()/repr() of
/// values, <c>break</c>/<c>continue</c>, and the globals <c>range</c>, <c>namespace</c>, <c>dict</c>,
/// <c>raise_exception</c>, <c>strftime_now</c>.
/// </summary>
internal sealed partial class JinjaInterpreter
{
    private sealed class Scope(Scope? parent)
    {
        public Scope? Parent { get; } = parent;
        public Dictionary<string, object?> Vars { get; } = new(StringComparer.Ordinal);

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    private enum Flow { Normal, Break, Continue }

    private readonly int[] _lineStarts;
    private readonly JinjaLimits _limits;
    private readonly Func<DateTime> _clock;
    private long _iterations;
    private long _outputChars;
    private int _callDepth;

    private JinjaInterpreter(int[] lineStarts, JinjaLimits limits, Func<DateTime> clock)
    {
        _lineStarts = lineStarts;
        _limits = limits;
        _clock = clock;
    }

    /// <summary>Renders <paramref name="template"/> with <paramref name="variables"/> (already template values).</summary>
    public static string Render(IReadOnlyList<JinjaStmt> template, int[] lineStarts, IReadOnlyDictionary<string, object?> variables,
        Func<DateTime> clock, JinjaLimits? limits = null)
    {
        var it = new JinjaInterpreter(lineStarts, limits ?? new JinjaLimits(), clock);
        var globals = new Scope(null);
        it.AddGlobals(globals.Vars);
        var root = new Scope(globals);
        foreach (var (k, v) in variables) root.Vars[k] = v;
        var sb = new StringBuilder();
        Flow flow;
        try { flow = it.ExecBody(template, root, sb); }
        catch (InsufficientExecutionStackException) { throw new ChatTemplateException("the template recursed too deeply to render"); }
        catch (Exception e) when (e is not ChatTemplateException)
        {
            throw new ChatTemplateException($"{InternalError}{e.GetType().Name}: {e.Message}", e);
        }
        if (flow != Flow.Normal) throw new ChatTemplateException("'break' or 'continue' outside a loop");
        return sb.ToString();
    }

    /// <summary>How a failure of the interpreter itself (a bug, not the template's fault) begins its message.</summary>
    internal const string InternalError = "internal error of the Jinja interpreter: ";

    /// <summary>Parses and renders a template; <paramref name="variables"/> hold .NET values (converted as <see cref="JinjaValues.FromClr"/>).</summary>
    public static string RenderSource(string source, IReadOnlyDictionary<string, object?> variables, Func<DateTime>? clock = null, JinjaLimits? limits = null)
    {
        var ast = JinjaParser.Parse(source, out var lineStarts);
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in variables) vars[k] = JinjaValues.FromClr(v);
        return Render(ast, lineStarts, vars, clock ?? (() => DateTime.Now), limits);
    }

    private ChatTemplateException Located(JinjaRuntimeError e, int position)
    {
        var (line, col) = JinjaLexer.Locate(_lineStarts, position);
        return e.Raised ? new ChatTemplateRaisedException(e.Message, line, col) : new ChatTemplateException(e.Message, line, col);
    }

    private static JinjaRuntimeError Fail(string reason) => new(reason);

    private void Append(StringBuilder sb, string s)
    {
        _outputChars += s.Length;
        if (_outputChars > _limits.MaxOutputChars) throw Fail($"the rendering is longer than {_limits.MaxOutputChars} characters");
        sb.Append(s);
    }

    // ---- statements ----

    private Flow ExecBody(IReadOnlyList<JinjaStmt> body, Scope scope, StringBuilder sb)
    {
        foreach (var stmt in body)
        {
            var flow = Exec(stmt, scope, sb);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Exec(JinjaStmt stmt, Scope scope, StringBuilder sb)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        try
        {
            switch (stmt)
            {
                case TextStmt t: Append(sb, t.Text); return Flow.Normal;
                case OutputStmt o: Append(sb, JinjaValues.Str(Eval(o.Expr, scope))); return Flow.Normal;
                case IfStmt i:
                    foreach (var (test, body) in i.Branches)
                        if (JinjaValues.Truthy(Eval(test, scope))) return ExecBody(body, scope, sb);
                    return i.Else is null ? Flow.Normal : ExecBody(i.Else, scope, sb);
                case ForStmt f: ExecFor(f, scope, sb); return Flow.Normal;
                case SetStmt s: ExecSet(s, scope); return Flow.Normal;
                case SetBlockStmt sb2:
                {
                    var inner = new StringBuilder();
                    var flow = ExecBody(sb2.Body, new Scope(scope), inner);
                    object? text = inner.ToString();
                    if (sb2.Filters is not null)
                    {
                        var withBody = new Scope(scope);
                        withBody.Vars[""] = text;
                        text = Eval(sb2.Filters, withBody);
                    }
                    scope.Vars[sb2.Target] = text;
                    return flow;
                }
                case MacroStmt m: scope.Vars[m.Name] = MakeMacro(m, scope); return Flow.Normal;
                case LoopControlStmt c: return c.IsBreak ? Flow.Break : Flow.Continue;
                case BlockStmt b:
                {
                    if (b.Filter is null) return ExecBody(b.Body, new Scope(scope), sb);
                    var inner = new StringBuilder();
                    var flow = ExecBody(b.Body, scope, inner);
                    Append(sb, JinjaValues.Str(ApplyFilter(b.Filter, inner.ToString(), [], [])));
                    return flow;
                }
                default: throw Fail($"cannot execute {stmt.GetType().Name}");
            }
        }
        catch (JinjaRuntimeError e) { throw Located(e, stmt.Position); }
        catch (InvalidOperationException e) { throw Located(new JinjaRuntimeError(e.Message), stmt.Position); }
        catch (OverflowException) { throw Located(new JinjaRuntimeError("integer overflow (values beyond 64 bits are not supported)"), stmt.Position); }
    }

    private void ExecFor(ForStmt f, Scope scope, StringBuilder sb)
    {
        var source = Iterate(Eval(f.Iterable, scope));
        List<object?> items;
        if (f.Filter is null) items = source;
        else
        {
            items = [];
            foreach (var x in source)
            {
                var s = new Scope(scope);
                Bind(s, f.Targets, x);
                if (JinjaValues.Truthy(Eval(f.Filter, s))) items.Add(x);
            }
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) ExecBody(f.Else, scope, sb);
            return;
        }
        var loop = new JinjaLoop(items);
        for (int i = 0; i < items.Count; i++)
        {
            if (++_iterations > _limits.MaxLoopIterations) throw Fail($"more than {_limits.MaxLoopIterations} loop iterations");
            loop.Index0 = i;
            var s = new Scope(scope);
            Bind(s, f.Targets, items[i]);
            s.Vars["loop"] = loop;
            if (ExecBody(f.Body, s, sb) == Flow.Break) break;
        }
    }

    private static void Bind(Scope scope, IReadOnlyList<string> targets, object? value)
    {
        if (targets.Count == 1) { scope.Vars[targets[0]] = value; return; }
        var parts = value is string ? null : IterateOrNull(value);
        if (parts is null) throw Fail($"cannot unpack {JinjaValues.TypeName(value)} into {targets.Count} names");
        if (parts.Count != targets.Count)
            throw Fail(parts.Count > targets.Count ? $"too many values to unpack (expected {targets.Count})" : $"not enough values to unpack (expected {targets.Count}, got {parts.Count})");
        for (int i = 0; i < targets.Count; i++) scope.Vars[targets[i]] = parts[i];
    }

    private void ExecSet(SetStmt s, Scope scope)
    {
        var value = Eval(s.Value, scope);
        if (s.Attribute is null) { Bind(scope, s.Targets, value); return; }
        if (!scope.TryGet(s.Targets[0], out var target) || target is not JinjaNamespace ns)
            throw Fail($"cannot assign attribute '{s.Attribute}' on '{s.Targets[0]}': it is not a namespace()");
        ns.Attributes[s.Attribute] = value;
    }

    private JinjaCallable MakeMacro(MacroStmt m, Scope defined) => (args, kwargs) =>
    {
        if (args.Count > m.Params.Count) throw Fail($"macro '{m.Name}' takes not more than {m.Params.Count} argument(s)");
        if (++_callDepth > _limits.MaxCallDepth) throw Fail($"macro calls nested deeper than {_limits.MaxCallDepth} (runaway recursion?)");
        try
        {
            var s = new Scope(defined);
            for (int i = 0; i < m.Params.Count; i++)
            {
                string p = m.Params[i];
                if (i < args.Count)
                {
                    if (kwargs.ContainsKey(p)) throw Fail($"macro '{m.Name}' got multiple values for argument '{p}'");
                    s.Vars[p] = args[i];
                }
                else if (kwargs.TryGetValue(p, out var kv)) s.Vars[p] = kv;
                else s.Vars[p] = m.Defaults[i] is { } d ? Eval(d, s) : new JinjaUndefined($"parameter '{p}' was not provided");
            }
            foreach (var k in kwargs.Keys)
                if (!m.Params.Contains(k)) throw Fail($"macro '{m.Name}' takes no keyword argument '{k}'");
            var sb = new StringBuilder();
            ExecBody(m.Body, s, sb);
            return sb.ToString();
        }
        finally { _callDepth--; }
    };

    // ---- expressions ----

    private object? Eval(JinjaExpr e, Scope scope)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        try { return EvalCore(e, scope); }
        catch (JinjaRuntimeError err) { throw Located(err, e.Position); }
        catch (InvalidOperationException err) { throw Located(new JinjaRuntimeError(err.Message), e.Position); }
        catch (OverflowException) { throw Located(new JinjaRuntimeError("integer overflow (values beyond 64 bits are not supported)"), e.Position); }
    }

    private object? EvalCore(JinjaExpr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : new JinjaUndefined($"'{n.Name}' is undefined");
            case ListExpr l:
            {
                var items = new List<object?>(l.Items.Count);
                foreach (var x in l.Items) items.Add(Eval(x, scope));
                return l.IsTuple ? new JinjaTuple(items) : items;
            }
            case DictExpr d:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, x) in d.Pairs)
                {
                    var key = Eval(k, scope);
                    if (key is not string and not long and not bool and not double and not null)
                        throw Fail($"dict keys must be strings or numbers, not {JinjaValues.TypeName(key)}");
                    r[JinjaValues.Str(key)] = Eval(x, scope);
                }
                return r;
            }
            case AttrExpr a: return GetAttr(Eval(a.Target, scope), a.Name);
            case ItemExpr i: return GetItem(Eval(i.Target, scope), Eval(i.Index, scope));
            case SliceExpr s:
                return Slice(Eval(s.Target, scope), s.Start is null ? null : Eval(s.Start, scope),
                    s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope));
            case CallExpr c:
            {
                var callee = Eval(c.Callee, scope);
                var (args, kwargs) = EvalArgs(c.Args, c.Kwargs, scope);
                return callee switch
                {
                    JinjaCallable f => f(args, kwargs),
                    JinjaUndefined u => throw Fail(u.Hint),
                    _ => throw Fail($"'{JinjaValues.TypeName(callee)}' object is not callable"),
                };
            }
            case FilterExpr f:
            {
                var target = Eval(f.Target, scope);
                var (args, kwargs) = EvalArgs(f.Args, f.Kwargs, scope);
                return ApplyFilter(f.Name, target, args, kwargs);
            }
            case TestExpr t:
            {
                var target = Eval(t.Target, scope);
                var args = new List<object?>(t.Args.Count);
                foreach (var x in t.Args) args.Add(Eval(x, scope));
                return ApplyTest(t.Name, target, args) != t.Negated;
            }
            case UnaryExpr u:
            {
                var x = Eval(u.Operand, scope);
                if (u.Op == "not") return !JinjaValues.Truthy(x);
                if (x is JinjaUndefined ux) throw Fail(ux.Hint);
                if (!JinjaValues.IsNumber(x)) throw Fail($"bad operand type for unary {u.Op}: '{JinjaValues.TypeName(x)}'");
                if (u.Op == "+") return x is bool b ? (b ? 1L : 0L) : x;
                return x is double d ? (object)-d : checked(-JinjaValues.ToLong(x));
            }
            case BinaryExpr b:
            {
                var left = Eval(b.Left, scope);
                if (b.Op == "and") return JinjaValues.Truthy(left) ? Eval(b.Right, scope) : left;
                if (b.Op == "or") return JinjaValues.Truthy(left) ? left : Eval(b.Right, scope);
                return Arithmetic(b.Op, left, Eval(b.Right, scope));
            }
            case CompareExpr c:
            {
                var left = Eval(c.First, scope);
                foreach (var (op, operand) in c.Rest)
                {
                    var right = Eval(operand, scope);
                    if (!CompareOp(op, left, right)) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                return JinjaValues.Truthy(Eval(c.Test, scope)) ? Eval(c.Then, scope)
                    : c.Else is null ? new JinjaUndefined("the conditional expression had no else branch") : Eval(c.Else, scope);
            default: throw Fail($"cannot evaluate {e.GetType().Name}");
        }
    }

    private (List<object?>, Dictionary<string, object?>) EvalArgs(IReadOnlyList<JinjaExpr> args, IReadOnlyList<(string Name, JinjaExpr Value)> kwargs, Scope scope)
    {
        var a = new List<object?>(args.Count);
        foreach (var x in args) a.Add(Eval(x, scope));
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, x) in kwargs) k[name] = Eval(x, scope);
        return (a, k);
    }

    private object? Arithmetic(string op, object? a, object? b)
    {
        if (op == "~") return JinjaValues.Str(a) + JinjaValues.Str(b);
        if (a is JinjaUndefined ua) throw Fail(ua.Hint);
        if (b is JinjaUndefined ub) throw Fail(ub.Hint);
        bool na = JinjaValues.IsNumber(a), nb = JinjaValues.IsNumber(b);
        if (na && nb)
        {
            bool fl = a is double || b is double;
            if (op == "/")
            {
                double den = JinjaValues.ToDouble(b);
                if (den == 0) throw Fail("division by zero");
                return JinjaValues.ToDouble(a) / den;
            }
            if (fl)
            {
                double x = JinjaValues.ToDouble(a), y = JinjaValues.ToDouble(b);
                switch (op)
                {
                    case "+": return x + y;
                    case "-": return x - y;
                    case "*": return x * y;
                    case "**": return Math.Pow(x, y);
                    case "//": if (y == 0) throw Fail("float floor division by zero"); return Math.Floor(x / y);
                    case "%":
                        if (y == 0) throw Fail("float modulo");
                        double m = x % y;
                        return m != 0 && (m < 0) != (y < 0) ? m + y : m;
                }
            }
            else
            {
                long x = JinjaValues.ToLong(a), y = JinjaValues.ToLong(b);
                switch (op)
                {
                    case "+": return checked(x + y);
                    case "-": return checked(x - y);
                    case "*": return checked(x * y);
                    case "**":
                        if (y < 0) return Math.Pow(x, y);
                        long r = 1;
                        for (long i = 0; i < y; i++) { r = checked(r * x); if (r == 0 || r == 1 && x == 1) break; }
                        return r;
                    case "//":
                    {
                        if (y == 0) throw Fail("integer division or modulo by zero");
                        long q = x / y;
                        return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q;
                    }
                    case "%":
                    {
                        if (y == 0) throw Fail("integer division or modulo by zero");
                        long m = x % y;
                        return m != 0 && (m < 0) != (y < 0) ? m + y : m;
                    }
                }
            }
        }
        switch (op)
        {
            case "+" when a is string sa && b is string sb: return sa + sb;
            case "+" when a is List<object?> la && b is List<object?> lb: return new List<object?>([.. la, .. lb]);
            case "+" when a is JinjaTuple ta && b is JinjaTuple tb: return new JinjaTuple([.. ta.Items, .. tb.Items]);
            case "*" when a is string rs && b is long or bool: return Repeat(rs, JinjaValues.ToLong(b));
            case "*" when b is string rs2 && a is long or bool: return Repeat(rs2, JinjaValues.ToLong(a));
            case "*" when a is List<object?> l && b is long n: return RepeatList(l, n);
            case "*" when b is List<object?> l2 && a is long n2: return RepeatList(l2, n2);
            case "+" when a is string:
                throw Fail($"can only concatenate str (not \"{JinjaValues.TypeName(b)}\") to str");
            case "+" when a is List<object?>:
                throw Fail($"can only concatenate list (not \"{JinjaValues.TypeName(b)}\") to list");
        }
        throw Fail($"unsupported operand type(s) for {op}: '{JinjaValues.TypeName(a)}' and '{JinjaValues.TypeName(b)}'");
    }

    private string Repeat(string s, long n)
    {
        if (n <= 0 || s.Length == 0) return "";
        if (s.Length * (double)n > _limits.MaxOutputChars) throw Fail($"a string repeated to more than {_limits.MaxOutputChars} characters");
        return new StringBuilder(s.Length * (int)n).Insert(0, s, (int)n).ToString();
    }

    private List<object?> RepeatList(List<object?> l, long n)
    {
        var r = new List<object?>();
        if (n <= 0) return r;
        if (l.Count * (double)n > _limits.MaxRange * 10.0) throw Fail("a list repeated to too many items");
        for (long i = 0; i < n; i++) r.AddRange(l);
        return r;
    }

    private bool CompareOp(string op, object? a, object? b)
    {
        switch (op)
        {
            case "==": return JinjaValues.Equal(a, b);
            case "!=": return !JinjaValues.Equal(a, b);
            case "in": return Contains(b, a);
            case "notin": return !Contains(b, a);
        }
        if (a is JinjaUndefined ua) throw Fail(ua.Hint);
        if (b is JinjaUndefined ub) throw Fail(ub.Hint);
        int c = JinjaValues.Compare(a, b)
            ?? throw Fail($"'{op}' not supported between instances of '{JinjaValues.TypeName(a)}' and '{JinjaValues.TypeName(b)}'");
        return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
    }

    private static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string s:
                if (item is not string t) throw Fail($"'in <string>' requires string as left operand, not {JinjaValues.TypeName(item)}");
                return s.Contains(t, StringComparison.Ordinal);
            case List<object?> l: return l.Exists(x => JinjaValues.Equal(x, item));
            case JinjaTuple tu: return tu.Items.Exists(x => JinjaValues.Equal(x, item));
            case Dictionary<string, object?> d:
                if (item is List<object?> or Dictionary<string, object?> or JinjaNamespace) throw Fail($"unhashable type: '{JinjaValues.TypeName(item)}'");
                return item is string k ? d.ContainsKey(k) : item is long or bool or double or null && d.ContainsKey(JinjaValues.Str(item));
            case JinjaUndefined: return false;
            default: throw Fail($"argument of type '{JinjaValues.TypeName(container)}' is not iterable");
        }
    }

    /// <summary>The items a for loop or filter walks: list/tuple items, dict keys, string characters, nothing for Undefined.</summary>
    internal static List<object?> Iterate(object? v) =>
        IterateOrNull(v) ?? throw Fail($"'{JinjaValues.TypeName(v)}' object is not iterable");

    private static List<object?>? IterateOrNull(object? v) => v switch
    {
        List<object?> l => [.. l],
        JinjaTuple t => [.. t.Items],
        Dictionary<string, object?> d => [.. d.Keys],
        string s => [.. StringItems(s)],
        JinjaUndefined => [],
        _ => null,
    };

    private static IEnumerable<object?> StringItems(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { yield return s.Substring(i, 2); i++; }
            else yield return s[i].ToString();
        }
    }

    // ---- attribute and item access ----

    private static readonly HashSet<string> UnsafeMethods = new(StringComparer.Ordinal)
    {
        "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem",
        "add", "discard", "difference_update", "intersection_update", "symmetric_difference_update", "__setitem__", "__delitem__",
    };

    private object? GetAttr(object? obj, string name)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw Fail(u.Hint);
            case Dictionary<string, object?> d:
                if (name is "items" or "keys" or "values" or "get" or "copy") return DictMethod(d, name);
                if (d.TryGetValue(name, out var v)) return v;
                if (UnsafeMethods.Contains(name)) return UnsafeMethod(name, "dict");
                return new JinjaUndefined($"'dict object' has no attribute '{name}'");
            case string s:
                return (object?)StringMethod(s, name) ?? new JinjaUndefined($"'str object' has no attribute '{name}'");
            case List<object?> or JinjaTuple:
            {
                var items = obj is List<object?> l ? l : ((JinjaTuple)obj).Items;
                string type = obj is List<object?> ? "list" : "tuple";
                if (name == "index") return (JinjaCallable)((a, _) =>
                {
                    int i = items.FindIndex(x => JinjaValues.Equal(x, a.Count > 0 ? a[0] : null));
                    return i >= 0 ? i : throw Fail("value is not in list");
                });
                if (name == "count") return (JinjaCallable)((a, _) => (long)items.Count(x => JinjaValues.Equal(x, a.Count > 0 ? a[0] : null)));
                if (UnsafeMethods.Contains(name)) return UnsafeMethod(name, type);
                return new JinjaUndefined($"'{type} object' has no attribute '{name}'");
            }
            case JinjaNamespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : new JinjaUndefined($"'Namespace object' has no attribute '{name}'");
            case JinjaLoop loop: return LoopAttr(loop, name);
            default:
                return new JinjaUndefined($"'{JinjaValues.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    private static JinjaCallable UnsafeMethod(string name, string type) =>
        (_, _) => throw Fail($"access to attribute '{name}' of '{type}' object is unsafe.");

    private object? LoopAttr(JinjaLoop loop, string name)
    {
        int i = loop.Index0, n = loop.Items.Count;
        return name switch
        {
            "index" => (long)(i + 1),
            "index0" => (long)i,
            "revindex" => (long)(n - i),
            "revindex0" => (long)(n - i - 1),
            "first" => i == 0,
            "last" => i == n - 1,
            "length" => (long)n,
            "depth" => 1L,
            "depth0" => 0L,
            "previtem" => i > 0 ? loop.Items[i - 1] : new JinjaUndefined("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new JinjaUndefined("there is no next item"),
            "cycle" => (JinjaCallable)((a, _) => a.Count == 0 ? throw Fail("no items for cycling given") : a[i % a.Count]),
            _ => new JinjaUndefined($"'LoopContext object' has no attribute '{name}'"),
        };
    }

    private static JinjaCallable DictMethod(Dictionary<string, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(p => (object?)new JinjaTuple([p.Key, p.Value])).ToList(),
        "keys" => (_, _) => d.Keys.Select(k => (object?)k).ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "copy" => (_, _) => new Dictionary<string, object?>(d, StringComparer.Ordinal),
        _ => (a, k) =>
        {
            if (a.Count == 0) throw Fail("get expected at least 1 argument, got 0");
            object? fallback = a.Count > 1 ? a[1] : k.GetValueOrDefault("default");
            return a[0] is string key && d.TryGetValue(key, out var v) ? v : fallback;
        },
    };

    private object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw Fail(u.Hint);
            case Dictionary<string, object?> d:
            {
                if (key is string ks) return d.TryGetValue(ks, out var v) ? v : GetAttr(obj, ks);
                if (key is long or bool or double && d.TryGetValue(JinjaValues.Str(key), out var v2)) return v2;
                return new JinjaUndefined($"'dict object' has no element {JinjaValues.Str(key)}");
            }
            case List<object?> or JinjaTuple or string:
            {
                if (key is long or bool)
                {
                    long i = JinjaValues.ToLong(key);
                    if (obj is string str)
                    {
                        var chars = Iterate(str);
                        if (i < 0) i += chars.Count;
                        return i >= 0 && i < chars.Count ? chars[(int)i] : new JinjaUndefined($"'str object' has no element {key}");
                    }
                    var items = obj is List<object?> l ? l : ((JinjaTuple)obj).Items;
                    if (i < 0) i += items.Count;
                    return i >= 0 && i < items.Count ? items[(int)i]
                        : new JinjaUndefined($"'{JinjaValues.TypeName(obj)} object' has no element {JinjaValues.Str(key)}");
                }
                if (key is string name) return GetAttr(obj, name);
                // jinja2's getitem turns the TypeError into Undefined
                return new JinjaUndefined($"'{JinjaValues.TypeName(obj)} object' has no element {JinjaValues.Repr(key)}");
            }
            default:
                return key is string n2 ? GetAttr(obj, n2) : new JinjaUndefined($"'{JinjaValues.TypeName(obj)} object' has no element {JinjaValues.Str(key)}");
        }
    }

    private static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is JinjaUndefined u) throw Fail(u.Hint);
        List<object?>? items = obj switch
        {
            List<object?> l => l,
            JinjaTuple t => t.Items,
            string s => Iterate(s),
            _ => null,
        };
        // slicing a number, bool or None: Undefined, as jinja2 gives for constants (it raises TypeError for variables)
        if (items is null) return new JinjaUndefined($"'{JinjaValues.TypeName(obj)} object' has no element slice");
        long n = items.Count;
        long st = step is null ? 1 : IndexArg(step);
        if (st == 0) throw Fail("slice step cannot be zero");
        long lo, hi;
        if (st > 0)
        {
            lo = start is null ? 0 : Clamp(IndexArg(start), n, 0, n);
            hi = stop is null ? n : Clamp(IndexArg(stop), n, 0, n);
        }
        else
        {
            lo = start is null ? n - 1 : Clamp(IndexArg(start), n, -1, n - 1);
            hi = stop is null ? -1 : Clamp(IndexArg(stop), n, -1, n - 1);
        }
        var r = new List<object?>();
        if (st > 0) for (long i = lo; i < hi; i += st) r.Add(items[(int)i]);
        else for (long i = lo; i > hi; i += st) r.Add(items[(int)i]);
        return obj switch
        {
            string => string.Concat(r.Select(x => (string)x!)),
            JinjaTuple => new JinjaTuple(r),
            _ => r,
        };
    }

    private static long IndexArg(object? v) => v switch
    {
        long or bool => JinjaValues.ToLong(v),
        null => 0,
        _ => throw Fail("slice indices must be integers or None"),
    };

    private static long Clamp(long i, long n, long lo, long hi)
    {
        if (i < 0) i += n;
        return Math.Clamp(i, lo, hi);
    }

    // ---- globals ----

    private void AddGlobals(Dictionary<string, object?> g)
    {
        g["range"] = (JinjaCallable)((a, _) =>
        {
            if (a.Count is 0 or > 3 || a.Exists(x => x is not long and not bool)) throw Fail("range() takes 1 to 3 integer arguments");
            long start = a.Count == 1 ? 0 : JinjaValues.ToLong(a[0]);
            long stop = JinjaValues.ToLong(a.Count == 1 ? a[0] : a[1]);
            long step = a.Count == 3 ? JinjaValues.ToLong(a[2]) : 1;
            if (step == 0) throw Fail("range() arg 3 must not be zero");
            long count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
            if (count > _limits.MaxRange)
                throw Fail($"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({_limits.MaxRange}).");
            var r = new List<object?>((int)count);
            for (long i = 0; i < count; i++) r.Add(start + i * step);
            return r;
        });
        g["namespace"] = (JinjaCallable)((a, k) =>
        {
            var ns = new JinjaNamespace();
            foreach (var x in a)
            {
                if (x is not Dictionary<string, object?> d) throw Fail("namespace() takes a dict or keyword arguments");
                foreach (var (key, v) in d) ns.Attributes[key] = v;
            }
            foreach (var (key, v) in k) ns.Attributes[key] = v;
            return ns;
        });
        g["dict"] = (JinjaCallable)((a, k) =>
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var x in a)
            {
                if (x is not Dictionary<string, object?> src) throw Fail("dict() takes a dict or keyword arguments");
                foreach (var (key, v) in src) d[key] = v;
            }
            foreach (var (key, v) in k) d[key] = v;
            return d;
        });
        g["raise_exception"] = (JinjaCallable)((a, _) =>
            throw new JinjaRuntimeError(a.Count > 0 ? JinjaValues.Str(a[0]) : "raise_exception() called", raised: true));
        g["strftime_now"] = (JinjaCallable)((a, _) =>
            a.Count == 1 && a[0] is string f ? Strftime(_clock(), f) : throw Fail("strftime_now() takes one format string"));
    }

    /// <summary>Python's datetime.strftime for the common C codes (English month and day names).</summary>
    internal static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            bool noPad = false;
            if (c == '-' && i + 1 < format.Length) { noPad = true; c = format[++i]; }
            string Pad(int v, int w) => noPad ? v.ToString(inv) : v.ToString(new string('0', w), inv);
            sb.Append(c switch
            {
                'd' => Pad(t.Day, 2),
                'm' => Pad(t.Month, 2),
                'Y' => t.Year.ToString(inv),
                'y' => Pad(t.Year % 100, 2),
                'H' => Pad(t.Hour, 2),
                'I' => Pad(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'l' => (t.Hour % 12 == 0 ? 12 : t.Hour % 12).ToString(inv).PadLeft(2),
                'k' => t.Hour.ToString(inv).PadLeft(2),
                'M' => Pad(t.Minute, 2),
                'S' => Pad(t.Second, 2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => Pad(t.DayOfYear, 3),
                'b' or 'h' => inv.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => inv.DateTimeFormat.GetMonthName(t.Month),
                'a' => inv.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek),
                'A' => inv.DateTimeFormat.GetDayName(t.DayOfWeek),
                'w' => ((int)t.DayOfWeek).ToString(inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                'F' => t.ToString("yyyy-MM-dd", inv),
                'T' => t.ToString("HH:mm:ss", inv),
                'D' => t.ToString("MM/dd/yy", inv),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
