/* The CUDA task kernels (engine/cuda/cuda_tasks.cu) against the CPU
 * sampler: every function class, with and without truncation, the
 * independent label function, renormalised labels, prompt offsets and the
 * device step counter (stream_add), must give the CPU's prompts for the same
 * (seed, stream, prompt_offset).
 *
 * Tolerances:
 *   exact (required): Boolean classes (x and y), the metric, ws-free
 *     sample_inputs(boolean)
 *   exact expected, Gaussian inputs: a normal draw goes through the device's
 *     double log/cos (cuda_random.cu has the same caveat), which can round one
 *     float ulp away from glibc's about once in 10^8 draws. Accepted: at most
 *     max(2, 1e-6 n) x values differing, each by one ulp, and labels within
 *     rtol 1e-5 of the CPU's; every difference is printed.
 * tests/cuda/test_cuda_kernels_host.cu checks the same per-element code on
 * the host, bit for bit, without a GPU.
 * Exits 77 (skipped) without a CUDA device. */
#include <stdlib.h>

#include "gpu_pair.h"
#include "tasks/task_kernels.h"

#define D(t) ((float *)icl_tensor_data(t))

/* x: exact, or (gaussian) a few one-ulp differences */
static void check_x(const char *what, pair p, int gaussian) {
  int64_t n = icl_numel(p.c), diff = 0, far = 0;
  uint32_t *hc = gp_gather(p.c), *hg = gp_gather(p.g);
  for (int64_t i = 0; i < n; i++) {
    if (hc[i] == hg[i]) continue;
    diff++;
    int64_t ulps = (int64_t)hc[i] - (int64_t)hg[i];
    far += !(gaussian && (ulps == 1 || ulps == -1));
  }
  int64_t allowed = gaussian ? (n / 1000000 > 2 ? n / 1000000 : 2) : 0;
  CHECK_MSG(far == 0 && diff <= allowed, "%s: %lld of %lld differ (%lld by more than one ulp)", what, (long long)diff,
            (long long)n, (long long)far);
  if (diff) printf("    %-44s %lld of %lld differ by one ulp (device libm)\n", what, (long long)diff, (long long)n);
  free(hc);
  free(hg);
}

static void sample_case(icl_task_params p, int64_t B, int64_t N, int64_t dt, int64_t offset, int counter) {
  char what[128];
  const char *name = icl_task_name(p.kind);
  int boolean = icl_task_input(p.kind) == ICL_INPUT_BOOLEAN;
  icl_task *tc = icl_task_new(G, &p), *tg = icl_task_new(G, &p);
  if (!tc || !tg) gp_die("task");
  icl_task_draw d = {B, N, dt, gp_seed, 20, offset, NULL};
  icl_tensor *xc, *yc, *xg, *yg;
  CHECK_OK(G, icl_task_sample(G, tc, ICL_CPU, &d, &xc, &yc));
  icl_tensor *cnt = NULL;
  if (counter) { /* stream 3 + a device counter holding 17 */
    int64_t one = 1;
    cnt = icl_tensor_full(G, ICL_F32, GP_DEVICE, 1, &one, 17.0);
    d.stream = 3;
    d.stream_add = D(cnt);
  }
  CHECK_OK(G, icl_task_sample(G, tg, GP_DEVICE, &d, &xg, &yg));
  pair x = {xc, xg}, y = {yc, yg};
  snprintf(what, sizeof what, "%s D %lld dt %lld B %lld N %lld%s%s xs", name, (long long)p.n_dims, (long long)dt,
           (long long)B, (long long)N, p.independent_label_function ? " indep" : "", counter ? " counter" : "");
  check_x(what, x, !boolean);
  snprintf(what, sizeof what, "%s D %lld dt %lld ys", name, (long long)p.n_dims, (long long)dt);
  if (boolean)
    gp_check(what, y, ICL_F32, -1, 0);
  else {
    gp_check(what, y, ICL_F32, 1e-5, 1e-6);
    gp_report_bits(what, y);
  }
  pair_free(x);
  pair_free(y);
  icl_tensor_free(G, cnt);
  icl_task_free(G, tc);
  icl_task_free(G, tg);
}

