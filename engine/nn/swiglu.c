/* SwiGLU MLP (Llama): y = W_down( silu(W_gate x) * (W_up x) ).
 * gate_proj and up_proj sit next to each other in the flat buffer, so they
 * form one [2h, d] matrix and each direction is a single GEMM. */
#include "module.h"

#include <math.h>

#include "core/backend.h"

static int adjacent(const icl_module *m) {
  return (float *)icl_tensor_data(m->param[0]) + icl_numel(m->param[0]) == (float *)icl_tensor_data(m->param[1]) &&
         (float *)icl_tensor_data(m->grad[0]) + icl_numel(m->grad[0]) == (float *)icl_tensor_data(m->grad[1]);
}

static icl_tensor *swiglu_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in) {
  int64_t rows, d = m->in_features, h = m->out_features;
  icl_tensor *x = icl_module_rows(ctx, in, d, "SwiGLU.forward", &rows);
  if (!x) return NULL;
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  int64_t sgu[2] = {rows, 2 * h}, sh[2] = {rows, h};
  icl_tensor *gu = icl_tensor_empty(ctx, ICL_F32, x->storage->device, 2, sgu);
  icl_tensor *act = gu ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, 2, sh) : NULL;
  icl_tensor *y = act ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape) : NULL;
  int rc = !y;
  if (!rc && !adjacent(m)) rc = icl_errorf(ctx, ICL_EINVAL, "SwiGLU: gate_proj and up_proj must be adjacent");
  if (!rc)
    rc = be->gemm(ctx, 0, 1, rows, 2 * h, d, 1.0f, icl_tensor_data(x), d, 0, icl_tensor_data(m->param[0]), d, 0, 0.0f,
                  icl_tensor_data(gu), 2 * h, 0, 1);
  if (!rc) rc = be->nn->swiglu_fwd(ctx, icl_tensor_data(act), icl_tensor_data(gu), rows, h);
  if (!rc)
    rc = be->gemm(ctx, 0, 1, rows, d, h, 1.0f, icl_tensor_data(act), h, 0, icl_tensor_data(m->param[2]), h, 0, 0.0f,
                  icl_tensor_data(y), d, 0, 1);
  icl_tensor_free(ctx, x);
  if (rc) {
    icl_tensor_free(ctx, gu);
    icl_tensor_free(ctx, act);
    icl_tensor_free(ctx, y);
    return NULL;
  }
  icl_tensor_free(ctx, m->saved[0]);
  icl_tensor_free(ctx, m->saved[1]);
  m->saved[0] = gu;
  m->saved[1] = act;
  return y;
}

static icl_tensor *swiglu_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout) {
  int64_t rows, grows, d = m->in_features, h = m->out_features;
  if (!m->saved[0]) {
    icl_errorf(ctx, ICL_EINVAL, "SwiGLU.backward: call forward first");
    return NULL;
  }
  icl_tensor *x = icl_module_rows(ctx, in, d, "SwiGLU.backward", &rows);
  icl_tensor *g = x ? icl_module_rows(ctx, gout, d, "SwiGLU.backward (grad_output)", &grows) : NULL;
  icl_tensor *dact = NULL, *dgu = NULL, *dx = NULL;
  int rc = !g;
  if (!rc && (rows != grows || rows != m->saved[0]->shape[0]))
    rc = icl_errorf(ctx, ICL_ESHAPE, "SwiGLU.backward: shapes do not match the last forward");
  const icl_backend *be = rc ? NULL : icl_backend_get(ctx, x->storage->device);
  int64_t sh[2] = {rows, h}, sgu[2] = {rows, 2 * h};
  if (!rc) {
    dact = icl_tensor_empty(ctx, ICL_F32, x->storage->device, 2, sh);
    dgu = dact ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, 2, sgu) : NULL;
    dx = dgu ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape) : NULL;
    rc = !dx;
  }
  float *gu = rc ? NULL : icl_tensor_data(m->saved[0]), *act = rc ? NULL : icl_tensor_data(m->saved[1]);
  /* dact = g W_down ; dW_down += g^T act */
  if (!rc)
    rc = be->gemm(ctx, 0, 0, rows, h, d, 1.0f, icl_tensor_data(g), d, 0, icl_tensor_data(m->param[2]), h, 0, 0.0f,
                  icl_tensor_data(dact), h, 0, 1);
  if (!rc)
    rc = be->gemm(ctx, 1, 0, d, h, rows, 1.0f, icl_tensor_data(g), d, 0, act, h, 0, 1.0f,
                  icl_tensor_data(m->grad[2]), h, 0, 1);
  if (!rc) rc = be->nn->swiglu_bwd(ctx, icl_tensor_data(dgu), icl_tensor_data(dact), gu, rows, h);
  /* dW_gu += dgu^T x ; dx = dgu W_gu */
  if (!rc)
    rc = be->gemm(ctx, 1, 0, 2 * h, d, rows, 1.0f, icl_tensor_data(dgu), 2 * h, 0, icl_tensor_data(x), d, 0, 1.0f,
                  icl_tensor_data(m->grad[0]), d, 0, 1);
  if (!rc)
    rc = be->gemm(ctx, 0, 0, rows, d, 2 * h, 1.0f, icl_tensor_data(dgu), 2 * h, 0, icl_tensor_data(m->param[0]), d, 0,
                  0.0f, icl_tensor_data(dx), d, 0, 1);
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, g);
  icl_tensor_free(ctx, dact);
  icl_tensor_free(ctx, dgu);
  if (rc) {
    icl_tensor_free(ctx, dx);
    return NULL;
  }
  return dx;
}

static const icl_module_ops swiglu_ops = {"SwiGLU", swiglu_forward, swiglu_backward};

icl_module *icl_swiglu_new(icl_ctx *ctx, int64_t d, int64_t hidden, icl_device dev, uint64_t seed) {
  if (d <= 0 || hidden <= 0) {
    icl_errorf(ctx, ICL_EINVAL, "SwiGLU: sizes must be positive");
    return NULL;
  }
  static const char *const names[] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
  int ndims[3] = {2, 2, 2};
  int64_t shapes[3][2] = {{hidden, d}, {hidden, d}, {d, hidden}};
  icl_module *m = icl_module_alloc(ctx, &swiglu_ops, 3, names, ndims, (const int64_t(*)[2])shapes, dev);
  if (!m) return NULL;
  m->in_features = d;
  m->out_features = hidden;
  const icl_backend *be = icl_backend_get(ctx, dev);
  for (int i = 0; i < 3; i++) {
    float bound = 1.0f / sqrtf((float)(i < 2 ? d : hidden));
    if (be->random(ctx, icl_tensor_view_of(m->param[i]), ICL_F32, ICL_DIST_UNIFORM, -bound, bound, seed,
                   (uint64_t)i)) {
      icl_module_free(ctx, m);
      return NULL;
    }
  }
  return m;
}
