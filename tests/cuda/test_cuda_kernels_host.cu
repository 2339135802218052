/* The GPU kernels' per-element arithmetic, run on the host against the CPU
 * kernels (no GPU needed, so it runs in CI): the task sampler's phases
 * (cuda_tasks.cuh) for every function class must give the CPU sampler's
 * bits, and the nn formulas (cuda_nn_math.cuh: the polynomial exp, RMSNorm's
 * 8-lane sums, SwiGLU, SiLU) the CPU nn kernels' bits. On the host both
 * sides use glibc, so everything here is exact; on the device only the
 * libm calls (normal draws' log/cos, expf) may move by an ulp, which
 * tests/c/test_gpu_*.c measure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cuda/cuda_nn_math.cuh"
#include "../../engine/cuda/cuda_tasks.cuh"

extern "C" {
#include "core/context.h"
#include "nn/nn_kernels.h"
#include "nn/vmath.h"
#include "tasks/task_kernels.h"
}

#include "host_check.h"

static icl_ctx *ctx;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static float uni(float lo, float hi) { return lo + (hi - lo) * (float)((next_u64() >> 40) * (1.0 / 16777216.0)); }

static int same_bits(const float *a, const float *b, int64_t n, int64_t *first) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], 4) != 0) {
      *first = i;
      return 0;
    }
  return 1;
}

/* ---- tasks -------------------------------------------------------------------------- */

/* the GPU sampler's four phases, as host loops over the kernels' indices */
static void emulate_sample(const icl_task_params *p, const icl_task_draw *d, float *xs, float *ys, float *ws) {
  task_args a = task_args_make(p, d, icl_task_fn_floats(p), icl_task_fn_slots(p));
  const uint64_t stream = stream_of(a.stream, a.stream_add);
  for (int64_t idx = 0; idx < a.B * a.slots * a.F; idx++) task_fn_at(a, stream, ws, idx);
  for (int64_t idx = 0; idx < a.B * a.N * a.D; idx++)
    xs[idx] = task_x_at(a.boolean, a.N, a.D, a.xdt, a.seed, stream, a.prompt_offset, idx);
  /* rows in reverse: the result must not depend on the order of the points */
  for (int64_t row = a.B * a.N - 1; row >= 0; row--) task_label_at(a, stream, xs, ys, ws, row);
  if (a.noisy && p->renormalize_ys && a.B * a.N > 1) {
    double *part = (double *)malloc(sizeof(double) * 2 * (size_t)a.B);
    for (int64_t b = 0; b < a.B; b++) task_renorm_prompt(ys, a.N, b, &part[2 * b], &part[2 * b + 1]);
    float f;
    if (task_renorm_factor(part, a.B, a.N, a.D, &f))
      for (int64_t e = 0; e < a.B * a.N; e++) ys[e] *= f;
    free(part);
  }
}

static void sample_case(icl_task_params p, int64_t B, int64_t N, int64_t dt, int64_t offset, int counter) {
  float steps = 17.0f;
  icl_task_draw d;
  memset(&d, 0, sizeof d);
  d.B = B;
  d.N = N;
  d.n_dims_truncated = dt;
  d.seed = 0x1234 + next_u64() % 1000;
  d.stream = counter ? 3 : 20;
  d.stream_add = counter ? &steps : NULL; /* 3 + 17 = 20 either way */
  d.prompt_offset = offset;
  int64_t D = p.n_dims, F = icl_task_fn_floats(&p), S = icl_task_fn_slots(&p);
  float *xc = (float *)calloc((size_t)(B * N * D), 4), *yc = (float *)calloc((size_t)(B * N), 4);
  float *xg = (float *)calloc((size_t)(B * N * D), 4), *yg = (float *)calloc((size_t)(B * N), 4);
  float *wc = (float *)calloc((size_t)(B * S * F), 4), *wg = (float *)calloc((size_t)(B * S * F), 4);
  EXPECT(icl_cpu_task_kernels.sample(ctx, &p, &d, xc, yc, wc) == 0, "cpu sample");
  emulate_sample(&p, &d, xg, yg, wg);
  int64_t at = 0;
  EXPECT(same_bits(xc, xg, B * N * D, &at), "%s D %lld dt %lld: xs differ at %lld: %.9g vs %.9g", icl_task_name(p.kind),
         (long long)D, (long long)dt, (long long)at, xc[at], xg[at]);
  EXPECT(same_bits(yc, yg, B * N, &at), "%s D %lld dt %lld: ys differ at %lld: %.9g vs %.9g", icl_task_name(p.kind),
         (long long)D, (long long)dt, (long long)at, yc[at], yg[at]);
  /* the drawn functions too (the CPU's workspace after sampling) */
  EXPECT(same_bits(wc, wg, B * S * F, &at), "%s: functions differ at %lld", icl_task_name(p.kind), (long long)at);
  free(xc), free(yc), free(xg), free(yg), free(wc), free(wg);
}

