/* Mamba's CPU kernels (causal conv + SiLU, selective scan + gate, forward
 * and checkpointed backward) against naive double-precision loops and by
 * finite differences of every input, and their independence of the thread
 * count. The whole model is in test_mamba_model.c. */
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "harness.h"
#include "models/mamba.h"
#include "models/mamba_kernels.h"
#include "nn/gradcheck.h"

static float *zeros(int64_t n) { return calloc((size_t)n, sizeof(float)); }

static double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* Each kernel input is checked twice by finite differences (gradcheck.h):
 * (1) of a naive double-precision loop: no rounding noise, so the float
 *     analytic gradient must agree to float accuracy (max rel < 1e-3);
 * (2) of the float kernel itself: its rounding, divided by the step, leaves
 *     ~1e-5 absolute noise in a derivative, so the per-input norm of the
 *     error is what is bounded (norm rel < 1e-2; a wrong formula gives ~1). */
typedef struct grad_in {
  const char *name;
  float *x, *g;
  int64_t n;
} grad_in;

static void check_inputs(icl_ctx *ctx, const char *what, const grad_in *in, int nin, icl_gradcheck_fn ref,
                         icl_gradcheck_fn kern, void *ud) {
  icl_gradcheck_opts o = icl_gradcheck_defaults();
  o.max_checks = 400;
  for (int i = 0; i < nin; i++) {
    icl_gradcheck_report r, q;
    CHECK_OK(ctx, icl_gradcheck(ctx, in[i].x, in[i].g, in[i].n, ref, ud, &o, &r));
    CHECK_MSG(r.max_rel < 1e-3, "%s d%s vs reference FD: rel err %.3g at %lld (numeric %.6g, analytic %.6g)", what,
              in[i].name, r.max_rel, (long long)r.worst, r.worst_numeric, r.worst_analytic);
    CHECK_OK(ctx, icl_gradcheck(ctx, in[i].x, in[i].g, in[i].n, kern, ud, &o, &q));
    CHECK_MSG(q.norm_rel < 1e-2, "%s d%s vs kernel FD: norm rel err %.3g", what, in[i].name, q.norm_rel);
    printf("  %s d%-9s ref FD: max rel %.1e | kernel FD: norm rel %.1e (%lld checked)\n", what, in[i].name, r.max_rel,
           q.norm_rel, (long long)r.checked);
  }
}

/* ---- conv ------------------------------------------------------------------ */

typedef struct conv_case {
  int64_t B, T, E, K, ldx;
  float *x, *w, *b, *g, *u;
} conv_case;

static int conv_loss(icl_ctx *ctx, void *ud, double *loss) {
  conv_case *c = ud;
  int rc = icl_cpu_mamba_kernels.conv_fwd(ctx, c->u, c->x, c->ldx, c->w, c->b, c->B, c->T, c->E, c->K);
  *loss = dot(c->u, c->g, c->B * c->T * c->E);
  return rc;
}

/* naive: u = silu(b + sum_k w x_{t-K+1+k}); loss = sum g u; *err: max rel error of the kernel's u */
static double conv_ref(const conv_case *c, double *err) {
  double loss = 0;
  if (err) *err = 0;
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t t = 0; t < c->T; t++)
      for (int64_t e = 0; e < c->E; e++) {
        double a = c->b[e];
        for (int64_t k = 0; k < c->K; k++)
          if (t - c->K + 1 + k >= 0) a += (double)c->w[e * c->K + k] * c->x[(b * c->T + t - c->K + 1 + k) * c->ldx + e];
        double want = a / (1 + exp(-a));
        loss += want * c->g[(b * c->T + t) * c->E + e];
        if (err) *err = fmax(*err, fabs(c->u[(b * c->T + t) * c->E + e] - want) / fmax(fabs(want), 1e-2));
      }
  return loss;
}

static int conv_ref_loss(icl_ctx *ctx, void *ud, double *loss) {
  (void)ctx;
  *loss = conv_ref(ud, NULL);
  return 0;
}

