/* Selective scan backward on the GPU, the mirror of cpu_mamba_scan.c's
 * scan_bwd (spec §6.5), with the same checkpointing: the forward kept the
 * state every Tc steps; the chunks are walked from last to first, and in
 * each the states are recomputed from the stored start state, then the
 * adjoint recurrence
 *   λ_t = C_t g_y,t + exp(Δ_{t+1} A) λ_{t+1}
 * runs backwards, carrying μ = exp(Δ A) λ into the previous chunk.
 *
 * Same block layout as the forward (cuda_mamba_scan.cuh). A chunk is done in
 * sub-chunks of TS steps whose states sit in shared memory (TS x 128 floats
 * per state slot); when Tc > TS, one extra forward pass over the chunk
 * first leaves the sub-chunk start states in the scratch (each thread
 * reads back only what it wrote). Per sub-chunk:
 *   stage   Δ, σ(δraw), Δu, u and the B, C rows (sc_stage)
 *   1       recompute the states (history in shared) and y (lane tree)
 *   1b      out = y silu(z), dz, g_y = g_o silu(z) (coalesced over channels)
 *   2       adjoint steps: per lane λ, a = exp(ΔA) s_{t-1}, dA += λ Δ a;
 *           lane trees for Σ_n λ B and Σ_n λ (B u + A a); dB, dC summed over
 *           the warp's channels by shuffles, then over the block's warps in
 *           shared memory every SC_RS steps into the group partials
 *   3       du, ddt rows out (coalesced)
 * Determinism: every sum has a fixed order, no atomics. Per (b, e, n) the
 * dA partial and per (b, e) the dD partial accumulate in reverse time order
 * exactly as the CPU; dB/dC partials are summed over groups, and dA/dD over
 * batch rows, in order by the reduction kernels (cuda_mamba_scan.cu). */
#include "cuda_mamba_scan.cuh"

template <int NL, int NPL> struct sc_bwd_smem {
  static constexpr int CH = SC_THREADS / NL, NLP = NL * NPL, TS = 64 / NPL;
  /* hist [TS][NPL][128], 8 per-step channel arrays [TS][CH], B and C [TS][NLP], red [RS][NW][2][NLP] */
  static constexpr size_t floats = (size_t)TS * NPL * SC_THREADS + 8 * TS * CH + 2 * TS * NLP + SC_RS * SC_NW * 2 * NLP;
};

