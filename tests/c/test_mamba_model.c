/* The whole Mamba in-context model: its forward against an independent
 * double-precision implementation, every parameter gradient by finite
 * differences (with T > T_c so the checkpointed backward is exercised), the
 * invariance of the gradients to T_c, a thread count that grows between
 * forward and backward, and the initialisation rules and names. */
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "harness.h"
#include "models/mamba.h"
#include "nn/gradcheck.h"

/* ---- whole model ------------------------------------------------------------ */

/* An independent double-precision forward of the whole in-context Mamba
 * model (spec §6.2-6.3), straight loops over the float parameters. */
static const float *P(const icl_model *m, const char *fmt, int l) {
  char nm[ICL_PARAM_NAME_MAX];
  snprintf(nm, sizeof nm, fmt, l);
  return icl_params_data(&m->params, icl_params_find(&m->params, nm));
}

static void ref_rmsnorm(double *y, const double *x, const float *w, int64_t rows, int64_t d, double eps) {
  for (int64_t r = 0; r < rows; r++) {
    double ss = 0;
    for (int64_t j = 0; j < d; j++) ss += x[r * d + j] * x[r * d + j];
    double rs = 1 / sqrt(ss / (double)d + eps);
    for (int64_t j = 0; j < d; j++) y[r * d + j] = w[j] * x[r * d + j] * rs;
  }
}

/* y[r, o] = sum_i x[r, i] W[o, i] */
static void ref_linear(double *y, const double *x, const float *W, int64_t rows, int64_t in, int64_t out) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out; o++) {
      double s = 0;
      for (int64_t i = 0; i < in; i++) s += x[r * in + i] * W[o * in + i];
      y[r * out + o] = s;
    }
}