static void test_conv(void) {
  icl_ctx *ctx = icl_t_ctx();
  conv_case c = {2, 9, 11, 4, 22, NULL, NULL, NULL, NULL, NULL};
  int64_t bt = c.B * c.T, nx = bt * c.ldx;
  c.x = icl_t_randn(nx, 1, 0, 1), c.w = icl_t_randn(c.E * c.K, 0.5f, 0, 2), c.b = icl_t_randn(c.E, 0.5f, 0, 3);
  c.g = icl_t_randn(bt * c.E, 1, 0, 4), c.u = zeros(bt * c.E);
  double loss, err;
  CHECK_OK(ctx, conv_loss(ctx, &c, &loss));
  conv_ref(&c, &err);
  CHECK_MSG(err < 1e-5, "conv forward vs naive: rel err %.3g", err);
  float *dx = zeros(nx), *dw = zeros(c.E * c.K), *db = zeros(c.E), *du = malloc(sizeof(float) * (size_t)(bt * c.E));
  float *scratch = zeros(icl_cpu_mamba_kernels.conv_bwd_scratch(c.B, c.E, c.K));
  memcpy(du, c.g, sizeof(float) * (size_t)(bt * c.E));
  CHECK_OK(ctx, icl_cpu_mamba_kernels.conv_bwd(ctx, dx, dw, db, du, c.x, c.ldx, c.w, c.b, c.B, c.T, c.E, c.K,
                                               scratch));
  /* only the x columns [0, E) of each row are inputs; the rest must stay untouched (0) */
  for (int64_t r = 0; r < bt; r++)
    for (int64_t e = c.E; e < c.ldx; e++) CHECK(dx[r * c.ldx + e] == 0);
  grad_in in[] = {{"x", c.x, dx, nx}, {"w", c.w, dw, c.E * c.K}, {"b", c.b, db, c.E}};
  check_inputs(ctx, "conv", in, 3, conv_ref_loss, conv_loss, &c);
  free(c.x), free(c.w), free(c.b), free(c.g), free(c.u), free(dx), free(dw), free(db), free(du), free(scratch);
  icl_ctx_free(ctx);
}

/* ---- scan ------------------------------------------------------------------ */

typedef struct scan_case {
  icl_mamba_scan s;
  float *u, *dt, *bias, *bc, *z, *A_log, *D, *out, *g, *ckpt;
} scan_case;

static int scan_loss(icl_ctx *ctx, void *ud, double *loss) {
  scan_case *c = ud;
  int rc = icl_cpu_mamba_kernels.scan_fwd(ctx, &c->s);
  *loss = dot(c->out, c->g, c->s.B * c->s.T * c->s.E);
  return rc;
}

/* naive double-precision scan: returns loss = sum g out; with err != NULL also the max
 * relative errors of the kernel's out and checkpoints (relative to max(|value|, 1e-2):
 * the values are O(1)) */
static double scan_ref(const scan_case *c, double *err, double *ckpt_err) {
  const icl_mamba_scan *s = &c->s;
  const int64_t N = s->N, E = s->E, nck = icl_mamba_n_ckpt(s->T, s->Tc);
  double loss = 0;
  if (err) *err = *ckpt_err = 0;
  double *st = malloc(sizeof(double) * (size_t)N);
  for (int64_t b = 0; b < s->B; b++)
    for (int64_t e = 0; e < E; e++) {
      for (int64_t n = 0; n < N; n++) st[n] = 0;
      for (int64_t t = 0; t < s->T; t++) {
        int64_t row = b * s->T + t;
        double r = (double)c->dt[row * E + e] + c->bias[e];
        double delta = r > 20 ? r : log1p(exp(r)), u = c->u[row * E + e], y = 0;
        for (int64_t n = 0; n < N; n++) {
          double A = -exp((double)c->A_log[e * N + n]);
          st[n] = exp(delta * A) * st[n] + delta * c->bc[row * 2 * N + n] * u;
          y += c->bc[row * 2 * N + N + n] * st[n];
          if (err && (t + 1) % s->Tc == 0 && t / s->Tc < nck) {
            double got = c->s.ckpt[((b * nck + t / s->Tc) * N + n) * E + e];
            *ckpt_err = fmax(*ckpt_err, fabs(got - st[n]) / fmax(fabs(st[n]), 1e-2));
          }
        }
        y += c->D[e] * u;
        double z = c->z[row * E + e], want = y * z / (1 + exp(-z));
        loss += want * c->g[row * E + e];
        if (err) *err = fmax(*err, fabs(c->out[row * E + e] - want) / fmax(fabs(want), 1e-2));
      }
    }
  free(st);
  return loss;
}

