using System.Text;
using Whetstone.Tensors;
using Whetstone.Tensors.Autograd;

namespace Whetstone.Nn;

/// <summary>
/// A node in a model tree: named parameters, named buffers and named child modules, all kept in registration order.
/// <para>
/// <b>Parameters are plain tensors</b>: a parameter is a persistent (unpooled) leaf <see cref="Tensor"/>, trainable when
/// <see cref="Tensor.RequiresGrad"/> is set. There is no Parameter wrapper type; freezing is clearing RequiresGrad.
/// Registration is explicit (no reflection): constructors call <see cref="RegisterParameter"/>,
/// <see cref="RegisterBuffer"/> and <see cref="RegisterModule{T}"/>.
/// </para>
/// <para>
/// <b>Names.</b> <see cref="NamedParameters"/> yields dotted names relative to the module it is called on
/// (<c>encoder.layer.0.attention.self.query.weight</c>); these are the state-dict / checkpoint keys. Every registered
/// tensor's <see cref="Tensor.Name"/> is kept equal to its dotted name relative to the current root of the tree
/// (re-set whenever a subtree is registered under a new parent), so tensors name themselves in errors and reports.
/// A tensor registered under two names (tied weights) is yielded once by <see cref="NamedParameters"/> (first name wins)
/// but appears under every name in <see cref="StateDict"/>.
/// </para>
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor, bool Persistent)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];

    /// <summary>The module this one is registered in (the latest registration), or null for a root.</summary>
    public Module? Parent { get; private set; }

    /// <summary>This module's name inside <see cref="Parent"/> ("" for a root).</summary>
    public string LocalName { get; private set; } = "";

    /// <summary>Whether the module is in training mode (dropout active, batch statistics used). New modules train.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Dotted path from the root of the tree to this module ("" for the root).</summary>
    public string FullName
    {
        get
        {
            if (Parent is null) return "";
            var p = Parent.FullName;
            return p.Length == 0 ? LocalName : p + "." + LocalName;
        }
    }

    // ---------------- registration ----------------

    /// <summary>
    /// Registers a trainable parameter. The tensor must be a leaf in persistent memory
    /// (<see cref="Tensor.Persistent"/> or made inside <c>TensorScope.Persistent()</c>); its RequiresGrad is set.
    /// A null tensor (e.g. no bias) registers nothing and returns null.
    /// </summary>
    public Tensor RegisterParameter(string name, Tensor tensor, bool requiresGrad = true)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckName(name);
        if (!tensor.IsLeaf) throw new ArgumentException($"Parameter '{name}' must be a leaf tensor (it was produced by an operation); Detach() and copy it first.");
        if (tensor.Storage.Pooled) throw new ArgumentException($"Parameter '{name}' lives in a pooled TensorScope and would be released with it; create it with Tensor.Persistent or inside TensorScope.Persistent().");
        if (!tensor.IsContiguous) throw new ArgumentException($"Parameter '{name}' must be contiguous.");
        tensor.RequiresGrad = requiresGrad;
        _parameters.Add((name, tensor));
        tensor.Name = Join(FullName, name);
        return tensor;
    }

    /// <summary>
    /// Registers non-trainable state (e.g. BatchNorm running statistics). Persistent buffers are saved in the
    /// state dict; non-persistent ones are not. The tensor must live in persistent memory.
    /// </summary>
    public Tensor RegisterBuffer(string name, Tensor tensor, bool persistent = true)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckName(name);
        if (tensor.Storage.Pooled) throw new ArgumentException($"Buffer '{name}' lives in a pooled TensorScope; create it with Tensor.Persistent.");
        tensor.RequiresGrad = false;
        _buffers.Add((name, tensor, persistent));
        tensor.Name = Join(FullName, name);
        return tensor;
    }

    /// <summary>Registers a child module under <paramref name="name"/> and renames its tensors under this module's path.</summary>
    public T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckName(name);
        if (ReferenceEquals(module, this)) throw new ArgumentException("A module cannot be its own child.");
        _children.Add((name, module));
        Adopt(name, module);
        return module;
    }

    /// <summary>
    /// Replaces the child at dotted <paramref name="path"/> (e.g. <c>encoder.layer.0.attention.self.query</c>) keeping
    /// its position in registration order. Returns the module that was there.
    /// </summary>
    public Module ReplaceModule(string path, Module replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        int dot = path.LastIndexOf('.');
        var owner = dot < 0 ? this : GetModule(path[..dot]);
        var local = dot < 0 ? path : path[(dot + 1)..];
        for (int i = 0; i < owner._children.Count; i++)
        {
            if (owner._children[i].Name != local) continue;
            var old = owner._children[i].Module;
            owner._children[i] = (local, replacement);
            if (ReferenceEquals(old.Parent, owner)) { old.Parent = null; old.LocalName = ""; }
            owner.Adopt(local, replacement);
            return old;
        }
        throw new KeyNotFoundException($"No child module '{local}' in '{owner.DisplayPath}'.");
    }

    /// <summary>Removes the direct child <paramref name="name"/> from this module (its tensors leave the tree). Returns it.</summary>
    protected Module RemoveModule(string name)
    {
        for (int i = 0; i < _children.Count; i++)
        {
            if (_children[i].Name != name) continue;
            var old = _children[i].Module;
            _children.RemoveAt(i);
            if (ReferenceEquals(old.Parent, this)) { old.Parent = null; old.LocalName = ""; old.RenameTensors(); }
            return old;
        }
        throw new KeyNotFoundException($"No child module '{name}' in '{DisplayPath}'.");
    }

    private void Adopt(string name, Module module)
    {
        module.Parent = this;
        module.LocalName = name;
        module.RenameTensors();
    }

    /// <summary>Re-sets <see cref="Tensor.Name"/> of every tensor in this subtree to its root-relative dotted name.</summary>
    private void RenameTensors()
    {
        var prefix = FullName;
        foreach (var (n, t) in NamedTensorsAll(includeBuffers: true)) t.Name = Join(prefix, n);
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Invalid name '{name}': names must be non-empty and contain no '.'.");
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    private string DisplayPath => FullName.Length == 0 ? "<root>" : FullName;

    // ---------------- lookup ----------------

    /// <summary>The descendant at a dotted path ("" is this module).</summary>
    public Module GetModule(string path)
    {
        if (TryGetModule(path, out var m)) return m;
        throw new KeyNotFoundException($"No module '{path}' under '{DisplayPath}'. Children here: {string.Join(", ", _children.Select(c => c.Name))}.");
    }

    public bool TryGetModule(string path, out Module module)
    {
        module = this;
        if (path.Length == 0) return true;
        foreach (var part in path.Split('.'))
        {
            Module? next = null;
            foreach (var (n, c) in module._children) if (n == part) { next = c; break; }
            if (next is null) return false;
            module = next;
        }
        return true;
    }

    /// <summary>The parameter or buffer at a dotted path.</summary>
    public Tensor GetTensor(string path)
    {
        int dot = path.LastIndexOf('.');
        var owner = dot < 0 ? this : GetModule(path[..dot]);
        var local = dot < 0 ? path : path[(dot + 1)..];
        foreach (var (n, t) in owner._parameters) if (n == local) return t;
        foreach (var (n, t, _) in owner._buffers) if (n == local) return t;
        throw new KeyNotFoundException($"No parameter or buffer '{path}' under '{DisplayPath}'.");
    }

    // ---------------- enumeration ----------------

    /// <summary>Direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children.ToArray();

    /// <summary>This module ("" name) and every descendant, depth first in registration order; shared modules once.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        var result = new List<(string, Module)>();
        Walk(this, "", seen, result);
        return result;

        static void Walk(Module m, string prefix, HashSet<Module> seen, List<(string, Module)> result)
        {
            if (!seen.Add(m)) return;
            result.Add((prefix, m));
            foreach (var (n, c) in m._children) Walk(c, Join(prefix, n), seen, result);
        }
    }

    /// <summary>Parameters with dotted names relative to this module, in registration order; each tensor once.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (n, t) in NamedTensorsAll(includeBuffers: false))
            if (seen.Add(t)) yield return (n, t);
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>Parameters that currently require a gradient.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedTrainableParameters() => NamedParameters().Where(p => p.Tensor.RequiresGrad);

    /// <summary>Buffers (persistent and not) with dotted names; each tensor once.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, m) in NamedModules())
            foreach (var (n, t, _) in m._buffers)
                if (seen.Add(t)) yield return (Join(prefix, n), t);
    }

    /// <summary>Every (name, tensor) pair including aliases: parameters (and buffers) of every module.</summary>
    private List<(string Name, Tensor Tensor)> NamedTensorsAll(bool includeBuffers, bool persistentBuffersOnly = false)
    {
        var result = new List<(string, Tensor)>();
        foreach (var (prefix, m) in NamedModules())
        {
            foreach (var (n, t) in m._parameters) result.Add((Join(prefix, n), t));
            if (includeBuffers)
                foreach (var (n, t, persistent) in m._buffers)
                    if (persistent || !persistentBuffersOnly) result.Add((Join(prefix, n), t));
        }
        return result;
    }

    // ---------------- modes and gradients ----------------

    /// <summary>Sets training mode on this module and every descendant. Returns this.</summary>
    public Module Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules())
        {
            m.IsTraining = mode;
            m.OnModeChanged(mode);
        }
        return this;
    }

    /// <summary>Evaluation mode on the whole subtree (same as <c>Train(false)</c>).</summary>
    public Module Eval() => Train(false);

    /// <summary>Called on each module when <see cref="Train"/>/<see cref="Eval"/> changes its mode.</summary>
    protected virtual void OnModeChanged(bool training) { }

    /// <summary>Clears every parameter's gradient (the buffers are kept and overwritten by the next backward).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>Number of parameter elements (each shared tensor counted once).</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Size);

    /// <summary>Number of parameter elements that require a gradient.</summary>
    public long TrainableParameterCount() => Parameters().Where(p => p.RequiresGrad).Sum(p => (long)p.Size);

    // ---------------- state dict ----------------

    /// <summary>
    /// Every parameter and persistent buffer by dotted name, in registration order. The values are the live tensors
    /// (not copies), as in PyTorch; copy them if the model will keep training while they are written out.
    /// </summary>
    public OrderedDictionary<string, Tensor> StateDict()
    {
        var d = new OrderedDictionary<string, Tensor>();
        foreach (var (n, t) in NamedTensorsAll(includeBuffers: true, persistentBuffersOnly: true)) d[n] = t;
        return d;
    }

    /// <summary>
    /// Copies values from <paramref name="state"/> into this module's parameters and persistent buffers.
    /// Every key is checked before anything is copied: a shape mismatch always fails; with <paramref name="strict"/>,
    /// missing keys (model tensors not in <paramref name="state"/>) and unexpected keys (entries the model does not have)
    /// fail too. The error (<see cref="StateDictException"/>) lists all three kinds. A tensor registered under several
    /// names (tied weights) is satisfied by any one of them. Nothing is copied when it throws.
    /// </summary>
    public StateDictLoadResult LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var all = NamedTensorsAll(includeBuffers: true, persistentBuffersOnly: true);
        var groups = new Dictionary<Tensor, List<string>>(ReferenceEqualityComparer.Instance);
        var order = new List<Tensor>();
        foreach (var (n, t) in all)
        {
            if (!groups.TryGetValue(t, out var names)) { groups[t] = names = []; order.Add(t); }
            names.Add(n);
        }
        var known = new HashSet<string>(all.Select(a => a.Name));
        var missing = new List<string>();
        var mismatched = new List<string>();
        var copies = new List<(Tensor Source, Tensor Target)>();
        foreach (var t in order)
        {
            Tensor? source = null;
            foreach (var n in groups[t])
            {
                if (!state.TryGetValue(n, out var s)) continue;
                if (!s.Shape.SequenceEqual(t.Shape)) mismatched.Add($"{n}: checkpoint {Format(s.Shape)} vs model {Format(t.Shape)}");
                else source ??= s;
            }
            if (source is not null) copies.Add((source, t));
            else if (!groups[t].Any(state.ContainsKey)) missing.AddRange(groups[t]);
        }
        var unexpected = state.Keys.Where(k => !known.Contains(k)).ToList();
        if (mismatched.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictException(missing, unexpected, mismatched);

        using (Graph.NoGrad())
            foreach (var (s, t) in copies)
            {
                if (ReferenceEquals(s, t)) continue;
                if (s.IsContiguous) s.Span.CopyTo(t.Span);
                else s.ToArray().AsSpan().CopyTo(t.Span);
            }
        return new StateDictLoadResult(missing, unexpected);
    }

    private static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    // ---------------- display ----------------

    /// <summary>Extra text shown after the type name in <see cref="ToString"/>, e.g. <c>in=768, out=768, bias=True</c>.</summary>
    protected virtual string ExtraRepr() => "";

    /// <summary>A PyTorch-style indented tree of the modules.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Print(sb, 0);
        return sb.ToString();
    }

    private void Print(StringBuilder sb, int indent)
    {
        sb.Append(GetType().Name).Append('(').Append(ExtraRepr());
        if (_children.Count == 0) { sb.Append(')'); return; }
        sb.Append('\n');
        foreach (var (n, c) in _children)
        {
            sb.Append(' ', indent + 2).Append('(').Append(n).Append("): ");
            c.Print(sb, indent + 2);
            sb.Append('\n');
        }
        sb.Append(' ', indent).Append(')');
    }
}

