/* CPU reference of the optimiser kernels. */
#include <math.h>

#include "optim_kernels.h"

#define CHUNK 65536

static int sumsq(icl_ctx *ctx, float *out, const float *x, int64_t n) {
  (void)ctx;
  int64_t nchunks = (n + CHUNK - 1) / CHUNK;
  double total = 0;
  /* fixed chunks summed in order: the same bits for any thread count */
  double partial[256];
  for (int64_t base = 0; base < nchunks; base += 256) {
    int64_t cnt = nchunks - base < 256 ? nchunks - base : 256;
#pragma omp parallel for if (n >= 4 * CHUNK) schedule(static)
    for (int64_t c = 0; c < cnt; c++) {
      int64_t lo = (base + c) * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
      double acc = 0;
      for (int64_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
      partial[c] = acc;
    }
    for (int64_t c = 0; c < cnt; c++) total += partial[c];
  }
  *out = (float)total;
  return ICL_OK;
}

static int adamw_prepare(icl_ctx *ctx, float *scal, const float *sq, icl_sched sched, float beta1, float beta2,
                         float max_norm) {
  (void)ctx;
  float t = scal[ICL_OPT_STEPS];
  float norm = sqrtf(*sq);
  scal[ICL_OPT_GNORM] = norm;
  if (!isfinite(norm)) {
    if (scal[ICL_OPT_BAD] == 0.0f) scal[ICL_OPT_BAD] = t + 1.0f;
    scal[ICL_OPT_CLIP] = 0.0f;
    return ICL_OK; /* step count not advanced: the update is skipped */
  }
  scal[ICL_OPT_LR] = icl_sched_lr(sched, t);
  float t1 = t + 1.0f;
  scal[ICL_OPT_BC1] = 1.0f / (1.0f - powf(beta1, t1));
  scal[ICL_OPT_BC2] = 1.0f / sqrtf(1.0f - powf(beta2, t1));
  float clip = 1.0f;
  if (max_norm > 0) {
    clip = max_norm / (norm + 1e-6f);
    if (clip > 1.0f) clip = 1.0f;
  }
  scal[ICL_OPT_CLIP] = clip;
  scal[ICL_OPT_STEPS] = t1;
  return ICL_OK;
}

static int adamw_update(icl_ctx *ctx, float *p, const float *g, float *m, float *v, int64_t n, const float *scal,
                        float beta1, float beta2, float eps, float wd) {
  (void)ctx;
  if (scal[ICL_OPT_BAD] != 0.0f) return ICL_OK; /* keep the last good parameters */
  float lr = scal[ICL_OPT_LR], bc1 = scal[ICL_OPT_BC1], bc2 = scal[ICL_OPT_BC2], clip = scal[ICL_OPT_CLIP];
  float decay = 1.0f - lr * wd, step = lr * bc1;
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] * clip;
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) * bc2 + eps;
    p[i] = p[i] * decay - step * mi / denom;
  }
  return ICL_OK;
}

static int ring_put(icl_ctx *ctx, float *ring, int64_t n, const float *x, const float *scal) {
  (void)ctx;
  int64_t s = (int64_t)scal[ICL_OPT_STEPS];
  ring[s % n] = x[0];
  return ICL_OK;
}

const icl_optim_kernels icl_cpu_optim_kernels = {
    .sumsq = sumsq,
    .adamw_prepare = adamw_prepare,
    .adamw_update = adamw_update,
    .ring_put = ring_put,
};
