/* Single-threaded row-major sgemm for AVX2 + FMA, for the models' shapes:
 * one side of C or the reduction is short (hidden 64..256 on 2 cores), where
 * OpenBLAS spends a third of its time packing both operands and clearing C.
 * Here only B is packed, into 16-column panels (it is a weight matrix: with
 * k n <= ICL_SGEMM_AVX2_PACK all of it at once, and it stays in L2); A is
 * read in place by broadcasts (either layout; a transposed A with a long K
 * comes in K slices, cpu_gemm.c's K-split, so the rows a pass re-reads stay
 * in L2), and C is written once
 * per K block of 512 with alpha and beta folded in, never cleared first. A 6 x 16 register tile (12 accumulators) keeps
 * both FMA pipes of a Zen 3 / Haswell core busy.
 *
 * Every element of C is the sum over k in ascending order within a K block,
 * the blocks added in ascending order: the same result for any split of C
 * between threads (see cpu_gemm.c), so runs stay reproducible. */
#include "cpu_sgemm_avx2.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <string.h>

enum { MR = 6, NR = 16, KC = 512, BUF = ICL_SGEMM_AVX2_PACK };

/* dst[r * 16 + c] = src[c * lds + r] for r, c < 8: an 8 x 8 block of B
 * transposed into a panel */
static inline void transpose8(const float *src, int64_t lds, float *dst) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
         r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds),
         r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
         u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
         u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
         u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * 16, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * 16, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * 16, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * 16, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * 16, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * 16, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * 16, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * 16, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Bp[p][k][16] = op(B)[k0 + k][j0 + 16 p + c], zero past n */
static void pack_b(int tb, const float *b, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float *bp) {
  for (int64_t p = 0; p * NR < nc; p++) {
    int64_t w = nc - p * NR < NR ? nc - p * NR : NR;
    float *dst = bp + p * kc * NR;
    if (!tb) {
      const float *src = b + k0 * ldb + j0 + p * NR;
      for (int64_t k = 0; k < kc; k++, src += ldb, dst += NR) {
        if (w == NR) {
          _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
          _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
        } else {
          int64_t c = 0;
          for (; c < w; c++) dst[c] = src[c];
          for (; c < NR; c++) dst[c] = 0.0f;
        }
      }
    } else {
      /* op(B)[k][j] = B[j][k]: 8 x 8 blocks transposed in registers where
       * the panel is full, then each source row's rest walked once */
      const float *src = b + (j0 + p * NR) * ldb + k0;
      int64_t k8 = 0;
      if (w == NR)
        for (; k8 + 8 <= kc; k8 += 8) {
          transpose8(src + k8, ldb, dst + k8 * NR);
          transpose8(src + 8 * ldb + k8, ldb, dst + k8 * NR + 8);
        }
      for (int64_t c = 0; c < NR; c++) {
        if (c < w) {
          for (int64_t k = k8; k < kc; k++) dst[k * NR + c] = src[c * ldb + k];
        } else {
          for (int64_t k = k8; k < kc; k++) dst[k * NR + c] = 0.0f;
        }
      }
    }
  }
}

static inline void store_row(float *c, __m256 lo, __m256 hi, __m256 va, float alpha, float beta, int nr) {
  if (alpha != 1.0f) { /* x * 1 is x: skipping it changes no bit */
    lo = _mm256_mul_ps(lo, va);
    hi = _mm256_mul_ps(hi, va);
  }
  if (nr == NR) {
    if (beta != 0.0f) {
      __m256 vb = _mm256_set1_ps(beta);
      lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
      hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
    }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  float t[NR];
  _mm256_storeu_ps(t, lo);
  _mm256_storeu_ps(t + 8, hi);
  for (int j = 0; j < nr; j++) c[j] = beta != 0.0f ? t[j] + beta * c[j] : t[j];
}

/* C[mr x nr] = alpha sum_k A(r, k) B(k, :) + beta C (beta == 0: C not read),
 * A(r, k) at a[r rs + k cs], B(k, 0..15) at b[16 k] (a packed panel). mr is a constant in
 * each instance below, so only its rows are read and accumulated. */
#define ROW(r)                                   \
  if (mr > (r)) {                                \
    __m256 av = _mm256_broadcast_ss(a + (r)*rs); \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);  \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);  \
  }
#define STORE(r) \
  if (mr > (r)) store_row(c + (r)*ldc, c##r##0, c##r##1, va, alpha, beta, nr);
static inline __attribute__((always_inline)) void kernel_body(int64_t kc, const float *a, int64_t rs, int64_t cs,
                                                              const float *b, float *c, int64_t ldc, float alpha,
                                                              float beta, const int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; k++, a += cs, b += NR) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
  }
  __m256 va = _mm256_set1_ps(alpha);
  STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
}
#undef STORE
#undef ROW

