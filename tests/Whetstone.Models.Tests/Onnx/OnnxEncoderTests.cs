using Microsoft.ML.OnnxRuntime;
using Whetstone.Models.Importers.Hf;
using Whetstone.Models.Importers.Onnx;
using Whetstone.Tensors;

namespace Whetstone.Models.Tests.Onnx;

/// <summary>
/// The structural ONNX encoder import on small graphs written here in another export style than MiniLM's: fused
/// LayerNormalization (opset 17), weights stored [out, in] behind a Transpose, anonymous names, positions from a
/// Range, scores scaled by a Mul, tanh-approximated GELU — compared with ONNX Runtime running the same graph; and
/// graphs it must refuse, naming the node.
/// </summary>
public class OnnxEncoderTests
{
    private const int V = 20, P = 16, D = 8, H = 2, Dh = 4, F = 12, Layers = 2;

    /// <summary>A 2-layer BERT graph; <paramref name="mutate"/> changes one thing to make it unreadable.</summary>
    private static byte[] Graph(string? mutate = null)
    {
        var m = new OnnxTestModel(opset: 17);
        int seed = 1, n = 0;
        string T(string what) => $"onnx::{what}_{n++}";
        m.InputInt64("input_ids", "B", "T").InputInt64("attention_mask", "B", "T").InputInt64("token_type_ids", "B", "T");
        m.Init("word", [V, D], seed: seed++).Init("pos", [P, D], seed: seed++).Init("type", [2, D], seed: seed++);
        m.InitInt64("zero", 0).InitInt64("one", 1).InitInt64("axes12", 1, 2).InitInt64("axis0", 0).InitInt64("heads_shape", 0, 0, H, Dh).InitInt64("merge_shape", 0, 0, D);
        m.Init("f_one", [], [1f]).Init("f_neg", [], [-10000f]).Init("scale", [], [0.5f]).Init("half", [], [0.5f]).Init("cube", [], [3f])
         .Init("c044", [], [0.044715f]).Init("s2pi", [], [MathF.Sqrt(2 / MathF.PI)]);

        // embeddings: word + type + position (0..T-1 from a Range), fused layer norm
        m.Node("Gather", ["word", "input_ids"], ["we"]).Node("Gather", ["type", "token_type_ids"], ["te"]);
        m.Node("Shape", "input_ids", "shape").Node("Gather", ["shape", "one"], ["tlen"], null, ("axis", 0L));
        m.Node("Range", ["zero", "tlen", "one"], ["positions"]).Node("Unsqueeze", ["positions", "axis0"], ["positions2"]);
        if (mutate == "roberta-positions") m.Node("Add", ["input_ids", "one"], ["offset_ids"]);   // positions from the ids' values
        m.Node("Gather", ["pos", mutate == "roberta-positions" ? "offset_ids" : "positions2"], ["pe"]);
        m.Node("Add", ["we", "te"], ["e1"]).Node("Add", ["e1", "pe"], ["e2"]);
        m.Init("emb_g", [D], seed: seed++).Init("emb_b", [D], seed: seed++);
        m.Node("LayerNormalization", ["e2", "emb_g", "emb_b"], ["h0"], null, ("epsilon", 1e-12f), ("axis", -1L));
        // mask term (1 - mask) * -10000 as (B, 1, 1, T)
        m.Node("Unsqueeze", ["attention_mask", "axes12"], ["m4"]).Node("Cast", "m4", "m4f", ("to", 1L));
        m.Node("Sub", ["f_one", "m4f"], ["inv"]).Node("Mul", ["inv", "f_neg"], ["mask_term"]);

        string h = "h0";
        for (int l = 0; l < Layers; l++)
        {
            string Linear(string x, int outF, int inF, bool storedOutIn)
            {
                var w = T("W"); var b = T("b"); var y = T("y"); var z = T("z");
                if (storedOutIn)
                {
                    var wt = T("Wt");
                    m.Init(w, [outF, inF], seed: seed++).Node("Transpose", [w], [wt], null, ("perm", new long[] { 1, 0 })).Node("MatMul", [x, wt], [y]);
                }
                else m.Init(w, [inF, outF], seed: seed++).Node("MatMul", [x, w], [y]);
                m.Init(b, [outF], seed: seed++).Node("Add", [y, b], [z]);
                return z;
            }
            string Norm(string x)
            {
                var g = T("g"); var b = T("beta"); var y = T("ln");
                m.Init(g, [D], seed: seed++).Init(b, [D], seed: seed++).Node("LayerNormalization", [x, g, b], [y], null, ("epsilon", 1e-12f), ("axis", -1L));
                return y;
            }
            var q = Linear(h, D, D, true); var k = Linear(h, D, D, true); var v = Linear(h, D, D, true);
            string Heads(string x, long[] perm) { var r = T("r"); var t = T("t"); m.Node("Reshape", [x, "heads_shape"], [r]).Node("Transpose", [r], [t], null, ("perm", perm)); return t; }
            var qh = Heads(q, [0, 2, 1, 3]); var kh = Heads(k, [0, 2, 3, 1]); var vh = Heads(v, [0, 2, 1, 3]);
            var scores = T("s"); var scaled = T("ss"); var masked = T("sm"); var probs = T("p"); var ctx = T("c"); var ctxT = T("ct"); var merged = T("mg");
            m.Node("MatMul", [qh, kh], [scores]).Node("Mul", [scores, mutate == "bad-scale" ? "f_one" : "scale"], [scaled]).Node("Add", [scaled, "mask_term"], [masked]);
            if (mutate == "no-softmax") m.Node("Sigmoid", [masked], [probs]);
            else m.Node("Softmax", [masked], [probs], null, ("axis", -1L));
            m.Node("MatMul", [probs, vh], [ctx]).Node("Transpose", [ctx], [ctxT], null, ("perm", new long[] { 0, 2, 1, 3 })).Node("Reshape", [ctxT, "merge_shape"], [merged]);
            var attn = Linear(merged, D, D, false);
            var res1 = T("res"); m.Node("Add", [attn, h], [res1]);
            var a = Norm(res1);
            // tanh GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            var inter = Linear(a, F, D, false);
            var x3 = T("x3"); var c = T("c3"); var inner = T("in"); var sc = T("sc"); var th = T("th"); var one = T("1p"); var xm = T("xm"); var act = T("act");
            m.Node("Pow", [inter, "cube"], [x3]).Node("Mul", [x3, "c044"], [c]).Node("Add", [inter, c], [inner]).Node("Mul", [inner, "s2pi"], [sc])
             .Node("Tanh", [sc], [th]).Node("Add", [th, "f_one"], [one]).Node("Mul", [inter, one], [xm]).Node("Mul", [xm, "half"], [act]);
            var ffo = Linear(act, D, F, false);
            var res2 = T("res"); m.Node("Add", [ffo, a], [res2]);
            h = Norm(res2);
        }
        m.Node("Identity", [h], ["last_hidden_state"]);
        m.Output("last_hidden_state", "B", "T", D);
        if (mutate == "stray-weight") m.Init("unused_weight", [4, 4], seed: 99);
        return m.Build();
    }

