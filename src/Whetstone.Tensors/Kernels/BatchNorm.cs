using System.Buffers;
using System.Numerics.Tensors;

namespace Whetstone.Tensors.Kernels;

/// <summary>
/// Batch normalisation per channel over (N, S) for x (N, C, S): S = H·W for BatchNorm2d, 1 for BatchNorm1d on (N, C).
/// Generic over the element type (double for gradient checks); SIMD through TensorPrimitives, parallel over channels.
/// Per-plane partial sums accumulate in double, and x − mean is formed before squaring (two passes), so float
/// statistics stay accurate for inputs with a large mean.
/// </summary>
internal static unsafe class BatchNorm
{
    private static int Grain(int n, int s) => Math.Max(1, 16384 / Math.Max(1, n * s));

    /// <summary>y = x·a + b in one pass (x and y may be the same span).</summary>
    private static void ScaleShift<T>(ReadOnlySpan<T> x, T a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated && x.Length >= System.Numerics.Vector<T>.Count)
        {
            var va = new System.Numerics.Vector<T>(a);
            var vb = new System.Numerics.Vector<T>(b);
            for (; i <= x.Length - System.Numerics.Vector<T>.Count; i += System.Numerics.Vector<T>.Count)
                (new System.Numerics.Vector<T>(x[i..]) * va + vb).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = x[i] * a + b;
    }

