#!/usr/bin/env python3
"""Generate the independent reference fixtures for the icl engine.

    python3 tests/reference/gen_fixtures.py            # (re)write tests/reference/fixtures/
    python3 tests/reference/gen_fixtures.py --check    # regenerate into a temp dir, compare with the committed files
    python3 tests/reference/gen_fixtures.py --out DIR  # write somewhere else

Every fixture is computed in float64 (HF model .double() plus the float64_numerics() patches of
hf_models.py) from float32-representable weights and inputs, and stored as float32. Each one is
cross-checked, inside this script, against
  * the independent float64 re-derivations (ref_llama.py / ref_scan.py / ref_rope.py / ref_fire.py),
  * the unpatched HF code (fp32-internal numerics) where HF has the encoding,
  * causality (changing examples after i never changes pred[:, :i+1]),
  * cross-encoding identities (e.g. dynamic_yarn at L = L_train equals rope).
See README.md for the fixture layout.
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import transformers  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402
from transformers.models.mamba import modeling_mamba as mm  # noqa: E402

import hf_models  # noqa: E402
import ref_alibi  # noqa: E402
import ref_fire  # noqa: E402
import ref_rope  # noqa: E402
from ref_llama import icl_loss, llama_icl_forward  # noqa: E402
from ref_scan import mamba_icl_forward, selective_scan_ref  # noqa: E402

FORMAT = "icl-reference-fixture/1"
SIZE_LIMIT = 8 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# settings

LLAMA = dict(D=5, B=2, hidden=32, layers=2, heads=4, kv_heads=4, head_dim=8, intermediate=128,
             rms_norm_eps=1e-6, rope_theta=10000.0, L_train=16, factor=4.0)
FIRE_WIDTH = 32
MAMBA = dict(D=5, B=2, hidden=32, state=16, expand=2, d_inner=64, conv=4, dt_rank=2,
             layer_norm_epsilon=1e-5, dt_min=1e-3, dt_max=0.1, dt_init_floor=1e-4, dt_scale=1.0)

SEED_LLAMA_WEIGHTS = 1234
SEED_FIRE = 4321
SEED_MAMBA_WEIGHTS = 2345
SEED_INPUTS_BASE = 1000      # inputs for N use seed 1000 + N (shared by every encoding at that N)
SEED_BCE_LABELS_BASE = 5000  # +-1 labels for the BCE case
SEED_CAUSALITY = 777
SEED_SCAN_CHECK = 99

W_STD = 0.2
NORM_STD = 0.1

LLAMA_ENCODINGS = ["rope", "pi", "dynamic_ntk", "yarn", "dynamic_yarn", "dynamic_yarn_code",
                   "nope", "alibi", "fire", "fire_b", "fire_l10"]
LLAMA_LENGTHS = {e: [8, 20] for e in LLAMA_ENCODINGS}
LLAMA_LENGTHS["dynamic_yarn_code"] = [8, 20, 70]
MAMBA_CASES = [("mamba", 2, 24), ("mamba_l3", 3, 40)]

PRECISION_NOTE = ("computed in float64 (HF model .double(); RMSNorm, softmax, RoPE cos/sin and the Mamba scan "
                  "kept in float64 by hf_models.float64_numerics) from float32-representable weights and inputs; "
                  "stored as float32. RoPE inv_freq is HF's float32 buffer (stored as aux.rope.inv_freq); angles "
                  "p*inv_freq, cos, sin and the attention factor m are then applied in float64.")

TOL_REF = 1e-10      # independent float64 reference vs HF float64 (relative to max |value| of the tensor)
TOL_HF32 = 2e-5      # unpatched HF (fp32-internal numerics) vs fixture
TOL_SAME = 1e-13     # identities that must hold up to float64 round-off

VERBOSE = True


def log(*a):
    if VERBOSE:
        print(*a, flush=True)


def rel_err(a, b, floor=0.0):
    """max |a - b| / max(max |b|, floor). Gradient checks pass floor = the largest |grad| of the whole
    fixture, because some gradients are exactly zero in exact arithmetic (e.g. FIRE's mlp.2.bias: softmax
    is shift-invariant per row) and hold only float64 round-off."""
    a = torch.as_tensor(a).detach().to(torch.float64)
    b = torch.as_tensor(b).detach().to(torch.float64)
    scale = max(float(b.abs().max()) if b.numel() else 0.0, floor, 1e-30)
    return float((a - b).abs().max()) / scale if a.numel() else 0.0


def grad_scale(grads):
    return max(float(g.detach().abs().max()) for g in grads.values())


def assert_close(a, b, tol, what, floor=0.0):
    e = rel_err(a, b, floor)
    if not e <= tol:
        raise AssertionError(f"{what}: relative error {e:.3e} > {tol:.1e}")
    return e


def f32(t):
    return t.detach().to(torch.float32).contiguous()


# ---------------------------------------------------------------------------------------------
# deterministic weights and inputs (all float32 values; the model runs on their exact float64 copies)

def llama_param_shapes(c):
    hid, F_, H, hd = c["hidden"], c["intermediate"], c["heads"], c["head_dim"]
    shapes = {}
    for l in range(c["layers"]):
        p = f"layers.{l}."
        shapes[p + "self_attn.q_proj.weight"] = (H * hd, hid)
        shapes[p + "self_attn.k_proj.weight"] = (c["kv_heads"] * hd, hid)
        shapes[p + "self_attn.v_proj.weight"] = (c["kv_heads"] * hd, hid)
        shapes[p + "self_attn.o_proj.weight"] = (hid, H * hd)
        shapes[p + "mlp.gate_proj.weight"] = (F_, hid)
        shapes[p + "mlp.up_proj.weight"] = (F_, hid)
        shapes[p + "mlp.down_proj.weight"] = (hid, F_)
        shapes[p + "input_layernorm.weight"] = (hid,)
        shapes[p + "post_attention_layernorm.weight"] = (hid,)
    shapes["norm.weight"] = (hid,)
    shapes["read_in.weight"] = (hid, c["D"])
    shapes["read_out.weight"] = (1, hid)
    return shapes


def llama_weights(c):
    """Linear weights ~ N(0, 0.2^2), norm weights 1 + N(0, 0.1^2); drawn in the fixed order above."""
    g = torch.Generator().manual_seed(SEED_LLAMA_WEIGHTS)
    w = {}
    for name, shape in llama_param_shapes(c).items():
        if name.endswith("norm.weight"):
            w[name] = (1.0 + NORM_STD * torch.randn(shape, generator=g, dtype=torch.float64)).float()
        else:
            w[name] = (W_STD * torch.randn(shape, generator=g, dtype=torch.float64)).float()
    return w


def fire_weights(c):
    """PyTorch default nn.Linear init U(+-1/sqrt(fan_in)) for weights and biases, c = 0.1, L_multiplier = 1."""
    g = torch.Generator().manual_seed(SEED_FIRE)
    W, H = FIRE_WIDTH, c["heads"]

    def unif(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return ((torch.rand(shape, generator=g, dtype=torch.float64) * 2.0 - 1.0) * bound).float()

    w = {}
    for l in range(c["layers"]):
        p = f"layers.{l}.self_attn.fire."
        w[p + "mlp.0.weight"] = unif((W, 1), 1)
        w[p + "mlp.0.bias"] = unif((W,), 1)
        w[p + "mlp.2.weight"] = unif((H, W), W)
        w[p + "mlp.2.bias"] = unif((H,), W)
        w[p + "c"] = torch.tensor([0.1], dtype=torch.float32)
        w[p + "L_multiplier"] = torch.tensor([1.0], dtype=torch.float32)
    return w


def mamba_weights(c, layers):
    """in_proj/x_proj/out_proj ~ N(0, 0.2^2); conv1d weight and bias U(+-1/sqrt(K)) (PyTorch default);
    dt_proj.weight U(+-dt_rank^-0.5); dt_proj.bias = softplus^-1(dt), dt log-uniform in [1e-3, 0.1]
    (floor 1e-4); A_log = ln(1..16); D = 1; norm weights 1 + N(0, 0.1^2); read_in/read_out N(0, 0.2^2)."""
    g = torch.Generator().manual_seed(SEED_MAMBA_WEIGHTS + layers)
    hid, E, N, K, R = c["hidden"], c["d_inner"], c["state"], c["conv"], c["dt_rank"]

    def normal(shape, std):
        return (std * torch.randn(shape, generator=g, dtype=torch.float64)).float()

    def unif(shape, bound):
        return ((torch.rand(shape, generator=g, dtype=torch.float64) * 2.0 - 1.0) * bound).float()

    w = {}
    for l in range(layers):
        p = f"layers.{l}."
        w[p + "norm.weight"] = (1.0 + normal((hid,), NORM_STD).double()).float()
        m = p + "mixer."
        w[m + "in_proj.weight"] = normal((2 * E, hid), W_STD)
        w[m + "conv1d.weight"] = unif((E, 1, K), 1.0 / math.sqrt(K))
        w[m + "conv1d.bias"] = unif((E,), 1.0 / math.sqrt(K))
        w[m + "x_proj.weight"] = normal((R + 2 * N, E), W_STD)
        w[m + "dt_proj.weight"] = unif((E, R), c["dt_scale"] * R ** -0.5)
        u = torch.rand((E,), generator=g, dtype=torch.float64)
        dt = torch.exp(u * (math.log(c["dt_max"]) - math.log(c["dt_min"])) + math.log(c["dt_min"]))
        dt = dt.clamp(min=c["dt_init_floor"])
        w[m + "dt_proj.bias"] = (dt + torch.log(-torch.expm1(-dt))).float()
        w[m + "A_log"] = torch.log(torch.arange(1, N + 1, dtype=torch.float64)).float().expand(E, N).contiguous()
        w[m + "D"] = torch.ones(E, dtype=torch.float32)
        w[m + "out_proj.weight"] = normal((hid, E), W_STD)
    w["norm_f.weight"] = (1.0 + normal((hid,), NORM_STD).double()).float()
    w["read_in.weight"] = normal((hid, c["D"]), W_STD)
    w["read_out.weight"] = normal((1, hid), W_STD)
    return w


def make_inputs(B, N, D, bce=False):
    g = torch.Generator().manual_seed(SEED_INPUTS_BASE + N)
    xs = torch.randn((B, N, D), generator=g, dtype=torch.float64).float()
    ys = torch.randn((B, N), generator=g, dtype=torch.float64).float()
    if bce:
        gb = torch.Generator().manual_seed(SEED_BCE_LABELS_BASE + N)
        ys = (torch.randint(0, 2, (B, N), generator=gb) * 2 - 1).float()
    return xs, ys


# ---------------------------------------------------------------------------------------------
# encodings

def encoding_setup(enc, T):
    """HF rope config + the independent reference's PE description for a forward of T tokens."""
    c = LLAMA
    hd, b, Lt, f = c["head_dim"], c["rope_theta"], c["L_train"], c["factor"]
    default = {"rope_type": "default", "rope_theta": b}
    s = {"rotate": True, "kind": "plain", "factor": None, "scale_used": 1.0, "fire": None, "loss": "mse"}
    if enc == "rope":
        s.update(rope=default, max_pos=Lt, ref_inv=ref_rope.default_inv_freq(hd, b), ref_m=1.0)
    elif enc == "pi":
        s.update(rope={"rope_type": "linear", "factor": f, "rope_theta": b}, max_pos=Lt, factor=f, scale_used=f,
                 ref_inv=ref_rope.linear_inv_freq(hd, b, f), ref_m=1.0)
    elif enc == "dynamic_ntk":
        base = ref_rope.dynamic_ntk_base(b, hd, f, T, Lt)
        s.update(rope={"rope_type": "dynamic", "factor": f, "rope_theta": b}, max_pos=Lt, factor=f,
                 scale_used=(f * T / Lt - (f - 1.0)) if T > Lt else 1.0, ntk_base=base,
                 ref_inv=ref_rope.dynamic_ntk_inv_freq(hd, b, f, T, Lt), ref_m=1.0)
    elif enc == "yarn":
        inv, m = ref_rope.yarn_inv_freq(hd, b, f, Lt)
        s.update(rope={"rope_type": "yarn", "factor": f, "original_max_position_embeddings": Lt, "rope_theta": b},
                 max_pos=int(f * Lt), factor=f, scale_used=f, ref_inv=inv, ref_m=m)
    elif enc in ("dynamic_yarn", "dynamic_yarn_code"):
        if enc == "dynamic_yarn":
            sc = ref_rope.dynamic_yarn_scale_paper(T, Lt)
        else:
            sc = ref_rope.dynamic_yarn_scale_code(T, Lt, f)
        inv, m = ref_rope.yarn_inv_freq(hd, b, sc, Lt)
        if enc == "dynamic_yarn_code" and sc == 1.0:
            rope, max_pos = default, Lt          # the code reading computes plain RoPE below its threshold
        else:
            max_pos = int(round(sc * Lt))        # §2.4 parity config: max_position_embeddings = s * L0
            assert max_pos == sc * Lt
            rope = {"rope_type": "yarn", "factor": sc, "original_max_position_embeddings": Lt, "rope_theta": b}
        s.update(rope=rope, max_pos=max_pos, factor=f, scale_used=sc, ref_inv=inv, ref_m=m,
                 dynamic_yarn_reading="paper" if enc == "dynamic_yarn" else "code")
    elif enc in ("nope", "nope_bce"):
        s.update(rope=default, max_pos=Lt, rotate=False, loss="bce" if enc == "nope_bce" else "mse")
    elif enc == "alibi":
        s.update(rope=default, max_pos=Lt, rotate=False, kind="alibi", slopes=ref_alibi.slopes_press(c["heads"]))
    elif enc in ("fire", "fire_b", "fire_l10"):
        s.update(rope=default, max_pos=Lt, rotate=False, kind="fire",
                 fire={"width": FIRE_WIDTH, "convention": "B" if enc == "fire_b" else "A",
                       "init_L": 10.0 if enc == "fire_l10" else 512.0, "init_c": 0.1, "init_L_multiplier": 1.0,
                       "eps": 1e-6, "per_layer": True,
                       "init": "PyTorch default nn.Linear init U(+-1/sqrt(fan_in)) for mlp.0/mlp.2 weight and bias",
                       "threshold": "thr = |L_multiplier * init_L|; m_i = max(i, thr)",
                       "tie_rule": ("torch.maximum splits the gradient 1/2 where i == thr; here thr = 10 is a "
                                    "position (i = 10), so grad.*.fire.L_multiplier includes that half-weighted row")
                       if enc == "fire_l10" else "no position equals thr"})
    else:
        raise ValueError(enc)
    return s


