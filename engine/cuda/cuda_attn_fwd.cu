/* Causal attention forward on the GPU, the mirror of cpu_attn.c's attn_fwd:
 * S = scale q'k'^T + bias (j > i masked), P = softmax(S), out = P v, with q'
 * and k' rotated by the caller's cos/sin tables while they are loaded.
 *
 * One block per (query tile of 64 rows, batch row, head); it walks the key
 * tiles 0..its own (causal), keeping q in shared memory and a 4-row x
 * HDP/16-column slice of the output in registers per thread (cuda_attn.cuh).
 * Two modes:
 *   online   (inference without capture): one pass over the key tiles with
 *            the running row max and normaliser (flash-style); nothing of
 *            size T x T exists, so B = 64, T = 816 needs no workspace at all.
 *   two-pass (training, or a capture request): pass 1 computes the exact row
 *            max and normaliser, pass 2 recomputes the logits and writes
 *            P = exp(S - max) / sum, the same formula as the CPU, into P
 *            (rows j <= i only, as the CPU) and/or the capture buffer, and
 *            accumulates out = P v. Training also writes the rotated q, k, v.
 * An inference forward that captures one query row (the analyses) runs the
 * online kernel on every other query tile and the two-pass kernel on that
 * row's tile only (two launches; `tile` picks or skips it).
 * Blocks are ordered heaviest query tile first, then head-major, so that
 * the bias rows of a head are read from L2 by all batch rows in flight. */
#include <math.h>

#include "cuda_attn.cuh"

struct fwd_args {
  float *out;
  const float *qkv, *cs, *sn, *bias;
  float scale;
  float *q, *k, *v, *P, *cap;
  int cap_row; /* -1: every row ([B, H, T, T]); else only this query row ([B, H, 1, T]) */
  int64_t B, T, H, D;
  int hd, nqt;
  int only; /* >= 0: the grid is B*H blocks, all on this query tile */
  int skip; /* >= 0: the blocks of this query tile return at once */
};

enum { FWD_ONLINE = 0, FWD_TWO_PASS = 1 };

/* scale, bias and the causal mask on a micro-tile (rows i0.., keys j0..);
 * masked entries (j > i, or j >= T) become -inf. The bias is read only where
 * it is defined (j <= i < T): a callback may leave garbage above the diagonal. */
__device__ __forceinline__ void logits(float (&s)[4][4], int64_t i0, int64_t j0, int64_t T, float scale,
                                       const float *bias) {
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t i = i0 + r, jj = j0 + j;
      float x = -INFINITY;
      if (jj <= i && jj < T) x = bias && i < T ? fmaf(s[r][j], scale, bias[i * T + jj]) : s[r][j] * scale;
      s[r][j] = x;
    }
}

