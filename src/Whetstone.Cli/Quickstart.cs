using System.Diagnostics;
using Whetstone.Nn;
using Whetstone.Nn.Layers;
using Whetstone.Nn.Optimizers;
using Whetstone.Nn.Schedules;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training.Evaluation;

namespace Whetstone.Cli;

/// <summary>
/// The built-in demo, until the image workflow lands: a network pre-trained on a 10-class source task is
/// fine-tuned on a 4-class target task with only 25 labels per class, three ways — frozen body + new head,
/// full fine-tune with a 10× lower body learning rate, and the same network from scratch — and each is
/// scored on 2,000 held-out examples, next to the model before fine-tuning (untrained head).
/// Both tasks are functions of the same hidden factors, so features learned on the source transfer.
/// </summary>
internal static class Quickstart
{
    private const int InputDim = 48, LatentDim = 8, Hidden = 128, Feature = 64;

    private sealed class Net : Module<Tensor, Tensor>
    {
        public Sequential Body { get; }
        public Linear Head { get; private set; }

        public Net(int classes, Rng rng)
        {
            Body = RegisterModule("body", new Sequential(new Linear(InputDim, Hidden, true, rng), new Gelu(), new Linear(Hidden, Feature, true, rng), new Gelu()));
            Head = RegisterModule("head", new Linear(Feature, classes, true, rng));
        }

        /// <summary>Replaces the task head with a fresh one sized for <paramref name="classes"/>.</summary>
        public void NewHead(int classes, Rng rng)
        {
            var head = new Linear(Feature, classes, true, rng);
            ReplaceModule("head", head);
            Head = head;
        }

        public override Tensor Forward(Tensor x) => Head.Forward(Body.Forward(x));
    }

    /// <summary>x = tanh(z·M₁)·M₂ + noise; labels are argmax(z·W) for a task-specific W.</summary>
    private sealed class World
    {
        private readonly float[] _m1, _m2;
        public World(Rng rng)
        {
            _m1 = Enumerable.Range(0, LatentDim * 32).Select(_ => (float)rng.NextNormal()).ToArray();
            _m2 = Enumerable.Range(0, 32 * InputDim).Select(_ => (float)(rng.NextNormal() / Math.Sqrt(32))).ToArray();
        }

        public (float[] X, int[] Y) Sample(int n, float[] task, int classes, Rng rng, int perClass = 0)
        {
            var xs = new List<float>(); var ys = new List<int>();
            var counts = new int[classes];
            while (ys.Count < n)
            {
                var z = Enumerable.Range(0, LatentDim).Select(_ => (float)rng.NextNormal()).ToArray();
                int y = 0; float best = float.NegativeInfinity;
                for (int c = 0; c < classes; c++)
                {
                    float s = 0;
                    for (int i = 0; i < LatentDim; i++) s += z[i] * task[i * classes + c];
                    if (s > best) { best = s; y = c; }
                }
                if (perClass > 0 && counts[y] >= perClass) continue;
                counts[y]++;
                var h = new float[32];
                for (int j = 0; j < 32; j++) { float s = 0; for (int i = 0; i < LatentDim; i++) s += z[i] * _m1[i * 32 + j]; h[j] = MathF.Tanh(s); }
                for (int k = 0; k < InputDim; k++) { float s = 0; for (int j = 0; j < 32; j++) s += h[j] * _m2[j * InputDim + k]; xs.Add(s + 0.1f * (float)rng.NextNormal()); }
                ys.Add(y);
            }
            return (xs.ToArray(), ys.ToArray());
        }
    }

    /// <summary>One row of the result table.</summary>
    internal sealed record Row(string Name, string Trainable, ClassificationReport Report, double Seconds);

    public static int Run(TextWriter output) { Compare(output); return 0; }

