/* CPU attention with the q/k/v (and o) projections fused in, for training at
 * small hidden sizes. One batch element at a time per thread: its T rows of the
 * fused projection ([T, 3 H hd], 78 KB at hidden 64 and 102 tokens) are
 * computed into the thread's scratch and gathered into the heads' tiles
 * while in L2, instead of a [B T, 3 H hd] pass (5 MB) written to memory
 * and read back by the tiles. The backward likewise: the heads' gradients
 * of one batch element go to the scratch rows, whose product with Wqkv
 * (the input gradient) and contribution to the weight gradient follow at
 * once; the weight gradient sums batch elements into fixed partials (as the
 * fused MLP does) instead of a long-K product through OpenBLAS. The o
 * projection can ride along: its product per batch element right after the
 * tiles, and in the backward the output gradient from the o projection's
 * (and Wo's gradient, in partials) right before them. So can the RMSNorms
 * on either side (nn/norm_ride.h): after the o projection the residual add
 * and the post-attention norm, and at the end of the backward the input
 * norm's backward from the batch element's input gradient, which then stays
 * in the scratch (its weight gradient in the partials).
 *
 * Same bits as the unfused passes for everything but the weight gradients:
 * the AVX2 GEMM computes a row the same way whatever rows surround it, and
 * the tiles are the same code (cpu_attn.c). Needs that kernel: the caller
 * checks icl_cpu_gemm_row_exact for the products and icl_cpu_attn_proj_fits
 * for the packed weights.
 *
 * Batch elements (forward) and partials (backward) go to threads
 * dynamically: which thread computes one changes no bit, and on a shared
 * machine one core is often slower than the other, which a static split
 * would make the other wait for at the end of every pass. */
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "attn_kernels.h"
#include "cpu/cpu_sgemm_avx2.h"
#include "cpu_attn_internal.h"
#include "nn/rmsnorm_rows.h"

static int64_t r16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* both weights packed at once, forward and backward, on the stack */
int icl_cpu_attn_proj_fits(int64_t D) {
  return D * r16(3 * D) + D * r16(D) <= ICL_SGEMM_AVX2_PACK && 3 * D * r16(D) + D * r16(D) <= ICL_SGEMM_AVX2_PACK;
}

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

int icl_cpu_attn_fwd_proj(icl_ctx *ctx, icl_attn_shape s, float *out, const float *x, const float *Wqkv,
                          const float *cos_t, const float *sin_t, const float *bias, float scale, float *q, float *k,
                          float *v, float *P, const icl_attn_capture *cap, const icl_attn_oproj *o, float *scratch,
                          int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd, qs = s.qstep > 1 ? s.qstep : 1;
  const int64_t tile = icl_cpu_attn_tile_floats(s), per = icl_cpu_attn_kernels.scratch_floats(s);
  const int with_o = o && o->Wo;
  /* q only at the query rows (the panels of Wqkv^T's q columns end at D) */
  const int q_rows = qs > 1 && D % 16 == 0;
#pragma omp parallel num_threads(nthreads)
  {
    float *sc = scratch + (int64_t)thread_id() * per, *qkv_b = sc + tile;
    /* Wqkv^T [D, 3D] and Wo^T [D, D], packed once per thread */
    _Alignas(64) float pw[ICL_SGEMM_AVX2_PACK];
    icl_sgemm_avx2_pack(1, Wqkv, D, D, 3 * D, pw);
    float *po = pw + D * r16(3 * D);
    if (with_o) icl_sgemm_avx2_pack(1, o->Wo, D, D, D, po);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; b++) {
      float *out_b = out + b * T * D;
      if (q_rows) {
        icl_sgemm_avx2_packed(0, (T + qs - 1) / qs, D, D, 1.0f, x + b * T * D, qs * D, pw, 16 * D, 0.0f, qkv_b,
                              qs * 3 * D);
        icl_sgemm_avx2_packed(0, T, 2 * D, D, 1.0f, x + b * T * D, D, pw + D * D, 16 * D, 0.0f, qkv_b + D, 3 * D);
      } else {
        icl_sgemm_avx2_packed(0, T, 3 * D, D, 1.0f, x + b * T * D, D, pw, 16 * D, 0.0f, qkv_b, 3 * D);
      }
      for (int64_t h = 0; h < H; h++)
        icl_cpu_attn_fwd_tile(s, b, h, out_b, qkv_b, cos_t, sin_t, bias, scale, q, k, v, P, 1, cap, sc);
      if (!with_o) continue;
      /* the o projection at the query rows (every row, or a trimmed
       * layer's x rows, whose delta, norm output and residual sum are
       * compact: U rows per batch element) */
      const icl_add_norm *nm = o->norm;
      const int64_t U = (T + qs - 1) / qs;
      float *del = nm ? sc + tile + r16(T * 3 * D) : o->delta + b * U * D;
      icl_sgemm_avx2_packed(0, U, D, D, 1.0f, out_b, qs * D, po, 16 * D, 0.0f, del, D);
      for (int64_t u = 0; nm && u < U; u++) icl_add_norm_row(nm, b * U + u, del + u * D, D);
    }
  }
  return ICL_OK;
}

