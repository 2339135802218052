/* The training step (models/train_step.h) on the CPU, where it must be the
 * step-by-step loop bit for bit: sampling with stream = step, loss_step,
 * AdamW, over a curriculum that changes N and d_t, for Llama (RoPE, ALiBi,
 * FIRE) and Mamba on regression and Boolean tasks. Also: the loss ring,
 * argument errors, the arena policy for long evaluations, and Llama's
 * cached rotation tables across lengths. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/llama.h"
#include "models/mamba.h"
#include "models/train_step.h"
#include "ops/ops.h"

static icl_model *tiny_llama(icl_ctx *ctx, int64_t D, const char *pe, uint64_t seed) {
  icl_llama_cfg c = icl_llama_defaults();
  c.n_dims = D;
  c.hidden = 32;
  c.layers = 2;
  c.heads = 2;
  c.pe.L_train = 16;
  c.pe.dyn_yarn = ICL_DYN_YARN_PAPER; /* the scale moves with every length above 16 */
  if (icl_pe_from_name(ctx, pe, &c.pe)) return NULL;
  return icl_llama_new(ctx, &c, ICL_CPU, seed);
}

static icl_model *tiny_mamba(icl_ctx *ctx, int64_t D, uint64_t seed) {
  icl_mamba_cfg c = icl_mamba_defaults(16);
  c.layers = 2;
  c.state = 4;
  c.chunk = 4;
  return icl_mamba_model_new(ctx, D, &c, ICL_CPU, seed);
}

/* the curriculum of the test: (N, d_t) of step s */
static void stage(int64_t s, int64_t *N, int64_t *dt) {
  *N = s < 4 ? 5 : (s < 8 ? 7 : 8);
  *dt = s < 6 ? 3 : 6;
}

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static void step_equals_loop(icl_model *(*make)(icl_ctx *, int64_t, const char *, uint64_t), const char *pe,
                             icl_task_kind kind) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t D = 6, B = 3, S = 12;
  icl_model *ma = make(ctx, D, pe, 11), *mb = make(ctx, D, pe, 11);
  CHECK(ma && mb);
  if (!ma || !mb) {
    icl_ctx_free(ctx);
    return;
  }
  icl_adamw_cfg oc = icl_adamw_defaults(3e-3f);
  oc.max_grad_norm = 1.0f;
  oc.sched.kind = ICL_SCHED_LINEAR, oc.sched.warmup = 3, oc.sched.total = (float)S;
  icl_adamw oa, ob;
  CHECK_OK(ctx, icl_adamw_init_params(ctx, &oa, &ma->params, oc));
  CHECK_OK(ctx, icl_adamw_init_params(ctx, &ob, &mb->params, oc));
  icl_task_params tp = icl_task_defaults(kind, D);
  icl_task *task = icl_task_new(ctx, &tp);
  icl_train_step_cfg cfg = {B, 8, 5, icl_task_loss(kind), 1};
  icl_train_step *ts = icl_train_step_new(ctx, ma, &oa, task, &cfg);
  CHECK(ts != NULL);
  float la[12], lb[12];
  for (int64_t s = 0; s < S && ts; s++) {
    int64_t N, dt;
    stage(s, &N, &dt);
    CHECK_OK(ctx, icl_train_step_run(ctx, ts, N, dt));
    CHECK_OK(ctx, icl_train_step_loss(ctx, ts, s, &la[s]));
    /* the loop of lua/icl/train.lua */
    int64_t sx[3] = {B, N, D};
    icl_tensor *xs = icl_tensor_empty(ctx, ICL_F32, ICL_CPU, 3, sx),
               *ys = icl_tensor_empty(ctx, ICL_F32, ICL_CPU, 2, sx);
    icl_task_draw d = {0, 0, dt, 5, (uint64_t)s, 0, NULL};
    CHECK_OK(ctx, icl_task_sample_into(ctx, task, xs, ys, &d));
    CHECK_OK(ctx,
             icl_model_loss_step(ctx, mb, icl_tensor_data(xs), icl_tensor_data(ys), B, N, icl_task_loss(kind), &lb[s]));
    CHECK_OK(ctx, icl_adamw_step(ctx, &ob));
    const float *bx, *by;
    icl_train_step_batch(ts, &bx, &by);
    CHECK_MSG(same(bx, icl_tensor_data(xs), B * N * D) && same(by, icl_tensor_data(ys), B * N),
              "%s/%s step %lld: the batch differs", pe, icl_task_name(kind), (long long)s);
    CHECK_MSG(same(&la[s], &lb[s], 1), "%s/%s step %lld: loss %.9g vs %.9g", pe, icl_task_name(kind), (long long)s,
              la[s], lb[s]);
    icl_tensor_free(ctx, xs);
    icl_tensor_free(ctx, ys);
  }
  int64_t n = ma->params.total;
  CHECK_MSG(same(icl_tensor_data(ma->params.value), icl_tensor_data(mb->params.value), n), "%s: parameters differ", pe);
  CHECK(same(icl_tensor_data(oa.m), icl_tensor_data(ob.m), n) && same(icl_tensor_data(oa.v), icl_tensor_data(ob.v), n));
  CHECK(same(icl_tensor_data(oa.scal), icl_tensor_data(ob.scal), ICL_OPT_NSCALARS));
  CHECK(((float *)icl_tensor_data(oa.scal))[ICL_OPT_STEPS] == (float)S);
  if (ts) { /* a step s' < S - 256 is overwritten; the last ones are kept */
    float v;
    CHECK_OK(ctx, icl_train_step_loss(ctx, ts, S - 1 + ICL_TRAIN_RING, &v));
    CHECK(same(&v, &la[S - 1], 1));
    icl_train_step_stats st;
    icl_train_step_get_stats(ts, &st);
    CHECK(st.eager == S && st.replays == 0 && !st.graphs_on);
  }
  icl_train_step_free(ctx, ts);
  icl_task_free(ctx, task);
  icl_adamw_free(ctx, &oa);
  icl_adamw_free(ctx, &ob);
  icl_model_free(ctx, ma);
  icl_model_free(ctx, mb);
  icl_ctx_free(ctx);
}

