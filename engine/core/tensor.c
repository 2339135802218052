#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

size_t icl_dtype_size(icl_dtype dt) { return dt == ICL_I32 ? sizeof(int32_t) : sizeof(float); }
const char *icl_dtype_name(icl_dtype dt) { return dt == ICL_I32 ? "int32" : "float32"; }
const char *icl_device_name(icl_device dev) { return dev == ICL_CUDA ? "cuda" : "cpu"; }

int64_t icl_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

int64_t icl_numel(const icl_tensor *t) { return icl_shape_numel(t->ndim, t->shape); }

const char *icl_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t used = 0;
  used += (size_t)snprintf(buf + used, n - used, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
}

int icl_is_contiguous(const icl_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

void *icl_tensor_data(const icl_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)icl_dtype_size(t->dtype);
}

icl_view icl_tensor_view_of(const icl_tensor *t) {
  icl_view v;
  memset(&v, 0, sizeof v);
  v.data = icl_tensor_data(t);
  v.ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++) {
    v.shape[i] = t->shape[i];
    v.stride[i] = t->stride[i];
  }
  return v;
}

int icl_same_shape(const icl_tensor *a, const icl_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static int check_shape(icl_ctx *ctx, const char *op, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > ICL_MAX_DIMS)
    return icl_errorf(ctx, ICL_ESHAPE, "%s: %d dims (at most %d are supported)", op, ndim, ICL_MAX_DIMS);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return icl_errorf(ctx, ICL_ESHAPE, "%s: negative size %lld at dim %d", op, (long long)shape[i], i + 1);
  return ICL_OK;
}

static icl_tensor *header_new(icl_ctx *ctx, icl_storage *st, icl_dtype dt, int ndim, const int64_t *shape) {
  icl_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    icl_errorf(ctx, ICL_ENOMEM, "tensor: out of host memory for a header");
    return NULL;
  }
  t->storage = st;
  st->refcount++;
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  contiguous_strides(ndim, shape, t->stride);
  return t;
}

icl_tensor *icl_tensor_empty(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape) {
  if (check_shape(ctx, "tensor", ndim, shape)) return NULL;
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return NULL;
  icl_storage *st = calloc(1, sizeof *st);
  if (!st) {
    icl_errorf(ctx, ICL_ENOMEM, "tensor: out of host memory");
    return NULL;
  }
  size_t nbytes = (size_t)icl_shape_numel(ndim, shape) * icl_dtype_size(dt);
  /* a zero-size tensor still gets a valid pointer, so views of it are uniform */
  st->data = be->alloc(ctx, nbytes ? nbytes : 4);
  if (!st->data) {
    free(st);
    return NULL;
  }
  st->nbytes = nbytes;
  st->device = dev;
  icl_tensor *t = header_new(ctx, st, dt, ndim, shape);
  if (!t) {
    be->release(ctx, st->data, nbytes);
    free(st);
  }
  return t;
}

icl_tensor *icl_tensor_full(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape,
                            double value) {
  icl_tensor *t = icl_tensor_empty(ctx, dt, dev, ndim, shape);
  if (t && icl_fill(ctx, t, value)) {
    icl_tensor_free(ctx, t);
    return NULL;
  }
  return t;
}

icl_tensor *icl_tensor_zeros(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape) {
  return icl_tensor_full(ctx, dt, dev, ndim, shape, 0.0);
}

icl_tensor *icl_tensor_borrow(icl_ctx *ctx, void *data, icl_dtype dt, icl_device dev, int ndim,
                              const int64_t *shape) {
  if (check_shape(ctx, "tensor", ndim, shape)) return NULL;
  icl_storage *st = calloc(1, sizeof *st);
  if (!st) {
    icl_errorf(ctx, ICL_ENOMEM, "tensor: out of host memory");
    return NULL;
  }
  st->data = data;
  st->nbytes = (size_t)icl_shape_numel(ndim, shape) * icl_dtype_size(dt);
  st->device = dev;
  st->borrowed = 1;
  icl_tensor *t = header_new(ctx, st, dt, ndim, shape);
  if (!t) free(st);
  return t;
}

