/* Position encodings behind one interface used by attention.
 *
 * An encoding is a pair (rotation, additive bias), either part optional:
 *  - the rotation turns q and k by position before the logits (RoPE and its
 *    scalings PI, dynamic NTK, YaRN, dynamic YaRN). It is described per
 *    forward by inv_freq[hd/2] and an attention factor m, from which the
 *    cos/sin tables [T, hd/2] (m folded in) are built once per forward and
 *    shared by every layer;
 *  - the bias adds bias_h(i, j) [H, T, T] to the scaled logits (ALiBi, FIRE,
 *    or a user callback such as a Lua function). A bias with parameters gets
 *    G_h(i, j) = sum_b dS_{b,h}(i, j) in backward and accumulates its own
 *    parameter gradients (models_and_pe.md §7.2-7.3).
 * NoPE is (none, none).
 *
 * Names follow the published configs' patch.rope_scaling.type:
 *   none / rope / default -> RoPE; linear -> PI; dynamic -> dynamic NTK;
 *   yarn; dynamic-yarn; nope; alibi; fire; lua (bias from a callback). */
#ifndef ICL_PE_H
#define ICL_PE_H

#include <stdint.h>

#include "core/context.h"

typedef enum icl_rot_kind {
  ICL_ROT_NONE = 0,
  ICL_ROT_ROPE,         /* default RoPE, half-split rotate_half pairs (c, c + hd/2) */
  ICL_ROT_LINEAR,       /* position interpolation: inv_freq / factor */
  ICL_ROT_DYNAMIC,      /* dynamic NTK (HF "dynamic"): base grows once T > L_train */
  ICL_ROT_YARN,         /* static YaRN with scale = factor, L0 = L_train */
  ICL_ROT_DYNAMIC_YARN  /* YaRN with the scale recomputed from each forward's length */
} icl_rot_kind;

typedef enum icl_bias_kind {
  ICL_BIAS_NONE = 0,
  ICL_BIAS_ALIBI,   /* -m_h (i - j), fixed slopes */
  ICL_BIAS_FIRE,    /* learned MLP of the progressively interpolated distance, one module per layer */
  ICL_BIAS_CALLBACK /* a user function (e.g. Lua) with parameters in the model's buffer */
} icl_bias_kind;

/* Dynamic YaRN has two readings (models_and_pe.md §2.5 and experiments.md §1.4). */
typedef enum icl_dyn_yarn_reading {
  ICL_DYN_YARN_PAPER = 0, /* s = max(1, T / L_train) */
  ICL_DYN_YARN_CODE = 1   /* plain RoPE while T <= factor * L_train, then s = T / L_train */
} icl_dyn_yarn_reading;

/* A user-supplied additive bias with parameters. The engine calls forward
 * once per layer and forward pass, and backward once per layer with the
 * batch-summed logit gradient. Parameters are declared by the model under
 * `layers.{i}.self_attn.<prefix>.<name>` (per_layer) or `<prefix>.<name>`
 * (shared) and live in the model's flat buffer, so they are trained by the
 * same optimiser. */
#define ICL_BIAS_CB_MAX_PARAMS 8
typedef struct icl_bias_callback {
  void *ud;
  /* bias [H, T, T] (row i, column j) to fill for `layer`; entries j > i are ignored */
  int (*forward)(icl_ctx *ctx, void *ud, int layer, int64_t T, int64_t H, float *bias);
  /* G [H, T, T] = sum over the batch of dLoss/dLogit (zero for j > i); add the
   * parameter gradients (they live in the model's gradient buffer) */
  int (*backward)(icl_ctx *ctx, void *ud, int layer, int64_t T, int64_t H, const float *G);
  int per_layer; /* 1: one parameter set per layer; 0: one set shared by all layers */
  int nparams;
  char prefix[32];
  char names[ICL_BIAS_CB_MAX_PARAMS][32];
  int ndims[ICL_BIAS_CB_MAX_PARAMS];
  int64_t shapes[ICL_BIAS_CB_MAX_PARAMS][4];
} icl_bias_callback;

typedef struct icl_pe_cfg {
  icl_rot_kind rot;
  icl_bias_kind bias;
  double theta;            /* RoPE base (10000) */
  double factor;           /* PI / NTK / YaRN scale factor (8, the paper's) */
  int64_t L_train;         /* training length in tokens (the model's max_length, e.g. 102) */
  icl_dyn_yarn_reading dyn_yarn;
  double beta_fast, beta_slow; /* YaRN ramp (32, 1), truncated to integers */
  /* FIRE */
  int fire_width;          /* MLP width (32 = paper; the published code used max_length) */
  float fire_init_c;       /* 0.1 */
  float fire_init_L_mult;  /* 1.0 */
  float fire_L_init;       /* 512 */
  float fire_eps;          /* 1e-6 */
  int fire_scale_before;   /* 0: bias after the 1/sqrt(hd) scaling (A, default); 1: before it (B) */
  /* callback bias (not owned) */
  const icl_bias_callback *callback;
} icl_pe_cfg;

icl_pe_cfg icl_pe_defaults(void);
/* Set cfg->rot / cfg->bias from a published rope_scaling.type name (NULL =
 * no patch = RoPE). Unknown names are an ICL_EINVAL error listing the valid ones. */
int icl_pe_from_name(icl_ctx *ctx, const char *type, icl_pe_cfg *cfg);
/* The canonical name of an encoding (e.g. "dynamic-yarn"). */
const char *icl_pe_name(const icl_pe_cfg *cfg);
/* Validate the numbers (factor > 0, L_train > 0, ...). */
int icl_pe_validate(icl_ctx *ctx, const icl_pe_cfg *cfg, int64_t heads, int64_t head_dim);

/* ---- rotation formulas (host, models_and_pe.md §2) ---------------------- */

/* default inv_freq[c] = 1 / base^(2c/D) computed in float32 like HF */
void icl_rope_default_inv_freq(double base, int64_t D, float *inv_freq);
/* HF dynamic NTK base for length L: b * (f L / Lmax - (f - 1))^(D / (D - 2)) */
double icl_rope_ntk_base(double base, int64_t D, double factor, double L, double Lmax);
/* YaRN correction range (after truncation/clamping) and inv_freq / attention factor */
void icl_yarn_range(double base, int64_t D, double L0, double beta_fast, double beta_slow, double *lo, double *hi);
double icl_yarn_mscale(double s);
void icl_yarn_inv_freq(double base, int64_t D, double s, double L0, double beta_fast, double beta_slow,
                       float *inv_freq, double *mscale);
/* The rotation of a forward of T tokens: inv_freq[hd/2], attention factor m,
 * and the scale in effect (1 when plain RoPE). Returns 0 when the encoding
 * has no rotation. */
int icl_pe_rotation(const icl_pe_cfg *cfg, int64_t hd, int64_t T, float *inv_freq, double *mscale, double *scale);
/* cos/sin tables [T, hd/2]: cos(p * inv_freq[c]) * m (angles in double) */
void icl_rope_tables(const float *inv_freq, double mscale, int64_t T, int64_t half, float *cos_t, float *sin_t);

/* ---- bias formulas -------------------------------------------------------- */

/* ALiBi slopes for any head count (Press et al.; non-powers of two interleave) */
void icl_alibi_slopes(int64_t H, float *slopes);
/* FIRE's interpolated distance u(i, j) = ln(|c (i-j)| + 1) / (ln(|c max(i, thr)| + 1) + eps) */
double icl_fire_u(double c, double thr, double eps, double i, double j);

#endif