static double ref_model_loss(const icl_model *m, const float *xs, const float *ys, int64_t B, int64_t Np, float *pred) {
  const icl_mamba_cfg *c = icl_mamba_config(m);
  const int64_t T = 2 * Np, Dn = m->n_dims, d = c->hidden, E = c->expand * d, N = c->state, R = c->dt_rank;
  const int64_t K = c->conv, W = R + 2 * N, bt = B * T;
  double *tok = calloc((size_t)(bt * Dn), sizeof(double)), *r = malloc(sizeof(double) * (size_t)(bt * d));
  double *h = malloc(sizeof(double) * (size_t)(bt * d)), *xz = malloc(sizeof(double) * (size_t)(bt * 2 * E));
  double *u = malloc(sizeof(double) * (size_t)(bt * E)), *xd = malloc(sizeof(double) * (size_t)(bt * W));
  double *dt = malloc(sizeof(double) * (size_t)(bt * E)), *o = malloc(sizeof(double) * (size_t)(bt * E));
  double *s = malloc(sizeof(double) * (size_t)N);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < Np; i++) {
      for (int64_t k = 0; k < Dn; k++) tok[(b * T + 2 * i) * Dn + k] = xs[(b * Np + i) * Dn + k];
      tok[(b * T + 2 * i + 1) * Dn] = ys[b * Np + i];
    }
  ref_linear(r, tok, P(m, "read_in.weight%.0d", 0), bt, Dn, d);
  for (int l = 0; l < c->layers; l++) {
    ref_rmsnorm(h, r, P(m, "layers.%d.norm.weight", l), bt, d, c->eps);
    ref_linear(xz, h, P(m, "layers.%d.mixer.in_proj.weight", l), bt, d, 2 * E);
    const float *cw = P(m, "layers.%d.mixer.conv1d.weight", l), *cb = P(m, "layers.%d.mixer.conv1d.bias", l);
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < E; e++) {
          double a = cb[e];
          for (int64_t k = 0; k < K; k++)
            if (t - K + 1 + k >= 0) a += cw[e * K + k] * xz[(b * T + t - K + 1 + k) * 2 * E + e];
          u[(b * T + t) * E + e] = a / (1 + exp(-a));
        }
    ref_linear(xd, u, P(m, "layers.%d.mixer.x_proj.weight", l), bt, E, W);
    const float *wdt = P(m, "layers.%d.mixer.dt_proj.weight", l), *bdt = P(m, "layers.%d.mixer.dt_proj.bias", l);
    for (int64_t row = 0; row < bt; row++)
      for (int64_t e = 0; e < E; e++) {
        double a = bdt[e];
        for (int64_t k = 0; k < R; k++) a += wdt[e * R + k] * xd[row * W + k];
        dt[row * E + e] = a > 20 ? a : log1p(exp(a));
      }
    const float *Alog = P(m, "layers.%d.mixer.A_log", l), *Dp = P(m, "layers.%d.mixer.D", l);
    for (int64_t b = 0; b < B; b++)
      for (int64_t e = 0; e < E; e++) {
        for (int64_t n = 0; n < N; n++) s[n] = 0;
        for (int64_t t = 0; t < T; t++) {
          int64_t row = b * T + t;
          double delta = dt[row * E + e], uu = u[row * E + e], y = Dp[e] * uu, z = xz[row * 2 * E + E + e];
          for (int64_t n = 0; n < N; n++) {
            s[n] = exp(-delta * exp((double)Alog[e * N + n])) * s[n] + delta * xd[row * W + R + n] * uu;
            y += xd[row * W + R + N + n] * s[n];
          }
          o[row * E + e] = y * z / (1 + exp(-z));
        }
      }
    ref_linear(h, o, P(m, "layers.%d.mixer.out_proj.weight", l), bt, E, d);
    for (int64_t i = 0; i < bt * d; i++) r[i] += h[i];
  }
  ref_rmsnorm(h, r, P(m, "norm_f.weight%.0d", 0), bt, d, c->eps);
  const float *wo = P(m, "read_out.weight%.0d", 0);
  double loss = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < Np; i++) {
      double pr = 0;
      for (int64_t j = 0; j < d; j++) pr += wo[j] * h[(b * T + 2 * i) * d + j];
      if (pred) pred[b * Np + i] = (float)pr;
      loss += (pr - ys[b * Np + i]) * (pr - ys[b * Np + i]);
    }
  free(tok), free(r), free(h), free(xz), free(u), free(xd), free(dt), free(o), free(s);
  return loss / (double)(B * Np);
}

typedef struct probe {
  icl_model *m;
  const float *xs, *ys;
  int64_t B, N;
} probe;

static int ref_loss_fn(icl_ctx *ctx, void *ud, double *out) {
  (void)ctx;
  probe *p = ud;
  *out = ref_model_loss(p->m, p->xs, p->ys, p->B, p->N, NULL);
  return 0;
}

static int engine_loss_fn(icl_ctx *ctx, void *ud, double *out) {
  probe *p = ud;
  float pred[256];
  if (icl_model_forward(ctx, p->m, p->xs, p->ys, p->B, p->N, pred, 0)) return ctx->errcode;
  double s = 0;
  for (int64_t i = 0; i < p->B * p->N; i++) s += ((double)pred[i] - p->ys[i]) * ((double)pred[i] - p->ys[i]);
  *out = s / (double)(p->B * p->N);
  return 0;
}

static void scale_param(icl_model *m, const char *fmt, int l, float scale, float shift) {
  char nm[ICL_PARAM_NAME_MAX];
  snprintf(nm, sizeof nm, fmt, l);
  int i = icl_params_find(&m->params, nm);
  float *p = icl_params_data(&m->params, i);
  for (int64_t k = 0; k < m->params.info[i].numel; k++) p[k] = p[k] * scale + shift;
}

/* The tiny model of the gradient checks: D=3, hidden 8, state 4, 2 layers,
 * T_c = 4. Parameters moved off the init so that every path carries a
 * gradient well above float32 rounding: read-in/out x25 (std 0.5), dt bias
 * near 0 (Δ ~ 0.7 instead of 1e-3..0.1), B/C/dt projections x3, D x0.3. */