/* batch elements [first(p), first(p + 1)) feed partial p: fixed by B alone
 * (thread-count independent); the partials shrink (about 15, 13, ..., 1
 * sixty-fourths of B) so that the last ones handed out are short */
static int64_t first_b(int64_t p, int64_t B) {
  const int64_t P = ICL_ATTN_PROJ_PARTS, rest = P - p;
  return B - B * rest * rest / (P * P);
}

int icl_cpu_attn_bwd_proj(icl_ctx *ctx, icl_attn_shape s, float *dx, float *dWqkv, float *part, const float *x,
                          const float *Wqkv, const float *dout, const float *cos_t, const float *sin_t, float scale,
                          const float *q, const float *k, const float *v, float *P, float *dS, const icl_attn_oproj *o,
                          float *scratch, int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd, nq = 3 * D * D, no = D * D, qs = s.qstep > 1 ? s.qstep : 1;
  float *G = o ? o->G : NULL;
  const int64_t nG = G ? H * T * T : 0, np = nq + no + D + nG;
  const int64_t tile = icl_cpu_attn_tile_floats(s), per = icl_cpu_attn_kernels.scratch_floats(s);
  const int with_o = o && o->Wo;
  const icl_norm_bwd *nb = o ? o->nbwd : NULL;
  const int64_t U = (T + qs - 1) / qs;
  const int seed = with_o && nb && qs > 1;
#pragma omp parallel num_threads(nthreads)
  {
    float *sc = scratch + (int64_t)thread_id() * per, *dqkv_b = sc + tile, *dout_b = dqkv_b + r16(T * 3 * D);
    /* Wqkv [3D, D] and Wo [D, D], packed once per thread */
    _Alignas(64) float pw[ICL_SGEMM_AVX2_PACK];
    icl_sgemm_avx2_pack(0, Wqkv, D, 3 * D, D, pw);
    float *po = pw + 3 * D * r16(D);
    if (with_o) icl_sgemm_avx2_pack(0, o->Wo, D, D, D, po);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < ICL_ATTN_PROJ_PARTS; p++) {
      /* this partial's gradients of Wqkv [3D, D] and Wo [D, D] (the narrow
       * operands' rows (x, attn) packed, the gradients read in place), of
       * the norm's weight and of the bias */
      float *Pq = part + p * np, *Po = Pq + nq, *Pw = Po + no, *Pg = G ? Pw + D : NULL;
      if (first_b(p, B) == first_b(p + 1, B)) memset(Pq, 0, sizeof(float) * (size_t)np);
      for (int64_t b = first_b(p, B); b < first_b(p + 1, B); b++) {
        const float beta = b == first_b(p, B) ? 0.0f : 1.0f;
        const float *db = dout + b * T * D;
        if (with_o) { /* at the query rows (qs > 1: o->dres compact, U rows per batch element) */
          const float *dr = o->dres + b * U * D;
          icl_sgemm_avx2(1, 0, D, D, U, 1.0f, dr, D, o->attn + b * T * D, qs * D, beta, Po, D);
          icl_sgemm_avx2_packed(0, U, D, D, 1.0f, dr, D, po, 16 * D, 0.0f, dout_b, qs * D);
          db = dout_b;
        }
        for (int64_t h = 0; h < H; h++)
          icl_cpu_attn_bwd_tile(s, b, h, dqkv_b, db, cos_t, sin_t, scale, q, k, v, P, dS, Pg ? Pg + h * T * T : NULL,
                                beta == 0.0f, sc);
        /* dx_b: with the norm, scratch (dout_b's rows: the tiles are done with them) */
        float *dxb = nb ? dout_b : dx + b * T * D;
        if (qs > 1) {
          /* the rows between the query rows have no q gradient: their
           * products skip it (exact zeros: the sums keep their bits) */
          icl_sgemm_avx2_packed(0, (T + qs - 1) / qs, D, 3 * D, 1.0f, dqkv_b, qs * 3 * D, pw, 16 * 3 * D, 0.0f, dxb,
                                qs * D);
          for (int64_t r = 1; r < qs && r < T; r++)
            icl_sgemm_avx2_packed(0, (T - r + qs - 1) / qs, D, 2 * D, 1.0f, dqkv_b + r * 3 * D + D, qs * 3 * D,
                                  pw + 16 * D, 16 * 3 * D, 0.0f, dxb + r * D, qs * D);
          icl_sgemm_avx2(1, 0, D, D, (T + qs - 1) / qs, 1.0f, dqkv_b, qs * 3 * D, x + b * T * D, qs * D, beta, Pq, D);
          icl_sgemm_avx2(1, 0, 2 * D, D, T, 1.0f, dqkv_b + D, 3 * D, x + b * T * D, D, beta, Pq + D * D, D);
        } else {
          icl_sgemm_avx2_packed(0, T, D, 3 * D, 1.0f, dqkv_b, 3 * D, pw, 16 * 3 * D, 0.0f, dxb, D);
          icl_sgemm_avx2(1, 0, 3 * D, D, T, 1.0f, dqkv_b, 3 * D, x + b * T * D, D, beta, Pq, D);
        }
        if (nb && beta == 0.0f) memset(Pw, 0, sizeof(float) * (size_t)D);
        for (int64_t t = 0; nb && t < T; t++) {
          /* a trimmed layer's residual gradient: o->dres at the query rows, zero between */
          float *dres_t = nb->dres + (b * T + t) * D;
          if (seed && t % qs == 0)
            memcpy(dres_t, o->dres + (b * U + t / qs) * D, sizeof(float) * (size_t)D);
          else if (seed)
            memset(dres_t, 0, sizeof(float) * (size_t)D);
          icl_norm_bwd_row(nb, b * T + t, dxb + t * D, Pw, D);
        }
      }
    }
    /* the weight gradients: partials added in order */
#pragma omp for schedule(static)
    for (int64_t i = 0; i < np; i++) {
      if ((i >= nq && i < nq + no && !with_o) || (i >= nq + no && i < nq + no + D && !nb)) continue;
      float acc = 0;
      for (int64_t p = 0; p < ICL_ATTN_PROJ_PARTS; p++) acc += part[p * np + i];
      if (i < nq)
        dWqkv[i] += acc;
      else if (i < nq + no)
        o->dWo[i - nq] += acc;
      else if (i < nq + no + D)
        nb->dw[i - nq - no] += acc;
      else
        G[i - nq - no - D] = acc;
    }
  }
  return ICL_OK;
}
