/* Mamba backbone forward and backward over all layers (spec §6.2, §6.3,
 * §6.5, §7.1), written as GEMMs through the backend plus the mamba area's
 * conv and scan kernels.
 *
 * Workspace (floats, all [B*T, .] row-major):
 *   saved, per layer l (training only; inference reuses one block):
 *     r_l [d] (residual stream entering the layer), rstd_l [1],
 *     xz_l [2E] (in_proj output: x | z), xdbl_l [R+2N] (x_proj output: δlow | B | C),
 *     ckpt_l [B, n_ckpt, N, E] (scan state every T_c steps);
 *   then r_L [d], rstd_f [1];
 *   temporaries shared by the layers: h [d] (norm output; dh in backward),
 *     u [E] (conv+SiLU output), dt [E] (W_dt δlow), o [E] (gated scan output),
 *     mix [d] (out_proj output), and for backward go, du, ddt [E], dxz [2E],
 *     dxdbl [R+2N], plus the kernels' scratch.
 * Recomputed in backward: h = RMSNorm(r_l), u = silu(conv(x)), dt, and the
 * scan's states inside each chunk, Δ and the gated output o. */
#include <string.h>
#include <time.h>

#include "core/backend.h"
#include "mamba_internal.h"
#include "mamba_kernels.h"

static int64_t pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* ---- opt-in phase timing (icl_mamba_set_profiling) ---- */
enum { PROF_GEMM, PROF_CONV, PROF_SCAN, PROF_OTHER };

static double wall_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* charge the time since the last lap to phase `what` */
static void lap(icl_mamba *mb, int what) {
  if (!mb->profiling) return;
  double t = wall_now(), d = t - mb->prof_last;
  mb->prof_last = t;
  double *slot[] = {&mb->prof.gemm, &mb->prof.conv, &mb->prof.scan, &mb->prof.other};
  *slot[what] += d;
}

int icl_mamba_set_profiling(icl_model *m, int on) {
  icl_mamba *mb = m->backbone;
  memset(&mb->prof, 0, sizeof mb->prof);
  mb->profiling = on;
  return ICL_OK;
}

icl_mamba_profile icl_mamba_get_profile(const icl_model *m) { return ((const icl_mamba *)m->backbone)->prof; }

/* GEMM FLOPs of one layer's forward (the backward does twice as many) */
static int64_t layer_gemm_flops(const icl_mamba *mb, int64_t bt) {
  const int64_t d = mb->cfg.hidden, E = mb->E, R = mb->R, W = R + 2 * mb->cfg.state;
  return 2 * bt * (d * 2 * E + E * W + R * E + E * d);
}

typedef struct layout {
  int64_t r, rstd, xz, xdbl, ckpt, block; /* offsets inside a layer's saved block, and its size */
  int64_t nblocks;                        /* layers with their own block (1 when not training) */
  int64_t rL, rstdL;                      /* final residual and its rstd */
  int64_t h, u, dt, o, mix, go, du, ddt, dxz, dxdbl, scratch, scratch_n;
  int64_t saved, total;
} layout;

static layout plan(const icl_mamba *mb, int64_t B, int64_t T, int train, const icl_mamba_kernels *k) {
  const int64_t bt = B * T, d = mb->cfg.hidden, E = mb->E, N = mb->cfg.state, W = mb->R + 2 * N;
  layout L;
  memset(&L, 0, sizeof L);
  int64_t p = 0;
  L.r = p, p += pad16(bt * d);
  L.rstd = p, p += pad16(bt);
  L.xz = p, p += pad16(bt * 2 * E);
  L.xdbl = p, p += pad16(bt * W);
  L.ckpt = p, p += train ? pad16(B * icl_mamba_n_ckpt(T, mb->cfg.chunk) * N * E) : 0;
  L.block = p;
  L.nblocks = train ? mb->cfg.layers : 1;
  p = L.nblocks * L.block;
  L.rL = p, p += pad16(bt * d);
  L.rstdL = p, p += pad16(bt);
  L.saved = train ? p : 0;
  L.h = p, p += pad16(bt * d);
  L.u = p, p += pad16(bt * E);
  L.dt = p, p += pad16(bt * E);
  L.o = p, p += pad16(bt * E);
  L.mix = p, p += pad16(bt * d);
  if (train) {
    L.go = p, p += pad16(bt * E);
    L.du = p, p += pad16(bt * E);
    L.ddt = p, p += pad16(bt * E);
    L.dxz = p, p += pad16(bt * 2 * E);
    L.dxdbl = p, p += pad16(bt * W);
    int64_t sc = k->scan_bwd_scratch(B, T, E, N, mb->cfg.chunk), cc = k->conv_bwd_scratch(B, E, mb->cfg.conv);
    L.scratch_n = sc > cc ? sc : cc;
    L.scratch = p, p += pad16(L.scratch_n);
  }
  L.total = p;
  return L;
}

