using Whetstone.Tensors;
using Whetstone.Tensors.Memory;

namespace Whetstone.Models.Transformers;

/// <summary>
/// How <see cref="TextGeneration.Generate"/> picks tokens, with Hugging Face <c>generate</c>'s meanings: greedy unless
/// <see cref="DoSample"/>; when sampling, the logits go through the repetition penalty, then temperature, top-k and
/// top-p (nucleus) before a seeded draw.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate per prompt at most.</summary>
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Sample (true) or take the most likely token (false: greedy).</summary>
    public bool DoSample { get; init; }
    /// <summary>Logits are divided by this before sampling (&gt; 0).</summary>
    public float Temperature { get; init; } = 1;
    /// <summary>Keep only the k most likely tokens (0: all).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (1: all).</summary>
    public float TopP { get; init; } = 1;
    /// <summary>CTRL's penalty for tokens already in the prompt or the output: positive logits ÷ r, negative × r (1: none).</summary>
    public float RepetitionPenalty { get; init; } = 1;
    /// <summary>Tokens that end a row (the checkpoint's eos_token_id, an end-of-turn token); not part of the output.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>The sampling generator's seed.</summary>
    public ulong Seed { get; init; }

    /// <summary>Throws for settings outside their ranges, naming the setting.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException($"max_new_tokens must be at least 1; got {MaxNewTokens}.");
        if (!(Temperature > 0)) throw new ArgumentException($"temperature must be positive; got {Temperature} (use greedy decoding for 0).");
        if (TopK < 0) throw new ArgumentException($"top_k must be ≥ 0; got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top_p must be in (0, 1]; got {TopP}.");
        if (!(RepetitionPenalty > 0)) throw new ArgumentException($"repetition_penalty must be positive; got {RepetitionPenalty}.");
    }
}

/// <summary>Why a row stopped.</summary>
public enum FinishReason
{
    /// <summary>An end-of-sequence token (or the caller's stop check).</summary>
    Stop,
    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> or the model's positions ran out.</summary>
    Length,
}

/// <summary>One prompt's generated tokens (end token excluded) and why it stopped.</summary>
public sealed record GeneratedRow(int[] Tokens, FinishReason Finish);

/// <summary>
/// Autoregressive generation with a KV cache: the prompts are left-padded into one batch and prefilled in one pass,
/// then each step runs only the new token of every row. Rows stop independently (EOS, the caller's stop check,
/// max_new_tokens); the batch ends when every row has.
/// </summary>
public static class TextGeneration
{
    /// <summary>
    /// Generates a continuation of each prompt. <paramref name="onToken"/>(row, token) is called for each new token as
    /// it is chosen (streaming); <paramref name="stop"/>(row, tokens so far) may end a row after a token (stop strings).
    /// </summary>
    public static IReadOnlyList<GeneratedRow> Generate(CausalLm model, IReadOnlyList<int[]> prompts, GenerationOptions options,
        Action<int, int>? onToken = null, Func<int, IReadOnlyList<int>, bool>? stop = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (prompts.Count == 0) return [];
        int b = prompts.Count, longest = PromptBatch.Longest(model, prompts);
        int steps = Math.Min(options.MaxNewTokens, model.MaxPositions - longest);
        var cache = model.NewCache(b, longest + steps);
        var rng = new Rng(options.Seed);
        var (ids, mask, positions, next) = PromptBatch.LeftPad(prompts, longest, longest + steps);
        var output = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var history = prompts.Select(p => new HashSet<int>(p)).ToArray();
        var finish = new FinishReason?[b];
        var eos = new HashSet<int>(options.EosTokenIds);
        var logits = new float[model.VocabSize];

        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        int[] stepIds = ids, stepPositions = positions;
        int stepLen = longest;
        for (int step = 0; step < steps && finish.Any(f => f is null); step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = new TensorScope();
            int filled = cache.Length + stepLen;
            var m = Tensor.Empty(b, filled);
            var ms = m.Span;
            for (int r = 0; r < b; r++) mask.AsSpan(r * (longest + steps), filled).CopyTo(ms.Slice(r * filled, filled));
            var all = model.Forward(stepIds, b, stepLen, m, cache, stepPositions).Span;   // (B, stepLen, V)
            stepIds = new int[b];
            stepPositions = new int[b];
            for (int r = 0; r < b; r++)
            {
                int col = cache.Length;   // this step's column in the mask
                if (finish[r] is not null)
                {
                    stepIds[r] = 0;                       // a finished row runs on masked-out filler
                    stepPositions[r] = Math.Min(next[r], model.MaxPositions - 1);
                    continue;
                }
                all.Slice(((r + 1) * stepLen - 1) * model.VocabSize, model.VocabSize).CopyTo(logits);
                int token = Sampling.Next(logits, options, history[r], rng);
                if (eos.Contains(token)) { finish[r] = FinishReason.Stop; stepIds[r] = token; stepPositions[r] = next[r]; continue; }
                output[r].Add(token);
                history[r].Add(token);
                onToken?.Invoke(r, token);
                mask[r * (longest + steps) + col] = 1;
                stepIds[r] = token;
                stepPositions[r] = next[r]++;
                if (stop?.Invoke(r, output[r]) == true) finish[r] = FinishReason.Stop;
            }
            stepLen = 1;
        }
        return output.Select((o, r) => new GeneratedRow([.. o], finish[r] ?? FinishReason.Length)).ToArray();
    }
}

