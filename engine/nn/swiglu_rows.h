/* SwiGLU on one row, forward and backward, shared by the CPU nn kernels
 * (cpu_nn.c) and the fused CPU MLP of the Llama block (cpu_llama_mlp.c), so
 * both give the same bits. A row of gu holds the gate (f values) then the
 * up projection (f values). */
#ifndef ICL_SWIGLU_ROWS_H
#define ICL_SWIGLU_ROWS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "vmath.h"

static inline float icl_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Both rows' vector loops take four vectors at a time: the sigmoids'
 * dependency chains (exp, division) then overlap (a few percent faster than
 * one at a time, in isolation); each element's operations are the same
 * either way. */
#define ICL_SWIGLU_UNROLL 4

/* h = silu(g) * u */
static inline void icl_swiglu_row_fwd(float *h, const float *gu, int64_t f) {
  const float *g = gu, *u = gu + f;
  int64_t j = 0;
  for (; j + 8 * ICL_SWIGLU_UNROLL <= f; j += 8 * ICL_SWIGLU_UNROLL) {
    icl_v8f gv[ICL_SWIGLU_UNROLL], s[ICL_SWIGLU_UNROLL];
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) gv[q] = icl_v8_load(g + j + 8 * q);
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) s[q] = icl_v8_sigmoid(gv[q]);
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) icl_v8_store(h + j + 8 * q, gv[q] * s[q] * icl_v8_load(u + j + 8 * q));
  }
  for (; j + 8 <= f; j += 8) {
    icl_v8f gv = icl_v8_load(g + j);
    icl_v8_store(h + j, gv * icl_v8_sigmoid(gv) * icl_v8_load(u + j));
  }
  for (; j < f; j++) h[j] = g[j] * icl_sigmoidf(g[j]) * u[j];
}

/* one vector of the backward (below) from its gate values and sigmoids */
static inline void icl_swiglu_v8_bwd(float *dg, float *du, float *h, const float *dh, const float *u, icl_v8f gv,
                                     icl_v8f s) {
  const icl_v8f one = icl_v8_set1(1.0f), uv = icl_v8_load(u), dv = icl_v8_load(dh);
  if (h) icl_v8_store(h, gv * s * uv);
  icl_v8_store(du, dv * gv * s);
  icl_v8_store(dg, dv * uv * s * (one + gv * (one - s)));
}

/* dgu from dh: du = dh silu(g), dg = dh u s (1 + g (1 - s)); with h (not
 * NULL) also the row's forward output h (the same bits as
 * icl_swiglu_row_fwd): the fused CPU MLP's backward recomputes h from gu,
 * which it reads anyway, rather than keep it from the forward */
static inline void icl_swiglu_row_bwd_h(float *dgu, float *h, const float *dh, const float *gu, int64_t f) {
  const float *g = gu, *u = gu + f;
  float *dg = dgu, *du = dgu + f;
  int64_t j = 0;
  for (; j + 8 * ICL_SWIGLU_UNROLL <= f; j += 8 * ICL_SWIGLU_UNROLL) {
    icl_v8f gv[ICL_SWIGLU_UNROLL], s[ICL_SWIGLU_UNROLL];
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) gv[q] = icl_v8_load(g + j + 8 * q);
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) s[q] = icl_v8_sigmoid(gv[q]);
    for (int q = 0; q < ICL_SWIGLU_UNROLL; q++) {
      const int64_t o = j + 8 * q;
      icl_swiglu_v8_bwd(dg + o, du + o, h ? h + o : NULL, dh + o, u + o, gv[q], s[q]);
    }
  }
  for (; j + 8 <= f; j += 8) {
    icl_v8f gv = icl_v8_load(g + j);
    icl_swiglu_v8_bwd(dg + j, du + j, h ? h + j : NULL, dh + j, u + j, gv, icl_v8_sigmoid(gv));
  }
  for (; j < f; j++) {
    float s = icl_sigmoidf(g[j]);
    if (h) h[j] = g[j] * s * u[j];
    du[j] = dh[j] * g[j] * s;
    dg[j] = dh[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
  }
}

static inline void icl_swiglu_row_bwd(float *dgu, const float *dh, const float *gu, int64_t f) {
  icl_swiglu_row_bwd_h(dgu, NULL, dh, gu, f);
}

#endif