int64_t icl_mamba_workspace(const icl_model *m, int64_t B, int64_t T, int train) {
  const icl_mamba *mb = m->backbone;
  return plan(mb, B, T, train, mb->k).total;
}

void icl_mamba_workspace_parts(const icl_model *m, int64_t B, int64_t T, int train, int64_t *saved, int64_t *temp) {
  const icl_mamba *mb = m->backbone;
  layout L = plan(mb, B, T, train, mb->k);
  *saved = L.saved;
  *temp = L.total - L.saved;
}

/* the scan arguments of layer l whose saved block starts at blk */
static icl_mamba_scan scan_args(const icl_model *m, int l, float *ws, const layout *L, float *blk, int64_t B,
                                int64_t T, int train) {
  const icl_mamba *mb = m->backbone;
  const icl_mamba_layer *ly = &mb->layer[l];
  const icl_params *p = &m->params;
  const int64_t E = mb->E, N = mb->cfg.state, R = mb->R;
  icl_mamba_scan s;
  memset(&s, 0, sizeof s);
  s.B = B, s.T = T, s.E = E, s.N = N, s.Tc = mb->cfg.chunk;
  s.u = ws + L->u;
  s.dt = ws + L->dt;
  s.dt_bias = icl_params_data(p, ly->dt_b);
  s.bmat = blk + L->xdbl + R;
  s.cmat = blk + L->xdbl + R + N;
  s.ld_bc = R + 2 * N;
  s.z = blk + L->xz + E;
  s.ld_z = 2 * E;
  s.A_log = icl_params_data(p, ly->A_log);
  s.D = icl_params_data(p, ly->D);
  s.out = ws + L->o;
  s.ckpt = train ? blk + L->ckpt : NULL;
  return s;
}

/* u = silu(conv(x)) from the x half of the layer's xz */
static int conv_u(icl_ctx *ctx, const icl_backend *be, const icl_model *m, int l, float *ws, const layout *L,
                  const float *blk, int64_t B, int64_t T) {
  const icl_mamba *mb = m->backbone;
  const icl_mamba_layer *ly = &mb->layer[l];
  return be->mamba->conv_fwd(ctx, ws + L->u, blk + L->xz, 2 * mb->E, icl_params_data(&m->params, ly->conv_w),
                             icl_params_data(&m->params, ly->conv_b), B, T, mb->E, mb->cfg.conv);
}

/* dt = δlow W_dt^T (the bias is added inside the scan) from the layer's xdbl */
static int dt_proj(icl_ctx *ctx, const icl_backend *be, const icl_model *m, int l, float *ws, const layout *L,
                   const float *blk, int64_t bt) {
  const icl_mamba *mb = m->backbone;
  const int64_t E = mb->E, R = mb->R, W = R + 2 * mb->cfg.state;
  return be->gemm(ctx, 0, 1, bt, E, R, 1.0f, blk + L->xdbl, W, 0, icl_params_data(&m->params, mb->layer[l].dt_w), R,
                  0, 0.0f, ws + L->dt, E, 0, 1);
}