static icl_model *tiny_model(icl_ctx *ctx, int64_t chunk) {
  icl_mamba_cfg c = icl_mamba_defaults(8);
  c.state = 4, c.layers = 2, c.chunk = chunk;
  icl_model *m = icl_mamba_model_new(ctx, 3, &c, ICL_CPU, 5);
  if (!m) return NULL;
  scale_param(m, "read_in.weight%.0d", 0, 25, 0);
  scale_param(m, "read_out.weight%.0d", 0, 25, 0);
  for (int l = 0; l < 2; l++) {
    scale_param(m, "layers.%d.mixer.dt_proj.bias", l, 0.1f, 0.3f);
    scale_param(m, "layers.%d.mixer.x_proj.weight", l, 3, 0);
    scale_param(m, "layers.%d.mixer.dt_proj.weight", l, 3, 0);
    scale_param(m, "layers.%d.mixer.D", l, 0.3f, 0);
  }
  return m;
}

static void test_model_gradcheck(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_model *m = tiny_model(ctx, 4);
  CHECK(m != NULL);
  if (!m) return;
  const int64_t B = 2, N = 7; /* 14 tokens > T_c = 4: three checkpoints per row */
  float *xs = icl_t_randn(B * N * 3, 1, 0, 20), *ys = icl_t_randn(B * N, 1, 0, 21);
  float loss, pe[14], pr[14];
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, B, N, ICL_LOSS_MSE, &loss));
  probe p = {m, xs, ys, B, N};
  double want = ref_model_loss(m, xs, ys, B, N, pr);
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pe, 0));
  CHECK_CLOSE(loss, want, 1e-5, 1e-7);
  double perr = icl_t_maxrel(pe, pr, B * N, 1e-2);
  CHECK_MSG(perr < 1e-5, "predictions vs the double-precision reference: rel err %.3g", perr);
  printf("  forward vs double reference: predictions max rel %.2e, loss %.9g vs %.9g\n", perr, loss, want);
  float *g = malloc(sizeof(float) * (size_t)m->params.total);
  memcpy(g, icl_tensor_data(m->params.grad), sizeof(float) * (size_t)m->params.total);
  icl_gradcheck_opts o = icl_gradcheck_defaults();
  o.max_checks = 1000;
  double worst_ref = 0, worst_eng = 0;
  for (int i = 0; i < m->params.n; i++) {
    const icl_param_info *e = &m->params.info[i];
    icl_gradcheck_report r, q;
    float *x = icl_params_data(&m->params, i);
    /* (1) against finite differences of the double-precision reference: exact to float rounding */
    CHECK_OK(ctx, icl_gradcheck(ctx, x, g + e->offset, e->numel, ref_loss_fn, &p, &o, &r));
    CHECK_MSG(r.max_rel < 1e-3, "model d%s vs reference FD: rel err %.3g at %lld (numeric %.6g, analytic %.6g)",
              e->name, r.max_rel, (long long)r.worst, r.worst_numeric, r.worst_analytic);
    /* (2) against finite differences of the engine's own float32 forward, whose rounding
     * (~1e-5 absolute in a derivative here) bounds what the per-tensor norm can show */
    CHECK_OK(ctx, icl_gradcheck(ctx, x, g + e->offset, e->numel, engine_loss_fn, &p, &o, &q));
    CHECK_MSG(q.norm_rel < 2e-2, "model d%s vs engine FD: norm rel err %.3g", e->name, q.norm_rel);
    printf("  d%-31s ref FD: max rel %.1e | engine FD: norm rel %.1e (%lld, |g| %.1e)\n", e->name, r.max_rel,
           q.norm_rel, (long long)r.checked, r.scale);
    worst_ref = fmax(worst_ref, r.max_rel);
    worst_eng = fmax(worst_eng, q.norm_rel);
  }
  printf("  model (%d tensors): worst max rel vs reference FD %.2e; worst norm rel vs engine FD %.2e\n",
         m->params.n, worst_ref, worst_eng);
  free(g), free(xs), free(ys);
  icl_model_free(ctx, m);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

