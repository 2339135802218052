/* AdamW over a flat parameter buffer, with global-norm clipping and a
 * learning-rate schedule. Weight decay can be switched off for segments
 * (e.g. Mamba's A_log and D) and frozen segments are never updated. */
#ifndef ICL_ADAMW_H
#define ICL_ADAMW_H

#include "core/tensor.h"
#include "nn/params.h"
#include "optim_kernels.h"

typedef struct icl_adamw_cfg {
  float beta1, beta2, eps, weight_decay;
  float max_grad_norm; /* <= 0: no clipping */
  icl_sched sched;
} icl_adamw_cfg;

typedef struct icl_adamw_segment {
  int64_t offset, length;
  int decay;  /* apply weight decay */
  int frozen; /* skip entirely */
} icl_adamw_segment;

typedef struct icl_adamw {
  icl_adamw_cfg cfg;
  icl_tensor *value, *grad; /* flat, not owned (views held) */
  icl_tensor *m, *v;        /* flat moments */
  icl_tensor *scal;         /* [ICL_OPT_NSCALARS] on the device */
  icl_tensor *sumsq;        /* [1] */
  int nseg;
  icl_adamw_segment *seg;
} icl_adamw;

/* torch.optim.AdamW defaults with a constant schedule */
icl_adamw_cfg icl_adamw_defaults(float lr);
int icl_adamw_init(icl_ctx *ctx, icl_adamw *opt, icl_tensor *value, icl_tensor *grad, icl_adamw_cfg cfg);
/* segments from a parameter store: decay and frozen flags per tensor */
int icl_adamw_init_params(icl_ctx *ctx, icl_adamw *opt, icl_params *p, icl_adamw_cfg cfg);
int icl_adamw_step(icl_ctx *ctx, icl_adamw *opt);
/* host copy of the scalar buffer (synchronises) */
int icl_adamw_scalars(icl_ctx *ctx, const icl_adamw *opt, float out[ICL_OPT_NSCALARS]);
void icl_adamw_free(icl_ctx *ctx, icl_adamw *opt);

#endif