int icl_mamba_forward(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws,
                      int train) {
  icl_mamba *mb = m->backbone;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  const icl_params *p = &m->params;
  const int64_t bt = B * T, d = mb->cfg.hidden, E = mb->E, W = mb->R + 2 * mb->cfg.state;
  const layout L = plan(mb, B, T, train, mb->k);
  const float eps = mb->cfg.eps;
  if (mb->profiling) mb->prof_last = wall_now(), mb->prof.gemm_flops += mb->cfg.layers * layer_gemm_flops(mb, bt);
  /* r_0 = x; h = norm_0(r_0) */
  int rc = be->memcpy(ctx, ws + L.r, m->device, x, m->device, sizeof(float) * (size_t)(bt * d));
  if (!rc)
    rc = be->nn->rmsnorm_fwd(ctx, ws + L.h, ws + L.rstd, ws + L.r, icl_params_data(p, mb->layer[0].norm), bt, d, eps);
  lap(mb, PROF_OTHER);
  for (int l = 0; l < mb->cfg.layers && !rc; l++) {
    const icl_mamba_layer *ly = &mb->layer[l];
    const int last = l + 1 == mb->cfg.layers;
    float *blk = ws + (train ? l : 0) * L.block;
    rc = be->gemm(ctx, 0, 1, bt, 2 * E, d, 1.0f, ws + L.h, d, 0, icl_params_data(p, ly->in_proj), d, 0, 0.0f,
                  blk + L.xz, 2 * E, 0, 1);
    lap(mb, PROF_GEMM);
    if (!rc) rc = conv_u(ctx, be, m, l, ws, &L, blk, B, T);
    lap(mb, PROF_CONV);
    if (!rc)
      rc = be->gemm(ctx, 0, 1, bt, W, E, 1.0f, ws + L.u, E, 0, icl_params_data(p, ly->x_proj), E, 0, 0.0f,
                    blk + L.xdbl, W, 0, 1);
    if (!rc) rc = dt_proj(ctx, be, m, l, ws, &L, blk, bt);
    lap(mb, PROF_GEMM);
    icl_mamba_scan s = scan_args(m, l, ws, &L, blk, B, T, train);
    if (!rc) rc = be->mamba->scan_fwd(ctx, &s);
    lap(mb, PROF_SCAN);
    if (!rc)
      rc = be->gemm(ctx, 0, 1, bt, d, E, 1.0f, ws + L.o, E, 0, icl_params_data(p, ly->out_proj), E, 0, 0.0f,
                    ws + L.mix, d, 0, 1);
    lap(mb, PROF_GEMM);
    /* r_{l+1} = r_l + mix, then h = norm_{l+1}(r_{l+1}) or the output y = norm_f(r_L).
     * Training keeps every r_l (the next layer's block, or r_L); inference
     * updates r in place in block 0. */
    float *next = !train ? blk : last ? ws + L.rL : blk + L.block;
    float *next_r = next + (last && train ? 0 : L.r);
    float *next_rstd = last ? ws + L.rstdL : next + L.rstd;
    float *hout = last ? y : ws + L.h;
    const float *w = icl_params_data(p, last ? mb->norm_f : mb->layer[l + 1].norm);
    if (!rc) rc = be->nn->add_rmsnorm_fwd(ctx, next_r, hout, next_rstd, blk + L.r, ws + L.mix, w, bt, d, eps);
    lap(mb, PROF_OTHER);
  }
  return rc;
}

