"""Independent float64 Mamba-1 reference (spec models_and_pe.md §6.2-§6.3), sequential loops only.

`selective_scan_ref` is the recurrence of §6.2 written as a plain time loop; `mamba_icl_forward`
is the whole in-context model (read_in -> pre-norm Mamba blocks -> final RMSNorm -> read_out) on a
flat parameter dict keyed by the fixture names. No transformers import.
"""
import torch
import torch.nn.functional as F

from ref_llama import interleave, rms_norm


def selective_scan_ref(u, delta_raw, A, Bm, Cm, D, z, delta_bias):
    """u, delta_raw, z: [B, E, L]; A: [E, N]; Bm, Cm: [B, N, L]; D, delta_bias: [E].

    delta = softplus(delta_raw + delta_bias)
    s_t = exp(delta_t A) s_{t-1} + delta_t B_t u_t;  y_t = C_t . s_t + D u_t;  out = y * silu(z)."""
    Bsz, E, L = u.shape
    delta = F.softplus(delta_raw + delta_bias[None, :, None])
    s = u.new_zeros(Bsz, E, A.shape[1])
    ys = []
    for t in range(L):
        dt = delta[:, :, t]                                           # [B, E]
        s = torch.exp(dt[:, :, None] * A[None]) * s + dt[:, :, None] * Bm[:, None, :, t] * u[:, :, t, None]
        ys.append((s * Cm[:, None, :, t]).sum(-1) + D[None, :] * u[:, :, t])
    y = torch.stack(ys, dim=-1)
    return y * F.silu(z)


def causal_depthwise_conv(x, w, b):
    """x: [B, E, L]; w: [E, K]; xc_t = b + sum_k w[:, k] x_{t-K+1+k} (zeros before t = 0)."""
    K = w.shape[1]
    L = x.shape[-1]
    xp = F.pad(x, (K - 1, 0))
    out = b[None, :, None].expand_as(x).clone()
    for k in range(K):
        out = out + w[None, :, k, None] * xp[:, :, k:k + L]
    return out


def mamba_mixer_ref(p, pre, h, cfg):
    E, N, R = cfg["d_inner"], cfg["state"], cfg["dt_rank"]
    xz = (h @ p[pre + "in_proj.weight"].T).transpose(1, 2)             # [B, 2E, L]
    x, z = xz[:, :E], xz[:, E:]
    xc = causal_depthwise_conv(x, p[pre + "conv1d.weight"][:, 0, :], p[pre + "conv1d.bias"])
    u = F.silu(xc)
    xdbl = u.transpose(1, 2) @ p[pre + "x_proj.weight"].T              # [B, L, R + 2N]
    dlow, Bm, Cm = xdbl[..., :R], xdbl[..., R:R + N], xdbl[..., R + N:]
    draw = (dlow @ p[pre + "dt_proj.weight"].T).transpose(1, 2)        # [B, E, L] (bias added in the scan)
    A = -torch.exp(p[pre + "A_log"])
    o = selective_scan_ref(u, draw, A, Bm.transpose(1, 2), Cm.transpose(1, 2), p[pre + "D"], z,
                           p[pre + "dt_proj.bias"])
    return o.transpose(1, 2) @ p[pre + "out_proj.weight"].T


def mamba_icl_forward(p, cfg, xs, ys):
    eps = cfg["layer_norm_epsilon"]
    h = interleave(xs, ys) @ p["read_in.weight"].T
    for l in range(cfg["layers"]):
        pre = f"layers.{l}."
        h = h + mamba_mixer_ref(p, pre + "mixer.", rms_norm(h, p[pre + "norm.weight"], eps), cfg)
    h = rms_norm(h, p["norm_f.weight"], eps)
    return (h[:, 0::2, :] @ p["read_out.weight"].T)[..., 0]
