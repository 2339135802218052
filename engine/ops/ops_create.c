/* Creation ops: ranges, random draws, concatenation. */
#include <math.h>

#include "ops.h"

uint64_t icl_ctx_next_stream(icl_ctx *ctx) { return ctx->rng_stream++; }

icl_tensor *icl_op_arange(icl_ctx *ctx, icl_device dev, double start, double stop, double step) {
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
    icl_errorf(ctx, ICL_EINVAL, "arange: step must be non-zero and bounds finite");
    return NULL;
  }
  double span = (stop - start) / step;
  int64_t n = span > 0 ? (int64_t)ceil(span - 1e-9) : 0;
  icl_tensor *host = icl_tensor_empty(ctx, ICL_F32, ICL_CPU, 1, &n);
  if (!host) return NULL;
  float *p = icl_tensor_data(host);
  for (int64_t i = 0; i < n; i++) p[i] = (float)(start + (double)i * step);
  if (dev == ICL_CPU) return host;
  icl_tensor *out = icl_to_device(ctx, host, dev);
  icl_tensor_free(ctx, host);
  return out;
}

icl_tensor *icl_op_random(icl_ctx *ctx, icl_dist dist, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape,
                          double p0, double p1, uint64_t seed, uint64_t stream) {
  if (dist == ICL_DIST_BERNOULLI && !(p0 >= 0 && p0 <= 1)) {
    icl_errorf(ctx, ICL_EINVAL, "bernoulli: p = %g is not in [0, 1]", p0);
    return NULL;
  }
  if (dist == ICL_DIST_RANDINT && !(p1 > p0 && p1 - p0 <= 4294967295.0)) {
    icl_errorf(ctx, ICL_EINVAL, "randint: need low < high (got %g, %g)", p0, p1);
    return NULL;
  }
  if (dist == ICL_DIST_NORMAL && !(p1 >= 0)) {
    icl_errorf(ctx, ICL_EINVAL, "randn: std %g must be >= 0", p1);
    return NULL;
  }
  icl_tensor *t = icl_tensor_empty(ctx, dt, dev, ndim, shape);
  if (!t) return NULL;
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (icl_numel(t) && be->random(ctx, icl_tensor_view_of(t), dt, dist, p0, p1, seed, stream)) {
    icl_tensor_free(ctx, t);
    return NULL;
  }
  return t;
}

icl_tensor *icl_op_cat(icl_ctx *ctx, const icl_tensor *const *ts, int n, int dim) {
  char s1[128], s2[128];
  if (n < 1) {
    icl_errorf(ctx, ICL_EINVAL, "cat: needs at least one tensor");
    return NULL;
  }
  const icl_tensor *t0 = ts[0];
  int d;
  if (icl_norm_dim(ctx, "cat", dim, t0->ndim, &d)) return NULL;
  int64_t shape[ICL_MAX_DIMS];
  for (int i = 0; i < t0->ndim; i++) shape[i] = t0->shape[i];
  shape[d] = 0;
  for (int j = 0; j < n; j++) {
    const icl_tensor *t = ts[j];
    int bad = t->ndim != t0->ndim || t->storage->device != t0->storage->device;
    for (int i = 0; !bad && i < t0->ndim; i++)
      if (i != d && t->shape[i] != t0->shape[i]) bad = 1;
    if (bad) {
      icl_errorf(ctx, ICL_ESHAPE, "cat: tensor %d has shape %s, incompatible with %s along dim %d", j + 1,
                 ICL_SHAPE_STR(t, s1), ICL_SHAPE_STR(t0, s2), d + 1);
      return NULL;
    }
    shape[d] += t->shape[d];
  }
  icl_tensor *out = icl_tensor_empty(ctx, t0->dtype, t0->storage->device, t0->ndim, shape);
  if (!out) return NULL;
  int64_t at = 0;
  for (int j = 0; j < n; j++) {
    icl_tensor *part = icl_narrow(ctx, out, d, at, ts[j]->shape[d]);
    int rc = part ? icl_copy_into(ctx, part, ts[j]) : ctx->errcode;
    icl_tensor_free(ctx, part);
    if (rc) {
      icl_tensor_free(ctx, out);
      return NULL;
    }
    at += ts[j]->shape[d];
  }
  return out;
}
