/* Baselines: names, the front end (validation, device dispatch) and the
 * CPU driver that runs one prompt per OpenMP iteration. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "tasks/task_kernels.h"

#define VALID_NAMES "least_squares, averaging, nn_<k> (nn_1, nn_3, ..., k <= 64), null, lasso_<alpha> (lasso_0.01, ...)"

int icl_baseline_parse(icl_ctx *ctx, const char *name, icl_baseline *out) {
  memset(out, 0, sizeof *out);
  out->tol = 1e-4;
  out->max_iter = 100000;
  if (!name) return icl_errorf(ctx, ICL_EINVAL, "baseline: no name (valid: %s)", VALID_NAMES);
  if (strcmp(name, "least_squares") == 0) {
    out->kind = ICL_BL_LEAST_SQUARES;
    out->tol = 0;
    return ICL_OK;
  }
  if (strcmp(name, "averaging") == 0) {
    out->kind = ICL_BL_AVERAGING;
    return ICL_OK;
  }
  if (strcmp(name, "null") == 0) {
    out->kind = ICL_BL_NULL;
    return ICL_OK;
  }
  char *end;
  if (strncmp(name, "nn_", 3) == 0) {
    errno = 0;
    long k = strtol(name + 3, &end, 10);
    if (end != name + 3 && *end == '\0' && errno == 0 && k >= 1 && k <= ICL_KNN_MAX_K) {
      out->kind = ICL_BL_KNN;
      out->k = (int)k;
      return ICL_OK;
    }
  }
  if (strncmp(name, "lasso_", 6) == 0) {
    errno = 0;
    double a = strtod(name + 6, &end);
    if (end != name + 6 && *end == '\0' && errno == 0 && a > 0 && isfinite(a)) {
      out->kind = ICL_BL_LASSO;
      out->alpha = a;
      return ICL_OK;
    }
  }
  return icl_errorf(ctx, ICL_EINVAL, "baseline: unknown baseline '%s' (valid: %s)", name, VALID_NAMES);
}

const char *icl_baseline_name(const icl_baseline *bl, char *buf, size_t n) {
  switch (bl->kind) {
  case ICL_BL_LEAST_SQUARES: snprintf(buf, n, "least_squares"); break;
  case ICL_BL_AVERAGING: snprintf(buf, n, "averaging"); break;
  case ICL_BL_KNN: snprintf(buf, n, "nn_%d", bl->k); break;
  case ICL_BL_NULL: snprintf(buf, n, "null"); break;
  case ICL_BL_LASSO: snprintf(buf, n, "lasso_%g", bl->alpha); break;
  default: snprintf(buf, n, "?"); break;
  }
  return buf;
}

int icl_cpu_baseline(icl_ctx *ctx, const icl_baseline *bl, float *pred, const float *xs, const float *ys, int64_t P,
                     int64_t N, int64_t D) {
  int64_t ns = icl_bl_scratch(bl, N, D);
  int failed = 0;
#pragma omp parallel
  {
    double *scratch = ns ? malloc((size_t)ns * sizeof(double)) : NULL;
    int ok = !ns || scratch;
    if (!ok) {
#pragma omp atomic write
      failed = 1;
    }
    /* prompts take very different times under Lasso; any assignment gives
     * the same result because each prompt is computed on its own */
#pragma omp for schedule(dynamic, 4)
    for (int64_t p = 0; p < P; p++) {
      if (!ok) continue;
      const float *x = xs + p * N * D, *y = ys + p * N;
      float *o = pred + p * N;
      switch (bl->kind) {
      case ICL_BL_LEAST_SQUARES: icl_bl_least_squares(bl, x, y, o, N, D, scratch); break;
      case ICL_BL_AVERAGING: icl_bl_averaging(x, y, o, N, D, scratch); break;
      case ICL_BL_KNN: icl_bl_knn(bl->k, x, y, o, N, D); break;
      case ICL_BL_LASSO: icl_bl_lasso(bl, x, y, o, N, D, scratch); break;
      default:
        for (int64_t i = 0; i < N; i++) o[i] = -1.0f;
        break;
      }
    }
    free(scratch);
  }
  if (failed) return icl_errorf(ctx, ICL_ENOMEM, "baseline: out of memory for %lld doubles of scratch", (long long)ns);
  return ICL_OK;
}

