/* SiLU: y = x * sigmoid(x). */
#include "module.h"

#include "core/backend.h"

static icl_tensor *silu_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in) {
  (void)m;
  icl_tensor *x = in->dtype == ICL_F32 ? icl_contiguous(ctx, in) : NULL;
  if (!x) {
    if (in->dtype != ICL_F32) icl_errorf(ctx, ICL_EINVAL, "SiLU.forward: input must be float32");
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, x->storage->device);
  icl_tensor *y = be ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape) : NULL;
  if (y && be->nn->silu_fwd(ctx, icl_tensor_data(y), icl_tensor_data(x), icl_numel(x))) {
    icl_tensor_free(ctx, y);
    y = NULL;
  }
  icl_tensor_free(ctx, x);
  return y;
}

static icl_tensor *silu_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout) {
  (void)m;
  char b1[128], b2[128];
  if (!icl_same_shape(in, gout)) {
    icl_errorf(ctx, ICL_ESHAPE, "SiLU.backward: grad_output %s does not match input %s", ICL_SHAPE_STR(gout, b1),
               ICL_SHAPE_STR(in, b2));
    return NULL;
  }
  icl_tensor *x = icl_contiguous(ctx, in), *g = x ? icl_contiguous(ctx, gout) : NULL;
  const icl_backend *be = g ? icl_backend_get(ctx, x->storage->device) : NULL;
  icl_tensor *dx = be ? icl_tensor_empty(ctx, ICL_F32, x->storage->device, x->ndim, x->shape) : NULL;
  if (dx && be->nn->silu_bwd(ctx, icl_tensor_data(dx), icl_tensor_data(g), icl_tensor_data(x), icl_numel(x))) {
    icl_tensor_free(ctx, dx);
    dx = NULL;
  }
  icl_tensor_free(ctx, x);
  icl_tensor_free(ctx, g);
  return dx;
}

static const icl_module_ops silu_ops = {"SiLU", silu_forward, silu_backward};

icl_module *icl_silu_new(icl_ctx *ctx) { return icl_module_alloc(ctx, &silu_ops, 0, NULL, NULL, NULL, ICL_CPU); }
