/* CPU selective scan with its gate (spec §6.2, §6.5).
 *
 * Work is split into tasks (batch row b, group of 64 channels), with one
 * vector lane per channel (8-channel sub-blocks). The forward walks time
 * and, per step, the group's sub-blocks; the backward walks a chunk of time
 * per sub-block (its scratch then stays small). Tasks never write the same
 * memory, so the results depend neither on the thread count nor on which
 * thread runs a task (hence dynamic scheduling, which copes with a core
 * shared with another process or BLAS thread); the backward's
 * sums over channels (dB, dC) and over batch rows (dA_log, dD) go through
 * per-task partials added in a fixed order afterwards.
 *
 * Memory (what the forward keeps): only the states at chunk ends, every Tc
 * steps (ckpt [B, n_ckpt, N, E]). The backward walks the chunks from last
 * to first; for each chunk it re-runs the forward recurrence from the
 * stored start state (keeping that chunk's Tc states and decay factors in
 * per-thread scratch, a few tens of KB), then runs the adjoint recurrence
 *   λ_t = C_t g_y,t + exp(Δ_{t+1} A) λ_{t+1}
 * backwards through the chunk, carrying exp(Δ A) λ into the previous one.
 * Cost: one extra forward scan; memory O(B·T·E + B·(T/Tc)·E·N). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_mamba.h"
#include "mamba_vmath.h"

#define GROUP 64 /* channels per task */
/* rows ahead to prefetch: consecutive time steps are E floats apart, a
 * stride the hardware prefetchers miss, and one step of N states is too
 * little work to hide a memory access */
#define PF_AHEAD 8
#define NSUB (GROUP / 8)

static int64_t n_groups(int64_t E) { return (E + GROUP - 1) / GROUP; }

/* per-lane parameters of channels e0..e0+nv (idle lanes: A = -1, D = 0, bias 0);
 * A2 = A log2(e), so that exp(Δ A) = exp2(Δ A2) */
typedef struct lanes {
  int64_t e0;
  int nv;
  v8f D, bias;
} lanes;

V8_FN lanes lanes_load(const icl_mamba_scan *a, int64_t e0, v8f *A, v8f *A2) {
  lanes l;
  l.e0 = e0;
  l.nv = (int)(a->E - e0 < 8 ? a->E - e0 : 8);
  l.D = v8_load(a->D + e0, l.nv);
  l.bias = v8_load(a->dt_bias + e0, l.nv);
  for (int64_t n = 0; n < a->N; n++) {
    v8f v = V8(0.0f); /* idle lanes: A_log = 0, A = -1 */
    for (int i = 0; i < l.nv; i++) v[i] = a->A_log[(e0 + i) * a->N + n];
    A[n] = -icl_v8_exp(v);
    A2[n] = A[n] * V8(ICL_LOG2E);
  }
  return l;
}

/* the inputs of the step at row for nsub sub-blocks from channel e0 (and,
 * for the backward, its gradient rows): one prefetch per 64-byte line */
static inline void prefetch_row(const icl_mamba_scan *a, int64_t row, int64_t e0, int nsub, int bwd) {
  const int64_t E = a->E;
  __builtin_prefetch(a->bmat + row * a->ld_bc);
  __builtin_prefetch(a->cmat + row * a->ld_bc);
  for (int j = 0; j < nsub; j += 2) {
    int64_t e = e0 + 8 * j;
    __builtin_prefetch(a->u + row * E + e);
    __builtin_prefetch(a->dt + row * E + e);
    __builtin_prefetch(a->z + row * a->ld_z + e);
    __builtin_prefetch(a->out + row * E + e, 1);
    if (bwd) {
      __builtin_prefetch(a->dout + row * E + e);
      __builtin_prefetch(a->dz + row * a->ld_z + e, 1);
    }
  }
}

/* One step of the recurrence at row `row` for the lanes; s updated in place.
 * Returns y (before the gate); da (may be NULL) receives exp(Δ A). */
V8_FN v8f scan_step(const icl_mamba_scan *a, const lanes *l, const v8f *A2, v8f *s, v8f *da, int64_t row,
                    v8f *delta_out, v8f *sig_out, v8f *u_out) {
  const int64_t N = a->N, E = a->E;
  v8f delta = v8_softplus(v8_load(a->dt + row * E + l->e0, l->nv) + l->bias, sig_out);
  v8f u = v8_load(a->u + row * E + l->e0, l->nv);
  v8f du = delta * u, y = V8(0.0f);
  const float *Bt = a->bmat + row * a->ld_bc, *Ct = a->cmat + row * a->ld_bc;
  for (int64_t n = 0; n < N; n++) {
    v8f d = v8_exp2(delta * A2[n]);
    s[n] = d * s[n] + du * V8(Bt[n]);
    y += V8(Ct[n]) * s[n];
    if (da) da[n] = d;
  }
  *delta_out = delta;
  *u_out = u;
  return y + l->D * u;
}

