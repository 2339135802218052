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
 * neighbour then holds the other up less. A chunk's SwiGLU output and
 * gradients stay in a per-thread slot (rows_of); the backward recomputes
 * the SwiGLU output from gu, which it reads anyway (same bits), rather than
 * keep [B T, F] from the forward; the residual add and norm after the MLP
 * and the norm's backward before it run per chunk too (icl_add_norm,
 * icl_norm_bwd). At the toy size (6528 rows, F = 256) that is about 40 MB
 * less memory traffic per layer: the SwiGLU output written and read back,
 * dact and dgu written, the MLP output and input gradient written and read
 * back. Only gu ([rows, 2F]) still goes out and comes back. */
#include "cpu_llama_mlp.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/cpu_sgemm_avx2.h"
#include "nn/rmsnorm_rows.h"
#include "nn/swiglu_rows.h"

/* rows per chunk: 96 x 2F floats of gu stay in L2 up to F = 512 */
#define RC 96

static int64_t r16(int64_t n) { return (n + 15) & ~(int64_t)15; }

static int64_t thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

static int64_t n_threads(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/* Where a chunk starting at row r0 keeps rows of width w that feed nothing
 * after the chunk (SwiGLU output and gradients, the MLP output or input
 * gradient a riding norm consumes): with room for one chunk per thread at
 * the buffer's head, in the thread's slot there (in L2 when the next chunk
 * comes, instead of rows streamed out to memory), 16 floats apart more than
 * w, so that the weight-gradient products walking them down (A transposed:
 * rows 1 or 2 KB apart at F = 256) do not map a block's K steps onto a few
 * L1 sets (measured: that product 60 -> 66 GFLOP/s alone, the
 * single-threaded toy step about 3% faster); else at the chunk's own rows. */
typedef struct chunk_rows {
  float *p;
  int64_t ld;
} chunk_rows;
static chunk_rows rows_of(float *buf, int64_t rows, int64_t r0, int64_t w) {
  const int64_t ld = w + 16, nt = n_threads();
  if (nt * RC * ld <= rows * w) return (chunk_rows){buf + thread_id() * RC * ld, ld};
  return (chunk_rows){buf + r0 * w, w};
}

static void prefetch_row(const float *row, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(row + i, 0, 3);
}

int icl_cpu_mlp_fused(int64_t d, int64_t F) {
  const char *e = getenv("ICL_CPU_MLP"); /* read per call (twice a layer): tests switch it */
  if (!icl_sgemm_avx2_available() || (e && strcmp(e, "unfused") == 0)) return 0;
  /* each thread packs both weights once per call, on its stack */
  return d * r16(2 * F) <= ICL_SGEMM_AVX2_PACK && F * r16(d) <= ICL_SGEMM_AVX2_PACK &&
         2 * F * r16(d) <= ICL_SGEMM_AVX2_PACK && d * r16(F) <= ICL_SGEMM_AVX2_PACK;
}

void icl_cpu_mlp_fwd(float *gu, float *act, float *out, const float *x, const float *Wgu, const float *Wd, int64_t rows,
                     int64_t d, int64_t F, const icl_add_norm *res) {
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
      const chunk_rows A = rows_of(act, rows, r0, F); /* the backward recomputes act */
      const chunk_rows O = res ? rows_of(out, rows, r0, d) : (chunk_rows){out + r0 * d, d};
      icl_sgemm_avx2_packed(0, n, 2 * F, d, 1.0f, x + r0 * d, d, pg, 16 * d, 0.0f, gu + r0 * 2 * F, 2 * F);
      for (int64_t r = 0; r < n; r++) icl_swiglu_row_fwd(A.p + r * A.ld, gu + (r0 + r) * 2 * F, F);
      icl_sgemm_avx2_packed(0, n, d, F, 1.0f, A.p, A.ld, pd, 16 * F, 0.0f, O.p, O.ld);
      for (int64_t r = 0; res && r < n; r++) icl_add_norm_row(res, r0 + r, O.p + r * O.ld, d);
    }
  }
}

int64_t icl_cpu_mlp_partial_floats(int64_t d, int64_t F) { return ICL_CPU_MLP_PARTS * (3 * F * d + d); }

