/* CPU causal attention, forward and backward, one (batch, head) tile per
 * task, tiles split statically over OpenMP threads. Everything in a tile
 * (q, k, v of one head: T x hd each, k and v transposed, four probability
 * rows at a time) stays in L1/L2. No BLAS inside the parallel region: the
 * per-tile products are small and run here as AVX2-friendly GCC vector code
 * (8-lane float vectors; this file is built with FMA contraction on).
 * Where the AVX2 GEMM kernel is built, tiles go through it instead: S =
 * q k^T, P V and the four backward products as small matrix products in
 * causal row blocks (operands packed once per tile), which keeps both FMA
 * pipes busy where the row-at-a-time loops mostly wait on loads and stores.
 * Training and inference take the same path, so their outputs agree bit for
 * bit; the row-at-a-time loops remain for builds without AVX2.
 * Results do not depend on the thread count: each tile is computed by one
 * thread in a fixed order. */
#include <math.h>
#include <string.h>

#include "attn_kernels.h"
#include "cpu/cpu_sgemm_avx2.h"
#include "cpu_attn_internal.h"
#include "cpu_bias.h"
#include "nn/vmath.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef icl_v8f v8f;
typedef icl_v8i v8i;

#define RB 4 /* query rows per block */

static inline int64_t round8(int64_t n) { return (n + 7) & ~(int64_t)7; }
static inline v8f ld(const float *p) { return icl_v8_load(p); }
static inline void st(float *p, v8f v) { icl_v8_store(p, v); }
static inline v8f bc(float x) { return icl_v8_set1(x); }
static inline float hsum(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }
static inline v8f v8_exp(v8f x) { return icl_v8_exp(x); } /* x <= 0 here (row max subtracted) */

/* rows i0..i0+nr-1 of A (row stride hd) times Bt [hd, ldb] for columns
 * [0, ncol) (ncol a multiple of 8): out[r * ldo + j] = sum_c A[i0+r, c] Bt[c, j] */
static inline void rows_x_bt(const float *A, int64_t nr, int64_t hd, const float *Bt, int64_t ldb, int64_t ncol,
                             float *out, int64_t ldo) {
  const float *a0 = A, *a1 = A + (nr > 1 ? hd : 0), *a2 = A + (nr > 2 ? 2 * hd : 0), *a3 = A + (nr > 3 ? 3 * hd : 0);
  for (int64_t j = 0; j < ncol; j += 8) {
    v8f s0 = bc(0), s1 = bc(0), s2 = bc(0), s3 = bc(0);
    const float *b = Bt + j;
    for (int64_t c = 0; c < hd; c++) {
      v8f kv = ld(b + c * ldb);
      s0 += bc(a0[c]) * kv;
      s1 += bc(a1[c]) * kv;
      s2 += bc(a2[c]) * kv;
      s3 += bc(a3[c]) * kv;
    }
    st(out + j, s0);
    st(out + ldo + j, s1);
    st(out + 2 * ldo + j, s2);
    st(out + 3 * ldo + j, s3);
  }
}

/* o[c] = alpha * sum_{j < n} p[j] M[j, c] for c < hd (M row stride hd). The
 * head size is a compile-time constant in each case, so the accumulators stay
 * in registers; two sets (even and odd j) keep both FMA pipes busy. */
#define VXR(NV)                                                                \
  do {                                                                         \
    v8f a0[NV], a1[NV];                                                        \
    for (int q = 0; q < NV; q++) a0[q] = a1[q] = bc(0);                        \
    int64_t j = 0;                                                             \
    for (; j + 2 <= n; j += 2) {                                               \
      v8f p0 = bc(p[j]), p1 = bc(p[j + 1]);                                    \
      const float *m0 = M + j * (NV * 8), *m1 = m0 + NV * 8;                   \
      for (int q = 0; q < NV; q++) {                                           \
        a0[q] += p0 * ld(m0 + 8 * q);                                          \
        a1[q] += p1 * ld(m1 + 8 * q);                                          \
      }                                                                        \
    }                                                                          \
    if (j < n) {                                                               \
      v8f p0 = bc(p[j]);                                                       \
      for (int q = 0; q < NV; q++) a0[q] += p0 * ld(M + j * (NV * 8) + 8 * q); \
    }                                                                          \
    for (int q = 0; q < NV; q++) st(o + 8 * q, (a0[q] + a1[q]) * bc(alpha));   \
  } while (0)

