/* Private: the CPU mamba kernels split over two files (conv, scan); the
 * table icl_cpu_mamba_kernels is assembled in cpu_mamba_scan.c. */
#ifndef ICL_CPU_MAMBA_H
#define ICL_CPU_MAMBA_H

#include "mamba_kernels.h"

int icl_cpu_mamba_conv_fwd(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w, const float *b,
                           int64_t B, int64_t T, int64_t E, int64_t K);
int icl_cpu_mamba_conv_bwd(icl_ctx *ctx, float *dx, float *dw, float *db, float *du, const float *x, int64_t ldx,
                           const float *w, const float *b, int64_t B, int64_t T, int64_t E, int64_t K, float *scratch);
int64_t icl_cpu_mamba_conv_bwd_scratch(int64_t B, int64_t E, int64_t K);

#endif