static void test_sample(void) {
  for (int k = 0; k < ICL_TASK__COUNT; k++) {
    for (int v = 0; v < 4; v++) {
      int64_t D = v == 3 ? 131 : (v == 2 ? 7 : 20);
      icl_task_params p = icl_task_defaults((icl_task_kind)k, D);
      p.independent_label_function = v == 1;
      p.truncate_boolean = v == 2;
      p.sparse_support_all_dims = v == 2;
      p.renormalize_ys = v >= 1;
      if (k == ICL_TASK_RELU_2NN_REGRESSION && v == 3) p.hidden = 37;
      if (k == ICL_TASK_DECISION_TREE && v == 2) p.depth = 2;
      if (k == ICL_TASK_SPARSE_LINEAR_REGRESSION && v == 3) p.sparsity = 120; /* more than d_t */
      int64_t dt = v == 0 ? D : (v == 3 ? 100 : 1 + (D - 1) / 2);
      sample_case(p, v == 3 ? 3 : 64, v == 3 ? 5 : 41, dt, v == 1 ? 1000 : 0, v & 1);
    }
  }
  /* the standard run's batch */
  icl_task_params p = icl_task_defaults(ICL_TASK_LINEAR_REGRESSION, 20);
  sample_case(p, 64, 51, 20, 0, 1);
}

static void test_sample_inputs(void) {
  for (int boolean = 0; boolean < 2; boolean++) {
    int64_t s[3] = {17, 33, 200};
    icl_task_draw d = {0, 0, 130, gp_seed, 4, 77, NULL};
    icl_tensor *xc = icl_tensor_empty(G, ICL_F32, ICL_CPU, 3, s), *xg = icl_tensor_empty(G, ICL_F32, GP_DEVICE, 3, s);
    icl_input_kind kind = boolean ? ICL_INPUT_BOOLEAN : ICL_INPUT_GAUSSIAN;
    CHECK_OK(G, icl_task_sample_inputs_into(G, kind, xc, &d));
    CHECK_OK(G, icl_task_sample_inputs_into(G, kind, xg, &d));
    pair x = {xc, xg};
    check_x(boolean ? "sample_inputs boolean" : "sample_inputs gaussian", x, !boolean);
    pair_free(x);
  }
}

static void test_metric(void) {
  int64_t s[2] = {64, 51};
  pair pred = pair_rand(ICL_F32, 2, s, ICL_DIST_NORMAL, 0, 1), ys = pair_rand(ICL_F32, 2, s, ICL_DIST_NORMAL, 0, 1);
  /* zeros in pred (sign 0 never matches) and labels +-1 for accuracy */
  float *hp = D(pred.c), *hy = D(ys.c);
  for (int64_t i = 0; i < 64 * 51; i += 7) hp[i] = 0.0f;
  pair pold = pred;
  pred = pair_upload(icl_clone(G, pold.c));
  pair_free(pold);
  for (int k = 0; k < 2; k++) {
    if (k) {
      for (int64_t i = 0; i < 64 * 51; i++) hy[i] = hy[i] > 0 ? 1.0f : -1.0f;
      pair yold = ys;
      ys = pair_upload(icl_clone(G, yold.c));
      pair_free(yold);
      hy = D(ys.c);
    }
    icl_metric_kind kind = k ? ICL_METRIC_ACCURACY : ICL_METRIC_SQUARED_ERROR;
    pair out = {icl_task_metric(G, kind, pred.c, ys.c), icl_task_metric(G, kind, pred.g, ys.g)};
    if (!out.c || !out.g) gp_die("metric");
    gp_check(k ? "metric accuracy" : "metric squared error", out, ICL_F32, -1, 0);
    pair_free(out);
  }
  pair_free(pred);
  pair_free(ys);
}

int main(void) {
  if (gp_start("test_gpu_tasks")) return 77;
  if (!GPU->task || !GPU->task->sample || !GPU->task->sample_inputs || !GPU->task->metric) {
    printf("not ok - the %s backend lacks task kernels\n", GPU->name);
    return 1;
  }
  ICL_RUN(test_sample);
  ICL_RUN(test_sample_inputs);
  ICL_RUN(test_metric);
  return gp_finish("test_gpu_tasks");
}