icl_tensor *icl_tensor_from_host(icl_ctx *ctx, const void *src, icl_dtype dt, icl_device dev, int ndim,
                                 const int64_t *shape) {
  icl_tensor *t = icl_tensor_empty(ctx, dt, dev, ndim, shape);
  if (!t) return NULL;
  const icl_backend *be = icl_backend_get(ctx, dev);
  size_t n = (size_t)icl_numel(t) * icl_dtype_size(dt);
  if (n && be->memcpy(ctx, t->storage->data, dev, src, ICL_CPU, n)) {
    icl_tensor_free(ctx, t);
    return NULL;
  }
  return t;
}

void icl_tensor_free(icl_ctx *ctx, icl_tensor *t) {
  if (!t) return;
  icl_storage *st = t->storage;
  free(t);
  if (--st->refcount > 0) return;
  if (!st->borrowed) {
    const icl_backend *be = icl_backend_get(ctx, st->device);
    if (be) be->release(ctx, st->data, st->nbytes);
  }
  free(st);
}

icl_tensor *icl_view_new(icl_ctx *ctx, const icl_tensor *t) {
  icl_tensor *v = malloc(sizeof *v);
  if (!v) {
    icl_errorf(ctx, ICL_ENOMEM, "tensor: out of host memory for a view");
    return NULL;
  }
  *v = *t;
  v->storage->refcount++;
  return v;
}

int icl_norm_dim(icl_ctx *ctx, const char *op, int dim, int ndim, int *out) {
  int d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    return icl_errorf(ctx, ICL_ERANGE, "%s: dim %d out of range for a %d-dim tensor", op, dim, ndim);
  *out = d;
  return ICL_OK;
}

/* Try to express the new shape as strides over the old one without copying
 * (the classic "view" rule: each run of merged old dims must be contiguous). */
static int view_strides(const icl_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  int oi = 0, ni = 0;
  while (oi < t->ndim || ni < ndim) {
    /* skip size-1 dims, which can take any stride */
    if (ni < ndim && shape[ni] == 1) {
      stride[ni++] = 1;
      continue;
    }
    if (oi < t->ndim && t->shape[oi] == 1) {
      oi++;
      continue;
    }
    if (oi >= t->ndim || ni >= ndim) return 0;
    /* gather a chunk of old dims and new dims with equal products */
    int64_t op = t->shape[oi], np = shape[ni];
    int o0 = oi, n0 = ni;
    while (op != np) {
      if (op < np) {
        if (++oi >= t->ndim) return 0;
        op *= t->shape[oi];
      } else {
        if (++ni >= ndim) return 0;
        np *= shape[ni];
      }
    }
    for (int k = o0; k < oi; k++) {
      if (t->shape[k + 1] == 1) continue;
      if (t->stride[k] != t->stride[k + 1] * t->shape[k + 1]) {
        /* allow skipping size-1 dims inside the chunk */
        int j = k + 1;
        while (j <= oi && t->shape[j] == 1) j++;
        if (j > oi || t->stride[k] != t->stride[j] * t->shape[j]) return 0;
      }
    }
    int64_t s = t->stride[oi];
    for (int k = ni; k >= n0; k--) {
      stride[k] = s;
      s *= shape[k];
    }
    oi++;
    ni++;
  }
  return 1;
}

