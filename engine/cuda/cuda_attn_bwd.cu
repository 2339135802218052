/* Causal attention backward on the GPU, the mirror of cpu_attn.c's attn_bwd:
 * from the kept (rotated) q, k, v and P and the output gradient dO,
 *   dP = dO v^T,  D_i = sum_j P_ij dP_ij,  dS = P (dP - D),
 *   dv = P^T dO,  dk' = scale dS^T q',  dq' = scale dS k',
 * then dq, dk with the rotation undone, into the fused dqkv rows.
 *
 * No atomics: every output element is summed by one thread in a fixed
 * order, so results are the same on every run. Three kernels:
 *   k_bwd_d   per (query tile, b, h): D_i over the row's key tiles. D goes to
 *             the first float of the head's dq slot in dqkv (scratch that
 *             only k_bwd_q overwrites, after reading it).
 *   k_bwd_kv  per (key tile, b, h): walks the query tiles from the diagonal
 *             down, recomputing dP and dS for its key columns; dv and dk
 *             stay in registers. It writes dS (when asked) for its own key
 *             columns, zeros above the diagonal included, so dS may alias P:
 *             each P element is read and then overwritten by the same thread,
 *             and no other block reads it.
 *   k_bwd_q   per (query tile, b, h): dq = scale dS k, reading dS when it was
 *             written, else recomputing it from P, dO, v and D.
 * P is never modified unless dS aliases it (what the CPU contract allows). */
#include "cuda_attn.cuh"

struct bwd_args {
  float *dqkv, *dS;
  const float *dout, *cs, *sn, *q, *k, *v, *P;
  float scale;
  int64_t B, T, H, D;
  int hd, nt;
};

/* block -> (tile, b, h); tiles in the given order, head-major within a tile */
struct at_blk {
  int tile;
  int64_t b, h, bh;
};
__device__ __forceinline__ at_blk blk_of(const bwd_args &a, int heaviest_last_tile) {
  const int64_t BH = a.B * a.H, blk = blockIdx.x, rest = blk % BH;
  at_blk r;
  r.tile = heaviest_last_tile ? a.nt - 1 - (int)(blk / BH) : (int)(blk / BH);
  r.h = rest / a.B;
  r.b = rest % a.B;
  r.bh = r.b * a.H + r.h;
  return r;
}