static icl_model *mamba_maker(icl_ctx *ctx, int64_t D, const char *pe, uint64_t seed) {
  (void)pe;
  return tiny_mamba(ctx, D, seed);
}

static void test_step_equals_loop(void) {
  step_equals_loop(tiny_llama, "rope", ICL_TASK_LINEAR_REGRESSION);
  step_equals_loop(tiny_llama, "alibi", ICL_TASK_SPARSE_PARITY);
  step_equals_loop(tiny_llama, "fire", ICL_TASK_NOISY_LINEAR_REGRESSION);
  step_equals_loop(tiny_llama, "dynamic-yarn", ICL_TASK_CNF);
  step_equals_loop(mamba_maker, "mamba", ICL_TASK_RELU_2NN_REGRESSION);
}

static void test_step_errors(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_model *m = tiny_llama(ctx, 4, "rope", 1), *other = tiny_llama(ctx, 4, "rope", 2);
  icl_adamw o, oo;
  CHECK_OK(ctx, icl_adamw_init_params(ctx, &o, &m->params, icl_adamw_defaults(1e-3f)));
  CHECK_OK(ctx, icl_adamw_init_params(ctx, &oo, &other->params, icl_adamw_defaults(1e-3f)));
  icl_task_params tp = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 4),
                  tp5 = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 5);
  icl_task *task = icl_task_new(ctx, &tp), *task5 = icl_task_new(ctx, &tp5);
  icl_train_step_cfg cfg = {2, 6, 0, ICL_LOSS_MSE, 1};
  CHECK(icl_train_step_new(ctx, m, &oo, task, &cfg) == NULL && strstr(icl_last_error(ctx), "optimiser"));
  CHECK(icl_train_step_new(ctx, m, &o, task5, &cfg) == NULL && strstr(icl_last_error(ctx), "n_dims"));
  cfg.B = 0;
  CHECK(icl_train_step_new(ctx, m, &o, task, &cfg) == NULL);
  cfg.B = 2;
  icl_train_step *ts = icl_train_step_new(ctx, m, &o, task, &cfg);
  CHECK(ts != NULL);
  CHECK(icl_train_step_run(ctx, ts, 7, 4) == ICL_EINVAL && strstr(icl_last_error(ctx), "n_points"));
  CHECK(icl_train_step_run(ctx, ts, 6, 5) == ICL_EINVAL && strstr(icl_last_error(ctx), "n_dims_truncated"));
  CHECK(icl_train_step_run(ctx, ts, 6, 0) == ICL_EINVAL);
  CHECK_OK(ctx, icl_train_step_run(ctx, ts, 6, 4));
  icl_train_step_free(ctx, ts);
  icl_task_free(ctx, task);
  icl_task_free(ctx, task5);
  icl_adamw_free(ctx, &o);
  icl_adamw_free(ctx, &oo);
  icl_model_free(ctx, m);
  icl_model_free(ctx, other);
  icl_ctx_free(ctx);
}