template <int HDP, int MODE> __global__ void __launch_bounds__(AT_THREADS, AT_MINB(HDP)) k_attn_fwd(fwd_args a) {
  constexpr int CPT = HDP / 16;
  ICL_DYN_SMEM(float4, sm4);
  float *Qt = reinterpret_cast<float *>(sm4), *Kt = Qt + HDP * AT_LD, *Vs = Kt + HDP * AT_LD,
        *Ps = Vs + AT_TILE * HDP;
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
  const int64_t BH = a.B * a.H, blk = blockIdx.x;
  const int qt = a.only >= 0 ? a.only : a.nqt - 1 - (int)(blk / BH);
  if (qt == a.skip) return; /* the whole block: no barrier is left waiting */
  const int64_t rest = blk % BH, h = rest / a.B, b = rest % a.B, bh = b * a.H + h;
  const int64_t T = a.T, D3 = 3 * a.D, q0 = (int64_t)qt * AT_TILE, head = bh * T * a.hd;
  const int hd = a.hd;
  const at_rows qsrc = {a.qkv, D3, h * hd}, ksrc = {a.qkv, D3, a.D + h * hd}, vsrc = {a.qkv, D3, 2 * a.D + h * hd};
  const float *bias = a.bias ? a.bias + h * T * T : NULL;
  const int64_t i0 = q0 + ty * 4;

  load_t<HDP>(Qt, qsrc, b, T, q0, hd, a.cs, a.sn, a.q ? a.q + head : NULL);

  float m[4], l[4], inv[4], o[4][CPT];
#pragma unroll
  for (int r = 0; r < 4; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    inv[r] = 1.0f;
#pragma unroll
    for (int c = 0; c < CPT; c++) o[r][c] = 0.0f;
  }

  if (MODE == FWD_TWO_PASS) { /* pass 1: exact row max and normaliser */
    for (int kt = 0; kt <= qt; kt++) {
      __syncthreads();
      load_t<HDP>(Kt, ksrc, b, T, (int64_t)kt * AT_TILE, hd, a.cs, a.sn, NULL);
      __syncthreads();
      float s[4][4];
      tile_dot<HDP>(s, Qt, Kt);
      logits(s, i0, (int64_t)kt * AT_TILE + tx * 4, T, a.scale, bias);
#pragma unroll
      for (int r = 0; r < 4; r++) {
        float mt = at_row_max(fmaxf(fmaxf(s[r][0], s[r][1]), fmaxf(s[r][2], s[r][3])));
        float mn = fmaxf(m[r], mt), acc = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) acc += expf(s[r][j] - mn);
        l[r] = l[r] * expf(m[r] - mn) + acc;
        m[r] = mn;
      }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) inv[r] = 1.0f / at_row_sum(l[r]);
  }

  for (int kt = 0; kt <= qt; kt++) {
    const int64_t k0 = (int64_t)kt * AT_TILE;
    const int diag = kt == qt;
    __syncthreads();
    load_t<HDP>(Kt, ksrc, b, T, k0, hd, a.cs, a.sn, diag && a.k ? a.k + head : NULL);
    load_r<HDP>(Vs, vsrc, b, T, k0, hd, diag && a.v ? a.v + head : NULL);
    __syncthreads();
    float s[4][4];
    tile_dot<HDP>(s, Qt, Kt);
    logits(s, i0, k0 + tx * 4, T, a.scale, bias);
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int64_t i = i0 + r;
      float p[4];
      if (MODE == FWD_ONLINE) {
        float mt = at_row_max(fmaxf(fmaxf(s[r][0], s[r][1]), fmaxf(s[r][2], s[r][3])));
        float mn = fmaxf(m[r], mt), alpha = expf(m[r] - mn), acc = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          p[j] = expf(s[r][j] - mn);
          acc += p[j];
        }
        l[r] = l[r] * alpha + acc;
        m[r] = mn;
#pragma unroll
        for (int c = 0; c < CPT; c++) o[r][c] *= alpha;
      } else {
#pragma unroll
        for (int j = 0; j < 4; j++) p[j] = expf(s[r][j] - m[r]) * inv[r];
        if (i < T) {
          const int64_t jb = k0 + tx * 4;
          float *prow = a.P ? a.P + (bh * T + i) * T : NULL;
          float *crow = NULL;
          if (a.cap && a.cap_row < 0) crow = a.cap + (bh * T + i) * T;
          else if (a.cap && i == a.cap_row) crow = a.cap + bh * T;
#pragma unroll
          for (int j = 0; j < 4; j++) {
            if (prow && jb + j <= i) prow[jb + j] = p[j];
            if (crow && jb + j < T) crow[jb + j] = p[j];
          }
        }
      }
      at_st4(Ps + (ty * 4 + r) * AT_LD + tx * 4, p[0], p[1], p[2], p[3]);
    }
    __syncthreads();
    tile_acc<HDP>(o, Ps, Vs);
  }

  const int64_t D = a.D;
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int64_t i = i0 + r;
    float il = 1.0f;
    if (MODE == FWD_ONLINE) il = at_row_sum(l[r]); /* every thread of the row group takes part */
    if (i >= T) continue;
#pragma unroll
    for (int c = 0; c < CPT; c++) {
      int col = tx * CPT + c;
      if (col < hd) a.out[(b * T + i) * D + h * hd + col] = MODE == FWD_ONLINE ? o[r][c] / il : o[r][c];
    }
  }
  /* a capture holds zeros above the diagonal, past the key tiles walked here */
  if (MODE == FWD_TWO_PASS && a.cap) {
    const int64_t jz = q0 + AT_TILE, w = T - jz;
    if (w > 0 && a.cap_row < 0) {
      for (int64_t it = tid; it < AT_TILE * w; it += AT_THREADS) {
        int64_t i = q0 + it / w;
        if (i < T) a.cap[(bh * T + i) * T + jz + it % w] = 0.0f;
      }
    } else if (w > 0 && a.cap_row >= q0 && a.cap_row < jz) {
      for (int64_t j = jz + tid; j < T; j += AT_THREADS) a.cap[bh * T + j] = 0.0f;
    }
  }
}

