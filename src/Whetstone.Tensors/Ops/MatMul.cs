using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors;

// Matrix products. Transposed views are handed to the GEMM as transpose flags, never copied.
public sealed partial class Tensor
{
    /// <summary>How a rank-≥2 tensor's last two axes sit in memory: row-major, or the transpose of row-major.</summary>
    private bool AsMatrix(out bool trans, out int ld)
    {
        int rows = Dims[^2], cols = Dims[^1], s0 = StrideArray[^2], s1 = StrideArray[^1];
        // row-major: (i, j) at i·ld + j
        if ((s1 == 1 || cols == 1) && (rows == 1 || s0 >= cols)) { trans = false; ld = rows == 1 ? Math.Max(cols, 1) : s0; return true; }
        // transposed: (i, j) at j·ld + i
        if ((s0 == 1 || rows == 1) && (cols == 1 || s1 >= rows)) { trans = true; ld = cols == 1 ? Math.Max(rows, 1) : s1; return true; }
        trans = false; ld = 0;
        return false;
    }

    /// <summary>Batch axes collapsible to one stride (all but the last two axes)?</summary>
    private bool UniformBatch(out int batch, out long stride)
    {
        batch = 1; stride = 0;
        int r = Rank;
        for (int i = 0; i < r - 2; i++) batch *= Dims[i];
        if (r == 2) return true;
        long expect = -1;
        for (int i = r - 3; i >= 0; i--)
        {
            if (Dims[i] == 1) continue;
            if (expect == -1) { stride = StrideArray[i]; expect = stride * Dims[i]; }
            else { if (StrideArray[i] != expect) return false; expect *= Dims[i]; }
        }
        return true;
    }

