/* Front end of task sampling and the metric: validate tensors, keep the
 * sampler's workspace, dispatch to the device's task kernels. A device
 * without task kernels gets the CPU reference's data through host staging
 * buffers (same bits, slower). */
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "tasks/task_kernels.h"
#include "tasks/task_rng.h"

icl_task *icl_task_new(icl_ctx *ctx, const icl_task_params *p) {
  if (icl_task_validate(ctx, p)) return NULL;
  icl_task *t = calloc(1, sizeof *t);
  if (!t) {
    icl_errorf(ctx, ICL_ENOMEM, "task: out of memory");
    return NULL;
  }
  t->p = *p;
  return t;
}

void icl_task_free(icl_ctx *ctx, icl_task *t) {
  if (!t) return;
  icl_tensor_free(ctx, t->ws);
  icl_tensor_free(ctx, t->stage_x);
  icl_tensor_free(ctx, t->stage_y);
  free(t);
}

/* grow-only float buffer on dev */
static int ensure(icl_ctx *ctx, icl_tensor **buf, icl_device dev, int64_t n) {
  if (n < 1) n = 1;
  if (*buf && (*buf)->storage->device == dev && (*buf)->shape[0] >= n) return ICL_OK;
  icl_tensor_free(ctx, *buf);
  *buf = icl_tensor_empty(ctx, ICL_F32, dev, 1, &n);
  return *buf ? ICL_OK : ctx->errcode;
}

static int check_f32_contig(icl_ctx *ctx, const char *fn, const char *what, const icl_tensor *t, int ndim) {
  char b[128];
  if (t->dtype != ICL_F32 || t->ndim != ndim || !icl_is_contiguous(t))
    return icl_errorf(ctx, ICL_ESHAPE, "%s: %s must be a contiguous float32 %d-dim tensor (got %s %s%s)", fn, what,
                      ndim, icl_dtype_name(t->dtype), ICL_SHAPE_STR(t, b), icl_is_contiguous(t) ? "" : ", strided");
  return ICL_OK;
}

static int check_draw(icl_ctx *ctx, const char *fn, int64_t D, icl_task_draw *d) {
  if (d->n_dims_truncated < 1 || d->n_dims_truncated > D)
    return icl_errorf(ctx, ICL_EINVAL, "%s: n_dims_truncated = %lld must be in [1, n_dims = %lld]", fn,
                      (long long)d->n_dims_truncated, (long long)D);
  if (d->prompt_offset < 0 || (uint64_t)(d->prompt_offset + d->B) > ICL_TRNG_MAX_PROMPTS)
    return icl_errorf(ctx, ICL_EINVAL, "%s: prompts %lld..%lld exceed the 2^24 prompts of one (seed, stream)", fn,
                      (long long)d->prompt_offset, (long long)(d->prompt_offset + d->B));
  if ((uint64_t)d->N > ICL_TRNG_MAX_POINTS)
    return icl_errorf(ctx, ICL_EINVAL, "%s: n_points = %lld exceeds 2^20", fn, (long long)d->N);
  return ICL_OK;
}

int icl_task_sample_into(icl_ctx *ctx, icl_task *t, icl_tensor *xs, icl_tensor *ys, const icl_task_draw *draw) {
  const icl_task_params *p = &t->p;
  const char *fn = icl_task_name(p->kind);
  char b1[128], b2[128];
  int rc;
  if ((rc = check_f32_contig(ctx, fn, "xs", xs, 3)) || (rc = check_f32_contig(ctx, fn, "ys", ys, 2))) return rc;
  if (xs->shape[2] != p->n_dims || ys->shape[0] != xs->shape[0] || ys->shape[1] != xs->shape[1])
    return icl_errorf(ctx, ICL_ESHAPE, "%s: xs %s and ys %s must be [B, N, %lld] and [B, N]", fn, ICL_SHAPE_STR(xs, b1),
                      ICL_SHAPE_STR(ys, b2), (long long)p->n_dims);
  icl_device dev = xs->storage->device;
  if (ys->storage->device != dev) return icl_errorf(ctx, ICL_EDEVICE, "%s: xs and ys are on different devices", fn);
  icl_task_draw d = *draw;
  d.B = xs->shape[0];
  d.N = xs->shape[1];
  if ((rc = check_draw(ctx, fn, p->n_dims, &d))) return rc;
  if (d.B == 0 || d.N == 0) return ICL_OK;
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return ctx->errcode;
  int64_t nws = d.B * icl_task_fn_slots(p) * icl_task_fn_floats(p);
  if (be->task && be->task->sample) {
    if ((rc = ensure(ctx, &t->ws, dev, nws))) return rc;
    return be->task->sample(ctx, p, &d, icl_tensor_data(xs), icl_tensor_data(ys), icl_tensor_data(t->ws));
  }
  /* host reference, then one copy each */
  int64_t nx = icl_numel(xs), ny = icl_numel(ys);
  if ((rc = ensure(ctx, &t->ws, ICL_CPU, nws)) || (rc = ensure(ctx, &t->stage_x, ICL_CPU, nx)) ||
      (rc = ensure(ctx, &t->stage_y, ICL_CPU, ny)))
    return rc;
  float *hx = icl_tensor_data(t->stage_x), *hy = icl_tensor_data(t->stage_y);
  if ((rc = icl_cpu_task_kernels.sample(ctx, p, &d, hx, hy, icl_tensor_data(t->ws)))) return rc;
  if ((rc = be->memcpy(ctx, icl_tensor_data(xs), dev, hx, ICL_CPU, (size_t)nx * sizeof(float)))) return rc;
  return be->memcpy(ctx, icl_tensor_data(ys), dev, hy, ICL_CPU, (size_t)ny * sizeof(float));
}

