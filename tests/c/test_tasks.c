/* The task library's samplers: label statistics of every class against
 * the spec's table (training samplers and the eval quirk), second moments
 * of the regression classes, determinism (threads, chunks, streams), the
 * documented Philox layout and argument errors. Baselines: test_baselines.c. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tasks/baselines.h"
#include "tasks/task_regression.h"
#include "tasks/task_rng.h"
#include "tasks/tasks.h"

/* ---- helpers ---------------------------------------------------------------- */

static icl_task_draw draw_of(int64_t B, int64_t N, int64_t dt, uint64_t seed, uint64_t stream) {
  icl_task_draw d = {B, N, dt, seed, stream, 0, NULL};
  return d;
}

/* sample with default options except n_dims; caller frees */
static int sample_kind(icl_ctx *ctx, icl_task_params p, icl_task_draw d, icl_tensor **xs, icl_tensor **ys) {
  icl_task *t = icl_task_new(ctx, &p);
  if (!t) return ctx->errcode;
  int rc = icl_task_sample(ctx, t, ICL_CPU, &d, xs, ys);
  icl_task_free(ctx, t);
  return rc;
}

/* ---- Boolean label balance (spec §4 table, training samplers) ------------------ */

typedef struct rate_ref {
  icl_task_kind kind;
  double p_train; /* spec §4 */
  double p_eval;  /* spec §9.5(a); < 0: unaffected by the quirk */
} rate_ref;

static const rate_ref rates[] = {
    {ICL_TASK_CONJUNCTION, 0.327, 0.04},   {ICL_TASK_DISJUNCTION, 0.673, 0.96},
    {ICL_TASK_SPARSE_DISJUNCTION, 0.656, 0.92}, {ICL_TASK_MAJORITY, 0.421, -1},
    {ICL_TASK_INT_HALFSPACE, 0.477, -1},   {ICL_TASK_SPARSE_THRES, 0.497, -1},
    {ICL_TASK_PARITY, 0.50, -1},           {ICL_TASK_SPARSE_PARITY, 0.50, -1},
    {ICL_TASK_DNF, 0.560, 0.32},           {ICL_TASK_CNF, 0.476, 0.68},
};

/* P(y = +1) over B prompts x N points; also checks labels are +-1 and x in {-1,+1} */
static double pos_rate(icl_ctx *ctx, icl_task_params p, int64_t B, int64_t N, uint64_t seed) {
  icl_tensor *xs = NULL, *ys = NULL;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(B, N, p.n_dims, seed, 0), &xs, &ys));
  if (!ys) return -1;
  const float *y = icl_tensor_data(ys), *x = icl_tensor_data(xs);
  int64_t pos = 0, bad_y = 0, bad_x = 0;
  for (int64_t e = 0; e < B * N; e++) {
    pos += y[e] == 1.0f;
    bad_y += !(y[e] == 1.0f || y[e] == -1.0f);
  }
  for (int64_t e = 0; e < B * N * p.n_dims; e++) bad_x += !(x[e] == 1.0f || x[e] == -1.0f);
  CHECK_MSG(bad_y == 0, "%s: %lld labels not in {-1,+1}", icl_task_name(p.kind), (long long)bad_y);
  CHECK_MSG(bad_x == 0, "%s: %lld inputs not in {-1,+1}", icl_task_name(p.kind), (long long)bad_x);
  icl_tensor_free(ctx, xs);
  icl_tensor_free(ctx, ys);
  return (double)pos / (double)(B * N);
}

static void test_boolean_label_rates(void) {
  icl_ctx *ctx = icl_t_ctx();
  /* 10^5 prompts x 4 points: functions vary per prompt, so many prompts
   * keep the standard error near 0.002 */
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    icl_task_params p = icl_task_defaults(rates[r].kind, 20);
    double got = pos_rate(ctx, p, 100000, 4, 1234);
    printf("  # train %-20s P(y=+1) = %.4f  (spec %.3f)\n", icl_task_name(p.kind), got, rates[r].p_train);
    CHECK_MSG(fabs(got - rates[r].p_train) <= 0.01, "%s: P(y=+1) = %.4f, spec %.3f", icl_task_name(p.kind), got,
              rates[r].p_train);
  }
  icl_ctx_free(ctx);
}

