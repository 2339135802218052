/* Per-element logic of the GPU task sampler (cuda_tasks.cu), host-and-device
 * so that tests/cuda/test_cuda_kernels_host.cu can run the same code on the
 * host against the CPU sampler without a GPU. Each function computes one
 * number that the CPU's loops compute, from its Philox index alone. */
#ifndef ICL_CUDA_TASKS_CUH
#define ICL_CUDA_TASKS_CUH

#include <math.h>
#include <stdint.h>

extern "C" {
#include "tasks/task_boolean.h"
}

#define ICL_TK_HD __host__ __device__ __forceinline__

struct task_args {
  icl_task_params p;
  int64_t B, N, D, F, xdt, vdt, prompt_offset;
  int slots, boolean, noisy;
  uint64_t seed, stream;
  const float *stream_add; /* device pointer or NULL */
};

ICL_TK_HD uint64_t stream_of(uint64_t stream, const float *add) { return stream + (add ? (uint64_t)*add : 0u); }

/* rank of element e among the pairs (key_j, j), j < V, key_j = word 0 of
 * block j of the array at base: e is in the k-subset iff its rank is < k */
ICL_TK_HD int64_t subset_rank(uint64_t seed, uint64_t stream, uint64_t base, int64_t V, int64_t e) {
  const uint64_t pe = ((uint64_t)icl_trng_block(seed, stream, base, (uint64_t)e).v[0] << 32) | (uint64_t)e;
  int64_t rank = 0;
  for (int64_t j = 0; j < V; j++) {
    uint64_t pj = ((uint64_t)icl_trng_block(seed, stream, base, (uint64_t)j).v[0] << 32) | (uint64_t)j;
    rank += pj < pe;
  }
  return rank;
}

/* float e of the function of global prompt g (purpose FN_A / FN_B): what
 * icl_treg_draw / icl_tbool_draw write at fn[e]. dt: the coordinates the
 * function may use (the CPU's vdt). */
ICL_TK_HD float fn_elem(const icl_task_params &p, uint64_t seed, uint64_t stream, uint64_t g, uint32_t purpose,
                        int64_t dt, int64_t e) {
  const int64_t D = p.n_dims;
  const uint64_t b0 = icl_tfn_base(g, purpose, 0);
  switch (p.kind) {
  case ICL_TASK_SPARSE_LINEAR_REGRESSION: {
    int64_t V = p.sparse_support_all_dims ? D : dt;
    int64_t k = p.sparsity < V ? p.sparsity : V;
    if (e >= V) return 0.0f;
    return subset_rank(seed, stream, icl_tfn_base(g, purpose, 1), V, e) < k
               ? icl_trng_normal(seed, stream, b0, (uint64_t)e)
               : 0.0f;
  }
  case ICL_TASK_RELU_2NN_REGRESSION: {
    int64_t nw = D * p.hidden;
    return e < nw ? icl_trng_normal(seed, stream, b0, (uint64_t)e)
                  : icl_trng_normal(seed, stream, icl_tfn_base(g, purpose, 1), (uint64_t)(e - nw));
  }
  case ICL_TASK_DECISION_TREE: {
    int64_t n = ((int64_t)1 << (p.depth + 1)) - 1;
    if (e < n) {
      icl_philox_out r = icl_trng_block(seed, stream, b0, (uint64_t)e);
      return (float)icl_below(r.v[0], r.v[1], (uint32_t)D);
    }
    icl_philox_out r = icl_trng_block(seed, stream, b0, (uint64_t)(e - n));
    return icl_normal_from(r.v[2], r.v[3]);
  }
  case ICL_TASK_CNF:
  case ICL_TASK_DNF: {
    if (e < ICL_CNF_CLAUSES * D) {
      int64_t c = e / D, j = e - c * D;
      if (j >= dt) return 0.0f;
      uint64_t bc = icl_tfn_base(g, purpose, (uint32_t)c);
      return icl_tbool_ternary(icl_u01(icl_trng_block(seed, stream, bc, (uint64_t)j).v[0]), 0.8f, 0.1f);
    }
    icl_philox_out r = icl_trng_block(seed, stream, icl_tfn_base(g, purpose, 3), 0);
    return (float)icl_below(r.v[0], r.v[1], ICL_CNF_CLAUSES);
  }
  case ICL_TASK_SPARSE_DISJUNCTION:
  case ICL_TASK_SPARSE_PARITY: {
    int64_t k = p.kind == ICL_TASK_SPARSE_DISJUNCTION ? ICL_SPARSE_DISJ_K : ICL_SPARSE_PARITY_K;
    if (e >= dt) return 0.0f;
    return subset_rank(seed, stream, b0, dt, e) < k ? 1.0f : 0.0f;
  }
  case ICL_TASK_CONJUNCTION:
  case ICL_TASK_DISJUNCTION:
  case ICL_TASK_INT_HALFSPACE:
  case ICL_TASK_MAJORITY:
  case ICL_TASK_PARITY:
  case ICL_TASK_SPARSE_THRES: {
    if (e == D) { /* sparse_thres: the threshold */
      icl_philox_out r = icl_trng_block(seed, stream, icl_tfn_base(g, purpose, 1), 0);
      return (float)icl_below(r.v[0], r.v[1], 6) - 3.0f + 0.5f;
    }
    if (e >= dt) return 0.0f;
    icl_philox_out r = icl_trng_block(seed, stream, b0, (uint64_t)e);
    float u = icl_u01(r.v[0]);
    switch (p.kind) {
    case ICL_TASK_INT_HALFSPACE:
      return (float)icl_below(r.v[0], r.v[1], 7) - 3.0f;
    case ICL_TASK_MAJORITY:
      return u < 0.7f ? 0.0f : 1.0f;
    case ICL_TASK_PARITY:
      return (r.v[0] >> 31) ? 1.0f : 0.0f;
    default:
      return icl_tbool_ternary(u, 0.7f, 0.15f);
    }
  }
  default: /* linear, noisy, quadratic: w ~ N(0, I_D) over all D */
    return icl_trng_normal(seed, stream, b0, (uint64_t)e);
  }
}