    private static string Write(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"whet-enc-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void ImportsAnotherExportStyleAndMatchesOnnxRuntime()
    {
        var bytes = Graph();
        var path = Write(bytes);
        var cache = Path.Combine(Path.GetTempPath(), "whet-enc-cache-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var ckpt = OnnxEncoder.Import(path);
            Assert.Equal(Layers, ckpt.Layers);
            Assert.Equal(H, (int)ckpt.Config["num_attention_heads"]!);
            Assert.Equal(F, (int)ckpt.Config["intermediate_size"]!);
            Assert.Equal("gelu_new", (string)ckpt.Config["hidden_act"]!);
            Assert.False(ckpt.HasPooler);
            Assert.Equal(5 + Layers * 16, ckpt.Tensors.Count);
            Assert.DoesNotContain("ᵀ", ckpt.Sources["encoder.layer.0.attention.self.query.weight"]);   // stored [out, in] behind a Transpose
            Assert.EndsWith("ᵀ", ckpt.Sources["encoder.layer.0.intermediate.dense.weight"]);            // stored [in, out]

            var (folder, _) = OnnxEncoder.ToHfFolder(path, cache);
            var (model, report) = HfModel.Load(folder, numLabels: 2);
            Assert.Equal(Whetstone.Models.Transformers.TextPooling.Mean, model.Pooling);   // no pooler: a sentence-embedding checkpoint
            int b = 2, t = 5;
            int[] ids = [1, 5, 9, 3, 2, 1, 7, 2, 0, 0];
            float[] mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
            int[] types = [0, 0, 1, 1, 1, 0, 0, 0, 0, 0];
            Tensor ours;
            using (Whetstone.Tensors.Autograd.Graph.NoGrad()) ours = model.Encode(ids, b, t, Tensor.From(mask, b, t), types);

            using var session = new InferenceSession(bytes);
            long[] shape = [b, t];
            using var i1 = OrtValue.CreateTensorValueFromMemory(ids.Select(x => (long)x).ToArray(), shape);
            using var i2 = OrtValue.CreateTensorValueFromMemory(mask.Select(x => (long)x).ToArray(), shape);
            using var i3 = OrtValue.CreateTensorValueFromMemory(types.Select(x => (long)x).ToArray(), shape);
            using var run = new RunOptions();
            using var results = session.Run(run, ["input_ids", "attention_mask", "token_type_ids"], [i1, i2, i3], ["last_hidden_state"]);
            var theirs = results[0].GetTensorDataAsSpan<float>().ToArray();
            double worst = 0;
            for (int i = 0; i < b * t; i++)
                if (mask[i] == 1)
                    for (int d = 0; d < D; d++) worst = Math.Max(worst, Math.Abs(ours.Span[i * D + d] - theirs[i * D + d]));
            Assert.True(worst < 1e-5, $"max abs difference {worst:E3}");
        }
        finally
        {
            File.Delete(path);
            if (Directory.Exists(cache)) Directory.Delete(cache, true);
        }
    }

    [Theory]
    [InlineData("roberta-positions", "position ids computed from the input's values")]
    [InlineData("no-softmax", "does not read a softmax")]
    [InlineData("bad-scale", "BERT scales by 1/√4")]
    [InlineData("stray-weight", "'unused_weight' [4, 4]")]
    public void RefusesWhatItCannotRead(string mutate, string expected)
    {
        var path = Write(Graph(mutate));
        try
        {
            var e = Assert.Throws<OnnxImportException>(() => OnnxEncoder.Import(path));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            if (mutate != "stray-weight") Assert.Contains("(at node '", e.Message, StringComparison.Ordinal);
        }
        finally { File.Delete(path); }
    }
}
