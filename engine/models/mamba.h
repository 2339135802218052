/* The Mamba-1 backbone (spec models_and_pe.md §6) for the in-context model
 * of model.h: L pre-norm residual blocks r_{l+1} = r_l + Mixer_l(RMSNorm_l(r_l))
 * and a final RMSNorm (norm_f). Parameter names follow HF MambaModel:
 *   layers.{i}.norm.weight, layers.{i}.mixer.{in_proj.weight [2E,d],
 *   conv1d.weight [E,1,K], conv1d.bias [E], x_proj.weight [R+2N,E],
 *   dt_proj.weight [E,R], dt_proj.bias [E], A_log [E,N], D [E],
 *   out_proj.weight [d,E]}, norm_f.weight.
 * Training keeps per layer r_l, its rstd, xz = in_proj output, x_proj's
 * output and the scan state every `chunk` steps; everything else (the norm
 * output, the conv output, Δ, the states inside a chunk, the gated output)
 * is recomputed in backward. See docs/mamba.md. */
#ifndef ICL_MAMBA_H
#define ICL_MAMBA_H

#include "models/model.h"

typedef struct icl_mamba_cfg {
  int64_t hidden;  /* d */
  int64_t state;   /* N (d_state), default 16 */
  int64_t layers;  /* default 32 */
  int64_t expand;  /* E = expand * d, default 2 */
  int64_t conv;    /* K (d_conv), default 4 */
  int64_t dt_rank; /* R; 0 means ceil(d / 16) */
  int64_t chunk;   /* T_c: states kept every T_c steps for backward, default 64 */
  float eps;       /* RMSNorm eps, default 1e-5 */
  /* initialisation (mamba_ssm defaults) */
  float dt_min, dt_max, dt_init_floor, dt_scale;
  int rescale_prenorm_residual; /* 1: out_proj bound / sqrt(layers) (mamba_ssm's default); 0 (HF's default) */
} icl_mamba_cfg;

icl_mamba_cfg icl_mamba_defaults(int64_t hidden);

/* Step 2 of model.h: declare the backbone's parameters on m and attach it. */
int icl_mamba_attach(icl_ctx *ctx, icl_model *m, const icl_mamba_cfg *cfg);
/* create + attach + finish (initialised with seed); NULL on failure */
icl_model *icl_mamba_model_new(icl_ctx *ctx, int64_t n_dims, const icl_mamba_cfg *cfg, icl_device dev,
                               uint64_t seed);
/* the resolved configuration (dt_rank filled in), or NULL if m is not a Mamba model */
const icl_mamba_cfg *icl_mamba_config(const icl_model *m);

/* Floats of the backbone's workspace for (B, T): what a training forward
 * keeps for backward (saved) and the per-layer-shared temporaries plus
 * kernel scratch (temp); saved + temp = the workspace. */
void icl_mamba_workspace_parts(const icl_model *m, int64_t B, int64_t T, int train, int64_t *saved, int64_t *temp);

/* Opt-in timing of the backbone's phases for benchmarks: wall seconds spent
 * in the projections (GEMMs), the conv, the scan and the rest (norms,
 * copies), summed over forward and backward calls since profiling was
 * switched on. Exact on the CPU; on an asynchronous device it measures
 * launches only. */
typedef struct icl_mamba_profile {
  double gemm, conv, scan, other;
  int64_t gemm_flops; /* floating-point operations of those GEMMs */
} icl_mamba_profile;
int icl_mamba_set_profiling(icl_model *m, int on); /* resets the totals */
icl_mamba_profile icl_mamba_get_profile(const icl_model *m);

#endif