/* Forward: per task, time is the outer loop and the group's 8-channel
 * sub-blocks the inner one, so each step reads whole 256-byte row segments
 * (prefetched a few rows ahead) and has 8 x N independent exponentials. */
static int scan_fwd(icl_ctx *ctx, const icl_mamba_scan *a) {
  const int64_t B = a->B, T = a->T, E = a->E, N = a->N, Tc = a->Tc;
  if (N > ICL_MAMBA_MAX_N) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan: state size %lld > %d", (long long)N,
                                                 ICL_MAMBA_MAX_N);
  const int64_t ng = n_groups(E), nck = icl_mamba_n_ckpt(T, Tc);
#pragma omp parallel for schedule(dynamic, 4) if (B * T * E >= 4096)
  for (int64_t task = 0; task < B * ng; task++) {
    int64_t b = task / ng, g = task % ng;
    const int nsub = (int)(((g + 1) * GROUP < E ? GROUP : E - g * GROUP) + 7) / 8;
    v8f A[ICL_MAMBA_MAX_N], A2[NSUB][ICL_MAMBA_MAX_N], s[NSUB][ICL_MAMBA_MAX_N];
    lanes l[NSUB];
    for (int j = 0; j < nsub; j++) {
      l[j] = lanes_load(a, g * GROUP + 8 * j, A, A2[j]);
      for (int64_t n = 0; n < N; n++) s[j][n] = V8(0.0f);
    }
    for (int64_t t = 0; t < T; t++) {
      int64_t row = b * T + t;
      if (t + PF_AHEAD < T) prefetch_row(a, row + PF_AHEAD, g * GROUP, nsub, 0);
      int64_t c = t / Tc;
      int keep = a->ckpt && (t + 1) % Tc == 0 && c < nck;
      for (int j = 0; j < nsub; j++) {
        const int64_t e0 = l[j].e0;
        v8f delta, u;
        v8f y = scan_step(a, &l[j], A2[j], s[j], NULL, row, &delta, NULL, &u);
        v8f z = v8_load(a->z + row * a->ld_z + e0, l[j].nv);
        v8_store(a->out + row * E + e0, y * (z * icl_v8_sigmoid(z)), l[j].nv);
        if (keep)
          for (int64_t n = 0; n < N; n++) v8_store(a->ckpt + ((b * nck + c) * N + n) * E + e0, s[j][n], l[j].nv);
      }
    }
  }
  return ICL_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* per-thread scratch, in vectors of 8 floats */
typedef struct slot {
  v8f *S;              /* [Tc+1][N]: S[0] = state before the chunk, S[i+1] = s at step i */
  v8f *DA;             /* [Tc][N]: exp(Δ A) at step i */
  v8f *DEL, *SIG, *GY; /* [Tc]: Δ, σ(δraw), g_y */
  v8f *U;              /* [Tc] */
  v8f *DB, *DC;        /* [Tc][N]: dB, dC summed over the group's sub-blocks, lane-wise */
  v8f *MU, *DAACC;     /* [NSUB][N]: carried exp(ΔA)λ, and the dA accumulator */
  v8f *DDACC;          /* [NSUB] */
} slot;

static int64_t slot_vectors(int64_t N, int64_t Tc) {
  return (Tc + 1) * N + Tc * N + 4 * Tc + 2 * Tc * N + 2 * NSUB * N + NSUB;
}

static slot slot_at(float *base, int64_t N, int64_t Tc) {
  v8f *p = (v8f *)base;
  slot s;
  s.S = p, p += (Tc + 1) * N;
  s.DA = p, p += Tc * N;
  s.DEL = p, p += Tc;
  s.SIG = p, p += Tc;
  s.GY = p, p += Tc;
  s.U = p, p += Tc;
  s.DB = p, p += Tc * N;
  s.DC = p, p += Tc * N;
  s.MU = p, p += NSUB * N;
  s.DAACC = p, p += NSUB * N;
  s.DDACC = p;
  return s;
}

/* scratch layout: dBC partials [ng][B*T][2N], dA partials [B][E][N], dD partials [B][E],
 * then 32-byte aligned per-thread slots */
static int64_t partial_floats(int64_t B, int64_t T, int64_t E, int64_t N) {
  int64_t f = n_groups(E) * B * T * 2 * N + B * E * N + B * E;
  return (f + 15) & ~(int64_t)15;
}