icl_tensor *icl_reshape(icl_ctx *ctx, const icl_tensor *t, int ndim, const int64_t *shape_in) {
  int64_t shape[ICL_MAX_DIMS];
  char b1[128], b2[128];
  if (ndim > ICL_MAX_DIMS) {
    icl_errorf(ctx, ICL_ESHAPE, "reshape: %d dims (at most %d)", ndim, ICL_MAX_DIMS);
    return NULL;
  }
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    shape[i] = shape_in[i];
    if (shape[i] == -1) {
      if (infer >= 0) {
        icl_errorf(ctx, ICL_ESHAPE, "reshape: more than one -1 in %s", icl_shape_str(ndim, shape_in, b1, sizeof b1));
        return NULL;
      }
      infer = i;
    } else if (shape[i] < 0) {
      icl_errorf(ctx, ICL_ESHAPE, "reshape: negative size in %s", icl_shape_str(ndim, shape_in, b1, sizeof b1));
      return NULL;
    } else {
      known *= shape[i];
    }
  }
  int64_t n = icl_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known) {
      icl_errorf(ctx, ICL_ESHAPE, "reshape: cannot reshape %s (%lld elements) to %s", ICL_SHAPE_STR(t, b1),
                 (long long)n, icl_shape_str(ndim, shape_in, b2, sizeof b2));
      return NULL;
    }
    shape[infer] = n / known;
  }
  if (icl_shape_numel(ndim, shape) != n) {
    icl_errorf(ctx, ICL_ESHAPE, "reshape: cannot reshape %s (%lld elements) to %s", ICL_SHAPE_STR(t, b1),
               (long long)n, icl_shape_str(ndim, shape, b2, sizeof b2));
    return NULL;
  }
  int64_t stride[ICL_MAX_DIMS];
  if (n > 0 && view_strides(t, ndim, shape, stride)) {
    icl_tensor *v = icl_view_new(ctx, t);
    if (!v) return NULL;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
      v->shape[i] = shape[i];
      v->stride[i] = stride[i];
    }
    return v;
  }
  icl_tensor *c = icl_clone(ctx, t);
  if (!c) return NULL;
  c->ndim = ndim;
  for (int i = 0; i < ndim; i++) c->shape[i] = shape[i];
  contiguous_strides(ndim, shape, c->stride);
  return c;
}

icl_tensor *icl_transpose(icl_ctx *ctx, const icl_tensor *t, int a, int b) {
  int da, db;
  if (icl_norm_dim(ctx, "transpose", a, t->ndim, &da) || icl_norm_dim(ctx, "transpose", b, t->ndim, &db))
    return NULL;
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  int64_t s = v->shape[da], st = v->stride[da];
  v->shape[da] = v->shape[db];
  v->stride[da] = v->stride[db];
  v->shape[db] = s;
  v->stride[db] = st;
  return v;
}

icl_tensor *icl_permute(icl_ctx *ctx, const icl_tensor *t, const int *perm) {
  int seen[ICL_MAX_DIMS] = {0};
  for (int i = 0; i < t->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]]) {
      icl_errorf(ctx, ICL_EINVAL, "permute: not a permutation of the %d dims", t->ndim);
      return NULL;
    }
    seen[perm[i]] = 1;
  }
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  for (int i = 0; i < t->ndim; i++) {
    v->shape[i] = t->shape[perm[i]];
    v->stride[i] = t->stride[perm[i]];
  }
  return v;
}

icl_tensor *icl_narrow(icl_ctx *ctx, const icl_tensor *t, int dim, int64_t start, int64_t len) {
  int d;
  char b[128];
  if (icl_norm_dim(ctx, "narrow", dim, t->ndim, &d)) return NULL;
  if (start < 0 || len < 0 || start + len > t->shape[d]) {
    icl_errorf(ctx, ICL_ERANGE, "narrow: start %lld length %lld out of range for dim %d of %s", (long long)start + 1,
               (long long)len, d + 1, ICL_SHAPE_STR(t, b));
    return NULL;
  }
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  v->offset += start * t->stride[d];
  v->shape[d] = len;
  return v;
}

icl_tensor *icl_select(icl_ctx *ctx, const icl_tensor *t, int dim, int64_t index) {
  int d;
  char b[128];
  if (icl_norm_dim(ctx, "select", dim, t->ndim, &d)) return NULL;
  if (index < 0 || index >= t->shape[d]) {
    icl_errorf(ctx, ICL_ERANGE, "select: index %lld out of range for dim %d of %s", (long long)index + 1, d + 1,
               ICL_SHAPE_STR(t, b));
    return NULL;
  }
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  v->offset += index * t->stride[d];
  for (int i = d; i < t->ndim - 1; i++) {
    v->shape[i] = t->shape[i + 1];
    v->stride[i] = t->stride[i + 1];
  }
  v->ndim--;
  return v;
}

