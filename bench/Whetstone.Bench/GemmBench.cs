using System.Runtime.InteropServices;
using Whetstone.Tensors;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Bench;

/// <summary>Our SGEMM against OpenBLAS (libopenblas.so.0 with its AVX-512 SkylakeX kernels) on the same inputs, same run.</summary>
internal static unsafe partial class GemmBench
{
    private const string OpenBlas = "libopenblas.so.0";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(OpenBlas, EntryPoint = "cblas_sgemm")]
    private static partial void CblasSgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(OpenBlas, EntryPoint = "openblas_set_num_threads")]
    private static partial void OpenBlasSetNumThreads(int n);

    [LibraryImport(OpenBlas, EntryPoint = "openblas_get_corename")]
    private static partial nint OpenBlasCoreName();

    private sealed record Case(string Name, int M, int N, int K, bool TransA, bool TransB, int Batch = 1);

    private static readonly Case[] Cases =
    [
        new("1024x1024x1024", 1024, 1024, 1024, false, false),
        new("4096x4096x1024", 4096, 4096, 1024, false, false),
        new("bert-1024x768x768-nt", 1024, 768, 768, false, true),
        new("bert-1024x3072x768-nt", 1024, 3072, 768, false, true),
        // attention heads (batch 8 × 12 heads, sequence 128, head size 64): OpenBLAS runs them one call at a time
        new("attn-qk-96x128x128x64-nt", 128, 128, 64, false, true, 96),
        new("attn-pv-96x128x64x128", 128, 64, 128, false, false, 96),
        // MiniLM-L6 (hidden 384, FFN 1536, 12 heads of 32), batch 32 × 128 = 4096 tokens: forward, dX and dW of the
        // projections and FFN, and the per-head attention products (384 heads of 128 × 128)
        new("minilm-fwd-4096x384x384-nt", 4096, 384, 384, false, true),
        new("minilm-fwd-4096x1536x384-nt", 4096, 1536, 384, false, true),
        new("minilm-fwd-4096x384x1536-nt", 4096, 384, 1536, false, true),
        new("minilm-dx-4096x384x384-nn", 4096, 384, 384, false, false),
        new("minilm-dx-4096x384x1536-nn", 4096, 384, 1536, false, false),
        new("minilm-dx-4096x1536x384-nn", 4096, 1536, 384, false, false),
        new("minilm-dw-384x384x4096-tn", 384, 384, 4096, true, false),
        new("minilm-dw-1536x384x4096-tn", 1536, 384, 4096, true, false),
        new("minilm-dw-384x1536x4096-tn", 384, 1536, 4096, true, false),
        new("minilm-attn-qk-384x128x128x32-nt", 128, 128, 32, false, true, 384),
        new("minilm-attn-pv-384x128x32x128", 128, 32, 128, false, false, 384),
        new("minilm-attn-dv-384x128x32x128-tn", 128, 32, 128, true, false, 384),
        // GPT-2 small b4×256 = 1024 tokens: the tied LM head (vocabulary 50257) forward and its dX, the MLP projections
        new("gpt2-lmhead-1024x50257x768-nt", 1024, 50257, 768, false, true),
        new("gpt2-lmhead-dx-1024x768x50257-nn", 1024, 768, 50257, false, false),
        new("gpt2-fc-1024x3072x768-nt", 1024, 3072, 768, false, true),
        new("gpt2-proj-1024x768x3072-nt", 1024, 768, 3072, false, true),
        // small ones: call overhead, few rows
        new("small-64x64x64", 64, 64, 64, false, false),
        new("rows-32x768x768-nt", 32, 768, 768, false, true),
    ];

    public static int Run(string[] args)
    {
        var opt = new BenchUtil.Options(args);
        bool useRef = !opt.Has("no-ref");
        // OpenBLAS picks its kernels when loaded: it must see the core type in the environment from the start.
        if (useRef && BenchUtil.ReexecWith("OPENBLAS_CORETYPE", "SkylakeX", args) is int rc) return rc;

        int reps = opt.Int("reps", 5);
        int[] threadCounts = opt.Ints("threads", [1, 2]);
        string? only = opt.Get("case");
        var cfg = opt.Get("kernel") is { Length: > 0 } kname ? Gemm.Kernel512(kname) : Gemm.Current;
        if (opt.Has("kernel") || opt.Has("mc") || opt.Has("kc") || opt.Has("nc"))
        {
            cfg = cfg.WithBlocking(opt.Int("mc", cfg.Mc), opt.Int("kc", cfg.Kc), opt.Int("nc", cfg.Nc));
            Gemm.Current = cfg;
            Gemm.AutoKernel = false;
        }
        Gemm.RowBlocksPerThread = opt.Int("rbpt", Gemm.RowBlocksPerThread);
        string core = useRef ? Marshal.PtrToStringAnsi(OpenBlasCoreName()) ?? "?" : "-";
        Console.Error.WriteLine($"gemm: kernel {(Gemm.AutoKernel ? "auto" : cfg.Name)} mc={cfg.Mc} kc={cfg.Kc} nc={cfg.Nc}; OpenBLAS core {core}");

        foreach (var cs in Cases)
        {
            if (only is not null && !cs.Name.Contains(only, StringComparison.Ordinal)) continue;
            int aRows = cs.TransA ? cs.K : cs.M, aCols = cs.TransA ? cs.M : cs.K;
            int bRows = cs.TransB ? cs.N : cs.K, bCols = cs.TransB ? cs.K : cs.N;
            long sa = (long)aRows * aCols, sb = (long)bRows * bCols, sc = (long)cs.M * cs.N;
            int batch = cs.Batch;
            float* a = Alloc(sa * batch, 1), b = Alloc(sb * batch, 2);
            float* c = Alloc(sc * batch, 3), cr = Alloc(sc * batch, 4);
            double flops = 2.0 * cs.M * cs.N * cs.K * batch;
            try
            {
                foreach (int threads in threadCounts)
                {
                    Par.Threads = threads;
                    if (useRef) OpenBlasSetNumThreads(threads);
                    void Ours()
                    {
                        if (batch == 1) Gemm.Run(cs.TransA, cs.TransB, cs.M, cs.N, cs.K, 1f, a, aCols, b, bCols, 0f, c, cs.N);
                        else Gemm.RunBatched(batch, cs.TransA, cs.TransB, cs.M, cs.N, cs.K, 1f, a, aCols, sa, b, bCols, sb, 0f, c, cs.N, sc);
                    }
                    void Theirs()
                    {
                        for (int i = 0; i < batch; i++)
                            CblasSgemm(RowMajor, cs.TransA ? Trans : NoTrans, cs.TransB ? Trans : NoTrans,
                                cs.M, cs.N, cs.K, 1f, a + i * sa, aCols, b + i * sb, bCols, 0f, cr + i * sc, cs.N);
                    }
                    var fields = new List<KeyValuePair<string, object?>>
                    {
                        new("batch", batch), new("m", cs.M), new("n", cs.N), new("k", cs.K), new("trans_a", cs.TransA), new("trans_b", cs.TransB),
                        new("threads", threads), new("kernel", Gemm.ForRows(cs.M).Name), new("mc", Gemm.ForRows(cs.M).Mc), new("kc", Gemm.ForRows(cs.M).Kc), new("nc", Gemm.ForRows(cs.M).Nc),
                    };
                    if (useRef)
                    {
                        var (ours, theirs) = BenchUtil.TimePair(Ours, Theirs, reps);
                        fields.AddRange(Stat("", ours, flops));
                        fields.AddRange(Stat("ref_", theirs, flops));
                        fields.Add(new("ratio", theirs.Median / ours.Median));
                        fields.Add(new("best_ratio", theirs.Best / ours.Best));
                        fields.Add(new("max_rel_diff", MaxRelDiff(c, cr, sc * batch)));
                        if (opt.Has("debug")) Console.Error.WriteLine($"c[0]={c[0]:R} cr[0]={cr[0]:R} c[last]={c[(long)cs.M * cs.N - 1]:R} cr[last]={cr[(long)cs.M * cs.N - 1]:R}");
                        fields.Add(new("ref_core", core));
                    }
                    else fields.AddRange(Stat("", BenchUtil.Time(Ours, reps), flops));
                    BenchUtil.Emit("gemm", cs.Name, fields);
                }
            }
            finally
            {
                NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(b);
                NativeMemory.AlignedFree(c); NativeMemory.AlignedFree(cr);
            }
        }
        return 0;
    }

    /// <summary>The pieces on their own: micro-kernel on in-cache panels, and packing rates (elements per ns).</summary>
    public static int Parts(string[] args)
    {
        var opt = new BenchUtil.Options(args);
        int reps = opt.Int("reps", 7);
        Par.Threads = 1;
        var cfg = opt.Get("kernel") is { Length: > 0 } kname ? Gemm.Kernel512(kname) : Gemm.Current;
        cfg = cfg.WithBlocking(opt.Int("mc", cfg.Mc), opt.Int("kc", cfg.Kc), opt.Int("nc", cfg.Nc));
        int kc = cfg.Kc, mr = cfg.Mr, nr = cfg.Nr, mc = cfg.Mc;
        float* pa = Alloc((long)mc * kc, 1), pb = Alloc((long)kc * nr, 2), c = Alloc(mr * nr, 3);
        var kernel = cfg.Kernel;
        int tiles = mc / mr;
        // one B micro-panel against an mc-row block of A, as in the macro-kernel
        var st = BenchUtil.Time(() =>
        {
            for (int rep = 0; rep < 200; rep++)
                for (int t = 0; t < tiles; t++) kernel(kc, pa + (long)t * kc * mr, pb, c, nr, 1f, 1f);
        }, reps);
        double fl = 2.0 * mr * nr * kc * tiles * 200;
        BenchUtil.Emit("gemm-parts", "kernel", [new("kernel", cfg.Name), new("kc", kc), new("mc", mc), new("gflops", fl / st.Median * 1e-6), new("best_gflops", fl / st.Best * 1e-6)]);
        NativeMemory.AlignedFree(pa); NativeMemory.AlignedFree(pb); NativeMemory.AlignedFree(c);

        const int n = 1024;
        float* src = Alloc((long)n * n, 4), dst = Alloc((long)n * n + 4096, 5);
        foreach (bool trans in new[] { false, true })
        {
            var sa = BenchUtil.Time(() => { for (int i = 0; i < n; i += mc) for (int p = 0; p < n; p += kc) Gemm.PackA(trans, src, n, i, Math.Min(mc, n - i), p, Math.Min(kc, n - p), mr, dst); }, reps);
            BenchUtil.Emit("gemm-parts", trans ? "packA-t" : "packA-n", [new("ms", sa.Median), new("elems_per_ns", (double)n * n / (sa.Median * 1e6))]);
            var sb = BenchUtil.Time(() => Gemm.PackBPanels(trans, src, n, n, kc, n, nr, 0, n / nr, dst, n / nr), reps);
            BenchUtil.Emit("gemm-parts", trans ? "packB-t" : "packB-n", [new("ms", sb.Median), new("elems_per_ns", (double)n * n / (sb.Median * 1e6))]);
        }
        NativeMemory.AlignedFree(src); NativeMemory.AlignedFree(dst);
        return 0;
    }

    private static IEnumerable<KeyValuePair<string, object?>> Stat(string prefix, BenchUtil.Stats s, double flops) =>
    [
        new(prefix + "ms", s.Median), new(prefix + "best_ms", s.Best),
        new(prefix + "gflops", flops / s.Median * 1e-6), new(prefix + "best_gflops", flops / s.Best * 1e-6),
        new(prefix + "reps", s.Reps),
    ];

    private static float* Alloc(long n, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
        var rng = new Random(seed);
        for (long i = 0; i < n; i++) p[i] = (float)(rng.NextDouble() * 2 - 1);
        return p;
    }

    private static double MaxRelDiff(float* x, float* y, long n)
    {
        double worst = 0, scale = 0;
        for (long i = 0; i < n; i++) scale = Math.Max(scale, Math.Abs(y[i]));
        for (long i = 0; i < n; i++) worst = Math.Max(worst, Math.Abs(x[i] - y[i]));
        return scale == 0 ? worst : worst / scale;
    }
}
