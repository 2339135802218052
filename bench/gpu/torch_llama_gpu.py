"""Training steps per second of the published stack on the GPU, the
reference for bench/gpu/bench_llama_gpu.lua: HF LlamaModel on inputs_embeds
with eager attention, fp32 weights, read_in / read_out Linear without bias,
MSE on the x-token predictions, torch.optim.AdamW; the standard model (16
layers, hidden 256, 8 heads), batch 64, 51 points (102 tokens), D = 20.
Each step draws a fresh linear-regression batch on the GPU (as icl does).

  (a) eager:   what the published code ran
  (b) compile: torch.compile of the same step function (forward and loss;
               autograd and AdamW as usual)

TF32 is enabled for matmuls (torch.backends.cuda.matmul.allow_tf32 = True,
cudnn too), as icl uses TF32 GEMMs by default, so that both sides do the
same arithmetic; --strict turns it off. NoPE drops the rotation; ALiBi and
FIRE add their bias inside eager attention after the 1/sqrt(d) scaling, as
bench/torch_llama_step.py (and the published code) patch it; dynamic YaRN at
the training length (102 tokens) is plain RoPE in HF, so it runs as RoPE.

    python3 bench/gpu/torch_llama_gpu.py --mode eager|compile [--pe nope,alibi,fire,dynamic-yarn]
                                         [--steps 30] [--reps 3] [--strict] [--size standard|toy]
                                         [--device auto|cuda|cpu]

Prints per encoding: torch-<mode> <pe> <tf32|fp32> <steps/s> <ms/step> loss=<...>
(or "n/a (<reason>)"). Runs on the CPU when there is no GPU (for checking
the script only; --size toy then).
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import transformers.models.llama.modeling_llama as ml
from transformers import LlamaConfig, LlamaModel

ap = argparse.ArgumentParser()
ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
ap.add_argument("--pe", default="nope,alibi,fire,dynamic-yarn")
ap.add_argument("--steps", type=int, default=30)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--strict", action="store_true")
ap.add_argument("--size", choices=["standard", "toy"], default="standard")
ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                help="auto: cuda when available; cpu only checks the script (use --size toy)")
args = ap.parse_args()

if args.device == "cuda" and not torch.cuda.is_available():
    sys.exit("torch_llama_gpu: --device cuda but torch sees no CUDA device")
dev = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
torch.backends.cuda.matmul.allow_tf32 = not args.strict
torch.backends.cudnn.allow_tf32 = not args.strict
torch.manual_seed(0)

hidden, layers, heads = (256, 16, 8) if args.size == "standard" else (64, 2, 2)
B, N, D, L_train = 64, 51, 20, 102
T = 2 * N


def alibi_slopes(n):
    p = 2 ** math.floor(math.log2(n))
    s = [2 ** (-8 * (h + 1) / p) for h in range(p)]
    s += [2 ** (-4 * (2 * k + 1) / p) for k in range(n - p)]
    return torch.tensor(s, device=dev)


class Fire(nn.Module):
    """FIRE (Li et al.): bias_h(i, j) = MLP(log(c|i-j|+1) / (log(c max(i, L)+1) + eps))."""

    def __init__(self, heads, width=32, init_c=0.1, init_L=512.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, heads))
        self.c = nn.Parameter(torch.tensor(init_c))
        self.init_L = nn.Parameter(torch.tensor(init_L), requires_grad=False)
        self.L_multiplier = nn.Parameter(torch.tensor(1.0))

    def forward(self, T):
        pos = torch.arange(T, dtype=torch.float32, device=self.c.device)
        rel = pos[:, None] - pos[None, :]
        thr = torch.abs(self.L_multiplier * self.init_L)
        num = torch.log(torch.abs(self.c * rel) + 1)
        den = torch.log(torch.abs(self.c * torch.maximum(pos, thr)) + 1) + 1e-6
        u = (num / den[:, None]).unsqueeze(-1)
        return self.mlp(u).permute(2, 0, 1)  # [H, T, T]


state = {"slopes": None, "fires": None}
orig_eager = ml.eager_attention_forward
orig_rotary = ml.apply_rotary_pos_emb


def biased_eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kw):
    w = torch.matmul(query, key.transpose(2, 3)) * scaling
    Tq = query.shape[2]
    if state["slopes"] is not None:
        pos = torch.arange(Tq, dtype=torch.float32, device=query.device)
        w = w - state["slopes"][:, None, None] * (pos[:, None] - pos[None, :])
    if state["fires"] is not None:
        w = w + state["fires"][module.layer_idx](Tq)
    if attention_mask is not None:
        w = w + attention_mask
    w = nn.functional.softmax(w, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(w, value).transpose(1, 2).contiguous()
    return out, w


def build(pe):
    ml.eager_attention_forward = orig_eager
    ml.apply_rotary_pos_emb = orig_rotary
    state["slopes"] = alibi_slopes(heads) if pe == "alibi" else None
    state["fires"] = nn.ModuleList([Fire(heads) for _ in range(layers)]).to(dev) if pe == "fire" else None
    if pe in ("alibi", "fire", "nope"):
        ml.apply_rotary_pos_emb = lambda q, k, cos, sin, *a, **k2: (q, k)
    if pe in ("alibi", "fire"):
        ml.eager_attention_forward = biased_eager
    # dynamic-yarn and rope: default RoPE (equal at the training length)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=L_train,
                      rms_norm_eps=1e-6, vocab_size=32000,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attn_implementation="eager")
    backbone = LlamaModel(cfg).to(dev)
    read_in = nn.Linear(D, hidden, bias=False).to(dev)
    read_out = nn.Linear(hidden, 1, bias=False).to(dev)
    nn.init.normal_(read_in.weight, std=0.02)
    nn.init.normal_(read_out.weight, std=0.02)
    params = list(backbone.parameters()) + list(read_in.parameters()) + list(read_out.parameters())
    if state["fires"] is not None:
        params += [p for p in state["fires"].parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4)

    def loss_fn(xs, ys):
        ytok = torch.zeros(B, N, D, device=xs.device)
        ytok[:, :, 0] = ys
        tokens = torch.stack([xs, ytok], dim=2).reshape(B, T, D)
        h = backbone(inputs_embeds=read_in(tokens)).last_hidden_state
        pred = read_out(h)[:, ::2, 0]
        return ((pred - ys) ** 2).mean()

    fn = torch.compile(loss_fn) if args.mode == "compile" else loss_fn

    def step():
        xs = torch.randn(B, N, D, device=dev)
        w = torch.randn(B, D, 1, device=dev)
        ys = (xs @ w)[:, :, 0]
        loss = fn(xs, ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def step_flops():
    """FLOPs of one step, counted as bench_llama_gpu.lua counts them."""
    bt, ff = B * T, 4 * hidden
    gemm = 2 * bt * (4 * hidden * hidden + 3 * hidden * ff) * layers + 2 * bt * D * hidden + 2 * bt * hidden
    attn = 4 * B * heads * T * T * (hidden // heads) * layers
    return 3 * (gemm + attn)


PEAK_TF32, PEAK_FP32 = 495e12, 67e12


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


mode = "fp32" if args.strict else "tf32"
for pe in args.pe.split(","):
    try:
        step = build(pe)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            step()
        sync()
        warm = time.perf_counter() - t0
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                loss = step()
            sync()
            rates.append(args.steps / (time.perf_counter() - t0))
        r = statistics.median(rates)
        f = step_flops() * r
        print(f"torch-{args.mode} {pe} {mode} {r:.2f} {1000 / r:.3f} mfu_tf32={100 * f / PEAK_TF32:.1f}% "
              f"mfu_fp32={100 * f / PEAK_FP32:.1f}% loss={loss.item():.4f} warmup={warm:.1f}s", flush=True)
    except Exception as e:  # report and go on with the next encoding
        msg = str(e).replace("\n", " ")[:200]
        print(f"torch-{args.mode} {pe} {mode} n/a ({type(e).__name__}: {msg})", flush=True)
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if args.mode == "compile":
        torch._dynamo.reset()
sys.exit(0)
