/* Optimiser kernels. The per-step scalars (learning rate from the schedule,
 * bias corrections, clipping factor, gradient norm, step count, first bad
 * step) live in a small device buffer and are computed on the device, so a
 * training step never waits for the host and can be replayed as a CUDA
 * graph with fixed kernel arguments. */
#ifndef ICL_OPTIM_KERNELS_H
#define ICL_OPTIM_KERNELS_H

#include "core/context.h"
#include "core/rng.h" /* ICL_HD: the schedule is evaluated on the device too */

/* indices into the scalar buffer */
enum {
  ICL_OPT_LR = 0,       /* learning rate used by the last step */
  ICL_OPT_BC1 = 1,      /* 1 / (1 - beta1^t) */
  ICL_OPT_BC2 = 2,      /* 1 / sqrt(1 - beta2^t) */
  ICL_OPT_CLIP = 3,     /* factor the gradients are multiplied by */
  ICL_OPT_GNORM = 4,    /* global gradient norm before clipping */
  ICL_OPT_STEPS = 5,    /* optimiser steps taken (exact as a float up to 2^24) */
  ICL_OPT_BAD = 6,      /* 0, or 1 + the step at which gradients first were NaN/Inf */
  ICL_OPT_NSCALARS = 8
};

typedef enum icl_sched_kind {
  ICL_SCHED_CONSTANT = 0,
  ICL_SCHED_LINEAR = 1 /* linear warm-up to base_lr, then linear decay to 0 at `total` (HF "linear") */
} icl_sched_kind;

typedef struct icl_sched {
  icl_sched_kind kind;
  float base_lr;
  float warmup; /* steps */
  float total;  /* steps */
} icl_sched;

typedef struct icl_optim_kernels {
  /* out[0] = sum of x^2 over n (deterministic for any thread count) */
  int (*sumsq)(icl_ctx *ctx, float *out, const float *x, int64_t n);
  /* advance the step in scal and fill its scalars from sumsq; a non-finite
   * sumsq sets ICL_OPT_BAD (once) and makes the update a no-op */
  int (*adamw_prepare)(icl_ctx *ctx, float *scal, const float *sumsq, icl_sched sched, float beta1, float beta2,
                       float max_norm);
  /* decoupled AdamW over n elements, as torch.optim.AdamW computes it */
  int (*adamw_update)(icl_ctx *ctx, float *p, const float *g, float *m, float *v, int64_t n, const float *scal,
                      float beta1, float beta2, float eps, float weight_decay);
  /* ring[s mod n] = x[0] with s = scal[ICL_OPT_STEPS] read where the kernel
   * runs: a per-step value (the loss) kept on the device at the slot of the
   * step about to be taken, so a captured training step needs no changing
   * arguments and the host reads the ring only at log intervals */
  int (*ring_put)(icl_ctx *ctx, float *ring, int64_t n, const float *x, const float *scal);
} icl_optim_kernels;

extern const icl_optim_kernels icl_cpu_optim_kernels;

/* The schedule's learning rate before step t (0-based), on any device. */
ICL_HD float icl_sched_lr(icl_sched s, float t) {
  if (s.kind == ICL_SCHED_CONSTANT) return s.base_lr;
  if (t < s.warmup) return s.base_lr * t / (s.warmup > 1.0f ? s.warmup : 1.0f);
  float rest = s.total - s.warmup;
  float f = rest > 0 ? (s.total - t) / rest : 0.0f;
  return s.base_lr * (f > 0 ? f : 0.0f);
}

#endif
