#include "module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"

icl_module *icl_module_alloc(icl_ctx *ctx, const icl_module_ops *ops, int nparams, const char *const *names,
                             const int *ndims, const int64_t (*shapes)[2], icl_device dev) {
  icl_module *m = calloc(1, sizeof *m);
  if (!m) {
    icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", ops->kind);
    return NULL;
  }
  m->ops = ops;
  m->nparams = nparams;
  int64_t total = 0;
  for (int i = 0; i < nparams; i++) total += icl_shape_numel(ndims[i], shapes[i]);
  int64_t n = total ? total : 1;
  icl_tensor *value = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n);
  icl_tensor *grad = value ? icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n) : NULL;
  int64_t off = 0;
  for (int i = 0; grad && i < nparams; i++) {
    snprintf(m->pname[i], sizeof m->pname[i], "%s", names[i]);
    int64_t k = icl_shape_numel(ndims[i], shapes[i]);
    icl_tensor *v = icl_narrow(ctx, value, 0, off, k), *g = icl_narrow(ctx, grad, 0, off, k);
    m->param[i] = v ? icl_reshape(ctx, v, ndims[i], shapes[i]) : NULL;
    m->grad[i] = g ? icl_reshape(ctx, g, ndims[i], shapes[i]) : NULL;
    icl_tensor_free(ctx, v);
    icl_tensor_free(ctx, g);
    off += k;
  }
  icl_tensor_free(ctx, value);
  icl_tensor_free(ctx, grad);
  for (int i = 0; i < nparams; i++)
    if (!m->param[i] || !m->grad[i]) {
      icl_module_free(ctx, m);
      return NULL;
    }
  if (!grad) {
    icl_module_free(ctx, m);
    return NULL;
  }
  return m;
}

void icl_module_free(icl_ctx *ctx, icl_module *m) {
  if (!m) return;
  for (int i = 0; i < ICL_MODULE_MAX_PARAMS; i++) {
    icl_tensor_free(ctx, m->param[i]);
    icl_tensor_free(ctx, m->grad[i]);
  }
  icl_tensor_free(ctx, m->saved[0]);
  icl_tensor_free(ctx, m->saved[1]);
  free(m);
}

int64_t icl_module_numel(const icl_module *m) {
  int64_t n = 0;
  for (int i = 0; i < m->nparams; i++) n += icl_numel(m->param[i]);
  return n;
}

int icl_module_zero_grad(icl_ctx *ctx, icl_module *m) {
  for (int i = 0; i < m->nparams; i++)
    if (icl_fill(ctx, m->grad[i], 0.0)) return ctx->errcode;
  return ICL_OK;
}

int icl_module_bind(icl_ctx *ctx, icl_module *m, icl_tensor *value, icl_tensor *grad, int64_t offset,
                    int64_t *next) {
  int64_t need = offset + icl_module_numel(m);
  if (value->ndim != 1 || !icl_same_shape(value, grad) || need > value->shape[0])
    return icl_errorf(ctx, ICL_ESHAPE, "%s: bind needs flat buffers with room for %lld floats at offset %lld",
                      m->ops->kind, (long long)icl_module_numel(m), (long long)offset);
  for (int i = 0; i < m->nparams; i++) {
    int64_t k = icl_numel(m->param[i]);
    icl_tensor *v = icl_narrow(ctx, value, 0, offset, k), *g = icl_narrow(ctx, grad, 0, offset, k);
    icl_tensor *pv = v ? icl_reshape(ctx, v, m->param[i]->ndim, m->param[i]->shape) : NULL;
    icl_tensor *pg = g ? icl_reshape(ctx, g, m->param[i]->ndim, m->param[i]->shape) : NULL;
    icl_tensor_free(ctx, v);
    icl_tensor_free(ctx, g);
    if (!pv || !pg || icl_copy_into(ctx, pv, m->param[i]) || icl_fill(ctx, pg, 0.0)) {
      icl_tensor_free(ctx, pv);
      icl_tensor_free(ctx, pg);
      return ctx->errcode;
    }
    icl_tensor_free(ctx, m->param[i]);
    icl_tensor_free(ctx, m->grad[i]);
    m->param[i] = pv;
    m->grad[i] = pg;
    offset += k;
  }
  if (next) *next = offset;
  return ICL_OK;
}

icl_tensor *icl_module_rows(icl_ctx *ctx, const icl_tensor *t, int64_t cols, const char *op, int64_t *rows) {
  char b[128];
  if (t->dtype != ICL_F32) {
    icl_errorf(ctx, ICL_EINVAL, "%s: input must be float32", op);
    return NULL;
  }
  if (t->ndim < 1 || t->shape[t->ndim - 1] != cols) {
    icl_errorf(ctx, ICL_ESHAPE, "%s: input %s must have last dim %lld", op, ICL_SHAPE_STR(t, b), (long long)cols);
    return NULL;
  }
  *rows = cols ? icl_numel(t) / cols : 0;
  return icl_contiguous(ctx, t);
}

icl_tensor *icl_module_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in) {
  return m->ops->forward(ctx, m, in);
}

icl_tensor *icl_module_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout) {
  if (!m->ops->backward) {
    icl_errorf(ctx, ICL_ENOTIMPL, "%s: no backward", m->ops->kind);
    return NULL;
  }
  return m->ops->backward(ctx, m, in, gout);
}
