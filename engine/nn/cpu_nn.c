/* CPU reference of the nn kernels. Row loops are split across threads with
 * static scheduling; per-row sums use a fixed 8-lane order, so results do
 * not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "nn_kernels.h"
#include "rmsnorm_rows.h"
#include "swiglu_rows.h"
#include "vmath.h"

#define PAR_ROWS 64

static int rmsnorm_fwd(icl_ctx *ctx, float *y, float *rstd, const float *x, const float *w, int64_t rows, int64_t d,
                       float eps) {
  (void)ctx;
#pragma omp parallel for if (rows >= PAR_ROWS) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float rs = 1.0f / sqrtf(icl_sumsq8(xr, d) / (float)d + eps);
    rstd[r] = rs;
    for (int64_t j = 0; j < d; j++) yr[j] = w[j] * (xr[j] * rs);
  }
  return ICL_OK;
}

/* The rows' input gradients in parallel, then dw as column sums over the
 * rows in order (any thread count gives the same bits). */
static int rmsnorm_bwd(icl_ctx *ctx, float *dx, float *dw, const float *dy, const float *x, const float *w,
                       const float *rstd, int64_t rows, int64_t d, int accumulate) {
  (void)ctx;
#pragma omp parallel for if (rows >= PAR_ROWS) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    icl_rmsnorm_bwd_row(dx + r * d, dy + r * d, x + r * d, w, rstd[r], d, accumulate);
  }
  if (dw) {
    /* column sums, each column over the rows in order (the CUDA kernel keeps
     * this order too); threads take blocks of columns, which changes nothing */
    const int64_t nb = (d + 15) / 16;
#pragma omp parallel for if (rows * d >= 65536) schedule(static)
    for (int64_t jb = 0; jb < nb; jb++) {
      const int64_t j0 = jb * 16, j1 = j0 + 16 < d ? j0 + 16 : d;
      for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d, *dyr = dy + r * d;
        float rs = rstd[r];
        for (int64_t j = j0; j < j1; j++) dw[j] += dyr[j] * (xr[j] * rs);
      }
    }
  }
  return ICL_OK;
}

static int add_rmsnorm_fwd(icl_ctx *ctx, float *a, float *y, float *rstd, const float *x, const float *delta,
                           const float *w, int64_t rows, int64_t d, float eps) {
  (void)ctx;
#pragma omp parallel for if (rows >= PAR_ROWS) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    rstd[r] = icl_add_rmsnorm_row(a + r * d, y + r * d, x + r * d, delta + r * d, w, d, eps);
  }
  return ICL_OK;
}

static int add(icl_ctx *ctx, float *y, const float *a, const float *b, int64_t n) {
  (void)ctx;
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  return ICL_OK;
}

static int bias_add(icl_ctx *ctx, float *y, const float *b, int64_t rows, int64_t d) {
  (void)ctx;
#pragma omp parallel for if (rows * d >= 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < d; j++) y[r * d + j] += b[j];
  return ICL_OK;
}

static int bias_grad(icl_ctx *ctx, float *db, const float *dy, int64_t rows, int64_t d) {
  (void)ctx;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < d; j++) db[j] += dy[r * d + j];
  return ICL_OK;
}

static int silu_fwd(icl_ctx *ctx, float *y, const float *x, int64_t n) {
  (void)ctx;
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * icl_sigmoidf(x[i]);
  return ICL_OK;
}

static int silu_bwd(icl_ctx *ctx, float *dx, const float *dy, const float *x, int64_t n) {
  (void)ctx;
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float s = icl_sigmoidf(x[i]);
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
  return ICL_OK;
}

/* SiLU-gated products, 8 lanes at a time (vector exp), scalar tail */
static int swiglu_fwd(icl_ctx *ctx, float *h, const float *gu, int64_t rows, int64_t f) {
  (void)ctx;
#pragma omp parallel for if (rows * f >= 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) icl_swiglu_row_fwd(h + r * f, gu + r * 2 * f, f);
  return ICL_OK;
}

static int swiglu_bwd(icl_ctx *ctx, float *dgu, const float *dh, const float *gu, int64_t rows, int64_t f) {
  (void)ctx;
#pragma omp parallel for if (rows * f >= 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) icl_swiglu_row_bwd(dgu + r * 2 * f, dh + r * f, gu + r * 2 * f, f);
  return ICL_OK;
}

static int loss(icl_ctx *ctx, icl_loss_kind kind, float *loss_out, float *dpred, const float *pred, int64_t ps,
                const float *target, int64_t n, float scale) {
  if (n <= 0) return icl_errorf(ctx, ICL_EINVAL, "loss: no predictions");
  double acc = 0;
  float inv = 1.0f / (float)n;
  for (int64_t i = 0; i < n; i++) {
    float p = pred[i * ps], y = target[i];
    if (kind == ICL_LOSS_MSE) {
      float e = p - y;
      acc += (double)e * e;
      if (dpred) dpred[i * ps] = scale * 2.0f * e * inv;
    } else {
      float t = 0.5f * (y + 1.0f);
      /* softplus(p) - t p, stable for large |p| */
      float sp = p > 0 ? p + log1pf(expf(-p)) : log1pf(expf(p));
      acc += (double)(sp - t * p);
      if (dpred) dpred[i * ps] = scale * (icl_sigmoidf(p) - t) * inv;
    }
  }
  if (loss_out) *loss_out = (float)(acc / (double)n);
  return ICL_OK;
}

const icl_nn_kernels icl_cpu_nn_kernels = {
    .rmsnorm_fwd = rmsnorm_fwd,
    .rmsnorm_bwd = rmsnorm_bwd,
    .add_rmsnorm_fwd = add_rmsnorm_fwd,
    .add = add,
    .bias_add = bias_add,
    .bias_grad = bias_grad,
    .silu_fwd = silu_fwd,
    .silu_bwd = silu_bwd,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
    .loss = loss,
};
