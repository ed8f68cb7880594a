using System.Diagnostics;
using System.Text.Json.Nodes;
using Whetstone.Training.Tests.Text;

namespace Whetstone.Cli.Tests;

/// <summary>
/// A chat run from the command line on a tiny decoder: whet train (task: chat), then whet generate and whet chat with
/// the bundle, as a user would type them.
/// </summary>
public sealed class ChatCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whet-chat-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(_dir, args);

    [Fact]
    public void TrainThenGenerateAndChatWithTheBundle()
    {
        TinyDecoder.Write(Path.Combine(_dir, "base"));
        TinyDecoder.Chat(Path.Combine(_dir, "train.jsonl"), 32);
        TinyDecoder.Chat(Path.Combine(_dir, "test.jsonl"), 8);
        File.WriteAllText(Path.Combine(_dir, "support.yaml"), """
            # whet train support.yaml
            name: support
            task: chat
            model:
              path: base
            data:
              train: train.jsonl
              test: test.jsonl
              validation: 0.25
            lm:
              samples: 1
              max_new_tokens: 16
            train:
              epochs: 24
              batch_size: 4
              lr: 0.006
              warmup: 0
            """);
        var dry = Whet("train", "support.yaml", "--dry-run");
        Assert.True(dry.Code == 0, dry.Err + dry.Out);
        Assert.Contains("memory estimate", dry.Out);
        var train = Whet("train", "support.yaml");
        Assert.True(train.Code == 0, train.Err + train.Out);
        Assert.Contains("perplexity", train.Out);
        var run = Path.Combine(_dir, "runs", "support");

        var gen = Whet("generate", run, "When are you open?", "--chat", "--system", "Support bot.", "--json");
        Assert.True(gen.Code == 0, gen.Err);
        var reply = JsonNode.Parse(gen.Out)!;
        Assert.True("We are open 9 to 5." == reply["text"]!.GetValue<string>().Trim(), reply + "\n" + train.Out);
        Assert.Equal("stop", reply["finish_reason"]!.GetValue<string>());

        var stopped = Whet("generate", run, "When are you open?", "--chat", "--system", "Support bot.", "--stop", "open", "--json");
        Assert.Equal("We are", JsonNode.Parse(stopped.Out)!["text"]!.GetValue<string>().Trim());

        using var p = WhetProcess.StartWithInput(_dir, "chat", run, "--system", "Support bot.");
        p.StandardInput.WriteLine("Can I get a refund?");
        p.StandardInput.WriteLine("/exit");
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("Yes, within 30 days.", output);

        var bad = Whet("generate", run, "x", "--temperature", "-1");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--temperature must be ≥ 0", bad.Err);
    }
}