int icl_mamba_backward(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws) {
  icl_mamba *mb = m->backbone;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  icl_params *p = &m->params;
  const int64_t bt = B * T, d = mb->cfg.hidden, E = mb->E, N = mb->cfg.state, R = mb->R, W = R + 2 * N;
  const layout L = plan(mb, B, T, 1, mb->k);
  if (mb->profiling) mb->prof_last = wall_now(), mb->prof.gemm_flops += 2 * mb->cfg.layers * layer_gemm_flops(mb, bt);
  /* dr: gradient of the residual stream, kept in dx */
  float *dr = dx;
  int rc = be->nn->rmsnorm_bwd(ctx, dr, icl_params_grad(p, mb->norm_f), dy, ws + L.rL, icl_params_data(p, mb->norm_f),
                               ws + L.rstdL, bt, d, 0);
  for (int l = (int)mb->cfg.layers - 1; l >= 0 && !rc; l--) {
    const icl_mamba_layer *ly = &mb->layer[l];
    float *blk = ws + l * L.block;
    /* recompute the layer's input norm, conv output and dt */
    lap(mb, PROF_OTHER);
    rc = be->nn->rmsnorm_fwd(ctx, ws + L.h, blk + L.rstd, blk + L.r, icl_params_data(p, ly->norm), bt, d, mb->cfg.eps);
    lap(mb, PROF_OTHER);
    if (!rc) rc = conv_u(ctx, be, m, l, ws, &L, blk, B, T);
    lap(mb, PROF_CONV);
    if (!rc) rc = dt_proj(ctx, be, m, l, ws, &L, blk, bt);
    /* out_proj: go = dr W_out */
    if (!rc)
      rc = be->gemm(ctx, 0, 0, bt, E, d, 1.0f, dr, d, 0, icl_params_data(p, ly->out_proj), E, 0, 0.0f, ws + L.go, E,
                    0, 1);
    lap(mb, PROF_GEMM);
    icl_mamba_scan s = scan_args(m, l, ws, &L, blk, B, T, 1);
    s.dout = ws + L.go;
    s.du = ws + L.du;
    s.ddt = ws + L.ddt;
    s.dz = ws + L.dxz + E;
    s.dbmat = ws + L.dxdbl + R;
    s.dcmat = ws + L.dxdbl + R + N;
    s.dA_log = icl_params_grad(p, ly->A_log);
    s.dD = icl_params_grad(p, ly->D);
    s.scratch = ws + L.scratch;
    /* the scan's per-thread slots are sized by the thread count when the arena
     * was reserved; with more threads now, it runs on the slots there are */
    s.scratch_floats = L.scratch + L.scratch_n <= m->cap_ws ? L.scratch_n : m->cap_ws - L.scratch;
    if (!rc) rc = be->mamba->scan_bwd(ctx, &s);
    lap(mb, PROF_SCAN);
    /* dW_out += dr^T o (o recomputed by the scan backward) */
    if (!rc)
      rc = be->gemm(ctx, 1, 0, d, E, bt, 1.0f, dr, d, 0, ws + L.o, E, 0, 1.0f, icl_params_grad(p, ly->out_proj), E,
                    0, 1);
    lap(mb, PROF_GEMM);
    /* dt path: db_dt += colsum(ddt); dW_dt += ddt^T δlow; dδlow = ddt W_dt */
    if (!rc) rc = be->nn->bias_grad(ctx, icl_params_grad(p, ly->dt_b), ws + L.ddt, bt, E);
    lap(mb, PROF_OTHER);
    if (!rc)
      rc = be->gemm(ctx, 1, 0, E, R, bt, 1.0f, ws + L.ddt, E, 0, blk + L.xdbl, W, 0, 1.0f,
                    icl_params_grad(p, ly->dt_w), R, 0, 1);
    if (!rc)
      rc = be->gemm(ctx, 0, 0, bt, R, E, 1.0f, ws + L.ddt, E, 0, icl_params_data(p, ly->dt_w), R, 0, 0.0f,
                    ws + L.dxdbl, W, 0, 1);
    /* x_proj: dW_x += dxdbl^T u; du += dxdbl W_x */
    if (!rc)
      rc = be->gemm(ctx, 1, 0, W, E, bt, 1.0f, ws + L.dxdbl, W, 0, ws + L.u, E, 0, 1.0f,
                    icl_params_grad(p, ly->x_proj), E, 0, 1);
    if (!rc)
      rc = be->gemm(ctx, 0, 0, bt, E, W, 1.0f, ws + L.dxdbl, W, 0, icl_params_data(p, ly->x_proj), E, 0, 1.0f,
                    ws + L.du, E, 0, 1);
    lap(mb, PROF_GEMM);
    /* conv + SiLU: dx into the x half of dxz */
    if (!rc)
      rc = be->mamba->conv_bwd(ctx, ws + L.dxz, icl_params_grad(p, ly->conv_w), icl_params_grad(p, ly->conv_b),
                               ws + L.du, blk + L.xz, 2 * E, icl_params_data(p, ly->conv_w),
                               icl_params_data(p, ly->conv_b), B, T, E, mb->cfg.conv, ws + L.scratch);
    lap(mb, PROF_CONV);
    /* in_proj: dW_in += dxz^T h; dh = dxz W_in (into mix) */
    if (!rc)
      rc = be->gemm(ctx, 1, 0, 2 * E, d, bt, 1.0f, ws + L.dxz, 2 * E, 0, ws + L.h, d, 0, 1.0f,
                    icl_params_grad(p, ly->in_proj), d, 0, 1);
    if (!rc)
      rc = be->gemm(ctx, 0, 0, bt, d, 2 * E, 1.0f, ws + L.dxz, 2 * E, 0, icl_params_data(p, ly->in_proj), d, 0, 0.0f,
                    ws + L.mix, d, 0, 1);
    lap(mb, PROF_GEMM);
    /* norm: dr += RMSNorm backward of dh (the residual path's dr is already there) */
    if (!rc)
      rc = be->nn->rmsnorm_bwd(ctx, dr, icl_params_grad(p, ly->norm), ws + L.mix, blk + L.r,
                               icl_params_data(p, ly->norm), blk + L.rstd, bt, d, 1);
    lap(mb, PROF_OTHER);
  }
  return rc;
}
