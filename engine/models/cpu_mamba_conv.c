/* CPU causal depthwise convolution + SiLU of the Mamba mixer (spec §6.2):
 *   xc_t[e] = b[e] + Σ_k w[e,k] x_{t-K+1+k}[e],  u_t = silu(xc_t),
 * and its backward (§6.5). One task is (batch row, group of 64 channels):
 * the group's K filter taps sit in a small local table and the time loop
 * streams down the rows, reading whole row segments. Tasks write disjoint
 * memory (dynamic scheduling is safe for determinism). The backward
 * recomputes xc from x instead of storing it (one conv per element, cheaper
 * than B·T·E floats per layer). */
#include "cpu_mamba.h"
#include "mamba_vmath.h"

#define GROUP 64 /* channels per task: whole 256-byte row segments per step */
#define NSUB (GROUP / 8)
#define PF_AHEAD 8 /* rows ahead to prefetch (the row stride defeats the hardware prefetchers) */

typedef struct conv_task {
  int64_t b, e0;
  int nsub, nv[NSUB];
  v8f w[ICL_MAMBA_MAX_K][NSUB], bias[NSUB]; /* w[k][j][i] = w[(e0 + 8j + i) * K + k] */
} conv_task;

static void task_load(conv_task *c, int64_t task, int64_t ng, int64_t E, int64_t K, const float *w, const float *b) {
  c->b = task / ng;
  c->e0 = (task % ng) * GROUP;
  int64_t width = E - c->e0 < GROUP ? E - c->e0 : GROUP;
  c->nsub = (int)((width + 7) / 8);
  for (int j = 0; j < c->nsub; j++) {
    int64_t e = c->e0 + 8 * j;
    c->nv[j] = (int)(E - e < 8 ? E - e : 8);
    c->bias[j] = v8_load(b + e, c->nv[j]);
    for (int64_t k = 0; k < K; k++) {
      v8f v = V8(0.0f);
      for (int i = 0; i < c->nv[j]; i++) v[i] = w[(e + i) * K + k];
      c->w[k][j] = v;
    }
  }
}

/* xc at time t for sub-block j; xb: the task's x rows (stride ldx) */
V8_FN v8f conv_at(const conv_task *c, const float *xb, int64_t ldx, int64_t t, int j, int64_t K) {
  v8f acc = c->bias[j];
  for (int64_t k = 0; k < K; k++) {
    int64_t ts = t - K + 1 + k;
    if (ts >= 0) acc += c->w[k][j] * v8_load(xb + ts * ldx + 8 * j, c->nv[j]);
  }
  return acc;
}

static void prefetch_rows(const float *p, int64_t ld, int64_t t, int nsub, int write) {
  for (int j = 0; j < nsub; j += 2) {
    if (write) __builtin_prefetch(p + t * ld + 8 * j, 1);
    else __builtin_prefetch(p + t * ld + 8 * j);
  }
}

int icl_cpu_mamba_conv_fwd(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w, const float *b,
                           int64_t B, int64_t T, int64_t E, int64_t K) {
  if (K > ICL_MAMBA_MAX_K) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba conv: kernel %lld > %d", (long long)K,
                                             ICL_MAMBA_MAX_K);
  int64_t ng = (E + GROUP - 1) / GROUP;
#pragma omp parallel for schedule(dynamic, 4) if (B * T * E >= 32768)
  for (int64_t task = 0; task < B * ng; task++) {
    conv_task c;
    task_load(&c, task, ng, E, K, w, b);
    const float *xb = x + c.b * T * ldx + c.e0;
    float *ub = u + c.b * T * E + c.e0;
    for (int64_t t = 0; t < T; t++) {
      if (t + PF_AHEAD < T) {
        prefetch_rows(xb, ldx, t + PF_AHEAD, c.nsub, 0);
        prefetch_rows(ub, E, t + PF_AHEAD, c.nsub, 1);
      }
      for (int j = 0; j < c.nsub; j++) {
        v8f xc = conv_at(&c, xb, ldx, t, j, K);
        v8_store(ub + t * E + 8 * j, xc * icl_v8_sigmoid(xc), c.nv[j]);
      }
    }
  }
  return ICL_OK;
}