/* an evaluation far beyond the training length gets an inference-only
 * arena; the next training step starts again from its own length */
static void test_arena_policy(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_model *m = tiny_llama(ctx, 4, "alibi", 3);
  int64_t B = 4, N = 5, sx[3] = {B, 8 * N, 4};
  icl_tensor *xs = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 3, sx, 0, 1, 1, 0);
  icl_tensor *ys = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 2, sx, 0, 1, 2, 0);
  float loss, *pred = malloc(sizeof(float) * (size_t)(B * 8 * N));
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, N, ICL_LOSS_MSE, &loss));
  CHECK(m->cap_train && m->cap_T == 2 * N);
  uint64_t g0 = m->arena_gen;
  CHECK_OK(ctx, icl_model_forward(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, N, pred, 0));
  CHECK(m->arena_gen == g0); /* inference inside the training shape: same arena */
  CHECK_OK(ctx, icl_model_forward(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, 8 * N, pred, 0));
  CHECK(m->arena_gen == g0 + 1 && !m->cap_train && m->cap_T == 16 * N);
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, N, ICL_LOSS_MSE, &loss));
  CHECK(m->arena_gen == g0 + 2 && m->cap_train && m->cap_T == 2 * N);
  free(pred);
  icl_tensor_free(ctx, xs);
  icl_tensor_free(ctx, ys);
  icl_model_free(ctx, m);
  icl_ctx_free(ctx);
}

/* Llama keeps the rotation tables of the last length in its arena: after a
 * forward at another length, predictions at the first are unchanged */
static void test_rotation_cache(void) {
  icl_ctx *ctx = icl_t_ctx();
  const char *pes[] = {"dynamic-yarn", "alibi", "rope"};
  for (int k = 0; k < 3; k++) {
    icl_model *m = tiny_llama(ctx, 4, pes[k], 9), *fresh = tiny_llama(ctx, 4, pes[k], 9);
    int64_t B = 2, N = 12, sx[3] = {B, N, 4};
    icl_tensor *xs = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 3, sx, 0, 1, 3, 0);
    icl_tensor *ys = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 2, sx, 0, 1, 4, 0);
    float p1[24], p2[24], p3[24], pf[24];
    const float *x = icl_tensor_data(xs), *y = icl_tensor_data(ys);
    CHECK_OK(ctx, icl_model_forward(ctx, m, x, y, B, 5, p1, 0));
    CHECK_OK(ctx, icl_model_forward(ctx, m, x, y, B, 12, p2, 0)); /* longer: dynamic YaRN rescales */
    CHECK_OK(ctx, icl_model_forward(ctx, m, x, y, B, 5, p3, 0));
    CHECK_OK(ctx, icl_model_forward(ctx, fresh, x, y, B, 5, pf, 0));
    CHECK_MSG(same(p1, p3, B * 5) && same(p1, pf, B * 5), "%s: predictions at T = 10 changed after T = 24", pes[k]);
    icl_tensor_free(ctx, xs);
    icl_tensor_free(ctx, ys);
    icl_model_free(ctx, m);
    icl_model_free(ctx, fresh);
  }
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_step_equals_loop);
  ICL_RUN(test_step_errors);
  ICL_RUN(test_arena_policy);
  ICL_RUN(test_rotation_cache);
  return icl_t_finish("test_train_step");
}
