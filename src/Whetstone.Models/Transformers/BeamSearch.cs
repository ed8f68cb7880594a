using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Transformers;

/// <summary>
/// Beam search settings, with Hugging Face <c>generate(num_beams=…)</c>'s meanings: a finished hypothesis scores
/// Σ log p / length^<see cref="LengthPenalty"/> (length = generated tokens, the end token included), and a prompt is done
/// once it has <see cref="NumBeams"/> finished hypotheses and no running beam can still beat the worst of them.
/// </summary>
public sealed record BeamOptions
{
    public int NumBeams { get; init; } = 4;
    /// <summary>Exponent of the length normalisation: 0 compares raw sums (favours short outputs), &gt; 0 favours longer ones.</summary>
    public float LengthPenalty { get; init; } = 1;
    /// <summary>Tokens to generate per prompt at most.</summary>
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>When set, each prompt may generate at most ⌈ratio · its length⌉ + 8 tokens (translation: the source's length bounds the output's).</summary>
    public double? MaxLengthRatio { get; init; }
    /// <summary>Tokens that end a hypothesis; not part of the output.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public void Validate()
    {
        if (NumBeams < 1) throw new ArgumentException($"num_beams must be at least 1; got {NumBeams}.");
        if (MaxNewTokens < 1) throw new ArgumentException($"max_new_tokens must be at least 1; got {MaxNewTokens}.");
        if (!float.IsFinite(LengthPenalty)) throw new ArgumentException($"length_penalty must be finite; got {LengthPenalty}.");
        if (MaxLengthRatio is double r && !(r > 0)) throw new ArgumentException($"max_length_ratio must be positive; got {r}.");
    }
}

/// <summary>The best hypothesis of one prompt: its tokens (end token excluded), summed log-probability and length-normalised score.</summary>
public sealed record BeamResult(int[] Tokens, double LogProb, double Score, FinishReason Finish);

/// <summary>
/// Batched beam search over a KV cache: every prompt gets <see cref="BeamOptions.NumBeams"/> rows (left-padded as in
/// <see cref="TextGeneration.Generate"/>); each step scores all beams × vocabulary continuations of a prompt, keeps the
/// best, moves each survivor's cache row to its parent's, and sets hypotheses that chose an end token aside.
/// </summary>
public static class BeamSearch
{
    private sealed class Hypotheses(int beams, float lengthPenalty)
    {
        public readonly List<(double Score, double LogProb, int[] Tokens, FinishReason Finish)> Done = [];
        public bool Finished;
        public double Worst => Done.Count == 0 ? double.NegativeInfinity : Done.Min(d => d.Score);

        public double Normalise(double logProb, int length) => logProb / Math.Pow(Math.Max(length, 1), lengthPenalty);

        public void Add(double logProb, int[] tokens, int length, FinishReason finish)
        {
            double score = Normalise(logProb, length);
            if (Done.Count < beams) Done.Add((score, logProb, tokens, finish));
            else if (score > Worst)
            {
                int worst = Done.FindIndex(d => d.Score == Worst);
                Done[worst] = (score, logProb, tokens, finish);
            }
        }

        /// <summary>HF's heuristic: done when full and the best running beam, normalised at the current length, cannot beat the worst finished one.</summary>
        public bool IsDone(double bestRunning, int length) => Done.Count >= beams && Normalise(bestRunning, length) <= Worst;
    }

