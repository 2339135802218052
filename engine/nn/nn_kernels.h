/* The nn area's device kernels (one table per backend). Pointers are device
 * pointers of the backend they are passed to; matrices are row-major and
 * contiguous; "rows" are tokens. Gradients of parameters accumulate (+=) so
 * one backward pass can sum contributions; activation gradients overwrite
 * unless stated. */
#ifndef ICL_NN_KERNELS_H
#define ICL_NN_KERNELS_H

#include "core/context.h"

typedef enum icl_loss_kind { ICL_LOSS_MSE = 0, ICL_LOSS_BCE = 1 } icl_loss_kind;

typedef struct icl_nn_kernels {
  /* y = w * x / sqrt(mean(x^2) + eps) per row; rstd[r] saved for backward */
  int (*rmsnorm_fwd)(icl_ctx *ctx, float *y, float *rstd, const float *x, const float *w, int64_t rows, int64_t d,
                     float eps);
  /* dx (= or += when accumulate) and dw += (dw may be NULL) */
  int (*rmsnorm_bwd)(icl_ctx *ctx, float *dx, float *dw, const float *dy, const float *x, const float *w,
                     const float *rstd, int64_t rows, int64_t d, int accumulate);
  /* residual + norm in one pass: a = x + delta (a may alias x), y = rmsnorm(a) */
  int (*add_rmsnorm_fwd)(icl_ctx *ctx, float *a, float *y, float *rstd, const float *x, const float *delta,
                         const float *w, int64_t rows, int64_t d, float eps);
  int (*add)(icl_ctx *ctx, float *y, const float *a, const float *b, int64_t n); /* y may alias a or b */
  int (*bias_add)(icl_ctx *ctx, float *y, const float *b, int64_t rows, int64_t d);
  int (*bias_grad)(icl_ctx *ctx, float *db, const float *dy, int64_t rows, int64_t d); /* db += colsum(dy) */
  int (*silu_fwd)(icl_ctx *ctx, float *y, const float *x, int64_t n);
  int (*silu_bwd)(icl_ctx *ctx, float *dx, const float *dy, const float *x, int64_t n);
  /* gu: [rows, 2f] with gate in columns [0, f) and up in [f, 2f); h = silu(gate) * up: [rows, f] */
  int (*swiglu_fwd)(icl_ctx *ctx, float *h, const float *gu, int64_t rows, int64_t f);
  int (*swiglu_bwd)(icl_ctx *ctx, float *dgu, const float *dh, const float *gu, int64_t rows, int64_t f);
  /* mean loss over n predictions pred[i*ps] against target[i]. loss_out (one
   * float, may be NULL) gets the mean; dpred[i*ps] (may be NULL) gets
   * scale * d(mean)/d(pred_i); other entries of dpred are left alone.
   * MSE: (pred - y)^2. BCE: softplus(pred) - t*pred with t = (y + 1)/2. */
  int (*loss)(icl_ctx *ctx, icl_loss_kind kind, float *loss_out, float *dpred, const float *pred, int64_t ps,
              const float *target, int64_t n, float scale);
} icl_nn_kernels;

extern const icl_nn_kernels icl_cpu_nn_kernels;

#endif
