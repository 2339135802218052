/* CPU reference of the task kernels: prompt sampling, metric, baselines.
 * Phase 1 draws each prompt's function(s) into the workspace, phase 2 draws
 * every point and labels it, phase 3 (noisy_linear_regression with
 * renormalize_ys) rescales by the batch std. Every number is a function of
 * its Philox index (task_rng.h), and the one batch reduction sums per
 * prompt then over prompts in order, so any thread count gives the same
 * bits. */
#include <math.h>
#include <stdlib.h>

#include "tasks/task_boolean.h"
#include "tasks/task_kernels.h"

/* x_{g,i}: inputs before forcing. One Philox block serves 2 normals or
 * 128 signs (the layout of task_rng.h, unrolled). */
static void draw_x(icl_input_kind kind, uint64_t seed, uint64_t stream, uint64_t g, int64_t i, int64_t D, int64_t dt,
                   float *x) {
  uint64_t base = icl_trng_index(g, ICL_TRNG_X, icl_trng_pt_local((uint64_t)i, 0));
  /* coordinates >= d_t are zero; drawing them first (as the original does)
   * would not change the others, since each has its own index */
  if (kind == ICL_INPUT_GAUSSIAN) {
    for (int64_t j = 0; j < dt; j += 2) {
      icl_philox_out r = icl_philox(seed, stream, base + (uint64_t)(j >> 1));
      x[j] = icl_normal_from(r.v[0], r.v[1]);
      if (j + 1 < dt) x[j + 1] = icl_normal_from(r.v[2], r.v[3]);
    }
  } else {
    for (int64_t j0 = 0; j0 < dt; j0 += 128) {
      icl_philox_out r = icl_philox(seed, stream, base + (uint64_t)(j0 >> 7));
      for (int64_t j = j0; j < dt && j < j0 + 128; j++)
        x[j] = ((r.v[(j >> 5) & 3] >> (j & 31)) & 1u) ? 1.0f : -1.0f;
    }
  }
  for (int64_t j = dt; j < D; j++) x[j] = 0.0f;
}

/* relu_2nn at one point: the arithmetic of icl_treg_eval (each pre-activation
 * summed over j in order, in double; the output summed over k in order)
 * with the loops swapped so the inner one runs along W1's rows. */
#define RELU_BLOCK 256
static float relu_eval(const icl_task_params *p, const float *fn, const float *x) {
  const int64_t D = p->n_dims, h = p->hidden;
  const float *w2 = fn + D * h;
  double acc[RELU_BLOCK], s = 0;
  for (int64_t k0 = 0; k0 < h; k0 += RELU_BLOCK) {
    int64_t nk = h - k0 < RELU_BLOCK ? h - k0 : RELU_BLOCK;
    for (int64_t k = 0; k < nk; k++) acc[k] = 0;
    for (int64_t j = 0; j < D; j++) {
      const double xj = x[j];
      const float *row = fn + j * h + k0;
      for (int64_t k = 0; k < nk; k++) acc[k] += xj * (double)row[k];
    }
    for (int64_t k = 0; k < nk; k++) {
      float a = acc[k] > 0 ? (float)acc[k] : 0.0f;
      s += (double)w2[k0 + k] * (double)a;
    }
  }
  return (float)((double)p->scale * sqrt(2.0 / (double)h) * s);
}

