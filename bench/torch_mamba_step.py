#!/usr/bin/env python3
"""Time training steps (forward, backward, AdamW) of HF transformers' MambaModel
on the CPU, wrapped like icl's in-context model: tokens (x_i, (y_i, 0..0))
interleaved -> read_in Linear(D, hidden, no bias) -> MambaModel (inputs_embeds)
-> read_out Linear(hidden, 1, no bias) -> MSE at the x tokens.

On the CPU, HF runs its slow path: mamba_selective_scan materialises
exp(Δ A) and Δ B u as [B, E, T, N] tensors and loops over time in Python
(no mamba_ssm / causal_conv1d kernels; use_mambapy=False,
use_associative_scan=False).

  python3 bench/torch_mamba_step.py [--layers 32] [--batch 64] [--tokens 102]
                                    [--steps 2] [--warmup 1] [--threads 2]
Prints one JSON line: steps_per_s, ms_per_step, peak RSS (MB), settings."""
import argparse
import json
import resource
import time

import torch
import transformers
from transformers import MambaConfig, MambaModel

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=32)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--tokens", type=int, default=102)
ap.add_argument("--dims", type=int, default=20)
ap.add_argument("--steps", type=int, default=2)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
cfg = MambaConfig(hidden_size=256, state_size=16, num_hidden_layers=a.layers, expand=2, conv_kernel=4,
                  use_mambapy=False, use_associative_scan=False, vocab_size=8)
backbone = MambaModel(cfg)
read_in = torch.nn.Linear(a.dims, 256, bias=False)
read_out = torch.nn.Linear(256, 1, bias=False)
params = list(backbone.parameters()) + list(read_in.parameters()) + list(read_out.parameters())
# the study's optimiser: AdamW(params, lr) (weight decay 0.01 on everything)
opt = torch.optim.AdamW(params, lr=3e-4)
backbone.train()

B, N, D = a.batch, a.tokens // 2, a.dims
xs, ys = torch.randn(B, N, D), torch.randn(B, N)


def step():
    tok = torch.zeros(B, 2 * N, D)
    tok[:, 0::2] = xs
    tok[:, 1::2, 0] = ys
    h = backbone(inputs_embeds=read_in(tok)).last_hidden_state
    pred = read_out(h)[:, 0::2, 0]
    loss = ((pred - ys) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(a.warmup):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    loss = step()
dt = (time.perf_counter() - t0) / a.steps
print(json.dumps({
    "impl": "torch", "layers": a.layers, "batch": B, "tokens": 2 * N, "threads": a.threads,
    "steps": a.steps, "steps_per_s": 1 / dt, "ms_per_step": dt * 1e3, "loss": loss,
    "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "torch": torch.__version__, "transformers": transformers.__version__,
    "params": sum(p.numel() for p in params),
}))
