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
                ["threads"] = threads, ["batch"] = batch, ["size"] = size,
                ["ms"] = a.Median, ["best_ms"] = a.Best, ["images_per_s"] = batch * 1000.0 / a.Median,
                ["gflops"] = 2 * 1.8144e9 * batch / (a.Median * 1e6),   // ResNet-18 at 224²: 1.814 G multiply-adds per image
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
