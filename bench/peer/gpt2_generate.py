"""GPT-2 small (124M, random weights) greedy generation with a KV cache in plain PyTorch eager, batch 1: the peer of
`Whetstone.Bench generate`. usage: python3 gpt2_generate.py THREADS [--prompt 16] [--new 1000]
Prints RESULT {json}: tokens/s over the whole run and ms per token by position. Run it with the tuned settings of
../shared/peer/run.sh (OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs, OMP/OpenBLAS threads, passive waits, no malloc trim)."""
import argparse, json, math, os, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('threads', type=int)
ap.add_argument('--prompt', type=int, default=16)
ap.add_argument('--new', type=int, default=1000)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
V, D, L, H, P = 50257, 768, 12, 12, 1024
dh = D // H


def p(*shape, std=0.02):
    return torch.randn(*shape) * std


wte, wpe = p(V, D), p(P, D, std=0.01)
layers = [dict(ln1=(torch.ones(D), torch.zeros(D)), ln2=(torch.ones(D), torch.zeros(D)),
               attn_w=p(3 * D, D), attn_b=torch.zeros(3 * D), proj_w=p(D, D), proj_b=torch.zeros(D),
               fc_w=p(4 * D, D), fc_b=torch.zeros(4 * D), fc2_w=p(D, 4 * D), fc2_b=torch.zeros(D)) for _ in range(L)]
lnf = (torch.ones(D), torch.zeros(D))
cache_k = torch.zeros(L, 1, H, P, dh)
cache_v = torch.zeros(L, 1, H, P, dh)


def step(ids, start):
    """ids (1, T) at positions start..start+T-1 → logits of the last position; appends to the cache."""
    t = ids.shape[1]
    x = wte[ids] + wpe[start:start + t]
    for i, l in enumerate(layers):
        h = F.layer_norm(x, (D,), *l['ln1'])
        q, k, v = F.linear(h, l['attn_w'], l['attn_b']).split(D, dim=-1)
        q, k, v = (z.view(1, t, H, dh).transpose(1, 2) for z in (q, k, v))
        cache_k[i, :, :, start:start + t] = k
        cache_v[i, :, :, start:start + t] = v
        kk, vv = cache_k[i, :, :, :start + t], cache_v[i, :, :, :start + t]
        s = q @ kk.transpose(-1, -2) / math.sqrt(dh)
        if t > 1:
            s = s + torch.full((t, start + t), float('-inf')).triu(start + 1)
        a = (torch.softmax(s, dim=-1) @ vv).transpose(1, 2).reshape(1, t, D)
        x = x + F.linear(a, l['proj_w'], l['proj_b'])
        h = F.layer_norm(x, (D,), *l['ln2'])
        x = x + F.linear(F.gelu(F.linear(h, l['fc_w'], l['fc_b']), approximate='tanh'), l['fc2_w'], l['fc2_b'])
    return F.linear(F.layer_norm(x[:, -1], (D,), *lnf), wte)


with torch.no_grad():
    for _ in range(2):   # warm-up
        step(torch.randint(0, V, (1, args.prompt)), 0)
    ids = torch.randint(0, V, (1, args.prompt))
    t0 = time.perf_counter()
    logits = step(ids, 0)
    times = []
    pos = args.prompt
    for _ in range(args.new):
        nxt = logits.argmax(-1, keepdim=True)
        a = time.perf_counter()
        logits = step(nxt, pos)
        times.append(time.perf_counter() - a)
        pos += 1
    total = time.perf_counter() - t0
print('RESULT ' + json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), prompt=args.prompt, new=args.new,
                                  tokens_per_s=args.new / total, ms_per_token=[round(x * 1e3, 3) for x in times],
                                  OPENBLAS_CORETYPE=os.environ.get('OPENBLAS_CORETYPE', ''))))
