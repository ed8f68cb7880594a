using System.Collections;
using Whetstone.Tensors;

namespace Whetstone.Nn;

/// <summary>
/// An indexed list of child modules, registered as "0", "1", … (so names read <c>encoder.layer.3.output.dense.weight</c>).
/// Items are read back from the module registry, so <see cref="Module.ReplaceModule"/> (e.g. LoRA injection) is seen here.
/// </summary>
public class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
{
    private int _count;

    public ModuleList() { }

    public ModuleList(IEnumerable<T> modules)
    {
        foreach (var m in modules) Add(m);
    }

    public void Add(T module) => RegisterModule((_count++).ToString(System.Globalization.CultureInfo.InvariantCulture), module);

    public int Count => _count;

    public T this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index));
            var m = GetModule(index.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return m as T ?? throw new InvalidCastException($"Item {index} is a {m.GetType().Name}, not a {typeof(T).Name}.");
        }
    }

    public IEnumerator<T> GetEnumerator()
    {
        for (int i = 0; i < _count; i++) yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Children applied in order; each must be a <see cref="Module{Tensor, Tensor}"/>.</summary>
public sealed class Sequential : Module<Tensor, Tensor>
{
    public Sequential(params Module<Tensor, Tensor>[] modules)
    {
        // Items are registered directly on this module (names "0", "1", …), as in torch.nn.Sequential.
        foreach (var m in modules) Add(m);
    }

    public void Add(Module<Tensor, Tensor> module) => RegisterModule(Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);

    public int Count => NamedChildren().Count();

    public Module<Tensor, Tensor> this[int index] =>
        GetModule(index.ToString(System.Globalization.CultureInfo.InvariantCulture)) as Module<Tensor, Tensor>
        ?? throw new InvalidCastException($"Item {index} of Sequential does not map Tensor → Tensor.");

    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var (name, m) in NamedChildren())
            x = (m as Module<Tensor, Tensor> ?? throw new InvalidCastException($"Sequential item '{name}' does not map Tensor → Tensor.")).Forward(x);
        return x;
    }
}
