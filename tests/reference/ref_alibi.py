"""ALiBi slopes and bias (spec models_and_pe.md §3), two independent derivations."""
import math

import torch


def slopes_press_log2(n):
    """Press et al. rule, as base-2 exponents: power of two -> -8(h+1)/n; otherwise
    exps(p) ++ exps(2p)[0::2][:n-p] with p = 2^floor(log2 n)."""
    def pow2(k):
        return [-8.0 * (h + 1) / k for h in range(k)]
    if n & (n - 1) == 0:
        return pow2(n)
    p = 2 ** int(math.floor(math.log2(n)))
    return pow2(p) + pow2(2 * p)[0::2][: n - p]


def slopes_press(n):
    """Slopes 2^e from the exact exponents (Press's code multiplies start*ratio^h, which can be 1 ulp off)."""
    return [2.0 ** e for e in slopes_press_log2(n)]


def slopes_mpt(n, alibi_bias_max=8):
    """MPT-style rule (re-derived from its description): with P = next power of two >= n,
    exponents (k+1)*max/P for k < P; if P != n take odd-indexed then even-indexed entries, first n."""
    big = 2 ** int(math.ceil(math.log2(n)))
    s = [2.0 ** (-(k + 1) * alibi_bias_max / big) for k in range(big)]
    if big != n:
        s = (s[1::2] + s[0::2])[:n]
    return s


def slopes_log2(n):
    """Exact exponents e_h with slope_h = 2^e_h (for the JSON)."""
    return slopes_press_log2(n)


def alibi_bias(slopes, seq_len, dtype=torch.float64):
    """[H, T, T] bias -m_h (i - j); entries with j > i are positive but are masked by the causal mask."""
    m = torch.tensor(slopes, dtype=dtype)
    i = torch.arange(seq_len, dtype=dtype)
    rel = i[:, None] - i[None, :]
    return -m[:, None, None] * rel[None, :, :]