/* gradients after one loss_step, copied out */
static float *grads_of(icl_ctx *ctx, icl_model *m, const float *xs, const float *ys, int64_t B, int64_t N,
                       float *loss) {
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, B, N, ICL_LOSS_MSE, loss));
  float *g = malloc(sizeof(float) * (size_t)m->params.total);
  memcpy(g, icl_tensor_data(m->params.grad), sizeof(float) * (size_t)m->params.total);
  return g;
}

/* T_c changes neither the loss nor a single gradient bit; inference and
 * training forwards agree bit for bit. (The engine's GEMM, OpenMP blocks of
 * single-threaded OpenBLAS calls, changes last bits with the block shapes,
 * i.e. with the thread count, so thread-count invariance is checked on the
 * mamba kernels, in test_kernel_threads.) */
static void test_chunk_invariance(void) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t B = 3, N = 21, D = 5;
  float *xs = icl_t_randn(B * N * D, 1, 0, 30), *ys = icl_t_randn(B * N, 1, 0, 31);
  icl_mamba_cfg c1 = icl_mamba_defaults(36); /* E = 72: two channel groups, the second partial */
  c1.layers = 2, c1.chunk = 5;
  icl_mamba_cfg c2 = c1;
  c2.chunk = 1000;
  icl_model *m1 = icl_mamba_model_new(ctx, D, &c1, ICL_CPU, 9), *m2 = icl_mamba_model_new(ctx, D, &c2, ICL_CPU, 9);
  float l1, l2, l3;
  float *g1 = grads_of(ctx, m1, xs, ys, B, N, &l1), *g2 = grads_of(ctx, m2, xs, ys, B, N, &l2);
  float *g3 = grads_of(ctx, m1, xs, ys, B, N, &l3);
  size_t nb = sizeof(float) * (size_t)m1->params.total;
  CHECK(l1 == l2 && l1 == l3);
  CHECK_MSG(memcmp(g1, g2, nb) == 0, "gradients differ between T_c = 5 and T_c = 1000");
  CHECK_MSG(memcmp(g1, g3, nb) == 0, "gradients differ between two identical steps");
  float p1[3 * 21], p2[3 * 21];
  CHECK_OK(ctx, icl_model_forward(ctx, m1, xs, ys, B, N, p1, 1));
  CHECK_OK(ctx, icl_model_forward(ctx, m1, xs, ys, B, N, p2, 0));
  CHECK(memcmp(p1, p2, sizeof p1) == 0);
  free(g1), free(g2), free(g3), free(xs), free(ys);
  icl_model_free(ctx, m1);
  icl_model_free(ctx, m2);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

/* more threads between a training forward and its backward than when the
 * arena was sized: the scan runs on the per-thread slots that exist */
static void test_threads_grow_before_backward(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_set_num_threads(ctx, 1);
  const int64_t B = 2, N = 9, D = 3;
  float *xs = icl_t_randn(B * N * D, 1, 0, 50), *ys = icl_t_randn(B * N, 1, 0, 51), pred[2 * 9], dpred[2 * 9];
  icl_mamba_cfg c = icl_mamba_defaults(16);
  c.layers = 1, c.chunk = 4;
  icl_model *m = icl_mamba_model_new(ctx, D, &c, ICL_CPU, 3);
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred, 1));
  for (int i = 0; i < B * N; i++) dpred[i] = 1.0f;
  icl_set_num_threads(ctx, 4);
  CHECK_OK(ctx, icl_params_zero_grad(ctx, &m->params));
  CHECK_OK(ctx, icl_model_backward(ctx, m, dpred));
  float *g1 = malloc(sizeof(float) * (size_t)m->params.total);
  memcpy(g1, icl_tensor_data(m->params.grad), sizeof(float) * (size_t)m->params.total);
  icl_set_num_threads(ctx, 1);
  CHECK_OK(ctx, icl_params_zero_grad(ctx, &m->params));
  CHECK_OK(ctx, icl_model_backward(ctx, m, dpred));
  CHECK(icl_t_maxrel(g1, icl_tensor_data(m->params.grad), (long)m->params.total, 1e-3) < 1e-5);
  free(g1), free(xs), free(ys);
  icl_model_free(ctx, m);
  icl_ctx_free(ctx);
}

