/* Bootstrap confidence band of per-position means, as the published
 * evaluation computes it: R resamples (with replacement) of the P rows of a
 * [P, N] metric matrix; per position the resampled means are sorted and the
 * entries at lo_idx and hi_idx are the band (R = 1000: 50 and 950, i.e. the
 * 5th and 95th percentiles). Row draws come from Philox, so the band is a
 * pure function of (matrix, seed). */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "ops.h"

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

int icl_op_bootstrap(icl_ctx *ctx, const icl_tensor *m, int64_t resamples, int64_t lo_idx, int64_t hi_idx,
                     uint64_t seed, float *mean, float *lo, float *hi) {
  char b[128];
  if (m->ndim != 2 || m->dtype != ICL_F32)
    return icl_errorf(ctx, ICL_ESHAPE, "bootstrap: expected a float32 [prompts, positions] matrix, got %s",
                      ICL_SHAPE_STR(m, b));
  int64_t P = m->shape[0], N = m->shape[1];
  if (P < 1 || resamples < 1 || lo_idx < 0 || hi_idx >= resamples || lo_idx > hi_idx)
    return icl_errorf(ctx, ICL_EINVAL, "bootstrap: need prompts >= 1 and 0 <= lo <= hi < resamples");
  float *host = malloc(sizeof(float) * (size_t)(P * N));
  float *means = malloc(sizeof(float) * (size_t)(resamples * N));
  if (!host || !means) {
    free(host);
    free(means);
    return icl_errorf(ctx, ICL_ENOMEM, "bootstrap: out of memory");
  }
  int rc = icl_copy_to_host(ctx, host, m);
  if (!rc) {
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t p = 0; p < P; p++) s += host[p * N + j];
      mean[j] = (float)(s / (double)P);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < resamples; r++) {
      double *acc = calloc((size_t)N, sizeof(double));
      if (!acc) continue;
      for (int64_t p = 0; p < P; p++) {
        icl_philox_out o = icl_philox(seed, (uint64_t)r, (uint64_t)p);
        const float *row = host + (int64_t)icl_below(o.v[0], o.v[1], (uint32_t)P) * N;
        for (int64_t j = 0; j < N; j++) acc[j] += row[j];
      }
      for (int64_t j = 0; j < N; j++) means[r * N + j] = (float)(acc[j] / (double)P);
      free(acc);
    }
    float *col = malloc(sizeof(float) * (size_t)resamples);
    if (!col) rc = icl_errorf(ctx, ICL_ENOMEM, "bootstrap: out of memory");
    for (int64_t j = 0; !rc && j < N; j++) {
      for (int64_t r = 0; r < resamples; r++) col[r] = means[r * N + j];
      qsort(col, (size_t)resamples, sizeof(float), cmp_float);
      lo[j] = col[lo_idx];
      hi[j] = col[hi_idx];
    }
    free(col);
  }
  free(host);
  free(means);
  return rc;
}

icl_tensor *icl_op_index_select(icl_ctx *ctx, const icl_tensor *t, int dim, const int64_t *idx, int64_t n) {
  int d;
  char b[128];
  if (icl_norm_dim(ctx, "index_select", dim, t->ndim, &d)) return NULL;
  for (int64_t i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= t->shape[d]) {
      icl_errorf(ctx, ICL_ERANGE, "index_select: index %lld out of range for dim %d of %s", (long long)idx[i] + 1,
                 d + 1, ICL_SHAPE_STR(t, b));
      return NULL;
    }
  int64_t shape[ICL_MAX_DIMS];
  memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  shape[d] = n;
  icl_tensor *out = icl_tensor_empty(ctx, t->dtype, t->storage->device, t->ndim, shape);
  if (!out) return NULL;
  /* runs of consecutive indices become one strided copy */
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && idx[j] == idx[j - 1] + 1) j++;
    icl_tensor *src = icl_narrow(ctx, t, d, idx[i], j - i), *dst = src ? icl_narrow(ctx, out, d, i, j - i) : NULL;
    int rc = dst ? icl_copy_into(ctx, dst, src) : ctx->errcode;
    icl_tensor_free(ctx, src);
    icl_tensor_free(ctx, dst);
    if (rc) {
      icl_tensor_free(ctx, out);
      return NULL;
    }
    i = j;
  }
  return out;
}