template <int HDP> __global__ void __launch_bounds__(AT_THREADS, AT_MINB(HDP)) k_bwd_d(bwd_args a) {
  ICL_DYN_SMEM(float4, sm4);
  float *dOt = reinterpret_cast<float *>(sm4), *Vt = dOt + HDP * AT_LD;
  const at_blk z = blk_of(a, 1);
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, hd = a.hd;
  const int64_t T = a.T, q0 = (int64_t)z.tile * AT_TILE, i0 = q0 + ty * 4, head = z.bh * T * hd;
  const at_rows dsrc = {a.dout, a.D, z.h * hd}, vsrc = {a.v + head, hd, 0};
  load_t<HDP>(dOt, dsrc, z.b, T, q0, hd, NULL, NULL, NULL);
  float dacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int kt = 0; kt <= z.tile; kt++) {
    const int64_t j0 = (int64_t)kt * AT_TILE + tx * 4;
    __syncthreads();
    load_t<HDP>(Vt, vsrc, 0, T, (int64_t)kt * AT_TILE, hd, NULL, NULL, NULL);
    __syncthreads();
    float dp[4][4];
    tile_dot<HDP>(dp, dOt, Vt);
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int64_t i = i0 + r;
      if (i >= T) continue;
      const float *prow = a.P + (z.bh * T + i) * T;
#pragma unroll
      for (int j = 0; j < 4; j++)
        if (j0 + j <= i) dacc[r] = fmaf(prow[j0 + j], dp[r][j], dacc[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < 4; r++) {
    float d = at_row_sum(dacc[r]);
    if (tx == 0 && i0 + r < T) a.dqkv[(z.b * T + i0 + r) * 3 * a.D + z.h * hd] = d;
  }
}

template <int HDP> __global__ void __launch_bounds__(AT_THREADS, AT_MINB(HDP)) k_bwd_kv(bwd_args a) {
  constexpr int CPT = HDP / 16;
  ICL_DYN_SMEM(float4, sm4);
  float *Vt = reinterpret_cast<float *>(sm4), *dOt = Vt + HDP * AT_LD, *dOs = dOt + HDP * AT_LD,
        *Qs = dOs + AT_TILE * HDP, *PTs = Qs + AT_TILE * HDP, *dSTs = PTs + AT_TILE * AT_LD,
        *Ds = dSTs + AT_TILE * AT_LD;
  const at_blk z = blk_of(a, 0);
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, hd = a.hd;
  const int64_t T = a.T, D3 = 3 * a.D, k0 = (int64_t)z.tile * AT_TILE, j0 = k0 + ty * 4, head = z.bh * T * hd;
  const at_rows dsrc = {a.dout, a.D, z.h * hd}, qsrc = {a.q + head, hd, 0}, vsrc = {a.v + head, hd, 0};
  const float *Pb = a.P + z.bh * T * T;
  float *dSb = a.dS ? a.dS + z.bh * T * T : NULL;
  load_t<HDP>(Vt, vsrc, 0, T, k0, hd, NULL, NULL, NULL);
  if (a.dS) { /* this block's key columns in the query tiles above the diagonal: zeros */
    const int64_t w = T - k0 < AT_TILE ? T - k0 : AT_TILE;
    for (int64_t it = tid; it < k0 * w; it += AT_THREADS) a.dS[(z.bh * T + it / w) * T + k0 + it % w] = 0.0f;
  }
  float dv[4][CPT], dk[4][CPT];
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int c = 0; c < CPT; c++) dv[r][c] = dk[r][c] = 0.0f;
  for (int qt = z.tile; qt < a.nt; qt++) {
    const int64_t q0 = (int64_t)qt * AT_TILE, i0 = q0 + tx * 4;
    __syncthreads();
    load_t<HDP>(dOt, dsrc, z.b, T, q0, hd, NULL, NULL, NULL);
    load_r<HDP>(dOs, dsrc, z.b, T, q0, hd, NULL);
    load_r<HDP>(Qs, qsrc, 0, T, q0, hd, NULL);
    if (tid < AT_TILE) Ds[tid] = q0 + tid < T ? a.dqkv[(z.b * T + q0 + tid) * D3 + z.h * hd] : 0.0f;
    __syncthreads();
    float dpT[4][4]; /* dpT[r][c] = dP[i = i0 + c][j = j0 + r] */
    tile_dot<HDP>(dpT, Vt, dOt);
    const int Ti = (int)T, ib = (int)i0;
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int j = (int)j0 + r;
      float pv[4], dsv[4];
#pragma unroll
      for (int c = 0; c < 4; c++) {
        const int i = ib + c;
        const size_t at = (size_t)i * Ti + j;
        float p = 0.0f, ds = 0.0f;
        if (j <= i && i < Ti) {
          p = Pb[at];
          ds = p * (dpT[r][c] - Ds[tx * 4 + c]);
        }
        if (dSb && i < Ti && j < Ti) dSb[at] = ds; /* after the read: dS may alias P */
        pv[c] = p;
        dsv[c] = ds;
      }
      at_st4(PTs + (ty * 4 + r) * AT_LD + tx * 4, pv[0], pv[1], pv[2], pv[3]);
      at_st4(dSTs + (ty * 4 + r) * AT_LD + tx * 4, dsv[0], dsv[1], dsv[2], dsv[3]);
    }
    __syncthreads();
    tile_acc<HDP>(dv, PTs, dOs);
    tile_acc<HDP>(dk, dSTs, Qs);
  }
  const int64_t D = a.D;
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int64_t j = j0 + r;
#pragma unroll
    for (int c = 0; c < CPT; c++) {
      const int col = tx * CPT + c;
      if (j < T && col < hd) a.dqkv[(z.b * T + j) * D3 + 2 * D + z.h * hd + col] = dv[r][c];
    }
  }
  __syncthreads(); /* Qs becomes the dk tile */
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int c = 0; c < CPT; c++) Qs[(ty * 4 + r) * HDP + tx * CPT + c] = dk[r][c] * a.scale;
  __syncthreads();
  store_rot<HDP>(Qs, a.dqkv, D3, D + z.h * hd, z.b, T, k0, hd, a.cs, a.sn);
}

