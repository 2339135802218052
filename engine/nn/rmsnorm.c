/* RMSNorm (Llama): y = w * x / sqrt(mean(x^2) + eps); no mean, no bias. */
#include "module.h"

#include "core/backend.h"

static icl_tensor *rmsnorm_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in) {
  int64_t rows;
  icl_tensor *x = icl_module_rows(ctx, in, m->in_features, "RMSNorm.forward", &rows);
  if (!x) return NULL;
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  icl_tensor *y = be ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape) : NULL;
  icl_tensor *rstd = y ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, 1, &rows) : NULL;
  if (!rstd || be->nn->rmsnorm_fwd(ctx, icl_tensor_data(y), icl_tensor_data(rstd), icl_tensor_data(x),
                                   icl_tensor_data(m->param[0]), rows, m->in_features, m->eps)) {
    icl_tensor_free(ctx, y);
    icl_tensor_free(ctx, rstd);
    icl_tensor_free(ctx, x);
    return NULL;
  }
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, m->saved[0]);
  m->saved[0] = rstd;
  return y;
}

static icl_tensor *rmsnorm_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout) {
  int64_t rows, grows;
  char b[128];
  if (!m->saved[0]) {
    icl_errorf(ctx, ICL_EINVAL, "RMSNorm.backward: call forward first");
    return NULL;
  }
  icl_tensor *x = icl_module_rows(ctx, in, m->in_features, "RMSNorm.backward", &rows);
  icl_tensor *g = x ? icl_module_rows(ctx, gout, m->in_features, "RMSNorm.backward (grad_output)", &grows) : NULL;
  icl_tensor *dx = NULL;
  if (!g) goto done;
  if (rows != grows || rows != m->saved[0]->shape[0]) {
    icl_errorf(ctx, ICL_ESHAPE, "RMSNorm.backward: input %s does not match the last forward", ICL_SHAPE_STR(in, b));
    goto done;
  }
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  dx = icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape);
  if (dx && be->nn->rmsnorm_bwd(ctx, icl_tensor_data(dx), icl_tensor_data(m->grad[0]), icl_tensor_data(g),
                                icl_tensor_data(x), icl_tensor_data(m->param[0]), icl_tensor_data(m->saved[0]), rows,
                                m->in_features, 0)) {
    icl_tensor_free(ctx, dx);
    dx = NULL;
  }
done:
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, g);
  return dx;
}

static const icl_module_ops rmsnorm_ops = {"RMSNorm", rmsnorm_forward, rmsnorm_backward};

icl_module *icl_rmsnorm_new(icl_ctx *ctx, int64_t d, float eps, icl_device dev) {
  if (d <= 0 || !(eps > 0)) {
    icl_errorf(ctx, ICL_EINVAL, "RMSNorm: need d > 0 and eps > 0 (got %lld, %g)", (long long)d, eps);
    return NULL;
  }
  static const char *const names[] = {"weight"};
  int ndims[1] = {1};
  int64_t shapes[1][2] = {{d, 0}};
  icl_module *m = icl_module_alloc(ctx, &rmsnorm_ops, 1, names, ndims, (const int64_t(*)[2])shapes, dev);
  if (!m) return NULL;
  m->in_features = m->out_features = d;
  m->eps = eps;
  if (icl_fill(ctx, m->param[0], 1.0)) {
    icl_module_free(ctx, m);
    return NULL;
  }
  return m;
}