template <int NL, int NPL> __global__ void __launch_bounds__(SC_THREADS, 1) k_scan_bwd(scan_p p) {
  constexpr int CH = SC_THREADS / NL, NLP = NL * NPL, TS = 64 / NPL;
  ICL_DYN_SMEM(float4, sm4);
  float *hist = reinterpret_cast<float *>(sm4);
  float *s_delta = hist + TS * NPL * SC_THREADS, *s_du = s_delta + TS * CH, *s_u = s_du + TS * CH,
        *s_sig = s_u + TS * CH, *s_gy = s_sig + TS * CH, *s_y = s_gy + TS * CH, *s_duo = s_y + TS * CH,
        *s_ddto = s_duo + TS * CH, *s_B = s_ddto + TS * CH, *s_C = s_B + TS * NLP, *red = s_C + TS * NLP;
  const int tid = threadIdx.x, ch = tid / NL, lane = tid % NL, w = tid >> 5, wl = tid & 31;
  const int64_t b = blockIdx.y, g = blockIdx.x, e0 = g * CH, e = e0 + ch, E = p.E, N = p.N, T = p.T;
  const bool ev = e < E;
  float A[NPL], A2[NPL], mu[NPL], dA_acc[NPL];
  bool nv[NPL];
  sc_lanes<NL, NPL>(p, e, lane, A, A2, nv);
#pragma unroll
  for (int q = 0; q < NPL; q++) mu[q] = dA_acc[q] = 0.0f;
  const float Dv = ev ? p.D[e] : 0.0f;
  float dd_acc = 0.0f; /* Σ g_y u, kept by lane 0 of the channel */
  const int64_t Tc = p.Tc < T ? p.Tc : T, nchunk = (T + Tc - 1) / Tc, nck = p.nck;
  float *sub = p.sub + (b * p.ng + g) * p.slots * (NPL * SC_THREADS);

  for (int64_t c = nchunk - 1; c >= 0; c--) {
    const int64_t tc0 = c * Tc, lenc = T - tc0 < Tc ? T - tc0 : Tc;
    const int nsub = (int)((lenc + TS - 1) / TS);
    float s0[NPL];
#pragma unroll
    for (int q = 0; q < NPL; q++)
      s0[q] = c > 0 && nv[q] ? p.ckpt[((b * nck + c - 1) * N + q * NL + lane) * E + e] : 0.0f;
    if (nsub > 1) { /* the start states of sub-chunks 1 .. nsub-1 */
      float s[NPL];
#pragma unroll
      for (int q = 0; q < NPL; q++) s[q] = s0[q];
      for (int k = 0; k < nsub - 1; k++) {
        sc_stage<CH, NLP>(p, b, e0, tc0 + (int64_t)k * TS, TS, TS, s_delta, s_du, s_u, NULL, s_B, s_C);
        __syncthreads();
        for (int i = 0; i < TS; i++) {
          const float delta = s_delta[i * CH + ch], du = s_du[i * CH + ch];
#pragma unroll
          for (int q = 0; q < NPL; q++) {
            const float d = cm_exp2(__fmul_rn(delta, A2[q]));
            s[q] = __fadd_rn(__fmul_rn(d, s[q]), __fmul_rn(du, s_B[i * NLP + q * NL + lane]));
          }
        }
#pragma unroll
        for (int q = 0; q < NPL; q++) sub[(int64_t)k * NPL * SC_THREADS + q * SC_THREADS + tid] = s[q];
        __syncthreads();
      }
    }
    for (int k = nsub - 1; k >= 0; k--) {
      const int64_t t0 = tc0 + (int64_t)k * TS;
      const int len = (int)(tc0 + lenc - t0 < TS ? tc0 + lenc - t0 : TS);
      float sp0[NPL], s[NPL];
#pragma unroll
      for (int q = 0; q < NPL; q++) {
        sp0[q] = k == 0 ? s0[q] : sub[(int64_t)(k - 1) * NPL * SC_THREADS + q * SC_THREADS + tid];
        s[q] = sp0[q];
      }
      sc_stage<CH, NLP>(p, b, e0, t0, len, TS, s_delta, s_du, s_u, s_sig, s_B, s_C);
      __syncthreads();
      /* 1: states and y */
      for (int i = 0; i < len; i++) {
        const float delta = s_delta[i * CH + ch], du = s_du[i * CH + ch];
        float yp = 0.0f;
#pragma unroll
        for (int q = 0; q < NPL; q++) {
          const int n = q * NL + lane;
          const float d = cm_exp2(__fmul_rn(delta, A2[q]));
          s[q] = __fadd_rn(__fmul_rn(d, s[q]), __fmul_rn(du, s_B[i * NLP + n]));
          hist[(i * NPL + q) * SC_THREADS + tid] = s[q];
          const float cs = __fmul_rn(s_C[i * NLP + n], s[q]);
          yp = q == 0 ? cs : __fadd_rn(yp, cs);
        }
        const float y = sc_lane_sum<NL>(yp);
        if (lane == 0) s_y[i * CH + ch] = y;
      }
      __syncthreads();
      /* 1b: out, dz, g_y */
      for (int it = tid; it < TS * CH; it += SC_THREADS) {
        const int i = it / CH, cc = it - i * CH;
        const int64_t ee = e0 + cc, row = b * T + t0 + i;
        float gy = 0.0f;
        if (i < len && ee < E) {
          const float y = __fadd_rn(s_y[it], __fmul_rn(p.D[ee], s_u[it]));
          const float z = p.z[row * p.ld_z + ee], sz = icl_nn_v8_sigmoid(z), silu = __fmul_rn(z, sz);
          const float go = p.dout[row * E + ee];
          p.out[row * E + ee] = __fmul_rn(y, silu);
          p.dz[row * p.ld_z + ee] = __fmul_rn(__fmul_rn(go, y), cm_dsilu(z, sz));
          gy = __fmul_rn(go, silu);
        }
        s_gy[it] = gy;
      }
      __syncthreads();
      /* 2: the adjoint, backwards through the sub-chunk */
      for (int i = len - 1; i >= 0; i--) {
        const float gy = s_gy[i * CH + ch], delta = s_delta[i * CH + ch], u = s_u[i * CH + ch];
        const float du_dt = __fmul_rn(delta, u);
        float lbp = 0.0f, ddp = 0.0f, dbc[NPL], dcc[NPL];
#pragma unroll
        for (int q = 0; q < NPL; q++) {
          const int n = q * NL + lane;
          const float bn = s_B[i * NLP + n], cn = s_C[i * NLP + n];
          const float sc = hist[(i * NPL + q) * SC_THREADS + tid];
          const float sp = i > 0 ? hist[((i - 1) * NPL + q) * SC_THREADS + tid] : sp0[q];
          const float d = cm_exp2(__fmul_rn(delta, A2[q]));
          const float lam = __fadd_rn(__fmul_rn(cn, gy), mu[q]);
          const float prev = __fmul_rn(d, sp); /* exp(Δ_t A) s_{t-1} */
          dbc[q] = nv[q] ? __fmul_rn(lam, du_dt) : 0.0f;
          dcc[q] = nv[q] ? __fmul_rn(gy, sc) : 0.0f;
          const float lb = __fmul_rn(lam, bn);
          const float dd = __fmul_rn(lam, __fadd_rn(__fmul_rn(bn, u), __fmul_rn(A[q], prev)));
          lbp = q == 0 ? lb : __fadd_rn(lbp, lb);
          ddp = q == 0 ? dd : __fadd_rn(ddp, dd);
          dA_acc[q] = __fadd_rn(dA_acc[q], __fmul_rn(__fmul_rn(lam, delta), prev));
          mu[q] = __fmul_rn(d, lam);
        }
        const float lb = sc_lane_sum<NL>(lbp), dd = sc_lane_sum<NL>(ddp);
        /* dB, dC over the warp's channels (same lane index = same state) */
#pragma unroll
        for (int q = 0; q < NPL; q++)
#pragma unroll
          for (int off = NL; off < 32; off <<= 1) {
            dbc[q] = __fadd_rn(dbc[q], __shfl_xor_sync(0xffffffffu, dbc[q], off));
            dcc[q] = __fadd_rn(dcc[q], __shfl_xor_sync(0xffffffffu, dcc[q], off));
          }
        if (wl < NL) {
          float *rs = red + ((i % SC_RS) * SC_NW + w) * 2 * NLP;
#pragma unroll
          for (int q = 0; q < NPL; q++) {
            rs[q * NL + lane] = dbc[q];
            rs[NLP + q * NL + lane] = dcc[q];
          }
        }
        if (lane == 0) {
          s_duo[i * CH + ch] = __fadd_rn(__fmul_rn(Dv, gy), __fmul_rn(delta, lb));
          s_ddto[i * CH + ch] = __fmul_rn(dd, s_sig[i * CH + ch]);
          dd_acc = __fadd_rn(dd_acc, __fmul_rn(gy, u));
        }
        if (i % SC_RS == 0) { /* steps i .. i+cnt-1: warps summed in order into the group partial */
          __syncthreads();
          const int cnt = len - i < SC_RS ? len - i : SC_RS, N2 = (int)(2 * N);
          for (int it = tid; it < cnt * N2; it += SC_THREADS) {
            const int ii = it / N2, n2 = it - ii * N2, bc = n2 >= N, n = bc ? n2 - (int)N : n2;
            float sum = 0.0f;
#pragma unroll
            for (int ww = 0; ww < SC_NW; ww++) sum = __fadd_rn(sum, red[(ii * SC_NW + ww) * 2 * NLP + bc * NLP + n]);
            p.part[((g * p.B + b) * T + t0 + i + ii) * N2 + n2] = sum;
          }
          __syncthreads();
        }
      }
      /* 3: du, ddt */
      for (int it = tid; it < len * CH; it += SC_THREADS) {
        const int i = it / CH, cc = it - i * CH;
        const int64_t ee = e0 + cc, row = b * T + t0 + i;
        if (ee < E) {
          p.du[row * E + ee] = s_duo[it];
          p.ddt[row * E + ee] = s_ddto[it];
        }
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int q = 0; q < NPL; q++)
    if (nv[q]) p.dA_part[(b * E + e) * N + q * NL + lane] = dA_acc[q];
  if (lane == 0 && ev) p.dD_part[b * E + e] = dd_acc;
}

template <int NL, int NPL> static int launch_bwd(icl_ctx *ctx, const scan_p &p) {
  static int optin = 0;
  const size_t smem = sizeof(float) * sc_bwd_smem<NL, NPL>::floats;
  if (!optin && smem > 48 * 1024) {
    ICL_CU(ctx, "mamba scan backward: shared memory",
           cudaFuncSetAttribute(k_scan_bwd<NL, NPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    optin = 1;
  }
  dim3 grid((unsigned)p.ng, (unsigned)p.B);
  icl_launch(k_scan_bwd<NL, NPL>, grid, SC_THREADS, smem, ctx->cuda->stream, p);
  ICL_CU_LAUNCHED(ctx, "mamba scan backward");
  return ICL_OK;
}

extern "C" int64_t icl_cuda_mamba_scan_bwd_scratch(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc) {
  if (N < 1 || Tc < 1) return 0;
  return sc_plan(B, T, E, N, Tc).total;
}

extern "C" int icl_cuda_mamba_scan_bwd(icl_ctx *ctx, const icl_mamba_scan *s) {
  if (s->N > ICL_MAMBA_MAX_N)
    return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan: state size %lld > %d", (long long)s->N, ICL_MAMBA_MAX_N);
  if (s->B <= 0 || s->T <= 0 || s->E <= 0 || s->N <= 0) return ICL_OK;
  if (s->Tc < 1) return icl_errorf(ctx, ICL_EINVAL, "mamba scan: chunk %lld < 1", (long long)s->Tc);
  if (s->B > 65535) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan (cuda): batch %lld > 65535", (long long)s->B);
  const sc_layout L = sc_plan(s->B, s->T, s->E, s->N, s->Tc);
  if (!s->scratch || s->scratch_floats < L.total)
    return icl_errorf(ctx, ICL_EINVAL, "mamba scan: backward scratch too small (%lld floats, %lld needed)",
                      (long long)s->scratch_floats, (long long)L.total);
  scan_p p = sc_args(s);
  p.part = s->scratch + L.part;
  p.dA_part = s->scratch + L.dA;
  p.dD_part = s->scratch + L.dD;
  p.sub = s->scratch + L.sub;
  p.ng = L.ng;
  p.slots = L.slots;
  p.nck = icl_mamba_n_ckpt(s->T, s->Tc < s->T ? s->Tc : s->T); /* as the forward kept them */
  int NL, NPL, rc;
  sc_geo(s->N, &NL, &NPL);
  if (NPL == 2) rc = launch_bwd<32, 2>(ctx, p);
  else if (NL == 32) rc = launch_bwd<32, 1>(ctx, p);
  else if (NL == 16) rc = launch_bwd<16, 1>(ctx, p);
  else rc = launch_bwd<8, 1>(ctx, p);
  return rc ? rc : sc_reduce(ctx, p, s);
}
