"""Independent float64 in-context Llama (spec models_and_pe.md §1, §3-§5; tasks.md §1).

A functional re-derivation from the spec formulas; it does not import transformers. Parameters come
as a flat dict keyed by the fixture names (`layers.{i}.self_attn.q_proj.weight`, ..., `read_in.weight`).
Position encodings:
  ("rope", inv_freq, m)      half-split rotation of q and k, cos/sin scaled by m
  ("none",)                  NoPE
  ("alibi", slopes)          S = q.k/sqrt(hd) - m_h (i - j)
  ("fire", conv, init_L)     conv "A": S = q.k/sqrt(hd) + b;  conv "B": S = (q.k + b)/sqrt(hd)
"""
import math

import torch
import torch.nn.functional as F

from ref_alibi import alibi_bias
from ref_fire import fire_bias_functional
from ref_rope import rope_cos_sin


def interleave(xs, ys):
    """tasks.md §1: token 2i = x_i, token 2i+1 = (y_i, 0, ..., 0)."""
    B, N, D = xs.shape
    z = xs.new_zeros(B, 2 * N, D)
    z[:, 0::2, :] = xs
    z[:, 1::2, 0] = ys
    return z


def rms_norm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def attention(p, pre, x, cfg, pe, layer):
    B, T, _ = x.shape
    H, hd = cfg["heads"], cfg["head_dim"]
    q = (x @ p[pre + "q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
    k = (x @ p[pre + "k_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
    v = (x @ p[pre + "v_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
    if pe[0] == "rope":
        cos, sin = rope_cos_sin(pe[1], T, pe[2])
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    s = 1.0 / math.sqrt(hd)
    qk = q @ k.transpose(-1, -2)
    if pe[0] == "alibi":
        S = qk * s + alibi_bias(pe[1], T)
    elif pe[0] == "fire":
        bias = fire_bias_functional(p, pre + "fire.", T, pe[2])
        S = qk * s + bias if pe[1] == "A" else (qk + bias) * s
    else:
        S = qk * s
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    S = S.masked_fill(~causal, float("-inf"))
    P = torch.softmax(S, dim=-1)
    o = (P @ v).transpose(1, 2).reshape(B, T, H * hd)
    return o @ p[pre + "o_proj.weight"].T, P


def llama_icl_forward(p, cfg, xs, ys, pe):
    """Returns pred [B, N] (read-out at the x tokens) and the per-layer attention probabilities."""
    eps = cfg["rms_norm_eps"]
    h = interleave(xs, ys) @ p["read_in.weight"].T
    probs = []
    for l in range(cfg["layers"]):
        pre = f"layers.{l}."
        a, P = attention(p, pre + "self_attn.", rms_norm(h, p[pre + "input_layernorm.weight"], eps), cfg, pe, l)
        probs.append(P)
        h = h + a
        y = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        g = y @ p[pre + "mlp.gate_proj.weight"].T
        u = y @ p[pre + "mlp.up_proj.weight"].T
        h = h + (F.silu(g) * u) @ p[pre + "mlp.down_proj.weight"].T
    h = rms_norm(h, p["norm.weight"], eps)
    pred = (h[:, 0::2, :] @ p["read_out.weight"].T)[..., 0]
    return pred, probs


def icl_loss(pred, ys, kind):
    if kind == "mse":
        return ((pred - ys) ** 2).mean()
    if kind == "bce":
        return F.softplus(-ys * pred).mean()
    raise ValueError(kind)
