/* Every nn module's backward against finite differences, and AdamW against
 * an independent double-precision transcription of torch.optim.AdamW. */
#include <string.h>

#include "harness.h"
#include "nn/gradcheck.h"
#include "nn/module.h"
#include "ops/ops.h"
#include "optim/adamw.h"

/* loss = sum(module(x) * R): its gradient wrt the output is R */
typedef struct probe {
  icl_module *m;
  icl_tensor *x, *r;
} probe;

static int probe_loss(icl_ctx *ctx, void *ud, double *out) {
  probe *p = ud;
  icl_tensor *y = icl_module_forward(ctx, p->m, p->x);
  if (!y) return ctx->errcode;
  const float *a = icl_tensor_data(y), *b = icl_tensor_data(p->r);
  double s = 0;
  for (int64_t i = 0; i < icl_numel(y); i++) s += (double)a[i] * b[i];
  icl_tensor_free(ctx, y);
  *out = s;
  return ICL_OK;
}

static void check_module(icl_ctx *ctx, icl_module *m, int64_t rows, int64_t in, int64_t out, const char *what) {
  int64_t sx[3] = {2, rows / 2, in}, sy[3] = {2, rows / 2, out};
  probe p = {m, icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 3, sx, 0, 1, 11, 0),
             icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 3, sy, 0, 1, 12, 0)};
  icl_module_zero_grad(ctx, m);
  icl_tensor *y = icl_module_forward(ctx, m, p.x);
  icl_tensor *dx = y ? icl_module_backward(ctx, m, p.x, p.r) : NULL;
  CHECK_MSG(dx != NULL, "%s: backward failed: %s", what, icl_last_error(ctx));
  if (!dx) return;
  icl_gradcheck_report rep;
  CHECK_OK(ctx, icl_gradcheck(ctx, icl_tensor_data(p.x), icl_tensor_data(dx), icl_numel(p.x), probe_loss, &p, NULL,
                              &rep));
  CHECK_MSG(rep.max_rel < 1e-3, "%s: input gradient rel err %.3g at %lld (num %.6g, ana %.6g)", what, rep.max_rel,
            (long long)rep.worst, rep.worst_numeric, rep.worst_analytic);
  for (int k = 0; k < m->nparams; k++) {
    CHECK_OK(ctx, icl_gradcheck(ctx, icl_tensor_data(m->param[k]), icl_tensor_data(m->grad[k]),
                                icl_numel(m->param[k]), probe_loss, &p, NULL, &rep));
    CHECK_MSG(rep.max_rel < 1e-3, "%s: %s gradient rel err %.3g at %lld (num %.6g, ana %.6g)", what, m->pname[k],
              rep.max_rel, (long long)rep.worst, rep.worst_numeric, rep.worst_analytic);
  }
  icl_tensor_free(ctx, y);
  icl_tensor_free(ctx, dx);
  icl_tensor_free(ctx, p.x);
  icl_tensor_free(ctx, p.r);
}

static void test_linear_grad(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_module *m = icl_linear_new(ctx, 7, 5, 1, ICL_CPU, 3);
  check_module(ctx, m, 6, 7, 5, "Linear(bias)");
  icl_module_free(ctx, m);
  m = icl_linear_new(ctx, 4, 9, 0, ICL_CPU, 4);
  check_module(ctx, m, 4, 4, 9, "Linear(no bias)");
  icl_module_free(ctx, m);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

static void test_rmsnorm_grad(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_module *m = icl_rmsnorm_new(ctx, 12, 1e-6f, ICL_CPU);
  /* non-trivial weights so dw and the w-scaled dx paths are exercised */
  int64_t s[1] = {12};
  icl_tensor *w = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, s, 1, 0.3, 5, 0);
  icl_copy_into(ctx, m->param[0], w);
  check_module(ctx, m, 6, 12, 12, "RMSNorm");
  icl_tensor_free(ctx, w);
  icl_module_free(ctx, m);
  icl_ctx_free(ctx);
}

static void test_silu_swiglu_grad(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_module *m = icl_silu_new(ctx);
  check_module(ctx, m, 4, 5, 5, "SiLU");
  icl_module_free(ctx, m);
  m = icl_swiglu_new(ctx, 6, 16, ICL_CPU, 9);
  check_module(ctx, m, 6, 6, 6, "SwiGLU");
  icl_module_free(ctx, m);
  icl_ctx_free(ctx);
}

typedef struct lprobe {
  icl_loss_kind kind;
  icl_tensor *p, *t;
} lprobe;

static int loss_fn(icl_ctx *ctx, void *ud, double *out) {
  lprobe *l = ud;
  icl_tensor *v = icl_loss_fwd(ctx, l->kind, l->p, l->t, NULL);
  if (!v) return ctx->errcode;
  *out = *(float *)icl_tensor_data(v);
  icl_tensor_free(ctx, v);
  return ICL_OK;
}