int icl_task_sample(icl_ctx *ctx, icl_task *t, icl_device dev, const icl_task_draw *d, icl_tensor **xs,
                    icl_tensor **ys) {
  *xs = *ys = NULL;
  if (d->B < 0 || d->N < 0)
    return icl_errorf(ctx, ICL_EINVAL, "%s: batch %lld and n_points %lld must be >= 0", icl_task_name(t->p.kind),
                      (long long)d->B, (long long)d->N);
  int64_t sx[3] = {d->B, d->N, t->p.n_dims};
  *xs = icl_tensor_empty(ctx, ICL_F32, dev, 3, sx);
  *ys = *xs ? icl_tensor_empty(ctx, ICL_F32, dev, 2, sx) : NULL;
  int rc = *ys ? icl_task_sample_into(ctx, t, *xs, *ys, d) : ctx->errcode;
  if (rc) {
    icl_tensor_free(ctx, *xs);
    icl_tensor_free(ctx, *ys);
    *xs = *ys = NULL;
  }
  return rc;
}

int icl_task_sample_inputs_into(icl_ctx *ctx, icl_input_kind kind, icl_tensor *xs, const icl_task_draw *draw) {
  const char *fn = kind == ICL_INPUT_GAUSSIAN ? "gaussian inputs" : "boolean inputs";
  int rc;
  if ((rc = check_f32_contig(ctx, fn, "xs", xs, 3))) return rc;
  icl_task_draw d = *draw;
  d.B = xs->shape[0];
  d.N = xs->shape[1];
  int64_t D = xs->shape[2];
  if (D < 1 || D > 65536) return icl_errorf(ctx, ICL_EINVAL, "%s: n_dims = %lld must be in [1, 65536]", fn, (long long)D);
  if ((rc = check_draw(ctx, fn, D, &d))) return rc;
  if (d.B == 0 || d.N == 0) return ICL_OK;
  icl_device dev = xs->storage->device;
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return ctx->errcode;
  if (be->task && be->task->sample_inputs) return be->task->sample_inputs(ctx, kind, &d, D, icl_tensor_data(xs));
  icl_tensor *h = icl_tensor_empty(ctx, ICL_F32, ICL_CPU, 3, xs->shape);
  if (!h) return ctx->errcode;
  rc = icl_cpu_task_kernels.sample_inputs(ctx, kind, &d, D, icl_tensor_data(h));
  if (!rc) rc = be->memcpy(ctx, icl_tensor_data(xs), dev, icl_tensor_data(h), ICL_CPU, (size_t)icl_numel(h) * 4);
  icl_tensor_free(ctx, h);
  return rc;
}

icl_tensor *icl_task_metric(icl_ctx *ctx, icl_metric_kind kind, const icl_tensor *pred, const icl_tensor *ys) {
  char b1[128], b2[128];
  if (!icl_same_shape(pred, ys)) {
    icl_errorf(ctx, ICL_ESHAPE, "metric: pred %s and ys %s differ in shape", ICL_SHAPE_STR(pred, b1),
               ICL_SHAPE_STR(ys, b2));
    return NULL;
  }
  if (pred->dtype != ICL_F32 || ys->dtype != ICL_F32) {
    icl_errorf(ctx, ICL_EINVAL, "metric: pred and ys must be float32");
    return NULL;
  }
  icl_device dev = pred->storage->device;
  if (ys->storage->device != dev) {
    icl_errorf(ctx, ICL_EDEVICE, "metric: pred and ys are on different devices");
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return NULL;
  /* the CPU kernel on host copies when the device has none */
  int host = !(be->task && be->task->metric);
  icl_device wd = host ? ICL_CPU : dev;
  icl_tensor *a = host ? icl_to_device(ctx, pred, ICL_CPU) : icl_contiguous(ctx, pred);
  icl_tensor *y = host ? icl_to_device(ctx, ys, ICL_CPU) : icl_contiguous(ctx, ys);
  icl_tensor *a2 = a ? icl_contiguous(ctx, a) : NULL, *y2 = y ? icl_contiguous(ctx, y) : NULL;
  icl_tensor *out = a2 && y2 ? icl_tensor_empty(ctx, ICL_F32, wd, pred->ndim, pred->shape) : NULL;
  int rc = out ? (host ? &icl_cpu_task_kernels : be->task)
                     ->metric(ctx, kind, icl_tensor_data(out), icl_tensor_data(a2), icl_tensor_data(y2), icl_numel(out))
               : ctx->errcode;
  icl_tensor_free(ctx, a);
  icl_tensor_free(ctx, y);
  icl_tensor_free(ctx, a2);
  icl_tensor_free(ctx, y2);
  if (rc) {
    icl_tensor_free(ctx, out);
    return NULL;
  }
  if (host && dev != ICL_CPU) {
    icl_tensor *o = icl_to_device(ctx, out, dev);
    icl_tensor_free(ctx, out);
    return o;
  }
  return out;
}
