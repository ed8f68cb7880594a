using System.Numerics.Tensors;
using Whetstone.Tensors.Autograd;
using Whetstone.Tensors.Kernels;

namespace Whetstone.Tensors;

// Elementwise arithmetic with NumPy broadcasting, and the activations.
public sealed partial class Tensor
{
    public static Tensor operator +(Tensor a, Tensor b) => Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    public static Tensor operator +(Tensor a, float s) => AddScalar(a, s);
    public static Tensor operator -(Tensor a, float s) => AddScalar(a, -s);
    public static Tensor operator *(Tensor a, float s) => MulScalar(a, s);
    public static Tensor operator *(float s, Tensor a) => MulScalar(a, s);
    public static Tensor operator /(Tensor a, float s) => MulScalar(a, 1 / s);
    public static Tensor operator -(Tensor a) => MulScalar(a, -1);

    public static Tensor Add(Tensor a, Tensor b)
    {
        var y = BinaryForward<AddOp>(a, b);
        if (Graph.Needs(a, b))
            Graph.Record(y, "add", g => { AccumulateGrad(a, g); AccumulateGrad(b, g); }, a, b);
        return y;
    }

    public static Tensor Sub(Tensor a, Tensor b)
    {
        var y = BinaryForward<SubOp>(a, b);
        if (Graph.Needs(a, b))
            Graph.Record(y, "sub", g =>
            {
                AccumulateGrad(a, g);
                if (b.RequiresGrad) { using (Graph.NoGrad()) AccumulateGrad(b, MulScalar(g, -1)); }
            }, a, b);
        return y;
    }

    public static Tensor Mul(Tensor a, Tensor b)
    {
        var y = BinaryForward<MulOp>(a, b);
        if (Graph.Needs(a, b))
            Graph.Record(y, "mul", g =>
            {
                using var _ = Graph.NoGrad();
                if (a.RequiresGrad) AccumulateGrad(a, BinaryForward<MulOp>(g, b));
                if (b.RequiresGrad) AccumulateGrad(b, BinaryForward<MulOp>(g, a));
            }, a, b);
        return y;
    }

    public static Tensor Div(Tensor a, Tensor b)
    {
        var y = BinaryForward<DivOp>(a, b);
        if (Graph.Needs(a, b))
            Graph.Record(y, "div", g =>
            {
                using var _ = Graph.NoGrad();
                if (a.RequiresGrad) AccumulateGrad(a, BinaryForward<DivOp>(g, b));
                if (b.RequiresGrad) AccumulateGrad(b, BinaryForward<MulOp>(BinaryForward<DivOp>(g, b), y) * -1f); // -g·a/b² = -(g/b)·y
            }, a, b);
        return y;
    }

    public static Tensor AddScalar(Tensor a, float s)
    {
        var y = Empty(a.Dims);
        TensorPrimitives.Add(a.Contiguous().Span, s, y.Span);
        if (Graph.Needs(a)) Graph.Record(y, "add_scalar", g => AccumulateGrad(a, g), a);
        return y;
    }

    public static Tensor MulScalar(Tensor a, float s)
    {
        var y = Empty(a.Dims);
        TensorPrimitives.Multiply(a.Contiguous().Span, s, y.Span);
        if (Graph.Needs(a)) Graph.Record(y, "mul_scalar", g => { using (Graph.NoGrad()) AccumulateGrad(a, MulScalar(g, s)); }, a);
        return y;
    }

    public Tensor Exp()
    {
        var x = this;
        var y = Empty(Dims);
        TensorPrimitives.Exp(x.Contiguous().Span, y.Span);
        if (Graph.Needs(x)) Graph.Record(y, "exp", g => { using (Graph.NoGrad()) AccumulateGrad(x, BinaryForward<MulOp>(g, y)); }, x);
        return y;
    }

    public Tensor Log()
    {
        var x = this;
        var y = Empty(Dims);
        TensorPrimitives.Log(x.Contiguous().Span, y.Span);
        if (Graph.Needs(x)) Graph.Record(y, "log", g => { using (Graph.NoGrad()) AccumulateGrad(x, BinaryForward<DivOp>(g, x)); }, x);
        return y;
    }

    public Tensor Sqrt()
    {
        var x = this;
        var y = Empty(Dims);
        TensorPrimitives.Sqrt(x.Contiguous().Span, y.Span);
        if (Graph.Needs(x)) Graph.Record(y, "sqrt", g => { using (Graph.NoGrad()) AccumulateGrad(x, BinaryForward<DivOp>(g, y) * 0.5f); }, x);
        return y;
    }

