/* One table of function pointers per device (the ggml habit).
 * The CPU table is the reference; the CUDA table mirrors it. A NULL entry
 * means "not available on this device" and callers report ICL_ENOTIMPL.
 * Model areas (nn, llama, mamba, tasks, optim) keep their own sub-tables so
 * that each area's kernels live beside its code. */
#ifndef ICL_BACKEND_H
#define ICL_BACKEND_H

#include "tensor.h"

typedef enum icl_binop {
  ICL_BIN_ADD, ICL_BIN_SUB, ICL_BIN_MUL, ICL_BIN_DIV, ICL_BIN_POW, ICL_BIN_MAX, ICL_BIN_MIN,
  ICL_BIN_EQ, ICL_BIN_NE, ICL_BIN_LT, ICL_BIN_LE, ICL_BIN_GT, ICL_BIN_GE,
  ICL_BIN__COUNT
} icl_binop;

typedef enum icl_unop {
  ICL_UN_NEG, ICL_UN_ABS, ICL_UN_SIGN, ICL_UN_EXP, ICL_UN_LOG, ICL_UN_SQRT, ICL_UN_SQUARE,
  ICL_UN_SIN, ICL_UN_COS, ICL_UN_TANH, ICL_UN_SIGMOID, ICL_UN_RELU, ICL_UN_SILU, ICL_UN_RECIP,
  ICL_UN_SOFTPLUS,
  ICL_UN_CLAMP,  /* p0 = min, p1 = max */
  ICL_UN_AFFINE, /* p0 * x + p1 */
  ICL_UN_POWS,   /* x ^ p0 */
  ICL_UN_RPOWS,  /* p0 ^ x */
  ICL_UN_RSUB,   /* p0 - x */
  ICL_UN_RDIV,   /* p0 / x */
  ICL_UN_MAXS,   /* max(x, p0) */
  ICL_UN_MINS,   /* min(x, p0) */
  ICL_UN_CMPS,   /* x <op> p0 with op = (int)p1 as an icl_binop comparison; 1.0 or 0.0 */
  ICL_UN__COUNT
} icl_unop;

typedef enum icl_redop {
  ICL_RED_SUM, ICL_RED_MEAN, ICL_RED_MAX, ICL_RED_MIN, ICL_RED_ARGMAX, ICL_RED_ARGMIN,
  ICL_RED_VAR,   /* unbiased */
  ICL_RED_VAR0,  /* biased (divide by n) */
  ICL_RED_PROD,
  ICL_RED__COUNT
} icl_redop;

typedef enum icl_dist { ICL_DIST_UNIFORM, ICL_DIST_NORMAL, ICL_DIST_BERNOULLI, ICL_DIST_RANDINT } icl_dist;

struct icl_nn_kernels;
struct icl_attn_kernels;
struct icl_mamba_kernels;
struct icl_task_kernels;
struct icl_optim_kernels;

typedef struct icl_backend {
  const char *name;
  icl_device device;

  /* memory */
  void *(*alloc)(icl_ctx *ctx, size_t nbytes); /* NULL + error on failure */
  void (*release)(icl_ctx *ctx, void *p, size_t nbytes);
  /* copy n bytes; the CUDA backend handles every direction, the CPU one host only */
  int (*memcpy)(icl_ctx *ctx, void *dst, icl_device ddev, const void *src, icl_device sdev, size_t n);
  int (*sync)(icl_ctx *ctx);

  /* generic strided kernels behind the tensor API (views are pre-broadcast) */
  int (*fill)(icl_ctx *ctx, icl_view out, icl_dtype dt, double value);
  int (*copy)(icl_ctx *ctx, icl_view out, icl_dtype odt, icl_view in, icl_dtype idt);
  int (*unary)(icl_ctx *ctx, icl_unop op, icl_view out, icl_view in, float p0, float p1);
  int (*binary)(icl_ctx *ctx, icl_binop op, icl_view out, icl_view a, icl_view b);
  /* reduce `in` over dim (or all dims when dim < 0); out has the reduced shape.
   * ARGMAX/ARGMIN write 0-based int32 indices. */
  int (*reduce)(icl_ctx *ctx, icl_redop op, icl_view out, icl_dtype odt, icl_view in, int dim);
  /* softmax / log-softmax over the last dim of contiguous rows */
  int (*softmax)(icl_ctx *ctx, float *out, const float *in, int64_t rows, int64_t cols, int log);
  /* row-major C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], b < batch */
  int (*gemm)(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
              float *c, int64_t ldc, int64_t stride_c, int64_t batch);
  /* counter-based draws: element i of the view gets Philox(seed, stream, i) */
  int (*random)(icl_ctx *ctx, icl_view out, icl_dtype dt, icl_dist dist, double p0, double p1, uint64_t seed,
                uint64_t stream);
  /* 1 if any element of n contiguous floats is NaN or Inf (writes *bad) */
  int (*nonfinite)(icl_ctx *ctx, const float *x, int64_t n, int *bad);

  /* per-area kernel tables (NULL until the area exists on this device) */
  const struct icl_nn_kernels *nn;
  const struct icl_attn_kernels *attn;
  const struct icl_mamba_kernels *mamba;
  const struct icl_task_kernels *task;
  const struct icl_optim_kernels *optim;
} icl_backend;

/* The table for a device: CPU always; CUDA only when compiled in and a device
 * is present (else NULL with a clear error in ctx). */
const icl_backend *icl_backend_get(icl_ctx *ctx, icl_device dev);
/* 1 if the CUDA backend was compiled in. */
int icl_cuda_compiled(void);
/* 1 if a CUDA device can be used now (initialises the device on first call). */
int icl_cuda_available(icl_ctx *ctx);
/* Release device handles held by ctx (called by icl_ctx_free). */
void icl_backend_release_devices(icl_ctx *ctx);

extern const icl_backend icl_cpu_backend;

#endif