    /// <summary>Runs the demo, prints the table and returns its rows.</summary>
    internal static IReadOnlyList<Row> Compare(TextWriter output)
    {
        var total = Stopwatch.StartNew();
        var rng = new Rng(2024);
        var world = new World(rng);
        float[] Task(int classes) => Enumerable.Range(0, LatentDim * classes).Select(_ => (float)rng.NextNormal()).ToArray();
        var source = Task(16); var target = Task(4);
        var (srcX, srcY) = world.Sample(8000, source, 16, rng);
        var (trainX, trainY) = world.Sample(32, target, 4, rng, perClass: 8);
        var (testX, testY) = world.Sample(2000, target, 4, rng);
        string[] labels = ["A", "B", "C", "D"];
        output.WriteLine($"whet quickstart — transfer learning on a built-in task ({Par.Threads} threads)");
        output.WriteLine("  source task: 16 classes, 8,000 examples   target task: 4 classes, 32 labelled (8/class), 2,000 test");

        var pretrained = new Net(16, new Rng(1));
        var pretrainTime = Stopwatch.StartNew();
        float srcLoss = Fit(pretrained, srcX, srcY, epochs: 8, lr: 3e-3, bodyLrScale: 1, new Rng(2));
        var srcAcc = Evaluate(pretrained, srcX[..(2000 * InputDim)], srcY[..2000], Enumerable.Range(0, 16).Select(i => i.ToString()).ToArray()).Accuracy;
        output.WriteLine($"  pre-trained on the source task: loss {srcLoss:F3}, train accuracy {srcAcc:P1} ({pretrainTime.Elapsed.TotalSeconds:F1} s)");
        var state = pretrained.StateDict().Where(kv => kv.Key.StartsWith("body.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);

        Net FromPretrained(int seed)
        {
            var net = new Net(16, new Rng((ulong)seed));
            net.NewHead(4, new Rng((ulong)seed + 1));
            net.Body.LoadStateDict(state.ToDictionary(kv => kv.Key["body.".Length..], kv => kv.Value), strict: true);
            return net;
        }

        var rows = new List<Row>();
        var before = FromPretrained(10);
        rows.Add(new("before fine-tuning (new head, 0 steps)", "-", Evaluate(before, testX, testY, labels), 0));

        var frozen = FromPretrained(10);
        Freezing.Freeze(frozen, "body.*");
        rows.Add(Train("frozen body + new head", frozen, bodyLrScale: 1));

        var full = FromPretrained(10);
        rows.Add(Train("fine-tune all (body lr × 0.1)", full, bodyLrScale: 0.1));

        var scratch = new Net(4, new Rng(11));
        rows.Add(Train("same network from scratch", scratch, bodyLrScale: 1));

        output.WriteLine();
        output.WriteLine($"  {"model",-40} {"trainable",10} {"accuracy",9} {"macro-F1",9} {"time",7}");
        foreach (var (name, trainable, r, s) in rows)
            output.WriteLine($"  {name,-40} {trainable,10} {r.Accuracy,9:P1} {r.MacroF1,9:F3} {s,6:F2}s");
        output.WriteLine();
        output.WriteLine($"  total {total.Elapsed.TotalSeconds:F1} s. The image workflow (MobileNetV2 on Fashion-MNIST) replaces this demo when it lands.");
        return rows;

        Row Train(string name, Net net, double bodyLrScale)
        {
            var sw = Stopwatch.StartNew();
            Fit(net, trainX, trainY, epochs: 300, lr: 1e-2, bodyLrScale, new Rng(3));
            return new(name, $"{net.TrainableParameterCount():N0}", Evaluate(net, testX, testY, labels), sw.Elapsed.TotalSeconds);
        }
    }

    /// <summary>AdamW with warmup + cosine decay, minibatches of 32, body learning rate scaled separately.</summary>
    private static float Fit(Net net, float[] x, int[] y, int epochs, double lr, double bodyLrScale, Rng rng)
    {
        const int batch = 32;
        int n = y.Length;
        var groups = new List<ParamGroup>
        {
            new(net.Body.NamedTrainableParameters(), lrScale: bodyLrScale, label: "body"),
            new(net.Head.NamedTrainableParameters(), label: "head"),
        }.Where(g => g.Parameters.Count > 0);
        var opt = new AdamW(groups, lr, weightDecay: 0.01);
        int stepsPerEpoch = (n + batch - 1) / batch;
        var schedule = new WarmupCosine(stepsPerEpoch, epochs * stepsPerEpoch, 0.05);
        float last = 0;
        net.Train();
        for (int e = 0; e < epochs; e++)
        {
            var order = rng.Permutation(n);
            double sum = 0;
            for (int s = 0; s < n; s += batch)
            {
                int m = Math.Min(batch, n - s);
                using var scope = new TensorScope();
                var xb = Tensor.Empty(m, InputDim);
                var yb = new int[m];
                for (int i = 0; i < m; i++)
                {
                    x.AsSpan(order[s + i] * InputDim, InputDim).CopyTo(xb.Span.Slice(i * InputDim, InputDim));
                    yb[i] = y[order[s + i]];
                }
                opt.ZeroGrad();
                var loss = Tensor.CrossEntropy(net.Forward(xb), yb);
                loss.Backward();
                opt.LrFactor = schedule.Factor(opt.StepCount);
                opt.Step();
                sum += loss.Item() * m;
            }
            last = (float)(sum / n);
        }
        net.Eval();
        return last;
    }

    private static ClassificationReport Evaluate(Net net, float[] x, int[] y, string[] labels)
    {
        using var scope = new TensorScope();
        using var noGrad = Tensors.Autograd.Graph.NoGrad();
        net.Eval();
        var logits = net.Forward(Tensor.From(x, y.Length, InputDim));
        return ClassificationReport.From(y, logits.ArgMax(1), labels);
    }
}
