using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;
using Whetstone.Tensors.Memory;

namespace Whetstone.Tensors;

// Neural-network ops: softmax, layer norm, cross-entropy, embedding, dropout, attention.
public sealed partial class Tensor
{
    /// <summary>Softmax over the last axis.</summary>
    public Tensor Softmax() => SoftmaxImpl(log: false);

    /// <summary>Log-softmax over the last axis.</summary>
    public Tensor LogSoftmax() => SoftmaxImpl(log: true);

    /// <summary>Softmax over any axis.</summary>
    public Tensor Softmax(int axis) => Shapes.Axis(axis, Rank) == Rank - 1 ? Softmax() : Transpose(axis, -1).Softmax().Transpose(axis, -1);

    private Tensor SoftmaxImpl(bool log)
    {
        var x = Contiguous();
        int cols = Dims[^1], rows = cols == 0 ? 0 : Size / cols;
        var y = Empty(Dims);
        Kernels.Softmax.Forward<float>(x.Span, y.Span, rows, cols, log);
        if (Graph.Needs(x))
            Graph.Record(y, log ? "log_softmax" : "softmax", g =>
            {
                var gx = x.GradBuffer(out bool fresh);
                Kernels.Softmax.Backward<float>(y.Span, g.Span, gx.Span, rows, cols, log, accumulate: !fresh);
            }, x);
        return y;
    }

    /// <summary>Layer normalisation over the last axis (biased variance, as PyTorch and BERT).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
    {
        x = x.Contiguous();
        int d = x.Dims[^1], rows = d == 0 ? 0 : x.Size / d;
        if (gamma is not null && gamma.Size != d) throw new ArgumentException($"LayerNorm: weight has {gamma.Size} elements, expected {d}.");
        if (beta is not null && beta.Size != d) throw new ArgumentException($"LayerNorm: bias has {beta.Size} elements, expected {d}.");
        var y = Empty(x.Dims);
        var mean = Empty(rows);
        var rstd = Empty(rows);
        var gs = gamma is null ? default : gamma.Contiguous().Span;
        var bs = beta is null ? default : beta.Contiguous().Span;
        LayerNormKernel.Forward<float>(x.Span, gs, bs, y.Span, mean.Span, rstd.Span, rows, d, eps);
        if (Graph.Needs(x, gamma ?? x, beta))
        {
            var inputs = new List<Tensor> { x };
            if (gamma is not null) inputs.Add(gamma);
            if (beta is not null) inputs.Add(beta);
            Graph.Record(y, "layer_norm", g =>
            {
                bool fresh = false;
                var dx = x.RequiresGrad ? x.GradBuffer(out fresh).Span : default;
                var dg = gamma is { RequiresGrad: true } ? gamma.GradBufferZeroed().Span : default;
                var db = beta is { RequiresGrad: true } ? beta.GradBufferZeroed().Span : default;
                LayerNormKernel.Backward<float>(g.Span, x.Span, gamma is null ? default : gamma.Span, mean.Span, rstd.Span,
                    dx, !fresh, dg, db, rows, d);
            }, inputs.ToArray());
        }
        return y;
    }

    /// <summary>RMS normalisation over the last axis: x / √(mean(x²) + ε) · γ (Llama-family RMSNorm; γ may be null).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor? gamma, float eps = 1e-6f)
    {
        x = x.Contiguous();
        int d = x.Dims[^1], rows = d == 0 ? 0 : x.Size / d;
        if (gamma is not null && gamma.Size != d) throw new ArgumentException($"RmsNorm: weight has {gamma.Size} elements, expected {d}.");
        var y = Empty(x.Dims);
        var rstd = Empty(rows);
        var g0 = gamma?.Contiguous();
        RmsNormKernel.Forward<float>(x.Span, g0 is null ? default : g0.Span, y.Span, rstd.Span, rows, d, eps);
        if (Graph.Needs(x, g0 ?? x))
            Graph.Record(y, "rms_norm", g =>
            {
                bool fresh = false;
                var dx = x.RequiresGrad ? x.GradBuffer(out fresh).Span : default;
                var dg = g0 is { RequiresGrad: true } ? g0.GradBufferZeroed().Span : default;
                RmsNormKernel.Backward<float>(g.Contiguous().Span, x.Span, g0 is null ? default : g0.Span, rstd.Span, dx, !fresh, dg, rows, d);
            }, g0 is null ? [x] : [x, g0]);
        return y;
    }

