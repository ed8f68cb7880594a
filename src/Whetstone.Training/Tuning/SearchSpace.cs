using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Whetstone.Training.Config;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Whetstone.Training.Tuning;

public enum DistributionKind { Uniform, LogUniform, Int, Choice }

/// <summary><c>if KEY OP VALUE</c> on a searched distribution: it is sampled (and set) only when this holds.</summary>
public sealed record Condition(string Key, string Op, string Value)
{
    public bool Holds(string? actual)
    {
        bool isNull = actual is null || actual is "null" or "~";
        bool wantNull = Value is "null" or "~";
        if (wantNull || isNull)
            return Op switch { "==" => isNull == wantNull, "!=" => isNull != wantNull, _ => false };
        if (double.TryParse(actual, NumberStyles.Float, CultureInfo.InvariantCulture, out var a)
            && double.TryParse(Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var b))
            return Op switch { "==" => a == b, "!=" => a != b, ">" => a > b, ">=" => a >= b, "<" => a < b, "<=" => a <= b, _ => false };
        int c = string.Compare(actual, Value, StringComparison.OrdinalIgnoreCase);
        return Op switch { "==" => c == 0, "!=" => c != 0, _ => false };
    }

    public override string ToString() => $"{Key} {Op} {Value}";
}

/// <summary>One searched key: its distribution (bounds inclusive) or choices (YAML scalars, null for YAML null).</summary>
public sealed record Distribution(string Key, DistributionKind Kind, double Low, double High, IReadOnlyList<string?> Choices, Condition? When)
{
    /// <summary>Number of grid points (int and choice only).</summary>
    public int GridSize => Kind switch { DistributionKind.Choice => Choices.Count, DistributionKind.Int => (int)(High - Low) + 1, _ => 0 };

    /// <summary>The value's text as it goes into <c>--set</c> (null = YAML null).</summary>
    public static string Format(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    public override string ToString()
    {
        var d = Kind switch
        {
            DistributionKind.Choice => $"choice({string.Join(", ", Choices.Select(c => c ?? "null"))})",
            DistributionKind.Int => $"int({Format(Low)}, {Format(High)})",
            DistributionKind.LogUniform => $"loguniform({Format(Low)}, {Format(High)})",
            _ => $"uniform({Format(Low)}, {Format(High)})",
        };
        return When is null ? d : $"{d} if {When}";
    }
}

/// <summary>
/// A search space parsed from <see cref="SearchConfig.Space"/> and checked against the config schema: every key is
/// applied to the base config as <c>--set</c> would, with every choice and both bounds, before any trial runs.
/// </summary>
public sealed class SearchSpace
{
    private static readonly Regex Form = new(@"^\s*(?<kind>[a-z_]+)\s*\((?<args>.*)\)\s*(?:if\s+(?<ck>[A-Za-z0-9_.]+)\s*(?<op>==|!=|>=|<=|>|<)\s*(?<cv>.+?))?\s*$", RegexOptions.CultureInvariant);

    public IReadOnlyList<Distribution> Parameters { get; }

    private SearchSpace(IReadOnlyList<Distribution> parameters) => Parameters = parameters;

    public static SearchSpace Parse(IReadOnlyDictionary<string, string> space, string source)
    {
        ArgumentNullException.ThrowIfNull(space);
        if (space.Count == 0) throw new ConfigException($"{source}: search.space is empty — give at least one key, e.g. train.lr: loguniform(1e-5, 1e-2).");
        var list = new List<Distribution>();
        foreach (var (key, text) in space)
        {
            string where = $"{source}: search.space.{key}";
            if (!Regex.IsMatch(key, @"^[a-z0-9_]+(\.[a-z0-9_]+)*$"))
                throw new ConfigException($"{where}: a key is a dotted config path as --set takes it (e.g. train.lr).");
            if (key == "search" || key.StartsWith("search.", StringComparison.Ordinal) || key is "name" or "runs")
                throw new ConfigException($"{where}: '{key}' cannot be searched.");
            var m = Form.Match(text ?? "");
            if (!m.Success)
                throw new ConfigException($"{where}: '{text}' is not a distribution; use uniform(a, b), loguniform(a, b), int(a, b) or choice(v1, v2, …), optionally followed by 'if KEY OP VALUE'.");
            var args = SplitArgs(m.Groups["args"].Value);
            Condition? when = m.Groups["ck"].Success ? new Condition(m.Groups["ck"].Value, m.Groups["op"].Value, Unquote(m.Groups["cv"].Value.Trim())) : null;
            if (when is not null && when.Key == key) throw new ConfigException($"{where}: the condition cannot test the key itself.");
            if (when is not null && space.ContainsKey(when.Key) && !list.Any(d => d.Key == when.Key))
                throw new ConfigException($"{where}: its condition tests '{when.Key}', which must be listed before it.");
            string kind = m.Groups["kind"].Value;
            Distribution dist;
            if (kind == "choice")
            {
                if (args.Count == 0 || args.All(string.IsNullOrWhiteSpace)) throw new ConfigException($"{where}: choice() is empty.");
                var choices = args.Select(a => a is "null" or "~" ? null : Unquote(a)).ToArray();
                if (choices.Distinct().Count() != choices.Length) throw new ConfigException($"{where}: choice() lists a value twice.");
                dist = new Distribution(key, DistributionKind.Choice, 0, 0, choices, when);
            }
            else
            {
                var k = kind switch
                {
                    "uniform" => DistributionKind.Uniform,
                    "loguniform" => DistributionKind.LogUniform,
                    "int" => DistributionKind.Int,
                    _ => throw new ConfigException($"{where}: unknown distribution '{kind}'; use uniform, loguniform, int or choice."),
                };
                if (args.Count != 2) throw new ConfigException($"{where}: {kind}() takes two bounds (low, high).");
                double Num(string a) => double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v
                    : throw new ConfigException($"{where}: bound '{a}' is not a number.");
                double lo = Num(args[0]), hi = Num(args[1]);
                if (k == DistributionKind.Int && (lo != Math.Floor(lo) || hi != Math.Floor(hi))) throw new ConfigException($"{where}: int() bounds must be whole numbers.");
                if (k == DistributionKind.Int ? lo > hi : lo >= hi) throw new ConfigException($"{where}: the range [{args[0]}, {args[1]}] is empty (low must be below high).");
                if (k == DistributionKind.LogUniform && lo <= 0) throw new ConfigException($"{where}: loguniform() needs low > 0 (got {args[0]}).");
                dist = new Distribution(key, k, lo, hi, [], when);
            }
            list.Add(dist);
        }
        return new SearchSpace(list);
    }

