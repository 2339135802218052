/* The task area's device kernels (one table per backend; the CPU one is
 * the reference and engine/cuda will mirror it). Pointers are device
 * pointers of the backend they are passed to, contiguous, row-major.
 * A NULL entry means "not on this device": the front end (task_sample.c,
 * baselines.c) then runs the CPU kernel on host copies. */
#ifndef ICL_TASK_KERNELS_H
#define ICL_TASK_KERNELS_H

#include "tasks/baselines.h"
#include "tasks/tasks.h"

typedef struct icl_task_kernels {
  /* Draw d->B prompts of d->N points: xs [B,N,D], ys [B,N]. ws holds
   * B * icl_task_fn_slots(p) * icl_task_fn_floats(p) floats (the drawn
   * functions; contents on return are unspecified). */
  int (*sample)(icl_ctx *ctx, const icl_task_params *p, const icl_task_draw *d, float *xs, float *ys, float *ws);
  /* Inputs only, no forcing: xs [B,N,D] */
  int (*sample_inputs)(icl_ctx *ctx, icl_input_kind kind, const icl_task_draw *d, int64_t D, float *xs);
  /* out[i] = metric(pred[i], ys[i]), i < n */
  int (*metric)(icl_ctx *ctx, icl_metric_kind kind, float *out, const float *pred, const float *ys, int64_t n);
  /* pred [P,N] from xs [P,N,D], ys [P,N] */
  int (*baseline)(icl_ctx *ctx, const icl_baseline *bl, float *pred, const float *xs, const float *ys, int64_t P,
                  int64_t N, int64_t D);
} icl_task_kernels;

extern const icl_task_kernels icl_cpu_task_kernels;

#endif
