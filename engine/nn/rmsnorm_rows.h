/* RMSNorm on one row, shared by the CPU nn kernels (cpu_nn.c) and the fused
 * CPU passes of the Llama block (cpu_llama_mlp.c, pe/cpu_attn_proj.c), so
 * all give the same bits. Per-row sums run over a fixed 8-lane order. */
#ifndef ICL_RMSNORM_ROWS_H
#define ICL_RMSNORM_ROWS_H

#include <math.h>
#include <stdint.h>

#include "norm_ride.h"

static inline float icl_sumsq8(const float *x, int64_t d) {
  float acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += x[j + k] * x[j + k];
  float s = 0;
  for (int k = 0; k < 8; k++) s += acc[k];
  for (; j < d; j++) s += x[j] * x[j];
  return s;
}

/* a = x + delta (a may alias x), y = w a / sqrt(mean(a^2) + eps); returns the rstd */
static inline float icl_add_rmsnorm_row(float *a, float *y, const float *x, const float *delta, const float *w,
                                        int64_t d, float eps) {
  for (int64_t j = 0; j < d; j++) a[j] = x[j] + delta[j];
  float rs = 1.0f / sqrtf(icl_sumsq8(a, d) / (float)d + eps);
  for (int64_t j = 0; j < d; j++) y[j] = w[j] * (a[j] * rs);
  return rs;
}

/* g = dy w; dx = rs (g - xhat mean(g xhat)), written (=) or added (+=) */
static inline void icl_rmsnorm_bwd_row(float *dx, const float *dy, const float *x, const float *w, float rs, int64_t d,
                                       int accumulate) {
  float gx = 0;
  float acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += dy[j + k] * w[j + k] * x[j + k];
  for (int k = 0; k < 8; k++) gx += acc[k];
  for (; j < d; j++) gx += dy[j] * w[j] * x[j];
  float c = gx * rs * rs / (float)d;
  for (j = 0; j < d; j++) {
    float v = rs * (dy[j] * w[j] - x[j] * c);
    dx[j] = accumulate ? dx[j] + v : v;
  }
}

/* Row r of a norm riding along a fused pass (norm_ride.h), forward: from the pass's output row delta */
static inline void icl_add_norm_row(const icl_add_norm *nm, int64_t r, const float *delta, int64_t d) {
  const int64_t xr = r * (nm->xstep ? nm->xstep : 1), yr = r * (nm->ystep ? nm->ystep : 1);
  nm->rstd[r] = icl_add_rmsnorm_row(nm->a + r * d, nm->y + yr * d, nm->x + xr * d, delta, nm->w, d, nm->eps);
}

/* ... and backward: from dy (the row's output gradient), dres[r] += the input gradient, dwp += the
 * row's weight gradient (dwp: the pass's partial) */
static inline void icl_norm_bwd_row(const icl_norm_bwd *nb, int64_t r, const float *dy, float *dwp, int64_t d) {
  const float *x = nb->x + r * d, rs = nb->rstd[r];
  icl_rmsnorm_bwd_row(nb->dres + r * d, dy, x, nb->w, rs, d, 1);
  for (int64_t j = 0; j < d; j++) dwp[j] += dy[j] * (x[j] * rs);
}

#endif
