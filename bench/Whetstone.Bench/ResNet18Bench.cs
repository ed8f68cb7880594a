using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Tensors;
using Whetstone.Tensors.Memory;
using Whetstone.Training;
using AutogradGraph = Whetstone.Tensors.Autograd.Graph;

namespace Whetstone.Bench;

/// <summary>
/// `resnet18`: the frozen-backbone feature pass of ML.NET's ResNet-18 (asset resnet18, ResNet18.onnx, [N, 3, 224, 224]
/// → [N, 512, 1, 1]) — our imported graph in eval mode without gradients vs ONNX Runtime (C# Microsoft.ML.OnnxRuntime,
/// CPU provider, IntraOpNumThreads = threads, InterOpNumThreads = 1, sequential execution, all graph optimisations) on
/// the same batch. Timed as a pair (ours, ORT, ours, ORT blocks), median of the reps; images/s and the ratio ours/ORT.
/// </summary>
internal static class ResNet18Bench
{
    public static int Run(string[] args)
    {
        var o = new BenchUtil.Options(args);
        int batch = o.Int("batch", 32), reps = o.Int("reps", 6), size = o.Int("size", 224);
        var threadsList = o.Ints("threads", [2]);
        bool noRef = o.Has("no-ref");
        var path = Path.Combine(Assets.CacheDir, "resnet18", "ResNet18.onnx");
        if (!File.Exists(path)) { Console.Error.WriteLine($"resnet18: {path} is not cached; run scripts/fetch-assets resnet18"); return 1; }

        var graph = OnnxModel.Load(path);
        var x = new float[batch * 3 * size * size];
        var rng = new Rng(7);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 255 - 120);   // mean-subtracted BGR pixels' range
        int[] shape = [batch, 3, size, size];
        double macs = ConvMacs(graph, size);   // this file's ResNet-18 (3 blocks in the last stage): 2.05 G multiply-adds per 224² image

