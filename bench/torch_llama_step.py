"""Time full training steps (forward, backward, AdamW) of the same in-context
Llama in PyTorch CPU eager, the way the published code ran it: HF LlamaModel
on inputs_embeds, eager attention, fp32, read_in/read_out Linear without bias,
MSE on the x-token predictions. NoPE removes the rotation; ALiBi and FIRE add
a custom bias inside eager attention after the 1/sqrt(d) scaling (the
published code patched the attention the same way); yarn / linear / dynamic
use HF's rope scaling; dynamic-yarn at 102 tokens (<= the training length)
is plain RoPE.

    python3 bench/torch_llama_step.py [size] [pe] [steps] [warmup] [serve]

Prints: torch <size> <pe> <steps/s> <ms/step> loss=<last loss> mean=<mean ms/step>, where
steps/s and ms/step are of the median step. With "serve", as
bench/llama_step.lua: "ready" after the warm-up, then per line n read from
stdin n timed steps' milliseconds and the last loss on one line.
"""
import math
import sys
import statistics
import time

import torch
import torch.nn as nn
import transformers.models.llama.modeling_llama as ml
from transformers import LlamaConfig, LlamaModel

size = sys.argv[1] if len(sys.argv) > 1 else "standard"
pe = sys.argv[2] if len(sys.argv) > 2 else "rope"
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 1
threads = 2
torch.set_num_threads(threads)
torch.manual_seed(0)

hidden, layers, heads = (256, 16, 8) if size == "standard" else (64, 2, 2)
B, N, D, L_train = 64, 51, 20, 102
T = 2 * N

rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
if pe == "linear":
    rope_parameters = {"rope_type": "linear", "factor": 8.0, "rope_theta": 10000.0}
elif pe == "dynamic":
    rope_parameters = {"rope_type": "dynamic", "factor": 8.0, "rope_theta": 10000.0}
elif pe == "yarn":
    rope_parameters = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": L_train,
                       "rope_theta": 10000.0}
cfg = LlamaConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=8 * L_train
                  if pe == "yarn" else L_train, rms_norm_eps=1e-6, vocab_size=32000,
                  rope_parameters=rope_parameters, attn_implementation="eager")


def alibi_slopes(n):
    p = 2 ** math.floor(math.log2(n))
    s = [2 ** (-8 * (h + 1) / p) for h in range(p)]
    s += [2 ** (-4 * (2 * k + 1) / p) for k in range(n - p)]
    return torch.tensor(s)


class Fire(nn.Module):
    """FIRE (Li et al.): bias_h(i, j) = MLP(log(c|i-j|+1) / (log(c max(i, L)+1) + eps))."""

    def __init__(self, heads, width=32, init_c=0.1, init_L=512.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, heads))
        self.c = nn.Parameter(torch.tensor(init_c))
        self.init_L = nn.Parameter(torch.tensor(init_L), requires_grad=False)
        self.L_multiplier = nn.Parameter(torch.tensor(1.0))

    def forward(self, T):
        pos = torch.arange(T, dtype=torch.float32)
        rel = pos[:, None] - pos[None, :]
        thr = torch.abs(self.L_multiplier * self.init_L)
        num = torch.log(torch.abs(self.c * rel) + 1)
        den = torch.log(torch.abs(self.c * torch.maximum(pos, thr)) + 1) + 1e-6
        u = (num / den[:, None]).unsqueeze(-1)
        return self.mlp(u).permute(2, 0, 1)  # [H, T, T]


fires = nn.ModuleList([Fire(heads) for _ in range(layers)]) if pe == "fire" else None
slopes = alibi_slopes(heads) if pe == "alibi" else None
orig_eager = ml.eager_attention_forward


def biased_eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kw):
    w = torch.matmul(query, key.transpose(2, 3)) * scaling
    Tq = query.shape[2]
    if slopes is not None:
        pos = torch.arange(Tq, dtype=torch.float32)
        w = w - slopes[:, None, None] * (pos[:, None] - pos[None, :])
    if fires is not None:
        w = w + fires[module.layer_idx](Tq)
    if attention_mask is not None:
        w = w + attention_mask
    w = nn.functional.softmax(w, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(w, value).transpose(1, 2).contiguous()
    return out, w


if pe in ("alibi", "fire", "nope"):
    ml.apply_rotary_pos_emb = lambda q, k, cos, sin, *a, **k2: (q, k)
if pe in ("alibi", "fire"):
    ml.eager_attention_forward = biased_eager

backbone = LlamaModel(cfg)
read_in = nn.Linear(D, hidden, bias=False)
read_out = nn.Linear(hidden, 1, bias=False)
# the published stack built these inside the HF model, so post_init gave them N(0, 0.02^2)
nn.init.normal_(read_in.weight, std=0.02)
nn.init.normal_(read_out.weight, std=0.02)
params = list(backbone.parameters()) + list(read_in.parameters()) + list(read_out.parameters())
if fires is not None:
    params += [p for p in fires.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=3e-4)

xs, ys = torch.randn(B, N, D), torch.randn(B, N)
ytok = torch.zeros(B, N, D)
ytok[:, :, 0] = ys
tokens = torch.stack([xs, ytok], dim=2).reshape(B, T, D)


def step():
    h = backbone(inputs_embeds=read_in(tokens)).last_hidden_state
    pred = read_out(h)[:, ::2, 0]
    loss = ((pred - ys) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(warmup):
    step()
if len(sys.argv) > 5 and sys.argv[5] == "serve":
    print("ready", flush=True)
    for line in sys.stdin:
        out = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            loss = step()
            out.append(f"{(time.perf_counter() - t0) * 1000:.3f}")
        print(" ".join(out) + f" loss={loss:.4f}", flush=True)
    sys.exit(0)
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
# the median step, as bench/llama_step.lua reports it (bursts of a neighbour's load slow single steps)
dt = statistics.median(times)
mean = sum(times) / len(times)
print(f"torch {size} {pe} {1 / dt:.4f} {dt * 1000:.1f} loss={loss:.4f} mean={mean * 1000:.1f}")
