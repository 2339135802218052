/* CPU causal depthwise convolution + SiLU of the Mamba mixer (spec §6.2):
 *   xc_t[e] = b[e] + Σ_k w[e,k] x_{t-K+1+k}[e],  u_t = silu(xc_t),
 * and its backward (§6.5). One task is (batch row, block of 8 channels):
 * the K filter taps sit in vector registers and the time loop streams down
 * the rows. The backward recomputes xc from x instead of storing it (one
 * conv per element, cheaper than B·T·E floats per layer). */
#include "cpu_mamba.h"
#include "mamba_vmath.h"

/* taps of channels e0..e0+nv as K vectors: wv[k][i] = w[(e0+i)*K + k] */
static void load_taps(v8f *wv, const float *w, int64_t e0, int nv, int64_t K) {
  for (int64_t k = 0; k < K; k++) {
    v8f v = V8(0.0f);
    for (int i = 0; i < nv; i++) v[i] = w[(e0 + i) * K + k];
    wv[k] = v;
  }
}

/* xc at time t of row block x (stride ldx) */
V8_FN v8f conv_at(const float *x, int64_t ldx, int64_t t, const v8f *wv, v8f bias, int64_t K, int nv) {
  v8f acc = bias;
  for (int64_t k = 0; k < K; k++) {
    int64_t ts = t - K + 1 + k;
    if (ts >= 0) acc += wv[k] * v8_load(x + ts * ldx, nv);
  }
  return acc;
}

int icl_cpu_mamba_conv_fwd(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w, const float *b,
                           int64_t B, int64_t T, int64_t E, int64_t K) {
  if (K > ICL_MAMBA_MAX_K) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba conv: kernel %lld > %d", (long long)K,
                                                 ICL_MAMBA_MAX_K);
  int64_t nblk = (E + 7) / 8;
#pragma omp parallel for schedule(static) if (B * T * E >= 32768)
  for (int64_t task = 0; task < B * nblk; task++) {
    int64_t bi = task / nblk, e0 = (task % nblk) * 8;
    int nv = (int)(E - e0 < 8 ? E - e0 : 8);
    v8f wv[ICL_MAMBA_MAX_K];
    load_taps(wv, w, e0, nv, K);
    v8f bias = v8_load(b + e0, nv);
    const float *xb = x + bi * T * ldx + e0;
    float *ub = u + bi * T * E + e0;
    for (int64_t t = 0; t < T; t++) {
      v8f xc = conv_at(xb, ldx, t, wv, bias, K, nv);
      v8_store(ub + t * E, xc * v8_sigmoid(xc), nv);
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
  int64_t nblk = (E + 7) / 8;
  /* scratch[b][e][k] (k < K: dw, k = K: db): one row of partial sums per batch row */
#pragma omp parallel for schedule(static) if (B * T * E >= 32768)
  for (int64_t task = 0; task < B * nblk; task++) {
    int64_t bi = task / nblk, e0 = (task % nblk) * 8;
    int nv = (int)(E - e0 < 8 ? E - e0 : 8);
    v8f wv[ICL_MAMBA_MAX_K], dwv[ICL_MAMBA_MAX_K];
    load_taps(wv, w, e0, nv, K);
    v8f bias = v8_load(b + e0, nv), dbv = V8(0.0f);
    const float *xb = x + bi * T * ldx + e0;
    float *dub = du + bi * T * E + e0, *dxb = dx + bi * T * ldx + e0;
    /* dxc = du * silu'(xc), in place over du */
    for (int64_t t = 0; t < T; t++) {
      v8f xc = conv_at(xb, ldx, t, wv, bias, K, nv), sg = v8_sigmoid(xc);
      v8f d = v8_load(dub + t * E, nv) * (sg * (V8(1.0f) + xc * (V8(1.0f) - sg)));
      v8_store(dub + t * E, d, nv);
    }
    for (int64_t k = 0; k < K; k++) dwv[k] = V8(0.0f);
    for (int64_t s = 0; s < T; s++) {
      /* x_s feeds xc_{s+K-1-k} through tap k */
      v8f acc = V8(0.0f), xs = v8_load(xb + s * ldx, nv);
      for (int64_t k = 0; k < K; k++) {
        int64_t t = s + K - 1 - k;
        if (t >= T) continue;
        v8f d = v8_load(dub + t * E, nv);
        acc += wv[k] * d;
        dwv[k] += d * xs;
      }
      dbv += v8_load(dub + s * E, nv);
      v8_store(dxb + s * ldx, acc, nv);
    }
    float *part = scratch + (bi * E + e0) * (K + 1);
    for (int i = 0; i < nv; i++) {
      for (int64_t k = 0; k < K; k++) part[i * (K + 1) + k] = dwv[k][i];
      part[i * (K + 1) + K] = dbv[i];
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