static inline void vec_x_rows(const float *p, int64_t n, const float *M, int64_t hd, float alpha, float *o) {
  switch (hd) {
    case 8:
      VXR(1);
      return;
    case 16:
      VXR(2);
      return;
    case 32:
      VXR(4);
      return;
    case 64:
      VXR(8);
      return;
    default:
      break;
  }
  for (int64_t c = 0; c < hd; c++) o[c] = 0;
  for (int64_t j = 0; j < n; j++)
    for (int64_t c = 0; c < hd; c++) o[c] += p[j] * M[j * hd + c];
  for (int64_t c = 0; c < hd; c++) o[c] *= alpha;
}

/* M[j, :] += alpha w[j] x for j < n (head size constant per case, as above) */
#define AXPY(NV)                                                                \
  do {                                                                          \
    v8f xv[NV];                                                                 \
    for (int q = 0; q < NV; q++) xv[q] = ld(x + 8 * q);                         \
    for (int64_t j = 0; j < n; j++) {                                           \
      v8f wj = bc(alpha * w[j]);                                                \
      float *mr = M + j * (NV * 8);                                             \
      for (int q = 0; q < NV; q++) st(mr + 8 * q, ld(mr + 8 * q) + wj * xv[q]); \
    }                                                                           \
  } while (0)

static inline void rows_axpy(float *M, int64_t n, int64_t hd, const float *w, float alpha, const float *x) {
  switch (hd) {
    case 8:
      AXPY(1);
      return;
    case 16:
      AXPY(2);
      return;
    case 32:
      AXPY(4);
      return;
    case 64:
      AXPY(8);
      return;
    default:
      break;
  }
  for (int64_t j = 0; j < n; j++)
    for (int64_t c = 0; c < hd; c++) M[j * hd + c] += alpha * w[j] * x[c];
}

/* one head's row (hd floats): a call to memcpy per row cost more than the
 * copy at the toy size (hd 32, a few hundred rows per tile) */
static inline void copy_row(float *dst, const float *src, int64_t hd) {
  if (hd % 8) {
    memcpy(dst, src, sizeof(float) * (size_t)hd);
    return;
  }
  for (int64_t c = 0; c < hd; c += 8) st(dst + c, ld(src + c));
}

/* rotate one head's row in place layout: dst = R(t) src (or R(t)^T when inverse) */
static inline void rot_row(float *dst, const float *src, int64_t hd, const float *cs, const float *sn, int inverse) {
  int64_t half = hd / 2;
  if (!cs) {
    copy_row(dst, src, hd);
    return;
  }
  for (int64_t c = 0; c < half; c++) {
    float x0 = src[c], x1 = src[c + half], co = cs[c], si = inverse ? -sn[c] : sn[c];
    dst[c] = x0 * co - x1 * si;
    dst[c + half] = x1 * co + x0 * si;
  }
}

/* Softmax of one row of logits (already in row[0..i]) with scale and bias
 * (scale 1 without a bias: scaled already); writes probabilities in
 * row[0..round8(i+1)) (zeros past i) and, when keep is not NULL, in
 * keep[0..min(round8(i+1), w)) too. */