static int scan_ref_loss(icl_ctx *ctx, void *ud, double *loss) {
  (void)ctx;
  *loss = scan_ref(ud, NULL, NULL);
  return 0;
}

static void scan_case_init(scan_case *c, int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc) {
  memset(c, 0, sizeof *c);
  int64_t bt = B * T;
  c->u = icl_t_randn(bt * E, 1, 0, 10);
  c->dt = icl_t_randn(bt * E, 0.7f, 0, 11);
  c->bias = icl_t_randn(E, 0.5f, -1.5f, 12);
  c->bc = icl_t_randn(bt * 2 * N, 1, 0, 13);
  c->z = icl_t_randn(bt * E, 1, 0, 14);
  c->A_log = icl_t_randn(E * N, 0.3f, 0, 15);
  for (int64_t i = 0; i < E * N; i++) c->A_log[i] += logf((float)(i % N + 1));
  c->D = icl_t_randn(E, 1, 0, 16);
  c->g = icl_t_randn(bt * E, 1, 0, 17);
  c->out = zeros(bt * E);
  c->ckpt = zeros(B * (icl_mamba_n_ckpt(T, Tc) + 1) * N * E);
  icl_mamba_scan *s = &c->s;
  s->B = B, s->T = T, s->E = E, s->N = N, s->Tc = Tc;
  s->u = c->u, s->dt = c->dt, s->dt_bias = c->bias, s->bmat = c->bc, s->cmat = c->bc + N, s->ld_bc = 2 * N;
  s->z = c->z, s->ld_z = E, s->A_log = c->A_log, s->D = c->D, s->out = c->out, s->ckpt = c->ckpt;
}

static void scan_case_free(scan_case *c) {
  free(c->u), free(c->dt), free(c->bias), free(c->bc), free(c->z), free(c->A_log), free(c->D), free(c->g);
  free(c->out), free(c->ckpt);
}

static void check_scan(int64_t B, int64_t T, int64_t E, int64_t N, int64_t Tc) {
  icl_ctx *ctx = icl_t_ctx();
  scan_case c;
  scan_case_init(&c, B, T, E, N, Tc);
  const int64_t bt = B * T;
  double loss, err, ck_err;
  CHECK_OK(ctx, scan_loss(ctx, &c, &loss));
  scan_ref(&c, &err, &ck_err);
  CHECK_MSG(err < 1e-4 && ck_err < 1e-4, "scan forward vs naive (E=%lld): out %.3g, checkpoints %.3g", (long long)E,
            err, ck_err);
  float *du = zeros(bt * E), *ddt = zeros(bt * E), *dz = zeros(bt * E), *dbc = zeros(bt * 2 * N);
  float *dA = zeros(E * N), *dD = zeros(E), *dbias = zeros(E), *out2 = zeros(bt * E);
  int64_t nsc = icl_cpu_mamba_kernels.scan_bwd_scratch(B, T, E, N, Tc);
  float *scratch = zeros(nsc);
  icl_mamba_scan s = c.s;
  s.out = out2, s.dout = c.g, s.du = du, s.ddt = ddt, s.dz = dz, s.dbmat = dbc, s.dcmat = dbc + N;
  s.dA_log = dA, s.dD = dD, s.scratch = scratch, s.scratch_floats = nsc;
  CHECK_OK(ctx, icl_cpu_mamba_kernels.scan_bwd(ctx, &s));
  /* the backward recomputes the forward output bit for bit */
  CHECK(memcmp(out2, c.out, sizeof(float) * (size_t)(bt * E)) == 0);
  for (int64_t r = 0; r < bt; r++)
    for (int64_t e = 0; e < E; e++) dbias[e] += ddt[r * E + e];
  grad_in in[] = {{"u", c.u, du, bt * E},        {"dt", c.dt, ddt, bt * E},  {"dt_bias", c.bias, dbias, E},
                  {"B|C", c.bc, dbc, bt * 2 * N}, {"z(gate)", c.z, dz, bt * E}, {"A_log", c.A_log, dA, E * N},
                  {"D", c.D, dD, E}};
  char what[32];
  snprintf(what, sizeof what, "scan E=%lld", (long long)E);
  check_inputs(ctx, what, in, 7, scan_ref_loss, scan_loss, &c);
  free(du), free(ddt), free(dz), free(dbc), free(dA), free(dD), free(dbias), free(out2), free(scratch);
  scan_case_free(&c);
  icl_ctx_free(ctx);
}

