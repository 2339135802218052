"""HF-side construction of the in-context models and the patches used to run them in float64.

Why patches are needed: even after `model.double()`, HF (transformers 5.x) computes some pieces in
fp32 on purpose: LlamaRMSNorm / MambaRMSNorm upcast to float32, eager attention runs softmax with
dtype=float32, LlamaRotaryEmbedding builds cos/sin in float32, and the Mamba slow path calls
`.float()` on A_log, B, u, D and the dt bias (and MambaBlock casts the residual to float32 when
residual_in_fp32). `float64_numerics()` swaps those precision choices for float64 without changing
the maths, so the fixtures are a float64 evaluation of the same function. gen_fixtures.py also runs
the unpatched HF code and checks that it agrees to fp32-level tolerance.
"""
import contextlib

import torch
from torch import nn

from transformers import LlamaConfig, LlamaModel, MambaConfig, MambaModel
from transformers.modeling_rope_utils import dynamic_rope_update
from transformers.models.llama import modeling_llama as ml
from transformers.models.mamba import modeling_mamba as mm

from ref_alibi import alibi_bias
from ref_fire import FIRE
from ref_llama import interleave


# ---------------------------------------------------------------------------------------------
# float64 numerics

def _rms_norm_native(self, hidden_states):
    var = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(var + self.variance_epsilon))


def _rotary_f64(self, x, position_ids):
    freqs = position_ids[..., None].to(torch.float64) * self.inv_freq.to(device=x.device, dtype=torch.float64)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * self.attention_scaling
    sin = emb.sin() * self.attention_scaling
    return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


_ORIG_TENSOR_FLOAT = torch.Tensor.float


def _float_keep_f64(self, *args, **kwargs):
    if self.dtype == torch.float64:
        return self
    return _ORIG_TENSOR_FLOAT(self, *args, **kwargs)


@contextlib.contextmanager
def float64_numerics():
    saved = (ml.LlamaRMSNorm.forward, mm.MambaRMSNorm.forward, ml.LlamaRotaryEmbedding.forward, torch.Tensor.float)
    ml.LlamaRMSNorm.forward = _rms_norm_native
    mm.MambaRMSNorm.forward = _rms_norm_native
    ml.LlamaRotaryEmbedding.forward = dynamic_rope_update(_rotary_f64)
    torch.Tensor.float = _float_keep_f64
    try:
        yield
    finally:
        (ml.LlamaRMSNorm.forward, mm.MambaRMSNorm.forward, ml.LlamaRotaryEmbedding.forward,
         torch.Tensor.float) = saved


# ---------------------------------------------------------------------------------------------
# position-encoding patches for LlamaAttention

def _no_rotation(q, k, cos, sin, unsqueeze_dim=1):
    return q, k


def make_eager(kind, slopes=None, fire_conv="A", bias_hook=None):
    """Eager attention in the input dtype (no fp32 softmax), with an optional additive bias.

    kind: "plain" (RoPE or NoPE, no bias), "alibi", "fire". bias_hook(layer_idx, bias) lets the
    generator capture dLoss/dBias for the FIRE closed-form gradient check."""
    def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        key = ml.repeat_kv(key, module.num_key_value_groups)
        value = ml.repeat_kv(value, module.num_key_value_groups)
        T, Tk = query.shape[-2], key.shape[-2]
        qk = torch.matmul(query, key.transpose(2, 3))
        if kind == "alibi":
            S = qk * scaling + alibi_bias(slopes, T, dtype=qk.dtype)
        elif kind == "fire":
            b = module.fire(T).to(qk.dtype)
            if bias_hook is not None:
                bias_hook(module.layer_idx, b)
            S = qk * scaling + b if fire_conv == "A" else (qk + b) * scaling
        else:
            S = qk * scaling
        assert attention_mask is not None, "eager attention must receive HF's causal mask"
        S = S + attention_mask[:, :, :, :Tk]
        P = torch.softmax(S, dim=-1)
        P = nn.functional.dropout(P, p=dropout, training=module.training)
        out = torch.matmul(P, value).transpose(1, 2).contiguous()
        return out, P
    return eager


