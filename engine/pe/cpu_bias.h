/* CPU kernels of the bias encodings (ALiBi, FIRE), entries of icl_cpu_attn_kernels. */
#ifndef ICL_CPU_BIAS_H
#define ICL_CPU_BIAS_H

#include "core/context.h"

int icl_cpu_alibi_bias(icl_ctx *ctx, float *bias, const float *slopes, int64_t H, int64_t T);
int icl_cpu_fire_fwd(icl_ctx *ctx, float *bias, const float *W1, const float *b1, const float *W2, const float *b2,
                     const float *c, const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T,
                     float mult);
int icl_cpu_fire_bwd(icl_ctx *ctx, const float *G, const float *W1, const float *b1, const float *W2, const float *c,
                     const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T, float mult,
                     float *dW1, float *db1, float *dW2, float *db2, float *dc, float *dLmult, double *part);

#endif