typedef void (*kernel_fn)(int64_t, const float *, int64_t, int64_t, const float *, float *, int64_t, float, float, int);
#define KERNEL(R)                                                                                                  \
  static void kernel##R(int64_t kc, const float *a, int64_t rs, int64_t cs, const float *b, float *c, int64_t ldc, \
                        float alpha, float beta, int nr) {                                                         \
    kernel_body(kc, a, rs, cs, b, c, ldc, alpha, beta, R, nr);                                                     \
  }
KERNEL(1)
KERNEL(2)
KERNEL(3)
KERNEL(4)
KERNEL(5)
KERNEL(6)
static const kernel_fn kernels[MR + 1] = {NULL, kernel1, kernel2, kernel3, kernel4, kernel5, kernel6};

void icl_sgemm_avx2(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  _Alignas(64) float bp[BUF];
  const int64_t cs = ta ? lda : 1;
  /* short K: all of B's columns at once (the rows of A stay in L1 across
   * them and C is written a whole row at a time); long K: KC at a time */
  const int64_t kcap = k < KC ? k : KC;
  int64_t ncap = (BUF / kcap) & ~(int64_t)(NR - 1);
  if (ncap > n) ncap = n;
  for (int64_t j0 = 0; j0 < n; j0 += ncap) {
    const int64_t nc = n - j0 < ncap ? n - j0 : ncap;
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
      const int64_t kc = k - k0 < KC ? k - k0 : KC;
      const float be = k0 == 0 ? beta : 1.0f;
      pack_b(tb, b, ldb, k0, kc, j0, nc, bp);
      icl_sgemm_avx2_packed(ta, m, nc, kc, alpha, a + k0 * cs, lda, bp, kc * NR, be, c + j0, ldc);
    }
  }
}

void icl_sgemm_avx2_pack(int tb, const float *b, int64_t ldb, int64_t k, int64_t n, float *bp) {
  pack_b(tb, b, ldb, 0, k, 0, n, bp);
}

void icl_sgemm_avx2_packed(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *bp, int64_t pstride, float beta, float *c, int64_t ldc) {
  const int64_t rs = ta ? 1 : lda, cs = ta ? lda : 1;
  for (int64_t i = 0; i < m; i += MR) {
    const int mr = m - i < MR ? (int)(m - i) : MR;
    for (int64_t p = 0; p * NR < n; p++) {
      int nr = n - p * NR < NR ? (int)(n - p * NR) : NR;
      kernels[mr](k, a + i * rs, rs, cs, bp + p * pstride, c + i * ldc + p * NR, ldc, alpha, beta, nr);
    }
  }
}

/* Each row's dot product in 8 lanes over k (two accumulators, even and odd
 * vectors, then a fixed tree), the scalar tail after: a row gets the same
 * bits whichever rows are computed with it. */
static inline float dot_row(const float *a, const float *x, int64_t k) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(x + j), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(x + j + 8), s1);
  }
  if (j + 8 <= k) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(x + j), s0);
    j += 8;
  }
  _Alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(s0, s1));
  float s = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
  for (; j < k; j++) s += a[j] * x[j];
  return s;
}

void icl_sgemv_avx2(int64_t m, int64_t k, float alpha, const float *a, int64_t lda, const float *x, float beta,
                    float *y, int64_t incy) {
  for (int64_t i = 0; i < m; i++) {
    const float s = alpha * dot_row(a + i * lda, x, k);
    y[i * incy] = beta != 0.0f ? s + beta * y[i * incy] : s;
  }
}

int icl_sgemm_avx2_available(void) { return 1; }

#else

void icl_sgemm_avx2(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta,
      (void)c, (void)ldc;
}

void icl_sgemm_avx2_pack(int tb, const float *b, int64_t ldb, int64_t k, int64_t n, float *bp) {
  (void)tb, (void)b, (void)ldb, (void)k, (void)n, (void)bp;
}

void icl_sgemm_avx2_packed(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *bp, int64_t pstride, float beta, float *c, int64_t ldc) {
  (void)ta, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)bp, (void)pstride, (void)beta, (void)c,
      (void)ldc;
}

void icl_sgemv_avx2(int64_t m, int64_t k, float alpha, const float *a, int64_t lda, const float *x, float beta,
                    float *y, int64_t incy) {
  (void)m, (void)k, (void)alpha, (void)a, (void)lda, (void)x, (void)beta, (void)y, (void)incy;
}

int icl_sgemm_avx2_available(void) { return 0; }

#endif