    /// <summary>
    /// Matrix product with batch broadcasting: [..., M, K] @ [..., K, N] → [..., M, N]. A rank-2 right operand
    /// is shared by every batch (folded into one large GEMM when the left operand allows).
    /// </summary>
    public static unsafe Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"MatMul needs rank ≥ 2 operands; got {Shapes.Format(a.Dims)} and {Shapes.Format(b.Dims)}.");
        int m = a.Dims[^2], k = a.Dims[^1], n = b.Dims[^1];
        if (b.Dims[^2] != k) throw new ArgumentException($"MatMul: inner sizes differ ({Shapes.Format(a.Dims)} @ {Shapes.Format(b.Dims)}).");

        // Batch shapes broadcast; materialise operands whose layout the GEMM cannot read directly.
        var batchShape = Shapes.Broadcast(a.Dims[..^2], b.Dims[..^2]);
        if (!Shapes.Equal(a.Dims[..^2], batchShape) && b.Rank != 2) a = a.Expand([.. batchShape, m, k]);
        if (!Shapes.Equal(b.Dims[..^2], batchShape) && b.Rank != 2) b = b.Expand([.. batchShape, k, n]);
        if (!a.AsMatrix(out _, out _) || !a.UniformBatch(out _, out _)) a = a.Contiguous();
        if (!b.AsMatrix(out _, out _) || !b.UniformBatch(out _, out _)) b = b.Contiguous();

        var y = Empty([.. batchShape, m, n]);
        MatMulInto(a, b, y, 1f, 0f);
        if (Graph.Needs(a, b))
        {
            var aa = a; var bb = b;
            Graph.Record(y, "matmul", g =>
            {
                // dA = dC · Bᵀ ; dB = Aᵀ · dC (summed over broadcast batches by AccumulateGrad)
                if (aa.RequiresGrad)
                {
                    var gx = aa.GradBuffer(out bool fresh);
                    MatMulInto(g, bb.T, gx, 1f, fresh ? 0f : 1f);
                }
                if (bb.RequiresGrad)
                {
                    if (bb.Rank == 2 && aa.Rank > 2)
                    {
                        // shared right operand: fold batches into the row axis: dB = A'ᵀ · dC' with A' = [B·M, K]
                        var a2 = aa.IsContiguous ? aa.Reshape(-1, k) : aa.Contiguous().Reshape(-1, k);
                        var g2 = g.Reshape(-1, n);
                        var gx = bb.GradBuffer(out bool fresh);
                        MatMulInto(a2.T, g2, gx, 1f, fresh ? 0f : 1f);
                    }
                    else
                    {
                        var gx = bb.GradBuffer(out bool fresh);
                        MatMulInto(aa.T, g, gx, 1f, fresh ? 0f : 1f);
                    }
                }
            }, a, b);
        }
        return y;
    }

    /// <summary>c = alpha·a@b + beta·c with c contiguous; a and b row-major or transposed views.</summary>
    internal static unsafe void MatMulInto(Tensor a, Tensor b, Tensor c, float alpha, float beta)
    {
        if (!a.AsMatrix(out bool ta, out int lda) || !a.UniformBatch(out _, out _)) a = a.Contiguous();
        if (!b.AsMatrix(out bool tb, out int ldb) || !b.UniformBatch(out _, out _)) b = b.Contiguous();
        a.AsMatrix(out ta, out lda); b.AsMatrix(out tb, out ldb);
        int m = a.Dims[^2], k = a.Dims[^1], n = b.Dims[^1];
        if (!c.IsContiguous) throw new InvalidOperationException("MatMul output must be contiguous.");
        c.UniformBatch(out int batch, out _);
        a.UniformBatch(out int ba, out long sa);
        b.UniformBatch(out int bbatch, out long sb);
        fixed (float* pa = a.RawArray) fixed (float* pb = b.RawArray) fixed (float* pc = c.RawArray)
        {
            float* A = pa + a.Offset, B = pb + b.Offset, C = pc + c.Offset;
            if (b.Rank == 2 && !ta && a.IsContiguous)
            {
                // one large GEMM over all batch rows
                Gemm.Run(false, tb, batch * m, n, k, alpha, A, k, B, ldb, beta, C, n);
                return;
            }
            if (ba != batch && ba != 1) throw new InvalidOperationException("MatMul batch mismatch.");
            if (bbatch != batch && bbatch != 1) throw new InvalidOperationException("MatMul batch mismatch.");
            Gemm.RunBatched(batch, ta, tb, m, n, k, alpha, A, lda, ba == 1 ? 0 : sa, B, ldb, bbatch == 1 ? 0 : sb, beta, C, n, (long)m * n);
        }
    }

    /// <summary>
    /// y = x·Wᵀ + b for x [..., in], W [out, in] (PyTorch's nn.Linear layout), b [out]. One GEMM with the bias added in
    /// place; backward is dx = g·W, dW = gᵀ·x, db = column sums of g — each skipped when not needed.
    /// </summary>
    public static unsafe Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear weight must be [out, in]; got {Shapes.Format(weight.Dims)}.");
        int n = weight.Dims[0], k = weight.Dims[1];
        if (x.Rank < 1 || x.Dims[^1] != k) throw new ArgumentException($"Linear: input {Shapes.Format(x.Dims)} does not end in {k} features (weight {Shapes.Format(weight.Dims)}).");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != n)) throw new ArgumentException($"Linear: bias {Shapes.Format(bias.Dims)} does not match {n} outputs.");
        var xc = x.Contiguous();
        var w = weight.Contiguous();
        int m = k == 0 ? 0 : xc.Size / k;
        var y = Empty([.. x.Dims[..^1], n]);
        var bc = bias?.Contiguous();
        fixed (float* px = xc.RawArray) fixed (float* pw = w.RawArray) fixed (float* py = y.RawArray) fixed (float* pb = bc is null ? null : bc.RawArray)
        {
            if (k > 0) Gemm.RunWithEpilogue(false, true, m, n, k, 1f, px + xc.Offset, k, pw + w.Offset, k, 0f, py + y.Offset, n,
                pb == null ? null : pb + bc!.Offset, Gemm.Activation.None, null);      // bias added tile by tile
            else
            {
                Gemm.Run(false, true, m, n, k, 1f, px + xc.Offset, k, pw + w.Offset, k, 0f, py + y.Offset, n);
                if (bc is not null) AddRowVector(y.Span, bc.Span, m, n);
            }
        }
        if (Graph.Needs(xc, w, bias))
        {
            var inputs = bias is null ? new[] { xc, w } : new[] { xc, w, bias };
            Graph.Record(y, "linear", g => LinearBackward(xc, w, bias, g, m, n, k), inputs);
        }
        return y;
    }

    /// <summary>
    /// gelu(x·Wᵀ + b) in one GEMM: bias and GELU (erf, or the tanh form) are applied to each tile of the product as it is
    /// finished. The pre-activation is kept for backward: d(pre) = g·gelu'(pre), then the Linear backward.
    /// </summary>
    public static unsafe Tensor LinearGelu(Tensor x, Tensor weight, Tensor? bias, bool tanhApproximation = false)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear weight must be [out, in]; got {Shapes.Format(weight.Dims)}.");
        int n = weight.Dims[0], k = weight.Dims[1];
        if (x.Rank < 1 || x.Dims[^1] != k || k == 0) return Linear(x, weight, bias).Gelu(tanhApproximation);
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != n)) throw new ArgumentException($"Linear: bias {Shapes.Format(bias.Dims)} does not match {n} outputs.");
        var xc = x.Contiguous();
        var w = weight.Contiguous();
        var bc = bias?.Contiguous();
        int m = xc.Size / k;
        bool needs = Graph.Needs(xc, w, bias);
        var pre = Empty([.. x.Dims[..^1], n]);
        var y = needs ? Empty([.. x.Dims[..^1], n]) : pre;     // without backward the activation overwrites the pre-activation
        fixed (float* px = xc.RawArray) fixed (float* pw = w.RawArray) fixed (float* ppre = pre.RawArray) fixed (float* py = y.RawArray)
        fixed (float* pb = bc is null ? null : bc.RawArray)
            Gemm.RunWithEpilogue(false, true, m, n, k, 1f, px + xc.Offset, k, pw + w.Offset, k, 0f, ppre + pre.Offset, n,
                pb == null ? null : pb + bc!.Offset, tanhApproximation ? Gemm.Activation.GeluTanh : Gemm.Activation.GeluErf, py + y.Offset);
        if (needs)
        {
            var inputs = bias is null ? new[] { xc, w } : new[] { xc, w, bias };
            Graph.Record(y, tanhApproximation ? "linear_gelu_tanh" : "linear_gelu", g =>
            {
                var dpre = Empty(pre.Dims);
                if (tanhApproximation) Elementwise.Backward<GeluTanh, float>(pre.Span, g.Contiguous().Span, dpre.Span, accumulate: false);
                else Elementwise.Backward<GeluErf, float>(pre.Span, g.Contiguous().Span, dpre.Span, accumulate: false);
                LinearBackward(xc, w, bias, dpre, m, n, k);
                TensorScope.Current?.ReleaseEarly(dpre.Storage);
            }, inputs);
        }
        return y;
    }

    private static unsafe void LinearBackward(Tensor x, Tensor w, Tensor? bias, Tensor g, int m, int n, int k)
    {
        g = g.Contiguous();
        fixed (float* pg = g.RawArray) fixed (float* px = x.RawArray) fixed (float* pw = w.RawArray)
        {
            float* G = pg + g.Offset;
            if (x.RequiresGrad)
            {
                var gx = x.GradBuffer(out bool fresh);
                fixed (float* pgx = gx.RawArray) Gemm.Run(false, false, m, k, n, 1f, G, n, pw + w.Offset, k, fresh ? 0f : 1f, pgx + gx.Offset, k);
            }
            if (w.RequiresGrad)
            {
                var gw = w.GradBuffer(out bool fresh);
                fixed (float* pgw = gw.RawArray) Gemm.Run(true, false, n, k, m, 1f, G, n, px + x.Offset, k, fresh ? 0f : 1f, pgw + gw.Offset, k);
            }
        }
        if (bias is { RequiresGrad: true })
        {
            var gb = bias.GradBuffer(out bool fresh);
            ColumnSums(g.Span, gb.Span, m, n, accumulate: !fresh);
        }
    }

    /// <summary>
    /// LoRA linear in one op: y = x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ for x [..., in], W [out, in], A [r, in], B [out, r].
    /// The adapter product is added into y by the GEMM itself and backward runs every product in one closure
    /// (dx = g·W + scale·(g·B)·A into one buffer), so neither the sum nor its gradient is copied.
    /// </summary>
    public static unsafe Tensor LoraLinear(Tensor x, Tensor weight, Tensor? bias, Tensor loraA, Tensor loraB, float scale)
    {
        if (loraA.Rank != 2 || loraB.Rank != 2 || weight.Rank != 2) throw new ArgumentException("LoraLinear: weight, A and B must be matrices.");
        int n = weight.Dims[0], k = weight.Dims[1], r = loraA.Dims[0];
        if (loraA.Dims[1] != k || loraB.Dims[0] != n || loraB.Dims[1] != r)
            throw new ArgumentException($"LoraLinear: A {Shapes.Format(loraA.Dims)} and B {Shapes.Format(loraB.Dims)} do not fit weight {Shapes.Format(weight.Dims)}.");
        Tensor y;
        using (Graph.NoGrad()) y = Linear(x, weight, bias);
        var xc = x.Contiguous();
        var (w, a, bm) = (weight.Contiguous(), loraA.Contiguous(), loraB.Contiguous());
        int m = k == 0 ? 0 : xc.Size / k;
        var down = Empty(m, r);                       // scale·x·Aᵀ
        fixed (float* px = xc.RawArray) fixed (float* pa = a.RawArray) fixed (float* pb = bm.RawArray) fixed (float* pd = down.RawArray) fixed (float* py = y.RawArray)
        {
            Gemm.Run(false, true, m, r, k, scale, px + xc.Offset, k, pa + a.Offset, k, 0f, pd + down.Offset, r);
            Gemm.Run(false, true, m, n, r, 1f, pd + down.Offset, r, pb + bm.Offset, r, 1f, py + y.Offset, n);
        }
        if (Graph.Needs(xc, w, bias) || Graph.Needs(a, bm))
        {
            var inputs = new List<Tensor> { xc, w, a, bm };
            if (bias is not null) inputs.Add(bias);
            Graph.Record(y, "lora_linear", g => LoraLinearBackward(xc, w, bias, a, bm, down, scale, g.Contiguous(), m, n, k, r), inputs.ToArray());
        }
        return y;
    }

    private static unsafe void LoraLinearBackward(Tensor x, Tensor w, Tensor? bias, Tensor a, Tensor bm, Tensor down, float scale, Tensor g, int m, int n, int k, int r)
    {
        // gd = scale·g·B (m × r): the gradient of x·Aᵀ (the down projection before scaling)
        var gd = a.RequiresGrad || x.RequiresGrad ? Empty(m, r) : null;
        fixed (float* pg = g.RawArray) fixed (float* px = x.RawArray) fixed (float* pw = w.RawArray) fixed (float* pa = a.RawArray)
        fixed (float* pb = bm.RawArray) fixed (float* pd = down.RawArray) fixed (float* pgd = gd is null ? null : gd.RawArray)
        {
            float* G = pg + g.Offset, X = px + x.Offset, A = pa + a.Offset, Bm = pb + bm.Offset, Dn = pd + down.Offset;
            if (gd is not null) Gemm.Run(false, false, m, r, n, scale, G, n, Bm, r, 0f, pgd + gd.Offset, r);
            if (bm.RequiresGrad)
            {
                // dB = gᵀ·down — down already holds the scale
                var gb = bm.GradBuffer(out bool fresh);
                fixed (float* q = gb.RawArray) Gemm.Run(true, false, n, r, m, 1f, G, n, Dn, r, fresh ? 0f : 1f, q + gb.Offset, r);
            }
            if (a.RequiresGrad)
            {
                var ga = a.GradBuffer(out bool fresh);
                fixed (float* q = ga.RawArray) Gemm.Run(true, false, r, k, m, 1f, pgd + gd!.Offset, r, X, k, fresh ? 0f : 1f, q + ga.Offset, k);
            }
            if (x.RequiresGrad)
            {
                var gx = x.GradBuffer(out bool fresh);
                fixed (float* q = gx.RawArray)
                {
                    Gemm.Run(false, false, m, k, n, 1f, G, n, pw + w.Offset, k, fresh ? 0f : 1f, q + gx.Offset, k);
                    Gemm.Run(false, false, m, k, r, 1f, pgd + gd!.Offset, r, A, k, 1f, q + gx.Offset, k);
                }
            }
            if (w.RequiresGrad)
            {
                var gw = w.GradBuffer(out bool fresh);
                fixed (float* q = gw.RawArray) Gemm.Run(true, false, n, k, m, 1f, G, n, X, k, fresh ? 0f : 1f, q + gw.Offset, k);
            }
        }
        if (bias is { RequiresGrad: true })
        {
            var gb = bias.GradBuffer(out bool fresh);
            ColumnSums(g.Span, gb.Span, m, n, accumulate: !fresh);
        }
    }

    /// <summary>y[r, :] += b for each of the m rows (in place, parallel over rows).</summary>
    private static unsafe void AddRowVector(Span<float> y, ReadOnlySpan<float> b, int m, int n)
    {
        fixed (float* py = y) fixed (float* pb = b)
        {
            float* ay = py, ab = pb;
            Par.For(m, Math.Max(1, 16384 / Math.Max(n, 1)), (r0, r1) =>
            {
                var bs = new ReadOnlySpan<float>(ab, n);
                for (int r = r0; r < r1; r++)
                {
                    var row = new Span<float>(ay + (long)r * n, n);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, bs, row);
                }
            });
        }
    }

    /// <summary>s (+)= Σ_r g[r, :], split by columns so the summation order never depends on the thread count.</summary>
    internal static unsafe void ColumnSums(ReadOnlySpan<float> g, Span<float> s, int m, int n, bool accumulate)
    {
        fixed (float* pg = g) fixed (float* ps = s)
        {
            float* ag = pg, asum = ps;
            Par.For(n, 256, (c0, c1) =>
            {
                var dst = new Span<float>(asum + c0, c1 - c0);
                if (!accumulate) dst.Clear();
                for (int r = 0; r < m; r++)
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, new ReadOnlySpan<float>(ag + (long)r * n + c0, c1 - c0), dst);
            });
        }
    }
}
