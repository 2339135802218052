"""FIRE (spec models_and_pe.md §4, §7.3), written from the spec's formulas.

The nn.Module is what gets attached to each HF LlamaAttention as `self_attn.fire`, so its parameter
names are `fire.mlp.0.weight`, `fire.mlp.0.bias`, `fire.mlp.2.weight`, `fire.mlp.2.bias`, `fire.c`,
`fire.L_multiplier`. init_L is a non-persistent buffer (a config constant, not a parameter).
"""
import math

import torch
from torch import nn


def fire_u(i, j, c, thr, eps=1e-6):
    """Scalar reference of the normalised distance u(i, j) (float64 Python math)."""
    n = math.log(abs(c * (i - j)) + 1.0)
    m = max(i, thr)
    d = math.log(abs(c * m) + 1.0) + eps
    return n / d


class FIRE(nn.Module):
    def __init__(self, num_heads, width=32, init_c=0.1, init_L=512.0, L_mult=1.0, eps=1e-6):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, num_heads))
        self.c = nn.Parameter(torch.tensor([float(init_c)]))
        self.L_multiplier = nn.Parameter(torch.tensor([float(L_mult)]))
        self.register_buffer("init_L", torch.tensor([float(init_L)]), persistent=False)
        self.eps = eps

    def u(self, seq_len):
        dt = self.c.dtype
        pos = torch.arange(seq_len, dtype=dt, device=self.c.device)
        rel = pos[:, None] - pos[None, :]
        n = torch.log(torch.abs(self.c * rel) + 1.0)
        thr = torch.abs(self.L_multiplier * self.init_L.to(dt))
        m = torch.maximum(pos, thr)                    # ties split the gradient 1/2 (torch rule)
        d = torch.log(torch.abs(self.c * m) + 1.0) + self.eps
        return n / d[:, None]

    def forward(self, seq_len):
        """Bias [H, T, T]."""
        u = self.u(seq_len)
        return self.mlp(u[..., None]).permute(2, 0, 1)


def fire_bias_functional(p, prefix, seq_len, init_L, eps=1e-6):
    """Same bias from a flat parameter dict (used by the independent reference model)."""
    c = p[prefix + "c"]
    lm = p[prefix + "L_multiplier"]
    pos = torch.arange(seq_len, dtype=c.dtype)
    rel = pos[:, None] - pos[None, :]
    n = torch.log(torch.abs(c * rel) + 1.0)
    thr = torch.abs(lm * init_L)
    m = torch.maximum(pos, thr)
    d = torch.log(torch.abs(c * m) + 1.0) + eps
    u = (n / d[:, None])[..., None]                     # [T, T, 1]
    a = u @ p[prefix + "mlp.0.weight"].T + p[prefix + "mlp.0.bias"]
    z = torch.relu(a)
    b = z @ p[prefix + "mlp.2.weight"].T + p[prefix + "mlp.2.bias"]
    return b.permute(2, 0, 1)


def fire_scalar_grads(G, c, lm, init_L, w1, b1, w2, eps=1e-6):
    """Spec §7.3 closed form of dL/dc and dL/dL_mult from G[h,i,j] = dLoss/dBias (summed over batch).

    For convention B pass G already multiplied by 1/sqrt(hd). Tie rule at thr == i: 1/2."""
    H, T, _ = G.shape
    pos = torch.arange(T, dtype=torch.float64)
    r = pos[:, None] - pos[None, :]
    n = torch.log(torch.abs(c * r) + 1.0)
    thr = abs(lm * init_L)
    m = torch.clamp(pos, min=thr)
    d = torch.log(torch.abs(c * m) + 1.0) + eps
    u = n / d[:, None]
    a = u[..., None] * w1[None, None, :] + b1                    # [T, T, W]
    delta = (a > 0).to(torch.float64) * torch.einsum("hij,hk->ijk", G, w2)
    gamma = torch.einsum("ijk,k->ij", delta, w1)                 # dLoss/du
    sgn = lambda x: torch.sign(torch.as_tensor(x, dtype=torch.float64))
    du_dc = (sgn(c * r) * r / (torch.abs(c * r) + 1.0)) / d[:, None] \
        - n * ((sgn(c * m) * m / (torch.abs(c * m) + 1.0)) / d ** 2)[:, None]
    dm_dthr = torch.where(thr > pos, 1.0, torch.where(thr < pos, 0.0, 0.5))
    du_dlm = -n / (d ** 2)[:, None] * (sgn(c * m) * c / (torch.abs(c * m) + 1.0) * dm_dthr)[:, None] \
        * float(sgn(lm * init_L)) * init_L
    causal = (r >= 0).to(torch.float64)
    return float((gamma * du_dc * causal).sum()), float((gamma * du_dlm * causal).sum())
