/* Private state of the Mamba backbone shared by mamba.c (parameters, init)
 * and mamba_block.c (forward, backward, workspace). */
#ifndef ICL_MAMBA_INTERNAL_H
#define ICL_MAMBA_INTERNAL_H

#include "mamba.h"
#include "mamba_kernels.h"

typedef struct icl_mamba_layer {
  int norm, in_proj, conv_w, conv_b, x_proj, dt_w, dt_b, A_log, D, out_proj; /* parameter indices */
} icl_mamba_layer;

typedef struct icl_mamba {
  icl_mamba_cfg cfg; /* dt_rank resolved */
  int64_t E, R;
  icl_mamba_layer *layer;
  const icl_mamba_kernels *k; /* the model device's kernels (sizes their scratch) */
  int norm_f;
  int profiling;
  double prof_last;
  icl_mamba_profile prof;
} icl_mamba;

int64_t icl_mamba_workspace(const icl_model *m, int64_t B, int64_t T, int train);
int icl_mamba_forward(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws,
                      int train);
int icl_mamba_backward(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws);

#endif
