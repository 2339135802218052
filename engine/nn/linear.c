/* Linear: y = x W^T (+ b), W stored [out, in] as PyTorch does. */
#include "module.h"

#include <math.h>

#include "core/backend.h"

static icl_tensor *out_like(icl_ctx *ctx, const icl_tensor *in, int64_t last) {
  int64_t shape[ICL_MAX_DIMS];
  for (int i = 0; i < in->ndim; i++) shape[i] = in->shape[i];
  shape[in->ndim - 1] = last;
  return icl_tensor_empty(ctx, ICL_F32, in->storage->device, in->ndim, shape);
}

static icl_tensor *linear_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in) {
  int64_t rows;
  icl_tensor *x = icl_module_rows(ctx, in, m->in_features, "Linear.forward", &rows);
  if (!x) return NULL;
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  icl_tensor *y = be ? out_like(ctx, x, m->out_features) : NULL;
  int rc = !y;
  if (!rc)
    rc = be->gemm(ctx, 0, 1, rows, m->out_features, m->in_features, 1.0f, icl_tensor_data(x), m->in_features, 0,
                  icl_tensor_data(m->param[0]), m->in_features, 0, 0.0f, icl_tensor_data(y), m->out_features, 0, 1);
  if (!rc && m->nparams > 1)
    rc = be->nn->bias_add(ctx, icl_tensor_data(y), icl_tensor_data(m->param[1]), rows, m->out_features);
  icl_tensor_free(ctx, x);
  if (rc) {
    icl_tensor_free(ctx, y);
    return NULL;
  }
  return y;
}

static icl_tensor *linear_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout) {
  int64_t rows, grows;
  char b1[128], b2[128];
  icl_tensor *x = icl_module_rows(ctx, in, m->in_features, "Linear.backward", &rows);
  icl_tensor *g = x ? icl_module_rows(ctx, gout, m->out_features, "Linear.backward (grad_output)", &grows) : NULL;
  icl_tensor *dx = NULL;
  if (!g) goto done;
  if (grows != rows) {
    icl_errorf(ctx, ICL_ESHAPE, "Linear.backward: grad_output %s does not match input %s", ICL_SHAPE_STR(gout, b1),
               ICL_SHAPE_STR(in, b2));
    goto done;
  }
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  dx = be ? out_like(ctx, x, m->in_features) : NULL;
  if (!dx) goto done;
  /* dx = g W ; dW += g^T x ; db += colsum(g) */
  int rc = be->gemm(ctx, 0, 0, rows, m->in_features, m->out_features, 1.0f, icl_tensor_data(g), m->out_features, 0,
                    icl_tensor_data(m->param[0]), m->in_features, 0, 0.0f, icl_tensor_data(dx), m->in_features, 0, 1);
  if (!rc)
    rc = be->gemm(ctx, 1, 0, m->out_features, m->in_features, rows, 1.0f, icl_tensor_data(g), m->out_features, 0,
                  icl_tensor_data(x), m->in_features, 0, 1.0f, icl_tensor_data(m->grad[0]), m->in_features, 0, 1);
  if (!rc && m->nparams > 1)
    rc = be->nn->bias_grad(ctx, icl_tensor_data(m->grad[1]), icl_tensor_data(g), rows, m->out_features);
  if (rc) {
    icl_tensor_free(ctx, dx);
    dx = NULL;
  }
done:
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, g);
  return dx;
}

static const icl_module_ops linear_ops = {"Linear", linear_forward, linear_backward};

/* PyTorch's default init, U(-1/sqrt(in), 1/sqrt(in)) for weight and bias */
icl_module *icl_linear_new(icl_ctx *ctx, int64_t in, int64_t out, int bias, icl_device dev, uint64_t seed) {
  if (in <= 0 || out <= 0) {
    icl_errorf(ctx, ICL_EINVAL, "Linear: sizes must be positive (got in=%lld, out=%lld)", (long long)in,
               (long long)out);
    return NULL;
  }
  static const char *const names[] = {"weight", "bias"};
  int ndims[2] = {2, 1};
  int64_t shapes[2][2] = {{out, in}, {out, 0}};
  icl_module *m = icl_module_alloc(ctx, &linear_ops, bias ? 2 : 1, names, ndims, (const int64_t(*)[2])shapes, dev);
  if (!m) return NULL;
  m->in_features = in;
  m->out_features = out;
  const icl_backend *be = icl_backend_get(ctx, dev);
  float bound = 1.0f / sqrtf((float)in);
  for (int i = 0; i < m->nparams; i++)
    if (be->random(ctx, icl_tensor_view_of(m->param[i]), ICL_F32, ICL_DIST_UNIFORM, -bound, bound, seed,
                   (uint64_t)i)) {
      icl_module_free(ctx, m);
      return NULL;
    }
  return m;
}
