"""Independent float64 re-derivation of the RoPE family (spec models_and_pe.md §2).

Nothing here calls transformers; gen_fixtures.py compares these numbers with what HF computes.
All functions return float64 tensors / Python floats.
"""
import math

import torch


def default_inv_freq(dim, base):
    """§2.1: inv_freq[c] = 1 / base^(2c/dim), c = 0..dim/2-1."""
    c = torch.arange(dim // 2, dtype=torch.float64)
    return 1.0 / (base ** (2.0 * c / dim))


def linear_inv_freq(dim, base, factor):
    """§2.2 (PI): inv_freq / factor, attention scaling 1."""
    return default_inv_freq(dim, base) / factor


def dynamic_ntk_base(base, dim, factor, seq_len, max_pos):
    """§2.3 (HF rope_type "dynamic"): base' for a forward whose longest sequence is seq_len."""
    if seq_len <= max_pos:
        return float(base)
    return base * (factor * seq_len / max_pos - (factor - 1.0)) ** (dim / (dim - 2.0))


def dynamic_ntk_inv_freq(dim, base, factor, seq_len, max_pos):
    return default_inv_freq(dim, dynamic_ntk_base(base, dim, factor, seq_len, max_pos))


def yarn_correction_dim(num_rotations, dim, base, l0):
    """corr(R) = D ln(L0 / (2 pi R)) / (2 ln b)."""
    return dim * math.log(l0 / (2.0 * math.pi * num_rotations)) / (2.0 * math.log(base))


def yarn_correction_range(dim, base, l0, beta_fast=32.0, beta_slow=1.0, truncate=True):
    """Returns (lo, hi, corr_fast, corr_slow) as in §2.4 (clamped to [0, dim-1])."""
    corr_fast = yarn_correction_dim(beta_fast, dim, base, l0)
    corr_slow = yarn_correction_dim(beta_slow, dim, base, l0)
    lo, hi = corr_fast, corr_slow
    if truncate:
        lo, hi = math.floor(lo), math.ceil(hi)
    lo = max(lo, 0)
    hi = min(hi, dim - 1)
    return lo, hi, corr_fast, corr_slow


def yarn_get_mscale(scale, k=1.0):
    return 1.0 if scale <= 1.0 else 0.1 * k * math.log(scale) + 1.0


def yarn_attention_factor(scale, attention_factor=None, mscale=None, mscale_all_dim=None):
    if attention_factor is not None:
        return float(attention_factor)
    if mscale and mscale_all_dim:
        return yarn_get_mscale(scale, mscale) / yarn_get_mscale(scale, mscale_all_dim)
    return yarn_get_mscale(scale)


def yarn_inv_freq(dim, base, scale, l0, beta_fast=32.0, beta_slow=1.0, truncate=True):
    """§2.4 static YaRN ("NTK-by-parts" ramp linear in the pair index c). Returns (inv_freq, m)."""
    lo, hi, _, _ = yarn_correction_range(dim, base, l0, beta_fast, beta_slow, truncate)
    if lo == hi:
        hi = hi + 0.001
    c = torch.arange(dim // 2, dtype=torch.float64)
    ramp = ((c - lo) / (hi - lo)).clamp(0.0, 1.0)
    extrap = 1.0 - ramp                       # weight of the untouched frequency
    p = base ** (2.0 * c / dim)
    inv = (1.0 / (scale * p)) * (1.0 - extrap) + (1.0 / p) * extrap
    return inv, yarn_attention_factor(scale)


def dynamic_yarn_scale_paper(seq_len, l_train):
    """§2.5, engine default: s = max(1, L / L_train)."""
    return max(1.0, seq_len / l_train)


def dynamic_yarn_scale_code(seq_len, l_train, factor):
    """Published-code reading (experiments.md §1.4): no scaling while L <= factor * L_train,
    above it s = L / L_train."""
    if seq_len <= factor * l_train:
        return 1.0
    return seq_len / l_train


def rope_cos_sin(inv_freq, seq_len, m):
    """cos/sin tables [seq_len, dim] in float64 (half-split layout: emb = concat(angle, angle)), times m."""
    pos = torch.arange(seq_len, dtype=torch.float64)
    ang = pos[:, None] * inv_freq.to(torch.float64)[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos() * m, emb.sin() * m