/* chunks [first(p), first(p + 1)) feed partial p: fixed by the row count
 * alone, so the sums are the same on any number of threads. The partials
 * shrink (sizes about 15, 13, ..., 1 sixty-fourths of the chunks) so that
 * the last ones handed out are short and the threads finish together. */
static int64_t first_chunk(int64_t p, int64_t nchunk) {
  const int64_t P = ICL_CPU_MLP_PARTS, rest = P - p;
  return nchunk - nchunk * rest * rest / (P * P);
}

void icl_cpu_mlp_bwd(float *dgu, float *dx, float *dact, float *gWgu, float *gWd, float *part, const float *dy,
                     const float *gu, float *act, const float *xn, const float *Wgu, const float *Wd, int64_t rows,
                     int64_t d, int64_t F, const icl_norm_bwd *nb) {
  const int64_t nchunk = (rows + RC - 1) / RC, ngu = 2 * F * d, nd = F * d, np = ngu + nd + d;
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
      float *Pgu = part + p * np, *Pd = Pgu + ngu, *Pw = Pd + nd;
      if (first_chunk(p, nchunk) == first_chunk(p + 1, nchunk)) /* fewer chunks than partials */
        memset(Pgu, 0, sizeof(float) * (size_t)np);
      for (int64_t c = first_chunk(p, nchunk); c < first_chunk(p + 1, nchunk); c++) {
        const int64_t r0 = c * RC, n = rows - r0 < RC ? rows - r0 : RC;
        const float beta = c == first_chunk(p, nchunk) ? 0.0f : 1.0f;
        const float *dyc = dy + r0 * d;
        const chunk_rows G = rows_of(dgu, rows, r0, 2 * F), Da = rows_of(dact, rows, r0, F),
                         A = rows_of(act, rows, r0, F);
        float *dgc = G.p, *dac = Da.p, *ac = A.p;
        icl_sgemm_avx2_packed(0, n, F, d, 1.0f, dyc, d, pd, 16 * d, 0.0f, dac, Da.ld);
        /* gu comes back from memory: the next chunk of this partial is
         * fetched a row at a time, spread over this chunk's SwiGLU rows, so
         * it is in cache when its turn comes (the loads of gu otherwise
         * stall about half of this loop's time) */
        const int64_t rn = c + 1 < first_chunk(p + 1, nchunk) ? rows - r0 - RC : 0;
        for (int64_t r = 0; r < n; r++) {
          if (r < rn) prefetch_row(gu + (r0 + RC + r) * 2 * F, 2 * F);
          icl_swiglu_row_bwd_h(dgc + r * G.ld, ac + r * A.ld, dac + r * Da.ld, gu + (r0 + r) * 2 * F, F);
        }
        icl_sgemm_avx2(1, 0, F, d, n, 1.0f, ac, A.ld, dyc, d, beta, Pd, d);
        icl_sgemm_avx2(1, 0, 2 * F, d, n, 1.0f, dgc, G.ld, xn + r0 * d, d, beta, Pgu, d);
        const chunk_rows X = nb ? rows_of(dx, rows, r0, d) : (chunk_rows){dx + r0 * d, d};
        icl_sgemm_avx2_packed(0, n, d, 2 * F, 1.0f, dgc, G.ld, pg, 32 * F, 0.0f, X.p, X.ld);
        if (nb && beta == 0.0f) memset(Pw, 0, sizeof(float) * (size_t)d);
        for (int64_t r = 0; nb && r < n; r++) icl_norm_bwd_row(nb, r0 + r, X.p + r * X.ld, Pw, d);
      }
    }
    /* the weight gradients: partials added in order */
#pragma omp for schedule(static)
    for (int64_t i = 0; i < (nb ? np : ngu + nd); i++) {
      float s = 0;
      for (int64_t p = 0; p < ICL_CPU_MLP_PARTS; p++) s += part[p * np + i];
      if (i < ngu)
        gWgu[i] += s;
      else if (i < ngu + nd) /* Wd's partials are [F, d]: transposed */
        gWd[((i - ngu) % d) * F + (i - ngu) / d] += s;
      else
        nb->dw[i - ngu - nd] += s;
    }
  }
}