    public Tensor Square() => Mul(this, this);

    /// <summary>x^p for a constant exponent.</summary>
    public Tensor Pow(float p)
    {
        var x = this;
        var y = Empty(Dims);
        TensorPrimitives.Pow(x.Contiguous().Span, p, y.Span);
        if (Graph.Needs(x))
            Graph.Record(y, "pow", g =>
            {
                using var _ = Graph.NoGrad();
                var d = Empty(x.Dims);
                TensorPrimitives.Pow(x.Contiguous().Span, p - 1, d.Span);
                TensorPrimitives.Multiply(d.Span, p, d.Span);
                AccumulateGrad(x, BinaryForward<MulOp>(g, d));
            }, x);
        return y;
    }

    public Tensor Relu() => Unary<Relu>("relu");
    public Tensor Relu6() => Unary<Relu6>("relu6");
    public Tensor Silu() => Unary<Silu>("silu");
    public Tensor HardSwish() => Unary<HardSwish>("hardswish");
    public Tensor HardSigmoid() => Unary<HardSigmoid>("hardsigmoid");
    public Tensor Tanh() => Unary<Kernels.Tanh>("tanh");
    public Tensor Sigmoid() => Unary<Kernels.Sigmoid>("sigmoid");

    /// <summary>GELU; <paramref name="tanhApproximation"/> selects GPT-2's "gelu_new" form instead of the exact erf.</summary>
    public Tensor Gelu(bool tanhApproximation = false) => tanhApproximation ? Unary<GeluTanh>("gelu_tanh") : Unary<GeluErf>("gelu");

    private Tensor Unary<TOp>(string name) where TOp : IUnaryKernel
    {
        var x = Contiguous();
        var y = Empty(Dims);
        Elementwise.Forward<TOp, float>(x.Span, y.Span);
        if (Graph.Needs(x))
            Graph.Record(y, name, g =>
            {
                var gx = x.GradBuffer(out bool fresh);
                Elementwise.Backward<TOp, float>(x.Span, g.Span, gx.Span, accumulate: !fresh);
            }, x);
        return y;
    }

    // ---------------- helpers shared by all ops ----------------

    /// <summary>Forward of a broadcasting binary op (no history).</summary>
    internal static unsafe Tensor BinaryForward<TOp>(Tensor a, Tensor b) where TOp : IBinaryOp
    {
        if (Shapes.Equal(a.Dims, b.Dims) && a.IsContiguous && b.IsContiguous)
        {
            var r = Empty(a.Dims);
            TOp.Apply(a.Span, b.Span, r.Span);
            return r;
        }
        var shape = Shapes.Broadcast(a.Dims, b.Dims);
        var y = Empty(shape);
        if (y.Size == 0) return y;
        var sa = Shapes.BroadcastStrides(a.Dims, a.StrideArray, shape);
        var sb = Shapes.BroadcastStrides(b.Dims, b.StrideArray, shape);
        fixed (float* pa = a.RawArray) fixed (float* pb = b.RawArray) fixed (float* py = y.RawArray)
            Strided.Binary<TOp>(pa + a.Offset, sa, pb + b.Offset, sb, py + y.Offset, shape);
        return y;
    }

    /// <summary>
    /// Adds gradient <paramref name="g"/> (of the broadcast output shape) into <paramref name="x"/>'s gradient,
    /// summing over the axes that <paramref name="x"/> was broadcast along. Skipped when x needs no gradient.
    /// </summary>
    internal static void AccumulateGrad(Tensor x, Tensor g)
    {
        if (!x.RequiresGrad) return;
        if (!Shapes.Equal(x.Dims, g.Dims))
        {
            using (Graph.NoGrad()) g = SumToShape(g, x.Dims);
        }
        var gx = x.GradBuffer(out bool fresh);
        if (fresh) Strided.Copy(g, gx.Span);
        else if (g.IsContiguous) Elementwise.AddInto(g.Span, gx.Span);
        else { using (Graph.NoGrad()) Elementwise.AddInto(g.Contiguous().Span, gx.Span); }
    }

    /// <summary>Sums <paramref name="g"/> down to <paramref name="shape"/> (the inverse of broadcasting).</summary>
    internal static Tensor SumToShape(Tensor g, int[] shape)
    {
        int lead = g.Rank - shape.Length;
        var axes = new List<int>();
        for (int i = 0; i < g.Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && g.Dims[i] != 1)) axes.Add(i);
        var s = axes.Count == 0 ? g : g.Sum(axes.ToArray(), keepDim: true);
        return s.Reshape(shape);
    }
}
