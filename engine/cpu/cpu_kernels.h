/* The CPU backend's generic kernels (see core/backend.h for their contracts). */
#ifndef ICL_CPU_KERNELS_H
#define ICL_CPU_KERNELS_H

#include "../core/backend.h"

void *icl_cpu_alloc(icl_ctx *ctx, size_t nbytes);
void icl_cpu_release(icl_ctx *ctx, void *p, size_t nbytes);
int icl_cpu_memcpy(icl_ctx *ctx, void *dst, icl_device ddev, const void *src, icl_device sdev, size_t n);
int icl_cpu_sync(icl_ctx *ctx);
int icl_cpu_fill(icl_ctx *ctx, icl_view out, icl_dtype dt, double value);
int icl_cpu_copy(icl_ctx *ctx, icl_view out, icl_dtype odt, icl_view in, icl_dtype idt);
int icl_cpu_unary(icl_ctx *ctx, icl_unop op, icl_view out, icl_view in, float p0, float p1);
int icl_cpu_binary(icl_ctx *ctx, icl_binop op, icl_view out, icl_view a, icl_view b);
int icl_cpu_reduce(icl_ctx *ctx, icl_redop op, icl_view out, icl_dtype odt, icl_view in, int dim);
int icl_cpu_softmax(icl_ctx *ctx, float *out, const float *in, int64_t rows, int64_t cols, int log);
int icl_cpu_gemm(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
                 float *c, int64_t ldc, int64_t stride_c, int64_t batch);
/* 1 when icl_cpu_gemm computes each row of C = op(A) op(B) (n columns,
 * reduction k) independently of how many rows the call has, so a product
 * over a subset of the rows gives the same bits (the AVX2 kernel; OpenBLAS
 * blocks by m) */
int icl_cpu_gemm_row_exact(int ta, int64_t n, int64_t k);
int icl_cpu_random(icl_ctx *ctx, icl_view out, icl_dtype dt, icl_dist dist, double p0, double p1, uint64_t seed,
                   uint64_t stream);
int icl_cpu_nonfinite(icl_ctx *ctx, const float *x, int64_t n, int *bad);

#endif
