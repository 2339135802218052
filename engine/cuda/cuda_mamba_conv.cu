/* Mamba's causal depthwise conv + SiLU on the GPU, the mirror of
 * cpu_mamba_conv.c (spec §6.2, §6.5), bit for bit: every output element is
 * the CPU's sequence of float operations (cuda_mamba.cuh), and the weight
 * gradients are summed over time and then over batch rows in the CPU's order.
 *   forward  one thread per (b, t, e): u = silu(b + sum_k w_k x_{t-K+1+k})
 *   backward 1. one thread per (b, t, e): du <- du * silu'(xc) (du is scratch,
 *               as on the CPU; xc recomputed from x)
 *            2. one thread per (b, e) walks time: dx_s = sum_k w_k dxc_{s+K-1-k},
 *               and the (b, e) partials of dw, db (K + 1 registers)
 *            3. one thread per (e, k): partials summed over b in order, += into dw, db.
 * Accesses are coalesced across consecutive channels e. */
#include "cuda_mamba.cuh"

struct conv_args {
  const float *x, *w, *b;
  int64_t ldx, B, T, E, K;
};

/* xc = b + sum_k w_k x_{t-K+1+k} (taps before t = 0 skipped), in tap order */
__device__ __forceinline__ float conv_at(const conv_args &a, int64_t bb, int64_t t, int64_t e) {
  float acc = a.b[e];
  for (int64_t k = 0; k < a.K; k++) {
    int64_t ts = t - a.K + 1 + k;
    if (ts >= 0) acc = __fadd_rn(acc, __fmul_rn(a.w[e * a.K + k], a.x[(bb * a.T + ts) * a.ldx + e]));
  }
  return acc;
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_conv_fwd(conv_args a, float *u) {
  const int64_t n = a.B * a.T * a.E, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    int64_t row = idx / a.E, e = idx - row * a.E, bb = row / a.T, t = row - bb * a.T;
    float xc = conv_at(a, bb, t, e);
    u[idx] = __fmul_rn(xc, icl_nn_v8_sigmoid(xc));
  }
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_conv_dxc(conv_args a, float *du) {
  const int64_t n = a.B * a.T * a.E, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    int64_t row = idx / a.E, e = idx - row * a.E, bb = row / a.T, t = row - bb * a.T;
    float xc = conv_at(a, bb, t, e);
    du[idx] = __fmul_rn(du[idx], cm_dsilu(xc, icl_nn_v8_sigmoid(xc)));
  }
}

/* thread per (b, e); dxc = du after k_conv_dxc */
__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_conv_dx(conv_args a, const float *dxc, float *dx, float *part) {
  const int64_t n = a.B * a.E, step = (int64_t)gridDim.x * blockDim.x, T = a.T, E = a.E, K = a.K;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const int64_t bb = idx / E, e = idx - bb * E;
    float w[ICL_MAMBA_MAX_K], dw[ICL_MAMBA_MAX_K], db = 0.0f;
#pragma unroll
    for (int k = 0; k < ICL_MAMBA_MAX_K; k++) {
      w[k] = k < K ? a.w[e * K + k] : 0.0f;
      dw[k] = 0.0f;
    }
    const float *d = dxc + bb * T * E + e;
    for (int64_t s = 0; s < T; s++) {
      const float xs = a.x[(bb * T + s) * a.ldx + e];
      float acc = 0.0f;
#pragma unroll
      for (int k = 0; k < ICL_MAMBA_MAX_K; k++) {
        const int64_t t = s + K - 1 - k; /* x_s feeds xc_t through tap k */
        if (k < K && t < T) {
          const float dv = d[t * E];
          acc = __fadd_rn(acc, __fmul_rn(w[k], dv));
          dw[k] = __fadd_rn(dw[k], __fmul_rn(dv, xs));
        }
      }
      db = __fadd_rn(db, d[s * E]);
      dx[(bb * T + s) * a.ldx + e] = acc;
    }
    float *p = part + idx * (K + 1);
#pragma unroll
    for (int k = 0; k < ICL_MAMBA_MAX_K; k++)
      if (k < K) p[k] = dw[k];
    p[K] = db;
  }
}

/* thread per (e, k <= K): sum over batch rows in order */
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_conv_wsum(const float *part, float *dw, float *db, int64_t B, int64_t E, int64_t K) {
  const int64_t n = E * (K + 1), step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const int64_t e = idx / (K + 1), k = idx - e * (K + 1);
    float s = 0.0f;
    for (int64_t bb = 0; bb < B; bb++) s = __fadd_rn(s, part[(bb * E + e) * (K + 1) + k]);
    if (k < K) dw[e * K + k] = __fadd_rn(dw[e * K + k], s);
    else db[e] = __fadd_rn(db[e], s);
  }
}

static int check_k(icl_ctx *ctx, int64_t K) {
  if (K > ICL_MAMBA_MAX_K || K < 0)
    return icl_errorf(ctx, ICL_ENOTIMPL, "mamba conv: kernel %lld > %d", (long long)K, ICL_MAMBA_MAX_K);
  return ICL_OK;
}

extern "C" int icl_cuda_mamba_conv_fwd(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w,
                                       const float *b, int64_t B, int64_t T, int64_t E, int64_t K) {
  if (check_k(ctx, K)) return ctx->errcode;
  if (B <= 0 || T <= 0 || E <= 0) return ICL_OK;
  icl_cuda_state *st = ctx->cuda;
  conv_args a = {x, w, b, ldx, B, T, E, K};
  icl_launch(k_conv_fwd, icl_cuda_blocks(st, B * T * E, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, a, u);
  ICL_CU_LAUNCHED(ctx, "mamba conv forward");
  return ICL_OK;
}

extern "C" int64_t icl_cuda_mamba_conv_bwd_scratch(int64_t B, int64_t E, int64_t K) { return B * E * (K + 1); }

extern "C" int icl_cuda_mamba_conv_bwd(icl_ctx *ctx, float *dx, float *dw, float *db, float *du, const float *x,
                                       int64_t ldx, const float *w, const float *b, int64_t B, int64_t T, int64_t E,
                                       int64_t K, float *scratch) {
  if (check_k(ctx, K)) return ctx->errcode;
  if (B <= 0 || T <= 0 || E <= 0) return ICL_OK;
  icl_cuda_state *st = ctx->cuda;
  conv_args a = {x, w, b, ldx, B, T, E, K};
  const int nt = ICL_CUDA_THREADS;
  icl_launch(k_conv_dxc, icl_cuda_blocks(st, B * T * E, nt), nt, 0, st->stream, a, du);
  ICL_CU_LAUNCHED(ctx, "mamba conv backward (dxc)");
  /* (b, e) threads: small blocks so that a few thousand of them still spread over every SM */
  icl_launch(k_conv_dx, (unsigned)((B * E + 63) / 64), 64, 0, st->stream, a, du, dx, scratch);
  ICL_CU_LAUNCHED(ctx, "mamba conv backward (dx)");
  icl_launch(k_conv_wsum, icl_cuda_blocks(st, E * (K + 1), nt), nt, 0, st->stream, scratch, dw, db, B, E, K);
  ICL_CU_LAUNCHED(ctx, "mamba conv backward (dw, db)");
  return ICL_OK;
}