template <int HDP, int RECOMP> __global__ void __launch_bounds__(AT_THREADS, AT_MINB(HDP)) k_bwd_q(bwd_args a) {
  constexpr int CPT = HDP / 16;
  ICL_DYN_SMEM(float4, sm4);
  float *Ks = reinterpret_cast<float *>(sm4), *dSs = Ks + AT_TILE * HDP, *dOt = dSs + AT_TILE * AT_LD,
        *Vt = dOt + HDP * AT_LD, *Ds = Vt + HDP * AT_LD;
  const at_blk z = blk_of(a, 1);
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, hd = a.hd;
  const int64_t T = a.T, D3 = 3 * a.D, q0 = (int64_t)z.tile * AT_TILE, i0 = q0 + ty * 4, head = z.bh * T * hd;
  const at_rows ksrc = {a.k + head, hd, 0}, vsrc = {a.v + head, hd, 0}, dsrc = {a.dout, a.D, z.h * hd};
  if constexpr (RECOMP) {
    load_t<HDP>(dOt, dsrc, z.b, T, q0, hd, NULL, NULL, NULL);
    if (tid < AT_TILE) Ds[tid] = q0 + tid < T ? a.dqkv[(z.b * T + q0 + tid) * D3 + z.h * hd] : 0.0f;
  }
  float dq[4][CPT];
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int c = 0; c < CPT; c++) dq[r][c] = 0.0f;
  for (int kt = 0; kt <= z.tile; kt++) {
    const int64_t k0 = (int64_t)kt * AT_TILE, j0 = k0 + tx * 4;
    __syncthreads();
    load_r<HDP>(Ks, ksrc, 0, T, k0, hd, NULL);
    if constexpr (RECOMP) load_t<HDP>(Vt, vsrc, 0, T, k0, hd, NULL, NULL, NULL);
    __syncthreads();
    float dp[4][4] = {};
    if constexpr (RECOMP) tile_dot<HDP>(dp, dOt, Vt);
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int64_t i = i0 + r;
      float dsv[4];
#pragma unroll
      for (int c = 0; c < 4; c++) {
        const int64_t j = j0 + c;
        float ds = 0.0f;
        if (j <= i && i < T) {
          const int64_t at = (z.bh * T + i) * T + j;
          if constexpr (RECOMP) ds = a.P[at] * (dp[r][c] - Ds[ty * 4 + r]);
          else ds = a.dS[at];
        }
        dsv[c] = ds;
      }
      at_st4(dSs + (ty * 4 + r) * AT_LD + tx * 4, dsv[0], dsv[1], dsv[2], dsv[3]);
    }
    __syncthreads();
    tile_acc<HDP>(dq, dSs, Ks);
  }
  __syncthreads(); /* Ks becomes the dq tile; every D of this tile was read long ago */
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int c = 0; c < CPT; c++) Ks[(ty * 4 + r) * HDP + tx * CPT + c] = dq[r][c] * a.scale;
  __syncthreads();
  store_rot<HDP>(Ks, a.dqkv, D3, z.h * hd, z.b, T, q0, hd, a.cs, a.sn);
}