icl_tensor *icl_unsqueeze(icl_ctx *ctx, const icl_tensor *t, int dim) {
  int d;
  if (t->ndim >= ICL_MAX_DIMS) {
    icl_errorf(ctx, ICL_ESHAPE, "unsqueeze: already %d dims", t->ndim);
    return NULL;
  }
  if (icl_norm_dim(ctx, "unsqueeze", dim, t->ndim + 1, &d)) return NULL;
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  for (int i = t->ndim; i > d; i--) {
    v->shape[i] = t->shape[i - 1];
    v->stride[i] = t->stride[i - 1];
  }
  v->shape[d] = 1;
  v->stride[d] = d < t->ndim ? t->stride[d] * t->shape[d] : 1;
  v->ndim++;
  return v;
}

icl_tensor *icl_squeeze(icl_ctx *ctx, const icl_tensor *t, int dim) {
  int d = -1;
  if (dim != ICL_DIM_ALL && icl_norm_dim(ctx, "squeeze", dim, t->ndim, &d)) return NULL;
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  int n = 0;
  for (int i = 0; i < t->ndim; i++) {
    int drop = t->shape[i] == 1 && (dim == ICL_DIM_ALL || i == d);
    if (!drop) {
      v->shape[n] = t->shape[i];
      v->stride[n] = t->stride[i];
      n++;
    }
  }
  v->ndim = n;
  return v;
}

int icl_broadcast_shape(icl_ctx *ctx, const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                        int *nout, int64_t *sout) {
  int n = na > nb ? na : nb;
  char b1[128], b2[128];
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return icl_errorf(ctx, ICL_ESHAPE, "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", op,
                        icl_shape_str(na, sa, b1, sizeof b1), icl_shape_str(nb, sb, b2, sizeof b2), i + 1,
                        (long long)da, (long long)db);
    sout[i] = da == 1 ? db : da;
  }
  *nout = n;
  return ICL_OK;
}

int icl_broadcast_view(icl_ctx *ctx, const char *op, const icl_tensor *t, int ndim, const int64_t *shape,
                       icl_view *out) {
  char b1[128], b2[128];
  if (t->ndim > ndim)
    return icl_errorf(ctx, ICL_ESHAPE, "%s: cannot broadcast %s to %s", op, ICL_SHAPE_STR(t, b1),
                      icl_shape_str(ndim, shape, b2, sizeof b2));
  memset(out, 0, sizeof *out);
  out->data = icl_tensor_data(t);
  out->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    int j = t->ndim - ndim + i;
    out->shape[i] = shape[i];
    if (j < 0) {
      out->stride[i] = 0;
    } else if (t->shape[j] == shape[i]) {
      out->stride[i] = t->stride[j];
    } else if (t->shape[j] == 1) {
      out->stride[i] = 0;
    } else {
      return icl_errorf(ctx, ICL_ESHAPE, "%s: cannot broadcast %s to %s", op, ICL_SHAPE_STR(t, b1),
                        icl_shape_str(ndim, shape, b2, sizeof b2));
    }
  }
  return ICL_OK;
}

icl_tensor *icl_expand(icl_ctx *ctx, const icl_tensor *t, int ndim, const int64_t *shape_in) {
  int64_t shape[ICL_MAX_DIMS];
  if (ndim > ICL_MAX_DIMS || ndim < t->ndim) {
    icl_errorf(ctx, ICL_ESHAPE, "expand: target has %d dims, tensor has %d", ndim, t->ndim);
    return NULL;
  }
  for (int i = 0; i < ndim; i++) {
    int j = t->ndim - ndim + i;
    shape[i] = (shape_in[i] == -1 && j >= 0) ? t->shape[j] : shape_in[i];
  }
  icl_view bv;
  if (icl_broadcast_view(ctx, "expand", t, ndim, shape, &bv)) return NULL;
  icl_tensor *v = icl_view_new(ctx, t);
  if (!v) return NULL;
  v->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    v->shape[i] = bv.shape[i];
    v->stride[i] = bv.stride[i];
  }
  return v;
}

