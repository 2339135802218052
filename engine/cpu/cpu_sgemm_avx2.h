/* A single-threaded AVX2 sgemm for short-sided products (cpu_sgemm_avx2.c). */
#ifndef ICL_CPU_SGEMM_AVX2_H
#define ICL_CPU_SGEMM_AVX2_H

#include <stdint.h>

/* floats of packed B held at once (on the stack): k n up to this is one block */
#define ICL_SGEMM_AVX2_PACK 32768

/* 1 when built with AVX2 + FMA (ICL_NATIVE on such a CPU), else 0 */
int icl_sgemm_avx2_available(void);
/* row-major C = alpha op(A) op(B) + beta C; beta == 0 never reads C */
void icl_sgemm_avx2(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* For many products against one small B (attention tiles): pack op(B)
 * [k, n] once into ceil(n / 16) panels of k x 16 floats (panel p at
 * bp + p k 16, zero padded), then
 * C[m, n] = alpha op(A)[m, k] Bp + beta C over rows k0.. of the panels by
 * passing bp + 16 k0 with pstride = 16 * (the packed k). */
void icl_sgemm_avx2_pack(int tb, const float *b, int64_t ldb, int64_t k, int64_t n, float *bp);
void icl_sgemm_avx2_packed(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *bp, int64_t pstride, float beta, float *c, int64_t ldc);
/* y[i incy] = alpha A[i, :] x + beta y[i incy] for i < m (A row-major, x
 * contiguous; beta == 0 never reads y): products with one output column */
void icl_sgemv_avx2(int64_t m, int64_t k, float alpha, const float *a, int64_t lda, const float *x, float beta,
                    float *y, int64_t incy);

#endif
