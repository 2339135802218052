/* Elementwise tensor ops with numpy broadcasting. */
#include "ops.h"

static const char *binop_name(icl_binop op) {
  static const char *names[] = {"add", "sub", "mul", "div", "pow", "max", "min",
                                "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return op < ICL_BIN__COUNT ? names[op] : "binary";
}

/* Float view of t: t itself (+1 ref) or a converted copy. */
static icl_tensor *as_float(icl_ctx *ctx, const icl_tensor *t) {
  return t->dtype == ICL_F32 ? icl_view_new(ctx, t) : icl_to_dtype(ctx, t, ICL_F32);
}

static const icl_backend *backend_of2(icl_ctx *ctx, const char *op, const icl_tensor *a, const icl_tensor *b) {
  if (b && a->storage->device != b->storage->device) {
    icl_errorf(ctx, ICL_EDEVICE, "%s: operands on different devices (%s and %s)", op,
               icl_device_name(a->storage->device), icl_device_name(b->storage->device));
    return NULL;
  }
  return icl_backend_get(ctx, a->storage->device);
}

icl_tensor *icl_op_binary(icl_ctx *ctx, icl_binop op, const icl_tensor *a, const icl_tensor *b) {
  const char *name = binop_name(op);
  const icl_backend *be = backend_of2(ctx, name, a, b);
  if (!be) return NULL;
  int nd;
  int64_t shape[ICL_MAX_DIMS];
  if (icl_broadcast_shape(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape)) return NULL;
  icl_tensor *fa = as_float(ctx, a), *fb = fa ? as_float(ctx, b) : NULL;
  icl_tensor *out = fb ? icl_tensor_empty(ctx, ICL_F32, a->storage->device, nd, shape) : NULL;
  icl_view va, vb;
  int ok = out && !icl_broadcast_view(ctx, name, fa, nd, shape, &va) &&
           !icl_broadcast_view(ctx, name, fb, nd, shape, &vb) &&
           (icl_numel(out) == 0 || !be->binary(ctx, op, icl_tensor_view_of(out), va, vb));
  icl_tensor_free(ctx, fa);
  icl_tensor_free(ctx, fb);
  if (!ok) {
    icl_tensor_free(ctx, out);
    return NULL;
  }
  return out;
}

/* scalar ops are unary maps with a parameter */
icl_tensor *icl_op_binary_scalar(icl_ctx *ctx, icl_binop op, const icl_tensor *a, float s, int scalar_left) {
  switch (op) {
  case ICL_BIN_ADD: return icl_op_unary(ctx, ICL_UN_AFFINE, a, 1.0f, s);
  case ICL_BIN_MUL: return icl_op_unary(ctx, ICL_UN_AFFINE, a, s, 0.0f);
  case ICL_BIN_SUB:
    return scalar_left ? icl_op_unary(ctx, ICL_UN_RSUB, a, s, 0) : icl_op_unary(ctx, ICL_UN_AFFINE, a, 1.0f, -s);
  case ICL_BIN_DIV:
    return scalar_left ? icl_op_unary(ctx, ICL_UN_RDIV, a, s, 0) : icl_op_unary(ctx, ICL_UN_AFFINE, a, 1.0f / s, 0);
  case ICL_BIN_POW: return icl_op_unary(ctx, scalar_left ? ICL_UN_RPOWS : ICL_UN_POWS, a, s, 0);
  case ICL_BIN_MAX: return icl_op_unary(ctx, ICL_UN_MAXS, a, s, 0);
  case ICL_BIN_MIN: return icl_op_unary(ctx, ICL_UN_MINS, a, s, 0);
  default: {
    /* comparisons: s < a is a > s */
    icl_binop cmp = op;
    if (scalar_left) {
      if (op == ICL_BIN_LT) cmp = ICL_BIN_GT;
      else if (op == ICL_BIN_LE) cmp = ICL_BIN_GE;
      else if (op == ICL_BIN_GT) cmp = ICL_BIN_LT;
      else if (op == ICL_BIN_GE) cmp = ICL_BIN_LE;
    }
    return icl_op_unary(ctx, ICL_UN_CMPS, a, s, (float)cmp);
  }
  }
}

icl_tensor *icl_op_unary(icl_ctx *ctx, icl_unop op, const icl_tensor *a, float p0, float p1) {
  const icl_backend *be = backend_of2(ctx, "unary", a, NULL);
  if (!be) return NULL;
  icl_tensor *fa = as_float(ctx, a);
  if (!fa) return NULL;
  icl_tensor *out = icl_tensor_empty(ctx, ICL_F32, a->storage->device, a->ndim, a->shape);
  if (out && icl_numel(out) && be->unary(ctx, op, icl_tensor_view_of(out), icl_tensor_view_of(fa), p0, p1)) {
    icl_tensor_free(ctx, out);
    out = NULL;
  }
  icl_tensor_free(ctx, fa);
  return out;
}

int icl_op_binary_(icl_ctx *ctx, icl_binop op, icl_tensor *a, const icl_tensor *b) {
  const char *name = binop_name(op);
  const icl_backend *be = backend_of2(ctx, name, a, b);
  if (!be) return ctx->errcode;
  if (a->dtype != ICL_F32) return icl_errorf(ctx, ICL_EINVAL, "%s (in place): target must be float32", name);
  for (int i = 0; i < a->ndim; i++)
    if (a->stride[i] == 0 && a->shape[i] > 1)
      return icl_errorf(ctx, ICL_EINVAL, "%s (in place): target is an expanded view; clone it first", name);
  icl_tensor *fb = as_float(ctx, b);
  if (!fb) return ctx->errcode;
  icl_view vb;
  int rc = icl_broadcast_view(ctx, name, fb, a->ndim, a->shape, &vb);
  if (!rc && icl_numel(a)) rc = be->binary(ctx, op, icl_tensor_view_of(a), icl_tensor_view_of(a), vb);
  icl_tensor_free(ctx, fb);
  return rc;
}

int icl_op_unary_(icl_ctx *ctx, icl_unop op, icl_tensor *a, float p0, float p1) {
  const icl_backend *be = backend_of2(ctx, "unary", a, NULL);
  if (!be) return ctx->errcode;
  if (a->dtype != ICL_F32) return icl_errorf(ctx, ICL_EINVAL, "in-place op: target must be float32");
  if (!icl_numel(a)) return ICL_OK;
  return be->unary(ctx, op, icl_tensor_view_of(a), icl_tensor_view_of(a), p0, p1);
}

int icl_op_has_nonfinite(icl_ctx *ctx, const icl_tensor *t, int *bad) {
  *bad = 0;
  if (t->dtype != ICL_F32 || !icl_numel(t)) return ICL_OK;
  const icl_backend *be = icl_backend_get(ctx, t->storage->device);
  if (!be) return ctx->errcode;
  icl_tensor *c = icl_contiguous(ctx, t);
  if (!c) return ctx->errcode;
  int rc = be->nonfinite(ctx, icl_tensor_data(c), icl_numel(c), bad);
  icl_tensor_free(ctx, c);
  return rc;
}
