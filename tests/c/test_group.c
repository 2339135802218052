/* icl_group_step: K models stepped together compute, bit for bit, what each
 * computes stepped alone with one thread (parameters, AdamW moments, losses),
 * whatever the thread count of the group; misuse is refused, naming the entry. */
#include <string.h>

#include "harness.h"
#include "models/group.h"
#include "models/llama.h"

#define NRUNS 3
#define STEPS 5

typedef struct run {
  icl_model *m;
  icl_adamw opt;
  icl_tensor *xs, *ys;
  icl_task_draw d;
  float loss;
} run;

static void make(icl_ctx *ctx, run *r, uint64_t seed, int64_t hidden, icl_rot_kind rot) {
  icl_llama_cfg c = icl_llama_defaults();
  c.n_dims = 3;
  c.hidden = hidden;
  c.layers = 2;
  c.heads = 2;
  c.pe.rot = rot;
  memset(r, 0, sizeof *r);
  r->m = icl_llama_new(ctx, &c, ICL_CPU, seed);
  CHECK_MSG(r->m != NULL, "llama_new: %s", icl_last_error(ctx));
  CHECK_OK(ctx, icl_adamw_init_params(ctx, &r->opt, &r->m->params, icl_adamw_defaults(1e-2f)));
  int64_t sx[3] = {4, 6, 3}, sy[2] = {4, 6};
  r->xs = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 3, sx);
  r->ys = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 2, sy);
  r->d = (icl_task_draw){.B = 4, .N = 6, .n_dims_truncated = 2, .seed = seed, .stream = 0};
}

static void drop(icl_ctx *ctx, run *r) {
  icl_tensor_free(ctx, r->xs);
  icl_tensor_free(ctx, r->ys);
  icl_adamw_free(ctx, &r->opt);
  icl_model_free(ctx, r->m);
}

static int same_tensor(const icl_tensor *a, const icl_tensor *b) {
  return icl_numel(a) == icl_numel(b) &&
         memcmp(icl_tensor_data(a), icl_tensor_data(b), sizeof(float) * (size_t)icl_numel(a)) == 0;
}

