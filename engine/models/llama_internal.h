/* Private state of the Llama backbone, shared by llama.c (construction,
 * parameters, workspace layout), llama_forward.c and llama_backward.c. */
#ifndef ICL_LLAMA_INTERNAL_H
#define ICL_LLAMA_INTERNAL_H

#include "llama.h"
#include "pe/attn_kernels.h"

enum { LP_Q, LP_K, LP_V, LP_O, LP_GATE, LP_UP, LP_DOWN, LP_LN1, LP_LN2, LP__N };
enum { FP_W1, FP_B1, FP_W2, FP_B2, FP_C, FP_L, FP__N };

typedef struct llama_layer {
  int p[LP__N];
  int fire[FP__N];
  int cb[ICL_BIAS_CB_MAX_PARAMS];
  icl_attn_capture cap;
} llama_layer;

typedef struct icl_llama {
  icl_llama_cfg cfg;
  int64_t hd, F;
  llama_layer *layer;
  int p_norm;
  int64_t n_capture; /* layers with a capture request */
  /* host scratch for the rotation tables and slopes (grown, never per step) */
  float *host;
  int64_t host_cap;
  double last_scale, last_mscale;
  /* what the device copies of the rotation tables and slopes in the model's
   * arena were made for: a forward at the same length into the same arena
   * skips the host-to-device copies (so a captured training step has none) */
  int64_t pe_T;
  uint64_t pe_gen;
  const float *pe_ws;
} icl_llama;

/* Workspace layout for (B, T, train): offsets in floats from ws. */
typedef struct llama_layout {
  int64_t cos, sin, slopes, bias, G, part; /* part: doubles (2 floats each), -1 when absent */
  int64_t attn_scratch;                    /* nthreads x per-thread floats */
  int nthreads;
  /* training: per layer block of `per_layer` floats starting at `layers` */
  int64_t layers, per_layer;
  int64_t o_h, o_n1, o_r1, o_q, o_k, o_v, o_P, o_attn, o_a, o_n2, o_r2, o_gu, o_act; /* inside a layer block */
  int64_t hL, rF;                                                                    /* final input and its rstd */
  int64_t mlp_part; /* the fused CPU MLP's partial weight gradients (-1: not used) */
  int64_t qkv_part; /* the projection-fused CPU attention's partial Wqkv and Wo gradients (-1: not used) */
  int64_t xc;       /* trimmed last layer: the x rows' dy and residual gradient, [BT/2, d] each */
  int trim;         /* the last layer of a training pass works on the x rows only (llama_trim) */
  int64_t scratch;  /* shared scratch region */
  /* inference */
  int64_t n, r, qkv, attn, delta, mlp, mlp_rows;
  int64_t total;
} llama_layout;

static inline icl_llama *llama_state(const icl_model *m) { return (icl_llama *)m->backbone; }
void icl_llama_layout(const icl_model *m, int64_t B, int64_t T, int train, llama_layout *L);
int icl_llama_forward(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws, int train);
int icl_llama_backward(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws);
int icl_llama_has_bias_params(const icl_llama *s);
/* whether training runs attention with the qkv projection fused in (the
 * backend has it, the CPU products are row-exact, B >= 8) */
int icl_llama_attn_proj(const icl_model *m, int64_t B);
/* row-major [rows, cols] view with a row stride, for gathers and scatters of
 * the x rows */
icl_view icl_llama_rows(float *data, int64_t rows, int64_t cols, int64_t row_stride);

#endif