    private static string Unquote(string s) => s.Length >= 2 && (s[0] == '"' && s[^1] == '"' || s[0] == '\'' && s[^1] == '\'') ? s[1..^1] : s;

    private static List<string> SplitArgs(string s)
    {
        var parts = new List<string>();
        var cur = new StringBuilder();
        char quote = '\0';
        foreach (var ch in s)
        {
            if (quote != '\0') { cur.Append(ch); if (ch == quote) quote = '\0'; continue; }
            if (ch is '"' or '\'') { quote = ch; cur.Append(ch); continue; }
            if (ch == ',') { parts.Add(cur.ToString().Trim()); cur.Clear(); continue; }
            cur.Append(ch);
        }
        if (cur.Length > 0 || parts.Count > 0) parts.Add(cur.ToString().Trim());
        return parts;
    }

    /// <summary>
    /// Applies every key with each choice and both bounds to the base config (parsing it as a trial would), so unknown
    /// keys, sections used as values and values of the wrong type are errors now, not in trial 7.
    /// </summary>
    public void CheckAgainst(Func<IReadOnlyList<string>, TrainConfig> parse, string source)
    {
        ArgumentNullException.ThrowIfNull(parse);
        foreach (var d in Parameters)
        {
            IEnumerable<string?> values = d.Kind == DistributionKind.Choice ? d.Choices : [Distribution.Format(d.Low), Distribution.Format(d.High)];
            foreach (var v in values) Try(d, v);
            if (d.Kind is DistributionKind.Uniform or DistributionKind.LogUniform)
            {
                // a real-valued draw on an integer key would fail in the middle of the study
                var mid = d.Kind == DistributionKind.Uniform ? (d.Low + d.High) / 2 : Math.Sqrt(d.Low * d.High);
                if (mid == Math.Floor(mid)) mid += (d.High - d.Low) * 1e-3;
                try { parse([$"{d.Key}={Distribution.Format(mid)}"]); }
                catch (ConfigException) { throw new ConfigException($"{source}: search.space.{d.Key}: the key takes whole numbers; use int({Distribution.Format(d.Low)}, {Distribution.Format(d.High)})."); }
            }
            if (d.When is { } w && !Parameters.Any(p => p.Key == w.Key)) ValueIn(parse([]), w.Key, $"{source}: search.space.{d.Key}: condition");
        }

        void Try(Distribution d, string? v)
        {
            try { parse([$"{d.Key}={v ?? "null"}"]); }
            catch (ConfigException e) { throw new ConfigException($"{source}: search.space.{d.Key} = {v ?? "null"}: {StripSource(e.Message, source)}", e); }
        }
    }

    private static string StripSource(string message, string source)
    {
        var m = Regex.Match(message, "^" + Regex.Escape(source) + @"(:\d+)*: ");
        return m.Success ? message[m.Length..] : message;
    }

    /// <summary>A config value by dotted snake_case key (defaults included), as YAML text; null for null.</summary>
    public static string? ValueIn(TrainConfig config, string key, string where)
    {
        object? cur = config;
        foreach (var part in key.Split('.'))
        {
            var prop = cur?.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(p => p.GetCustomAttribute<YamlIgnoreAttribute>() is null && UnderscoredNamingConvention.Instance.Apply(p.Name) == part)
                ?? throw new ConfigException($"{where} '{key}' is not a config key.");
            cur = prop.GetValue(cur);
        }
        return cur switch
        {
            null => null,
            bool b => b ? "true" : "false",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => cur.ToString(),
        };
    }

    /// <summary>Whether <paramref name="d"/> is active given the values chosen so far (conditions on config keys read the base config).</summary>
    public bool IsActive(Distribution d, IReadOnlyDictionary<string, string?> chosen, TrainConfig baseConfig)
    {
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(chosen);
        if (d.When is not { } w) return true;
        if (Parameters.Any(p => p.Key == w.Key))
            return chosen.TryGetValue(w.Key, out var v) && w.Holds(v);
        return w.Holds(ValueIn(baseConfig, w.Key, "condition"));
    }

    /// <summary>The <c>--set</c> assignments for a trial's parameters.</summary>
    public static IReadOnlyList<string> Overrides(IReadOnlyDictionary<string, string?> values) =>
        values.Select(kv => $"{kv.Key}={kv.Value ?? "null"}").ToArray();

    /// <summary>The space as canonical JSON (what the study stores and hashes).</summary>
    public string ToJson()
    {
        var arr = new JsonArray();
        foreach (var d in Parameters)
            arr.Add(new JsonObject { ["key"] = d.Key, ["distribution"] = d.ToString() });
        return arr.ToJsonString();
    }

    public string Hash() => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ToJson())))[..16];
}