static void test_group_equals_alone(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_params tp = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 3);
  icl_task *task = icl_task_new(ctx, &tp);
  run alone[NRUNS], grouped[NRUNS];
  float alone_loss[NRUNS][STEPS];
  /* the runs differ in seed and encoding (rope and none share a parameter layout) */
  for (int k = 0; k < NRUNS; k++) make(ctx, &alone[k], 11 + k, 16, k == 1 ? ICL_ROT_NONE : ICL_ROT_ROPE);
  icl_set_num_threads(ctx, 1);
  for (int k = 0; k < NRUNS; k++)
    for (int s = 0; s < STEPS; s++) {
      alone[k].d.stream = (uint64_t)s;
      CHECK_OK(ctx, icl_task_sample_into(ctx, task, alone[k].xs, alone[k].ys, &alone[k].d));
      CHECK_OK(ctx, icl_model_loss_step(ctx, alone[k].m, icl_tensor_data(alone[k].xs), icl_tensor_data(alone[k].ys),
                                        4, 6, ICL_LOSS_MSE, &alone_loss[k][s]));
      CHECK_OK(ctx, icl_adamw_step(ctx, &alone[k].opt));
    }
  /* a group with fewer, as many and more threads than runs */
  for (int threads = 2; threads <= 4; threads += 1) {
    icl_set_num_threads(ctx, threads);
    icl_model *models[NRUNS];
    icl_adamw *opts[NRUNS];
    icl_tensor *xs[NRUNS], *ys[NRUNS];
    icl_task_draw draws[NRUNS];
    float *losses[NRUNS];
    for (int k = 0; k < NRUNS; k++) {
      make(ctx, &grouped[k], 11 + k, 16, k == 1 ? ICL_ROT_NONE : ICL_ROT_ROPE);
      models[k] = grouped[k].m;
      opts[k] = &grouped[k].opt;
      xs[k] = grouped[k].xs;
      ys[k] = grouped[k].ys;
      losses[k] = &grouped[k].loss;
    }
    for (int s = 0; s < STEPS; s++) {
      for (int k = 0; k < NRUNS; k++) {
        draws[k] = grouped[k].d;
        draws[k].stream = (uint64_t)s;
      }
      CHECK_OK(ctx, icl_group_step(ctx, NRUNS, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, losses));
      for (int k = 0; k < NRUNS; k++)
        CHECK_MSG(memcmp(&grouped[k].loss, &alone_loss[k][s], sizeof(float)) == 0,
                  "%d threads, run %d, step %d: loss %.9g grouped, %.9g alone", threads, k, s, grouped[k].loss,
                  alone_loss[k][s]);
    }
    for (int k = 0; k < NRUNS; k++) {
      CHECK_MSG(same_tensor(grouped[k].m->params.value, alone[k].m->params.value), "%d threads, run %d: parameters",
                threads, k);
      CHECK_MSG(same_tensor(grouped[k].opt.m, alone[k].opt.m) && same_tensor(grouped[k].opt.v, alone[k].opt.v),
                "%d threads, run %d: AdamW moments", threads, k);
      CHECK_MSG(same_tensor(grouped[k].opt.scal, alone[k].opt.scal), "%d threads, run %d: AdamW scalars", threads, k);
      drop(ctx, &grouped[k]);
    }
  }
  /* one model alone in a group still computes with one thread */
  icl_set_num_threads(ctx, 2);
  run one;
  make(ctx, &one, 11, 16, ICL_ROT_ROPE);
  icl_model *m1[1] = {one.m};
  icl_adamw *o1[1] = {&one.opt};
  icl_tensor *x1[1] = {one.xs}, *y1[1] = {one.ys};
  float *l1[1] = {&one.loss};
  for (int s = 0; s < STEPS; s++) {
    icl_task_draw d1[1] = {one.d};
    d1[0].stream = (uint64_t)s;
    CHECK_OK(ctx, icl_group_step(ctx, 1, m1, o1, task, x1, y1, d1, ICL_LOSS_MSE, l1));
  }
  CHECK(same_tensor(one.m->params.value, alone[0].m->params.value));
  drop(ctx, &one);
  for (int k = 0; k < NRUNS; k++) drop(ctx, &alone[k]);
  icl_task_free(ctx, task);
  icl_ctx_free(ctx);
}

static void expect_error(icl_ctx *ctx, int rc, const char *text) {
  CHECK_MSG(rc != 0, "expected an error containing '%s'", text);
  CHECK_MSG(strstr(icl_last_error(ctx), text) != NULL, "error '%s' lacks '%s'", icl_last_error(ctx), text);
  icl_clear_error(ctx);
}

static void test_group_misuse(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_params tp = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 3);
  icl_task *task = icl_task_new(ctx, &tp);
  run a, b, wide;
  make(ctx, &a, 1, 16, ICL_ROT_ROPE);
  make(ctx, &b, 2, 16, ICL_ROT_ROPE);
  make(ctx, &wide, 3, 32, ICL_ROT_ROPE);
  icl_model *models[2] = {a.m, b.m};
  icl_adamw *opts[2] = {&a.opt, &b.opt};
  icl_tensor *xs[2] = {a.xs, b.xs}, *ys[2] = {a.ys, b.ys};
  icl_task_draw draws[2] = {a.d, b.d};
  expect_error(ctx, icl_group_step(ctx, 0, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, NULL), "1..64 models");
  models[1] = a.m;
  expect_error(ctx, icl_group_step(ctx, 2, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, NULL),
               "entries 1 and 2 share");
  models[1] = wide.m;
  opts[1] = &wide.opt;
  expect_error(ctx, icl_group_step(ctx, 2, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, NULL),
               "model 2 differs in shape");
  models[1] = b.m;
  opts[1] = &b.opt;
  draws[1].N = 5;
  expect_error(ctx, icl_group_step(ctx, 2, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, NULL),
               "model 2: the draw says B 4, N 5");
  draws[1].N = 6;
  CHECK_OK(ctx, icl_group_step(ctx, 2, models, opts, task, xs, ys, draws, ICL_LOSS_MSE, NULL));
  drop(ctx, &a);
  drop(ctx, &b);
  drop(ctx, &wide);
  icl_task_free(ctx, task);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_group_equals_alone);
  ICL_RUN(test_group_misuse);
  return icl_t_finish("group");
}
