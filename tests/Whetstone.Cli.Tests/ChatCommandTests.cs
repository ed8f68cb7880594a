using System.Diagnostics;
using System.Text.Json.Nodes;
using Whetstone.Training.Tests.Text;

namespace Whetstone.Cli.Tests;

/// <summary>A tiny support bot trained once with <c>whet train</c> (task: chat) for the tests of its commands.</summary>
public sealed class TrainedSupportBot : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("whet-chat-").FullName;
    public string Run => Path.Combine(Dir, "runs", "support");
    public (int Code, string Out, string Err) Train { get; }
    public (int Code, string Out, string Err) DryRun { get; }

    public TrainedSupportBot()
    {
        TinyDecoder.Write(Path.Combine(Dir, "base"));
        TinyDecoder.Chat(Path.Combine(Dir, "train.jsonl"), 32);
        TinyDecoder.Chat(Path.Combine(Dir, "test.jsonl"), 8);
        File.WriteAllText(Path.Combine(Dir, "support.yaml"), """
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
        DryRun = WhetProcess.Run(Dir, "train", "support.yaml", "--dry-run");
        Train = WhetProcess.Run(Dir, "train", "support.yaml");
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

/// <summary>
/// A chat run from the command line on a tiny decoder: whet train (task: chat), then whet generate, whet chat and
/// whet serve with the bundle, as a user would run them.
/// </summary>
public sealed class ChatCommandTests(TrainedSupportBot bot) : IClassFixture<TrainedSupportBot>
{
    private (int Code, string Out, string Err) Whet(params string[] args) => WhetProcess.Run(bot.Dir, args);

    [Fact]
    public void TrainThenGenerateAndChatWithTheBundle()
    {
        var dry = bot.DryRun;
        Assert.True(dry.Code == 0, dry.Err + dry.Out);
        Assert.Contains("memory estimate", dry.Out);
        var train = bot.Train;
        Assert.True(train.Code == 0, train.Err + train.Out);
        Assert.Contains("perplexity", train.Out);
        var run = bot.Run;

        var gen = Whet("generate", run, "When are you open?", "--chat", "--system", "Support bot.", "--json");
        Assert.True(gen.Code == 0, gen.Err);
        var reply = JsonNode.Parse(gen.Out)!;
        Assert.True("We are open 9 to 5." == reply["text"]!.GetValue<string>().Trim(), reply + "\n" + train.Out);
        Assert.Equal("stop", reply["finish_reason"]!.GetValue<string>());

        var stopped = Whet("generate", run, "When are you open?", "--chat", "--system", "Support bot.", "--stop", "open", "--json");
        Assert.Equal("We are", JsonNode.Parse(stopped.Out)!["text"]!.GetValue<string>().Trim());

        using var p = WhetProcess.StartWithInput(bot.Dir, "chat", run, "--system", "Support bot.");
        p.StandardInput.WriteLine("Can I get a refund?");
        p.StandardInput.WriteLine("/exit");
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("Yes, within 30 days.", output);

        var eval = Whet("evaluate", run, "--data", "test.jsonl", "--json");
        Assert.True(eval.Code == 0, eval.Err);
        var scores = JsonNode.Parse(eval.Out)!;
        Assert.True(scores["after"]!["loss"]!.GetValue<double>() < scores["before"]!["loss"]!.GetValue<double>() - 1, eval.Out);
        Assert.True(scores["after"]!["token_accuracy"]!.GetValue<double>() > 0.6, eval.Out);

        var bad = Whet("generate", run, "x", "--temperature", "-1");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--temperature must be ≥ 0", bad.Err);
    }
    [Fact]
    public void EvaluateWithBleuScoresGeneratedRepliesBeforeAndAfter()
    {
        var eval = Whet("evaluate", bot.Run, "--data", "test.jsonl", "--bleu", "--beams", "2", "--json");
        Assert.True(eval.Code == 0, eval.Err + eval.Out);
        var s = JsonNode.Parse(eval.Out)!;
        double after = s["after"]!["translation"]!["bleu"]!.GetValue<double>(), before = s["before"]!["translation"]!["bleu"]!.GetValue<double>();
        Assert.True(after > 90, $"the trained bot repeats the FAQ's answers: BLEU {after}\n{eval.Out}");
        Assert.True(before < 10, $"the untrained base cannot: BLEU {before}");
        Assert.Equal("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", s["after"]!["translation"]!["bleu_signature"]!.GetValue<string>());
        Assert.True(s["bleu_difference"]!["lower"]!.GetValue<double>() > 0, eval.Out);
        var text = Whet("evaluate", bot.Run, "--data", "test.jsonl", "--bleu", "--beams", "1", "--limit", "4");
        Assert.True(text.Code == 0, text.Err);
        Assert.Contains("generated (beam 1, 4 rows)", text.Out);
        Assert.Contains("BLEU after − before:", text.Out);
        var bad = Whet("evaluate", bot.Run, "--data", "test.jsonl", "--bleu", "--beams", "0");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--beams must be at least 1", bad.Err);
    }

}

/// <summary><c>whet serve</c> driven by a real HTTP client: models, health, completions (JSON and SSE), errors, concurrency, a cancelled stream.</summary>
public sealed class ServeCommandTests(TrainedSupportBot bot) : IClassFixture<TrainedSupportBot>
{
    private static StringContent Body(object json) => new(System.Text.Json.JsonSerializer.Serialize(json), System.Text.Encoding.UTF8, "application/json");

    private static object Ask(string question, bool stream = false, int maxTokens = 28, string model = "support") => new
    {
        model, stream, max_tokens = maxTokens, temperature = 0,
        messages = new object[] { new { role = "system", content = "Support bot." }, new { role = "user", content = question } },
    };

    [Fact]
    public async Task OpenAiCompatibleEndpointsAnswerAndRefuseAsOpenAiDoes()
    {
        Assert.True(bot.Train.Code == 0, bot.Train.Err);
        using var server = WhetProcess.StartWithInput(bot.Dir, "serve", bot.Run, "--port", "0", "--max-body-kb", "8", "--max-tokens", "32");
        string? line = null;
        var ready = Task.Run(() => { while ((line = server.StandardOutput.ReadLine()) is not null && !line.StartsWith("serving", StringComparison.Ordinal)) { } });
        var started = await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(60))) == ready;
        if (!started || line is null)
        {
            server.Kill(entireProcessTree: true);
            Assert.Fail("the server did not start: " + server.StandardError.ReadToEnd());
        }
        var url = line!.Split(' ').First(w => w.StartsWith("http://", StringComparison.Ordinal));
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
        try
        {
            Assert.Equal("ok", JsonNode.Parse(await http.GetStringAsync("/health"))!["status"]!.GetValue<string>());
            var models = JsonNode.Parse(await http.GetStringAsync("/v1/models"))!;
            Assert.Equal("support", models["data"]![0]!["id"]!.GetValue<string>());

            var answer = await http.PostAsync("/v1/chat/completions", Body(Ask("When are you open?")));
            Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
            var completion = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
            Assert.Equal("We are open 9 to 5.", completion["choices"]![0]!["message"]!["content"]!.GetValue<string>().Trim());
            Assert.Equal("stop", completion["choices"]![0]!["finish_reason"]!.GetValue<string>());
            Assert.True(completion["usage"]!["completion_tokens"]!.GetValue<int>() > 5);

            // streaming: role first, content deltas, a finish reason, then [DONE]
            var streamed = await http.PostAsync("/v1/chat/completions", Body(Ask("Can I get a refund?", stream: true)));
            Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType!.MediaType);
            var events = (await streamed.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("data: [DONE]", events[^1]);
            var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToArray();
            Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
            var content = string.Concat(chunks.Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""));
            Assert.Equal("Yes, within 30 days.", content.Trim());
            Assert.Equal("stop", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());

            async Task<(int Status, string Type)> Fails(HttpContent body)
            {
                var r = await http.PostAsync("/v1/chat/completions", body);
                var e = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!;
                Assert.False(string.IsNullOrEmpty(e["message"]!.GetValue<string>()));
                return ((int)r.StatusCode, e["type"]!.GetValue<string>());
            }
            Assert.Equal(400, (await Fails(new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"))).Status);
            Assert.Equal(404, (await Fails(Body(Ask("hi", model: "gpt-4")))).Status);
            Assert.Equal(400, (await Fails(Body(Ask("hi", maxTokens: 10_000)))).Status);
            Assert.Equal(400, (await Fails(Body(Ask(new string('x', 300))))).Status);   // 300 + 16 tokens > the 256-token context
            Assert.Equal(413, (await Fails(Body(Ask(new string('y', 9000))))).Status);

            // two at once: the second waits for the first, both answer
            var both = await Task.WhenAll(
                http.PostAsync("/v1/chat/completions", Body(Ask("Where is my order?"))),
                http.PostAsync("/v1/chat/completions", Body(Ask("How do I reset my password?"))));
            Assert.All(both, r => Assert.True(r.IsSuccessStatusCode));
            Assert.Equal("Check the tracking page.", JsonNode.Parse(await both[0].Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"]!.GetValue<string>().Trim());

            // a stream the client abandons after the first event: the server stops it and keeps serving
            using (var cts = new CancellationTokenSource())
            {
                var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Body(Ask("When are you open?", stream: true, maxTokens: 32)) };
                using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
                using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(cts.Token));
                Assert.StartsWith("data: ", await reader.ReadLineAsync(cts.Token));
                cts.Cancel();
            }
            var after = await http.PostAsync("/v1/chat/completions", Body(Ask("When are you open?")));
            Assert.True(after.IsSuccessStatusCode);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }
}
