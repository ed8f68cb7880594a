using Whetstone.Tensors;

namespace Whetstone.Nn;

/// <summary>
/// A module that draws random numbers while it runs (dropout masks). Its generator is part of a training run's state:
/// a checkpoint saves <see cref="Generator"/>'s state under the module's path and resume restores it, so the masks
/// after a resume are the ones the uninterrupted run would have drawn. Modules may share one generator.
/// </summary>
public interface IRandomModule
{
    Rng Generator { get; }
}