static void test_eval_quirk_label_rates(void) {
  icl_ctx *ctx = icl_t_ctx();
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    icl_task_params p = icl_task_defaults(rates[r].kind, 20);
    p.independent_label_function = 1;
    double want = rates[r].p_eval >= 0 ? rates[r].p_eval : rates[r].p_train;
    double got = pos_rate(ctx, p, 100000, 4, 99);
    printf("  # eval  %-20s P(y=+1) = %.4f  (spec %.3f)\n", icl_task_name(p.kind), got, want);
    CHECK_MSG(fabs(got - want) <= 0.02, "%s (independent label fn): P(y=+1) = %.4f, spec %.3f",
              icl_task_name(p.kind), got, want);
  }
  icl_ctx_free(ctx);
}

/* forcing is one coin per point: within one conjunction prompt with m >= 1
 * both forced and unforced points occur */
static void test_forcing_per_point(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_tensor *xs, *ys;
  icl_task_params p = icl_task_defaults(ICL_TASK_CONJUNCTION, 20);
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(200, 200, 20, 5, 0), &xs, &ys));
  const float *y = icl_tensor_data(ys);
  int mixed = 0;
  for (int64_t b = 0; b < 200; b++) {
    int64_t pos = 0;
    for (int64_t i = 0; i < 200; i++) pos += y[b * 200 + i] > 0;
    mixed += pos > 20 && pos < 180; /* ~30% forced positives, rest mostly negative */
  }
  CHECK_MSG(mixed > 150, "only %d of 200 conjunction prompts mix forced and free points", mixed);
  icl_tensor_free(ctx, xs);
  icl_tensor_free(ctx, ys);
  icl_ctx_free(ctx);
}

/* ---- regression moments --------------------------------------------------------- */

static double mean_y2(icl_ctx *ctx, icl_task_params p, int64_t dt, double *mean_y) {
  icl_tensor *xs = NULL, *ys = NULL;
  const int64_t B = 20000, N = 20;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(B, N, dt, 77, 3), &xs, &ys));
  if (!ys) return -1;
  const float *y = icl_tensor_data(ys), *x = icl_tensor_data(xs);
  double s = 0, s1 = 0;
  for (int64_t e = 0; e < B * N; e++) {
    s += (double)y[e] * y[e];
    s1 += y[e];
  }
  int64_t nonzero_pad = 0;
  for (int64_t e = 0; e < B * N; e++)
    for (int64_t j = dt; j < p.n_dims; j++) nonzero_pad += x[e * p.n_dims + j] != 0.0f;
  CHECK_MSG(nonzero_pad == 0, "%s: %lld padded coordinates are not 0", icl_task_name(p.kind), (long long)nonzero_pad);
  icl_tensor_free(ctx, xs);
  icl_tensor_free(ctx, ys);
  if (mean_y) *mean_y = s1 / (double)(B * N);
  return s / (double)(B * N);
}

static void check_moment(icl_ctx *ctx, icl_task_params p, int64_t dt, double want, double rtol, const char *what) {
  double m1 = 0;
  double got = mean_y2(ctx, p, dt, &m1);
  printf("  # %-40s E[y^2] = %.4f (expected %.4f), E[y] = %+.4f\n", what, got, want, m1);
  CHECK_MSG(fabs(got - want) <= rtol * want, "%s: E[y^2] = %.4f, expected %.4f", what, got, want);
  CHECK_MSG(fabs(m1) <= 0.05 * sqrt(want), "%s: E[y] = %.4f, expected 0", what, m1);
}

