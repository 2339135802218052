/* CPU attention with the qkv projection fused in, for training at small
 * hidden sizes. One batch element at a time per thread: its T rows of the
 * fused projection ([T, 3 H hd], 78 KB at hidden 64 and 102 tokens) are
 * computed into the thread's scratch and gathered into the heads' tiles
 * while in L2, instead of a [B T, 3 H hd] pass (5 MB) written to memory
 * and read back by the tiles. The backward likewise: the heads' gradients
 * of one batch element go to the scratch rows, whose product with Wqkv
 * (the input gradient) and contribution to the weight gradient follow at
 * once; the weight gradient sums batch elements into fixed partials (as the
 * fused MLP does) instead of a long-K product through OpenBLAS.
 *
 * Same bits as the unfused passes for everything but the weight gradient:
 * the AVX2 GEMM computes a row the same way whatever rows surround it, and
 * the tiles are the same code (cpu_attn.c). Needs that kernel: the caller
 * checks icl_cpu_gemm_row_exact for both products. */
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "attn_kernels.h"
#include "cpu/cpu_sgemm_avx2.h"
#include "cpu_attn_internal.h"

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

int icl_cpu_attn_fwd_proj(icl_ctx *ctx, icl_attn_shape s, float *out, const float *x, const float *Wqkv,
                          const float *cos_t, const float *sin_t, const float *bias, float scale, float *q, float *k,
                          float *v, float *P, const icl_attn_capture *cap, float *scratch, int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd;
  const int64_t tile = icl_cpu_attn_tile_floats(s), per = icl_cpu_attn_kernels.scratch_floats(s);
#pragma omp parallel num_threads(nthreads)
  {
    float *sc = scratch + (int64_t)thread_id() * per, *qkv_b = sc + tile;
    _Alignas(64) float pw[ICL_SGEMM_AVX2_PACK]; /* Wqkv^T [D, 3D], packed once per thread */
    icl_sgemm_avx2_pack(1, Wqkv, D, D, 3 * D, pw);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; b++) {
      icl_sgemm_avx2_packed(0, T, 3 * D, D, 1.0f, x + b * T * D, D, pw, 16 * D, 0.0f, qkv_b, 3 * D);
      for (int64_t h = 0; h < H; h++)
        icl_cpu_attn_fwd_tile(s, b, h, out, qkv_b, cos_t, sin_t, bias, scale, q, k, v, P, 1, cap, sc);
    }
  }
  return ICL_OK;
}

/* batch elements [first(p), first(p + 1)) feed partial p: fixed by B alone */
static int64_t first_b(int64_t p, int64_t B) { return p * B / ICL_ATTN_PROJ_PARTS; }

int icl_cpu_attn_bwd_proj(icl_ctx *ctx, icl_attn_shape s, float *dx, float *dWqkv, float *part, const float *x,
                          const float *Wqkv, const float *dout, const float *cos_t, const float *sin_t, float scale,
                          const float *q, const float *k, const float *v, float *P, float *dS, float *scratch,
                          int nthreads) {
  (void)ctx;
  const int64_t B = s.B, T = s.T, H = s.H, D = H * s.hd, nw = 3 * D * D;
  const int64_t tile = icl_cpu_attn_tile_floats(s), per = icl_cpu_attn_kernels.scratch_floats(s);
#pragma omp parallel num_threads(nthreads)
  {
    float *sc = scratch + (int64_t)thread_id() * per, *dqkv_b = sc + tile;
    _Alignas(64) float pw[ICL_SGEMM_AVX2_PACK]; /* Wqkv [3D, D], packed once per thread */
    icl_sgemm_avx2_pack(0, Wqkv, D, 3 * D, D, pw);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < ICL_ATTN_PROJ_PARTS; p++) {
      float *Pw = part + p * nw;
      if (first_b(p, B) == first_b(p + 1, B)) memset(Pw, 0, sizeof(float) * (size_t)nw);
      for (int64_t b = first_b(p, B); b < first_b(p + 1, B); b++) {
        for (int64_t h = 0; h < H; h++)
          icl_cpu_attn_bwd_tile(s, b, h, dqkv_b, dout, cos_t, sin_t, scale, q, k, v, P, dS, sc);
        icl_sgemm_avx2_packed(0, T, D, 3 * D, 1.0f, dqkv_b, 3 * D, pw, 16 * 3 * D, 0.0f, dx + b * T * D, D);
        /* dWqkv [3D, D]: dqkv_b^T read in place, x's rows (narrow) packed */
        icl_sgemm_avx2(1, 0, 3 * D, D, T, 1.0f, dqkv_b, 3 * D, x + b * T * D, D, b == first_b(p, B) ? 0.0f : 1.0f, Pw,
                       D);
      }
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < nw; i++) {
      float acc = 0;
      for (int64_t p = 0; p < ICL_ATTN_PROJ_PARTS; p++) acc += part[p * nw + i];
      dWqkv[i] += acc;
    }
  }
  return ICL_OK;
}
