namespace Whetstone.Bench;

/// <summary>`dotnet run -c Release --project bench/Whetstone.Bench -- &lt;name&gt; [options]` runs benchmark &lt;name&gt;.</summary>
internal static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benches = new()
    {
        ["gemm"] = ("SGEMM vs OpenBLAS cblas_sgemm, 1 and 2 threads [--threads 1,2] [--reps N] [--case NAME] [--kernel 14x32] [--mc N --kc N --nc N] [--no-ref]", GemmBench.Run),
        ["encoder-step"] = ("BERT classifier training step in 5 modes vs PyTorch (../shared/peer) [full|top2|head|lora|infer ...] [--model bert|minilm] [--batch B] [--seq T] [--threads N] [--iters N] [--rounds N] [--no-peer]",
            a => { EncoderStepBench.Run(a[1..]); return 0; }),
        ["decoder-step"] = ("GPT-2 small (124M) language-model training step b4x256 [full|lora|infer ...] vs PyTorch (../shared/peer models.py gpt2) [--batch B] [--seq T] [--threads N] [--iters N] [--rounds N] [--no-peer]",
            a => { EncoderStepBench.Run([.. a[1..], "--model", "gpt2"]); return 0; }),
        ["load-bert"] = ("HfModel.Load of a random bert-base-shaped safetensors checkpoint (110M params, /tmp) [--reps N] [--dir PATH]", HfLoadBench.Run),
        ["tokenize"] = ("Tokenization throughput: WordPiece (bert_vocab), byte-level BPE (gpt2_bpe) and decoder tokenizers (llama3/qwen3/mistral_tokenizer) over the sentiment sentences [--threads 1,2] [--repeat N]", TokenizeBench.Run),
        ["checkpoint"] = ("Resume checkpoints: bert-base + AdamW write/verify-read vs its own load, and the quickstart top-blocks run's per-epoch share [bert-base|epoch|all] [--reps N] [--epochs N]", CheckpointBench.Run),
        ["resnet18"] = ("ResNet-18 (ML.NET ONNX) frozen-backbone feature pass vs ONNX Runtime, images/s [--batch 32] [--threads 2] [--reps N] [--size 224] [--no-ref]", ResNet18Bench.Run),
        ["encoder-ops"] = ("MiniLM layer ops alone (GELU, attention, residual LayerNorm, FFN linears), forward and forward+backward [--reps N] [--threads N]", EncoderOpsBench.Run),
        ["generate"] = ("Greedy generation with the KV cache, GPT-2 small shape (124M), batch 1: tokens/s and ms/token early vs late, beside PyTorch eager with a KV cache (bench/peer/gpt2_generate.py) [--prompt 16] [--new 1000] [--threads 2] [--no-peer]", GenerateBench.Run),
        ["gemm-parts"] = ("GEMM pieces alone: micro-kernel GFLOP/s on cached panels, packing rates [--kernel 14x32] [--mc N --kc N]", GemmBench.Parts),
    };

    private static int Main(string[] args)
    {
        if (args.Length == 0 || !Benches.TryGetValue(args[0], out var bench))
        {
            Console.Error.WriteLine("usage: Whetstone.Bench <name> [options]");
            foreach (var (name, (help, _)) in Benches) Console.Error.WriteLine($"  {name,-14} {help}");
            return args.Length == 0 ? 0 : 2;
        }
        return bench.Run(args);
    }
}
