using System.Globalization;

namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>
/// Recursive-descent parser from <see cref="JinjaLexer"/> tokens to statements, with Jinja2's operator precedence
/// (loosest first): <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>,
/// <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then postfix <c>.a [i] [a:b] (args)</c>, filters and tests.
/// </summary>
internal sealed class JinjaParser
{
    private const int MaxDepth = 200;
    private readonly List<JinjaToken> _tokens;
    private readonly int[] _lineStarts;
    private int _i;
    private int _depth;
    private int _loopDepth;

    private JinjaParser(List<JinjaToken> tokens, int[] lineStarts)
    {
        _tokens = tokens;
        _lineStarts = lineStarts;
    }

    public static IReadOnlyList<JinjaStmt> Parse(string source, out int[] lineStarts)
    {
        lineStarts = [0];
        try
        {
            var (tokens, starts) = JinjaLexer.Tokenize(source);
            lineStarts = starts;
            var p = new JinjaParser(tokens, starts);
            var (body, _) = p.ParseBody([]);
            foreach (var stmt in body) p.CheckNames(stmt, conditional: false);
            return body;
        }
        catch (InsufficientExecutionStackException)
        {
            throw new ChatTemplateException("the template is nested too deeply to parse");
        }
        catch (Exception e) when (e is not ChatTemplateException)
        {
            throw new ChatTemplateException($"{JinjaInterpreter.InternalError}{e.GetType().Name}: {e.Message}", e);
        }
    }

    private JinjaToken Cur => _tokens[_i];
    private JinjaToken Next() => _tokens[_i++];

    private ChatTemplateException Error(string reason, int position)
    {
        var (line, col) = JinjaLexer.Locate(_lineStarts, position);
        return new ChatTemplateException(reason, line, col);
    }

    private static string Describe(JinjaToken t) => t.Kind switch
    {
        JinjaTokenKind.End => "end of template",
        JinjaTokenKind.BlockEnd => "'%}'",
        JinjaTokenKind.VariableEnd => "'}}'",
        JinjaTokenKind.BlockBegin => "'{%'",
        JinjaTokenKind.VariableBegin => "'{{'",
        JinjaTokenKind.Text => "template text",
        JinjaTokenKind.String => "a string",
        _ => $"'{t.Value}'",
    };

    private bool IsOp(string op) => Cur.Kind == JinjaTokenKind.Operator && Cur.Value == op;
    private bool IsName(string name) => Cur.Kind == JinjaTokenKind.Name && Cur.Value == name;