template <int HDP> static int launch_bwd(icl_ctx *ctx, const bwd_args &a) {
  static int optin_d = 0, optin_kv = 0, optin_q0 = 0, optin_q1 = 0;
  const size_t f = sizeof(float);
  const size_t smem_d = f * 2 * HDP * AT_LD;
  const size_t smem_kv = f * (2 * HDP * AT_LD + 2 * AT_TILE * HDP + 2 * AT_TILE * AT_LD + AT_TILE);
  const size_t smem_q0 = f * (AT_TILE * HDP + AT_TILE * AT_LD);
  const size_t smem_q1 = smem_q0 + f * (2 * HDP * AT_LD + AT_TILE);
  const unsigned blocks = (unsigned)((int64_t)a.nt * a.B * a.H);
  cudaStream_t st = ctx->cuda->stream;
  ICL_CU(ctx, "attention backward: shared memory", at_smem_optin(k_bwd_d<HDP>, smem_d, &optin_d));
  ICL_CU(ctx, "attention backward: shared memory", at_smem_optin(k_bwd_kv<HDP>, smem_kv, &optin_kv));
  icl_launch(k_bwd_d<HDP>, blocks, AT_THREADS, smem_d, st, a);
  ICL_CU_LAUNCHED(ctx, "attention backward (D)");
  icl_launch(k_bwd_kv<HDP>, blocks, AT_THREADS, smem_kv, st, a);
  ICL_CU_LAUNCHED(ctx, "attention backward (dk, dv)");
  if (a.dS) {
    ICL_CU(ctx, "attention backward: shared memory", at_smem_optin(k_bwd_q<HDP, 0>, smem_q0, &optin_q0));
    icl_launch(k_bwd_q<HDP, 0>, blocks, AT_THREADS, smem_q0, st, a);
  } else {
    ICL_CU(ctx, "attention backward: shared memory", at_smem_optin(k_bwd_q<HDP, 1>, smem_q1, &optin_q1));
    icl_launch(k_bwd_q<HDP, 1>, blocks, AT_THREADS, smem_q1, st, a);
  }
  ICL_CU_LAUNCHED(ctx, "attention backward (dq)");
  return ICL_OK;
}

extern "C" int icl_cuda_attn_bwd(icl_ctx *ctx, icl_attn_shape s, float *dqkv, const float *dout, const float *cos_t,
                                 const float *sin_t, float scale, const float *q, const float *k, const float *v,
                                 float *P, float *dS, float *scratch, int nthreads) {
  (void)scratch;
  (void)nthreads;
  if (s.B <= 0 || s.T <= 0 || s.H <= 0) return ICL_OK;
  if (s.hd < 1 || s.hd > AT_MAX_HD)
    return icl_errorf(ctx, ICL_ENOTIMPL, "attention backward (cuda): head_dim %lld not in [1, %d]", (long long)s.hd,
                      AT_MAX_HD);
  if ((cos_t != NULL) != (sin_t != NULL) || (cos_t && (s.hd & 1)))
    return icl_errorf(ctx, ICL_EINVAL, "attention backward (cuda): rotation needs both tables and an even head_dim");
  const int64_t nt = at_ntiles(s.T);
  if (nt * s.B * s.H > (int64_t)INT32_MAX)
    return icl_errorf(ctx, ICL_ENOTIMPL, "attention backward (cuda): %lld tiles exceed one launch",
                      (long long)(nt * s.B * s.H));
  bwd_args a;
  a.dqkv = dqkv;
  a.dS = dS;
  a.dout = dout;
  a.cs = cos_t;
  a.sn = sin_t;
  a.q = q;
  a.k = k;
  a.v = v;
  a.P = P;
  a.scale = scale;
  a.B = s.B;
  a.T = s.T;
  a.H = s.H;
  a.D = s.H * s.hd;
  a.hd = (int)s.hd;
  a.nt = (int)nt;
  switch (at_hdp(s.hd)) {
  case 16: return launch_bwd<16>(ctx, a);
  case 32: return launch_bwd<32>(ctx, a);
  case 64: return launch_bwd<64>(ctx, a);
  default: return launch_bwd<128>(ctx, a);
  }
}