int icl_copy_into(icl_ctx *ctx, icl_tensor *dst, const icl_tensor *src) {
  icl_view sv;
  if (icl_broadcast_view(ctx, "copy", src, dst->ndim, dst->shape, &sv)) return ICL_ESHAPE;
  if (icl_numel(dst) == 0) return ICL_OK;
  if (dst->storage->device != src->storage->device) {
    /* cross-device: make both ends contiguous and move bytes */
    if (!icl_is_contiguous(dst) || !icl_is_contiguous(src) || !icl_same_shape(dst, src) ||
        dst->dtype != src->dtype)
      return icl_errorf(ctx, ICL_EINVAL, "copy: cross-device copies need contiguous tensors of one shape and dtype");
    const icl_backend *be = icl_backend_get(ctx, ICL_CUDA);
    if (!be) return ctx->errcode;
    return be->memcpy(ctx, icl_tensor_data(dst), dst->storage->device, icl_tensor_data(src),
                      src->storage->device, (size_t)icl_numel(dst) * icl_dtype_size(dst->dtype));
  }
  const icl_backend *be = icl_backend_get(ctx, dst->storage->device);
  if (!be) return ctx->errcode;
  return be->copy(ctx, icl_tensor_view_of(dst), dst->dtype, sv, src->dtype);
}

int icl_fill(icl_ctx *ctx, icl_tensor *t, double value) {
  if (icl_numel(t) == 0) return ICL_OK;
  const icl_backend *be = icl_backend_get(ctx, t->storage->device);
  if (!be) return ctx->errcode;
  return be->fill(ctx, icl_tensor_view_of(t), t->dtype, value);
}

icl_tensor *icl_clone(icl_ctx *ctx, const icl_tensor *t) {
  icl_tensor *c = icl_tensor_empty(ctx, t->dtype, t->storage->device, t->ndim, t->shape);
  if (!c) return NULL;
  if (icl_copy_into(ctx, c, t)) {
    icl_tensor_free(ctx, c);
    return NULL;
  }
  return c;
}

icl_tensor *icl_contiguous(icl_ctx *ctx, const icl_tensor *t) {
  return icl_is_contiguous(t) ? icl_view_new(ctx, t) : icl_clone(ctx, t);
}

icl_tensor *icl_to_dtype(icl_ctx *ctx, const icl_tensor *t, icl_dtype dt) {
  if (t->dtype == dt) return icl_view_new(ctx, t);
  icl_tensor *c = icl_tensor_empty(ctx, dt, t->storage->device, t->ndim, t->shape);
  if (!c) return NULL;
  if (icl_copy_into(ctx, c, t)) {
    icl_tensor_free(ctx, c);
    return NULL;
  }
  return c;
}

icl_tensor *icl_to_device(icl_ctx *ctx, const icl_tensor *t, icl_device dev) {
  if (t->storage->device == dev) return icl_view_new(ctx, t);
  icl_tensor *src = icl_contiguous(ctx, t);
  if (!src) return NULL;
  icl_tensor *c = icl_tensor_empty(ctx, t->dtype, dev, t->ndim, t->shape);
  if (c && icl_copy_into(ctx, c, src)) {
    icl_tensor_free(ctx, c);
    c = NULL;
  }
  icl_tensor_free(ctx, src);
  return c;
}

int icl_copy_to_host(icl_ctx *ctx, void *dst, const icl_tensor *t) {
  int64_t n = icl_numel(t);
  if (n == 0) return ICL_OK;
  if (t->storage->device == ICL_CPU) {
    icl_view dv = icl_tensor_view_of(t);
    dv.data = dst;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
      dv.stride[i] = s;
      s *= t->shape[i];
    }
    return icl_cpu_backend.copy(ctx, dv, t->dtype, icl_tensor_view_of(t), t->dtype);
  }
  icl_tensor *c = icl_contiguous(ctx, t);
  if (!c) return ctx->errcode;
  const icl_backend *be = icl_backend_get(ctx, t->storage->device);
  int rc = be ? be->memcpy(ctx, dst, ICL_CPU, icl_tensor_data(c), c->storage->device,
                           (size_t)n * icl_dtype_size(t->dtype))
              : ctx->errcode;
  icl_tensor_free(ctx, c);
  return rc;
}
