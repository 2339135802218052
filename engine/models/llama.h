/* The Llama backbone (HF LlamaModel without the token embedding) for the
 * in-context wrapper of model.h, with every position encoding of pe/pe.h.
 *   per layer: a = h + Attn(RMSNorm_in(h)); h' = a + SwiGLU(RMSNorm_post(a))
 *   final RMSNorm.
 * Parameter names are HF's without a prefix (layers.{i}.self_attn.q_proj.weight,
 * ..., norm.weight); q, k, v are adjacent in the flat buffer (one GEMM), and
 * so are gate and up. FIRE adds layers.{i}.self_attn.fire.{mlp.0.weight,
 * mlp.0.bias, mlp.2.weight, mlp.2.bias, c, L_multiplier}; a callback bias adds
 * layers.{i}.self_attn.<prefix>.<name> (or <prefix>.<name> when shared). */
#ifndef ICL_LLAMA_H
#define ICL_LLAMA_H

#include "models/model.h"
#include "pe/pe.h"

typedef struct icl_llama_cfg {
  int64_t n_dims;       /* D, the wrapper's input dimension */
  int64_t hidden;       /* hidden_size */
  int64_t layers;       /* num_hidden_layers */
  int64_t heads;        /* num_attention_heads (= kv heads) */
  int64_t intermediate; /* 0: 4 * hidden (the published configs) */
  float rms_eps;        /* 1e-6 */
  float init_std;       /* 0.02 (HF initializer_range) */
  icl_pe_cfg pe;
} icl_llama_cfg;

icl_llama_cfg icl_llama_defaults(void);
/* Build and initialise (HF init: Linear N(0, init_std^2), norms 1; FIRE's
 * Linears keep PyTorch's default U(+-1/sqrt(fan_in))). */
icl_model *icl_llama_new(icl_ctx *ctx, const icl_llama_cfg *cfg, icl_device dev, uint64_t seed);
/* NULL when m is not a Llama model */
const icl_llama_cfg *icl_llama_config(const icl_model *m);

/* Attention probabilities of the next forward (any mode) for one layer:
 * out [B, H, T, T] (row < 0), or [B, H, 1, T]: only query row `row` (0-based).
 * Costs nothing when no layer asks. Cleared with out = NULL. */
int icl_llama_set_capture(icl_ctx *ctx, icl_model *m, int64_t layer, float *out, int row);
void icl_llama_clear_capture(icl_model *m);

/* Parameter count as the published HF stack counted it: the engine's count
 * plus the unused 32000 x hidden token embedding (and FIRE's frozen L_init,
 * one per layer, which PyTorch keeps as a parameter). */
int64_t icl_llama_published_params(const icl_model *m);
#define ICL_LLAMA_VOCAB 32000

/* The rotation scale and attention factor the last forward used (1, 1 without rotation). */
void icl_llama_last_rotation(const icl_model *m, double *scale, double *mscale);

#endif
