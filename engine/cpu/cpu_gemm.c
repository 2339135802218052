/* GEMM through OpenBLAS. Batched products loop over cblas_sgemm; for the
 * many tiny per-head products of attention the models call their own fused
 * kernels instead, so this loop only sees a few large matrices. */
#include <cblas.h>

#include "cpu_kernels.h"

int icl_cpu_gemm(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
                 float *c, int64_t ldc, int64_t stride_c, int64_t batch) {
  (void)ctx;
  if (m == 0 || n == 0) return ICL_OK;
  for (int64_t i = 0; i < batch; i++) {
    if (k == 0) {
      /* BLAS leaves C untouched for k = 0 only when beta == 1; make it explicit */
      float *ci = c + i * stride_c;
      for (int64_t r = 0; r < m; r++)
        for (int64_t q = 0; q < n; q++) ci[r * ldc + q] = beta == 0.0f ? 0.0f : beta * ci[r * ldc + q];
      continue;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a + i * stride_a, (int)lda, b + i * stride_b, (int)ldb, beta, c + i * stride_c,
                (int)ldc);
  }
  return ICL_OK;
}
