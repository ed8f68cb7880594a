using Whetstone.Tensors;

namespace Whetstone.Nn.Layers;

/// <summary>Parameterless activation modules, for <see cref="Sequential"/> stacks.</summary>
public sealed class Relu : Module<Tensor, Tensor> { public override Tensor Forward(Tensor input) => input.Relu(); }

public sealed class Gelu(bool tanhApproximation = false) : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input) => input.Gelu(tanhApproximation);
    protected override string ExtraRepr() => tanhApproximation ? "approximate='tanh'" : "";
}

public sealed class Tanh : Module<Tensor, Tensor> { public override Tensor Forward(Tensor input) => input.Tanh(); }

public sealed class Sigmoid : Module<Tensor, Tensor> { public override Tensor Forward(Tensor input) => input.Sigmoid(); }

public sealed class Silu : Module<Tensor, Tensor> { public override Tensor Forward(Tensor input) => input.Silu(); }

public sealed class Identity : Module<Tensor, Tensor> { public override Tensor Forward(Tensor input) => input; }

/// <summary>Any Tensor → Tensor function as a module (no parameters).</summary>
public sealed class Lambda(Func<Tensor, Tensor> function, string name = "lambda") : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input) => function(input);
    protected override string ExtraRepr() => name;
}
