namespace Whetstone.Tensors.Autograd;

/// <summary>How a tensor was made: its inputs and the closure that turns its gradient into theirs.</summary>
internal sealed class Node(Tensor[] inputs, Action<Tensor> backward, string op)
{
    public readonly Tensor[] Inputs = inputs;
    public readonly Action<Tensor> Backward = backward;
    public readonly string Op = op;
}

/// <summary>Reverse-mode differentiation over the recorded graph.</summary>
public static class Graph
{
    [ThreadStatic] private static int _noGradDepth;

    /// <summary>Whether new operations record history on this thread.</summary>
    public static bool IsEnabled => _noGradDepth == 0;

    /// <summary>Inside this scope no history is recorded (inference, optimizer updates, feature caching).</summary>
    public static NoGradScope NoGrad() { _noGradDepth++; return default; }

    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => _noGradDepth--;
    }

    /// <summary>Whether an op on these inputs must record a node.</summary>
    internal static bool Needs(Tensor a) => _noGradDepth == 0 && a.RequiresGrad;
    internal static bool Needs(Tensor a, Tensor b) => _noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad);
    internal static bool Needs(Tensor a, Tensor b, Tensor? c) => _noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad || (c?.RequiresGrad ?? false));

    /// <summary>Attaches history to <paramref name="output"/>.</summary>
    internal static Tensor Record(Tensor output, string op, Action<Tensor> backward, params Tensor[] inputs)
    {
        if (OpProfile.Enabled) OpProfile.Forward(op);
        output.Node = new Node(inputs, backward, op);
        output.RequiresGrad = true;
        return output;
    }

    internal static void Backward(Tensor root, Tensor? seed)
    {
        if (!root.RequiresGrad) throw new InvalidOperationException("Backward() on a tensor that does not require a gradient: no parameter it depends on is trainable.");
        if (seed is null)
        {
            if (root.Size != 1) throw new InvalidOperationException($"Backward() without a gradient needs a scalar; this tensor has shape {Shapes.Format(root.Shape)}.");
            seed = Tensor.Full(1f, root.Shape.ToArray());
        }
        else if (!Shapes.Equal(seed.Shape, root.Shape))
            throw new ArgumentException($"Gradient shape {Shapes.Format(seed.Shape)} does not match tensor shape {Shapes.Format(root.Shape)}.");

        using var noGrad = NoGrad();    // backward closures build no history of their own
        var order = TopologicalOrder(root);
        var g = root.GradBuffer(out bool fresh);
        if (fresh) seed.Span.CopyTo(g.Span); else Kernels.Elementwise.AddInto(seed.Span, g.Span);

        // Reverse topological order: every consumer of a tensor runs before the tensor's own node.
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            var node = t.Node!;
            var grad = t.Grad;
            if (grad is not null)
            {
                long start = OpProfile.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
                node.Backward(grad);
                if (OpProfile.Enabled) OpProfile.Backward(node.Op, start);
            }
            if (!ReferenceEquals(t, root)) t.DropGrad();
            t.Node = null;                 // the graph is consumed (as PyTorch without retain_graph)
        }
    }

    /// <summary>Tensors with a node reachable from <paramref name="root"/>, inputs before outputs (iterative DFS).</summary>
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        if (root.Node is null) return order;
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.Node!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.Node is not null && child.RequiresGrad && visited.Add(child)) stack.Push((child, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
