/* Modules with explicit forward and backward (Torch7's nn protocol, without
 * its silently reused outputs): forward returns a new tensor and remembers
 * what backward needs; backward returns the input gradient and adds the
 * parameter gradients into the module's gradient views. Parameters are views
 * into a flat buffer: the module's own, or a model's after icl_module_bind. */
#ifndef ICL_MODULE_H
#define ICL_MODULE_H

#include "core/tensor.h"
#include "nn_kernels.h"

#define ICL_MODULE_MAX_PARAMS 4

typedef struct icl_module icl_module;

typedef struct icl_module_ops {
  const char *kind;
  icl_tensor *(*forward)(icl_ctx *ctx, icl_module *m, const icl_tensor *in);
  icl_tensor *(*backward)(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout);
} icl_module_ops;

struct icl_module {
  const icl_module_ops *ops;
  int nparams;
  char pname[ICL_MODULE_MAX_PARAMS][32];
  icl_tensor *param[ICL_MODULE_MAX_PARAMS];
  icl_tensor *grad[ICL_MODULE_MAX_PARAMS];
  icl_tensor *saved[2]; /* activations kept by forward for backward */
  int64_t in_features, out_features;
  float eps;
};

icl_module *icl_linear_new(icl_ctx *ctx, int64_t in, int64_t out, int bias, icl_device dev, uint64_t seed);
icl_module *icl_rmsnorm_new(icl_ctx *ctx, int64_t d, float eps, icl_device dev);
icl_module *icl_silu_new(icl_ctx *ctx);
icl_module *icl_swiglu_new(icl_ctx *ctx, int64_t d, int64_t hidden, icl_device dev, uint64_t seed);

icl_tensor *icl_module_forward(icl_ctx *ctx, icl_module *m, const icl_tensor *in);
icl_tensor *icl_module_backward(icl_ctx *ctx, icl_module *m, const icl_tensor *in, const icl_tensor *gout);
/* Move the parameters into (value, grad) flat buffers at offset (values are
 * copied, gradients zeroed); returns the offset after this module's tensors. */
int icl_module_bind(icl_ctx *ctx, icl_module *m, icl_tensor *value, icl_tensor *grad, int64_t offset,
                    int64_t *next);
int64_t icl_module_numel(const icl_module *m);
int icl_module_zero_grad(icl_ctx *ctx, icl_module *m);
void icl_module_free(icl_ctx *ctx, icl_module *m);

/* Losses: mean over all elements. Returns the 0-dim loss; *dpred (if not
 * NULL) gets d(loss)/d(pred) with pred's shape. */
icl_tensor *icl_loss_fwd(icl_ctx *ctx, icl_loss_kind kind, const icl_tensor *pred, const icl_tensor *target,
                         icl_tensor **dpred);

/* internal: allocate a module with params of the given shapes in its own flat buffer */
icl_module *icl_module_alloc(icl_ctx *ctx, const icl_module_ops *ops, int nparams, const char *const *names,
                             const int *ndims, const int64_t (*shapes)[2], icl_device dev);
/* internal: rows x cols view of a tensor whose last dim is cols (contiguous copy if needed) */
icl_tensor *icl_module_rows(icl_ctx *ctx, const icl_tensor *t, int64_t cols, const char *op, int64_t *rows);

#endif
