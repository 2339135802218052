/* Selective scan forward on the GPU (the mirror of cpu_mamba_scan.c's
 * scan_fwd, spec §6.2) and the Mamba kernel table.
 *
 * One block per (group of channels, batch row), one thread per (channel,
 * state) (cuda_mamba_scan.cuh); time runs in steps of TS staged in shared
 * memory. Per step a lane updates its state(s),
 *   s = exp2(Δ A log2 e) s + Δ u B_n        (the CPU's operations, bit for bit)
 * and the channel's lanes sum C_n s_n by a shuffle tree; the gated output
 *   out = (y + D u) silu(z)
 * is then written for the TS steps at once, coalesced over channels. States
 * are checkpointed every Tc steps exactly where the CPU keeps them
 * (ckpt [B, n_ckpt, N, E], s at t = (c+1)Tc - 1), so ckpt matches the CPU to
 * the bit; out differs from the CPU only by the order of the sum over states
 * (the CPU adds n = 0..N-1 in turn). */
#include "cuda_mamba_scan.cuh"

template <int NL, int NPL> __global__ void __launch_bounds__(SC_THREADS) k_scan_fwd(scan_p p) {
  constexpr int CH = SC_THREADS / NL, NLP = NL * NPL, TS = 64 / NPL;
  __shared__ float s_delta[TS * CH], s_du[TS * CH], s_u[TS * CH], s_y[TS * CH];
  __shared__ float s_B[TS * NLP], s_C[TS * NLP];
  const int tid = threadIdx.x, ch = tid / NL, lane = tid % NL;
  const int64_t b = blockIdx.y, e0 = (int64_t)blockIdx.x * CH, e = e0 + ch, E = p.E, N = p.N, T = p.T;
  float A[NPL], A2[NPL], s[NPL];
  bool nv[NPL];
  sc_lanes<NL, NPL>(p, e, lane, A, A2, nv);
#pragma unroll
  for (int q = 0; q < NPL; q++) s[q] = 0.0f;
  for (int64_t t0 = 0; t0 < T; t0 += TS) {
    const int len = (int)(T - t0 < TS ? T - t0 : TS);
    sc_stage<CH, NLP>(p, b, e0, t0, len, TS, s_delta, s_du, s_u, NULL, s_B, s_C);
    __syncthreads();
    for (int i = 0; i < len; i++) {
      const float delta = s_delta[i * CH + ch], du = s_du[i * CH + ch];
      float yp = 0.0f;
#pragma unroll
      for (int q = 0; q < NPL; q++) {
        const int n = q * NL + lane;
        const float d = cm_exp2(__fmul_rn(delta, A2[q]));
        s[q] = __fadd_rn(__fmul_rn(d, s[q]), __fmul_rn(du, s_B[i * NLP + n]));
        const float cs = __fmul_rn(s_C[i * NLP + n], s[q]);
        yp = q == 0 ? cs : __fadd_rn(yp, cs);
      }
      const float y = sc_lane_sum<NL>(yp);
      if (lane == 0) s_y[i * CH + ch] = y;
      const int64_t t = t0 + i;
      if (p.ckpt && (t + 1) % p.Tc == 0 && t / p.Tc < p.nck) {
#pragma unroll
        for (int q = 0; q < NPL; q++)
          if (nv[q]) p.ckpt[((b * p.nck + t / p.Tc) * N + q * NL + lane) * E + e] = s[q];
      }
    }
    __syncthreads();
    for (int it = tid; it < len * CH; it += SC_THREADS) {
      const int i = it / CH, c = it - i * CH;
      const int64_t ee = e0 + c, row = b * T + t0 + i;
      if (ee >= E) continue;
      const float y = __fadd_rn(s_y[it], __fmul_rn(p.D[ee], s_u[it]));
      const float z = p.z[row * p.ld_z + ee];
      p.out[row * E + ee] = __fmul_rn(y, __fmul_rn(z, icl_nn_v8_sigmoid(z)));
    }
    __syncthreads();
  }
}

scan_p sc_args(const icl_mamba_scan *s) {
  scan_p p = {};
  p.u = s->u;
  p.dt = s->dt;
  p.dt_bias = s->dt_bias;
  p.bmat = s->bmat;
  p.cmat = s->cmat;
  p.z = s->z;
  p.A_log = s->A_log;
  p.D = s->D;
  p.dout = s->dout;
  p.out = s->out;
  p.ckpt = s->ckpt;
  p.du = s->du;
  p.ddt = s->ddt;
  p.dz = s->dz;
  p.B = s->B;
  p.T = s->T;
  p.E = s->E;
  p.N = s->N;
  p.Tc = s->Tc;
  p.ld_bc = s->ld_bc;
  p.ld_z = s->ld_z;
  return p;
}

