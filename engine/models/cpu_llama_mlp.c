/* The Llama MLP on the CPU, one chunk of rows at a time per thread: the
 * gate/up product, SwiGLU and the down product of a chunk run back to back
 * while its [rows, 2F] block is still in L2, instead of three passes over
 * the whole [B T, 2F] activation (13 MB at hidden 64) with a barrier after
 * each. Backward likewise for dact -> dgu -> dx. Each row's values come
 * from the same kernels in the same order as the unfused passes (the AVX2
 * GEMM computes a row independently of the rows around it), so the results
 * are the same bits, but for the two weight gradients, which the backward
 * sums per chunk into 8 fixed partials (within rounding). Chunks (forward) and partials (backward) go to threads
 * dynamically: which thread takes one changes no bit, and a core slowed by a
 * neighbour then holds the other up less. */
#include "cpu_llama_mlp.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_sgemm_avx2.h"
#include "nn/swiglu_rows.h"

/* rows per chunk: 96 x 2F floats of gu stay in L2 up to F = 512 */
#define RC 96

static int64_t r16(int64_t n) { return (n + 15) & ~(int64_t)15; }

int icl_cpu_mlp_fused(int64_t d, int64_t F) {
  const char *e = getenv("ICL_CPU_MLP"); /* read per call (twice a layer): tests switch it */
  if (!icl_sgemm_avx2_available() || (e && strcmp(e, "unfused") == 0)) return 0;
  /* each thread packs both weights once per call, on its stack */
  return d * r16(2 * F) <= ICL_SGEMM_AVX2_PACK && F * r16(d) <= ICL_SGEMM_AVX2_PACK &&
         2 * F * r16(d) <= ICL_SGEMM_AVX2_PACK && d * r16(F) <= ICL_SGEMM_AVX2_PACK;
}

void icl_cpu_mlp_fwd(float *gu, float *act, float *out, const float *x, const float *Wgu, const float *Wd, int64_t rows,
                     int64_t d, int64_t F) {
  const int64_t nchunk = (rows + RC - 1) / RC;
#pragma omp parallel
  {
    /* op(B) of both products, packed once per thread: Wgu^T [d, 2F], Wd^T [F, d] */
    _Alignas(64) float pg[ICL_SGEMM_AVX2_PACK];
    _Alignas(64) float pd[ICL_SGEMM_AVX2_PACK];
    icl_sgemm_avx2_pack(1, Wgu, d, d, 2 * F, pg);
    icl_sgemm_avx2_pack(1, Wd, F, F, d, pd);
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunk; c++) {
      const int64_t r0 = c * RC, n = rows - r0 < RC ? rows - r0 : RC;
      icl_sgemm_avx2_packed(0, n, 2 * F, d, 1.0f, x + r0 * d, d, pg, 16 * d, 0.0f, gu + r0 * 2 * F, 2 * F);
      for (int64_t r = r0; r < r0 + n; r++) icl_swiglu_row_fwd(act + r * F, gu + r * 2 * F, F);
      icl_sgemm_avx2_packed(0, n, d, F, 1.0f, act + r0 * F, F, pd, 16 * F, 0.0f, out + r0 * d, d);
    }
  }
}

int64_t icl_cpu_mlp_partial_floats(int64_t d, int64_t F) { return ICL_CPU_MLP_PARTS * 3 * F * d; }

/* chunks [first(p), first(p + 1)) feed partial p: fixed by the row count
 * alone, so the sums are the same on any number of threads */
static int64_t first_chunk(int64_t p, int64_t nchunk) { return p * nchunk / ICL_CPU_MLP_PARTS; }

void icl_cpu_mlp_bwd(float *dgu, float *dx, float *dact, float *gWgu, float *gWd, float *part, const float *dy,
                     const float *gu, const float *act, const float *xn, const float *Wgu, const float *Wd,
                     int64_t rows, int64_t d, int64_t F) {
  const int64_t nchunk = (rows + RC - 1) / RC, ngu = 2 * F * d, nd = F * d;
#pragma omp parallel
  {
    /* B of both products, packed once per thread: Wd [d, F], Wgu [2F, d] */
    _Alignas(64) float pd[ICL_SGEMM_AVX2_PACK];
    _Alignas(64) float pg[ICL_SGEMM_AVX2_PACK];
    icl_sgemm_avx2_pack(0, Wd, F, d, F, pd);
    icl_sgemm_avx2_pack(0, Wgu, d, 2 * F, d, pg);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < ICL_CPU_MLP_PARTS; p++) {
      /* this partial's gradients of Wgu [2F, d] and Wd^T [F, d]: the narrow
       * operands (xn, dy: d columns) are the packed ones, dgu^T and act^T
       * are read in place */
      float *Pgu = part + p * (ngu + nd), *Pd = Pgu + ngu;
      if (first_chunk(p, nchunk) == first_chunk(p + 1, nchunk)) /* fewer chunks than partials */
        memset(Pgu, 0, sizeof(float) * (size_t)(ngu + nd));
      for (int64_t c = first_chunk(p, nchunk); c < first_chunk(p + 1, nchunk); c++) {
        const int64_t r0 = c * RC, n = rows - r0 < RC ? rows - r0 : RC;
        const float beta = c == first_chunk(p, nchunk) ? 0.0f : 1.0f;
        const float *dyc = dy + r0 * d;
        icl_sgemm_avx2(1, 0, F, d, n, 1.0f, act + r0 * F, F, dyc, d, beta, Pd, d);
        icl_sgemm_avx2_packed(0, n, F, d, 1.0f, dyc, d, pd, 16 * d, 0.0f, dact + r0 * F, F);
        for (int64_t r = r0; r < r0 + n; r++) icl_swiglu_row_bwd(dgu + r * 2 * F, dact + r * F, gu + r * 2 * F, F);
        icl_sgemm_avx2(1, 0, 2 * F, d, n, 1.0f, dgu + r0 * 2 * F, 2 * F, xn + r0 * d, d, beta, Pgu, d);
        icl_sgemm_avx2_packed(0, n, d, 2 * F, 1.0f, dgu + r0 * 2 * F, 2 * F, pg, 32 * F, 0.0f, dx + r0 * d, d);
      }
    }
    /* the weight gradients: partials added in order */
#pragma omp for schedule(static)
    for (int64_t i = 0; i < ngu + nd; i++) {
      float s = 0;
      for (int64_t p = 0; p < ICL_CPU_MLP_PARTS; p++) s += part[p * (ngu + nd) + i];
      if (i < ngu)
        gWgu[i] += s;
      else /* Wd's partials are [F, d]: transposed */
        gWd[((i - ngu) % d) * F + (i - ngu) / d] += s;
    }
  }
}