def ref_pe(s, inv_freq=None, m=None):
    if not s["rotate"]:
        if s["kind"] == "alibi":
            return ("alibi", s["slopes"])
        if s["kind"] == "fire":
            return ("fire", s["fire"]["convention"], s["fire"]["init_L"])
        return ("none",)
    return ("rope", s["ref_inv"] if inv_freq is None else inv_freq, s["ref_m"] if m is None else m)


# ---------------------------------------------------------------------------------------------
# llama fixtures

def run_llama_hf(s, weights, xs, ys, attn=False, f64=True, bias_hook=None):
    """Returns (model, pred, loss, grads dict, attentions, inv_freq, m)."""
    eager = None
    if f64 or s["kind"] != "plain":
        eager = hf_models.make_eager(s["kind"], slopes=s.get("slopes"),
                                     fire_conv=(s["fire"] or {}).get("convention", "A"), bias_hook=bias_hook)
    ctx64 = hf_models.float64_numerics() if f64 else _null()
    with ctx64, hf_models.pe_patch(s["rotate"], eager):
        model = hf_models.build_llama(LLAMA, s["rope"], s["max_pos"], weights, fire=s["fire"])
        pred, atts = model(xs.double(), ys.double(), output_attentions=attn)
        loss = icl_loss(pred, ys.double(), s["loss"])
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.fixture_parameters().items()}
        inv = model.backbone.rotary_emb.inv_freq.detach().clone()
        m = float(model.backbone.rotary_emb.attention_scaling)
    return model, pred.detach(), loss.detach(), grads, atts, inv, m


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def check_causality_llama(s, model, xs, ys, pred, what):
    g = torch.Generator().manual_seed(SEED_CAUSALITY)
    N = xs.shape[1]
    eager = hf_models.make_eager(s["kind"], slopes=s.get("slopes"),
                                 fire_conv=(s["fire"] or {}).get("convention", "A"))
    with hf_models.float64_numerics(), hf_models.pe_patch(s["rotate"], eager), torch.no_grad():
        for i in sorted({0, 1, N // 2, N - 2, N - 1}):
            xs2, ys2 = xs.double().clone(), ys.double().clone()
            xs2[:, i + 1:] = torch.randn(xs2[:, i + 1:].shape, generator=g, dtype=torch.float64)
            ys2[:, i:] = torch.randn(ys2[:, i:].shape, generator=g, dtype=torch.float64)   # y_i comes after x_i
            p2, _ = model(xs2, ys2)
            d = float((p2[:, :i + 1] - pred[:, :i + 1]).abs().max())
            assert d <= 1e-12, f"{what}: causality violated at i={i} ({d:.3e})"
            if i < N - 1:
                assert float((p2[:, i + 1:] - pred[:, i + 1:]).abs().max()) > 1e-6, f"{what}: perturbation inert"


def llama_case(enc, N, out_dir, results):
    c = LLAMA
    T = 2 * N
    s = encoding_setup(enc, T)
    what = f"llama {enc} N={N}"
    weights = dict(llama_weights(c))
    if s["fire"] is not None:
        weights.update(fire_weights(c))
    xs, ys = make_inputs(c["B"], N, c["D"], bce=(s["loss"] == "bce"))
    want_attn = (N == 8)

    captured = {}

    def bias_hook(layer, b):
        if b.requires_grad:
            b.register_hook(lambda g, layer=layer: captured.__setitem__(layer, g.detach().clone()))

    model, pred, loss, grads, atts, inv, m = run_llama_hf(s, weights, xs, ys, attn=True, bias_hook=bias_hook)
    checks = {}

    # --- RoPE parameters: HF vs independent float64 derivation
    if s["rotate"]:
        checks["inv_freq_vs_ref"] = assert_close(inv, s["ref_inv"], 2e-7, what + " inv_freq")
        assert abs(m - s["ref_m"]) < 1e-12, (what, m, s["ref_m"])

    # --- independent float64 model (same weights; RoPE from HF's fp32 inv_freq buffer for a tight check)
    p = {n: w.double().requires_grad_() for n, w in weights.items()}
    rpred, rprobs = llama_icl_forward(p, {**c, "layers": c["layers"]}, xs.double(), ys.double(),
                                      ref_pe(s, inv_freq=inv.double(), m=s.get("ref_m")))
    rloss = icl_loss(rpred, ys.double(), s["loss"])
    rgrads = torch.autograd.grad(rloss, list(p.values()))
    checks["pred_vs_ref"] = assert_close(pred, rpred, TOL_REF, what + " pred vs ref_llama")
    checks["loss_vs_ref"] = assert_close(loss, rloss, TOL_REF, what + " loss vs ref_llama")
    gs = grad_scale(grads)
    checks["grad_vs_ref"] = max(assert_close(grads[n], g, TOL_REF, f"{what} grad {n} vs ref_llama", gs)
                                for n, g in zip(p, rgrads))
    checks["attn_vs_ref"] = max(assert_close(a, b, TOL_REF, f"{what} attn {l}")
                                for l, (a, b) in enumerate(zip(atts, rprobs)))
    if s["rotate"]:
        # fully independent: the reference's own float64 inv_freq and m
        with torch.no_grad():
            rp2, _ = llama_icl_forward(p, c, xs.double(), ys.double(), ref_pe(s))
        checks["pred_vs_ref_own_inv_freq"] = assert_close(pred, rp2, 1e-5, what + " pred vs ref (own inv_freq)")

    # --- unpatched HF numerics (fp32 RMSNorm / softmax / RoPE tables inside a double model)
    if s["kind"] == "plain":
        _, p32, l32, g32, _, inv32, _ = run_llama_hf(s, weights, xs, ys, f64=False)
        checks["pred_vs_hf_native"] = assert_close(p32, pred, TOL_HF32, what + " pred vs native HF")
        checks["loss_vs_hf_native"] = assert_close(l32, loss, TOL_HF32, what + " loss vs native HF")
        checks["grad_vs_hf_native"] = max(assert_close(g32[n], grads[n], 10 * TOL_HF32, f"{what} grad {n} native",
                                                       gs) for n in grads)
        assert torch.equal(inv32, inv), what

    # --- FIRE: closed-form dc / dL_mult (spec §7.3) from the captured dLoss/dBias
    if s["kind"] == "fire":
        for l in range(c["layers"]):
            pre = f"layers.{l}.self_attn.fire."
            dc, dlm = ref_fire.fire_scalar_grads(
                captured[l], float(weights[pre + "c"]), float(weights[pre + "L_multiplier"]), s["fire"]["init_L"],
                weights[pre + "mlp.0.weight"].double()[:, 0], weights[pre + "mlp.0.bias"].double(),
                weights[pre + "mlp.2.weight"].double())
            assert_close(torch.tensor([dc]), grads[pre + "c"], 1e-9, f"{what} FIRE dc closed form layer {l}", gs)
            assert_close(torch.tensor([dlm]), grads[pre + "L_multiplier"], 1e-9,
                         f"{what} FIRE dL_mult closed form layer {l}", gs)
            checks[f"fire_closed_form_layer{l}"] = [dc, dlm]

    check_causality_llama(s, model, xs, ys, pred, what)
    checks["causality"] = "ok"
    results[(enc, N)] = dict(pred=pred, loss=loss, grads=grads)

    if out_dir is None:
        return None

    # --- write
    tensors = {n: f32(w) for n, w in weights.items()}
    tensors["input.xs"] = f32(xs)
    tensors["input.ys"] = f32(ys)
    tensors["expected.pred"] = f32(pred)
    tensors["expected.loss"] = f32(loss.reshape(()))
    for n, g in grads.items():
        tensors["grad." + n] = f32(g)
    if want_attn:
        for l, a in enumerate(atts):
            tensors[f"expected.attn.{l}"] = f32(a)
    if s["rotate"]:
        tensors["aux.rope.inv_freq"] = f32(inv)
    if s["kind"] == "alibi":
        tensors["aux.alibi.slopes"] = torch.tensor(s["slopes"], dtype=torch.float32)

    cfgj = base_meta("llama", enc, N, f"llama_{enc}_n{N}")
    cfgj.update({k: c[k] for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate",
                                   "rms_norm_eps", "rope_theta", "L_train")})
    cfgj.update({
        "block": "h += Attn(RMSNorm_in(h)); h += SwiGLU(RMSNorm_post(h)); final RMSNorm (HF LlamaModel)",
        "hidden_act": "silu", "attention": "eager (bias added after the 1/sqrt(head_dim) scaling unless stated)",
        "factor": s["factor"],
        "rotary": s["rotate"],
        "hf_rope_parameters": s["rope"], "hf_max_position_embeddings": s["max_pos"],
        "rope": ({"scale_used": s["scale_used"], "attention_scaling": m,
                  "inv_freq": [float(v) for v in f32(inv)],
                  "dynamic_yarn_reading": s.get("dynamic_yarn_reading"),
                  "code_threshold_tokens": (c["factor"] * c["L_train"] if enc == "dynamic_yarn_code" else None),
                  "ntk_base": s.get("ntk_base")} if s["rotate"] else None),
        "alibi": ({"slopes": s["slopes"], "bias": "-m_h*(i-j) added after 1/sqrt(head_dim)"}
                  if s["kind"] == "alibi" else None),
        "fire": s["fire"],
        "loss": s["loss"],
        "loss_formula": ("mean over B*N of (pred - y)^2" if s["loss"] == "mse"
                         else "mean over B*N of softplus(-y*pred), y in {-1,+1}"),
        "seeds": {"weights": SEED_LLAMA_WEIGHTS, "fire": SEED_FIRE if s["fire"] else None,
                  "inputs": SEED_INPUTS_BASE + N,
                  "bce_labels": SEED_BCE_LABELS_BASE + N if s["loss"] == "bce" else None},
        "init": {"linear": f"N(0, {W_STD}^2)", "norm": f"1 + N(0, {NORM_STD}^2)",
                 "inputs": "xs ~ N(0,1), ys ~ N(0,1) (bce: ys uniform in {-1,+1})"},
        "attn_probs_included": want_attn,
        "checks": checks,
    })
    write_fixture(out_dir, f"llama_{enc}_n{N}", tensors, cfgj, weights)
    return s


# ---------------------------------------------------------------------------------------------
# mamba fixtures

def check_scan_vs_hf():
    """HF's torch selective scan vs ref_scan.selective_scan_ref on random float64 inputs."""
    g = torch.Generator().manual_seed(SEED_SCAN_CHECK)
    B, E, N, L = 2, 64, 16, 48
    u = torch.randn(B, E, L, generator=g, dtype=torch.float64)
    draw = torch.randn(B, E, L, generator=g, dtype=torch.float64)
    A = -torch.exp(torch.log(torch.arange(1, N + 1, dtype=torch.float64)).expand(E, N))
    Bm = torch.randn(B, N, L, generator=g, dtype=torch.float64)
    Cm = torch.randn(B, N, L, generator=g, dtype=torch.float64)
    D = torch.randn(E, generator=g, dtype=torch.float64)
    z = torch.randn(B, E, L, generator=g, dtype=torch.float64)
    bias = torch.randn(E, generator=g, dtype=torch.float64) - 3.0
    ref = selective_scan_ref(u, draw, A, Bm, Cm, D, z, bias)

    def hf():
        return mm.mamba_selective_scan(u, draw, A, Bm, Cm, D=D, z=z, delta_bias=bias, delta_softplus=True,
                                       use_mambapy=False, use_associative_scan=False)
    e_native = assert_close(hf(), ref, 1e-5, "HF mamba_selective_scan (native) vs selective_scan_ref")
    with hf_models.float64_numerics():
        e64 = assert_close(hf(), ref, 1e-12, "HF mamba_selective_scan (float64) vs selective_scan_ref")
    log(f"  scan check: native {e_native:.2e}, float64 {e64:.2e}")
    return {"native_rel_err": e_native, "float64_rel_err": e64}


def mamba_case(name, layers, N, out_dir, scan_check):
    import importlib.util
    for pkg in ("mamba_ssm", "causal_conv1d", "kernels", "mambapy"):
        assert importlib.util.find_spec(pkg) is None, f"{pkg} installed: the HF slow path would not be used"
    c = dict(MAMBA, layers=layers)
    what = f"{name} N={N}"
    weights = mamba_weights(c, layers)
    xs, ys = make_inputs(c["B"], N, c["D"])

    def run(f64, residual_in_fp32):
        ctx = hf_models.float64_numerics() if f64 else _null()
        with ctx:
            model = hf_models.build_mamba(c, weights, residual_in_fp32=residual_in_fp32)
            assert next(model.parameters()).device.type == "cpu" and not model.training
            pred, _ = model(xs.double(), ys.double())
            loss = icl_loss(pred, ys.double(), "mse")
            loss.backward()
            grads = {n: p.grad.detach().clone() for n, p in model.fixture_parameters().items()}
        return model, pred.detach(), loss.detach(), grads

    model, pred, loss, grads = run(True, False)
    checks = {"scan_vs_hf": scan_check}
    p = {n: w.double().requires_grad_() for n, w in weights.items()}
    rpred = mamba_icl_forward(p, c, xs.double(), ys.double())
    rloss = icl_loss(rpred, ys.double(), "mse")
    rgrads = torch.autograd.grad(rloss, list(p.values()))
    checks["pred_vs_ref"] = assert_close(pred, rpred, TOL_REF, what + " pred vs ref_scan")
    checks["loss_vs_ref"] = assert_close(loss, rloss, TOL_REF, what + " loss vs ref_scan")
    gs = grad_scale(grads)
    checks["grad_vs_ref"] = max(assert_close(grads[n], g, TOL_REF, f"{what} grad {n} vs ref_scan", gs)
                                for n, g in zip(p, rgrads))
    _, p32, l32, g32 = run(False, True)      # HF as shipped: fp32 casts, residual_in_fp32=True
    checks["pred_vs_hf_native"] = assert_close(p32, pred, 1e-5, what + " pred vs native HF")
    checks["loss_vs_hf_native"] = assert_close(l32, loss, 1e-5, what + " loss vs native HF")
    checks["grad_vs_hf_native"] = max(assert_close(g32[n], grads[n], 1e-5, f"{what} grad {n} native", gs)
                                      for n in grads)

    gen = torch.Generator().manual_seed(SEED_CAUSALITY)
    with hf_models.float64_numerics(), torch.no_grad():
        for i in sorted({0, 1, N // 2, N - 2, N - 1}):
            xs2, ys2 = xs.double().clone(), ys.double().clone()
            xs2[:, i + 1:] = torch.randn(xs2[:, i + 1:].shape, generator=gen, dtype=torch.float64)
            ys2[:, i:] = torch.randn(ys2[:, i:].shape, generator=gen, dtype=torch.float64)
            p2, _ = model(xs2, ys2)
            assert float((p2[:, :i + 1] - pred[:, :i + 1]).abs().max()) <= 1e-12, f"{what}: causality at i={i}"
    checks["causality"] = "ok"

    tensors = {n: f32(w) for n, w in weights.items()}
    tensors["input.xs"] = f32(xs)
    tensors["input.ys"] = f32(ys)
    tensors["expected.pred"] = f32(pred)
    tensors["expected.loss"] = f32(loss.reshape(()))
    for n, g in grads.items():
        tensors["grad." + n] = f32(g)
    cfgj = base_meta("mamba", "none", N, f"{name}_n{N}")
    cfgj.update({
        "hidden": c["hidden"], "layers": layers,
        "block": "r += MambaMixer(RMSNorm(r)); final RMSNorm norm_f (HF MambaModel)",
        "mamba": {k: c[k] for k in ("state", "expand", "d_inner", "conv", "dt_rank", "layer_norm_epsilon",
                                    "dt_min", "dt_max", "dt_init_floor", "dt_scale")},
        "hf_mamba_config": {"use_bias": False, "use_conv_bias": True, "hidden_act": "silu",
                            "time_step_rank": "auto", "residual_in_fp32": False, "use_mambapy": False,
                            "use_associative_scan": False, "path": "HF torch slow path (recurrent loop) on CPU"},
        "loss": "mse", "loss_formula": "mean over B*N of (pred - y)^2",
        "seeds": {"weights": SEED_MAMBA_WEIGHTS + layers, "inputs": SEED_INPUTS_BASE + N},
        "init": {"in_proj/x_proj/out_proj/read_in/read_out": f"N(0, {W_STD}^2)",
                 "conv1d.weight/bias": "U(+-1/sqrt(conv)) = U(+-0.5)",
                 "dt_proj.weight": "U(+-dt_rank^-0.5 * dt_scale)",
                 "dt_proj.bias": "dt + log(-expm1(-dt)), dt = exp(U(0,1)*(ln 0.1 - ln 1e-3) + ln 1e-3) clamped >= 1e-4",
                 "A_log": "ln(1..state) for every channel", "D": "1",
                 "norm": f"1 + N(0, {NORM_STD}^2)", "inputs": "xs ~ N(0,1), ys ~ N(0,1)"},
        "attn_probs_included": False,
        "checks": checks,
    })
    write_fixture(out_dir, f"{name}_n{N}", tensors, cfgj, weights)


# ---------------------------------------------------------------------------------------------
# writing

def base_meta(model, enc, N, case):
    c = LLAMA if model == "llama" else MAMBA
    return {
        "format": FORMAT, "case": case, "model": model, "encoding": enc,
        "D": c["D"], "B": c["B"], "N": N, "T": 2 * N,
        "token_layout": "token 2i = x_i, token 2i+1 = (y_i, 0, ..., 0); pred[b,i] = read_out(h[b, 2i])",
        "read_in": "Linear(D -> hidden, no bias)", "read_out": "Linear(hidden -> 1, no bias)",
        "loss_shape": [],
        "precision": PRECISION_NOTE,
        "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        "python_version": platform.python_version(),
        "generator": "tests/reference/gen_fixtures.py",
    }


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    return o


def write_fixture(out_dir, stem, tensors, cfgj, weights):
    cfgj["param_names"] = list(weights)
    cfgj["tensor_groups"] = {"params": "names without a prefix", "input.": "xs [B,N,D], ys [B,N]",
                             "expected.": "pred [B,N], loss [] (0-dim), attn.{layer} [B,H,T,T]",
                             "grad.": "dLoss/dparam for every param", "aux.": "derived constants, not parameters"}
    meta = {"config": json.dumps(_jsonable(cfgj), sort_keys=True), "format": FORMAT}
    path = os.path.join(out_dir, stem + ".safetensors")
    save_file(tensors, path, metadata=meta)
    log(f"  wrote {stem}.safetensors ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


# ---------------------------------------------------------------------------------------------
# scalar test vectors (slopes_and_vectors.json)

def hf_inv_freq(rope_type, head_dim, rope_parameters, max_pos, seq_len=None):
    from transformers import LlamaConfig
    cfg = LlamaConfig(vocab_size=1, hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim,
                      max_position_embeddings=max_pos, rope_parameters=dict(rope_parameters),
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    kw = {} if seq_len is None else {"seq_len": torch.tensor(seq_len)}
    inv, m = ROPE_INIT_FUNCTIONS[rope_type](cfg, None, **kw)
    return inv.double(), float(m)


def vectors():
    out = {"format": FORMAT + ":vectors", "transformers_version": transformers.__version__,
           "torch_version": torch.__version__}

    # ALiBi (spec §3)
    sl = {}
    for n in range(1, 17):
        a = ref_alibi.slopes_press(n)
        assert all(abs(x - y) <= 1e-15 * x for x, y in zip(a, ref_alibi.slopes_mpt(n))), n
        sl[str(n)] = {"slopes": a, "log2": ref_alibi.slopes_log2(n)}
    for n in range(17, 200):
        assert all(abs(x - y) <= 1e-15 * x for x, y in zip(ref_alibi.slopes_press(n), ref_alibi.slopes_mpt(n))), n
    spec = {4: [-2, -4, -6, -8], 6: [-2, -4, -6, -8, -1, -3], 8: [-1, -2, -3, -4, -5, -6, -7, -8],
            12: [-1, -2, -3, -4, -5, -6, -7, -8, -0.5, -1.5, -2.5, -3.5],
            16: [-0.5 * k for k in range(1, 17)]}
    for n, ex in spec.items():
        assert all(abs(a - b) < 1e-12 for a, b in zip(sl[str(n)]["log2"], ex)), (n, sl[str(n)]["log2"])
    out["alibi_slopes"] = sl
    out["alibi_examples_log2"] = {str(k): v for k, v in spec.items()}

    # YaRN worked values (spec §2.4)
    yw = []
    cases = [
        dict(D=64, base=1e4, L0=2048, s=4.0, lo=8, hi=21, m=1.1386294361, corr=(8.064, 20.105),
             inv={0: 1.0, 8: 0.1, 9: 0.07066311, 20: 9.730085e-4, 21: 5.928434e-4, 31: 3.333804e-5}),
        dict(D=128, base=1e4, L0=4096, s=16.0, lo=20, hi=46, m=1.2772588722, corr=None, inv={}),
        dict(D=64, base=1e4, L0=1024, s=2.0, lo=5, hi=18, m=1.0693147181, corr=None, inv={}),
    ]
    for cs in cases:
        lo, hi, cf, cslow = ref_rope.yarn_correction_range(cs["D"], cs["base"], cs["L0"])
        assert (lo, hi) == (cs["lo"], cs["hi"]), (cs, lo, hi)
        if cs["corr"]:
            assert abs(cf - cs["corr"][0]) < 1e-3 and abs(cslow - cs["corr"][1]) < 1e-3, (cf, cslow)
        inv, m = ref_rope.yarn_inv_freq(cs["D"], cs["base"], cs["s"], cs["L0"])
        assert abs(m - cs["m"]) < 1e-9, (m, cs["m"])
        # HF 5.x with the §2.4 parity config: max_position_embeddings = s*L0
        rp = {"rope_type": "yarn", "factor": cs["s"], "original_max_position_embeddings": cs["L0"],
              "rope_theta": cs["base"]}
        hinv, hm = hf_inv_freq("yarn", cs["D"], rp, int(cs["s"] * cs["L0"]))
        assert abs(hm - m) < 1e-12
        assert rel_err(hinv, inv) < 2e-7, rel_err(hinv, inv)
        # HF with max_position_embeddings = L0 (implicit factor 1): explicit factor is used as given
        hinv2, hm2 = hf_inv_freq("yarn", cs["D"], rp, cs["L0"])
        assert torch.equal(hinv2, hinv) and hm2 == hm
        for k, v in cs["inv"].items():
            assert abs(inv[k] - v) <= 1e-6 * v, (k, float(inv[k]), v)
            assert abs(hinv[k] - v) <= 1e-6 * v, (k, float(hinv[k]), v)
        yw.append({"D": cs["D"], "base": cs["base"], "L0": cs["L0"], "s": cs["s"], "corr_fast": cf,
                   "corr_slow": cslow, "lo": lo, "hi": hi, "m": m, "inv_freq_f64": inv.tolist(),
                   "inv_freq_hf_fp32": hinv.tolist(), "spec_values": {str(k): v for k, v in cs["inv"].items()}})
    out["yarn_worked"] = yw

    # Dynamic NTK (spec §2.3)
    nt = []
    for L, want in ((4096, 31082.24), (8192, 74534.83)):
        b = ref_rope.dynamic_ntk_base(1e4, 64, 2.0, L, 2048)
        assert abs(b - want) < 0.01, (L, b)
        hinv, _ = hf_inv_freq("dynamic", 64, {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}, 2048, L)
        assert rel_err(hinv, ref_rope.default_inv_freq(64, b)) < 2e-6
        nt.append({"D": 64, "base": 1e4, "max_position_embeddings": 2048, "factor": 2.0, "L": L, "base_scaled": b,
                   "inv_freq_f64": ref_rope.default_inv_freq(64, b).tolist(), "inv_freq_hf_fp32": hinv.tolist()})
    out["dynamic_ntk"] = nt

    # FIRE u (spec §4)
    fu = []
    for (i, j, want) in ((5, 0, 0.102517), (100, 50, 0.453027), (511, 0, 0.999515), (1000, 0, 1.000000),
                         (4095, 4000, 0.390764), (0, 0, 0.0)):
        u = ref_fire.fire_u(i, j, 0.1, 512.0)
        assert abs(u - want) < 1e-6, (i, j, u)
        fu.append({"i": i, "j": j, "c": 0.1, "L": 512.0, "eps": 1e-6, "u": u, "spec": want})
    # module version agrees with the scalar one
    fm = ref_fire.FIRE(4).double()
    with torch.no_grad():
        fm.c.fill_(0.1)           # the float32-born parameter is 0.1f; use the exact double here
        um = fm.u(4096)
    for e in fu:
        if e["i"] < 4096:
            assert abs(float(um[e["i"], e["j"]]) - e["u"]) < 1e-12
    out["fire_u"] = fu

    # the small fixture configuration: inv_freq / m per encoding and length
    c = LLAMA
    small = {}
    for enc in ("rope", "pi", "dynamic_ntk", "yarn", "dynamic_yarn", "dynamic_yarn_code"):
        for N in (8, 20, 70):
            s = encoding_setup(enc, 2 * N)
            lo, hi, _, _ = ref_rope.yarn_correction_range(c["head_dim"], c["rope_theta"], c["L_train"])
            small[f"{enc}_T{2 * N}"] = {"scale_used": s["scale_used"], "m": s["ref_m"],
                                        "inv_freq_f64": s["ref_inv"].tolist(),
                                        "yarn_lo_hi": [lo, hi] if "yarn" in enc else None,
                                        "ntk_base": s.get("ntk_base")}
    out["small_config_rope"] = {"head_dim": c["head_dim"], "rope_theta": c["rope_theta"], "L_train": c["L_train"],
                                "factor": c["factor"], "values": small}
    return out


# ---------------------------------------------------------------------------------------------
# driver

def cross_identities(results):
    """Identities between encodings (all in float64 before the float32 store)."""
    def same(a, b, what):
        ra, rb = results[a], results[b]
        assert_close(ra["pred"], rb["pred"], TOL_SAME, what + " pred")
        assert_close(ra["loss"], rb["loss"], TOL_SAME, what + " loss")
        gs = grad_scale(rb["grads"])
        for n in rb["grads"]:
            assert_close(ra["grads"][n], rb["grads"][n], TOL_SAME, f"{what} grad {n}", gs)

    def differ(a, b, what):
        assert rel_err(results[a]["pred"], results[b]["pred"]) > 1e-4, what + " unexpectedly equal"

    same(("dynamic_yarn", 8), ("rope", 8), "dynamic_yarn(L=16) == rope")
    same(("dynamic_yarn_code", 8), ("rope", 8), "dynamic_yarn_code(L=16) == rope")
    same(("dynamic_yarn_code", 20), ("rope", 20), "dynamic_yarn_code(L=40) == rope")
    same(("dynamic_ntk", 8), ("rope", 8), "dynamic_ntk(L=16) == rope")
    same(("dynamic_yarn", 70), ("dynamic_yarn_code", 70), "dynamic_yarn(L=140) == dynamic_yarn_code(L=140)")
    for a, b in ((("pi", 8), ("rope", 8)), (("yarn", 8), ("rope", 8)), (("dynamic_yarn", 20), ("rope", 20)),
                 (("dynamic_ntk", 20), ("rope", 20)), (("dynamic_yarn_code", 70), ("rope", 70)),
                 (("nope", 8), ("rope", 8)), (("alibi", 8), ("nope", 8)), (("fire", 8), ("fire_b", 8)),
                 (("fire_l10", 8), ("fire", 8)), (("yarn", 20), ("dynamic_yarn", 20))):
        differ(a, b, f"{a} vs {b}")
    log("  cross-encoding identities: ok")


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f.endswith(".safetensors") or f == "slopes_and_vectors.json":
            os.remove(os.path.join(out_dir, f))
    torch.manual_seed(0)   # only HF's own (overwritten) init consumes the global RNG
    log("vectors")
    vec = vectors()
    with open(os.path.join(out_dir, "slopes_and_vectors.json"), "w") as fh:
        json.dump(vec, fh, indent=1, sort_keys=True)
        fh.write("\n")
    results = {}
    for enc in LLAMA_ENCODINGS:
        for N in LLAMA_LENGTHS[enc]:
            log(f"llama {enc} N={N}")
            llama_case(enc, N, out_dir, results)
    log("llama nope_bce N=8")
    llama_case("nope_bce", 8, out_dir, results)
    # not stored: rope / dynamic_yarn at 140 tokens, only for the identities
    for enc in ("rope", "dynamic_yarn"):
        log(f"llama {enc} N=70 (identity check only, not stored)")
        llama_case(enc, 70, None, results)
    cross_identities(results)
    log("mamba")
    sc = check_scan_vs_hf()
    for name, layers, N in MAMBA_CASES:
        log(f"{name} layers={layers} N={N}")
        mamba_case(name, layers, N, out_dir, sc)
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    log(f"total size {total} bytes")
    assert total < SIZE_LIMIT, total


def compare_dirs(new, old):
    """Returns a list of problems (empty when the committed fixtures reproduce)."""
    probs = []
    fn = sorted(f for f in os.listdir(new) if f.endswith(".safetensors") or f.endswith(".json"))
    fo = sorted(f for f in os.listdir(old) if f.endswith(".safetensors") or f.endswith(".json"))
    if fn != fo:
        probs.append(f"file lists differ: only new {sorted(set(fn) - set(fo))}, only committed {sorted(set(fo) - set(fn))}")
    nbit = nclose = 0
    for f in sorted(set(fn) & set(fo)):
        a, b = os.path.join(new, f), os.path.join(old, f)
        if f.endswith(".json"):
            ja, jb = json.load(open(a)), json.load(open(b))
            for k in ("transformers_version", "torch_version"):
                ja.pop(k, None), jb.pop(k, None)
            if ja != jb:
                probs.append(f"{f}: content differs")
            continue
        with safe_open(a, "pt") as ha, safe_open(b, "pt") as hb:
            ka, kb = set(ha.keys()), set(hb.keys())
            if ka != kb:
                probs.append(f"{f}: tensor names differ {sorted(ka ^ kb)}")
            ma, mb = json.loads(ha.metadata()["config"]), json.loads(hb.metadata()["config"])
            for k in ("torch_version", "transformers_version", "python_version", "checks"):
                ma.pop(k, None), mb.pop(k, None)
            if ma != mb:
                probs.append(f"{f}: metadata config differs")
            for k in sorted(ka & kb):
                ta, tb = ha.get_tensor(k), hb.get_tensor(k)
                if ta.shape != tb.shape or ta.dtype != tb.dtype:
                    probs.append(f"{f}:{k}: shape/dtype {tuple(ta.shape)} vs {tuple(tb.shape)}")
                elif torch.equal(ta, tb):
                    nbit += 1
                else:
                    scale = max(float(tb.abs().max()), 1e-30)
                    e = float((ta.double() - tb.double()).abs().max()) / scale
                    if e > 1e-6:
                        probs.append(f"{f}:{k}: relative difference {e:.3e}")
                    else:
                        nclose += 1
    print(f"compared {len(set(fn) & set(fo))} files: {nbit} tensors bit-identical, {nclose} within 1e-6")
    return probs


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with the committed files")
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"), help="output directory")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    VERBOSE = not args.quiet
    torch.set_num_threads(1)   # reproducible BLAS reductions
    if args.check:
        tmp = tempfile.mkdtemp(prefix="icl_ref_")
        try:
            generate(tmp)
            probs = compare_dirs(tmp, args.out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if probs:
            print("CHECK FAILED:")
            for p in probs:
                print("  " + p)
            sys.exit(1)
        print("CHECK OK: committed fixtures reproduce")
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