static void test_init_and_names(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_mamba_cfg c = icl_mamba_defaults(256);
  icl_model *m = icl_mamba_model_new(ctx, 20, &c, ICL_CPU, 1);
  CHECK(m != NULL);
  if (!m) return;
  const icl_mamba_cfg *rc = icl_mamba_config(m);
  CHECK(rc && rc->dt_rank == 16 && rc->layers == 32 && rc->state == 16);
  /* standard preset: ~14M non-embedding parameters (experiments.md §5.6 estimate) */
  int64_t n = icl_params_count(&m->params) - 256 * 20 - 256; /* minus read_in [256,20] and read_out [1,256] */
  printf("  standard: %lld backbone parameters\n", (long long)n);
  CHECK(n > 13000000 && n < 15000000);
  const char *names[] = {"layers.0.mixer.in_proj.weight", "layers.31.mixer.conv1d.weight", "layers.3.mixer.A_log",
                         "layers.3.mixer.D", "layers.7.norm.weight", "norm_f.weight", "layers.0.mixer.dt_proj.bias"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) CHECK_MSG(icl_params_find(&m->params, names[i]) >= 0,
                                                                        "no parameter %s", names[i]);
  int ia = icl_params_find(&m->params, "layers.3.mixer.A_log"), id = icl_params_find(&m->params, "layers.3.mixer.D");
  int iw = icl_params_find(&m->params, "layers.31.mixer.conv1d.weight");
  CHECK(m->params.info[ia].decay == 0 && m->params.info[id].decay == 0);
  CHECK(m->params.info[iw].ndim == 3 && m->params.info[iw].shape[1] == 1 && m->params.info[iw].shape[2] == 4);
  const float *A = icl_params_data(&m->params, ia), *D = icl_params_data(&m->params, id);
  for (int e = 0; e < 512; e += 97)
    for (int k = 0; k < 16; k++) CHECK_CLOSE(A[e * 16 + k], log(k + 1.0), 1e-6, 1e-7);
  CHECK(D[0] == 1.0f && D[511] == 1.0f);
  /* softplus(dt bias) log-uniform in [1e-3, 0.1] */
  const float *bdt = icl_params_data(&m->params, icl_params_find(&m->params, "layers.5.mixer.dt_proj.bias"));
  double lo = 1, hi = 0, mean_log = 0;
  for (int e = 0; e < 512; e++) {
    double dt = log1p(exp((double)bdt[e]));
    lo = fmin(lo, dt), hi = fmax(hi, dt), mean_log += log(dt) / 512;
  }
  CHECK(lo >= 1e-3 * 0.999 && hi <= 0.1 * 1.001 && lo < 1.2e-3 && hi > 0.085);
  CHECK_CLOSE(mean_log, 0.5 * (log(1e-3) + log(0.1)), 0.05, 0);
  /* projections U(+-1/sqrt(fan_in)) */
  const float *wi = icl_params_data(&m->params, icl_params_find(&m->params, "layers.0.mixer.in_proj.weight"));
  double mx = 0;
  for (int i = 0; i < 1024 * 256; i++) mx = fmax(mx, fabs(wi[i]));
  CHECK(mx <= 1 / 16.0 && mx > 0.99 / 16);
  icl_model_free(ctx, m);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_model_gradcheck);
  ICL_RUN(test_chunk_invariance);
  ICL_RUN(test_threads_grow_before_backward);
  ICL_RUN(test_init_and_names);
  return icl_t_finish("test_mamba_model");
}