static inline void softmax_row(float *row, int64_t i, float scale, const float *brow, float *keep, int64_t w) {
  int64_t n = i + 1, n8 = round8(n);
  float mx = -INFINITY;
  if (brow)
    for (int64_t j = 0; j < n; j++) row[j] = row[j] * scale + brow[j];
  else if (scale != 1.0f)
    for (int64_t j = 0; j < n; j++) row[j] *= scale;
  {
    int64_t j = 0;
    v8f vmx = bc(-INFINITY);
    for (; j + 8 <= n; j += 8) {
      v8f x = ld(row + j);
      v8i gt = x > vmx;
      vmx = (v8f)(((v8i)x & gt) | ((v8i)vmx & ~gt));
    }
    for (int k = 0; k < 8; k++) mx = vmx[k] > mx ? vmx[k] : mx;
    for (; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  }
  for (int64_t j = n; j < n8; j++) row[j] = mx; /* padding: finite, zeroed below */
  v8f sum = bc(0), vm = bc(mx);
  for (int64_t j = 0; j < n8; j += 8) {
    v8f e = v8_exp(ld(row + j) - vm);
    st(row + j, e);
    sum += e;
  }
  float s = hsum(sum) - (float)(n8 - n); /* the padding contributed exp(0) = 1 each */
  for (int64_t j = n; j < n8; j++) row[j] = 0;
  v8f inv = bc(1.0f / s);
  if (!keep) {
    for (int64_t j = 0; j < n8; j += 8) st(row + j, ld(row + j) * inv);
    return;
  }
  int64_t j = 0;
  for (; j + 8 <= n8 && j + 8 <= w; j += 8) {
    v8f p = ld(row + j) * inv;
    st(row + j, p);
    st(keep + j, p);
  }
  for (; j < n8; j += 8) {
    v8f p = ld(row + j) * inv;
    st(row + j, p);
    for (int64_t c = j; c < w && c < j + 8; c++) keep[c] = p[c - j];
  }
}

static inline int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* floats of one packed operand of a tile: [hd, T] or [T, hd] in panels of 16 */
static int64_t packed_floats(icl_attn_shape s) {
  int64_t a = s.hd * round16(s.T), b = s.T * round16(s.hd);
  return round16(a > b ? a : b);
}

int64_t icl_cpu_attn_tile_floats(icl_attn_shape s) {
  int64_t Tp = round8(s.T), hdp = round8(s.hd);
  /* Q, K, V, dO, dQ, dK, dV rows; K^T, V^T; RB probability rows; for the
   * GEMM path a T x Tp logit tile and four packed operands */
  return round16(7 * Tp * hdp + 2 * hdp * Tp + RB * Tp + Tp * Tp) + 4 * packed_floats(s) + 64;
}

/* a tile's scratch, then for the projection-fused passes (cpu_attn_proj.c)
 * one batch element's fused projection rows (or their gradient) and its
 * output-gradient rows */
static int64_t scratch_floats(icl_attn_shape s) {
  return icl_cpu_attn_tile_floats(s) + round16(s.T * 3 * s.H * s.hd) + round16(s.T * s.H * s.hd);
}

/* query rows per causal block of the GEMM path: a block's products stop at
 * its last row's column, so smaller blocks skip more of the masked half */
#define GB 12

static int use_gemm(void) { return icl_sgemm_avx2_available(); }

/* One tile's forward on the GEMM kernel: Q, K, V [T, hd] (rotated); St a
 * T x Tp scratch; pk two packed-operand areas; Pt the tile's kept
 * probabilities [T, T] or NULL; o the output rows (row stride ldo). Only the
 * query rows 0, q, 2q, ... are computed (q = icl_attn_shape.qstep); the
 * others of o and Pt are left as they were. A row i of Pt is written up to
 * column i + GB, zero past i: as far as tile_bwd_gemm reads it. St holds
 * query u's logits in row u. */
static void tile_fwd_gemm(const float *Q, const float *K, const float *V, int64_t T, int64_t hd, int64_t q, float scale,
                          const float *bias, float *St, int64_t Tp, float *pk, int64_t pkn, float *Pt,
                          const icl_attn_capture *cap, int64_t bh, float *o, int64_t ldo) {
  float *Kp = pk, *Vp = pk + pkn; /* K^T: hd x T, V: T x hd */
  const int64_t U = (T + q - 1) / q;
  icl_sgemm_avx2_pack(1, K, hd, hd, T, Kp);
  icl_sgemm_avx2_pack(0, V, hd, T, hd, Vp);
  for (int64_t u0 = 0; u0 < U; u0 += GB) {
    const int64_t m = U - u0 < GB ? U - u0 : GB, n = (u0 + m - 1) * q + 1;
    /* without a bias the product takes the scale (as alpha: the same
     * product of the sum and the scale as a pass over the row would) */
    icl_sgemm_avx2_packed(0, m, n, hd, bias ? 1.0f : scale, Q + u0 * q * hd, q * hd, Kp, 16 * hd, 0.0f, St + u0 * Tp,
                          Tp);
    for (int64_t u = u0; u < u0 + m; u++) {
      const int64_t i = u * q, n8 = round8(i + 1) < T ? round8(i + 1) : T;
      float *row = St + u * Tp, *kept = Pt ? Pt + i * T : NULL;
      softmax_row(row, i, bias ? scale : 1.0f, bias ? bias + i * T : NULL, kept, T);
      /* the rest of the block's columns: P V reads them */
      for (int64_t j = round8(i + 1); j < n; j++) row[j] = 0;
      /* the kept row (written with the probabilities, zeros up to n8)
       * needs zeros only as far past the diagonal as the backward's dV
       * blocks (GB keys) reach; a captured row is whole */
      if (kept && i + 1 + GB > n8)
        memset(kept + n8, 0, sizeof(float) * (size_t)((i + 1 + GB < T ? i + 1 + GB : T) - n8));
      if (cap && cap->out && (cap->row < 0 || cap->row == i)) {
        float *dst = cap->out + (cap->row < 0 ? (bh * T + i) * T : bh * T);
        memcpy(dst, row, sizeof(float) * (size_t)(i + 1));
        memset(dst + i + 1, 0, sizeof(float) * (size_t)(T - i - 1));
      }
    }
    icl_sgemm_avx2_packed(0, m, hd, n, 1.0f, St + u0 * Tp, Tp, Vp, 16 * T, 0.0f, o + u0 * q * ldo, q * ldo);
  }
}

/* One tile's backward on the GEMM kernel, for the query rows 0, q, 2q, ...
 * (the others have no output gradient). Pt [T, T] holds the probabilities
 * of those rows (zero above the diagonal); dO rows at row stride ldd; dPt a
 * T x Tp scratch (dP, then dS in place; query u in row u); pk four
 * packed-operand areas; dQ, dK [T, hd] scratch (scaled, still rotated; dQ
 * zero at the other rows); dV goes straight to its rows (row stride ldv). */
static void tile_bwd_gemm(const float *Q, const float *K, const float *V, const float *Pt, const float *dO, int64_t ldd,
                          int64_t T, int64_t hd, int64_t q, float scale, float *dPt, int64_t Tp, float *pk, int64_t pkn,
                          float *dQ, float *dK, float *dV, int64_t ldv) {
  float *Vtp = pk, *Kp = pk + pkn, *dOp = pk + 2 * pkn, *Qp = pk + 3 * pkn;
  const int64_t U = (T + q - 1) / q;
  icl_sgemm_avx2_pack(1, V, hd, hd, T, Vtp);
  icl_sgemm_avx2_pack(0, K, hd, T, hd, Kp);
  icl_sgemm_avx2_pack(0, dO, q * ldd, U, hd, dOp); /* the query rows only */
  icl_sgemm_avx2_pack(0, Q, q * hd, U, hd, Qp);
  if (q > 1) memset(dQ, 0, sizeof(float) * (size_t)(T * hd));
  for (int64_t u0 = 0; u0 < U; u0 += GB) {
    const int64_t m = U - u0 < GB ? U - u0 : GB, n = (u0 + m - 1) * q + 1;
    icl_sgemm_avx2_packed(0, m, n, hd, 1.0f, dO + u0 * q * ldd, q * ldd, Vtp, 16 * hd, 0.0f, dPt + u0 * Tp, Tp);
    for (int64_t u = u0; u < u0 + m; u++) {
      const int64_t i = u * q;
      const float *p = Pt + i * T;
      float *dp = dPt + u * Tp;
      /* eight partial sums added in a fixed order (the same bits on any
       * thread), then the scalar tail up to i */
      const int64_t nv = (i + 1) & ~(int64_t)7;
      v8f acc = bc(0);
      for (int64_t j = 0; j < nv; j += 8) acc += ld(p + j) * ld(dp + j);
      float Dr = hsum(acc);
      for (int64_t j = nv; j <= i; j++) Dr += p[j] * dp[j];
      const v8f vD = bc(Dr);
      for (int64_t j = 0; j < nv; j += 8) st(dp + j, ld(p + j) * (ld(dp + j) - vD));
      for (int64_t j = nv; j <= i; j++) dp[j] = p[j] * (dp[j] - Dr);
      for (int64_t j = i + 1; j < T; j++) dp[j] = 0;
    }
    /* dQ rows of this block: dS K over the columns so far */
    icl_sgemm_avx2_packed(0, m, hd, n, scale, dPt + u0 * Tp, Tp, Kp, 16 * T, 0.0f, dQ + u0 * q * hd, q * hd);
  }
  /* dV = P^T dO and dK = dS^T Q: key row j sums over the queries i >= j,
   * so a block of keys starts its sum (and the packed rows) at its first
   * such query u1 */
  for (int64_t j0 = 0; j0 < T; j0 += GB) {
    const int64_t m = T - j0 < GB ? T - j0 : GB, u1 = (j0 + q - 1) / q, k = U - u1;
    icl_sgemm_avx2_packed(1, m, hd, k, 1.0f, Pt + u1 * q * T + j0, q * T, dOp + 16 * u1, 16 * U, 0.0f, dV + j0 * ldv,
                          ldv);
    icl_sgemm_avx2_packed(1, m, hd, k, scale, dPt + u1 * Tp + j0, Tp, Qp + 16 * u1, 16 * U, 0.0f, dK + j0 * hd, hd);
  }
}

/* One (batch b, head h) tile's forward: qkv_b holds batch b's rows of the
 * fused projection (row stride 3 H hd), out_b its output rows (row stride
 * H hd); sc is the thread's scratch. */
void icl_cpu_attn_fwd_tile(icl_attn_shape s, int64_t b, int64_t h, float *out_b, const float *qkv_b, const float *cos_t,
                           const float *sin_t, const float *bias, float scale, float *q, float *k, float *v, float *P,
                           int keep, const icl_attn_capture *cap, float *sc) {
  const int64_t T = s.T, H = s.H, hd = s.hd, D = H * hd, half = hd / 2, bh = b * H + h;
  const int64_t Tp = round8(T), hdp = round8(hd);
  const int64_t qs = s.qstep > 1 ? s.qstep : 1;
  const int64_t pk_off = round16(7 * Tp * hdp + 2 * hdp * Tp + RB * Tp + Tp * Tp);
  float *Qs = keep ? q + bh * T * hd : sc;
  float *Ks = keep ? k + bh * T * hd : sc + Tp * hdp;
  float *Vs = keep ? v + bh * T * hd : sc + 2 * Tp * hdp;
  float *Kt = sc + 7 * Tp * hdp, *Pb = Kt + 2 * hdp * Tp;
  /* gather this head's q, k, v rows, rotating q and k; the GEMM path
   * reads q at the query rows only (the fused projection may have left the
   * others unwritten) */
  const int64_t q_every = use_gemm() ? qs : 1;
  for (int64_t t = 0; t < T; t++) {
    const float *row = qkv_b + t * 3 * D + h * hd;
    const float *cs = cos_t ? cos_t + t * half : NULL, *sn = sin_t ? sin_t + t * half : NULL;
    if (t % q_every == 0) rot_row(Qs + t * hd, row, hd, cs, sn, 0);
    rot_row(Ks + t * hd, row + D, hd, cs, sn, 0);
    copy_row(Vs + t * hd, row + 2 * D, hd);
  }
  if (use_gemm()) {
    tile_fwd_gemm(Qs, Ks, Vs, T, hd, qs, scale, bias ? bias + h * T * T : NULL,
                  sc + 7 * Tp * hdp + 2 * hdp * Tp + RB * Tp, Tp, sc + pk_off, packed_floats(s),
                  keep ? P + bh * T * T : NULL, cap, bh, out_b + h * hd, D);
    return;
  }
  for (int64_t c = 0; c < hd; c++) {
    for (int64_t t = 0; t < T; t++) Kt[c * Tp + t] = Ks[t * hd + c];
    for (int64_t t = T; t < Tp; t++) Kt[c * Tp + t] = 0;
  }
  for (int64_t i0 = 0; i0 < T; i0 += RB) {
    int64_t nr = T - i0 < RB ? T - i0 : RB;
    int64_t ncol = round8(i0 + nr);
    rows_x_bt(Qs + i0 * hd, nr, hd, Kt, Tp, ncol, Pb, Tp);
    for (int64_t r = 0; r < nr; r++) {
      int64_t i = i0 + r;
      float *row = Pb + r * Tp;
      softmax_row(row, i, scale, bias ? bias + (h * T + i) * T : NULL, NULL, 0);
      if (keep) memcpy(P + (bh * T + i) * T, row, sizeof(float) * (size_t)(i + 1));
      if (cap && cap->out) {
        float *dst = NULL;
        if (cap->row < 0)
          dst = cap->out + (bh * T + i) * T;
        else if (i == cap->row)
          dst = cap->out + bh * T;
        if (dst) {
          memcpy(dst, row, sizeof(float) * (size_t)(i + 1));
          memset(dst + i + 1, 0, sizeof(float) * (size_t)(T - i - 1));
        }
      }
      vec_x_rows(row, i + 1, Vs, hd, 1.0f, out_b + i * D + h * hd);
    }
  }
}

static int attn_fwd(icl_ctx *ctx, icl_attn_shape s, float *out, const float *qkv, const float *cos_t,
                    const float *sin_t, const float *bias, float scale, float *q, float *k, float *v, float *P,
                    int keep, const icl_attn_capture *cap, float *scratch, int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd, per = scratch_floats(s);
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int64_t bh = 0; bh < B * H; bh++) {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    const int64_t b = bh / H, h = bh % H;
    icl_cpu_attn_fwd_tile(s, b, h, out + b * T * D, qkv + b * T * 3 * D, cos_t, sin_t, bias, scale, q, k, v, P, keep,
                          cap, scratch + (int64_t)tid * per);
  }
  return ICL_OK;
}