template <int HDP, int MODE> static int launch_fwd(icl_ctx *ctx, const fwd_args &a) {
  static int optin = 0;
  const size_t smem = sizeof(float) * (size_t)(2 * HDP * AT_LD + AT_TILE * HDP + AT_TILE * AT_LD);
  ICL_CU(ctx, "attention forward: shared memory", at_smem_optin(k_attn_fwd<HDP, MODE>, smem, &optin));
  const int64_t blocks = (int64_t)(a.only >= 0 ? 1 : a.nqt) * a.B * a.H;
  icl_launch(k_attn_fwd<HDP, MODE>, (unsigned)blocks, AT_THREADS, smem, ctx->cuda->stream, a);
  ICL_CU_LAUNCHED(ctx, "attention forward");
  return ICL_OK;
}

template <int MODE> static int dispatch_fwd(icl_ctx *ctx, const fwd_args &a) {
  switch (at_hdp(a.hd)) {
  case 16: return launch_fwd<16, MODE>(ctx, a);
  case 32: return launch_fwd<32, MODE>(ctx, a);
  case 64: return launch_fwd<64, MODE>(ctx, a);
  default: return launch_fwd<128, MODE>(ctx, a);
  }
}

extern "C" int icl_cuda_attn_fwd(icl_ctx *ctx, icl_attn_shape s, float *out, const float *qkv, const float *cos_t,
                                 const float *sin_t, const float *bias, float scale, float *q, float *k, float *v,
                                 float *P, int keep, const icl_attn_capture *cap, float *scratch, int nthreads) {
  (void)scratch; /* the GPU kernels need no workspace */
  (void)nthreads;
  if (s.B <= 0 || s.T <= 0 || s.H <= 0) return ICL_OK;
  if (s.hd < 1 || s.hd > AT_MAX_HD)
    return icl_errorf(ctx, ICL_ENOTIMPL, "attention (cuda): head_dim %lld not in [1, %d]", (long long)s.hd,
                      AT_MAX_HD);
  if ((cos_t != NULL) != (sin_t != NULL) || (cos_t && (s.hd & 1)))
    return icl_errorf(ctx, ICL_EINVAL, "attention (cuda): rotation needs both tables and an even head_dim");
  if (cap && cap->out && cap->row >= s.T)
    return icl_errorf(ctx, ICL_EINVAL, "attention (cuda): capture row %d not below T = %lld", cap->row, (long long)s.T);
  if (keep && (!q || !k || !v || !P))
    return icl_errorf(ctx, ICL_EINVAL, "attention (cuda): training forward needs q, k, v and P");
  const int64_t nqt = at_ntiles(s.T);
  if (nqt * s.B * s.H > (int64_t)INT32_MAX)
    return icl_errorf(ctx, ICL_ENOTIMPL, "attention (cuda): %lld tiles exceed one launch", (long long)(nqt * s.B * s.H));
  fwd_args a;
  a.out = out;
  a.qkv = qkv;
  a.cs = cos_t;
  a.sn = sin_t;
  a.bias = bias;
  a.scale = scale;
  a.q = keep ? q : NULL;
  a.k = keep ? k : NULL;
  a.v = keep ? v : NULL;
  a.P = keep ? P : NULL;
  a.cap = cap ? cap->out : NULL;
  a.cap_row = cap && cap->row >= 0 ? cap->row : -1;
  a.B = s.B;
  a.T = s.T;
  a.H = s.H;
  a.D = s.H * s.hd;
  a.hd = (int)s.hd;
  a.nqt = (int)nqt;
  a.only = a.skip = -1;
  if (keep || (a.cap && a.cap_row < 0)) return dispatch_fwd<FWD_TWO_PASS>(ctx, a);
  if (!a.cap) return dispatch_fwd<FWD_ONLINE>(ctx, a);
  a.skip = a.cap_row / AT_TILE; /* one captured row: two passes for its tile only */
  int rc = dispatch_fwd<FWD_ONLINE>(ctx, a);
  a.only = a.skip;
  a.skip = -1;
  return rc ? rc : dispatch_fwd<FWD_TWO_PASS>(ctx, a);
}
