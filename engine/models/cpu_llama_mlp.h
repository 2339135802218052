/* The Llama MLP on the CPU, fused per row chunk (cpu_llama_mlp.c). */
#ifndef ICL_CPU_LLAMA_MLP_H
#define ICL_CPU_LLAMA_MLP_H

#include <stdint.h>

#include "nn/norm_ride.h"

/* Whether the fused path takes an MLP of hidden d and intermediate F (both
 * weight matrices fit the AVX2 kernel's pack buffer); 0 without AVX2 or
 * with ICL_CPU_MLP=unfused. */
int icl_cpu_mlp_fused(int64_t d, int64_t F);
/* gu = x Wgu^T ([rows, 2F], kept for backward), act = silu(g) u ([rows, F]
 * scratch: not kept, icl_cpu_mlp_bwd recomputes it from gu, so only that
 * backward follows this forward), out = act Wd^T ([rows, d]; scratch with
 * res, which then gets the residual add and norm); Wgu [2F, d], Wd [d, F]. */
void icl_cpu_mlp_fwd(float *gu, float *act, float *out, const float *x, const float *Wgu, const float *Wd, int64_t rows,
                     int64_t d, int64_t F, const icl_add_norm *res);
/* Partial weight-gradient sums per backward (each row chunk adds into one
 * of ICL_CPU_MLP_PARTS fixed partials; the partials are then added in
 * order): deterministic and independent of the thread count. */
#define ICL_CPU_MLP_PARTS 8
int64_t icl_cpu_mlp_partial_floats(int64_t d, int64_t F);
/* From dy [rows, d] (the gradient of the MLP output): dact = dy Wd (scratch
 * [rows, F]), dgu = SwiGLU' ([rows, 2F], scratch), dx = dgu Wgu ([rows, d],
 * written; scratch with nb, which then gets the norm's backward), and the weight gradients gWd += dy^T act, gWgu +=
 * dgu^T xn (xn: the MLP input [rows, d]; act: scratch [rows, F], recomputed from gu); part: icl_cpu_mlp_partial_floats
 * floats. */
void icl_cpu_mlp_bwd(float *dgu, float *dx, float *dact, float *gWgu, float *gWd, float *part, const float *dy,
                     const float *gu, float *act, const float *xn, const float *Wgu, const float *Wd, int64_t rows,
                     int64_t d, int64_t F, const icl_norm_bwd *nb);

#endif
