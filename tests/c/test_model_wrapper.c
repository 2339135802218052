/* The in-context wrapper (tokens, read-in, read-out, loss at the x
 * positions) around a stand-in backbone y = tanh(x), checked by finite
 * differences and against a hand computation of the token layout. */
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "harness.h"
#include "models/model.h"
#include "nn/gradcheck.h"
#include "ops/ops.h"

static int64_t tanh_ws(const icl_model *m, int64_t B, int64_t T, int train) {
  (void)train;
  return B * T * m->hidden; /* keeps the output for backward */
}
static int tanh_fwd(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws, int train) {
  (void)ctx;
  for (int64_t i = 0; i < B * T * m->hidden; i++) {
    y[i] = tanhf(x[i]);
    if (train) ws[i] = y[i];
  }
  return 0;
}
static int tanh_bwd(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws) {
  (void)ctx;
  for (int64_t i = 0; i < B * T * m->hidden; i++) dx[i] = dy[i] * (1 - ws[i] * ws[i]);
  return 0;
}
static const icl_backbone_ops tanh_ops = {"tanh", NULL, tanh_ws, tanh_fwd, tanh_bwd, NULL, NULL, NULL};

typedef struct probe {
  icl_model *m;
  const float *xs, *ys;
  int64_t B, N;
  icl_loss_kind kind;
} probe;

static int eval(icl_ctx *ctx, void *ud, double *out) {
  probe *p = ud;
  float pred[64];
  if (icl_model_forward(ctx, p->m, p->xs, p->ys, p->B, p->N, pred, 0)) return ctx->errcode;
  double s = 0;
  for (int64_t i = 0; i < p->B * p->N; i++) {
    double e = pred[i] - p->ys[i];
    s += p->kind == ICL_LOSS_MSE ? e * e : log1p(exp(-(double)p->ys[i] * pred[i]));
  }
  *out = s / (double)(p->B * p->N);
  return 0;
}

static void test_wrapper_layout_and_grad(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_model *m = icl_model_create(ctx, 3, 4, ICL_CPU);
  m->ops = &tanh_ops;
  m->init_std = 0.5f;
  CHECK_OK(ctx, icl_model_finish(ctx, m, 7));
  int64_t B = 2, N = 3, sx[3] = {2, 3, 3}, sy[2] = {2, 3};
  icl_tensor *xs = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 3, sx, 0, 1, 1, 0);
  icl_tensor *ys = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 2, sy, 0, 1, 2, 0);
  float pred[6];
  CHECK_OK(ctx, icl_model_forward(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, N, pred, 0));
  /* by hand: pred[b,i] = w_out . tanh(W_in x_{b,i}) */
  const float *win = icl_params_data(&m->params, m->p_read_in), *wout = icl_params_data(&m->params, m->p_read_out);
  const float *x = icl_tensor_data(xs), *y = icl_tensor_data(ys);
  for (int k = 0; k < 6; k++) {
    double s = 0;
    for (int h = 0; h < 4; h++) {
      double a = 0;
      for (int d = 0; d < 3; d++) a += win[h * 3 + d] * x[k * 3 + d];
      s += wout[h] * tanh(a);
    }
    CHECK_CLOSE(pred[k], s, 1e-5, 1e-6);
  }
  /* y tokens carry (y, 0, 0) */
  CHECK(m->tokens[3] == y[0] && m->tokens[4] == 0 && m->tokens[5] == 0 && m->tokens[6] == x[3]);
  float ypm[6];
  for (int k = 0; k < 6; k++) ypm[k] = y[k] > 0 ? 1.0f : -1.0f; /* BCE labels are +-1 */
  for (int kind = 0; kind < 2; kind++) {
    if (kind == ICL_LOSS_BCE) y = ypm;
    probe p = {m, x, y, B, N, (icl_loss_kind)kind};
    float loss;
    CHECK_OK(ctx, icl_model_loss_step(ctx, m, x, y, B, N, (icl_loss_kind)kind, &loss));
    double want;
    eval(ctx, &p, &want);
    CHECK_CLOSE(loss, want, 1e-5, 1e-7);
    icl_gradcheck_report r;
    float *g = malloc(sizeof(float) * (size_t)m->params.total);
    memcpy(g, icl_tensor_data(m->params.grad), sizeof(float) * (size_t)m->params.total);
    CHECK_OK(ctx, icl_gradcheck(ctx, icl_tensor_data(m->params.value), g, m->params.total, eval, &p, NULL, &r));
    CHECK_MSG(r.max_rel < 1e-3, "wrapper grad (loss %d): rel err %.3g at %lld", kind, r.max_rel, (long long)r.worst);
    free(g);
  }
  icl_tensor_free(ctx, xs);
  icl_tensor_free(ctx, ys);
  icl_model_free(ctx, m);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_wrapper_layout_and_grad);
  return icl_t_finish("test_model_wrapper");
}
