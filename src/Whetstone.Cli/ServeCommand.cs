using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Whetstone.Models.Tokenizers.ChatTemplates;
using Whetstone.Models.Transformers;

namespace Whetstone.Cli;

/// <summary>
/// <c>whet serve</c>: an OpenAI-compatible HTTP server for a chat bundle (or any decoder with a chat template) on
/// 127.0.0.1 by default. <c>POST /v1/chat/completions</c> (JSON, or <c>stream: true</c> as server-sent events with
/// <c>choices[].delta</c>, ending <c>data: [DONE]</c>), <c>GET /v1/models</c>, <c>GET /health</c>. One generation runs
/// at a time; further requests wait in a bounded queue (503 when it is full). Bad input gets a 4xx JSON error in
/// OpenAI's shape; a client that disconnects stops its generation.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(Option<int> threads)
    {
        var cmd = new Command("serve", "Serve a chat bundle over an OpenAI-compatible HTTP API (POST /v1/chat/completions, GET /v1/models, GET /health)");
        var model = new Argument<string>("model") { Description = "A run folder, a chat bundle, or a Hugging Face decoder folder with a chat template" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free one, printed at start)", DefaultValueFactory = _ => 8000 };
        var host = new Option<string>("--host") { Description = "Address to listen on (default 127.0.0.1: this machine only)", DefaultValueFactory = _ => "127.0.0.1" };
        var name = new Option<string?>("--name") { Description = "The model id clients send (default: the run's folder name)" };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait while one generates; more get 503", DefaultValueFactory = _ => 16 };
        var maxBody = new Option<int>("--max-body-kb") { Description = "Largest request body accepted (413 above it)", DefaultValueFactory = _ => 256 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Default and largest max_tokens per request", DefaultValueFactory = _ => 256 };
        foreach (var o in new Option[] { port, host, name, queue, maxBody, maxTokens }) cmd.Options.Add(o);
        cmd.Arguments.Add(model);
        cmd.SetAction(r => Commands.Guard(r, threads, () =>
        {
            var g = GenerateCommands.Open(r.GetValue(model)!, Console.Error);
            var id = r.GetValue(name) ?? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(g.Path).TrimEnd('/')) is { } parent && Path.GetFileName(g.Path) == "model" ? parent : g.Path.TrimEnd('/'));
            var server = new ChatServer(g, id, r.GetValue(queue), r.GetValue(maxTokens));
            server.Run(r.GetValue(host)!, r.GetValue(port), r.GetValue(maxBody) * 1024L);
            return 0;
        }));
        return cmd;
    }
}

