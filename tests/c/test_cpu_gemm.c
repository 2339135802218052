/* The CPU GEMM: the AVX2 kernel (cpu_sgemm_avx2.c) and the dispatcher
 * (cpu_gemm.c) against a double-precision reference, over both layouts of
 * A and B, ragged edges (m not a multiple of 6, n not of 16), K past one
 * block, leading dimensions wider than the matrices, alpha and beta, and
 * the threaded split (whose result must not depend on the thread count),
 * the K-split weight-gradient path (A transposed, long K, small C) and the
 * one-column product (GEMV). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/cpu_kernels.h"
#include "cpu/cpu_sgemm_avx2.h"
#include "harness.h"

static void fill(float *x, int64_t n, unsigned seed) {
  srand(seed);
  for (int64_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
}

/* C = alpha op(A) op(B) + beta C in double */
static void reference(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, double *c, const float *c0, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++)
        s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * s + (beta != 0.0f ? beta * (double)c0[i * ldc + j] : 0.0);
    }
}

typedef struct shape {
  int ta, tb;
  int64_t m, n, k;
  float alpha, beta;
} shape;

static const shape shapes[] = {
    {0, 1, 97, 64, 64, 1.0f, 0.0f},   {0, 1, 13, 37, 29, 0.5f, 1.0f},   {0, 0, 61, 50, 300, 1.0f, 0.5f},
    {0, 0, 6, 16, 1, 1.0f, 0.0f},     {0, 1, 1, 1, 7, 2.0f, 1.0f},      {1, 0, 40, 23, 70, 1.0f, 1.0f},
    {1, 1, 11, 18, 9, 1.0f, 0.0f},    {0, 1, 200, 512, 64, 1.0f, 0.0f}, {0, 0, 77, 64, 512, 1.0f, 0.0f},
    {0, 1, 31, 3, 600, -1.0f, 0.25f},
};

/* the AVX2 kernel on its own, with leading dimensions wider than needed and
 * guard values around C that must survive */
static void test_kernel(void) {
  if (!icl_sgemm_avx2_available()) {
    printf("# no AVX2 + FMA in this build: kernel test skipped\n");
    return;
  }
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape *s = &shapes[si];
    const int64_t lda = (s->ta ? s->m : s->k) + 3, ldb = (s->tb ? s->k : s->n) + 5, ldc = s->n + 2;
    const int64_t arows = s->ta ? s->k : s->m, brows = s->tb ? s->n : s->k;
    float *a = malloc(sizeof(float) * arows * lda), *b = malloc(sizeof(float) * brows * ldb);
    float *c = malloc(sizeof(float) * (s->m * ldc + 8)), *c0 = malloc(sizeof(float) * s->m * ldc);
    double *r = malloc(sizeof(double) * s->m * ldc);
    fill(a, arows * lda, 1 + (unsigned)si);
    fill(b, brows * ldb, 100 + (unsigned)si);
    fill(c0, s->m * ldc, 200 + (unsigned)si);
    memcpy(c, c0, sizeof(float) * s->m * ldc);
    for (int i = 0; i < 8; i++) c[s->m * ldc + i] = 1234.5f;
    icl_sgemm_avx2(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, lda, b, ldb, s->beta, c, ldc);
    reference(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, lda, b, ldb, s->beta, r, c0, ldc);
    double worst = 0;
    int pad_ok = 1;
    for (int64_t i = 0; i < s->m; i++) {
      for (int64_t j = 0; j < s->n; j++) worst = fmax(worst, fabs(c[i * ldc + j] - r[i * ldc + j]));
      for (int64_t j = s->n; j < ldc; j++) pad_ok &= c[i * ldc + j] == c0[i * ldc + j];
    }
    for (int i = 0; i < 8; i++) pad_ok &= c[s->m * ldc + i] == 1234.5f;
    /* |terms| <= 0.25, sums of k of them: float rounding stays far below this */
    CHECK_MSG(worst <= 1e-6 * (double)s->k + 1e-6, "shape %zu (%lld x %lld x %lld, ta %d tb %d): error %.3g", si,
              (long long)s->m, (long long)s->n, (long long)s->k, s->ta, s->tb, worst);
    CHECK_MSG(pad_ok, "shape %zu: wrote outside C's rows and columns", si);
    free(a), free(b), free(c), free(c0), free(r);
  }
}

/* the dispatcher at the model's sizes: 1 and 2 threads give the same bits
 * (with the AVX2 kernel), and both match the reference; beta = 0 ignores NaN
 * in C */
static void test_dispatch_threads(void) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t m = 1000, n = 192, k = 64;
  float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k);
  float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
  double *r = malloc(sizeof(double) * m * n);
  fill(a, m * k, 7);
  fill(b, n * k, 8);
  for (int64_t i = 0; i < m * n; i++) c1[i] = c2[i] = NAN;
#ifdef _OPENMP
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  CHECK_OK(ctx, icl_cpu_gemm(ctx, 0, 1, m, n, k, 1.0f, a, k, 0, b, k, 0, 0.0f, c1, n, 0, 1));
#ifdef _OPENMP
  omp_set_num_threads(2);
#endif
  CHECK_OK(ctx, icl_cpu_gemm(ctx, 0, 1, m, n, k, 1.0f, a, k, 0, b, k, 0, 0.0f, c2, n, 0, 1));
#ifdef _OPENMP
  omp_set_num_threads(before);
#endif
  /* OpenBLAS (a build without AVX2) blocks by the row count: no such promise */
  if (icl_sgemm_avx2_available()) CHECK(memcmp(c1, c2, sizeof(float) * m * n) == 0);
  CHECK(icl_cpu_gemm_row_exact(0, n, k) == icl_sgemm_avx2_available());
  reference(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, r, c1, n);
  double worst = 0;
  for (int64_t i = 0; i < m * n; i++) worst = fmax(worst, fabs(c1[i] - r[i]));
  CHECK_MSG(worst < 1e-5, "error %.3g", worst);
  free(a), free(b), free(c1), free(c2), free(r);
  icl_ctx_free(ctx);
}

