using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

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

    /// <summary>y = x·Wᵀ + b for x [..., in], W [out, in] (PyTorch's nn.Linear layout), b [out].</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var y = MatMul(x, weight.T);
        return bias is null ? y : y + bias;
    }
}
