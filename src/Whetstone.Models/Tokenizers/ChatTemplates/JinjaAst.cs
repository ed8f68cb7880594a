namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>A node of a parsed template; <see cref="Position"/> is its offset in the source (for error locations).</summary>
internal abstract record JinjaNode(int Position);

// ---- expressions ----
internal abstract record JinjaExpr(int Position) : JinjaNode(Position);
internal sealed record LiteralExpr(object? Value, int Position) : JinjaExpr(Position);
internal sealed record NameExpr(string Name, int Position) : JinjaExpr(Position);
internal sealed record ListExpr(IReadOnlyList<JinjaExpr> Items, bool IsTuple, int Position) : JinjaExpr(Position);
internal sealed record DictExpr(IReadOnlyList<(JinjaExpr Key, JinjaExpr Value)> Pairs, int Position) : JinjaExpr(Position);
internal sealed record AttrExpr(JinjaExpr Target, string Name, int Position) : JinjaExpr(Position);
internal sealed record ItemExpr(JinjaExpr Target, JinjaExpr Index, int Position) : JinjaExpr(Position);
internal sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step, int Position) : JinjaExpr(Position);
internal sealed record CallExpr(JinjaExpr Callee, IReadOnlyList<JinjaExpr> Args, IReadOnlyList<(string Name, JinjaExpr Value)> Kwargs, int Position) : JinjaExpr(Position);
internal sealed record FilterExpr(JinjaExpr Target, string Name, IReadOnlyList<JinjaExpr> Args, IReadOnlyList<(string Name, JinjaExpr Value)> Kwargs, int Position) : JinjaExpr(Position);
internal sealed record TestExpr(JinjaExpr Target, string Name, IReadOnlyList<JinjaExpr> Args, bool Negated, int Position) : JinjaExpr(Position);
internal sealed record UnaryExpr(string Op, JinjaExpr Operand, int Position) : JinjaExpr(Position);
internal sealed record BinaryExpr(string Op, JinjaExpr Left, JinjaExpr Right, int Position) : JinjaExpr(Position);
/// <summary>A comparison chain <c>a &lt; b &lt;= c</c>: Python semantics, each link evaluated once.</summary>
internal sealed record CompareExpr(JinjaExpr First, IReadOnlyList<(string Op, JinjaExpr Operand)> Rest, int Position) : JinjaExpr(Position);
internal sealed record CondExpr(JinjaExpr Test, JinjaExpr Then, JinjaExpr? Else, int Position) : JinjaExpr(Position);

// ---- statements ----
internal abstract record JinjaStmt(int Position) : JinjaNode(Position);
internal sealed record TextStmt(string Text, int Position) : JinjaStmt(Position);
internal sealed record OutputStmt(JinjaExpr Expr, int Position) : JinjaStmt(Position);
internal sealed record IfStmt(IReadOnlyList<(JinjaExpr Test, IReadOnlyList<JinjaStmt> Body)> Branches, IReadOnlyList<JinjaStmt>? Else, int Position) : JinjaStmt(Position);
/// <summary><c>{% for a, b in xs if cond %}…{% else %}…{% endfor %}</c>; <see cref="Targets"/> has one name unless unpacking.</summary>
internal sealed record ForStmt(IReadOnlyList<string> Targets, JinjaExpr Iterable, JinjaExpr? Filter, IReadOnlyList<JinjaStmt> Body, IReadOnlyList<JinjaStmt>? Else, int Position) : JinjaStmt(Position);
/// <summary><c>{% set x = e %}</c>, <c>{% set a, b = e %}</c> or <c>{% set ns.attr = e %}</c> (<see cref="Attribute"/> non-null).</summary>
internal sealed record SetStmt(IReadOnlyList<string> Targets, string? Attribute, JinjaExpr Value, int Position) : JinjaStmt(Position);
/// <summary><c>{% set x %}…{% endset %}</c>, optionally <c>{% set x | f(…) | g %}</c>: the body's text through the filters.</summary>
internal sealed record SetBlockStmt(string Target, IReadOnlyList<JinjaStmt> Body, JinjaExpr? Filters, int Position) : JinjaStmt(Position);
internal sealed record MacroStmt(string Name, IReadOnlyList<string> Params, IReadOnlyList<JinjaExpr?> Defaults, IReadOnlyList<JinjaStmt> Body, int Position) : JinjaStmt(Position);
internal sealed record LoopControlStmt(bool IsBreak, int Position) : JinjaStmt(Position);
/// <summary>A body rendered in place: transformers' <c>{% generation %}</c> block, <c>{% filter %}</c> applies a filter to it.</summary>
internal sealed record BlockStmt(IReadOnlyList<JinjaStmt> Body, string? Filter, int Position) : JinjaStmt(Position);