static void test_losses_grad(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t s[2] = {3, 7};
  for (int kind = 0; kind < 2; kind++) {
    lprobe l = {(icl_loss_kind)kind, icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 2, s, 0, 2, 1, 0), NULL};
    if (kind == ICL_LOSS_MSE) {
      l.t = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 2, s, 0, 1, 2, 0);
    } else { /* labels in {-1, +1} */
      icl_tensor *b = icl_op_random(ctx, ICL_DIST_BERNOULLI, ICL_F32, ICL_CPU, 2, s, 0.5, 0, 2, 0);
      l.t = icl_op_unary(ctx, ICL_UN_AFFINE, b, 2, -1);
      icl_tensor_free(ctx, b);
    }
    icl_tensor *g = NULL;
    icl_tensor *v = icl_loss_fwd(ctx, l.kind, l.p, l.t, &g);
    CHECK(v && g);
    icl_gradcheck_report rep;
    CHECK_OK(ctx, icl_gradcheck(ctx, icl_tensor_data(l.p), icl_tensor_data(g), 21, loss_fn, &l, NULL, &rep));
    CHECK_MSG(rep.max_rel < 1e-3, "loss %d: rel err %.3g", kind, rep.max_rel);
    /* value check by hand on element 0 */
    const float *p = icl_tensor_data(l.p), *t = icl_tensor_data(l.t);
    double want = 0;
    for (int i = 0; i < 21; i++)
      want += kind == 0 ? (p[i] - t[i]) * (p[i] - t[i]) : log1p(exp(-(double)t[i] * p[i]));
    CHECK_CLOSE(*(float *)icl_tensor_data(v), want / 21, 1e-5, 1e-7);
    icl_tensor_free(ctx, v);
    icl_tensor_free(ctx, g);
    icl_tensor_free(ctx, l.p);
    icl_tensor_free(ctx, l.t);
  }
  int64_t s2[1] = {4};
  icl_tensor *a = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 2, s), *b = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, s2);
  CHECK(icl_loss_fwd(ctx, ICL_LOSS_MSE, a, b, NULL) == NULL && ctx->errcode == ICL_ESHAPE);
  icl_tensor_free(ctx, a);
  icl_tensor_free(ctx, b);
  icl_ctx_free(ctx);
}

/* torch.optim.AdamW, step by step in double, with HF's linear schedule and
 * torch's clip_grad_norm_ */
static void test_adamw_matches_reference(void) {
  icl_ctx *ctx = icl_t_ctx();
  enum { N = 37, STEPS = 6 };
  int64_t n = N;
  icl_tensor *p = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, &n, 0, 1, 21, 0);
  icl_tensor *g = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, &n);
  icl_adamw_cfg cfg = icl_adamw_defaults(0.1f);
  cfg.weight_decay = 0.05f;
  cfg.max_grad_norm = 1.0f;
  cfg.sched = (icl_sched){ICL_SCHED_LINEAR, 0.1f, 2, 6};
  icl_adamw opt;
  CHECK_OK(ctx, icl_adamw_init(ctx, &opt, p, g, cfg));
  double rp[N], rm[N] = {0}, rv[N] = {0};
  float *pp = icl_tensor_data(p), *gg = icl_tensor_data(g);
  for (int i = 0; i < N; i++) rp[i] = pp[i];
  for (int t = 0; t < STEPS; t++) {
    icl_tensor *gr = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, &n, 0, 0.5, 22, (uint64_t)t);
    memcpy(gg, icl_tensor_data(gr), sizeof(float) * N);
    icl_tensor_free(ctx, gr);
    CHECK_OK(ctx, icl_adamw_step(ctx, &opt));
    double norm = 0;
    for (int i = 0; i < N; i++) norm += (double)gg[i] * gg[i];
    norm = sqrt(norm);
    double clip = fmin(1.0, 1.0 / (norm + 1e-6));
    double lr = t < 2 ? 0.1 * t / 2.0 : 0.1 * fmax(0.0, (6.0 - t) / 4.0);
    for (int i = 0; i < N; i++) {
      double gi = gg[i] * clip;
      rp[i] *= 1 - lr * 0.05;
      rm[i] = 0.9 * rm[i] + 0.1 * gi;
      rv[i] = 0.999 * rv[i] + 0.001 * gi * gi;
      double bc1 = 1 - pow(0.9, t + 1), bc2 = 1 - pow(0.999, t + 1);
      rp[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + 1e-8);
    }
  }
  double worst = 0;
  for (int i = 0; i < N; i++) worst = fmax(worst, fabs(rp[i] - pp[i]));
  CHECK_MSG(worst < 2e-6, "adamw differs from the reference by %.3g", worst);
  float sc[ICL_OPT_NSCALARS];
  CHECK_OK(ctx, icl_adamw_scalars(ctx, &opt, sc));
  CHECK(sc[ICL_OPT_STEPS] == STEPS && sc[ICL_OPT_BAD] == 0);
  /* a NaN gradient is caught, recorded with its step, and skips the update */
  float before = pp[3];
  gg[5] = NAN;
  CHECK_OK(ctx, icl_adamw_step(ctx, &opt));
  CHECK_OK(ctx, icl_adamw_scalars(ctx, &opt, sc));
  CHECK(sc[ICL_OPT_BAD] == STEPS + 1 && pp[3] == before);
  icl_adamw_free(ctx, &opt);
  icl_tensor_free(ctx, p);
  icl_tensor_free(ctx, g);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_linear_grad);
  ICL_RUN(test_rmsnorm_grad);
  ICL_RUN(test_silu_swiglu_grad);
  ICL_RUN(test_losses_grad);
  ICL_RUN(test_adamw_matches_reference);
  return icl_t_finish("test_nn");
}