    // x (N, C, S), gamma/beta (C) or empty (1 / 0) → y (N, C, S);
    // mean, var (biased), rstd = 1/√(var + eps): (C), the batch statistics the output was normalised with
    public static void ForwardTrain<T>(int n, int c, int s, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, T eps,
        Span<T> y, Span<T> mean, Span<T> var, Span<T> rstd) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(n, c, s, x.Length, y.Length, gamma.Length, beta.Length);
        if (n * s == 0) throw new ArgumentException("Batch norm over an empty batch.");
        fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pb = beta) fixed (T* py = y) fixed (T* pm = mean) fixed (T* pv = var) fixed (T* pr = rstd)
        {
            T* ax = px, ag = gamma.IsEmpty ? null : pg, ab = beta.IsEmpty ? null : pb, ay = py, am = pm, av = pv, ar = pr;
            Par.For(c, Grain(n, s), (c0, c1) =>
            {
                double count = (double)n * s;
                for (int ch = c0; ch < c1; ch++)
                {
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += double.CreateTruncating(TensorPrimitives.Sum(Plane(ax, i, ch, c, s)));
                    T mu = T.CreateTruncating(sum / count);
                    // y is scratch for x − mean here
                    double sq = 0;
                    for (int i = 0; i < n; i++)
                    {
                        var d = PlaneW(ay, i, ch, c, s);
                        TensorPrimitives.Subtract(Plane(ax, i, ch, c, s), mu, d);
                        sq += double.CreateTruncating(TensorPrimitives.SumOfSquares<T>(d));
                    }
                    double v = sq / count;
                    T r = T.CreateTruncating(1.0 / Math.Sqrt(v + double.CreateTruncating(eps)));
                    am[ch] = mu; av[ch] = T.CreateTruncating(v); ar[ch] = r;
                    T scale = (ag == null ? T.One : ag[ch]) * r, shift = ab == null ? T.Zero : ab[ch];
                    for (int i = 0; i < n; i++)
                    {
                        var d = PlaneW(ay, i, ch, c, s);
                        if (shift == T.Zero) TensorPrimitives.Multiply(d, scale, d);
                        else ScaleShift<T>(d, scale, shift, d);   // one pass: (x − mean)·scale + shift
                    }
                }
            });
        }
    }

    /// <summary>running ← (1 − momentum)·running + momentum·batch, with the unbiased variance var·M/(M − 1), M = N·S (as PyTorch).</summary>
    public static void UpdateRunning<T>(int count, ReadOnlySpan<T> mean, ReadOnlySpan<T> var, T momentum, Span<T> runMean, Span<T> runVar)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T bessel = count > 1 ? T.CreateTruncating((double)count / (count - 1)) : T.One;
        T keep = T.One - momentum;
        for (int ch = 0; ch < mean.Length; ch++)
        {
            runMean[ch] = keep * runMean[ch] + momentum * mean[ch];
            runVar[ch] = keep * runVar[ch] + momentum * var[ch] * bessel;
        }
    }

    // y = (x − runMean)·gamma·rstd + beta with rstd = 1/√(runVar + eps) (C), written out for the backward
    public static void ForwardEval<T>(int n, int c, int s, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta,
        ReadOnlySpan<T> runMean, ReadOnlySpan<T> runVar, T eps, Span<T> y, Span<T> rstd) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(n, c, s, x.Length, y.Length, gamma.Length, beta.Length);
        for (int ch = 0; ch < c; ch++) rstd[ch] = T.One / T.Sqrt(runVar[ch] + eps);
        fixed (T* px = x) fixed (T* pg = gamma) fixed (T* pb = beta) fixed (T* py = y) fixed (T* pm = runMean) fixed (T* pr = rstd)
        {
            T* ax = px, ag = gamma.IsEmpty ? null : pg, ab = beta.IsEmpty ? null : pb, ay = py, am = pm, ar = pr;
            Par.For(c, Grain(n, s), (c0, c1) =>
            {
                for (int ch = c0; ch < c1; ch++)
                {
                    // y = x·scale + (shift − mean·scale): one pass over the plane (the statistics are constants here)
                    T scale = (ag == null ? T.One : ag[ch]) * ar[ch], shift = (ab == null ? T.Zero : ab[ch]) - am[ch] * scale;
                    for (int i = 0; i < n; i++)
                        ScaleShift(Plane(ax, i, ch, c, s), scale, shift, PlaneW(ay, i, ch, c, s));
                }
            });
        }
    }

    /// <summary>
    /// With x̂ = (x − mean)·rstd and per-channel sums over (N, S): dbeta (+)= Σ dy, dgamma (+)= Σ dy·x̂, and
    /// training (through the batch statistics): dx (+)= gamma·rstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M);
    /// eval (statistics are constants): dx (+)= gamma·rstd·dy. Empty dx / dgamma / dbeta are skipped.
    /// </summary>
    public static void Backward<T>(bool training, int n, int c, int s, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, Span<T> dx, bool accDx, Span<T> dgamma, bool accGamma, Span<T> dbeta, bool accBeta)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(n, c, s, x.Length, dy.Length, gamma.Length, 0);
        if (!dx.IsEmpty && dx.Length != x.Length) throw new ArgumentException("dx length mismatch.");
        bool wantX = !dx.IsEmpty, wantG = !dgamma.IsEmpty, wantB = !dbeta.IsEmpty;
        fixed (T* px = x) fixed (T* pdy = dy) fixed (T* pg = gamma) fixed (T* pm = mean) fixed (T* pr = rstd)
        fixed (T* pdx = dx) fixed (T* pdg = dgamma) fixed (T* pdb = dbeta)
        {
            T* ax = px, ady = pdy, ag = gamma.IsEmpty ? null : pg, am = pm, ar = pr, adx = pdx, adg = pdg, adb = pdb;
            Par.For(c, Grain(n, s), (c0, c1) =>
            {
                var tmp = ArrayPool<T>.Shared.Rent(s);
                try
                {
                    var t = tmp.AsSpan(0, s);
                    for (int ch = c0; ch < c1; ch++)
                    {
                        T mu = am[ch], r = ar[ch];
                        bool needDyx = wantG || (wantX && training);
                        double sdy = 0, sdyx = 0;
                        for (int i = 0; i < n; i++)
                        {
                            var g = Plane(ady, i, ch, c, s);
                            sdy += double.CreateTruncating(TensorPrimitives.Sum(g));
                            if (needDyx)
                            {
                                TensorPrimitives.Subtract(Plane(ax, i, ch, c, s), mu, t);
                                sdyx += double.CreateTruncating(TensorPrimitives.Dot<T>(g, t));
                            }
                        }
                        T sumDy = T.CreateTruncating(sdy), sumDyXhat = T.CreateTruncating(sdyx) * r;
                        if (wantB) adb[ch] = accBeta ? adb[ch] + sumDy : sumDy;
                        if (wantG) adg[ch] = accGamma ? adg[ch] + sumDyXhat : sumDyXhat;
                        if (!wantX) continue;

                        T k = (ag == null ? T.One : ag[ch]) * r;
                        T m = T.CreateTruncating((double)n * s);
                        // training: dx = k·dy + b·(x − mean) + cterm with b = −k·rstd·Σ(dy·x̂)/M, cterm = −k·Σdy/M
                        T bcoef = training ? -k * r * sumDyXhat / m : T.Zero;
                        T cterm = training ? -k * sumDy / m : T.Zero;
                        for (int i = 0; i < n; i++)
                        {
                            var g = Plane(ady, i, ch, c, s);
                            var d = PlaneW(adx, i, ch, c, s);
                            if (training)
                            {
                                TensorPrimitives.Subtract(Plane(ax, i, ch, c, s), mu, t);
                                TensorPrimitives.Multiply(t, bcoef, t);
                                TensorPrimitives.Add(t, cterm, t);
                                TensorPrimitives.MultiplyAdd(g, k, t, t);
                            }
                            else TensorPrimitives.Multiply(g, k, t);
                            if (accDx) TensorPrimitives.Add(d, t, d);
                            else t.CopyTo(d);
                        }
                    }
                }
                finally { ArrayPool<T>.Shared.Return(tmp); }
            });
        }
    }

    private static ReadOnlySpan<T> Plane<T>(T* p, int i, int ch, int c, int s) where T : unmanaged => new(p + ((long)i * c + ch) * s, s);
    private static Span<T> PlaneW<T>(T* p, int i, int ch, int c, int s) where T : unmanaged => new(p + ((long)i * c + ch) * s, s);

    private static void Check(int n, int c, int s, int xLen, int yLen, int gLen, int bLen)
    {
        if (xLen != n * c * s || yLen != xLen || (gLen != 0 && gLen != c) || (bLen != 0 && bLen != c))
            throw new ArgumentException($"Buffer lengths do not match batch norm over ({n}, {c}, {s}).");
    }
}