    public static IReadOnlyList<BeamResult> Search(CausalLm model, IReadOnlyList<int[]> prompts, BeamOptions options, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (prompts.Count == 0) return [];
        int n = prompts.Count, k = options.NumBeams, rows = n * k, v = model.VocabSize;
        int longest = PromptBatch.Longest(model, prompts);
        var limit = prompts.Select(p => Math.Min(options.MaxNewTokens,
            options.MaxLengthRatio is double r ? (int)Math.Ceiling(r * p.Length) + 8 : int.MaxValue)).ToArray();
        int steps = Math.Min(limit.Max(), model.MaxPositions - longest);
        var cache = model.NewCache(rows, longest + steps);
        var eos = new HashSet<int>(options.EosTokenIds);
        // row = prompt·k + beam, each prompt's k rows left-padded alike
        int width = longest + steps;
        var (ids, mask, positions, next) = PromptBatch.LeftPad(Enumerable.Range(0, rows).Select(row => prompts[row / k]).ToArray(), longest, width);
        // only the first beam of each prompt is live at the start, so the k copies do not fill the beam with one token
        var beamScore = new double[rows];
        for (int row = 0; row < rows; row++) beamScore[row] = row % k == 0 ? 0 : double.NegativeInfinity;
        var tokens = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var hyps = Enumerable.Range(0, n).Select(_ => new Hypotheses(k, options.LengthPenalty)).ToArray();
        var logp = new float[v];

        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        int[] stepIds = ids, stepPositions = positions;
        int stepLen = longest;
        for (int step = 0; step < steps && hyps.Any(h => !h.Finished); step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = new TensorScope();
            int filled = cache.Length + stepLen;
            var m = Tensor.Empty(rows, filled);
            var ms = m.Span;
            for (int row = 0; row < rows; row++) mask.AsSpan(row * width, filled).CopyTo(ms.Slice(row * filled, filled));
            var all = model.Forward(stepIds, rows, stepLen, m, cache, stepPositions).Span;   // (rows, stepLen, V)
            int col = cache.Length;
            var from = new int[rows];
            var chosen = new int[rows];
            var newScore = new double[rows];
            var newTokens = new List<int>[rows];
            for (int p = 0; p < n; p++)
            {
                var h = hyps[p];
                if (h.Finished)
                {
                    for (int b = 0; b < k; b++) { int row = p * k + b; from[row] = row; chosen[row] = 0; newScore[row] = double.NegativeInfinity; newTokens[row] = tokens[row]; }
                    continue;
                }
                // the 2k best (beam, token) continuations of this prompt: enough to refill k beams past k end tokens
                var best = new List<(double Score, int Beam, int Token)>(2 * k + 1);
                for (int b = 0; b < k; b++)
                {
                    int row = p * k + b;
                    if (double.IsNegativeInfinity(beamScore[row])) continue;
                    all.Slice(((row + 1) * stepLen - 1) * v, v).CopyTo(logp);
                    LogSoftmax(logp);
                    for (int t = 0; t < v; t++)
                    {
                        double s = beamScore[row] + logp[t];
                        if (best.Count == 2 * k && s <= best[^1].Score) continue;
                        int at = best.FindIndex(e => s > e.Score || (s == e.Score && (b < e.Beam || (b == e.Beam && t < e.Token))));
                        if (at < 0) at = best.Count;
                        best.Insert(at, (s, b, t));
                        if (best.Count > 2 * k) best.RemoveAt(best.Count - 1);
                    }
                }
                int generated = tokens[p * k].Count + 1;   // tokens of a continuation chosen now, its end token included
                int kept = 0;
                for (int i = 0; i < best.Count && kept < k; i++)
                {
                    var (s, b, t) = best[i];
                    int parent = p * k + b;
                    if (eos.Contains(t))
                    {
                        if (i < k) h.Add(s, [.. tokens[parent]], generated, FinishReason.Stop);   // HF: only end tokens among the top k count
                        continue;
                    }
                    int row = p * k + kept++;
                    from[row] = parent;
                    chosen[row] = t;
                    newScore[row] = s;
                    newTokens[row] = [.. tokens[parent], t];
                }
                for (; kept < k; kept++) { int row = p * k + kept; from[row] = p * k; chosen[row] = 0; newScore[row] = double.NegativeInfinity; newTokens[row] = tokens[p * k]; }
                double bestRunning = Enumerable.Range(p * k, k).Max(row => newScore[row]);
                if (h.IsDone(bestRunning, generated) || double.IsNegativeInfinity(bestRunning)) h.Finished = true;
                else if (generated >= limit[p] || next[p * k] + 1 >= model.MaxPositions)
                {
                    // out of room: the running beams become hypotheses as they are
                    for (int b = 0; b < k; b++)
                    {
                        int row = p * k + b;
                        if (!double.IsNegativeInfinity(newScore[row])) h.Add(newScore[row], [.. newTokens[row]], newTokens[row].Count, FinishReason.Length);
                    }
                    h.Finished = true;
                }
            }
            // a survivor's parent is a beam of the same prompt, whose mask row is the same (same padding, every step
            // filled for all beams), so only the cache moves
            cache.Reorder(from);
            stepIds = new int[rows];
            stepPositions = new int[rows];
            for (int row = 0; row < rows; row++)
            {
                beamScore[row] = newScore[row];
                tokens[row] = newTokens[row];
                mask[row * width + col] = 1;
                stepIds[row] = chosen[row];
                // the beams of a prompt advance together: a row's next position is its parent's
                stepPositions[row] = Math.Min(next[row], model.MaxPositions - 1);
                next[row]++;
            }
            stepLen = 1;
        }
        var results = new BeamResult[n];
        for (int p = 0; p < n; p++)
        {
            var h = hyps[p];
            if (h.Done.Count == 0)
                for (int b = 0; b < k; b++)
                {
                    int row = p * k + b;
                    if (!double.IsNegativeInfinity(beamScore[row])) h.Add(beamScore[row], [.. tokens[row]], tokens[row].Count, FinishReason.Length);
                }
            var top = h.Done.OrderByDescending(d => d.Score).First();
            results[p] = new BeamResult(top.Tokens, top.LogProb, top.Score, top.Finish);
        }
        return results;
    }

    private static void LogSoftmax(float[] x)
    {
        float max = float.NegativeInfinity;
        foreach (var e in x) max = MathF.Max(max, e);
        double sum = 0;
        foreach (var e in x) sum += Math.Exp(e - max);
        float lse = max + (float)Math.Log(sum);
        for (int i = 0; i < x.Length; i++) x[i] -= lse;
    }
}