/* A row of the logit gradient out (dS) or of its batch sum (G): g [T]
 * (+)= dp [n] (n = i + 1 for query row i; dp NULL: a row without gradient,
 * zero), zero past n: written when first, else added. */
static void g_row(float *g, const float *dp, int64_t n, int64_t T, int first) {
  if (!first) {
    if (dp)
      for (int64_t j = 0; j < n; j++) g[j] += dp[j];
    return;
  }
  if (dp)
    memcpy(g, dp, sizeof(float) * (size_t)n);
  else
    memset(g, 0, sizeof(float) * (size_t)n);
  memset(g + n, 0, sizeof(float) * (size_t)(T - n));
}

/* One (batch b, head h) tile's backward from batch b's output-gradient rows
 * dout_b (row stride H hd): dqkv_b gets batch b's rows of the fused
 * projection's gradient (row stride 3 H hd; head h's columns only); sc is
 * the thread's scratch. */
void icl_cpu_attn_bwd_tile(icl_attn_shape s, int64_t b, int64_t h, float *dqkv_b, const float *dout_b,
                           const float *cos_t, const float *sin_t, float scale, const float *q, const float *k,
                           const float *v, float *P, float *dS, float *Gh, int g_first, float *sc) {
  const int64_t T = s.T, H = s.H, hd = s.hd, D = H * hd, half = hd / 2, bh = b * H + h;
  const int64_t Tp = round8(T), hdp = round8(hd);
  const int64_t qs = s.qstep > 1 ? s.qstep : 1;
  const int64_t pk_off = round16(7 * Tp * hdp + 2 * hdp * Tp + RB * Tp + Tp * Tp);
  const float *Qs = q + bh * T * hd, *Ks = k + bh * T * hd, *Vs = v + bh * T * hd;
  float *dO = sc + 3 * Tp * hdp, *dQ = sc + 4 * Tp * hdp, *dK = sc + 5 * Tp * hdp, *dV = sc + 6 * Tp * hdp;
  float *Vt = sc + 7 * Tp * hdp, *Pb = Vt + 2 * hdp * Tp;
  if (use_gemm()) {
    float *Pt = P + bh * T * T, *dPt = Pb + RB * Tp;
    tile_bwd_gemm(Qs, Ks, Vs, Pt, dout_b + h * hd, D, T, hd, qs, scale, dPt, Tp, sc + pk_off, packed_floats(s), dQ, dK,
                  dqkv_b + 2 * D + h * hd, 3 * D);
    /* dS may alias P: only now that P has served dV */
    for (int64_t i = 0; (dS || Gh) && i < T; i++) {
      const float *dp = i % qs ? NULL : dPt + (i / qs) * Tp;
      if (dS) g_row(dS + (bh * T + i) * T, dp, i + 1, T, 1);
      if (Gh) g_row(Gh + i * T, dp, i + 1, T, g_first);
    }
    for (int64_t t = 0; t < T; t++) {
      float *row = dqkv_b + t * 3 * D + h * hd;
      const float *cs = cos_t ? cos_t + t * half : NULL, *sn = sin_t ? sin_t + t * half : NULL;
      rot_row(row, dQ + t * hd, hd, cs, sn, 1);
      rot_row(row + D, dK + t * hd, hd, cs, sn, 1);
    }
    return;
  }
  for (int64_t t = 0; t < T; t++) memcpy(dO + t * hd, dout_b + t * D + h * hd, sizeof(float) * (size_t)hd);
  for (int64_t c = 0; c < hd; c++) {
    for (int64_t t = 0; t < T; t++) Vt[c * Tp + t] = Vs[t * hd + c];
    for (int64_t t = T; t < Tp; t++) Vt[c * Tp + t] = 0;
  }
  memset(dK, 0, sizeof(float) * (size_t)(T * hd));
  memset(dV, 0, sizeof(float) * (size_t)(T * hd));
  for (int64_t i0 = 0; i0 < T; i0 += RB) {
    int64_t nr = T - i0 < RB ? T - i0 : RB;
    int64_t ncol = round8(i0 + nr);
    rows_x_bt(dO + i0 * hd, nr, hd, Vt, Tp, ncol, Pb, Tp); /* dP rows */
    for (int64_t r = 0; r < nr; r++) {
      int64_t i = i0 + r, n = i + 1;
      float *Prow = P + (bh * T + i) * T, *dp = Pb + r * Tp;
      float Dr = 0;
      for (int64_t j = 0; j < n; j++) Dr += Prow[j] * dp[j];
      /* dV[j] += P_ij dO_i, then dp becomes dS_ij = P_ij (dP_ij - D_i) */
      rows_axpy(dV, n, hd, Prow, 1.0f, dO + i * hd);
      for (int64_t j = 0; j < n; j++) dp[j] = Prow[j] * (dp[j] - Dr);
      rows_axpy(dK, n, hd, dp, scale, Qs + i * hd);
      vec_x_rows(dp, n, Ks, hd, scale, dQ + i * hd);
      if (dS) g_row(dS + (bh * T + i) * T, dp, n, T, 1);
      if (Gh) g_row(Gh + i * T, dp, n, T, g_first);
    }
  }
  /* undo the rotation and scatter into the fused gradient rows */
  for (int64_t t = 0; t < T; t++) {
    float *row = dqkv_b + t * 3 * D + h * hd;
    const float *cs = cos_t ? cos_t + t * half : NULL, *sn = sin_t ? sin_t + t * half : NULL;
    rot_row(row, dQ + t * hd, hd, cs, sn, 1);
    rot_row(row + D, dK + t * hd, hd, cs, sn, 1);
    memcpy(row + 2 * D, dV + t * hd, sizeof(float) * (size_t)hd);
  }
}

