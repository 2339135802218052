/* GEMM through OpenBLAS. All CPU threading belongs to OpenMP: OpenBLAS runs
 * single-threaded (see icl_set_num_threads) and a large product is split
 * here into row (or column) blocks, one single-threaded sgemm per OpenMP
 * thread. Two thread pools on two cores fight (OpenBLAS workers busy-wait
 * after each call while the next OpenMP region runs, and vice versa), which
 * measured 30% slower on a Llama step. A block of C depends only on its own
 * rows of A (columns of B), and every element is accumulated over k in the
 * same order, so the split does not change the result.
 * Batched products loop over cblas_sgemm; for the many tiny per-head
 * products of attention the models call their own fused kernels. */
#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "cpu_sgemm_avx2.h"

/* below this many multiply-adds one thread is faster than a fork/join */
#define SPLIT_MIN_WORK (1 << 18)

/* A^T B with a long K and a small C (the weight gradients of small layers,
 * K = the batch's tokens: read-in, read-out, a trimmed last layer's o
 * projection): K cut into KSPLIT_PARTS fixed slices, each slice's product
 * (AVX2 kernel) into its own partial, the partials added in order. Fixed by
 * the shape alone, so any thread count gives the same bits. OpenBLAS took
 * these at 15-50 GFLOP/s on two threads (split over C's 20-64 rows). */
#define KSPLIT_PARTS 8
#define KSPLIT_MIN_K 1024
#define KSPLIT_MAX_MN 4096

/* The AVX2 kernel takes the products whose B fits in its pack buffer and
 * whose A is not transposed: the models' projections at hidden <= 128 or
 * so (measured 1.1-1.9x OpenBLAS there, and 0.7-0.95x on the larger ones,
 * which stay with OpenBLAS, as do the weight gradients A^T B with K = B T
 * but for small C: the K-split above). One output column goes to the AVX2
 * GEMV (the read-out: the kernel would fill 1 of its 16 columns).
 * ICL_CPU_GEMM=openblas sends everything to OpenBLAS (for comparisons). */
static int avx2_allowed(void) {
  static int allowed = -1;
  if (allowed < 0) {
    const char *e = getenv("ICL_CPU_GEMM");
    allowed = icl_sgemm_avx2_available() && !(e && strcmp(e, "openblas") == 0);
  }
  return allowed;
}

static int use_avx2(int ta, int64_t n, int64_t k) { return avx2_allowed() && !ta && k * n <= ICL_SGEMM_AVX2_PACK; }

static int use_ksplit(int ta, int64_t m, int64_t n, int64_t k) {
  return avx2_allowed() && ta && k >= KSPLIT_MIN_K && m * n <= KSPLIT_MAX_MN;
}

int icl_cpu_gemm_row_exact(int ta, int64_t n, int64_t k) { return use_avx2(ta, n, k); }

static void gemm1(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (use_avx2(ta, n, k) && n == 1 && (tb || ldb == 1)) { /* one output column: B is a contiguous vector */
    icl_sgemv_avx2(m, k, alpha, a, lda, b, beta, c, ldc);
    return;
  }
  if (use_avx2(ta, n, k)) {
    icl_sgemm_avx2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static void gemm_ksplit(int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  const int64_t mn = m * n, P = KSPLIT_PARTS;
  /* on the stack (128 KB; no allocation in a training step), shared by the team */
  _Alignas(64) float part[KSPLIT_PARTS * KSPLIT_MAX_MN];
  /* C^T = B^T A instead where that wastes less of the kernel's 16-column
   * panels (the read-in's gradient: 64 x 20 is better computed as 20 x 64) */
  const int tr = !tb && ((n + 15) & ~15) * m > ((m + 15) & ~15) * n;
  int nt = 1;
#ifdef _OPENMP
  if (!omp_in_parallel() && mn * k >= SPLIT_MIN_WORK) nt = omp_get_max_threads();
#endif
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < P; p++) {
      const int64_t k0 = k * p / P, k1 = k * (p + 1) / P;
      if (tr)
        icl_sgemm_avx2(1, 0, n, m, k1 - k0, 1.0f, b + k0 * ldb, ldb, a + k0 * lda, lda, 0.0f, part + p * mn, m);
      else
        icl_sgemm_avx2(1, tb, m, n, k1 - k0, 1.0f, a + k0 * lda, lda, tb ? b + k0 : b + k0 * ldb, ldb, 0.0f,
                       part + p * mn, n);
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < mn; i++) {
      float s = 0;
      for (int64_t p = 0; p < P; p++) s += part[p * mn + i];
      float *ci = tr ? c + (i % m) * ldc + i / m : c + (i / n) * ldc + i % n;
      *ci = beta != 0.0f ? alpha * s + beta * *ci : alpha * s;
    }
  }
}

static void gemm_split(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (use_ksplit(ta, m, n, k)) {
    gemm_ksplit(tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  int nt = 1;
#ifdef _OPENMP
  if (!omp_in_parallel() && m * n * k >= SPLIT_MIN_WORK) nt = omp_get_max_threads();
#endif
  if (nt <= 1) {
    gemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* split the longer side of C into nt blocks, multiples of 16 rows/columns */
  int by_rows = m >= n;
  int64_t len = by_rows ? m : n, blk = ((len + nt - 1) / nt + 15) & ~(int64_t)15;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int t = 0; t < nt; t++) {
    int64_t s = (int64_t)t * blk, e = s + blk < len ? s + blk : len;
    if (s >= e) continue;
    if (by_rows)
      gemm1(ta, tb, e - s, n, k, alpha, ta ? a + s : a + s * lda, lda, b, ldb, beta, c + s * ldc, ldc);
    else
      gemm1(ta, tb, m, e - s, k, alpha, a, lda, tb ? b + s * ldb : b + s, ldb, beta, c + s, ldc);
  }
}

int icl_cpu_gemm(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                 int64_t ldc, int64_t stride_c, int64_t batch) {
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
    gemm_split(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
  }
  return ICL_OK;
}