static void test_regression_moments(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_params p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 20);
  check_moment(ctx, p, 20, 20, 0.03, "linear_regression d_t=20");
  check_moment(ctx, p, 7, 7, 0.03, "linear_regression d_t=7");
  p = icl_task_defaults(ICL_TASK_SPARSE_LINEAR_REGRESSION, 20);
  check_moment(ctx, p, 20, 3, 0.03, "sparse_linear_regression d_t=20");
  check_moment(ctx, p, 10, 3, 0.03, "sparse_linear_regression d_t=10");
  p.sparse_support_all_dims = 1; /* T: support over all 20 dims, half of it zeroed */
  check_moment(ctx, p, 10, 1.5, 0.03, "sparse (support_all_dims) d_t=10");
  p = icl_task_defaults(ICL_TASK_QUADRATIC_REGRESSION, 20); /* E[x^4] = 3 cancels the 1/sqrt(3): E[y^2] = d_t */
  check_moment(ctx, p, 20, 20, 0.05, "quadratic_regression d_t=20");
  check_moment(ctx, p, 5, 5, 0.05, "quadratic_regression d_t=5");
  p = icl_task_defaults(ICL_TASK_RELU_2NN_REGRESSION, 20); /* (2/h) h E[relu(z)^2] = d_t */
  check_moment(ctx, p, 20, 20, 0.03, "relu_2nn_regression d_t=20");
  p.hidden = 4;
  check_moment(ctx, p, 20, 20, 0.05, "relu_2nn_regression hidden=4");
  p = icl_task_defaults(ICL_TASK_DECISION_TREE, 20); /* a leaf value ~ N(0,1) */
  check_moment(ctx, p, 20, 1, 0.03, "decision_tree");
  p = icl_task_defaults(ICL_TASK_NOISY_LINEAR_REGRESSION, 20); /* d_t + sigma^2 */
  check_moment(ctx, p, 20, 21, 0.03, "noisy_linear_regression sigma=1");
  p.noise_std = 0.5f;
  check_moment(ctx, p, 10, 10.25, 0.03, "noisy_linear_regression sigma=0.5 d_t=10");
  icl_ctx_free(ctx);
}

static void test_scale_and_renormalize(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_tensor *x1, *y1, *x2, *y2;
  icl_task_params p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 8);
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(4, 6, 8, 1, 1), &x1, &y1));
  p.scale = 3.0f;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(4, 6, 8, 1, 1), &x2, &y2));
  const float *a = icl_tensor_data(y1), *b = icl_tensor_data(y2);
  for (int e = 0; e < 24; e++) CHECK_CLOSE(b[e], 3.0 * a[e], 1e-6, 1e-6);
  icl_tensor_free(ctx, x1), icl_tensor_free(ctx, y1), icl_tensor_free(ctx, x2), icl_tensor_free(ctx, y2);

  p = icl_task_defaults(ICL_TASK_NOISY_LINEAR_REGRESSION, 20);
  p.renormalize_ys = 1;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(64, 41, 20, 2, 0), &x1, &y1));
  const float *y = icl_tensor_data(y1);
  double s = 0, ss = 0, n = 64 * 41;
  for (int e = 0; e < 64 * 41; e++) s += y[e], ss += (double)y[e] * y[e];
  double var = (ss - s * s / n) / (n - 1);
  CHECK_CLOSE(var, 20.0, 1e-5, 0); /* renormalised to std sqrt(D) exactly */
  icl_tensor_free(ctx, x1), icl_tensor_free(ctx, y1);

  /* decision tree: labels of one prompt take at most 2^depth leaf values */
  p = icl_task_defaults(ICL_TASK_DECISION_TREE, 20);
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(3, 200, 20, 8, 0), &x1, &y1));
  y = icl_tensor_data(y1);
  for (int b = 0; b < 3; b++) {
    float seen[200];
    int ns = 0;
    for (int i = 0; i < 200; i++) {
      int found = 0;
      for (int k = 0; k < ns; k++) found |= seen[k] == y[b * 200 + i];
      if (!found) seen[ns++] = y[b * 200 + i];
    }
    CHECK_MSG(ns <= 16 && ns >= 4, "tree prompt %d: %d distinct labels", b, ns);
  }
  icl_tensor_free(ctx, x1), icl_tensor_free(ctx, y1);
  icl_ctx_free(ctx);
}

/* ---- determinism ---------------------------------------------------------------- */

static int same_bits(const icl_tensor *a, const icl_tensor *b) {
  return icl_numel(a) == icl_numel(b) &&
         memcmp(icl_tensor_data(a), icl_tensor_data(b), (size_t)icl_numel(a) * sizeof(float)) == 0;
}

