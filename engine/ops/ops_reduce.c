/* Reductions, softmax and matmul at the tensor level. */
#include "ops.h"

#include <string.h>

icl_tensor *icl_op_reduce(icl_ctx *ctx, icl_redop op, const icl_tensor *t, int dim, int keepdim) {
  const icl_backend *be = icl_backend_get(ctx, t->storage->device);
  if (!be) return NULL;
  int d = -1;
  if (dim != ICL_DIM_ALL && icl_norm_dim(ctx, "reduce", dim, t->ndim, &d)) return NULL;
  int64_t n = d < 0 ? icl_numel(t) : t->shape[d];
  int needs_one = op == ICL_RED_MAX || op == ICL_RED_MIN || op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN;
  if (n == 0 && needs_one) {
    icl_errorf(ctx, ICL_ESHAPE, "reduce: max/min/argmax over an empty dim");
    return NULL;
  }
  icl_tensor *src = t->dtype == ICL_F32 ? icl_view_new(ctx, t) : icl_to_dtype(ctx, t, ICL_F32);
  if (!src) return NULL;
  int64_t shape[ICL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (d < 0 || i == d) {
      if (keepdim) shape[nd++] = 1;
    } else {
      shape[nd++] = t->shape[i];
    }
  }
  icl_dtype odt = (op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN) ? ICL_I32 : ICL_F32;
  icl_tensor *out = icl_tensor_empty(ctx, odt, t->storage->device, nd, shape);
  if (out) {
    /* the kernel wants the output without the reduced dim */
    icl_view ov = icl_tensor_view_of(out);
    if (keepdim && d >= 0) {
      ov.ndim = t->ndim - 1;
      int k = 0;
      for (int i = 0; i < t->ndim; i++)
        if (i != d) {
          ov.shape[k] = out->shape[i];
          ov.stride[k] = out->stride[i];
          k++;
        }
    }
    if (be->reduce(ctx, op, ov, odt, icl_tensor_view_of(src), d)) {
      icl_tensor_free(ctx, out);
      out = NULL;
    }
  }
  icl_tensor_free(ctx, src);
  return out;
}

icl_tensor *icl_op_softmax(icl_ctx *ctx, const icl_tensor *t, int dim, int log) {
  const icl_backend *be = icl_backend_get(ctx, t->storage->device);
  if (!be) return NULL;
  int d;
  if (t->ndim == 0) {
    icl_errorf(ctx, ICL_ESHAPE, "softmax: needs at least one dim");
    return NULL;
  }
  if (icl_norm_dim(ctx, "softmax", dim, t->ndim, &d)) return NULL;
  /* move dim last, make rows contiguous, run, move back */
  icl_tensor *tt = icl_transpose(ctx, t, d, t->ndim - 1);
  icl_tensor *c = tt ? (tt->dtype == ICL_F32 ? icl_clone(ctx, tt) : icl_to_dtype(ctx, tt, ICL_F32)) : NULL;
  icl_tensor_free(ctx, tt);
  if (!c) return NULL;
  int64_t cols = c->shape[c->ndim - 1], rows = cols ? icl_numel(c) / cols : 0;
  if (rows && be->softmax(ctx, icl_tensor_data(c), icl_tensor_data(c), rows, cols, log)) {
    icl_tensor_free(ctx, c);
    return NULL;
  }
  icl_tensor *back = icl_transpose(ctx, c, d, t->ndim - 1);
  icl_tensor_free(ctx, c);
  if (!back) return NULL;
  icl_tensor *out = icl_contiguous(ctx, back);
  icl_tensor_free(ctx, back);
  return out;
}

/* [.., m, k] x [.., k, n] with broadcast batch dims; 1-d operands are
 * promoted as in numpy and the promoted dim is dropped from the result. */
