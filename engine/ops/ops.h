/* Tensor-level operations: validate, allocate the result on the inputs'
 * device, call the backend. Every function returns a new tensor (or a status
 * for in-place forms) and leaves a message naming the op, the shapes and the
 * argument on failure. Elementwise maths runs in float32; int32 inputs are
 * converted first. */
#ifndef ICL_OPS_H
#define ICL_OPS_H

#include "../core/backend.h"
#include "../core/tensor.h"

icl_tensor *icl_op_binary(icl_ctx *ctx, icl_binop op, const icl_tensor *a, const icl_tensor *b);
/* a op s, or s op a when scalar_left */
icl_tensor *icl_op_binary_scalar(icl_ctx *ctx, icl_binop op, const icl_tensor *a, float s, int scalar_left);
icl_tensor *icl_op_unary(icl_ctx *ctx, icl_unop op, const icl_tensor *a, float p0, float p1);
/* in place: a <- a op b (b broadcast to a), a <- f(a) */
int icl_op_binary_(icl_ctx *ctx, icl_binop op, icl_tensor *a, const icl_tensor *b);
int icl_op_unary_(icl_ctx *ctx, icl_unop op, icl_tensor *a, float p0, float p1);
/* dim = ICL_DIM_ALL reduces everything to a 0-dim tensor */
icl_tensor *icl_op_reduce(icl_ctx *ctx, icl_redop op, const icl_tensor *t, int dim, int keepdim);
icl_tensor *icl_op_matmul(icl_ctx *ctx, const icl_tensor *a, const icl_tensor *b);
icl_tensor *icl_op_softmax(icl_ctx *ctx, const icl_tensor *t, int dim, int log);
icl_tensor *icl_op_arange(icl_ctx *ctx, icl_device dev, double start, double stop, double step);
icl_tensor *icl_op_random(icl_ctx *ctx, icl_dist dist, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape,
                          double p0, double p1, uint64_t seed, uint64_t stream);
/* next stream of the context's default generator */
uint64_t icl_ctx_next_stream(icl_ctx *ctx);
/* concatenate n tensors along dim */
icl_tensor *icl_op_cat(icl_ctx *ctx, const icl_tensor *const *ts, int n, int dim);
/* Bootstrap band of per-position means of a [P, N] matrix: mean, lo and hi
 * get N floats each (host memory); see bootstrap.c. */
int icl_op_bootstrap(icl_ctx *ctx, const icl_tensor *m, int64_t resamples, int64_t lo_idx, int64_t hi_idx,
                     uint64_t seed, float *mean, float *lo, float *hi);
/* rows idx[0..n) (0-based) of t along dim, in that order (repeats allowed) */
icl_tensor *icl_op_index_select(icl_ctx *ctx, const icl_tensor *t, int dim, const int64_t *idx, int64_t n);
/* 1 if any element is NaN or Inf */
int icl_op_has_nonfinite(icl_ctx *ctx, const icl_tensor *t, int *bad);

#endif
