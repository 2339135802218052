/* Geometry and arguments shared by the CUDA selective-scan kernels
 * (cuda_mamba_scan.cu forward + reductions + table, cuda_mamba_scan_bwd.cu).
 *
 * A block of 128 threads is (channel, state) pairs of one batch row: NL
 * lanes per channel hold NPL states each (state n = q*NL + lane), so CH =
 * 128/NL channels per block and ceil(E/CH) channel groups per batch row:
 *   N <= 8: NL 8 (16 channels)   N <= 16: NL 16 (8)   N <= 32: NL 32 (4)
 *   N <= 64: NL 32, NPL 2 (4 channels)
 * A channel's lanes sit in one warp, so sums over states are xor-shuffle
 * trees (a fixed order: every lane gets the same bits). Time advances in
 * steps of TS = 64/NPL: the per-step, per-channel scalars (Δ, u, ...) and
 * the step's B and C rows are staged in shared memory first, in coalesced
 * loads, then the recurrence runs with shared-memory reads only. */
#ifndef ICL_CUDA_MAMBA_SCAN_CUH
#define ICL_CUDA_MAMBA_SCAN_CUH

#include "cuda_mamba.cuh"

#define SC_THREADS 128
#define SC_NW (SC_THREADS / 32)
#define SC_RS 16 /* adjoint steps whose dB, dC warp partials are reduced together */

struct scan_p {
  const float *u, *dt, *dt_bias, *bmat, *cmat, *z, *A_log, *D, *dout;
  float *out, *ckpt, *du, *ddt, *dz;
  float *part;    /* [ng][B*T][2N]: dB | dC summed over a block's channels */
  float *dA_part; /* [B][E][N] */
  float *dD_part; /* [B][E] */
  float *sub;     /* [B][ng][slots][NPL*128]: states at sub-chunk starts inside a chunk */
  int64_t B, T, E, N, Tc, ld_bc, ld_z, nck, ng, slots;
};

static inline void sc_geo(int64_t N, int *NL, int *NPL) {
  *NL = N <= 8 ? 8 : N <= 16 ? 16 : 32;
  *NPL = N <= 32 ? 1 : 2;
}

/* sum over the NL lanes of a channel (lanes are aligned groups of NL in a warp) */
template <int NL> __device__ __forceinline__ float sc_lane_sum(float v) {
#pragma unroll
  for (int d = NL / 2; d > 0; d >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, d));
  return v;
}

/* Stage steps t0 .. t0+len-1 (len <= TS) of channels e0 .. e0+CH-1: Δ (and
 * its sigmoid), Δu, u, and the B and C rows. Zeros outside the valid range,
 * so idle lanes and channels compute harmless zeros. */
template <int CH, int NLP>
__device__ __forceinline__ void sc_stage(const scan_p &p, int64_t b, int64_t e0, int64_t t0, int len, int TS,
                                         float *s_delta, float *s_du, float *s_u, float *s_sig, float *s_B,
                                         float *s_C) {
  const int tid = threadIdx.x;
  for (int it = tid; it < TS * CH; it += SC_THREADS) {
    const int i = it / CH, c = it - i * CH;
    const int64_t ee = e0 + c;
    float delta = 0.0f, u = 0.0f, sig = 0.0f;
    if (i < len && ee < p.E) {
      const int64_t row = b * p.T + t0 + i;
      delta = cm_softplus(__fadd_rn(p.dt[row * p.E + ee], p.dt_bias[ee]), &sig);
      u = p.u[row * p.E + ee];
    }
    s_delta[it] = delta;
    s_du[it] = __fmul_rn(delta, u);
    s_u[it] = u;
    if (s_sig) s_sig[it] = sig;
  }
  for (int it = tid; it < TS * NLP; it += SC_THREADS) {
    const int i = it / NLP, n = it - i * NLP;
    float bv = 0.0f, cv = 0.0f;
    if (i < len && n < p.N) {
      const int64_t row = b * p.T + t0 + i;
      bv = p.bmat[row * p.ld_bc + n];
      cv = p.cmat[row * p.ld_bc + n];
    }
    s_B[it] = bv;
    s_C[it] = cv;
  }
}

/* per-lane A and A log2(e) (A = -exp(A_log), the CPU's lanes_load); idle lanes A = -1 */
template <int NL, int NPL>
__device__ __forceinline__ void sc_lanes(const scan_p &p, int64_t e, int lane, float (&A)[NPL], float (&A2)[NPL],
                                         bool (&nv)[NPL]) {
#pragma unroll
  for (int q = 0; q < NPL; q++) {
    const int64_t n = (int64_t)q * NL + lane;
    nv[q] = e < p.E && n < p.N;
    A[q] = nv[q] ? -icl_nn_v8_exp(p.A_log[e * p.N + n]) : -1.0f;
    A2[q] = __fmul_rn(A[q], CM_LOG2E);
  }
}

/* cuda_mamba_scan.cu: the table's arguments as kernel parameters; the backward's final reductions */
scan_p sc_args(const icl_mamba_scan *s);
int sc_reduce(icl_ctx *ctx, const scan_p &p, const icl_mamba_scan *s);
/* cuda_mamba_scan_bwd.cu */
extern "C" int icl_cuda_mamba_scan_bwd(icl_ctx *ctx, const icl_mamba_scan *s);
extern "C" int64_t icl_cuda_mamba_scan_bwd_scratch(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc);

/* offsets (floats) of the backward's scratch parts; each part 64-float aligned */
struct sc_layout {
  int64_t part, dA, dD, sub, total, ng, slots;
};
static inline int64_t sc_pad(int64_t n) { return (n + 63) & ~(int64_t)63; }
static inline sc_layout sc_plan(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc) {
  int NL, NPL;
  sc_geo(N, &NL, &NPL);
  const int64_t CH = SC_THREADS / NL, TS = 64 / NPL, Tcc = Tc < T ? Tc : T;
  sc_layout L;
  L.ng = (E + CH - 1) / CH;
  L.slots = Tcc > TS ? (Tcc + TS - 1) / TS - 1 : 0;
  L.part = 0;
  L.dA = L.part + sc_pad(L.ng * B * T * 2 * N);
  L.dD = L.dA + sc_pad(B * E * N);
  L.sub = L.dD + sc_pad(B * E);
  L.total = L.sub + sc_pad(B * L.ng * L.slots * NPL * SC_THREADS);
  return L;
}

#endif