static int64_t scan_bwd_scratch(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc) {
  if (Tc > T) Tc = T;
  return partial_floats(B, T, E, N) + 16 + (int64_t)omp_get_max_threads() * 8 * slot_vectors(N, Tc);
}

/* chunk [t0, t0+len) of sub-block `sub` for batch row b */
static void bwd_chunk(const icl_mamba_scan *a, slot *sl, int sub, int64_t b, int64_t c, int64_t t0, int64_t len,
                      const lanes *l, const v8f *A, const v8f *A2) {
  const int64_t N = a->N, E = a->E, T = a->T, nck = icl_mamba_n_ckpt(T, a->Tc), e0 = l->e0;
  const int nv = l->nv;
  v8f *MU = sl->MU + sub * N, *DAACC = sl->DAACC + sub * N;
  /* recompute the chunk's states from its start state */
  for (int64_t n = 0; n < N; n++)
    sl->S[n] = c == 0 ? V8(0.0f) : v8_load(a->ckpt + ((b * nck + c - 1) * N + n) * E + e0, nv);
  for (int64_t i = 0; i < len; i++) {
    int64_t row = b * T + t0 + i;
    if (i + PF_AHEAD < len) prefetch_row(a, row + PF_AHEAD, e0, 1, 1);
    v8f *s = sl->S + (i + 1) * N;
    memcpy(s, s - N, sizeof(v8f) * (size_t)N);
    v8f y = scan_step(a, l, A2, s, sl->DA + i * N, row, &sl->DEL[i], &sl->SIG[i], &sl->U[i]);
    v8f z = v8_load(a->z + row * a->ld_z + e0, nv), sz = icl_v8_sigmoid(z), silu = z * sz;
    v8f go = v8_load(a->dout + row * E + e0, nv);
    v8_store(a->out + row * E + e0, y * silu, nv);
    v8_store(a->dz + row * a->ld_z + e0, go * y * (sz * (V8(1.0f) + z * (V8(1.0f) - sz))), nv);
    sl->GY[i] = go * silu;
  }
  /* adjoint recurrence, backwards through the chunk */
  v8f dd_acc = sl->DDACC[sub];
  for (int64_t i = len - 1; i >= 0; i--) {
    int64_t row = b * T + t0 + i;
    if (i >= PF_AHEAD) {
      __builtin_prefetch(a->du + (row - PF_AHEAD) * E + e0, 1);
      __builtin_prefetch(a->ddt + (row - PF_AHEAD) * E + e0, 1);
    }
    const float *Bt = a->bmat + row * a->ld_bc, *Ct = a->cmat + row * a->ld_bc;
    v8f gy = sl->GY[i], delta = sl->DEL[i], u = sl->U[i], du_dt = delta * u;
    v8f lb = V8(0.0f), ddelta = V8(0.0f);
    const v8f *sp = sl->S + i * N, *sc = sp + N, *da = sl->DA + i * N;
    v8f *dbv = sl->DB + i * N, *dcv = sl->DC + i * N;
    for (int64_t n = 0; n < N; n++) {
      v8f bn = V8(Bt[n]);
      v8f lam = V8(Ct[n]) * gy + MU[n];
      v8f prev = da[n] * sp[n]; /* exp(Δ_t A) s_{t-1} */
      dbv[n] += lam * du_dt;
      dcv[n] += gy * sc[n];
      lb += lam * bn;
      ddelta += lam * (bn * u + A[n] * prev);
      DAACC[n] += lam * delta * prev;
      MU[n] = da[n] * lam;
    }
    dd_acc += gy * u;
    v8_store(a->du + row * E + e0, l->D * gy + delta * lb, nv);
    v8_store(a->ddt + row * E + e0, ddelta * sl->SIG[i], nv);
  }
  sl->DDACC[sub] = dd_acc;
}