static int scan_fwd(icl_ctx *ctx, const icl_mamba_scan *s) {
  if (s->N > ICL_MAMBA_MAX_N)
    return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan: state size %lld > %d", (long long)s->N, ICL_MAMBA_MAX_N);
  if (s->B <= 0 || s->T <= 0 || s->E <= 0 || s->N <= 0) return ICL_OK;
  if (s->ckpt && s->Tc < 1) return icl_errorf(ctx, ICL_EINVAL, "mamba scan: chunk %lld < 1", (long long)s->Tc);
  if (s->B > 65535) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan (cuda): batch %lld > 65535", (long long)s->B);
  scan_p p = sc_args(s);
  p.nck = s->ckpt ? icl_mamba_n_ckpt(s->T, s->Tc) : 0;
  int NL, NPL;
  sc_geo(s->N, &NL, &NPL);
  const int64_t ch = SC_THREADS / NL;
  dim3 grid((unsigned)((s->E + ch - 1) / ch), (unsigned)s->B);
  cudaStream_t st = ctx->cuda->stream;
  if (NPL == 2) icl_launch(k_scan_fwd<32, 2>, grid, SC_THREADS, 0, st, p);
  else if (NL == 32) icl_launch(k_scan_fwd<32, 1>, grid, SC_THREADS, 0, st, p);
  else if (NL == 16) icl_launch(k_scan_fwd<16, 1>, grid, SC_THREADS, 0, st, p);
  else icl_launch(k_scan_fwd<8, 1>, grid, SC_THREADS, 0, st, p);
  ICL_CU_LAUNCHED(ctx, "mamba scan forward");
  return ICL_OK;
}

/* ---- the backward's fixed-order reductions -------------------------------------------- */

/* dB, dC of one (row, n): the channel groups' partials in group order (overwrite) */
__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_scan_bc_sum(scan_p p, float *dbmat, float *dcmat) {
  const int64_t N2 = 2 * p.N, rows = p.B * p.T, n = rows * N2, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const int64_t row = idx / N2, n2 = idx - row * N2;
    float s = 0.0f;
    for (int64_t g = 0; g < p.ng; g++) s = __fadd_rn(s, p.part[(g * rows + row) * N2 + n2]);
    if (n2 < p.N) dbmat[row * p.ld_bc + n2] = s;
    else dcmat[row * p.ld_bc + n2 - p.N] = s;
  }
}

/* dA_log -= (sum over batch rows of dA) exp(A_log); dD += sum over batch rows (in order).
 * exp through double rounds once to float: the correctly rounded expf, as glibc's. */
__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_scan_param_sum(scan_p p, float *dA_log, float *dD) {
  const int64_t EN = p.E * p.N, n = EN + p.E, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    float s = 0.0f;
    if (idx < EN) {
      for (int64_t b = 0; b < p.B; b++) s = __fadd_rn(s, p.dA_part[b * EN + idx]);
      const float ea = (float)exp((double)p.A_log[idx]);
      dA_log[idx] = __fsub_rn(dA_log[idx], __fmul_rn(s, ea));
    } else {
      const int64_t e = idx - EN;
      for (int64_t b = 0; b < p.B; b++) s = __fadd_rn(s, p.dD_part[b * p.E + e]);
      dD[e] = __fadd_rn(dD[e], s);
    }
  }
}

int sc_reduce(icl_ctx *ctx, const scan_p &p, const icl_mamba_scan *s) {
  icl_cuda_state *st = ctx->cuda;
  const int nt = ICL_CUDA_THREADS;
  icl_launch(k_scan_bc_sum, icl_cuda_blocks(st, p.B * p.T * 2 * p.N, nt), nt, 0, st->stream, p, s->dbmat, s->dcmat);
  ICL_CU_LAUNCHED(ctx, "mamba scan backward (dB, dC)");
  icl_launch(k_scan_param_sum, icl_cuda_blocks(st, p.E * p.N + p.E, nt), nt, 0, st->stream, p, s->dA_log, s->dD);
  ICL_CU_LAUNCHED(ctx, "mamba scan backward (dA_log, dD)");
  return ICL_OK;
}

/* order: conv_fwd, conv_bwd, conv_bwd_scratch, scan_fwd, scan_bwd, scan_bwd_scratch (models/mamba_kernels.h) */
extern "C" const icl_mamba_kernels icl_cuda_mamba_kernels = {
    icl_cuda_mamba_conv_fwd, icl_cuda_mamba_conv_bwd,         icl_cuda_mamba_conv_bwd_scratch,
    scan_fwd,                icl_cuda_mamba_scan_bwd, icl_cuda_mamba_scan_bwd_scratch,
};
