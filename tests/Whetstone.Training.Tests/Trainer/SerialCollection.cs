namespace Whetstone.Training.Tests.Trainer;

/// <summary>
/// Tests that compare runs bit for bit or change <c>train.threads</c>: the kernel thread count is process-wide
/// (<c>Par.Threads</c>), so these run alone, after the parallel ones, where no other test can change it mid-run.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial: process-wide thread count";
}