static void test_determinism(void) {
  icl_ctx *ctx = icl_t_ctx();
  for (int k = 0; k < ICL_TASK__COUNT; k++) {
    icl_task_params p = icl_task_defaults((icl_task_kind)k, 20);
    const char *n = icl_task_name(p.kind);
    icl_tensor *xa, *ya, *xb, *yb, *xc, *yc, *xd, *yd;
    icl_task *t = icl_task_new(ctx, &p);
    icl_task_draw d = draw_of(16, 12, 11, 42, 7);
    icl_set_num_threads(ctx, 1);
    CHECK_OK(ctx, icl_task_sample(ctx, t, ICL_CPU, &d, &xa, &ya));
    icl_set_num_threads(ctx, 2);
    CHECK_OK(ctx, icl_task_sample(ctx, t, ICL_CPU, &d, &xb, &yb));
    CHECK_MSG(same_bits(xa, xb) && same_bits(ya, yb), "%s: 1 and 2 threads differ", n);
    /* sample_into over a reused buffer gives the same again */
    CHECK_OK(ctx, icl_task_sample_into(ctx, t, xb, yb, &d));
    CHECK_MSG(same_bits(xa, xb) && same_bits(ya, yb), "%s: sample_into differs", n);
    /* two chunks with prompt offsets = one call */
    icl_tensor *x0 = icl_narrow(ctx, xb, 0, 0, 8), *y0 = icl_narrow(ctx, yb, 0, 0, 8);
    icl_tensor *x8 = icl_narrow(ctx, xb, 0, 8, 8), *y8 = icl_narrow(ctx, yb, 0, 8, 8);
    icl_fill(ctx, xb, 0), icl_fill(ctx, yb, 0);
    icl_task_draw d2 = d;
    CHECK_OK(ctx, icl_task_sample_into(ctx, t, x0, y0, &d2));
    d2.prompt_offset = 8;
    CHECK_OK(ctx, icl_task_sample_into(ctx, t, x8, y8, &d2));
    CHECK_MSG(same_bits(xa, xb) && same_bits(ya, yb), "%s: chunked sampling differs", n);
    /* another stream, another seed: different prompts */
    d2 = d;
    d2.stream = 8;
    CHECK_OK(ctx, icl_task_sample(ctx, t, ICL_CPU, &d2, &xc, &yc));
    CHECK_MSG(!same_bits(xa, xc), "%s: streams 7 and 8 give the same xs", n);
    d2 = d;
    d2.seed = 43;
    CHECK_OK(ctx, icl_task_sample(ctx, t, ICL_CPU, &d2, &xd, &yd));
    CHECK_MSG(!same_bits(xa, xd), "%s: seeds 42 and 43 give the same xs", n);
    CHECK_MSG(!same_bits(ya, yc) && !same_bits(ya, yd), "%s: ys do not depend on the stream/seed", n);
    /* a longer prompt extends the shorter one: functions and points do not depend on N */
    icl_tensor *xl, *yl;
    icl_task_draw dl = d;
    dl.N = 20;
    CHECK_OK(ctx, icl_task_sample(ctx, t, ICL_CPU, &dl, &xl, &yl));
    int prefix = 1;
    const float *sa = icl_tensor_data(ya), *sl = icl_tensor_data(yl);
    for (int b = 0; b < 16; b++)
      for (int i = 0; i < 12; i++) prefix &= sa[b * 12 + i] == sl[b * 20 + i];
    CHECK_MSG(prefix, "%s: the first 12 points change with N", n);
    icl_tensor *f[] = {xa, ya, xb, yb, xc, yc, xd, yd, x0, y0, x8, y8, xl, yl};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) icl_tensor_free(ctx, f[i]);
    icl_task_free(ctx, t);
  }
  icl_ctx_free(ctx);
}

/* the eval quirk keeps x (function A's sampler) and only relabels */
static void test_quirk_keeps_inputs(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_params p = icl_task_defaults(ICL_TASK_CNF, 20), q = p;
  q.independent_label_function = 1;
  icl_tensor *xa, *ya, *xb, *yb;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(32, 16, 20, 3, 9), &xa, &ya));
  CHECK_OK(ctx, sample_kind(ctx, q, draw_of(32, 16, 20, 3, 9), &xb, &yb));
  CHECK(same_bits(xa, xb));
  CHECK(!same_bits(ya, yb));
  icl_tensor_free(ctx, xa), icl_tensor_free(ctx, ya), icl_tensor_free(ctx, xb), icl_tensor_free(ctx, yb);
  icl_ctx_free(ctx);
}

/* Boolean samplers ignore d_t unless truncate_boolean; then x is zero past
 * d_t and the labels are those of a d_t-dimensional function */