        if (o.Get("group-below") is { Length: > 0 } gb) Whetstone.Tensors.Kernels.Conv.GroupImagesBelow = int.Parse(gb);   // tuning: forward convs grouped below this many output pixels
        if (o.Get("winograd-tile") is { Length: > 0 } wt) Whetstone.Tensors.Kernels.Winograd.TileSize = int.Parse(wt);   // tuning: F(m×m, 3×3), m = 2 or 4
        if (o.Has("no-winograd")) Whetstone.Tensors.Kernels.Winograd.Enabled = false;
        if (o.Has("conv-parts")) { ConvParts(reps); return 0; }
        if (o.Has("stem-parts")) { Par.Threads = threadsList[0]; StemParts(reps, batch); return 0; }
        if (o.Has("winograd-parts")) { Par.Threads = threadsList[0]; WinogradParts(reps, batch); return 0; }
        if (o.Has("profile")) { Par.Threads = threadsList[0]; Profile(graph, x, shape, reps); return 0; }
        foreach (int threads in threadsList)
        {
            Par.Threads = threads;
            float[] ours = [];
            void Ours()
            {
                using var scope = new TensorScope();
                using var _ = AutogradGraph.NoGrad();
                ours = graph.Forward(Tensor.From(x, shape)).ToArray();
            }
            InferenceSession? session = null;
            float[] theirs = [];
            Action ort = () => { };
            if (!noRef)
            {
                var so = new SessionOptions
                {
                    IntraOpNumThreads = threads, InterOpNumThreads = 1,
                    ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                    GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                };
                session = new InferenceSession(OnnxBatchAxis.Symbolic(File.ReadAllBytes(path)), so);
                var input = new DenseTensor(x, shape);
                var feeds = new[] { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input) };
                ort = () =>
                {
                    using var results = session.Run(feeds);
                    theirs = results.First().AsTensor<float>().ToArray();
                };
            }
            var (a, b) = noRef ? (BenchUtil.Time(Ours, reps, 1), default) : BenchUtil.TimePair(Ours, ort, reps, 1);
            var fields = new Dictionary<string, object?>
            {
                ["threads"] = threads, ["batch"] = batch, ["size"] = size, ["gmacs_per_image"] = macs / 1e9,
                ["ms"] = a.Median, ["best_ms"] = a.Best, ["images_per_s"] = batch * 1000.0 / a.Median,
                ["gflops"] = 2 * macs * batch / (a.Median * 1e6),
            };
            if (!noRef)
            {
                double maxDiff = 0;
                for (int i = 0; i < ours.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(ours[i] - theirs[i]));
                fields["ref_ms"] = b.Median;
                fields["ref_best_ms"] = b.Best;
                fields["ref_images_per_s"] = batch * 1000.0 / b.Median;
                fields["ratio"] = b.Median / a.Median;   // > 1: ours faster
                fields["max_abs_diff"] = maxDiff;
                fields["ref"] = "onnxruntime " + OrtEnv.Instance().GetVersionString();
            }
            fields["reps"] = a.Reps;
            BenchUtil.Emit("resnet18", "frozen-features", fields);
            session?.Dispose();
        }
        return 0;
    }

    /// <summary>Multiply-adds of the convolutions for one size × size image (weight elements × output pixels).</summary>
    private static double ConvMacs(Whetstone.Models.Graph.LayerGraph graph, int size)
    {
        using var scope = new TensorScope();
        using var _ = AutogradGraph.NoGrad();
        var shapes = graph.TraceShapes(Tensor.Zeros(1, 3, size, size)).ToDictionary(p => p.Name, p => p.Shape);
        double macs = 0;
        foreach (var n in graph.Nodes)
            foreach (var (name, p) in graph.Layer(n.Name).NamedParameters())
                if (name == "weight" && p.Rank == 4) macs += (double)p.Size * shapes[n.Name][2] * shapes[n.Name][3];
        return macs;
    }

    /// <summary>One image, one thread: im2col alone, GEMM alone and the whole conv for ResNet-18's 3×3 geometries.</summary>
    private static unsafe void ConvParts(int reps)
    {
        Par.Threads = 1;
        foreach (var (c, hw) in new[] { (64, 56), (128, 28), (256, 14), (512, 7) })
        {
            var g = new Whetstone.Tensors.Kernels.ConvGeom(1, c, hw, hw, c, 3, 3, 1, 1, 1, 1);
            var x = new float[c * hw * hw]; var w = new float[c * g.K]; var y = new float[c * g.OHW]; var col = new float[g.K * g.OHW];
            new Random(1).NextBytes(new byte[1]);
            for (int i = 0; i < x.Length; i++) x[i] = i % 7 - 3; for (int i = 0; i < w.Length; i++) w[i] = i % 5 - 2;
            double flops = 2.0 * c * g.K * g.OHW;
            fixed (float* px = x) fixed (float* pw = w) fixed (float* py = y) fixed (float* pc = col)
            {
                float* ax = px, aw = pw, ay = py, ac = pc;
                var ti = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Im2Col(g, ax, ac), reps * 5);
                var tg = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Gemm.Run(false, false, c, g.OHW, g.K, 1f, aw, g.K, ac, g.OHW, 0f, ay, g.OHW), reps * 5);
                var tc = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Forward<float>(g, x, w, [], y), reps * 5);
                int imgs = Math.Max(1, 4096 / g.OHW);
                var big = new float[(long)g.K * g.OHW * imgs]; var yb = new float[(long)c * g.OHW * imgs];
                fixed (float* pbig = big) fixed (float* pyb = yb)
                {
                    float* ab = pbig, ayb = pyb;
                    foreach (int th in new[] { 1, 2 })
                    {
                        Par.Threads = th;
                        var tb = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Gemm.Run(false, false, c, g.OHW * imgs, g.K, 1f, aw, g.K, ab, g.OHW * imgs, 0f, ayb, g.OHW * imgs), reps * 3);
                        Console.WriteLine($"  batched gemm x{imgs} images, {th} threads: {tb.Median / imgs:F2} ms/image ({flops * imgs / tb.Median / 1e6:F0} GF/s)");
                    }
                    Par.Threads = 1;
                }
                Console.WriteLine($"{g}: im2col {ti.Median:F2} ms, gemm {tg.Median:F2} ms ({flops / tg.Median / 1e6:F0} GF/s), conv {tc.Median:F2} ms ({flops / tc.Median / 1e6:F0} GF/s)");
            }
        }
    }

    /// <summary>The 7×7 stride-2 stem (3 → 64 channels, 224² → 112²) at the given batch: the whole conv, im2col alone, GEMM alone (per image, one thread each).</summary>
    private static unsafe void StemParts(int reps, int batch)
    {
        var g = new Whetstone.Tensors.Kernels.ConvGeom(batch, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3);
        var rng = new Rng(3);
        var x = new float[g.N * 3 * g.HW]; var w = new float[64 * g.K]; var y = new float[g.N * 64 * g.OHW];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5);
        var col = new float[g.K * g.OHW];
        double flops = 2.0 * 64 * g.K * g.OHW * g.N;
        int band = Whetstone.Tensors.Kernels.Conv.ColBandFloats;
        foreach (int bf in new[] { int.MaxValue, band, band / 2, band * 2, int.MaxValue, band })
        {
            Whetstone.Tensors.Kernels.Conv.ColBandFloats = bf;
            var tb = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Forward<float>(g, x, w, [], y), reps);
            Console.WriteLine($"  bands of {bf} floats: conv {tb.Median:F1} ms (best {tb.Best:F1})");
        }
        Whetstone.Tensors.Kernels.Conv.ColBandFloats = band;
        var tc = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Forward<float>(g, x, w, [], y), reps);
        fixed (float* px = x) fixed (float* pw = w) fixed (float* pc = col) fixed (float* py = y)
        {
            float* ax = px, aw = pw, ac = pc, ay = py;
            int saved = Par.Threads;
            Par.Threads = 1;
            var ti = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Im2Col(g, ax, ac), reps * 3);
            var tg = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Gemm.Run(false, false, 64, g.OHW, g.K, 1f, aw, g.K, ac, g.OHW, 0f, ay, g.OHW), reps * 3);
            Par.Threads = saved;
            Console.WriteLine($"{g}: conv {tc.Median:F1} ms ({flops / tc.Median / 1e6:F0} GF/s); one image on one thread: im2col {ti.Median:F2} ms, gemm {tg.Median:F2} ms ({flops / g.N / tg.Median / 1e6:F0} GF/s)");
        }
    }

    /// <summary>
    /// ResNet-18's 3×3 stride-1 geometries at the given batch: the weight transform alone, the Winograd forward from
    /// transformed weights at several chunk sizes, and the im2col path, with the relative difference between the two.
    /// </summary>
    private static unsafe void WinogradParts(int reps, int batch)
    {
        foreach (var (c, hw) in new[] { (64, 56), (128, 28), (256, 14), (512, 7) })
        {
            var g = new Whetstone.Tensors.Kernels.ConvGeom(batch, c, hw, hw, c, 3, 3, 1, 1, 1, 1);
            var rng = new Rng(3);
            var x = new float[g.N * c * g.HW]; var w = new float[c * g.K]; var y = new float[g.N * c * g.OHW]; var yr = new float[y.Length];
            for (int i = 0; i < x.Length; i++) x[i] = (float)Math.Max(0, rng.NextDouble() * 2 - 0.5);   // post-ReLU-like
            for (int i = 0; i < w.Length; i++) w[i] = (float)((rng.NextDouble() - 0.5) * 0.1);
            double flops = 2.0 * c * g.K * g.OHW * g.N;
            int m = Whetstone.Tensors.Kernels.Winograd.TileSize;
            var u = new float[Whetstone.Tensors.Kernels.Winograd.WeightFloats(g, m)];
            fixed (float* px = x) fixed (float* pw = w) fixed (float* pu = u) fixed (float* py = y)
            {
                float* ax = px, aw = pw, au = pu, ay = py;
                var tw = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Winograd.TransformWeights(g, m, aw, au), reps);
                Whetstone.Tensors.Kernels.Winograd.Enabled = false;
                var td = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Conv.Forward<float>(g, x, w, [], yr), reps);
                Whetstone.Tensors.Kernels.Winograd.Enabled = true;
                Console.WriteLine($"{g}: weights {tw.Median:F2} ms, im2col conv {td.Median:F1} ms ({flops / td.Median / 1e6:F0} GF/s)");
                int saved = Whetstone.Tensors.Kernels.Winograd.ChunkTiles;
                foreach (int chunk in new[] { 64, 128, 256, 512, 1024, 1 << 20 })
                {
                    Whetstone.Tensors.Kernels.Winograd.ChunkTiles = chunk;
                    var tf = BenchUtil.Time(() => Whetstone.Tensors.Kernels.Winograd.Forward(g, m, ax, au, default, ay), reps);
                    double diff = 0, scale = 0;
                    for (int i = 0; i < y.Length; i++) { diff = Math.Max(diff, Math.Abs(y[i] - yr[i])); scale = Math.Max(scale, Math.Abs(yr[i])); }
                    if (chunk == 256 || chunk == 1 << 20)
                    {
                        var pt = Whetstone.Tensors.Kernels.Winograd.PhaseTicks = new long[4];
                        Whetstone.Tensors.Kernels.Winograd.Forward(g, m, ax, au, default, ay);
                        Whetstone.Tensors.Kernels.Winograd.PhaseTicks = null;
                        Console.WriteLine($"  phases, chunk {chunk} (summed over threads): " + string.Join(", ", pt.Select(t => $"{t * 1000.0 / System.Diagnostics.Stopwatch.Frequency:F1} ms")));
                    }
                    Console.WriteLine($"  F({m}) chunk {chunk,7} tiles: {tf.Median:F1} ms (direct-equivalent {flops / tf.Median / 1e6:F0} GF/s), max |diff| {diff:E2} of max |y| {scale:F2}");
                }
                Whetstone.Tensors.Kernels.Winograd.ChunkTiles = saved;
            }
        }
    }

    /// <summary>Per-layer time of our forward (layer by layer, median over reps), summed by layer kind and listed by layer.</summary>
    private static void Profile(Whetstone.Models.Graph.LayerGraph graph, float[] x, int[] shape, int reps)
    {
        var times = new Dictionary<string, List<double>>();
        for (int r = 0; r < reps + 1; r++)
        {
            using var scope = new TensorScope();
            using var _ = AutogradGraph.NoGrad();
            var values = new Dictionary<string, Tensor> { [graph.InputName] = Tensor.From(x, shape) };
            foreach (var n in graph.Nodes)
            {
                var layer = graph.Layer(n.Name);
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                var y = layer is Whetstone.Models.Graph.MergeLayer m ? m.Forward(n.Inputs.Select(i => values[i]).ToArray()) : ((Whetstone.Nn.Module<Tensor, Tensor>)layer).Forward(values[n.Inputs[0]]);
                double ms = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                values[n.Name] = y;
                if (r > 0) (times.TryGetValue(n.Name, out var l) ? l : times[n.Name] = []).Add(ms);
            }
        }
        var med = times.ToDictionary(p => p.Key, p => BenchUtil.Stats.Of(p.Value).Median);
        foreach (var g in graph.Nodes.GroupBy(n => n.Kind).OrderByDescending(g => g.Sum(n => med[n.Name])))
            Console.WriteLine($"{g.Key,-20} {g.Count(),3} layers {g.Sum(n => med[n.Name]),9:F1} ms");
        Console.WriteLine($"{"total",-20} {graph.Nodes.Count,3} layers {med.Values.Sum(),9:F1} ms");
        foreach (var n in graph.Nodes) Console.WriteLine($"  {n.Name,-28} {n.Kind,-20} {graph.Layer(n.Name).ParameterCount(),9} {med[n.Name],8:F1} ms");
    }
}

