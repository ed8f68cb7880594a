using System.Diagnostics;
using System.Text.Json.Nodes;
using Whetstone.Training;

namespace Whetstone.Cli.Tests;

/// <summary>
/// <c>whet train</c> as a user runs it, killed and resumed: a real process killed with SIGKILL in the middle of
/// training, and one stopped with Ctrl-C (SIGINT), each continued with <c>whet train --resume</c>, write the same
/// metrics.jsonl losses, bit for bit, as a run that was never interrupted.
/// </summary>
public sealed class ResumeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-resume-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // the whole backbone trains (so each step takes a while), with dropout, flips, accumulation and step checkpoints
    private const string Config = """
        # whet train train.yaml
        name: stripes
        seed: 7
        model:
          path: asset:ppocr_cls
          head_hidden: 16
          head_dropout: 0.3
        data:
          format: folder
          train: train
          validation: 0.2
          image_size: 48
          augment:
            flip: true
        train:
          epochs: 4
          batch_size: 4
          grad_accum: 2
          lr: 0.003
          checkpoint_every: 3
          log_every: 1
        """;

    private void Setup()
    {
        if (!Assets.IsCached("ppocr_cls")) Assert.Fail("Asset ppocr_cls is not cached: run scripts/fetch-assets ppocr_cls (scripts/test does).");
        CommandTests.Stripes(Path.Combine(_dir, "train"), 30);
        File.WriteAllText(Path.Combine(_dir, "train.yaml"), Config);
    }

    private Process Start(params string[] args) => WhetProcess.Start(_dir, 1, args);

    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(_dir, 1, args);

    private static string[] Metrics(string runDir) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            o.Remove("seconds");
            return o.ToJsonString();
        }).ToArray();

    /// <summary>Starts <c>whet train</c> as <paramref name="name"/> and interrupts it (<paramref name="interrupt"/>) once it logged step <paramref name="step"/>.</summary>
    private (Process Process, string Out, string RunDir) StartAndInterrupt(string name, int step, Action<Process> interrupt)
    {
        var p = Start("train", "train.yaml", "--set", $"name={name}");
        var output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var metrics = Path.Combine(_dir, "runs", name, "metrics.jsonl");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(p.HasExited, $"whet train ended before step {step}:\n{output}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), $"no step {step} after 3 minutes:\n{output}");
            if (File.Exists(metrics))
            {
                string[] lines;
                try { lines = File.ReadAllLines(metrics); } catch (IOException) { continue; }
                if (lines.Any(l => l.StartsWith($"{{\"step\":{step},", StringComparison.Ordinal))) break;
            }
            Thread.Sleep(5);
        }
        interrupt(p);
        p.WaitForExit();
        lock (output) return (p, output.ToString(), Path.Combine(_dir, "runs", name));
    }

    [Fact]
    public void Killed_with_sigkill_mid_training_and_resumed_it_logs_the_same_losses_as_an_uninterrupted_run()
    {
        Setup();
        var reference = Whet("train", "train.yaml", "--set", "name=reference");
        Assert.True(reference.Code == 0, reference.Out + reference.Err);
        var expected = Metrics(Path.Combine(_dir, "runs", "reference"));
        Assert.True(expected.Count(l => l.StartsWith("{\"step\"", StringComparison.Ordinal)) >= 20, string.Join("\n", expected));

        var (killed, _, runDir) = StartAndInterrupt("killed", 11, p => p.Kill(entireProcessTree: true));
        Assert.NotEqual(0, killed.ExitCode);
        Assert.False(Directory.Exists(Path.Combine(runDir, "model")));       // it really was cut short
        var resumed = Whet("train", "--resume", runDir);
        Assert.True(resumed.Code == 0, resumed.Out + resumed.Err);
        Assert.Contains("resuming", resumed.Out, StringComparison.Ordinal);
        Assert.Equal(expected, Metrics(runDir));
    }

    [Fact]
    public void Ctrl_c_finishes_the_step_writes_a_checkpoint_prints_the_resume_command_and_resume_finishes_identically()
    {
        Setup();
        var reference = Whet("train", "train.yaml", "--set", "name=reference");
        Assert.True(reference.Code == 0, reference.Out + reference.Err);

        var (stopped, output, runDir) = StartAndInterrupt("stopped", 5, p => Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit());
        Assert.True(stopped.ExitCode == 130, $"exit {stopped.ExitCode}\n{output}");
        Assert.Contains($"whet train --resume {runDir}", output, StringComparison.Ordinal);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(runDir, "checkpoints"), "step-*.safetensors"));

        var resumed = Whet("train", "--resume", runDir);
        Assert.True(resumed.Code == 0, resumed.Out + resumed.Err);
        Assert.Equal(Metrics(Path.Combine(_dir, "runs", "reference")), Metrics(runDir));

        var again = Whet("train", "--resume", runDir);
        Assert.Equal(1, again.Code);
        Assert.Contains("has finished", again.Err, StringComparison.Ordinal);
    }
}