/* E = 13: one group with a partial vector; E = 70: two groups, the second a partial vector */
static void test_scan_small(void) { check_scan(2, 11, 13, 5, 3); }
static void test_scan_groups(void) { check_scan(3, 9, 70, 4, 4); }

/* conv and scan backward give the same bits with 1, 2 and 3 threads */
static void test_kernel_threads(void) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t B = 3, T = 17, E = 70, N = 6, Tc = 4, K = 4, bt = B * T;
  scan_case c;
  scan_case_init(&c, B, T, E, N, Tc);
  double loss;
  CHECK_OK(ctx, scan_loss(ctx, &c, &loss));
  int64_t nsc = icl_cpu_mamba_kernels.scan_bwd_scratch(B, T, E, N, Tc) * 3; /* room for 3 threads' slots */
  int64_t nout = 4 * bt * E + bt * 2 * N + E * N + E + bt * E + E * K + E;
  float *ref = NULL;
  float *x = icl_t_randn(bt * E, 1, 0, 40), *w = icl_t_randn(E * K, 0.5f, 0, 41), *cb = icl_t_randn(E, 0.5f, 0, 42);
  for (int threads = 1; threads <= 3; threads++) {
    icl_set_num_threads(ctx, threads);
    float *buf = zeros(nout), *scratch = zeros(nsc);
    float *p = buf;
    icl_mamba_scan s = c.s;
    s.out = p, p += bt * E;
    s.dout = c.g, s.du = p, p += bt * E;
    s.ddt = p, p += bt * E;
    s.dz = p, p += bt * E;
    s.dbmat = p, s.dcmat = p + N, p += bt * 2 * N;
    s.dA_log = p, p += E * N;
    s.dD = p, p += E;
    s.scratch = scratch, s.scratch_floats = nsc;
    CHECK_OK(ctx, icl_cpu_mamba_kernels.scan_bwd(ctx, &s));
    float *dx = p, *dw = p + bt * E, *db = dw + E * K, *du = malloc(sizeof(float) * (size_t)(bt * E));
    memcpy(du, c.g, sizeof(float) * (size_t)(bt * E));
    CHECK_OK(ctx, icl_cpu_mamba_kernels.conv_bwd(ctx, dx, dw, db, du, x, E, w, cb, B, T, E, K, scratch));
    free(du);
    free(scratch);
    if (!ref) ref = buf;
    else {
      CHECK_MSG(memcmp(ref, buf, sizeof(float) * (size_t)nout) == 0, "kernels differ with %d threads", threads);
      free(buf);
    }
  }
  free(ref), free(x), free(w), free(cb);
  scan_case_free(&c);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_conv);
  ICL_RUN(test_scan_small);
  ICL_RUN(test_scan_groups);
  ICL_RUN(test_kernel_threads);
  return icl_t_finish("test_mamba");
}
