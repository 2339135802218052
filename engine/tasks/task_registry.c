/* The built-in tasks: names, data kind, loss, metric, default baselines
 * (spec §8, T column; the regression classes outside the thesis use G's
 * list), default options and their validation. */
#include <stdio.h>
#include <string.h>

#include "tasks/task_boolean.h"
#include "tasks/tasks.h"

static const char *const names[ICL_TASK__COUNT] = {
    "linear_regression", "sparse_linear_regression", "noisy_linear_regression", "quadratic_regression",
    "relu_2nn_regression", "decision_tree", "conjunction", "disjunction", "sparse_disjunction", "cnf", "dnf",
    "int_halfspace", "majority", "parity", "sparse_parity", "sparse_thres"};

static const char *const bl_regression[] = {"least_squares", "nn_3", "averaging", NULL};
static const char *const bl_sparse[] = {"least_squares", "nn_3", "averaging", "lasso_0.01", NULL};
static const char *const bl_bool_1nn[] = {"nn_1", "averaging", "null", NULL};
static const char *const bl_bool_3nn[] = {"nn_3", "averaging", "null", NULL};

const char *icl_task_name(icl_task_kind k) { return (unsigned)k < ICL_TASK__COUNT ? names[k] : "?"; }

int icl_task_from_name(icl_ctx *ctx, const char *name, icl_task_kind *out) {
  for (int k = 0; k < ICL_TASK__COUNT; k++)
    if (name && strcmp(name, names[k]) == 0) {
      *out = (icl_task_kind)k;
      return ICL_OK;
    }
  char list[512] = "";
  size_t used = 0;
  for (int k = 0; k < ICL_TASK__COUNT && used < sizeof list; k++)
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", names[k]);
  return icl_errorf(ctx, ICL_EINVAL, "task: unknown task '%s' (valid: %s)", name ? name : "(null)", list);
}

icl_input_kind icl_task_input(icl_task_kind k) {
  return k >= ICL_TASK_CONJUNCTION ? ICL_INPUT_BOOLEAN : ICL_INPUT_GAUSSIAN;
}

icl_loss_kind icl_task_loss(icl_task_kind k) {
  return icl_task_input(k) == ICL_INPUT_BOOLEAN ? ICL_LOSS_BCE : ICL_LOSS_MSE;
}

icl_metric_kind icl_task_metric_kind(icl_task_kind k) {
  return icl_task_input(k) == ICL_INPUT_BOOLEAN ? ICL_METRIC_ACCURACY : ICL_METRIC_SQUARED_ERROR;
}

const char *const *icl_task_default_baselines(icl_task_kind k) {
  switch (k) {
  case ICL_TASK_SPARSE_LINEAR_REGRESSION: return bl_sparse;
  case ICL_TASK_CONJUNCTION:
  case ICL_TASK_DISJUNCTION:
  case ICL_TASK_MAJORITY: return bl_bool_1nn;
  default: return icl_task_input(k) == ICL_INPUT_BOOLEAN ? bl_bool_3nn : bl_regression;
  }
}

icl_task_params icl_task_defaults(icl_task_kind k, int64_t n_dims) {
  icl_task_params p;
  memset(&p, 0, sizeof p);
  p.kind = k;
  p.n_dims = n_dims;
  p.scale = 1.0f;
  p.sparsity = 3;
  p.hidden = 100;
  p.depth = 4;
  p.noise_std = 1.0f;
  return p;
}

int icl_task_validate(icl_ctx *ctx, const icl_task_params *p) {
  if ((unsigned)p->kind >= ICL_TASK__COUNT) return icl_errorf(ctx, ICL_EINVAL, "task: invalid kind %d", (int)p->kind);
  const char *n = names[p->kind];
  /* D bounds the Philox block fields of task_rng.h */
  if (p->n_dims < 1 || p->n_dims > 65536)
    return icl_errorf(ctx, ICL_EINVAL, "%s: n_dims = %lld must be in [1, 65536]", n, (long long)p->n_dims);
  if (!(p->scale == p->scale)) return icl_errorf(ctx, ICL_EINVAL, "%s: scale is NaN", n);
  if (p->sparsity < 1) return icl_errorf(ctx, ICL_EINVAL, "%s: sparsity = %d must be >= 1", n, p->sparsity);
  if (p->hidden < 1 || p->hidden > ICL_RELU_MAX_HIDDEN)
    return icl_errorf(ctx, ICL_EINVAL, "%s: hidden = %d must be in [1, %d]", n, p->hidden, ICL_RELU_MAX_HIDDEN);
  if (p->kind == ICL_TASK_RELU_2NN_REGRESSION && p->n_dims * p->hidden >= ((int64_t)1 << 28))
    return icl_errorf(ctx, ICL_EINVAL, "%s: n_dims * hidden must be < 2^28", n);
  if (p->depth < 1 || p->depth > ICL_TREE_MAX_DEPTH)
    return icl_errorf(ctx, ICL_EINVAL, "%s: depth = %d must be in [1, %d]", n, p->depth, ICL_TREE_MAX_DEPTH);
  if (!(p->noise_std >= 0)) return icl_errorf(ctx, ICL_EINVAL, "%s: noise_std = %g must be >= 0", n, p->noise_std);
  return ICL_OK;
}

int64_t icl_task_fn_floats(const icl_task_params *p) {
  const int64_t D = p->n_dims;
  switch (p->kind) {
  case ICL_TASK_RELU_2NN_REGRESSION: return D * p->hidden + p->hidden;
  case ICL_TASK_DECISION_TREE: return 2 * (((int64_t)1 << (p->depth + 1)) - 1);
  case ICL_TASK_CNF:
  case ICL_TASK_DNF: return ICL_CNF_CLAUSES * D + 1;
  case ICL_TASK_SPARSE_THRES: return D + 1;
  default: return D;
  }
}

int icl_task_fn_slots(const icl_task_params *p) { return p->independent_label_function ? 2 : 1; }

uint64_t icl_task_derive_seed(uint64_t seed, uint64_t stream, const char *tag) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a of the tag picks the Philox index */
  for (const unsigned char *c = (const unsigned char *)(tag ? tag : ""); *c; c++) h = (h ^ *c) * 1099511628211ull;
  icl_philox_out r = icl_philox(seed, stream, h);
  /* 62 bits: stays a positive Lua integer */
  return (((uint64_t)r.v[0] << 32) | r.v[1]) >> 2;
}