/// <summary>What every decoding loop over the KV cache starts from.</summary>
internal static class PromptBatch
{
    /// <summary>The longest prompt's length, after checking that no prompt is empty and the longest leaves room to generate.</summary>
    public static int Longest(CausalLm model, IReadOnlyList<int[]> prompts)
    {
        foreach (var p in prompts)
            if (p.Length == 0) throw new ArgumentException("A prompt has no tokens; a decoder needs at least one (e.g. its BOS token).");
        int longest = prompts.Max(p => p.Length);
        if (longest >= model.MaxPositions)
            throw new ArgumentException($"A prompt of {longest} tokens leaves no room in the model's {model.MaxPositions} positions.");
        return longest;
    }

    /// <summary>
    /// Left padding: row r's prompt ends at column longest − 1 of its ids (B, longest) and of its mask row (B, width);
    /// its positions count real tokens only; next[r] is the position of the row's next token.
    /// </summary>
    public static (int[] Ids, float[] Mask, int[] Positions, int[] Next) LeftPad(IReadOnlyList<int[]> rows, int longest, int width)
    {
        int b = rows.Count;
        var ids = new int[b * longest];
        var mask = new float[b * width];
        var positions = new int[b * longest];
        var next = new int[b];
        for (int r = 0; r < b; r++)
        {
            int pad = longest - rows[r].Length;
            rows[r].CopyTo(ids, r * longest + pad);
            for (int i = 0; i < longest; i++)
            {
                mask[r * width + i] = i >= pad ? 1 : 0;
                positions[r * longest + i] = Math.Max(0, i - pad);
            }
            next[r] = rows[r].Length;
        }
        return (ids, mask, positions, next);
    }
}

/// <summary>The next-token choice over one row of logits (modified in place).</summary>
public static class Sampling
{
    /// <summary>Greedy or sampled token for <paramref name="logits"/> (V), with the penalty over <paramref name="seen"/>.</summary>
    public static int Next(float[] logits, GenerationOptions o, IReadOnlyCollection<int> seen, Rng rng)
    {
        if (o.RepetitionPenalty != 1)
            foreach (int t in seen)
                if ((uint)t < (uint)logits.Length) logits[t] = logits[t] > 0 ? logits[t] / o.RepetitionPenalty : logits[t] * o.RepetitionPenalty;
        if (!o.DoSample) return ArgMax(logits);
        var p = Probabilities(logits, o);
        double u = rng.NextDouble(), acc = 0;
        int last = -1;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] <= 0) continue;
            acc += p[i];
            last = i;
            if (u < acc) return i;
        }
        return last;   // rounding left u just above the total
    }

    /// <summary>The sampling distribution after temperature, top-k and top-p (zeros outside the kept set).</summary>
    public static double[] Probabilities(float[] logits, GenerationOptions o)
    {
        int v = logits.Length;
        var order = Enumerable.Range(0, v).ToArray();
        Array.Sort(order, (a, b) => logits[b].CompareTo(logits[a]) is var c && c != 0 ? c : a.CompareTo(b));
        int keep = o.TopK > 0 ? Math.Min(o.TopK, v) : v;
        double max = logits[order[0]] / o.Temperature;
        var p = new double[v];
        double sum = 0;
        for (int i = 0; i < keep; i++)
        {
            double e = Math.Exp(logits[order[i]] / o.Temperature - max);
            p[order[i]] = e;
            sum += e;
        }
        for (int i = 0; i < keep; i++) p[order[i]] /= sum;
        if (o.TopP < 1)
        {
            // the smallest prefix of the sorted tokens whose mass reaches top_p (at least one token)
            double acc = 0;
            int cut = 0;
            while (cut < keep && acc < o.TopP) acc += p[order[cut++]];
            double kept = 0;
            for (int i = 0; i < keep; i++)
                if (i < cut) kept += p[order[i]]; else p[order[i]] = 0;
            for (int i = 0; i < cut; i++) p[order[i]] /= kept;
        }
        return p;
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