    /// <summary>
    /// Rotary position embedding of x (…, H·Dh) — heads side by side in the last axis, "rotate half" pairing (i, i + Dh/2)
    /// as Llama-family checkpoints — by the angles whose cosines and sines are <paramref name="cos"/>/<paramref name="sin"/>
    /// (R, Dh/2), one row per token (R = x.Size / (H·Dh)). The angles are constants (no gradient); x's gradient is the
    /// inverse rotation of the output's.
    /// </summary>
    public static Tensor Rotary(Tensor x, int heads, Tensor cos, Tensor sin)
    {
        x = x.Contiguous();
        int w = x.Dims[^1];
        if (heads <= 0 || w % heads != 0) throw new ArgumentException($"Rotary: width {w} does not split into {heads} heads.");
        int dh = w / heads, rows = w == 0 ? 0 : x.Size / w;
        if (cos.Size != rows * (dh / 2) || sin.Size != cos.Size)
            throw new ArgumentException($"Rotary: cos/sin must hold {rows} rows of {dh / 2} angles; got {Shapes.Format(cos.Dims)} and {Shapes.Format(sin.Dims)}.");
        var c = cos.Contiguous();
        var s = sin.Contiguous();
        var y = Empty(x.Dims);
        RotaryKernel.Apply<float>(x.Span, y.Span, c.Span, s.Span, rows, heads, dh, inverse: false);
        if (Graph.Needs(x))
            Graph.Record(y, "rotary", g =>
            {
                var gx = x.GradBuffer(out bool fresh);
                if (fresh) RotaryKernel.Apply<float>(g.Contiguous().Span, gx.Span, c.Span, s.Span, rows, heads, dh, inverse: true);
                else
                {
                    var t = Empty(x.Dims);
                    RotaryKernel.Apply<float>(g.Contiguous().Span, t.Span, c.Span, s.Span, rows, heads, dh, inverse: true);
                    Elementwise.AddInto(t.Span, gx.Span);
                }
            }, x);
        return y;
    }

    /// <summary>
    /// LayerNorm(x + residual) over the last axis in one op (the post-LN residual of BERT-style blocks): the sum is
    /// formed row by row inside the normalisation, and backward writes the input gradient into both addends at once.
    /// </summary>
    public static Tensor AddLayerNorm(Tensor x, Tensor residual, Tensor? gamma, Tensor? beta, float eps = 1e-5f)
    {
        if (!Shapes.Equal(x.Dims, residual.Dims)) throw new ArgumentException($"AddLayerNorm: shapes {Shapes.Format(x.Dims)} and {Shapes.Format(residual.Dims)} differ.");
        x = x.Contiguous();
        residual = residual.Contiguous();
        int d = x.Dims[^1], rows = d == 0 ? 0 : x.Size / d;
        if (gamma is not null && gamma.Size != d) throw new ArgumentException($"LayerNorm: weight has {gamma.Size} elements, expected {d}.");
        if (beta is not null && beta.Size != d) throw new ArgumentException($"LayerNorm: bias has {beta.Size} elements, expected {d}.");
        bool backward = Graph.Needs(x, residual, gamma) || Graph.Needs(beta ?? x);
        var y = Empty(x.Dims);
        var sum = backward ? Empty(x.Dims) : y;     // the sum is kept only for backward; else it is normalised in place
        var mean = Empty(rows);
        var rstd = Empty(rows);
        var gs = gamma is null ? default : gamma.Contiguous().Span;
        var bs = beta is null ? default : beta.Contiguous().Span;
        LayerNormKernel.Forward<float>(x.Span, residual.Span, sum.Span, gs, bs, y.Span, mean.Span, rstd.Span, rows, d, eps);
        if (backward)
        {
            var inputs = new List<Tensor> { x, residual };
            if (gamma is not null) inputs.Add(gamma);
            if (beta is not null) inputs.Add(beta);
            var (a, r) = (x, residual);
            Graph.Record(y, "add_layer_norm", g =>
            {
                bool freshA = false, freshR = false;
                Span<float> da = default, dr = default;
                if (a.RequiresGrad) da = a.GradBuffer(out freshA).Span;
                if (r.RequiresGrad)
                {
                    if (ReferenceEquals(a, r)) { dr = da; freshR = false; }   // one tensor twice: its second share adds
                    else dr = r.GradBuffer(out freshR).Span;
                }
                if (da.IsEmpty) { da = dr; freshA = freshR; dr = default; }
                var dg = gamma is { RequiresGrad: true } ? gamma.GradBufferZeroed().Span : default;
                var db = beta is { RequiresGrad: true } ? beta.GradBufferZeroed().Span : default;
                LayerNormKernel.Backward<float>(g.Contiguous().Span, sum.Span, gamma is null ? default : gamma.Span, mean.Span, rstd.Span,
                    da, !freshA, dr, !freshR, dg, db, rows, d);
            }, inputs.ToArray());
        }
        return y;
    }

