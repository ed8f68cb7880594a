#!/usr/bin/env bash
# End to end, from a clean checkout: a small Llama-family decoder pre-trained here on public-domain English (the State
# of the Union addresses), then fine-tuned as Debian's support assistant on the Debian FAQ.
#   bash examples/support-chat/run.sh            (pre-training ~20 min on 2 cores, once; the chat fine-tune ~2 min)
#   BASE=path/to/hf-decoder bash examples/support-chat/run.sh   (skip pre-training: fine-tune that checkpoint instead)
# The pre-trained checkpoint is cached like an asset, in $WHETSTONE_HOME/models/sotu-llama (default ~/.cache/whetstone),
# so later runs go straight to the fine-tune.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/examples/support-chat"
cd "$root"
home="${WHETSTONE_HOME:-$HOME/.cache/whetstone}"
whet() { "$root/scripts/whet" "$@"; }

bash scripts/fetch-assets sotu debian_faq

base="${BASE:-$home/models/sotu-llama}"
if [ -z "${BASE:-}" ] && [ ! -f "$base/model.safetensors" ]; then
  scratch="$home/models/sotu-llama.scratch"
  rm -rf "$scratch"
  # 1. a byte-level BPE tokenizer trained on the pre-training text; ChatML's turn markers as special tokens
  whet tokenizer train asset:sotu --vocab-size 8192 --out "$scratch" \
    --special "<|endoftext|>" --special "<|im_start|>" --special "<|im_end|>" --special "<|pad|>" \
    --bos "<|endoftext|>" --eos "<|endoftext|>" --pad "<|pad|>" --max-length 512
  cp "$here/sotu-llama.json" "$scratch/config.json"
  # 2. pre-training from scratch (model.scratch), one epoch over the addresses
  whet train "$here/pretrain.yaml" --set model.path="$scratch"
  # 3. the run's bundle is an ordinary Hugging Face folder: cache it
  rm -rf "$base.tmp" && cp -r runs/sotu-llama-pretrain/model "$base.tmp" && rm -rf "$base" && mv "$base.tmp" "$base"
fi

# 4. the Debian FAQ as chat JSONL (train / held-out test)
data="$home/data/support-chat"
dotnet run --file "$here/debian-faq-to-chat.cs" -- "$home/assets/debian_faq/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz" "$data"

# 5. the chat fine-tune: loss on assistant turns, perplexity before vs after on the held-out questions
whet train "$here/support-chat.yaml" --set model.path="$base" --set data.train="$data/train.jsonl" --set data.test="$data/test.jsonl" "$@"
echo "try it: scripts/whet chat runs/support-chat    or    scripts/whet serve runs/support-chat"
