using System.Runtime.InteropServices;

namespace Whetstone.Training;

/// <summary>
/// A request to stop training cleanly: the trainer finishes the optimiser step in progress, writes a checkpoint and
/// returns (the CLI then prints the resume command). <see cref="ListenToSignals"/> wires it to Ctrl-C (SIGINT) and
/// SIGTERM: the first asks for a clean stop, a second one ends the process at once.
/// </summary>
public sealed class StopSignal : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private volatile bool _requested;
    private int _count;

    public bool IsRequested => _requested;

    /// <summary>Asks the trainer to stop after the current step.</summary>
    public void Request() => _requested = true;

    /// <summary>A stop signal that Ctrl-C / SIGTERM trigger; <paramref name="say"/> tells the user what happens.</summary>
    public static StopSignal ListenToSignals(TextWriter say)
    {
        var s = new StopSignal();
        void Handle(PosixSignalContext c)
        {
            c.Cancel = true;                                  // no default termination: we stop ourselves
            if (Interlocked.Increment(ref s._count) == 1)
            {
                s.Request();
                say.WriteLine($"\n{c.Signal}: finishing the current step and writing a checkpoint (again to stop at once) …");
            }
            else
            {
                say.WriteLine($"\n{c.Signal} again: stopping now; the last checkpoint written is kept.");
                Environment.Exit(130);
            }
        }
        s._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle));
        s._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle));
        return s;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}