static void test_boolean_truncation(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_params p = icl_task_defaults(ICL_TASK_MAJORITY, 20);
  icl_tensor *xa, *ya, *xb, *yb;
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(50, 30, 5, 4, 0), &xa, &ya));
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(50, 30, 20, 4, 0), &xb, &yb));
  CHECK_MSG(same_bits(xa, xb) && same_bits(ya, yb), "Boolean sampling depends on d_t without truncate_boolean");
  icl_tensor_free(ctx, xa), icl_tensor_free(ctx, ya), icl_tensor_free(ctx, xb), icl_tensor_free(ctx, yb);
  for (int k = ICL_TASK_CONJUNCTION; k < ICL_TASK__COUNT; k++) {
    p = icl_task_defaults((icl_task_kind)k, 20);
    p.truncate_boolean = 1;
    CHECK_OK(ctx, sample_kind(ctx, p, draw_of(200, 30, 5, 4, 0), &xa, &ya));
    const float *x = icl_tensor_data(xa), *y = icl_tensor_data(ya);
    int bad = 0;
    for (int e = 0; e < 200 * 30; e++) {
      bad += !(y[e] == 1.0f || y[e] == -1.0f);
      for (int j = 0; j < 20; j++) bad += j < 5 ? !(x[e * 20 + j] == 1.0f || x[e * 20 + j] == -1.0f) : x[e * 20 + j] != 0;
    }
    CHECK_MSG(bad == 0, "%s truncated: %d bad entries", icl_task_name(p.kind), bad);
    icl_tensor_free(ctx, xa), icl_tensor_free(ctx, ya);
  }
  icl_ctx_free(ctx);
}

/* the data follow the documented Philox layout (task_rng.h) */
static void test_rng_layout(void) {
  icl_ctx *ctx = icl_t_ctx();
  const uint64_t seed = 5, stream = 123;
  icl_tensor *xs, *ys;
  icl_task_params p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 7);
  icl_task_draw d = draw_of(3, 4, 7, seed, stream);
  d.prompt_offset = 10;
  CHECK_OK(ctx, sample_kind(ctx, p, d, &xs, &ys));
  const float *x = icl_tensor_data(xs), *y = icl_tensor_data(ys);
  int bad = 0;
  for (int b = 0; b < 3; b++) {
    uint64_t g = 10 + (uint64_t)b, fb = icl_trng_index(g, ICL_TRNG_FN_A, icl_trng_fn_local(0, 0));
    for (int i = 0; i < 4; i++) {
      uint64_t xb = icl_trng_index(g, ICL_TRNG_X, icl_trng_pt_local((uint64_t)i, 0));
      double s = 0;
      for (int j = 0; j < 7; j++) {
        float v = icl_trng_normal(seed, stream, xb, (uint64_t)j);
        bad += x[(b * 4 + i) * 7 + j] != v;
        s += (double)v * icl_trng_normal(seed, stream, fb, (uint64_t)j);
      }
      bad += y[b * 4 + i] != (float)s;
    }
  }
  CHECK_MSG(bad == 0, "linear_regression: %d numbers off the documented layout", bad);
  icl_tensor_free(ctx, xs), icl_tensor_free(ctx, ys);
  /* Boolean inputs: bit j & 31 of word (j >> 5) & 3 of block j >> 7 */
  p = icl_task_defaults(ICL_TASK_PARITY, 200);
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(2, 3, 200, seed, stream), &xs, &ys));
  x = icl_tensor_data(xs);
  bad = 0;
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 200; j++)
        bad += x[(b * 3 + i) * 200 + j] !=
               icl_trng_sign(seed, stream, icl_trng_index((uint64_t)b, ICL_TRNG_X, icl_trng_pt_local((uint64_t)i, 0)),
                             (uint64_t)j);
  CHECK_MSG(bad == 0, "boolean inputs: %d signs off the documented layout", bad);
  icl_tensor_free(ctx, xs), icl_tensor_free(ctx, ys);
  /* sparse support = the 3 smallest keys (word 0 of FN_A sub-1 blocks) among the first d_t */
  p = icl_task_defaults(ICL_TASK_SPARSE_LINEAR_REGRESSION, 12);
  CHECK_OK(ctx, sample_kind(ctx, p, draw_of(1, 40, 9, seed, stream), &xs, &ys));
  uint64_t kb = icl_trng_index(0, ICL_TRNG_FN_A, icl_trng_fn_local(1, 0));
  int in[12] = {0};
  for (int t = 0; t < 3; t++) { /* selection by hand */
    int best = -1;
    for (int j = 0; j < 9; j++) {
      if (in[j]) continue;
      if (best < 0 || icl_philox(seed, stream, kb + (uint64_t)j).v[0] < icl_philox(seed, stream, kb + (uint64_t)best).v[0])
        best = j;
    }
    in[best] = 1;
  }
  /* y depends on exactly the chosen coordinates: compare with w restricted to them */
  x = icl_tensor_data(xs), y = icl_tensor_data(ys);
  uint64_t wb = icl_trng_index(0, ICL_TRNG_FN_A, icl_trng_fn_local(0, 0));
  bad = 0;
  for (int i = 0; i < 40; i++) {
    double s = 0;
    for (int j = 0; j < 12; j++)
      if (in[j]) s += (double)x[i * 12 + j] * icl_trng_normal(seed, stream, wb, (uint64_t)j);
    bad += y[i] != (float)s;
  }
  CHECK_MSG(bad == 0, "sparse support: %d labels off the documented layout", bad);
  icl_tensor_free(ctx, xs), icl_tensor_free(ctx, ys);
  /* every regression class: the CPU sampler (with its own relu loop) gives
   * exactly what the shared header functions give (what a GPU port runs) */
  for (int k = ICL_TASK_LINEAR_REGRESSION; k <= ICL_TASK_DECISION_TREE; k++) {
    if (k == ICL_TASK_NOISY_LINEAR_REGRESSION) continue;
    p = icl_task_defaults((icl_task_kind)k, 12);
    p.hidden = 300; /* more than one block of the CPU relu loop */
    CHECK_OK(ctx, sample_kind(ctx, p, draw_of(3, 5, 9, seed, stream), &xs, &ys));
    x = icl_tensor_data(xs), y = icl_tensor_data(ys);
    float *fn = malloc(sizeof(float) * (size_t)icl_task_fn_floats(&p));
    bad = 0;
    for (int b = 0; b < 3; b++) {
      icl_treg_draw(&p, seed, stream, (uint64_t)b, ICL_TRNG_FN_A, 9, fn);
      for (int i = 0; i < 5; i++) bad += y[b * 5 + i] != icl_treg_eval(&p, fn, x + (b * 5 + i) * 12, 0.0f);
    }
    CHECK_MSG(bad == 0, "%s: %d labels differ from the header formulas", icl_task_name(p.kind), bad);
    free(fn);
    icl_tensor_free(ctx, xs), icl_tensor_free(ctx, ys);
  }
  icl_ctx_free(ctx);
}