static int sample(icl_ctx *ctx, const icl_task_params *p, const icl_task_draw *d, float *xs, float *ys, float *ws) {
  (void)ctx;
  const int64_t B = d->B, N = d->N, D = p->n_dims;
  const int boolean = icl_task_input(p->kind) == ICL_INPUT_BOOLEAN;
  const int64_t F = icl_task_fn_floats(p);
  const int slots = icl_task_fn_slots(p);
  /* Boolean tasks ignore d_t unless asked (as published) */
  const int64_t xdt = boolean && !p->truncate_boolean ? D : d->n_dims_truncated;
  const int64_t vdt = boolean ? xdt : d->n_dims_truncated; /* coordinates a function may use */
  const uint64_t seed = d->seed, stream = d->stream + (d->stream_add ? (uint64_t)*d->stream_add : 0);
  const int noisy = p->kind == ICL_TASK_NOISY_LINEAR_REGRESSION;

#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < B; b++) {
    uint64_t g = (uint64_t)(d->prompt_offset + b);
    for (int s = 0; s < slots; s++) {
      float *fn = ws + (b * slots + s) * F;
      uint32_t purpose = s ? ICL_TRNG_FN_B : ICL_TRNG_FN_A;
      if (boolean) icl_tbool_draw(p, seed, stream, g, purpose, vdt, fn);
      else icl_treg_draw(p, seed, stream, g, purpose, vdt, fn);
    }
    const float *fa = ws + b * slots * F;
    const float *fl = ws + (b * slots + slots - 1) * F; /* the labelling function */
    for (int64_t i = 0; i < N; i++) {
      float *x = xs + (b * N + i) * D;
      draw_x(boolean ? ICL_INPUT_BOOLEAN : ICL_INPUT_GAUSSIAN, seed, stream, g, i, D, xdt, x);
      float u = 0, eps = 0;
      if (boolean || noisy) {
        icl_philox_out r = icl_philox(seed, stream, icl_trng_index(g, ICL_TRNG_PT, icl_trng_pt_local((uint64_t)i, 0)));
        u = icl_u01(r.v[0]);
        if (noisy) eps = icl_normal_from(r.v[2], r.v[3]);
      }
      if (boolean) {
        icl_tbool_force(p, fa, u, x);
        ys[b * N + i] = icl_tbool_label(p, fl, x);
      } else if (p->kind == ICL_TASK_RELU_2NN_REGRESSION) {
        ys[b * N + i] = relu_eval(p, fl, x);
      } else {
        ys[b * N + i] = icl_treg_eval(p, fl, x, eps);
      }
    }
  }

  if (noisy && p->renormalize_ys && B * N > 1) {
    /* y <- y * sqrt(D) / std(y), unbiased std over all B*N entries, summed
     * in double in a fixed order (per prompt, then over prompts) */
    double s = 0, ss = 0;
    for (int64_t b = 0; b < B; b++) {
      double sb = 0, ssb = 0;
      for (int64_t i = 0; i < N; i++) {
        double y = ys[b * N + i];
        sb += y;
        ssb += y * y;
      }
      s += sb;
      ss += ssb;
    }
    double n = (double)(B * N), mean = s / n;
    double var = (ss - n * mean * mean) / (n - 1);
    if (var > 0) {
      float f = (float)(sqrt((double)D) / sqrt(var));
#pragma omp parallel for schedule(static)
      for (int64_t e = 0; e < B * N; e++) ys[e] *= f;
    }
  }
  return ICL_OK;
}

static int sample_inputs(icl_ctx *ctx, icl_input_kind kind, const icl_task_draw *d, int64_t D, float *xs) {
  (void)ctx;
  const int64_t B = d->B, N = d->N;
  const uint64_t stream = d->stream + (d->stream_add ? (uint64_t)*d->stream_add : 0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < N; i++)
      draw_x(kind, d->seed, stream, (uint64_t)(d->prompt_offset + b), i, D, d->n_dims_truncated,
             xs + (b * N + i) * D);
  return ICL_OK;
}

static int metric(icl_ctx *ctx, icl_metric_kind kind, float *out, const float *pred, const float *ys, int64_t n) {
  (void)ctx;
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    if (kind == ICL_METRIC_SQUARED_ERROR) {
      float e = pred[i] - ys[i];
      out[i] = e * e;
    } else {
      float s = pred[i] > 0 ? 1.0f : (pred[i] < 0 ? -1.0f : 0.0f); /* sign(0) = 0 never matches a label */
      out[i] = s == ys[i] ? 1.0f : 0.0f;
    }
  }
  return ICL_OK;
}

const icl_task_kernels icl_cpu_task_kernels = {
    .sample = sample,
    .sample_inputs = sample_inputs,
    .metric = metric,
    .baseline = icl_cpu_baseline,
};