    private bool SkipOp(string op)
    {
        if (!IsOp(op)) return false;
        _i++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name)) return false;
        _i++;
        return true;
    }

    private JinjaToken ExpectOp(string op, string context)
    {
        if (!IsOp(op)) throw Error($"expected '{op}' {context}, found {Describe(Cur)}", Cur.Position);
        return Next();
    }

    private string ExpectName(string context)
    {
        if (Cur.Kind != JinjaTokenKind.Name) throw Error($"expected a name {context}, found {Describe(Cur)}", Cur.Position);
        return Next().Value;
    }

    private void ExpectBlockEnd(string tag)
    {
        if (Cur.Kind != JinjaTokenKind.BlockEnd) throw Error($"expected '%}}' to end the '{tag}' tag, found {Describe(Cur)}", Cur.Position);
        _i++;
    }

    /// <summary>Statements up to one of <paramref name="ends"/> (the keyword is consumed, its tag's rest is not) or the end.</summary>
    private readonly Stack<(string Opener, int Position, string End)> _open = new();

    private (List<JinjaStmt> Body, string? End) ParseBody(string[] ends, int openedAt = -1, string? opener = null)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (_open.Count >= MaxDepth) throw Error($"tags nested deeper than {MaxDepth} levels", openedAt);
        if (opener is not null) _open.Push((opener, openedAt, ends[0]));
        try { return ParseBodyCore(ends, openedAt, opener); }
        finally { if (opener is not null) _open.Pop(); }
    }

    private (List<JinjaStmt> Body, string? End) ParseBodyCore(string[] ends, int openedAt, string? opener)
    {
        var body = new List<JinjaStmt>();
        while (true)
        {
            var t = Cur;
            switch (t.Kind)
            {
                case JinjaTokenKind.End:
                    if (ends.Length > 0)
                    {
                        var (line, col) = JinjaLexer.Locate(_lineStarts, openedAt);
                        throw Error($"unexpected end of template: the '{opener}' tag at line {line} column {col} was never closed (expected '{{% {ends[0]} %}}')", t.Position);
                    }
                    return (body, null);
                case JinjaTokenKind.Text:
                    _i++;
                    body.Add(new TextStmt(t.Value, t.Position));
                    break;
                case JinjaTokenKind.VariableBegin:
                    _i++;
                    var e = ParseTupleOrExpression();
                    if (Cur.Kind != JinjaTokenKind.VariableEnd) throw Error($"expected '}}}}' to end the expression, found {Describe(Cur)}", Cur.Position);
                    _i++;
                    body.Add(new OutputStmt(e, t.Position));
                    break;
                case JinjaTokenKind.BlockBegin:
                    _i++;
                    if (Cur.Kind != JinjaTokenKind.Name) throw Error($"expected a tag name after '{{%', found {Describe(Cur)}", Cur.Position);
                    if (Array.IndexOf(ends, Cur.Value) >= 0) return (body, Next().Value);
                    body.Add(ParseStatement(t.Position));
                    break;
                default:
                    throw Error($"unexpected {Describe(t)}", t.Position);
            }
        }
    }

    private JinjaStmt ParseStatement(int position)
    {
        var nameTok = Next();
        switch (nameTok.Value)
        {
            case "for": return ParseFor(position);
            case "if": return ParseIf(position);
            case "set": return ParseSet(position);
            case "macro": return ParseMacro(position);
            case "break":
            case "continue":
                if (_loopDepth == 0) throw Error($"'{nameTok.Value}' outside a loop", nameTok.Position);
                ExpectBlockEnd(nameTok.Value);
                return new LoopControlStmt(nameTok.Value == "break", position);
            case "generation":
            {
                ExpectBlockEnd("generation");
                var (body, _) = ParseBody(["endgeneration"], position, "generation");
                ExpectBlockEnd("endgeneration");
                return new BlockStmt(body, null, position);
            }
            case "filter":
            {
                int namePos = Cur.Position;
                string filter = ExpectName("after 'filter'");
                if (!JinjaInterpreter.KnownFilters.Contains(filter)) throw Error($"No filter named '{filter}'.", namePos);
                ExpectBlockEnd("filter");
                var (body, _) = ParseBody(["endfilter"], position, "filter");
                ExpectBlockEnd("endfilter");
                return new BlockStmt(body, filter, position);
            }
            case "call" or "include" or "import" or "from" or "extends" or "block" or "with" or "autoescape" or "do":
                throw Error($"the '{nameTok.Value}' tag is not supported by this Jinja subset", nameTok.Position);
            case "endfor" or "endif" or "endset" or "endmacro" or "else" or "elif" or "endgeneration" or "endfilter":
                if (_open.Count == 0) throw Error($"unexpected '{nameTok.Value}': no open tag it could close", nameTok.Position);
                var (o, p, end) = _open.Peek();
                var (ol, oc) = JinjaLexer.Locate(_lineStarts, p);
                throw Error($"unexpected '{nameTok.Value}': the innermost open tag is '{o}' at line {ol} column {oc}, expecting '{{% {end} %}}' first", nameTok.Position);
            default:
                throw Error($"unknown tag '{nameTok.Value}'", nameTok.Position);
        }
    }

    private JinjaStmt ParseFor(int position)
    {
        var targets = new List<string> { ExpectName("after 'for'") };
        while (SkipOp(",")) targets.Add(ExpectName("in the 'for' targets"));
        if (!SkipName("in")) throw Error($"expected 'in' in the 'for' tag, found {Describe(Cur)}", Cur.Position);
        var iterable = ParseNoCondTuple();
        JinjaExpr? filter = null;
        if (SkipName("if")) filter = ParseExpression();
        if (IsName("recursive")) throw Error("recursive loops are not supported by this Jinja subset", Cur.Position);
        ExpectBlockEnd("for");
        _loopDepth++;
        var (body, end) = ParseBody(["endfor", "else"], position, "for");
        _loopDepth--;
        List<JinjaStmt>? elseBody = null;
        if (end == "else")
        {
            ExpectBlockEnd("else");
            (elseBody, _) = ParseBody(["endfor"], position, "for");
        }
        ExpectBlockEnd("endfor");
        return new ForStmt(targets, iterable, filter, body, elseBody, position);
    }

    private JinjaStmt ParseIf(int position)
    {
        var branches = new List<(JinjaExpr, IReadOnlyList<JinjaStmt>)>();
        List<JinjaStmt>? elseBody = null;
        var test = ParseNoCondTuple();
        while (true)
        {
            ExpectBlockEnd("if");
            var (body, end) = ParseBody(["elif", "else", "endif"], position, "if");
            branches.Add((test, body));
            if (end == "elif") { test = ParseNoCondTuple(); continue; }
            if (end == "else")
            {
                ExpectBlockEnd("else");
                (elseBody, _) = ParseBody(["endif"], position, "if");
            }
            ExpectBlockEnd("endif");
            return new IfStmt(branches, elseBody, position);
        }
    }

    private JinjaStmt ParseSet(int position)
    {
        var targets = new List<string> { ExpectName("after 'set'") };
        string? attr = null;
        if (SkipOp(".")) attr = ExpectName("after '.' in the 'set' target");
        else while (SkipOp(",")) targets.Add(ExpectName("in the 'set' targets"));
        if (SkipOp("="))
        {
            var value = ParseTupleOrExpression();
            ExpectBlockEnd("set");
            return new SetStmt(targets, attr, value, position);
        }
        if (attr is not null || targets.Count > 1 || Cur.Kind != JinjaTokenKind.BlockEnd && !IsOp("|"))
            throw Error($"expected '=' or '%}}' in the 'set' tag, found {Describe(Cur)}", Cur.Position);
        // filters apply to the body's text, which the evaluator binds to the name "" before running them
        JinjaExpr? filters = IsOp("|") ? ParseFilterExpr(new NameExpr("", Cur.Position)) : null;
        ExpectBlockEnd("set");
        var (body, _) = ParseBody(["endset"], position, "set");
        ExpectBlockEnd("endset");
        return new SetBlockStmt(targets[0], body, filters, position);
    }

    private JinjaStmt ParseMacro(int position)
    {
        string name = ExpectName("after 'macro'");
        ExpectOp("(", "after the macro name");
        var ps = new List<string>();
        var defaults = new List<JinjaExpr?>();
        while (!IsOp(")"))
        {
            if (ps.Count > 0) ExpectOp(",", "between macro parameters");
            if (IsOp(")")) break;
            ps.Add(ExpectName("as a macro parameter"));
            if (SkipOp("=")) defaults.Add(ParseExpression());
            else
            {
                if (defaults.Count > 0 && defaults[^1] is not null) throw Error("a macro parameter without a default follows one with a default", Cur.Position);
                defaults.Add(null);
            }
        }
        _i++;
        ExpectBlockEnd("macro");
        int loops = _loopDepth;
        _loopDepth = 0;
        var (body, _) = ParseBody(["endmacro"], position, "macro");
        _loopDepth = loops;
        ExpectBlockEnd("endmacro");
        return new MacroStmt(name, ps, defaults, body, position);
    }

    // ---- expressions ----

    /// <summary>An expression, or a tuple when commas follow (<c>{{ a, b }}</c>, <c>{% set x = 1, 2 %}</c>).</summary>
    private JinjaExpr ParseTupleOrExpression()
    {
        int pos = Cur.Position;
        var first = ParseExpression();
        if (!IsOp(",")) return first;
        var items = new List<JinjaExpr> { first };
        while (SkipOp(","))
        {
            if (Cur.Kind is JinjaTokenKind.BlockEnd or JinjaTokenKind.VariableEnd) break;
            items.Add(ParseExpression());
        }
        return new ListExpr(items, IsTuple: true, pos);
    }

    /// <summary>A for-loop's iterable: no conditional expression (a trailing <c>if</c> filters the loop).</summary>
    private JinjaExpr ParseNoCondTuple()
    {
        int pos = Cur.Position;
        var first = ParseOr();
        if (!IsOp(",")) return first;
        var items = new List<JinjaExpr> { first };
        while (SkipOp(",") && Cur.Kind != JinjaTokenKind.BlockEnd && !IsName("if")) items.Add(ParseOr());
        return new ListExpr(items, IsTuple: true, pos);
    }

    private JinjaExpr ParseExpression()
    {
        if (++_depth > MaxDepth) throw Error($"expression nested deeper than {MaxDepth} levels", Cur.Position);
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        try
        {
            var expr = ParseOr();
            while (IsName("if"))
            {
                int pos = Next().Position;
                var test = ParseOr();
                JinjaExpr? otherwise = SkipName("else") ? ParseExpression() : null;
                expr = new CondExpr(test, expr, otherwise, pos);
            }
            return expr;
        }
        finally { _depth--; }
    }

    private JinjaExpr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or")) { int p = Next().Position; left = new BinaryExpr("or", left, ParseAnd(), p); }
        return left;
    }

    private JinjaExpr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { int p = Next().Position; left = new BinaryExpr("and", left, ParseNot(), p); }
        return left;
    }

    private JinjaExpr ParseNot()
    {
        if (IsName("not"))
        {
            int p = Next().Position;
            if (++_depth > MaxDepth) throw Error($"expression nested deeper than {MaxDepth} levels", p);
            try { return new UnaryExpr("not", ParseNot(), p); }
            finally { _depth--; }
        }
        return ParseCompare();
    }

    private JinjaExpr ParseCompare()
    {
        int pos = Cur.Position;
        var first = ParseMath1();
        var rest = new List<(string, JinjaExpr)>();
        while (true)
        {
            if (Cur.Kind == JinjaTokenKind.Operator && Cur.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                string op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (IsName("in")) { _i++; rest.Add(("in", ParseMath1())); }
            else if (IsName("not") && _tokens[_i + 1].Kind == JinjaTokenKind.Name && _tokens[_i + 1].Value == "in")
            {
                _i += 2;
                rest.Add(("notin", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, pos);
    }

    private JinjaExpr ParseMath1()
    {
        var left = ParseConcat();
        while (Cur.Kind == JinjaTokenKind.Operator && Cur.Value is "+" or "-")
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParseConcat(), t.Position);
        }
        return left;
    }

    private JinjaExpr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~")) { int p = Next().Position; left = new BinaryExpr("~", left, ParseMath2(), p); }
        return left;
    }

    private JinjaExpr ParseMath2()
    {
        var left = ParsePow();
        while (Cur.Kind == JinjaTokenKind.Operator && Cur.Value is "*" or "/" or "//" or "%")
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParsePow(), t.Position);
        }
        return left;
    }

    private JinjaExpr ParsePow()
    {
        var left = ParseUnary(true);
        while (IsOp("**")) { int p = Next().Position; left = new BinaryExpr("**", left, ParseUnary(true), p); }
        return left;
    }

    private JinjaExpr ParseUnary(bool withFilter)
    {
        if (++_depth > MaxDepth) throw Error($"expression nested deeper than {MaxDepth} levels", Cur.Position);
        try
        {
            JinjaExpr node;
            if (IsOp("-") || IsOp("+"))
            {
                var t = Next();
                node = new UnaryExpr(t.Value, ParseUnary(false), t.Position);
            }
            else node = ParsePrimary();
            node = ParsePostfix(node);
            if (withFilter) node = ParseFilterExpr(node);
            return node;
        }
        finally { _depth--; }
    }

    private JinjaExpr ParsePrimary()
    {
        var t = Cur;
        switch (t.Kind)
        {
            case JinjaTokenKind.Name:
                _i++;
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Position),
                    "false" or "False" => new LiteralExpr(false, t.Position),
                    "none" or "None" => new LiteralExpr(null, t.Position),
                    _ => new NameExpr(t.Value, t.Position),
                };
            case JinjaTokenKind.String:
            {
                _i++;
                string s = t.Value;
                while (Cur.Kind == JinjaTokenKind.String) s += Next().Value;
                return new LiteralExpr(s, t.Position);
            }
            case JinjaTokenKind.Integer:
                _i++;
                if (!long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long l))
                    throw Error($"integer literal {t.Value} is too large", t.Position);
                return new LiteralExpr(l, t.Position);
            case JinjaTokenKind.Float:
                _i++;
                return new LiteralExpr(double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture), t.Position);
            case JinjaTokenKind.Operator when t.Value == "(":
            {
                _i++;
                if (SkipOp(")")) return new ListExpr([], IsTuple: true, t.Position);
                var first = ParseExpression();
                if (SkipOp(")")) return first;
                var items = new List<JinjaExpr> { first };
                while (SkipOp(","))
                {
                    if (IsOp(")")) break;
                    items.Add(ParseExpression());
                }
                ExpectOp(")", "to close the parenthesis");
                return new ListExpr(items, IsTuple: true, t.Position);
            }
            case JinjaTokenKind.Operator when t.Value == "[":
            {
                _i++;
                var items = new List<JinjaExpr>();
                while (!IsOp("]"))
                {
                    if (items.Count > 0) ExpectOp(",", "between list items");
                    if (IsOp("]")) break;
                    items.Add(ParseExpression());
                }
                _i++;
                return new ListExpr(items, IsTuple: false, t.Position);
            }
            case JinjaTokenKind.Operator when t.Value == "{":
            {
                _i++;
                var pairs = new List<(JinjaExpr, JinjaExpr)>();
                while (!IsOp("}"))
                {
                    if (pairs.Count > 0) ExpectOp(",", "between dict items");
                    if (IsOp("}")) break;
                    var key = ParseExpression();
                    ExpectOp(":", "after a dict key");
                    pairs.Add((key, ParseExpression()));
                }
                _i++;
                return new DictExpr(pairs, t.Position);
            }
            default:
                throw Error($"expected an expression, found {Describe(t)}", t.Position);
        }
    }

    private JinjaExpr ParsePostfix(JinjaExpr node)
    {
        while (true)
        {
            if (IsOp("."))
            {
                int p = Next().Position;
                if (Cur.Kind == JinjaTokenKind.Name) node = new AttrExpr(node, Next().Value, p);
                else if (Cur.Kind == JinjaTokenKind.Integer) node = new ItemExpr(node, new LiteralExpr(long.Parse(Next().Value, CultureInfo.InvariantCulture), p), p);
                else throw Error($"expected an attribute name after '.', found {Describe(Cur)}", Cur.Position);
            }
            else if (IsOp("[")) node = ParseSubscript(node);
            else if (IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    private JinjaExpr ParseSubscript(JinjaExpr node)
    {
        int p = Next().Position;
        JinjaExpr? start = null, stop = null, step = null;
        if (SkipOp("]")) return new ItemExpr(node, new ListExpr([], IsTuple: true, p), p);
        if (!IsOp(":")) start = ParseExpression();
        if (start is not null && IsOp(","))
        {
            var items = new List<JinjaExpr> { start };
            while (SkipOp(",") && !IsOp("]")) items.Add(ParseExpression());
            ExpectOp("]", "to close the subscript");
            return new ItemExpr(node, new ListExpr(items, IsTuple: true, start.Position), p);
        }
        if (SkipOp(":"))
        {
            if (!IsOp(":") && !IsOp("]")) stop = ParseExpression();
            if (SkipOp(":") && !IsOp("]")) step = ParseExpression();
            ExpectOp("]", "to close the slice");
            return new SliceExpr(node, start, stop, step, p);
        }
        ExpectOp("]", "to close the subscript");
        return new ItemExpr(node, start!, p);
    }

    private (List<JinjaExpr>, List<(string, JinjaExpr)>) ParseArgs()
    {
        var args = new List<JinjaExpr>();
        var kwargs = new List<(string, JinjaExpr)>();
        ExpectOp("(", "to open the arguments");
        while (!IsOp(")"))
        {
            if (args.Count + kwargs.Count > 0) ExpectOp(",", "between arguments");
            if (IsOp(")")) break;
            if (Cur.Kind == JinjaTokenKind.Name && _tokens[_i + 1].Kind == JinjaTokenKind.Operator && _tokens[_i + 1].Value == "=")
            {
                var nameTok = Next();
                _i++;
                if (kwargs.Exists(k => k.Item1 == nameTok.Value)) throw Error($"keyword argument repeated: {nameTok.Value}", nameTok.Position);
                kwargs.Add((nameTok.Value, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Error("a positional argument follows a keyword argument", Cur.Position);
                args.Add(ParseExpression());
            }
        }
        _i++;
        return (args, kwargs);
    }

    private JinjaExpr ParseCall(JinjaExpr node)
    {
        var (args, kwargs) = ParseArgs();
        return new CallExpr(node, args, kwargs, node.Position);
    }

    private JinjaExpr ParseFilterExpr(JinjaExpr node)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                _i++;
                int p = Cur.Position;
                string name = ExpectName("after '|'");
                while (IsOp(".") && _tokens[_i + 1].Kind == JinjaTokenKind.Name) { _i++; name += "." + Next().Value; }
                if (IsOp("("))
                {
                    var (args, kwargs) = ParseArgs();
                    node = new FilterExpr(node, name, args, kwargs, p);
                }
                else node = new FilterExpr(node, name, [], [], p);
            }
            else if (IsName("is"))
            {
                int p = Next().Position;
                bool negated = SkipName("not");
                string name = ExpectName("after 'is'");
                while (IsOp(".") && _tokens[_i + 1].Kind == JinjaTokenKind.Name) { _i++; name += "." + Next().Value; }
                List<JinjaExpr> args = [];
                if (IsOp("("))
                {
                    var (a, _) = ParseArgs();
                    args = a;
                }
                else if ((Cur.Kind is JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float
                          || Cur.Kind == JinjaTokenKind.Name && Cur.Value is not ("else" or "or" or "and")
                          || Cur.Kind == JinjaTokenKind.Operator && Cur.Value is "[" or "{" or "("))
                {
                    if (IsName("is")) throw Error("tests cannot be chained with 'is'", Cur.Position);
                    args = [ParsePostfix(ParsePrimary())];
                }
                node = new TestExpr(node, name, args, negated, p);
            }
            else if (IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    // ---- names of filters and tests ----
    // jinja2 refuses an unknown filter or test when it compiles the template, except inside conditional code (an if
    // statement's test and branches, either side of `a if b else c`), where the check waits until it runs; a for
    // loop, macro or set block opens a new frame that is checked again.

    private void CheckNames(JinjaStmt stmt, bool conditional)
    {
        switch (stmt)
        {
            case OutputStmt o: CheckNames(o.Expr, conditional); break;
            case IfStmt i:
                foreach (var (test, body) in i.Branches)
                {
                    CheckNames(test, true);
                    foreach (var x in body) CheckNames(x, true);
                }
                if (i.Else is not null) foreach (var x in i.Else) CheckNames(x, true);
                break;
            case ForStmt f:
                CheckNames(f.Iterable, conditional);
                if (f.Filter is not null) CheckNames(f.Filter, false);
                foreach (var x in f.Body) CheckNames(x, false);
                if (f.Else is not null) foreach (var x in f.Else) CheckNames(x, false);
                break;
            case SetStmt set: CheckNames(set.Value, conditional); break;
            case SetBlockStmt sb:
                if (sb.Filters is not null) CheckNames(sb.Filters, conditional);
                foreach (var x in sb.Body) CheckNames(x, false);
                break;
            case MacroStmt m:
                foreach (var d in m.Defaults) if (d is not null) CheckNames(d, false);
                foreach (var x in m.Body) CheckNames(x, false);
                break;
            case BlockStmt b: foreach (var x in b.Body) CheckNames(x, false); break;
        }
    }

    private void CheckNames(JinjaExpr e, bool conditional)
    {
        switch (e)
        {
            case FilterExpr f:
                if (!conditional && !JinjaInterpreter.KnownFilters.Contains(f.Name)) throw Error($"No filter named '{f.Name}'.", f.Position);
                CheckNames(f.Target, conditional);
                foreach (var a in f.Args) CheckNames(a, conditional);
                foreach (var (_, a) in f.Kwargs) CheckNames(a, conditional);
                break;
            case TestExpr t:
                if (!conditional && !JinjaInterpreter.KnownTests.Contains(t.Name)) throw Error($"No test named '{t.Name}'.", t.Position);
                CheckNames(t.Target, conditional);
                foreach (var a in t.Args) CheckNames(a, conditional);
                break;
            case CondExpr c:
                CheckNames(c.Test, true);
                CheckNames(c.Then, true);
                if (c.Else is not null) CheckNames(c.Else, true);
                break;
            case ListExpr l: foreach (var x in l.Items) CheckNames(x, conditional); break;
            case DictExpr d: foreach (var (k, v) in d.Pairs) { CheckNames(k, conditional); CheckNames(v, conditional); } break;
            case AttrExpr a: CheckNames(a.Target, conditional); break;
            case ItemExpr i: CheckNames(i.Target, conditional); CheckNames(i.Index, conditional); break;
            case SliceExpr s:
                CheckNames(s.Target, conditional);
                if (s.Start is not null) CheckNames(s.Start, conditional);
                if (s.Stop is not null) CheckNames(s.Stop, conditional);
                if (s.Step is not null) CheckNames(s.Step, conditional);
                break;
            case CallExpr c:
                CheckNames(c.Callee, conditional);
                foreach (var a in c.Args) CheckNames(a, conditional);
                foreach (var (_, a) in c.Kwargs) CheckNames(a, conditional);
                break;
            case UnaryExpr u: CheckNames(u.Operand, conditional); break;
            case BinaryExpr b: CheckNames(b.Left, conditional); CheckNames(b.Right, conditional); break;
            case CompareExpr c:
                CheckNames(c.First, conditional);
                foreach (var (_, x) in c.Rest) CheckNames(x, conditional);
                break;
        }
    }
}