/// <summary>
/// Rewrites an ONNX model's graph inputs and outputs so their first axis is the symbol "N" (ML.NET's models declare
/// batch 1, which ONNX Runtime enforces). Copies every other field byte for byte; value_info entries are dropped (ORT
/// infers them).
/// </summary>
internal static class OnnxBatchAxis
{
    public static byte[] Symbolic(byte[] model) => Rewrite(model, (field, bytes) => field == 7 ? Graph(bytes) : bytes);

    private static byte[] Graph(byte[] graph) => Rewrite(graph, (field, bytes) => field switch
    {
        11 or 12 => Rewrite(bytes, (f, b) => f == 2 ? Rewrite(b, (f2, b2) => f2 == 1 ? Rewrite(b2, (f3, b3) => f3 == 2 ? FirstDimSymbolic(b3) : b3) : b2) : b),
        13 => null,
        _ => bytes,
    });

    private static byte[] FirstDimSymbolic(byte[] shape)
    {
        bool first = true;
        return Rewrite(shape, (f, b) =>
        {
            if (f != 1 || !first) return b;
            first = false;
            using var ms = new MemoryStream();
            var o = new Google.Protobuf.CodedOutputStream(ms);
            o.WriteTag(2, Google.Protobuf.WireFormat.WireType.LengthDelimited);
            o.WriteString("N");
            o.Flush();
            return ms.ToArray();
        });
    }

