using System.Globalization;
using System.Runtime.Intrinsics;
using Whetstone.Tensors;
using Whetstone.Tensors.Kernels;

namespace Whetstone.KernelProbe;

/// <summary>
/// Prints "case value value ..." lines for every SIMD kernel on seeded inputs whose lengths straddle the
/// vector widths (0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1001). The test compares the output across
/// instruction sets.
/// </summary>
internal static class Program
{
    private static readonly int[] Lengths = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1001];
    private static TextWriter _out = Console.Out;

    private static int Main(string[] args)
    {
        Par.Threads = 2;
        _out = args.Length > 0 ? new StreamWriter(args[0]) : Console.Out;
        _out.WriteLine($"# isa avx512={Vector512.IsHardwareAccelerated} avx2={Vector256.IsHardwareAccelerated}");
        foreach (int n in Lengths)
        {
            Unary<Relu>("relu", n); Unary<Relu6>("relu6", n); Unary<Silu>("silu", n); Unary<HardSwish>("hardswish", n);
            Unary<HardSigmoid>("hardsigmoid", n); Unary<Tanh>("tanh", n); Unary<Sigmoid>("sigmoid", n);
            Unary<GeluErf>("gelu", n); Unary<GeluTanh>("gelu_tanh", n);
            if (n > 0)
            {
                Rows("softmax", n);
                Norm(n);
            }
        }
        foreach (var (m, nn, k) in new[] { (1, 1, 1), (7, 9, 13), (17, 33, 31), (64, 65, 63), (129, 97, 257) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    Matmul(m, nn, k, ta, tb);
        Attention();
        Convolutions();
        Winograd();
        Optimizer();
        _out.Flush();
        return 0;
    }

    private static float[] Data(int n, int seed, float scale = 3)
    {
        var rng = new Rng((ulong)seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(scale * rng.NextNormal());
        return a;
    }

    private static void Emit(string name, ReadOnlySpan<float> v)
    {
        _out.Write(name);
        foreach (float f in v) { _out.Write(' '); _out.Write(f.ToString("R", CultureInfo.InvariantCulture)); }
        _out.WriteLine();
    }

    private static void Unary<TOp>(string name, int n) where TOp : IUnaryKernel
    {
        var x = Data(n, n + 1); var dy = Data(n, n + 2, 1);
        var y = new float[n]; var dx = Data(n, n + 3, 1);
        Elementwise.Forward<TOp, float>(x, y);
        Elementwise.Backward<TOp, float>(x, dy, dx, accumulate: true);
        Emit($"{name}.fwd.{n}", y);
        Emit($"{name}.bwd.{n}", dx);
    }

    private static void Rows(string name, int cols)
    {
        const int rows = 3;
        var x = Data(rows * cols, cols + 4); var dy = Data(rows * cols, cols + 5, 1);
        foreach (bool log in new[] { false, true })
        {
            var y = new float[x.Length]; var dx = new float[x.Length];
            Softmax.Forward<float>(x, y, rows, cols, log);
            Softmax.Backward<float>(y, dy, dx, rows, cols, log, false);
            Emit($"{name}{(log ? "_log" : "")}.fwd.{cols}", y);
            Emit($"{name}{(log ? "_log" : "")}.bwd.{cols}", dx);
        }
    }

    private static void Norm(int d)
    {
        const int rows = 3;
        var x = Data(rows * d, d + 6); var g = Data(d, d + 7, 1); var b = Data(d, d + 8, 1); var dy = Data(rows * d, d + 9, 1);
        var y = new float[x.Length]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNormKernel.Forward<float>(x, g, b, y, mean, rstd, rows, d, 1e-5);
        var dx = new float[x.Length]; var dg = new float[d]; var db = new float[d];
        LayerNormKernel.Backward<float>(dy, x, g, mean, rstd, dx, false, dg, db, rows, d);
        Emit($"layernorm.fwd.{d}", y); Emit($"layernorm.dx.{d}", dx); Emit($"layernorm.dg.{d}", dg); Emit($"layernorm.db.{d}", db);
    }

    private static unsafe void Matmul(int m, int n, int k, bool ta, bool tb)
    {
        var a = Data(m * k, m + k, 1); var b = Data(k * n, k + n, 1); var c = Data(m * n, m + n, 1);
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Gemm.Run(ta, tb, m, n, k, 0.5f, pa, ta ? m : k, pb, tb ? k : n, 1f, pc, n);
        Emit($"gemm.{m}x{n}x{k}.{ta}.{tb}", c);
    }

    /// <summary>Conv (general, depthwise at widths that hit the vector paths and their tails, pointwise), pooling and batch norm, forward and backward.</summary>
    private static void Convolutions()
    {
        (string name, int[] x, int[] w, int stride, int pad, int dil, int groups)[] cases =
        [
            ("conv3x3s2", [2, 3, 9, 11], [5, 3, 3, 3], 2, 1, 2, 1),
            ("dw3x3s1", [2, 6, 7, 70], [6, 1, 3, 3], 1, 1, 1, 6),
            ("dw3x3s2", [1, 4, 9, 67], [4, 1, 3, 3], 2, 1, 1, 4),
            ("pw1x1", [2, 7, 5, 13], [9, 7, 1, 1], 1, 0, 1, 1),
        ];
        int seed = 200;
        foreach (var (name, xs, ws, stride, pad, dil, groups) in cases)
        {
            var x = Tensor.From(Data(Shapes.Size(xs), seed++, 1), xs); x.RequiresGrad = true;
            var w = Tensor.From(Data(Shapes.Size(ws), seed++, 0.3f), ws); w.RequiresGrad = true;
            var b = Tensor.From(Data(ws[0], seed++, 0.1f), ws[0]); b.RequiresGrad = true;
            var y = Tensor.Conv2d(x, w, b, stride, pad, dil, groups);
            var mp = y.MaxPool2d(2);
            var ap = y.AvgPool2d(3, 1, 1);
            var bn = Tensor.BatchNorm(y, null, null, null, null, training: true);
            var loss = (mp * mp).Sum() + (ap * ap).Sum() + (bn * bn.Sigmoid()).Sum() + y.GlobalAvgPool2d().Sum();
            loss.Backward();
            Emit($"{name}.y", y.ToArray()); Emit($"{name}.dx", x.Grad!.ToArray()); Emit($"{name}.dw", w.Grad!.ToArray()); Emit($"{name}.db", b.Grad!.ToArray());
        }
    }

    /// <summary>Winograd F(2×2) and F(4×4) forward (the permute paths with AVX-512, the scalar gathers without) and the max pool's values-only path.</summary>
    private static unsafe void Winograd()
    {
        foreach (int m in new[] { 2, 4 })
        {
            // 19 and 18 tiles a row (the last block of 16 overlaps), odd sizes, channels not multiples of 16
            // and rows of 3 or 5 tiles: 16 consecutive tiles across rows and images
            foreach (var g in new[] { new ConvGeom(3, 5, 9, 73, 7, 3, 3, 1, 1, 1, 1), new ConvGeom(3, 6, 9, 11, 5, 3, 3, 1, 1, 1, 1) })
            {
                var x = Data(g.N * g.Cin * g.HW, 300 + m, 1); var w = Data(g.Cout * g.K, 310 + m, 0.3f); var b = Data(g.Cout, 320 + m, 0.1f);
                var u = new float[Whetstone.Tensors.Kernels.Winograd.WeightFloats(g, m)];
                var y = new float[g.N * g.Cout * g.OHW];
                fixed (float* px = x) fixed (float* pw = w) fixed (float* pb = b) fixed (float* pu = u) fixed (float* py = y)
                {
                    Whetstone.Tensors.Kernels.Winograd.TransformWeights(g, m, pw, pu);
                    Whetstone.Tensors.Kernels.Winograd.Forward(g, m, px, pu, new ConvEpilogue(null, pb, false), py);
                }
                Emit($"winograd{m}.{g.W}.y", y);
            }
        }
        var pg = new PoolGeom(4, 9, 75, 3, 3, 2, 2, 1, 1);
        var px2 = Data(pg.Planes * pg.HW, 330, 1);
        var pool = new float[pg.Planes * pg.OHW];
        Pool.MaxForward<float>(pg, px2, pool, []);
        Emit("maxpool.values.s2", pool);
    }

    private static void Optimizer()
    {
        foreach (int n in new[] { 1, 17, 1001, 70001 })
        {
            var p = Tensor.Persistent(n);
            Data(n, n + 300, 1).CopyTo(p.Span);
            p.RequiresGrad = true;
            var opt = new Whetstone.Nn.Optimizers.AdamW([new Whetstone.Nn.Optimizers.ParamGroup([("p", p)])], lr: 0.01);
            for (int step = 0; step < 3; step++)
            {
                (p * Tensor.From(Data(n, n + step, 1), n)).Sum().Backward();
                opt.Step();
                opt.ZeroGrad();
            }
            Emit($"adamw.{n}", p.Span);
        }
    }

    private static void Attention()
    {
        var qkv = Tensor.From(Data(2 * 9 * 3 * 2 * 16, 99, 1), 2, 9, 96);
        Tensor Split(int i) => qkv.Narrow(2, i * 32, 32).Reshape(2, 9, 2, 16).Permute(0, 2, 1, 3);
        var y = Tensor.ScaledDotProductAttention(Split(0), Split(1), Split(2), causal: true);
        Emit("attention.causal", y.ToArray());
    }
}