static void test_errors(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_task_kind k;
  CHECK(icl_task_from_name(ctx, "linear_regresion", &k) == ICL_EINVAL);
  CHECK(strstr(icl_last_error(ctx), "sparse_parity") != NULL); /* lists the valid names */
  icl_task_params p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 0);
  CHECK(icl_task_new(ctx, &p) == NULL);
  p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 4);
  icl_task *t = icl_task_new(ctx, &p);
  icl_tensor *xs, *ys;
  icl_task_draw d = draw_of(2, 3, 5, 0, 0);
  CHECK(icl_task_sample(ctx, t, ICL_CPU, &d, &xs, &ys) == ICL_EINVAL); /* d_t > D */
  CHECK(strstr(icl_last_error(ctx), "n_dims_truncated") != NULL);
  int64_t s3[3] = {2, 3, 5}, s2[2] = {2, 3};
  xs = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 3, s3);
  ys = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 2, s2);
  d.n_dims_truncated = 4;
  CHECK(icl_task_sample_into(ctx, t, xs, ys, &d) == ICL_ESHAPE); /* D = 5 vs 4 */
  icl_baseline bl;
  CHECK(icl_baseline_parse(ctx, "nn_0", &bl) == ICL_EINVAL);
  CHECK(icl_baseline_parse(ctx, "lasso_x", &bl) == ICL_EINVAL);
  CHECK(strstr(icl_last_error(ctx), "least_squares") != NULL);
  icl_tensor_free(ctx, xs), icl_tensor_free(ctx, ys);
  icl_task_free(ctx, t);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_boolean_label_rates);
  ICL_RUN(test_eval_quirk_label_rates);
  ICL_RUN(test_forcing_per_point);
  ICL_RUN(test_regression_moments);
  ICL_RUN(test_scale_and_renormalize);
  ICL_RUN(test_determinism);
  ICL_RUN(test_quirk_keeps_inputs);
  ICL_RUN(test_boolean_truncation);
  ICL_RUN(test_rng_layout);
  ICL_RUN(test_errors);
  return icl_t_finish("test_tasks");
}