/// <summary>The server behind <c>whet serve</c>: request parsing, the generation queue, JSON and SSE responses.</summary>
internal sealed class ChatServer(GenerateCommands.Generator g, string modelId, int queueLimit, int maxTokens)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _waiting;
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public void Run(string host, int port, long maxBody)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = maxBody;
            k.Listen(System.Net.IPAddress.Parse(host), port);
        });
        builder.Services.Configure<KestrelServerOptions>(o => o.AllowSynchronousIO = false);
        var app = builder.Build();
        app.MapGet("/health", () => Results.Json(new JsonObject { ["status"] = "ok", ["model"] = modelId }));
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = modelId, ["object"] = "model", ["created"] = _created, ["owned_by"] = "whetstone" }),
        }));
        app.MapPost("/v1/chat/completions", ChatCompletions);
        app.Start();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? $"http://{host}:{port}";
        Console.WriteLine($"serving {modelId} on {address} (POST /v1/chat/completions, GET /v1/models, GET /health); Ctrl-C to stop");
        Console.Out.Flush();
        app.WaitForShutdown();
    }

    private static IResult Error(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null) =>
        Results.Json(new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } }, statusCode: status);

    /// <summary>A validated request: the prompt ids and the generation settings.</summary>
    private sealed record Request(int[] Prompt, GenerationOptions Options, IReadOnlyList<string> Stops, bool Stream);

    private (Request? Request, IResult? Error) Parse(JsonNode? body)
    {
        if (body is not JsonObject o) return (null, Error(400, "The body must be a JSON object."));
        var model = o["model"]?.GetValueKind() == JsonValueKind.String ? o["model"]!.GetValue<string>() : null;
        if (model is null) return (null, Error(400, "'model' is required.", param: "model"));
        if (model != modelId) return (null, Error(404, $"The model '{model}' does not exist; this server serves '{modelId}'.", code: "model_not_found", param: "model"));
        if (o["messages"] is not JsonArray msgs || msgs.Count == 0) return (null, Error(400, "'messages' must be a non-empty array of {role, content}.", param: "messages"));
        var messages = new List<ChatMessage>();
        foreach (var m in msgs)
        {
            var role = m?["role"]?.GetValueKind() == JsonValueKind.String ? m["role"]!.GetValue<string>() : null;
            var content = m?["content"]?.GetValueKind() == JsonValueKind.String ? m["content"]!.GetValue<string>() : null;
            if (role is not ("system" or "user" or "assistant") || content is null)
                return (null, Error(400, "Each message needs a role (system, user, assistant) and a string content.", param: "messages"));
            messages.Add(new ChatMessage(role, content));
        }
        double Num(string key, double fallback) => o[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : fallback;
        if (o["n"] is not null && Num("n", 1) != 1) return (null, Error(400, "Only n = 1 is supported.", param: "n"));
        int requested = (int)Num("max_completion_tokens", Num("max_tokens", maxTokens));
        if (requested < 1 || requested > maxTokens) return (null, Error(400, $"max_tokens must be between 1 and {maxTokens}.", param: "max_tokens"));
        double temperature = Num("temperature", 1);
        double topP = Num("top_p", 1);
        if (temperature is < 0 or > 2) return (null, Error(400, "temperature must be between 0 and 2.", param: "temperature"));
        if (topP is <= 0 or > 1) return (null, Error(400, "top_p must be in (0, 1].", param: "top_p"));
        var stops = o["stop"] switch
        {
            null => [],
            JsonValue v when v.TryGetValue<string>(out var s1) => [s1],
            JsonArray a => a.Select(x => x?.GetValue<string>() ?? "").Where(x => x.Length > 0).ToArray(),
            _ => (string[]?)null,
        };
        if (stops is null) return (null, Error(400, "stop must be a string or an array of strings.", param: "stop"));
        int[] prompt;
        try { prompt = g.Tokenizer.Encode(g.Template!.Render(messages, addGenerationPrompt: true), addSpecialTokens: false); }
        catch (ChatTemplateException e) { return (null, Error(400, $"The chat template refused the conversation: {e.Message}", param: "messages")); }
        if (prompt.Length + requested > g.Model.MaxPositions)
            return (null, Error(400, $"This model's context is {g.Model.MaxPositions} tokens; the messages are {prompt.Length} and max_tokens asks for {requested} more.", code: "context_length_exceeded", param: "messages"));
        var options = new GenerationOptions
        {
            MaxNewTokens = requested, DoSample = temperature > 0, Temperature = temperature > 0 ? (float)temperature : 1, TopP = (float)topP,
            Seed = (ulong)Num("seed", 0), EosTokenIds = g.StopIds,
        };
        bool stream = o["stream"] is JsonValue sv && sv.TryGetValue<bool>(out var b) && b;
        return (new Request(prompt, options, stops, stream), null);
    }

    private async Task ChatCompletions(HttpContext http)
    {
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await Error(413, "The request body is too large.").ExecuteAsync(http);
            return;
        }
        catch (JsonException e)
        {
            await Error(400, $"The body is not valid JSON: {e.Message}").ExecuteAsync(http);
            return;
        }
        var (request, error) = Parse(body);
        if (error is not null) { await error.ExecuteAsync(http); return; }

        if (Interlocked.Increment(ref _waiting) > queueLimit + 1)
        {
            Interlocked.Decrement(ref _waiting);
            await Error(503, "The server is busy (the queue is full); retry later.", type: "server_busy").ExecuteAsync(http);
            return;
        }
        try
        {
            await _gate.WaitAsync(http.RequestAborted);
        }
        catch (OperationCanceledException) { Interlocked.Decrement(ref _waiting); return; }
        try
        {
            var id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
            if (request!.Stream) await Stream(http, request, id);
            else
            {
                var (text, finish, tokens) = await Task.Run(() => Generate(request, _ => { }, http.RequestAborted));
                await Results.Json(new JsonObject
                {
                    ["id"] = id, ["object"] = "chat.completion", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["model"] = modelId,
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text }, ["finish_reason"] = finish,
                    }),
                    ["usage"] = new JsonObject { ["prompt_tokens"] = request.Prompt.Length, ["completion_tokens"] = tokens, ["total_tokens"] = request.Prompt.Length + tokens },
                }).ExecuteAsync(http);
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { }   // the client went away: its generation stopped
        finally
        {
            _gate.Release();
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Runs one generation; text pieces go to <paramref name="onText"/> as they are whole (stop strings held back and cut).</summary>
    private (string Text, string Finish, int Tokens) Generate(Request r, Action<string> onText, CancellationToken cancel)
    {
        var (text, finish, tokens) = GenerateCommands.Stream(g, r.Prompt, r.Options, r.Stops, onText, cancel);
        return (text, finish == FinishReason.Stop ? "stop" : "length", tokens);
    }

    private async Task Stream(HttpContext http, Request r, string id)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string Chunk(JsonObject delta, string? finish) => new JsonObject
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = modelId,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
        }.ToJsonString();
        var channel = Channel.CreateUnbounded<string>();
        var work = Task.Run(() =>
        {
            try
            {
                var (_, finish, _) = Generate(r, piece => channel.Writer.TryWrite(Chunk(new JsonObject { ["content"] = piece }, null)), http.RequestAborted);
                channel.Writer.TryWrite(Chunk([], finish));
                channel.Writer.Complete();
            }
            catch (Exception e) { channel.Writer.Complete(e); }
        });
        await http.Response.WriteAsync($"data: {Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null)}\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
        await foreach (var chunk in channel.Reader.ReadAllAsync(http.RequestAborted))
        {
            await http.Response.WriteAsync($"data: {chunk}\n\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
        await work;
        await http.Response.WriteAsync("data: [DONE]\n\n", http.RequestAborted);
    }
}
