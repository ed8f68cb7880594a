using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Whetstone.Training.Tuning;

/// <summary>A study file that is not a Whetstone study, is damaged, or does not match the config.</summary>
public sealed class StudyException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A study's row: what it searches and how it is judged.</summary>
public sealed record StudyInfo(long Id, string Name, string SpaceJson, string SpaceHash, string Metric, string Direction, string ConfigText, DateTime Created);

/// <summary>
/// A tuning study in SQLite (WAL mode; every write is its own transaction, so a process killed at any moment leaves
/// every committed trial, value and state intact). Several processes share one file: a trial is claimed inside an
/// immediate (write-locked) transaction, so two workers never take the same trial number or grid point.
/// Tables: <c>whetstone</c> (format marker), <c>studies</c>, <c>trials</c>, <c>intermediate</c> (trial, epoch, value).
/// </summary>
public sealed class StudyStore : IDisposable
{
    public const string Format = "whetstone-study/1";
    private readonly SqliteConnection _db;

    public string Path { get; }

    private StudyStore(string path, SqliteConnection db)
    {
        Path = path;
        _db = db;
    }

    /// <summary>Opens (or, with <paramref name="create"/>, creates) a study file; anything else SQLite or not is an error.</summary>
    public static StudyStore Open(string path, bool create = true)
    {
        var full = System.IO.Path.GetFullPath(path);
        bool exists = File.Exists(full);
        if (!exists && !create) throw new StudyException($"No study file at '{full}'.");
        if (exists) CheckHeader(full);
        else Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Pooling = false, DefaultTimeout = 60, Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite }.ToString();
        var db = new SqliteConnection(cs);
        try
        {
            db.Open();
            Exec(db, "PRAGMA busy_timeout = 60000;");
            Exec(db, "PRAGMA journal_mode = WAL;");
            Exec(db, "PRAGMA synchronous = FULL;");
            var tables = new List<string>();
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name";
                using var r = cmd.ExecuteReader();
                while (r.Read()) tables.Add(r.GetString(0));
            }
            if (tables.Count == 0) CreateSchema(db);
            else if (!tables.Contains("whetstone"))
                throw new StudyException($"'{full}' is an SQLite database but not a Whetstone study (its tables: {string.Join(", ", tables)}); give another search.storage.");
            else
            {
                var format = Scalar(db, "SELECT value FROM whetstone WHERE key = 'format'") as string;
                if (format != Format) throw new StudyException($"'{full}' is a study file of format '{format}'; this whet reads '{Format}'.");
                var check = Scalar(db, "PRAGMA quick_check") as string;
                if (check != "ok") throw new StudyException($"'{full}' is damaged (SQLite quick_check: {check}).");
            }
            return new StudyStore(full, db);
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw new StudyException($"'{full}' is not a readable study database (SQLite: {e.Message.TrimEnd('.')}); it may be damaged or another kind of file.", e);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    private static void CheckHeader(string path)
    {
        var head = new byte[16];
        int n;
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)) n = f.ReadAtLeast(head, 16, throwOnEndOfStream: false);
        if (n == 0) return;   // an empty file SQLite will initialise
        if (n < 16 || System.Text.Encoding.ASCII.GetString(head, 0, 15) != "SQLite format 3")
            throw new StudyException($"'{path}' is not an SQLite study database (it starts with other bytes); give another search.storage or remove it.");
    }

    private static void CreateSchema(SqliteConnection db)
    {
        using var tx = db.BeginTransaction();
        Exec(db, """
            CREATE TABLE whetstone (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, space_json TEXT NOT NULL, space_hash TEXT NOT NULL,
                metric TEXT NOT NULL, direction TEXT NOT NULL, config_text TEXT NOT NULL, created TEXT NOT NULL);
            CREATE TABLE trials (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id), number INTEGER NOT NULL,
                params_json TEXT NOT NULL, state TEXT NOT NULL, value REAL, started TEXT, ended TEXT, run_dir TEXT,
                pid INTEGER NOT NULL DEFAULT 0, pid_start INTEGER NOT NULL DEFAULT 0, retry_of INTEGER, message TEXT,
                test_accuracy REAL, test_macro_f1 REAL, UNIQUE (study_id, number));
            CREATE TABLE intermediate (trial_id INTEGER NOT NULL REFERENCES trials(id), epoch INTEGER NOT NULL, value REAL NOT NULL,
                PRIMARY KEY (trial_id, epoch));
            """, tx);
        Exec(db, $"INSERT INTO whetstone (key, value) VALUES ('format', '{Format}');", tx);
        tx.Commit();
    }

    private static void Exec(SqliteConnection db, string sql, SqliteTransaction? tx = null, params (string, object?)[] args)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (k, v) in args) cmd.Parameters.AddWithValue(k, v ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection db, string sql, SqliteTransaction? tx = null, params (string, object?)[] args)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (k, v) in args) cmd.Parameters.AddWithValue(k, v ?? DBNull.Value);
        var r = cmd.ExecuteScalar();
        return r is DBNull ? null : r;
    }

    /// <summary>The journal mode SQLite reports (wal once opened).</summary>
    public string JournalMode => (string)Scalar(_db, "PRAGMA journal_mode")!;

    private static string Now() => DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    // ------------------------------------------------------------------ studies

    public IReadOnlyList<StudyInfo> Studies()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, name, space_json, space_hash, metric, direction, config_text, created FROM studies ORDER BY id";
        using var r = cmd.ExecuteReader();
        var list = new List<StudyInfo>();
        while (r.Read())
            list.Add(new StudyInfo(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                DateTime.Parse(r.GetString(7), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)));
        return list;
    }

    /// <summary>
    /// The study named <paramref name="name"/>, created when new; an existing one must search the same space with the
    /// same metric and direction (the config text is refreshed: other settings may change between invocations).
    /// </summary>
    public StudyInfo EnsureStudy(string name, string spaceJson, string spaceHash, string metric, string direction, string configText)
    {
        using var tx = _db.BeginTransaction();
        var existing = Studies().FirstOrDefault(s => s.Name == name);
        if (existing is null)
        {
            Exec(_db, "INSERT INTO studies (name, space_json, space_hash, metric, direction, config_text, created) VALUES ($n, $s, $h, $m, $d, $c, $t)", tx,
                ("$n", name), ("$s", spaceJson), ("$h", spaceHash), ("$m", metric), ("$d", direction), ("$c", configText), ("$t", Now()));
            tx.Commit();
            return Studies().First(s => s.Name == name);
        }
        if (existing.SpaceHash != spaceHash)
            throw new StudyException($"Study '{name}' in '{Path}' already exists with another search space ({Describe(existing.SpaceJson)}); this config searches {Describe(spaceJson)}. Give the study another name (search.study) or another search.storage.");
        if (existing.Metric != metric || existing.Direction != direction)
            throw new StudyException($"Study '{name}' in '{Path}' optimises {existing.Metric} ({existing.Direction}); this config asks for {metric} ({direction}). Give the study another name.");
        Exec(_db, "UPDATE studies SET config_text = $c WHERE id = $i", tx, ("$c", configText), ("$i", existing.Id));
        tx.Commit();
        return existing with { ConfigText = configText };
    }

    private static string Describe(string spaceJson) =>
        string.Join(", ", JsonNode.Parse(spaceJson)!.AsArray().Select(p => $"{p!["key"]}: {p["distribution"]}"));

    // ------------------------------------------------------------------ trials

    public IReadOnlyList<TrialRecord> Trials(long studyId) => Trials(studyId, null);

    private List<TrialRecord> Trials(long studyId, SqliteTransaction? tx)
    {
        var inter = new Dictionary<long, Dictionary<int, double>>();
        using (var cmd = StudyQuery("SELECT i.trial_id, i.epoch, i.value FROM intermediate i JOIN trials t ON t.id = i.trial_id WHERE t.study_id = $s", tx, studyId))
        {
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                if (!inter.TryGetValue(r.GetInt64(0), out var d)) inter[r.GetInt64(0)] = d = [];
                d[r.GetInt32(1)] = r.GetDouble(2);
            }
        }
        var list = new List<TrialRecord>();
        using (var cmd = StudyQuery("SELECT id, number, params_json, state, value, started, ended, run_dir, pid, pid_start, retry_of, message, test_accuracy, test_macro_f1 FROM trials WHERE study_id = $s ORDER BY number", tx, studyId))
        {
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                DateTime? Time(int i) => r.IsDBNull(i) ? null : DateTime.Parse(r.GetString(i), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
                list.Add(new TrialRecord
                {
                    Id = r.GetInt64(0), Number = r.GetInt32(1), Params = ParamsFromJson(r.GetString(2)), State = TrialRecord.ParseState(r.GetString(3)),
                    Value = r.IsDBNull(4) ? null : r.GetDouble(4), Started = Time(5), Ended = Time(6), RunDir = r.IsDBNull(7) ? null : r.GetString(7),
                    Pid = r.GetInt32(8), PidStart = r.GetInt64(9), RetryOf = r.IsDBNull(10) ? null : r.GetInt32(10), Message = r.IsDBNull(11) ? null : r.GetString(11),
                    TestAccuracy = r.IsDBNull(12) ? null : r.GetDouble(12), TestMacroF1 = r.IsDBNull(13) ? null : r.GetDouble(13),
                    Intermediate = inter.GetValueOrDefault(r.GetInt64(0)) ?? [],
                });
            }
        }
        return list;
    }

    private SqliteCommand StudyQuery(string sql, SqliteTransaction? tx, long studyId)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.Parameters.AddWithValue("$s", studyId);
        return cmd;
    }

    public static string ParamsToJson(IReadOnlyDictionary<string, string?> p)
    {
        var o = new JsonObject();
        foreach (var (k, v) in p) o[k] = v;
        return o.ToJsonString();
    }

    public static Dictionary<string, string?> ParamsFromJson(string json)
    {
        var d = new Dictionary<string, string?>();
        foreach (var (k, v) in JsonNode.Parse(json)!.AsObject()) d[k] = v?.GetValue<string>();
        return d;
    }

    /// <summary>Identity of a live process: its id and start time (so a reused pid does not pass for the old process).</summary>
    public static (int Pid, long Start) Self()
    {
        using var p = Process.GetCurrentProcess();
        return (p.Id, p.StartTime.ToUniversalTime().Ticks);
    }

    public static bool IsAlive(int pid, long start)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited && Math.Abs(p.StartTime.ToUniversalTime().Ticks - start) < TimeSpan.TicksPerSecond;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Marks RUNNING trials whose process is gone as INTERRUPTED; returns their numbers.</summary>
    public IReadOnlyList<int> MarkInterrupted(long studyId, Func<int, long, bool>? isAlive = null)
    {
        isAlive ??= IsAlive;
        using var tx = _db.BeginTransaction();
        var dead = Trials(studyId, tx).Where(t => t.State == TrialState.Running && !isAlive(t.Pid, t.PidStart)).ToList();
        foreach (var t in dead)
            Exec(_db, "UPDATE trials SET state = 'INTERRUPTED', ended = $e, message = $m WHERE id = $i", tx,
                ("$e", Now()), ("$m", $"process {t.Pid} ended while the trial ran"), ("$i", t.Id));
        tx.Commit();
        return dead.Select(t => t.Number).ToArray();
    }

    /// <summary>
    /// In one write transaction: marks dead RUNNING trials INTERRUPTED, and unless <paramref name="budget"/> trials are
    /// finished or running, starts the next trial — an interrupted one's parameters again when <paramref name="retry"/>,
    /// else <paramref name="sample"/>'s (null: nothing left to try). Returns the RUNNING trial, or null.
    /// </summary>
    public TrialRecord? Claim(long studyId, int budget, bool retry, Func<IReadOnlyList<TrialRecord>, int, IReadOnlyDictionary<string, string?>?> sample, Func<int, long, bool>? isAlive = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        isAlive ??= IsAlive;
        using var tx = _db.BeginTransaction();
        var trials = Trials(studyId, tx);
        foreach (var t in trials.Where(t => t.State == TrialState.Running && !isAlive(t.Pid, t.PidStart)).ToList())
        {
            Exec(_db, "UPDATE trials SET state = 'INTERRUPTED', ended = $e, message = $m WHERE id = $i", tx, ("$e", Now()), ("$m", $"process {t.Pid} ended while the trial ran"), ("$i", t.Id));
            trials[trials.IndexOf(t)] = t with { State = TrialState.Interrupted };
        }
        if (trials.Count(t => t.Finished || t.State == TrialState.Running) >= budget) { tx.Commit(); return null; }
        int number = trials.Count == 0 ? 0 : trials.Max(t => t.Number) + 1;
        var retried = trials.Where(t => t.RetryOf is not null).Select(t => t.RetryOf!.Value).ToHashSet();
        var again = retry ? trials.FirstOrDefault(t => t.State == TrialState.Interrupted && !retried.Contains(t.Number)) : null;
        var p = again?.Params ?? sample(trials, number);
        if (p is null) { tx.Commit(); return null; }
        var (pid, start) = Self();
        Exec(_db, "INSERT INTO trials (study_id, number, params_json, state, started, pid, pid_start, retry_of) VALUES ($s, $n, $p, 'RUNNING', $t, $pid, $ps, $r)", tx,
            ("$s", studyId), ("$n", number), ("$p", ParamsToJson(p)), ("$t", Now()), ("$pid", pid), ("$ps", start), ("$r", again?.Number));
        tx.Commit();
        return Trials(studyId).First(t => t.Number == number);
    }

    public void Report(long trialId, int epoch, double value) =>
        Exec(_db, "INSERT OR REPLACE INTO intermediate (trial_id, epoch, value) VALUES ($t, $e, $v)", null, ("$t", trialId), ("$e", epoch), ("$v", value));

    public void SetRunDir(long trialId, string runDir) =>
        Exec(_db, "UPDATE trials SET run_dir = $d WHERE id = $i", null, ("$d", runDir), ("$i", trialId));

    public void Finish(long trialId, TrialState state, double? value, string? runDir, string? message, double? testAccuracy = null, double? testMacroF1 = null) =>
        Exec(_db, "UPDATE trials SET state = $s, value = $v, ended = $e, run_dir = COALESCE($d, run_dir), message = $m, test_accuracy = $a, test_macro_f1 = $f WHERE id = $i", null,
            ("$s", TrialRecord.StateName(state)), ("$v", value is double v && double.IsFinite(v) ? v : null), ("$e", Now()), ("$d", runDir), ("$m", message),
            ("$a", testAccuracy), ("$f", testMacroF1), ("$i", trialId));

    public void Dispose() => _db.Dispose();
}
