namespace Whetstone.Tensors;

/// <summary>
/// The engine's one thread pool. Kernels split work into index ranges; the calling thread takes a share,
/// workers spin briefly and then sleep, so an idle pool costs nothing and two pools never fight.
/// Work is handed out by index, and each index is always computed by the same code, so results do not
/// depend on which thread ran what: the same seed and thread count give bit-identical results.
/// </summary>
public static class Par
{
    private static readonly Lock Submit = new();
    private static Worker[] _workers = [];
    private static int _threads = DefaultThreads();
    [ThreadStatic] private static bool _inside;

    // The job being run.
    private static Action<int, int>? _body;
    private static int _count, _chunk, _next, _pending;
    private static Exception? _error;

    /// <summary>Threads used by kernels (the caller included). Defaults to WHETSTONE_THREADS or the core count.</summary>
    public static int Threads
    {
        get => _threads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            lock (Submit) _threads = value;
        }
    }

    private static int DefaultThreads()
    {
        var env = Environment.GetEnvironmentVariable("WHETSTONE_THREADS");
        return int.TryParse(env, out int n) && n > 0 ? n : Environment.ProcessorCount;
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, count) in chunks of at least <paramref name="grain"/> indices.</summary>
    public static void For(int count, int grain, Action<int, int> body)
    {
        if (count <= 0) return;
        int threads = _threads;
        grain = Math.Max(grain, 1);
        if (threads == 1 || _inside || count <= grain || !Submit.TryEnter())
        {
            body(0, count);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            int maxChunks = (count + grain - 1) / grain;
            int chunks = Math.Min(maxChunks, threads * 4);
            _chunk = (count + chunks - 1) / chunks;
            _count = count;
            _next = 0;
            _error = null;
            _body = body;
            int helpers = Math.Min(threads - 1, chunks - 1);
            Volatile.Write(ref _pending, helpers);
            for (int w = 0; w < helpers; w++) _workers[w].Wake();
            _inside = true;
            try { RunChunks(); }
            finally { _inside = false; }
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
            _body = null;
            if (_error is not null) throw new AggregateException("A parallel kernel failed.", _error);
        }
        finally { Submit.Exit(); }
    }

    /// <summary>Runs <paramref name="body"/>(i) for each i in [0, count).</summary>
    public static void For(int count, Action<int> body) =>
        For(count, 1, (s, e) => { for (int i = s; i < e; i++) body(i); });

    private static void RunChunks()
    {
        var body = _body!;
        int chunk = _chunk, count = _count;
        while (true)
        {
            int start = Interlocked.Add(ref _next, chunk) - chunk;
            if (start >= count) break;
            try { body(start, Math.Min(start + chunk, count)); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
        }
    }

    private static void EnsureWorkers(int n)
    {
        if (_workers.Length >= n) return;
        var grown = new Worker[n];
        Array.Copy(_workers, grown, _workers.Length);
        for (int i = _workers.Length; i < n; i++) grown[i] = new Worker(i);
        _workers = grown;
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _go = new(0);

        public Worker(int index)
        {
            var t = new Thread(Loop) { IsBackground = true, Name = $"whetstone-{index + 1}" };
            t.Start();
        }

        public void Wake() => _go.Release();

        private void Loop()
        {
            _inside = true;
            while (true)
            {
                _go.Wait();
                RunChunks();
                Interlocked.Decrement(ref _pending);
            }
        }
    }
}