    /// <summary>Copies a message, passing each length-delimited field's payload through <paramref name="map"/> (null drops it).</summary>
    private static byte[] Rewrite(byte[] message, Func<int, byte[], byte[]?> map)
    {
        var input = new Google.Protobuf.CodedInputStream(message);
        using var ms = new MemoryStream();
        var output = new Google.Protobuf.CodedOutputStream(ms);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int field = Google.Protobuf.WireFormat.GetTagFieldNumber(tag);
            switch (Google.Protobuf.WireFormat.GetTagWireType(tag))
            {
                case Google.Protobuf.WireFormat.WireType.Varint: output.WriteTag(tag); output.WriteUInt64(input.ReadUInt64()); break;
                case Google.Protobuf.WireFormat.WireType.Fixed64: output.WriteTag(tag); output.WriteFixed64(input.ReadFixed64()); break;
                case Google.Protobuf.WireFormat.WireType.Fixed32: output.WriteTag(tag); output.WriteFixed32(input.ReadFixed32()); break;
                case Google.Protobuf.WireFormat.WireType.LengthDelimited:
                    var mapped = map(field, input.ReadBytes().ToByteArray());
                    if (mapped is null) break;
                    output.WriteTag(tag);
                    output.WriteBytes(Google.Protobuf.ByteString.CopyFrom(mapped));
                    break;
                default: throw new FormatException($"unexpected wire type in field {field}");
            }
        }
        output.Flush();
        return ms.ToArray();
    }
}