@contextlib.contextmanager
def pe_patch(rotate, eager=None):
    """rotate=False replaces HF's module-level apply_rotary_pos_emb by the identity (NoPE/ALiBi/FIRE);
    eager (if given) replaces the module-level eager_attention_forward."""
    saved = (ml.apply_rotary_pos_emb, ml.eager_attention_forward)
    if not rotate:
        ml.apply_rotary_pos_emb = _no_rotation
    if eager is not None:
        ml.eager_attention_forward = eager
    try:
        yield
    finally:
        ml.apply_rotary_pos_emb, ml.eager_attention_forward = saved


# ---------------------------------------------------------------------------------------------
# models

class ICLModel(nn.Module):
    """read_in (D -> hidden, no bias) -> HF backbone on inputs_embeds -> read_out (hidden -> 1, no bias);
    pred[b, i] = read_out(h[b, 2i])."""

    SKIP = ("embed_tokens.weight", "embeddings.weight")   # unused token tables (inputs_embeds path)

    def __init__(self, backbone, d_in, hidden):
        super().__init__()
        self.read_in = nn.Linear(d_in, hidden, bias=False)
        self.backbone = backbone
        self.read_out = nn.Linear(hidden, 1, bias=False)

    def fixture_parameters(self):
        out = {}
        for name, p in self.backbone.named_parameters():
            if name not in self.SKIP:
                out[name] = p
        out["read_in.weight"] = self.read_in.weight
        out["read_out.weight"] = self.read_out.weight
        return out

    def load_fixture_weights(self, weights):
        params = self.fixture_parameters()
        assert set(params) == set(weights), (sorted(set(params) ^ set(weights)))
        with torch.no_grad():
            for name, p in params.items():
                assert tuple(p.shape) == tuple(weights[name].shape), name
                p.copy_(weights[name])

    def forward(self, xs, ys, output_attentions=False):
        kw = {"inputs_embeds": self.read_in(interleave(xs, ys)), "use_cache": False}
        if output_attentions:
            kw["output_attentions"] = True
        out = self.backbone(**kw)
        pred = self.read_out(out.last_hidden_state)[:, 0::2, 0]
        return pred, getattr(out, "attentions", None)


def llama_config(c, rope_parameters, max_position_embeddings):
    return LlamaConfig(
        vocab_size=1, hidden_size=c["hidden"], intermediate_size=c["intermediate"],
        num_hidden_layers=c["layers"], num_attention_heads=c["heads"], num_key_value_heads=c["kv_heads"],
        head_dim=c["head_dim"], hidden_act="silu", max_position_embeddings=max_position_embeddings,
        rms_norm_eps=c["rms_norm_eps"], attention_bias=False, mlp_bias=False, attention_dropout=0.0,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        rope_parameters=dict(rope_parameters), attn_implementation="eager")


def build_llama(c, rope_parameters, max_position_embeddings, weights, fire=None):
    """fire: None or dict(width, init_L) -> one FIRE module per layer at layers.{i}.self_attn.fire."""
    cfg = llama_config(c, rope_parameters, max_position_embeddings)
    backbone = LlamaModel(cfg)
    assert backbone.config._attn_implementation == "eager"
    if fire is not None:
        for layer in backbone.layers:
            layer.self_attn.fire = FIRE(c["heads"], width=fire["width"], init_L=fire["init_L"])
    model = ICLModel(backbone, c["D"], c["hidden"])
    model.load_fixture_weights(weights)
    return model.double().eval()


def mamba_config(c, residual_in_fp32):
    return MambaConfig(
        vocab_size=1, hidden_size=c["hidden"], state_size=c["state"], num_hidden_layers=c["layers"],
        expand=c["expand"], conv_kernel=c["conv"], time_step_rank="auto",
        layer_norm_epsilon=c["layer_norm_epsilon"], use_bias=False, use_conv_bias=True, hidden_act="silu",
        residual_in_fp32=residual_in_fp32, use_mambapy=False, use_associative_scan=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None, tie_word_embeddings=False)


def build_mamba(c, weights, residual_in_fp32=False):
    cfg = mamba_config(c, residual_in_fp32)
    assert cfg.time_step_rank == c["dt_rank"] and cfg.intermediate_size == c["d_inner"]
    model = ICLModel(MambaModel(cfg), c["D"], c["hidden"])
    model.load_fixture_weights(weights)
    return model.double().eval()