static void bwd_task(const icl_mamba_scan *a, slot *sl, int64_t b, int64_t g, float *part) {
  const int64_t N = a->N, E = a->E, T = a->T, Tc = a->Tc, B = a->B;
  const int64_t nchunk = (T + Tc - 1) / Tc, e_end = (g + 1) * GROUP < E ? (g + 1) * GROUP : E;
  const int nsub = (int)((e_end - g * GROUP + 7) / 8);
  float *dbc = part + (g * B * T + b * T) * 2 * N;
  float *dA_part = part + n_groups(E) * B * T * 2 * N, *dD_part = dA_part + B * E * N;
  v8f A[ICL_MAMBA_MAX_N], A2[ICL_MAMBA_MAX_N];
  memset(sl->MU, 0, sizeof(v8f) * (size_t)(NSUB * N));
  memset(sl->DAACC, 0, sizeof(v8f) * (size_t)(NSUB * N));
  memset(sl->DDACC, 0, sizeof(v8f) * NSUB);
  for (int64_t c = nchunk - 1; c >= 0; c--) {
    int64_t t0 = c * Tc, len = T - t0 < Tc ? T - t0 : Tc;
    memset(sl->DB, 0, sizeof(v8f) * (size_t)(len * N));
    memset(sl->DC, 0, sizeof(v8f) * (size_t)(len * N));
    for (int sub = 0; sub < nsub; sub++) {
      lanes l = lanes_load(a, g * GROUP + 8 * sub, A, A2);
      bwd_chunk(a, sl, sub, b, c, t0, len, &l, A, A2);
    }
    for (int64_t i = 0; i < len; i++)
      for (int64_t n = 0; n < N; n++) {
        dbc[(t0 + i) * 2 * N + n] = v8_hsum(sl->DB[i * N + n]);
        dbc[(t0 + i) * 2 * N + N + n] = v8_hsum(sl->DC[i * N + n]);
      }
  }
  for (int sub = 0; sub < nsub; sub++) {
    int64_t e0 = g * GROUP + 8 * sub;
    int nv = (int)(E - e0 < 8 ? E - e0 : 8);
    for (int i = 0; i < nv; i++) {
      for (int64_t n = 0; n < N; n++) dA_part[(b * E + e0 + i) * N + n] = sl->DAACC[sub * N + n][i];
      dD_part[b * E + e0 + i] = sl->DDACC[sub][i];
    }
  }
}

static int scan_bwd(icl_ctx *ctx, const icl_mamba_scan *a) {
  const int64_t B = a->B, T = a->T, E = a->E, N = a->N, Tc = a->Tc < a->T ? a->Tc : a->T;
  if (N > ICL_MAMBA_MAX_N) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba scan: state size %lld > %d", (long long)N,
                                                 ICL_MAMBA_MAX_N);
  const int64_t ng = n_groups(E), pf = partial_floats(B, T, E, N), sv = 8 * slot_vectors(N, Tc);
  float *part = a->scratch;
  float *slots = (float *)(((uintptr_t)(a->scratch + pf) + 31) & ~(uintptr_t)31);
  int64_t nslots = (a->scratch + a->scratch_floats - slots) / sv;
  if (nslots < 1) return icl_errorf(ctx, ICL_EINVAL, "mamba scan: backward scratch too small (%lld floats)",
                                    (long long)a->scratch_floats);
  if (nslots > B * ng) nslots = B * ng;
  icl_mamba_scan ac = *a;
  ac.Tc = Tc;
#pragma omp parallel num_threads((int)nslots)
  {
    slot sl = slot_at(slots + (int64_t)omp_get_thread_num() * sv, N, Tc);
#pragma omp for schedule(dynamic, 2)
    for (int64_t task = 0; task < B * ng; task++) bwd_task(&ac, &sl, task / ng, task % ng, part);
  }
  /* fixed-order reductions of the partials */
  const float *dA_part = part + ng * B * T * 2 * N, *dD_part = dA_part + B * E * N;
#pragma omp parallel for schedule(static) if (B * T * N >= 16384)
  for (int64_t row = 0; row < B * T; row++) {
    for (int64_t n = 0; n < N; n++) {
      float sb = 0, sc = 0;
      for (int64_t g = 0; g < ng; g++) {
        sb += part[(g * B * T + row) * 2 * N + n];
        sc += part[(g * B * T + row) * 2 * N + N + n];
      }
      a->dbmat[row * a->ld_bc + n] = sb;
      a->dcmat[row * a->ld_bc + n] = sc;
    }
  }
#pragma omp parallel for schedule(static) if (B * E * N >= 65536)
  for (int64_t e = 0; e < E; e++) {
    for (int64_t n = 0; n < N; n++) {
      float s = 0;
      for (int64_t b = 0; b < B; b++) s += dA_part[(b * E + e) * N + n];
      a->dA_log[e * N + n] -= s * expf(a->A_log[e * N + n]); /* dA/dA_log = A = -exp(A_log) */
    }
    float s = 0;
    for (int64_t b = 0; b < B; b++) s += dD_part[b * E + e];
    a->dD[e] += s;
  }
  return ICL_OK;
}

const icl_mamba_kernels icl_cpu_mamba_kernels = {
    .conv_fwd = icl_cpu_mamba_conv_fwd,
    .conv_bwd = icl_cpu_mamba_conv_bwd,
    .conv_bwd_scratch = icl_cpu_mamba_conv_bwd_scratch,
    .scan_fwd = scan_fwd,
    .scan_bwd = scan_bwd,
    .scan_bwd_scratch = scan_bwd_scratch,
};