icl_tensor *icl_op_matmul(icl_ctx *ctx, const icl_tensor *a0, const icl_tensor *b0) {
  char s1[128], s2[128];
  if (a0->ndim == 0 || b0->ndim == 0) {
    icl_errorf(ctx, ICL_ESHAPE, "matmul: operands must have at least 1 dim (got %s and %s)", ICL_SHAPE_STR(a0, s1),
               ICL_SHAPE_STR(b0, s2));
    return NULL;
  }
  if (a0->storage->device != b0->storage->device) {
    icl_errorf(ctx, ICL_EDEVICE, "matmul: operands on different devices");
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, a0->storage->device);
  if (!be) return NULL;
  icl_tensor *a = a0->ndim == 1 ? icl_unsqueeze(ctx, a0, 0) : icl_view_new(ctx, a0);
  icl_tensor *b = b0->ndim == 1 ? icl_unsqueeze(ctx, b0, 1) : icl_view_new(ctx, b0);
  icl_tensor *out = NULL, *ac = NULL, *bc = NULL, *ae = NULL, *be_ = NULL;
  if (!a || !b) goto done;
  int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
  int64_t k2 = b->shape[b->ndim - 2], n = b->shape[b->ndim - 1];
  if (k != k2) {
    icl_errorf(ctx, ICL_ESHAPE, "matmul: inner dims differ: %s x %s (%lld vs %lld)", ICL_SHAPE_STR(a0, s1),
               ICL_SHAPE_STR(b0, s2), (long long)k, (long long)k2);
    goto done;
  }
  int nbd;
  int64_t bshape[ICL_MAX_DIMS];
  if (icl_broadcast_shape(ctx, "matmul", a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nbd, bshape)) goto done;
  int64_t batch = icl_shape_numel(nbd, bshape);
  int64_t ashape[ICL_MAX_DIMS], bshp[ICL_MAX_DIMS], oshape[ICL_MAX_DIMS];
  memcpy(ashape, bshape, sizeof(int64_t) * (size_t)nbd);
  memcpy(bshp, bshape, sizeof(int64_t) * (size_t)nbd);
  memcpy(oshape, bshape, sizeof(int64_t) * (size_t)nbd);
  ashape[nbd] = m, ashape[nbd + 1] = k;
  bshp[nbd] = k, bshp[nbd + 1] = n;
  oshape[nbd] = m, oshape[nbd + 1] = n;
  ae = icl_expand(ctx, a, nbd + 2, ashape);
  be_ = icl_expand(ctx, b, nbd + 2, bshp);
  if (!ae || !be_) goto done;
  ac = icl_contiguous(ctx, ae);
  bc = icl_contiguous(ctx, be_);
  if (!ac || !bc) goto done;
  if (ac->dtype != ICL_F32 || bc->dtype != ICL_F32) {
    icl_errorf(ctx, ICL_EINVAL, "matmul: operands must be float32");
    goto done;
  }
  out = icl_tensor_empty(ctx, ICL_F32, a0->storage->device, nbd + 2, oshape);
  if (!out) goto done;
  if (be->gemm(ctx, 0, 0, m, n, k, 1.0f, icl_tensor_data(ac), k, m * k, icl_tensor_data(bc), n, k * n, 0.0f,
               icl_tensor_data(out), n, m * n, batch)) {
    icl_tensor_free(ctx, out);
    out = NULL;
    goto done;
  }
  if (a0->ndim == 1 || b0->ndim == 1) {
    int dim = a0->ndim == 1 ? out->ndim - 2 : out->ndim - 1;
    icl_tensor *sq = icl_squeeze(ctx, out, dim);
    icl_tensor_free(ctx, out);
    out = sq;
    if (out && a0->ndim == 1 && b0->ndim == 1) { /* vector . vector -> 0-dim */
      icl_tensor *s2t = icl_squeeze(ctx, out, ICL_DIM_ALL);
      icl_tensor_free(ctx, out);
      out = s2t;
    }
  }
done:
  icl_tensor_free(ctx, a);
  icl_tensor_free(ctx, b);
  icl_tensor_free(ctx, ae);
  icl_tensor_free(ctx, be_);
  icl_tensor_free(ctx, ac);
  icl_tensor_free(ctx, bc);
  return out;
}
