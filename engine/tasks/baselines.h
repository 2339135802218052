/* In-context baselines: each predicts y_i of a prompt from the examples
 * 0..i-1 of the same prompt only (position 0 predicts 0, the null
 * classifier -1 everywhere). All run over P prompts x N points x D dims in
 * one call; the CPU versions parallelise over prompts, and every prompt is
 * computed on its own, so the result does not depend on the thread count.
 *
 * Names (icl_baseline_parse):
 *   least_squares   minimum-norm least squares (like torch.linalg.lstsq, gelsy)
 *   averaging       w = mean_j y_j x_j, prediction <x_i, w>
 *   nn_<k>          k-nearest neighbours (Euclidean), mean of the k' = min(i, k)
 *                   nearest y; ties: lower index first  (nn_1, nn_3, ..., k <= 64)
 *   null            -1
 *   lasso_<alpha>   sklearn Lasso(alpha, fit_intercept=False) by coordinate descent
 *                   (lasso_0.01, ...) */
#ifndef ICL_BASELINES_H
#define ICL_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum icl_baseline_kind {
  ICL_BL_LEAST_SQUARES = 0,
  ICL_BL_AVERAGING,
  ICL_BL_KNN,
  ICL_BL_NULL,
  ICL_BL_LASSO,
  ICL_BL__COUNT
} icl_baseline_kind;

#define ICL_KNN_MAX_K 64

typedef struct icl_baseline {
  icl_baseline_kind kind;
  int k;            /* knn */
  double alpha;     /* lasso: L1 weight */
  double tol;       /* lasso: sklearn's tol (1e-4); least squares: rank cutoff (0 = FLT_EPSILON * max(i, D)) */
  int64_t max_iter; /* lasso: sweeps per position (sklearn max_iter; T used 1e5) */
} icl_baseline;

/* "least_squares", "averaging", "nn_3", "null", "lasso_0.01", ... */
int icl_baseline_parse(icl_ctx *ctx, const char *name, icl_baseline *out);
/* canonical name into buf; returns buf */
const char *icl_baseline_name(const icl_baseline *bl, char *buf, size_t n);

/* pred [P,N] <- baseline(xs [P,N,D], ys [P,N]); tensors on one device (a
 * device without baseline kernels goes through host copies). */
int icl_baseline_run_into(icl_ctx *ctx, const icl_baseline *bl, const icl_tensor *xs, const icl_tensor *ys,
                          icl_tensor *pred);
icl_tensor *icl_baseline_run(icl_ctx *ctx, const icl_baseline *bl, const icl_tensor *xs, const icl_tensor *ys);

/* ---- CPU per-prompt kernels (baselines_*.c) ------------------------------- */
/* Scratch (doubles) one prompt needs. */
int64_t icl_bl_scratch(const icl_baseline *bl, int64_t N, int64_t D);
/* One prompt: x [N,D], y [N] -> pred [N]. */
void icl_bl_least_squares(const icl_baseline *bl, const float *x, const float *y, float *pred, int64_t N, int64_t D,
                          double *scratch);
void icl_bl_averaging(const float *x, const float *y, float *pred, int64_t N, int64_t D, double *scratch);
void icl_bl_knn(int k, const float *x, const float *y, float *pred, int64_t N, int64_t D);
/* returns the number of positions that stopped at max_iter */
int64_t icl_bl_lasso(const icl_baseline *bl, const float *x, const float *y, float *pred, int64_t N, int64_t D,
                     double *scratch);
/* The CPU kernel behind the task table: all prompts, OpenMP over prompts. */
int icl_cpu_baseline(icl_ctx *ctx, const icl_baseline *bl, float *pred, const float *xs, const float *ys, int64_t P,
                     int64_t N, int64_t D);

#endif
