/* The mamba area's device kernels (one table per backend): the causal
 * depthwise convolution with its SiLU, and the selective scan with its
 * gate, forward and backward. The projections are plain GEMMs done by the
 * model through the backend's gemm. Matrices are row-major with one row per
 * token (row b*T + t); pointers are device pointers of the backend.
 * Parameter gradients accumulate (+=); activation gradients overwrite.
 * Results are the same for any thread count: parameter-gradient reductions
 * go through per-task partials summed in a fixed order. */
#ifndef ICL_MAMBA_KERNELS_H
#define ICL_MAMBA_KERNELS_H

#include <stdint.h>

#include "core/context.h"

/* The selective scan of one layer, for B rows of T tokens, E channels and
 * N states; states are checkpointed every Tc steps.
 *   Δ_t = softplus(dt_t + dt_bias), A = -exp(A_log),
 *   s_t = exp(Δ_t A) s_{t-1} + Δ_t B_t u_t,  y_t = C_t·s_t + D u_t,
 *   out_t = y_t · silu(z_t). */
typedef struct icl_mamba_scan {
  int64_t B, T, E, N, Tc;
  const float *u;       /* [B*T, E] conv output after SiLU */
  const float *dt;      /* [B*T, E] W_dt δlow, without the bias */
  const float *dt_bias; /* [E] */
  const float *bmat;    /* B_t: N columns of rows with stride ld_bc */
  const float *cmat;    /* C_t: likewise */
  int64_t ld_bc;
  const float *z; /* gate, rows with stride ld_z */
  int64_t ld_z;
  const float *A_log; /* [E, N] */
  const float *D;     /* [E] */
  float *out;         /* [B*T, E] gated output (forward; the backward writes it again) */
  float *ckpt;        /* [B, n_ckpt, N, E]: s at t = (c+1)Tc - 1; forward writes it when not NULL */
  /* backward */
  const float *dout;   /* [B*T, E] gradient of out */
  float *du;           /* [B*T, E] gradient of u (= D g_y + scan terms) */
  float *ddt;          /* [B*T, E] gradient of dt (= of δraw, so also of dt_bias) */
  float *dz;           /* rows with stride ld_z */
  float *dbmat, *dcmat; /* rows with stride ld_bc (overwritten) */
  float *dA_log, *dD;  /* [E, N], [E] (+=) */
  float *scratch;      /* scan_bwd_scratch(...) floats */
  int64_t scratch_floats;
} icl_mamba_scan;

typedef struct icl_mamba_kernels {
  /* u = silu(b + causal depthwise conv of x with w [E, K]); x rows have stride ldx */
  int (*conv_fwd)(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w, const float *b, int64_t B,
                  int64_t T, int64_t E, int64_t K);
  /* du: gradient of u (overwritten: used as scratch); dx (stride ldx) written;
   * dw, db +=. scratch: conv_bwd_scratch(B, E, K) floats. */
  int (*conv_bwd)(icl_ctx *ctx, float *dx, float *dw, float *db, float *du, const float *x, int64_t ldx,
                  const float *w, const float *b, int64_t B, int64_t T, int64_t E, int64_t K, float *scratch);
  int64_t (*conv_bwd_scratch)(int64_t B, int64_t E, int64_t K);
  int (*scan_fwd)(icl_ctx *ctx, const icl_mamba_scan *s);
  int (*scan_bwd)(icl_ctx *ctx, const icl_mamba_scan *s);
  int64_t (*scan_bwd_scratch)(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc);
} icl_mamba_kernels;

/* limits of every device's kernels: the conv taps and the N states of a
 * block of channels live in registers / on the stack */
#define ICL_MAMBA_MAX_K 16
#define ICL_MAMBA_MAX_N 64

/* states kept by the forward per batch row: one per chunk boundary */
static inline int64_t icl_mamba_n_ckpt(int64_t T, int64_t Tc) { return (T + Tc - 1) / Tc - 1; }

extern const icl_mamba_kernels icl_cpu_mamba_kernels;
#ifdef ICL_HAVE_CUDA
extern const icl_mamba_kernels icl_cuda_mamba_kernels; /* engine/cuda/cuda_mamba_*.cu */
#endif

#endif