int icl_baseline_run_into(icl_ctx *ctx, const icl_baseline *bl, const icl_tensor *xs, const icl_tensor *ys,
                          icl_tensor *pred) {
  char b1[128], b2[128], b3[128], nm[64];
  const char *fn = icl_baseline_name(bl, nm, sizeof nm);
  if (xs->ndim != 3 || ys->ndim != 2 || pred->ndim != 2 || ys->shape[0] != xs->shape[0] ||
      ys->shape[1] != xs->shape[1] || !icl_same_shape(ys, pred))
    return icl_errorf(ctx, ICL_ESHAPE, "%s: need xs [P,N,D], ys [P,N], pred [P,N] (got %s, %s, %s)", fn,
                      ICL_SHAPE_STR(xs, b1), ICL_SHAPE_STR(ys, b2), ICL_SHAPE_STR(pred, b3));
  if (xs->dtype != ICL_F32 || ys->dtype != ICL_F32 || pred->dtype != ICL_F32)
    return icl_errorf(ctx, ICL_EINVAL, "%s: xs, ys and pred must be float32", fn);
  icl_device dev = pred->storage->device;
  if (xs->storage->device != dev || ys->storage->device != dev)
    return icl_errorf(ctx, ICL_EDEVICE, "%s: xs, ys and pred must be on one device", fn);
  if (bl->kind == ICL_BL_KNN && (bl->k < 1 || bl->k > ICL_KNN_MAX_K))
    return icl_errorf(ctx, ICL_EINVAL, "%s: k must be in [1, %d]", fn, ICL_KNN_MAX_K);
  if (bl->kind == ICL_BL_LASSO && !(bl->alpha > 0 && bl->tol >= 0 && bl->max_iter >= 1))
    return icl_errorf(ctx, ICL_EINVAL, "%s: need alpha > 0, tol >= 0, max_iter >= 1", fn);
  const int64_t P = xs->shape[0], N = xs->shape[1], D = xs->shape[2];
  if (P == 0 || N == 0) return ICL_OK;
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return ctx->errcode;
  int host = !(be->task && be->task->baseline);
  icl_tensor *x = host ? icl_to_device(ctx, xs, ICL_CPU) : icl_view_new(ctx, xs);
  icl_tensor *y = host ? icl_to_device(ctx, ys, ICL_CPU) : icl_view_new(ctx, ys);
  icl_tensor *xc = x ? icl_contiguous(ctx, x) : NULL, *yc = y ? icl_contiguous(ctx, y) : NULL;
  int direct = !host && icl_is_contiguous(pred);
  icl_tensor *o = direct ? icl_view_new(ctx, pred) : icl_tensor_empty(ctx, ICL_F32, host ? ICL_CPU : dev, 2, pred->shape);
  int rc = xc && yc && o ? (host ? &icl_cpu_task_kernels : be->task)
                               ->baseline(ctx, bl, icl_tensor_data(o), icl_tensor_data(xc), icl_tensor_data(yc), P, N, D)
                         : ctx->errcode;
  if (!rc && !direct) rc = icl_copy_into(ctx, pred, o);
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, y);
  icl_tensor_free(ctx, xc);
  icl_tensor_free(ctx, yc);
  icl_tensor_free(ctx, o);
  return rc;
}

icl_tensor *icl_baseline_run(icl_ctx *ctx, const icl_baseline *bl, const icl_tensor *xs, const icl_tensor *ys) {
  if (ys->ndim != 2) {
    char b[128];
    icl_errorf(ctx, ICL_ESHAPE, "baseline: ys must be [P,N] (got %s)", ICL_SHAPE_STR(ys, b));
    return NULL;
  }
  icl_tensor *pred = icl_tensor_empty(ctx, ICL_F32, ys->storage->device, 2, ys->shape);
  if (pred && icl_baseline_run_into(ctx, bl, xs, ys, pred)) {
    icl_tensor_free(ctx, pred);
    return NULL;
  }
  return pred;
}

int64_t icl_bl_scratch(const icl_baseline *bl, int64_t N, int64_t D) {
  (void)N;
  switch (bl->kind) {
  case ICL_BL_LEAST_SQUARES: return 2 * D * D + 6 * D + 8;
  case ICL_BL_AVERAGING: return D;
  case ICL_BL_LASSO: return D * D + 4 * D;
  default: return 0;
  }
}