static void test_task_sampling(void) {
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
      if (k == ICL_TASK_SPARSE_LINEAR_REGRESSION && v == 3) p.sparsity = 0;
      int64_t dt = v == 0 ? D : (v == 3 ? 100 : 1 + (D - 1) / 2);
      sample_case(p, v == 3 ? 3 : 8, v == 3 ? 5 : 13, dt, v == 1 ? 1000 : 0, v & 1);
    }
  }
  /* sample_inputs: the x phase alone */
  for (int boolean = 0; boolean < 2; boolean++) {
    icl_task_draw d;
    memset(&d, 0, sizeof d);
    d.B = 5, d.N = 9, d.n_dims_truncated = 130, d.seed = 99, d.stream = 4, d.prompt_offset = 77;
    int64_t D = 200, n = d.B * d.N * D;
    float *xc = (float *)malloc((size_t)n * 4), *xg = (float *)malloc((size_t)n * 4);
    EXPECT(icl_cpu_task_kernels.sample_inputs(ctx, boolean ? ICL_INPUT_BOOLEAN : ICL_INPUT_GAUSSIAN, &d, D, xc) == 0,
           "sample_inputs");
    for (int64_t i = 0; i < n; i++)
      xg[i] = task_x_at(boolean, d.N, D, d.n_dims_truncated, d.seed, d.stream, d.prompt_offset, i);
    int64_t at = 0;
    EXPECT(same_bits(xc, xg, n, &at), "sample_inputs(%s) differ at %lld", boolean ? "boolean" : "gaussian",
           (long long)at);
    free(xc), free(xg);
  }
}

/* ---- nn ------------------------------------------------------------------------------- */

static void test_exp_poly(void) {
  static const float edge[8] = {-100.f, -87.5f, -87.f, 0.f, -0.f, 88.f, 88.5f, 300.f};
  float xs[4096];
  for (int i = 0; i < 4096; i++) xs[i] = i < 8 ? edge[i] : uni(-90.0f, 90.0f) * (i % 3 ? 1.0f : 0.01f);
  for (int i = 0; i < 4096; i += 8) {
    icl_v8f v = icl_v8_load(xs + i), e = icl_v8_exp(v), s = icl_v8_sigmoid(v);
    for (int k = 0; k < 8; k++) {
      float a = icl_nn_v8_exp(xs[i + k]), b = icl_nn_v8_sigmoid(xs[i + k]);
      EXPECT(memcmp(&a, &e[k], 4) == 0, "exp(%.9g): %.9g vs vmath %.9g", xs[i + k], a, e[k]);
      EXPECT(memcmp(&b, &s[k], 4) == 0, "sigmoid(%.9g): %.9g vs vmath %.9g", xs[i + k], b, s[k]);
    }
  }
}

static float *randv(int64_t n, float lo, float hi) {
  if (n < 1) n = 1;
  float *v = (float *)malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) v[i] = uni(lo, hi);
  return v;
}

/* a row's sum of squares as eight GPU lanes plus the tail, in cuda_nn.cu's order */
static float lanes_sum(const float *v, int64_t d, int mode, const float *w, const float *x) {
  int64_t d8 = d & ~(int64_t)7;
  float acc[8] = {0}, s = 0.0f;
  for (int k = 0; k < 8; k++)
    for (int64_t j = k; j < d8; j += 8)
      acc[k] = ICL_FADD(acc[k], mode ? ICL_FMUL(ICL_FMUL(v[j], w[j]), x[j]) : ICL_FMUL(v[j], v[j]));
  for (int k = 0; k < 8; k++) s = ICL_FADD(s, acc[k]);
  for (int64_t j = d8; j < d; j++) s = ICL_FADD(s, mode ? ICL_FMUL(ICL_FMUL(v[j], w[j]), x[j]) : ICL_FMUL(v[j], v[j]));
  return s;
}