/// <summary>A module with a typed forward pass.</summary>
public abstract class Module<TIn, TOut> : Module
{
    public abstract TOut Forward(TIn input);
}

/// <summary>Keys that <see cref="Module.LoadStateDict"/> left unmatched (non-strict loads only).</summary>
public sealed record StateDictLoadResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);

/// <summary>A state dict did not fit the model; lists every missing, unexpected and shape-mismatched key.</summary>
public sealed class StateDictException : Exception
{
    public IReadOnlyList<string> MissingKeys { get; }
    public IReadOnlyList<string> UnexpectedKeys { get; }
    public IReadOnlyList<string> MismatchedKeys { get; }

    public StateDictException(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
        : base(BuildMessage(missing, unexpected, mismatched))
    {
        MissingKeys = missing;
        UnexpectedKeys = unexpected;
        MismatchedKeys = mismatched;
    }

    private static string BuildMessage(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    {
        var sb = new StringBuilder("Error loading state dict:");
        void Section(string title, IReadOnlyList<string> keys)
        {
            if (keys.Count == 0) return;
            sb.Append("\n  ").Append(keys.Count).Append(' ').Append(title).Append(':');
            foreach (var k in keys.Take(50)) sb.Append("\n    ").Append(k);
            if (keys.Count > 50) sb.Append("\n    … and ").Append(keys.Count - 50).Append(" more");
        }
        Section("missing key(s) (in the model, not in the checkpoint)", missing);
        Section("unexpected key(s) (in the checkpoint, not in the model)", unexpected);
        Section("shape mismatch(es)", mismatched);
        return sb.ToString();
    }
}