static int attn_bwd(icl_ctx *ctx, icl_attn_shape s, float *dqkv, const float *dout, const float *cos_t,
                    const float *sin_t, float scale, const float *q, const float *k, const float *v, float *P,
                    float *dS, float *scratch, int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd, per = scratch_floats(s);
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int64_t bh = 0; bh < B * H; bh++) {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    const int64_t b = bh / H, h = bh % H;
    icl_cpu_attn_bwd_tile(s, b, h, dqkv + b * T * 3 * D, dout + b * T * D, cos_t, sin_t, scale, q, k, v, P, dS, NULL, 0,
                          scratch + (int64_t)tid * per);
  }
  return ICL_OK;
}

/* G[h, i, :] = sum_b dS[b, h, i, :], rows split over threads, b summed in order */
static int bias_grad_reduce(icl_ctx *ctx, float *G, const float *dS, int64_t B, int64_t H, int64_t T) {
  (void)ctx;
#pragma omp parallel for schedule(static) if (H * T * T * B >= 65536)
  for (int64_t hi = 0; hi < H * T; hi++) {
    int64_t h = hi / T, i = hi % T;
    float *g = G + hi * T;
    memset(g, 0, sizeof(float) * (size_t)T);
    for (int64_t b = 0; b < B; b++) {
      const float *d = dS + ((b * H + h) * T + i) * T;
      for (int64_t j = 0; j <= i; j++) g[j] += d[j];
    }
  }
  return ICL_OK;
}

const icl_attn_kernels icl_cpu_attn_kernels = {
    .fwd = attn_fwd,
    .bwd = attn_bwd,
    .scratch_floats = scratch_floats,
    .bias_grad_reduce = bias_grad_reduce,
    .alibi_bias = icl_cpu_alibi_bias,
    .fire_fwd = icl_cpu_fire_fwd,
    .fire_bwd = icl_cpu_fire_bwd,
    .fwd_proj = icl_cpu_attn_fwd_proj,
    .bwd_proj = icl_cpu_attn_bwd_proj,
};