    /// <summary>
    /// Cross-entropy of <paramref name="logits"/> (N, C) against integer <paramref name="targets"/> (N), PyTorch semantics:
    /// rows whose target is <paramref name="ignoreIndex"/> are skipped, optional label smoothing and class weights,
    /// mean (weighted by the targets' class weights) or sum reduction. Returns a scalar.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, int ignoreIndex = -100, float labelSmoothing = 0,
        ReadOnlySpan<float> classWeights = default, bool mean = true)
    {
        if (logits.Rank != 2) throw new ArgumentException($"CrossEntropy expects logits (N, C); got {Shapes.Format(logits.Dims)}. Reshape (B, T, C) to (B·T, C).");
        int n = logits.Dims[0], c = logits.Dims[1];
        if (targets.Length != n) throw new ArgumentException($"CrossEntropy: {targets.Length} targets for {n} rows.");
        if (classWeights.Length != 0 && classWeights.Length != c) throw new ArgumentException($"CrossEntropy: {classWeights.Length} class weights for {c} classes.");
        var x = logits.Contiguous();
        var lse = Empty(n);
        var t = targets.ToArray();
        var w = classWeights.ToArray();
        float loss = CrossEntropyKernel.Forward<float>(x.Span, t, w, n, c, ignoreIndex, labelSmoothing, mean, lse.Span, out float z);
        var y = Scalar(loss);
        if (Graph.Needs(x))
            Graph.Record(y, "cross_entropy", g =>
            {
                var gx = x.GradBuffer(out bool fresh);
                CrossEntropyKernel.Backward<float>(g.Item(), x.Span, lse.Span, t, w, n, c, ignoreIndex, labelSmoothing, z, gx.Span, accumulate: !fresh);
            }, x);
        return y;
    }

    /// <summary>Rows of <paramref name="weight"/> (V, D) picked by <paramref name="indices"/> → shape [..indexShape, D]. Backward scatter-adds into the touched rows only.</summary>
    public static Tensor Embedding(Tensor weight, ReadOnlySpan<int> indices, params int[] indexShape)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Embedding weight must be (V, D); got {Shapes.Format(weight.Dims)}.");
        if (indexShape.Length == 0) indexShape = [indices.Length];
        if (Shapes.Size(indexShape) != indices.Length) throw new ArgumentException($"{indices.Length} indices do not fill shape {Shapes.Format(indexShape)}.");
        var wt = weight.Contiguous();
        int v = wt.Dims[0], d = wt.Dims[1];
        var idx = indices.ToArray();
        var y = Empty([.. indexShape, d]);
        var ws = wt.Span; var ys = y.Span;
        for (int i = 0; i < idx.Length; i++)
        {
            int r = idx[i];
            if ((uint)r >= (uint)v) throw new IndexOutOfRangeException($"Token id {r} at position {i} is outside the embedding table of {v} rows.");
            ws.Slice(r * d, d).CopyTo(ys.Slice(i * d, d));
        }
        if (Graph.Needs(wt))
            Graph.Record(y, "embedding", g =>
            {
                var gw = wt.GradBuffer(out bool fresh).Span;
                if (fresh) gw.Clear();
                var gs = g.Span;
                for (int i = 0; i < idx.Length; i++) Elementwise.AddInto(gs.Slice(i * d, d), gw.Slice(idx[i] * d, d));
            }, wt);
        return y;
    }

    /// <summary>Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). Identity when not training or p = 0.</summary>
    public Tensor Dropout(float p, Rng rng, bool training = true)
    {
        if (!training || p == 0) return this;
        if (p < 0 || p >= 1) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout probability {p} must be in [0, 1).");
        var x = Contiguous();
        var mask = Empty(Dims);
        var ms = mask.Span;
        float keep = 1 / (1 - p);
        for (int i = 0; i < ms.Length; i++) ms[i] = rng.NextDouble() < p ? 0f : keep;
        var y = BinaryForward<MulOp>(x, mask);
        if (Graph.Needs(x))
            Graph.Record(y, "dropout", g => AccumulateGrad(x, BinaryForward<MulOp>(g, mask)), x);
        return y;
    }

    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v for q (B, H, Tq, Dh), k/v (B, H, Tk, Dh) — strided views such as split heads are read
    /// in place. <paramref name="keyPaddingMask"/> (B, Tk) holds 1 for real tokens and 0 for padding; <paramref name="causal"/>
    /// hides future keys. The result (B, H, Tq, Dh) is stored as (B, Tq, H, Dh), so merging heads afterwards is free.
    /// <paramref name="dropout"/> &gt; 0 drops attention probabilities (inverted dropout, mask drawn from <paramref name="rng"/>).
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal = false, Tensor? keyPaddingMask = null, float? scale = null,
        float dropout = 0, Rng? rng = null)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4) throw new ArgumentException("Attention expects q, k, v of shape (B, H, T, Dh).");
        int b = q.Dims[0], h = q.Dims[1], tq = q.Dims[2], dh = q.Dims[3], tk = k.Dims[2];
        if (k.Dims[0] != b || k.Dims[1] != h || k.Dims[3] != dh || !Shapes.Equal(k.Dims, v.Dims))
            throw new ArgumentException($"Attention shapes disagree: q {Shapes.Format(q.Dims)}, k {Shapes.Format(k.Dims)}, v {Shapes.Format(v.Dims)}.");
        if (q.StrideArray[3] != 1) q = q.Contiguous();
        if (k.StrideArray[3] != 1) k = k.Contiguous();
        if (v.StrideArray[3] != 1) v = v.Contiguous();
        static HeadLayout Of(Tensor x) => new(x.StrideArray[0], x.StrideArray[1], x.StrideArray[2]);
        var outStore = Empty(b, tq, h, dh);
        var y = new Tensor(outStore.Storage, outStore.Offset, [b, h, tq, dh], [tq * h * dh, dh, h * dh, 1]);
        // gradients of q, k, v and of the output are contiguous (B, H, T, Dh)
        var heads = new AttentionHeads(b, h, tq, tk, dh, Of(q), Of(k), Of(v), new HeadLayout((long)tq * h * dh, dh, h * dh),
            new HeadLayout((long)h * tq * dh, (long)tq * dh, dh), new HeadLayout((long)h * tk * dh, (long)tk * dh, dh));
        return AttentionOp(q, k, v, y, outStore, heads, causal, keyPaddingMask, scale ?? 1f / MathF.Sqrt(dh), dropout, rng);
    }

    /// <summary>
    /// Multi-head attention over projections that keep their heads side by side: q (B, Tq, H·Dh), k/v (B, Tk, Hkv·Dh) →
    /// the merged heads (B, Tq, H·Dh), i.e. ScaledDotProductAttention on the split views, then merge. Head h of a row is
    /// the columns [h·Dh, (h+1)·Dh); forward reads them in place and backward writes the gradients of q, k and v straight in
    /// that layout, so splitting and merging heads costs no copy either way. Mask, causal and dropout as there.
    /// <para>
    /// Grouped-query attention: with <paramref name="kvHeads"/> = Hkv &lt; H (a divisor of H), query heads
    /// [g·H/Hkv, (g+1)·H/Hkv) share key/value head g. With Tk &gt; Tq (a KV cache) the causal mask lets query i see keys
    /// up to i + Tk − Tq. Keys and values that need no gradient may be views whose batches are strided (a preallocated
    /// cache narrowed to its filled length): they are read in place.
    /// </para>
    /// </summary>
    public static Tensor MultiHeadAttention(Tensor q, Tensor k, Tensor v, int heads, bool causal = false, Tensor? keyPaddingMask = null,
        float? scale = null, float dropout = 0, Rng? rng = null, int kvHeads = 0)
    {
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3) throw new ArgumentException("MultiHeadAttention expects q, k, v of shape (B, T, H·Dh).");
        int b = q.Dims[0], tq = q.Dims[1], d = q.Dims[2], tk = k.Dims[1];
        if (heads <= 0 || d % heads != 0) throw new ArgumentException($"Width {d} does not split into {heads} heads.");
        int hkv = kvHeads == 0 ? heads : kvHeads;
        if (hkv <= 0 || heads % hkv != 0) throw new ArgumentException($"{heads} query heads do not split into groups over {hkv} key/value heads.");
        int dh = d / heads, dkv = hkv * dh;
        if (k.Dims[0] != b || k.Dims[2] != dkv || !Shapes.Equal(k.Dims, v.Dims))
            throw new ArgumentException($"Attention shapes disagree: q {Shapes.Format(q.Dims)} ({heads} heads), k {Shapes.Format(k.Dims)}, v {Shapes.Format(v.Dims)} ({hkv} key/value heads of {dh}).");
        q = q.Contiguous();
        // rows in place (T stride = width, unit columns), batches at any stride: read as they are when no gradient is wanted
        static bool RowsInPlace(Tensor t) => t.StrideArray[2] == 1 && t.StrideArray[1] == t.Dims[2];
        bool kvGrad = Graph.Needs(k, v);
        if (kvGrad || !RowsInPlace(k)) k = k.Contiguous();
        if (kvGrad || !RowsInPlace(v)) v = v.Contiguous();
        var y = Empty(b, tq, d);
        var lq = new HeadLayout((long)tq * d, dh, d);
        var lk = new HeadLayout(k.StrideArray[0], dh, dkv);
        var lv = new HeadLayout(v.StrideArray[0], dh, dkv);
        var layout = new AttentionHeads(b, heads, tq, tk, dh, lq, lk, lv, lq, lq, new HeadLayout((long)tk * dkv, dh, dkv), heads / hkv);
        return AttentionOp(q, k, v, y, y, layout, causal, keyPaddingMask, scale ?? 1f / MathF.Sqrt(dh), dropout, rng);
    }

    /// <summary>Where head (b, h) of a tensor starts (b·Batch + h·Head) and its row stride.</summary>
    private readonly record struct HeadLayout(long Batch, long Head, int Row)
    {
        public long At(int bi, int hi) => bi * Batch + hi * Head;
    }

    /// <summary>
    /// Sizes, and the layouts of q, k, v, the output, and the gradients of q (and the output) and of k and v; query head h
    /// reads key/value head h / <see cref="Group"/>.
    /// </summary>
    private readonly record struct AttentionHeads(int B, int H, int Tq, int Tk, int Dh, HeadLayout Q, HeadLayout K, HeadLayout V, HeadLayout O,
        HeadLayout GradQ, HeadLayout GradKV, int Group = 1);

    private static unsafe Tensor AttentionOp(Tensor q, Tensor k, Tensor v, Tensor y, Tensor outStore, AttentionHeads L, bool causal, Tensor? keyPaddingMask,
        float s, float dropout, Rng? rng)
    {
        int b = L.B, h = L.H, tq = L.Tq, tk = L.Tk, dh = L.Dh;
        if (keyPaddingMask is not null && (keyPaddingMask.Rank != 2 || keyPaddingMask.Dims[0] != b || keyPaddingMask.Dims[1] != tk))
            throw new ArgumentException($"Key padding mask must be (B, Tk) = ({b}, {tk}); got {Shapes.Format(keyPaddingMask.Dims)}.");
        var mask = keyPaddingMask?.Contiguous();
        if (dropout < 0 || dropout >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), $"Attention dropout {dropout} must be in [0, 1).");
        if (dropout > 0 && rng is null) throw new ArgumentException("Attention dropout needs a seeded Rng.");
        Tensor? drop = null;
        if (dropout > 0)
        {
            drop = Empty(b, h, tq, tk);
            var ds = drop.Span;
            float keep = 1 / (1 - dropout);
            for (int i = 0; i < ds.Length; i++) ds[i] = rng!.NextDouble() < dropout ? 0f : keep;
        }
        // P is kept for backward; without one, each task reuses one Tq×Tk block that stays in cache
        bool keepP = Graph.Needs(q, k, v);
        var p = keepP ? Empty(b, h, tq, tk) : null;
        fixed (float* pq = q.RawArray) fixed (float* pk = k.RawArray) fixed (float* pv = v.RawArray)
        fixed (float* po = outStore.RawArray) fixed (float* pp = p is null ? null : p.RawArray)
        fixed (float* pm = mask is null ? null : mask.RawArray)
        fixed (float* pdrop = drop is null ? null : drop.RawArray)
        {
            float* aq = pq + q.Offset, ak = pk + k.Offset, av = pv + v.Offset, ao = po + outStore.Offset, ap = p is null ? null : pp + p.Offset;
            float* am = mask is null ? null : pm + mask.Offset;
            float* adrop = drop is null ? null : pdrop + drop.Offset;
            Par.For(b * h, 1, (s0, s1) =>
            {
                var scratch = adrop == null ? null : BufferPool.Rent(tq * tk);
                var block = ap == null ? BufferPool.Rent(tq * tk) : null;
                fixed (float* sc = scratch) fixed (float* pb = block)
                {
                    for (int bh = s0; bh < s1; bh++)
                    {
                        int bi = bh / h, hi = bh % h;
                        AttentionKernel.Forward(
                            aq + L.Q.At(bi, hi), L.Q.Row, ak + L.K.At(bi, hi / L.Group), L.K.Row, av + L.V.At(bi, hi / L.Group), L.V.Row,
                            ao + L.O.At(bi, hi), L.O.Row,
                            ap == null ? pb : ap + (long)bh * tq * tk, tq, tk, dh, s, causal, am == null ? null : am + (long)bi * tk,
                            adrop == null ? null : adrop + (long)bh * tq * tk, sc);
                    }
                }
                if (scratch is not null) BufferPool.Return(scratch);
                if (block is not null) BufferPool.Return(block);
            });
        }
        if (keepP)
            Graph.Record(y, "attention", g => AttentionBackward(q, k, v, p!, drop, g, s, L), q, k, v);
        return y;
    }

    private static unsafe void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor p, Tensor? drop, Tensor g, float scale, AttentionHeads L)
    {
        int b = L.B, h = L.H, tq = L.Tq, tk = L.Tk, dh = L.Dh;
        bool fq = false, fk = false, fv = false;
        Tensor? gq, gk, gv;
        if (ReferenceEquals(q, k) || ReferenceEquals(q, v) || ReferenceEquals(k, v))
        {
            // the same tensor in two roles: its two gradients must add, so start from zeros and accumulate
            gq = q.RequiresGrad ? q.GradBufferZeroed() : null;
            gk = k.RequiresGrad ? k.GradBufferZeroed() : null;
            gv = v.RequiresGrad ? v.GradBufferZeroed() : null;
        }
        else
        {
            gq = q.RequiresGrad ? q.GradBuffer(out fq) : null;
            gk = k.RequiresGrad ? k.GradBuffer(out fk) : null;
            gv = v.RequiresGrad ? v.GradBuffer(out fv) : null;
        }
        g = g.Contiguous();
        fixed (float* pq = q.RawArray) fixed (float* pk = k.RawArray) fixed (float* pv = v.RawArray) fixed (float* pp = p.RawArray) fixed (float* pg = g.RawArray)
        fixed (float* pgq = gq is null ? null : gq.RawArray) fixed (float* pgk = gk is null ? null : gk.RawArray) fixed (float* pgv = gv is null ? null : gv.RawArray)
        fixed (float* pdrop = drop is null ? null : drop.RawArray)
        {
            float* adrop = drop is null ? null : pdrop + drop.Offset;
            float* aq = pq + q.Offset, ak = pk + k.Offset, av = pv + v.Offset, ap = pp + p.Offset, ag = pg + g.Offset;
            float* agq = gq is null ? null : pgq + gq.Offset, agk = gk is null ? null : pgk + gk.Offset, agv = gv is null ? null : pgv + gv.Offset;
            // one task per key/value head: the query heads of its group add into its gradients in turn
            int group = L.Group, hk = h / group;
            Par.For(b * hk, 1, (s0, s1) =>
            {
                var scratch = BufferPool.Rent(2 * tq * tk);
                fixed (float* sc = scratch)
                {
                    for (int bkv = s0; bkv < s1; bkv++)
                    {
                        int bi = bkv / hk, ki = bkv % hk;
                        long gkvAt = L.GradKV.At(bi, ki);
                        for (int gi = 0; gi < group; gi++)
                        {
                            int hi = ki * group + gi, bh = bi * h + hi;
                            long gqAt = L.GradQ.At(bi, hi);
                            AttentionKernel.Backward(
                                aq + L.Q.At(bi, hi), L.Q.Row, ak + L.K.At(bi, ki), L.K.Row, av + L.V.At(bi, ki), L.V.Row,
                                ap + (long)bh * tq * tk, ag + gqAt, L.GradQ.Row,
                                agq == null ? null : agq + gqAt, L.GradQ.Row, fq ? 0f : 1f,
                                agk == null ? null : agk + gkvAt, L.GradKV.Row, fk && gi == 0 ? 0f : 1f,
                                agv == null ? null : agv + gkvAt, L.GradKV.Row, fv && gi == 0 ? 0f : 1f,
                                tq, tk, dh, scale, sc, adrop == null ? null : adrop + (long)bh * tq * tk);
                        }
                    }
                }
                BufferPool.Return(scratch);
            });
        }
    }
}