static void set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

/* one product through the dispatcher on 1 and on 2 threads: the same bits,
 * within rounding of the reference; C's other columns untouched */
static void check_dispatch(const shape *s, int64_t lda, int64_t ldb, int64_t ldc, const char *what) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t arows = s->ta ? s->k : s->m, brows = s->tb ? s->n : s->k;
  float *a = malloc(sizeof(float) * arows * lda), *b = malloc(sizeof(float) * brows * ldb);
  float *c0 = malloc(sizeof(float) * s->m * ldc), *c1 = malloc(sizeof(float) * s->m * ldc),
        *c2 = malloc(sizeof(float) * s->m * ldc);
  double *r = malloc(sizeof(double) * s->m * ldc);
  fill(a, arows * lda, 31);
  fill(b, brows * ldb, 32);
  fill(c0, s->m * ldc, 33);
  if (s->beta == 0.0f)
    for (int64_t i = 0; i < s->m; i++) c0[i * ldc] = NAN; /* never read */
  memcpy(c1, c0, sizeof(float) * s->m * ldc);
  memcpy(c2, c0, sizeof(float) * s->m * ldc);
#ifdef _OPENMP
  const int before = omp_get_max_threads();
#else
  const int before = 1;
#endif
  set_threads(1);
  CHECK_OK(ctx,
           icl_cpu_gemm(ctx, s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, lda, 0, b, ldb, 0, s->beta, c1, ldc, 0, 1));
  set_threads(2);
  CHECK_OK(ctx,
           icl_cpu_gemm(ctx, s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, lda, 0, b, ldb, 0, s->beta, c2, ldc, 0, 1));
  set_threads(before);
  reference(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, lda, b, ldb, s->beta, r, c0, ldc);
  double worst = 0;
  int same = 1, pad_ok = 1;
  for (int64_t i = 0; i < s->m; i++) {
    for (int64_t j = 0; j < s->n; j++) {
      worst = fmax(worst, fabs(c1[i * ldc + j] - r[i * ldc + j]));
      same &= c1[i * ldc + j] == c2[i * ldc + j];
    }
    for (int64_t j = s->n; j < ldc; j++) pad_ok &= c1[i * ldc + j] == c0[i * ldc + j];
  }
  CHECK_MSG(worst <= 1e-6 * (double)s->k + 1e-6, "%s (%lld x %lld x %lld): error %.3g", what, (long long)s->m,
            (long long)s->n, (long long)s->k, worst);
  if (icl_sgemm_avx2_available()) CHECK_MSG(same, "%s: 1 and 2 threads differ", what);
  CHECK_MSG(pad_ok, "%s: wrote outside C's columns", what);
  free(a), free(b), free(c0), free(c1), free(c2), free(r);
  icl_ctx_free(ctx);
}

/* weight gradients of small layers: A^T B over a long K (the K-split
 * partials, alpha and beta folded in after the sum), K not a multiple of the
 * partial count, A's rows strided (the x rows of a [B T, 2 H] view) */
static void test_ksplit(void) {
  const shape s[] = {{1, 0, 64, 20, 6531, 1.0f, 1.0f},
                     {1, 0, 1, 64, 3264, 1.0f, 0.0f},
                     {1, 1, 37, 50, 2049, 0.5f, 0.25f},
                     {1, 0, 64, 64, 1024, -2.0f, 0.0f}};
  check_dispatch(&s[0], 64, 20, 20, "read-in gradient");
  check_dispatch(&s[1], 2, 128, 64, "read-out gradient (A's column strided)");
  check_dispatch(&s[2], 40, 2049, 52, "both transposed");
  check_dispatch(&s[3], 128, 64, 64, "alpha -2");
}

/* one output column (GEMV): B as a row (tb) or a contiguous column; the K
 * tail past the vectors; C strided (the x tokens of the read-out) */
static void test_gemv(void) {
  const shape s[] = {{0, 1, 3264, 1, 64, 1.0f, 0.0f}, {0, 0, 101, 1, 37, 1.0f, 0.5f}, {0, 1, 7, 1, 5, 2.0f, 1.0f}};
  check_dispatch(&s[0], 128, 64, 2, "read-out");
  check_dispatch(&s[1], 40, 1, 3, "column B, K tail");
  check_dispatch(&s[2], 5, 5, 1, "short K");
  /* row-exact: a row's value does not depend on the rows computed with it */
  if (!icl_sgemm_avx2_available()) return;
  icl_ctx *ctx = icl_t_ctx();
  const int64_t m = 50, k = 64;
  float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k), c[50], d[50];
  fill(a, m * k, 41);
  fill(b, k, 42);
  CHECK_OK(ctx, icl_cpu_gemm(ctx, 0, 1, m, 1, k, 1.0f, a, k, 0, b, k, 0, 0.0f, c, 1, 0, 1));
  CHECK_OK(ctx, icl_cpu_gemm(ctx, 0, 1, m - 7, 1, k, 1.0f, a + 7 * k, k, 0, b, k, 0, 0.0f, d, 1, 0, 1));
  CHECK(memcmp(c + 7, d, sizeof(float) * (m - 7)) == 0);
  CHECK(icl_cpu_gemm_row_exact(0, 1, k));
  free(a), free(b);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_kernel);
  ICL_RUN(test_dispatch_threads);
  ICL_RUN(test_ksplit);
  ICL_RUN(test_gemv);
  return icl_t_finish("test_cpu_gemm");
}