/* phase 1: ws[idx], idx over B x slots x F */
ICL_TK_HD void task_fn_at(const task_args &a, uint64_t stream, float *ws, int64_t idx) {
  const int64_t per = (int64_t)a.slots * a.F;
  int64_t b = idx / per, rest = idx - b * per, s = rest / a.F, e = rest - s * a.F;
  uint64_t g = (uint64_t)(a.prompt_offset + b);
  ws[idx] = fn_elem(a.p, a.seed, stream, g, s ? ICL_TRNG_FN_B : ICL_TRNG_FN_A, a.vdt, e);
}

/* phase 2: x[b, i, j] before forcing (the CPU's draw_x), idx over B x N x D */
ICL_TK_HD float task_x_at(int boolean, int64_t N, int64_t D, int64_t dt, uint64_t seed, uint64_t stream,
                          int64_t prompt_offset, int64_t idx) {
  int64_t row = idx / D, j = idx - row * D, b = row / N, i = row - b * N;
  if (j >= dt) return 0.0f;
  uint64_t base = icl_trng_index((uint64_t)(prompt_offset + b), ICL_TRNG_X, icl_trng_pt_local((uint64_t)i, 0));
  if (boolean) {
    icl_philox_out r = icl_philox(seed, stream, base + (uint64_t)(j >> 7));
    return ((r.v[(j >> 5) & 3] >> (j & 31)) & 1u) ? 1.0f : -1.0f;
  }
  icl_philox_out r = icl_philox(seed, stream, base + (uint64_t)(j >> 1));
  return (j & 1) ? icl_normal_from(r.v[2], r.v[3]) : icl_normal_from(r.v[0], r.v[1]);
}

/* phase 3: forcing and label of point row = b N + i (owns its x row) */
ICL_TK_HD void task_label_at(const task_args &a, uint64_t stream, float *xs, float *ys, const float *ws, int64_t row) {
  int64_t b = row / a.N, i = row - b * a.N;
  uint64_t g = (uint64_t)(a.prompt_offset + b);
  const float *fa = ws + b * a.slots * a.F, *fl = ws + (b * a.slots + a.slots - 1) * a.F;
  float *x = xs + row * a.D;
  float u = 0.0f, eps = 0.0f;
  if (a.boolean || a.noisy) {
    icl_philox_out r = icl_philox(a.seed, stream, icl_trng_index(g, ICL_TRNG_PT, icl_trng_pt_local((uint64_t)i, 0)));
    u = icl_u01(r.v[0]);
    if (a.noisy) eps = icl_normal_from(r.v[2], r.v[3]);
  }
  if (a.boolean) {
    icl_tbool_force(&a.p, fa, u, x);
    ys[row] = icl_tbool_label(&a.p, fl, x);
  } else {
    /* relu_2nn too: icl_treg_eval sums exactly what the CPU's relu_eval sums */
    ys[row] = icl_treg_eval(&a.p, fl, x, eps);
  }
}

/* phase 4 (renormalize_ys), the CPU's arithmetic: per-prompt sums in point
 * order, then over prompts in order; *f = sqrt(D) / std when var > 0 */
ICL_TK_HD void task_renorm_prompt(const float *ys, int64_t N, int64_t b, double *sb, double *ssb) {
  double s = 0.0, ss = 0.0;
  for (int64_t i = 0; i < N; i++) {
    double y = ys[b * N + i];
    s += y;
    ss += y * y; /* exact product: an FMA changes nothing */
  }
  *sb = s;
  *ssb = ss;
}

ICL_TK_HD int task_renorm_factor(const double *part, int64_t B, int64_t N, int64_t D, float *f) {
  double s = 0.0, ss = 0.0;
  for (int64_t b = 0; b < B; b++) {
    s += part[2 * b];
    ss += part[2 * b + 1];
  }
  double n = (double)(B * N), mean = s / n;
#ifdef __CUDA_ARCH__
  double var = __ddiv_rn(__dsub_rn(ss, __dmul_rn(__dmul_rn(n, mean), mean)), n - 1.0);
#else
  double var = (ss - n * mean * mean) / (n - 1);
#endif
  if (!(var > 0)) return 0;
  *f = (float)(sqrt((double)D) / sqrt(var));
  return 1;
}

/* the arguments of a draw, as cpu_tasks.c derives them */
static inline task_args task_args_make(const icl_task_params *p, const icl_task_draw *d, int64_t F, int slots) {
  task_args a;
  a.p = *p;
  a.B = d->B;
  a.N = d->N;
  a.D = p->n_dims;
  a.F = F;
  a.slots = slots;
  a.boolean = p->kind >= ICL_TASK_CONJUNCTION;
  a.noisy = p->kind == ICL_TASK_NOISY_LINEAR_REGRESSION;
  /* Boolean tasks ignore d_t unless asked (as published) */
  a.xdt = a.boolean && !p->truncate_boolean ? a.D : d->n_dims_truncated;
  a.vdt = a.boolean ? a.xdt : d->n_dims_truncated;
  a.seed = d->seed;
  a.stream = d->stream;
  a.stream_add = d->stream_add;
  a.prompt_offset = d->prompt_offset;
  return a;
}

#endif