int64_t icl_cpu_mamba_conv_bwd_scratch(int64_t B, int64_t E, int64_t K) { return B * E * (K + 1); }

int icl_cpu_mamba_conv_bwd(icl_ctx *ctx, float *dx, float *dw, float *db, float *du, const float *x, int64_t ldx,
                           const float *w, const float *b, int64_t B, int64_t T, int64_t E, int64_t K,
                           float *scratch) {
  if (K > ICL_MAMBA_MAX_K) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba conv: kernel %lld > %d", (long long)K,
                                             ICL_MAMBA_MAX_K);
  int64_t ng = (E + GROUP - 1) / GROUP;
  /* scratch[b][e][k] (k < K: dw, k = K: db): one row of partial sums per batch row */
#pragma omp parallel for schedule(dynamic, 4) if (B * T * E >= 32768)
  for (int64_t task = 0; task < B * ng; task++) {
    conv_task c;
    task_load(&c, task, ng, E, K, w, b);
    v8f dwv[ICL_MAMBA_MAX_K][NSUB], dbv[NSUB];
    const float *xb = x + c.b * T * ldx + c.e0;
    float *dub = du + c.b * T * E + c.e0, *dxb = dx + c.b * T * ldx + c.e0;
    /* dxc = du * silu'(xc), in place over du */
    for (int64_t t = 0; t < T; t++) {
      if (t + PF_AHEAD < T) {
        prefetch_rows(xb, ldx, t + PF_AHEAD, c.nsub, 0);
        prefetch_rows(dub, E, t + PF_AHEAD, c.nsub, 1);
      }
      for (int j = 0; j < c.nsub; j++) {
        v8f xc = conv_at(&c, xb, ldx, t, j, K), sg = icl_v8_sigmoid(xc);
        v8f d = v8_load(dub + t * E + 8 * j, c.nv[j]) * (sg * (V8(1.0f) + xc * (V8(1.0f) - sg)));
        v8_store(dub + t * E + 8 * j, d, c.nv[j]);
      }
    }
    for (int j = 0; j < c.nsub; j++) {
      dbv[j] = V8(0.0f);
      for (int64_t k = 0; k < K; k++) dwv[k][j] = V8(0.0f);
    }
    for (int64_t s = 0; s < T; s++) {
      if (s + PF_AHEAD < T) prefetch_rows(dxb, ldx, s + PF_AHEAD, c.nsub, 1);
      for (int j = 0; j < c.nsub; j++) {
        /* x_s feeds xc_{s+K-1-k} through tap k */
        v8f acc = V8(0.0f), xs = v8_load(xb + s * ldx + 8 * j, c.nv[j]);
        for (int64_t k = 0; k < K; k++) {
          int64_t t = s + K - 1 - k;
          if (t >= T) continue;
          v8f d = v8_load(dub + t * E + 8 * j, c.nv[j]);
          acc += c.w[k][j] * d;
          dwv[k][j] += d * xs;
        }
        dbv[j] += v8_load(dub + s * E + 8 * j, c.nv[j]);
        v8_store(dxb + s * ldx + 8 * j, acc, c.nv[j]);
      }
    }
    float *part = scratch + (c.b * E + c.e0) * (K + 1);
    for (int j = 0; j < c.nsub; j++)
      for (int i = 0; i < c.nv[j]; i++) {
        for (int64_t k = 0; k < K; k++) part[(8 * j + i) * (K + 1) + k] = dwv[k][j][i];
        part[(8 * j + i) * (K + 1) + K] = dbv[j][i];
      }
  }
  /* fixed-order sum over batch rows */
#pragma omp parallel for schedule(static) if (B * E * K >= 32768)
  for (int64_t e = 0; e < E; e++) {
    for (int64_t k = 0; k <= K; k++) {
      float s = 0;
      for (int64_t bi = 0; bi < B; bi++) s += scratch[(bi * E + e) * (K + 1) + k];
      if (k < K) dw[e * K + k] += s;
      else db[e] += s;
    }
  }
  return ICL_OK;
}
