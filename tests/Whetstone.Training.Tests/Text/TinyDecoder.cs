using System.Text;
using System.Text.Json.Nodes;
using Whetstone.Models.Importers.Hf;

namespace Whetstone.Training.Tests.Text;

/// <summary>
/// A tiny Llama-family decoder folder written by tests (also linked into the CLI tests): config (vocab 259: 256 bytes +
/// &lt;|endoftext|&gt;, &lt;|im_start|&gt;, &lt;|im_end|&gt;), a byte-level BPE tokenizer without merges, random weights; and a
/// customer-support FAQ as chat JSONL.
/// </summary>
internal static class TinyDecoder
{
    /// <summary>GPT-2's byte → printable character map (bytes that are printable map to themselves, the rest above 255).</summary>
    private static string[] ByteAlphabet()
    {
        var map = new string[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = ((char)(printable ? b : 256 + extra++)).ToString();
        }
        return map;
    }

    /// <summary>Writes the model folder <paramref name="dir"/>; with <paramref name="withTemplate"/> its tokenizer_config carries a ChatML-like template.</summary>
    public static string Write(string dir, bool withTemplate = false)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            {"model_type": "llama", "vocab_size": 259, "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": true, "eos_token_id": 256}
            """);
        var vocab = new JsonObject();
        var alphabet = ByteAlphabet();
        for (int b = 0; b < 256; b++) vocab[alphabet[b]] = b;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), vocab.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
        var config = new JsonObject
        {
            ["added_tokens_decoder"] = new JsonObject
            {
                ["256"] = new JsonObject { ["content"] = "<|endoftext|>", ["special"] = true },
                ["257"] = new JsonObject { ["content"] = "<|im_start|>", ["special"] = true },
                ["258"] = new JsonObject { ["content"] = "<|im_end|>", ["special"] = true },
            },
            ["eos_token"] = "<|endoftext|>", ["pad_token"] = "<|endoftext|>", ["add_bos_token"] = false,
        };
        if (withTemplate) config["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        var model = HfModel.CreateCausalLm(dir, seed: 3);
        HfModel.SaveCausalLm(model, dir, dir);
        return dir;
    }

    public static readonly (string Q, string A)[] Faq =
    [
        ("When are you open?", "We are open 9 to 5."),
        ("How do I reset my password?", "Use the reset link."),
        ("Can I get a refund?", "Yes, within 30 days."),
        ("Where is my order?", "Check the tracking page."),
    ];

    /// <summary>Writes <paramref name="rows"/> support conversations (system, user question, assistant answer) as chat JSONL.</summary>
    public static string Chat(string path, int rows)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < rows; i++)
        {
            var (q, a) = Faq[i % Faq.Length];
            sb.AppendLine(new JsonObject
            {
                ["messages"] = new JsonArray(
                    new JsonObject { ["role"] = "system", ["content"] = "Support bot." },
                    new JsonObject { ["role"] = "user", ["content"] = q },
                    new JsonObject { ["role"] = "assistant", ["content"] = a }),
            }.ToJsonString());
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }
}