static void test_rmsnorm(void) {
  const int64_t ds[] = {256, 20, 7, 1000, 1};
  for (int t = 0; t < 5; t++) {
    int64_t rows = 37, d = ds[t], n = rows * d;
    float *x = randv(n, -3, 3), *w = randv(d, 0.5f, 1.5f), *dy = randv(n, -1, 1), *delta = randv(n, -1, 1);
    float *yc = (float *)malloc(n * 4), *rc = (float *)malloc(rows * 4), *ac = (float *)malloc(n * 4);
    float *dxc = (float *)malloc(n * 4);
    EXPECT(icl_cpu_nn_kernels.add_rmsnorm_fwd(ctx, ac, yc, rc, x, delta, w, rows, d, 1e-6f) == 0, "cpu");
    EXPECT(icl_cpu_nn_kernels.rmsnorm_bwd(ctx, dxc, NULL, dy, ac, w, rc, rows, d, 0) == 0, "cpu");
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * d, *dr = delta + r * d;
      float a[1000];
      for (int64_t j = 0; j < d; j++) a[j] = ICL_FADD(xr[j], dr[j]);
      float rs = icl_nn_rstd(lanes_sum(a, d, 0, NULL, NULL), d, 1e-6f);
      bad += memcmp(&rs, &rc[r], 4) != 0;
      for (int64_t j = 0; j < d; j++) {
        float y = icl_nn_norm_out(w[j], a[j], rs);
        bad += memcmp(&y, &yc[r * d + j], 4) != 0 || memcmp(&a[j], &ac[r * d + j], 4) != 0;
      }
      float c = icl_nn_norm_c(lanes_sum(dy + r * d, d, 1, w, a), rs, d);
      for (int64_t j = 0; j < d; j++) {
        float v = icl_nn_norm_dx(dy[r * d + j], w[j], a[j], c, rs);
        bad += memcmp(&v, &dxc[r * d + j], 4) != 0;
      }
    }
    EXPECT(bad == 0, "rmsnorm d %lld: %d values differ from the CPU kernel", (long long)d, bad);
    free(x), free(w), free(dy), free(delta), free(yc), free(rc), free(ac), free(dxc);
  }
}

static void test_swiglu_silu(void) {
  const int64_t fs[] = {1024, 30, 5, 64};
  for (int t = 0; t < 4; t++) {
    int64_t rows = 11, f = fs[t];
    float *gu = randv(rows * 2 * f, -9, 9), *dh = randv(rows * f, -1, 1);
    float *h = (float *)malloc(rows * f * 4), *dgu = (float *)malloc(rows * 2 * f * 4);
    EXPECT(icl_cpu_nn_kernels.swiglu_fwd(ctx, h, gu, rows, f) == 0, "cpu");
    EXPECT(icl_cpu_nn_kernels.swiglu_bwd(ctx, dgu, dh, gu, rows, f) == 0, "cpu");
    int bad = 0;
    int64_t f8 = f & ~(int64_t)7;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < f; j++) {
        float g = gu[r * 2 * f + j], u = gu[r * 2 * f + f + j], dg, du;
        float hv = icl_nn_swiglu(g, u, j < f8);
        icl_nn_swiglu_bwd(g, u, dh[r * f + j], j < f8, &dg, &du);
        bad += memcmp(&hv, &h[r * f + j], 4) != 0;
        bad += memcmp(&dg, &dgu[r * 2 * f + j], 4) != 0 || memcmp(&du, &dgu[r * 2 * f + f + j], 4) != 0;
      }
    EXPECT(bad == 0, "swiglu f %lld: %d values differ from the CPU kernel", (long long)f, bad);
    free(gu), free(dh), free(h), free(dgu);
  }
  int64_t n = 5000;
  float *x = randv(n, -20, 20), *dy = randv(n, -1, 1), *y = (float *)malloc(n * 4), *dx = (float *)malloc(n * 4);
  EXPECT(icl_cpu_nn_kernels.silu_fwd(ctx, y, x, n) == 0 && icl_cpu_nn_kernels.silu_bwd(ctx, dx, dy, x, n) == 0, "cpu");
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    float a = icl_nn_silu(x[i]), b = icl_nn_silu_bwd(x[i], dy[i]);
    bad += memcmp(&a, &y[i], 4) != 0 || memcmp(&b, &dx[i], 4) != 0;
  }
  EXPECT(bad == 0, "silu: %d values differ from the CPU kernel", bad);
  free(x), free(dy), free(y), free(dx);
}

int main(void) {
  ctx = icl_ctx_new();
  if (!ctx) return 1;
  run("task_sampling", test_task_sampling);
  run("exp_poly", test_exp_poly);
  run("rmsnorm", test_rmsnorm);
  run("swiglu_silu", test_swiglu_silu);
  icl_ctx_free(ctx);
  printf("test_cuda_kernels_host: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
