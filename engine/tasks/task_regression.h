/* The Gaussian-input function classes: drawing one prompt's function and
 * evaluating it at a point. Header-only (ICL_HD) so the CUDA kernels use
 * the same code. Sums run in double over float products (exact in double),
 * so fused multiply-adds cannot change them; results are rounded to float
 * once. Parameter layouts (floats per prompt, see icl_task_fn_floats):
 *   linear / noisy / quadratic / sparse:  w[D]
 *   relu_2nn:                             W1[D*h] (row j, column k at j*h + k), W2[h]
 *   decision_tree:                        feature[n], value[n], n = 2^(depth+1) - 1
 * Philox subs (task_rng.h): sub 0 = w / W1 / tree nodes, sub 1 = sparse
 * support keys / W2. */
#ifndef ICL_TASK_REGRESSION_H
#define ICL_TASK_REGRESSION_H

#include "tasks/task_rng.h"
#include "tasks/tasks.h"

#define ICL_RELU_MAX_HIDDEN 65536
#define ICL_TREE_MAX_DEPTH 12

ICL_HD uint64_t icl_tfn_base(uint64_t g, uint32_t purpose, uint32_t sub) {
  return icl_trng_index(g, purpose, icl_trng_fn_local(sub, 0));
}

/* A uniform k-subset of {0..V-1}: element j gets the key word 0 of block
 * j, and the subset is the k smallest (key, j) pairs. Writes 1 (in) or 0
 * into sel[0..V-1]. A device can instead give each element a thread that
 * counts the pairs below its own. */
ICL_HD void icl_tfn_subset(uint64_t seed, uint64_t stream, uint64_t base, int64_t V, int64_t k, float *sel) {
  union {
    float f;
    uint32_t u;
  } kw;
  for (int64_t j = 0; j < V; j++) { /* keys parked in sel as bit patterns */
    kw.u = icl_trng_block(seed, stream, base, (uint64_t)j).v[0];
    sel[j] = kw.f;
  }
  /* the k-th smallest pair, by k passes of "smallest pair above the last" */
  uint64_t last = 0, cut = 0;
  int have = 0;
  for (int64_t t = 0; t < k && t < V; t++) {
    uint64_t best = UINT64_MAX;
    for (int64_t j = 0; j < V; j++) {
      kw.f = sel[j];
      uint64_t pair = ((uint64_t)kw.u << 32) | (uint64_t)j;
      if ((!have || pair > last) && pair < best) best = pair;
    }
    last = best;
    have = 1;
    cut = best;
  }
  for (int64_t j = 0; j < V; j++) {
    kw.f = sel[j];
    uint64_t pair = ((uint64_t)kw.u << 32) | (uint64_t)j;
    sel[j] = have && pair <= cut ? 1.0f : 0.0f;
  }
}

/* Draw the function of global prompt g (purpose FN_A or FN_B) into fn.
 * dt: the draw's n_dims_truncated (used by the sparse support). */
ICL_HD void icl_treg_draw(const icl_task_params *p, uint64_t seed, uint64_t stream, uint64_t g, uint32_t purpose,
                          int64_t dt, float *fn) {
  const int64_t D = p->n_dims;
  const uint64_t b0 = icl_tfn_base(g, purpose, 0), b1 = icl_tfn_base(g, purpose, 1);
  switch (p->kind) {
  case ICL_TASK_SPARSE_LINEAR_REGRESSION: {
    int64_t V = p->sparse_support_all_dims ? D : dt;
    int64_t k = p->sparsity < V ? p->sparsity : V;
    icl_tfn_subset(seed, stream, b1, V, k, fn);
    for (int64_t j = 0; j < D; j++) fn[j] = j < V && fn[j] != 0.0f ? icl_trng_normal(seed, stream, b0, (uint64_t)j) : 0.0f;
    break;
  }
  case ICL_TASK_RELU_2NN_REGRESSION: {
    int64_t h = p->hidden;
    icl_trng_normals(seed, stream, b0, (uint64_t)(D * h), fn);
    icl_trng_normals(seed, stream, b1, (uint64_t)h, fn + D * h);
    break;
  }
  case ICL_TASK_DECISION_TREE: {
    int64_t n = ((int64_t)1 << (p->depth + 1)) - 1;
    for (int64_t node = 0; node < n; node++) {
      icl_philox_out r = icl_trng_block(seed, stream, b0, (uint64_t)node);
      fn[node] = (float)icl_below(r.v[0], r.v[1], (uint32_t)D);
      fn[n + node] = icl_normal_from(r.v[2], r.v[3]);
    }
    break;
  }
  default: /* linear, noisy, quadratic: w ~ N(0, I_D) over all D */
    icl_trng_normals(seed, stream, b0, (uint64_t)D, fn);
    break;
  }
}

/* y = f(x) for one point. noise: the point's N(0,1) draw (noisy only). */
ICL_HD float icl_treg_eval(const icl_task_params *p, const float *fn, const float *x, float noise) {
  const int64_t D = p->n_dims;
  switch (p->kind) {
  case ICL_TASK_QUADRATIC_REGRESSION: {
    double s = 0;
    for (int64_t j = 0; j < D; j++) {
      float xx = x[j] * x[j]; /* x^2 in float (as the float32 original), so the next product is exact */
      s += (double)xx * (double)fn[j];
    }
    return (float)((double)p->scale * s / sqrt(3.0));
  }
  case ICL_TASK_RELU_2NN_REGRESSION: {
    int64_t h = p->hidden;
    const float *w2 = fn + D * h;
    double s = 0;
    for (int64_t k = 0; k < h; k++) {
      double pre = 0;
      for (int64_t j = 0; j < D; j++) pre += (double)x[j] * (double)fn[j * h + k];
      float a = pre > 0 ? (float)pre : 0.0f; /* relu, rounded to float so the next product is exact */
      s += (double)w2[k] * (double)a;
    }
    return (float)((double)p->scale * sqrt(2.0 / (double)h) * s);
  }
  case ICL_TASK_DECISION_TREE: {
    int64_t n = ((int64_t)1 << (p->depth + 1)) - 1, node = 0;
    for (int d = 0; d < p->depth; d++) node = 2 * node + 1 + (x[(int64_t)fn[node]] > 0.0f ? 1 : 0);
    return fn[n + node];
  }
  default: { /* linear, sparse, noisy */
    double s = 0;
    for (int64_t j = 0; j < D; j++) s += (double)x[j] * (double)fn[j];
    float y = (float)((double)p->scale * s);
    if (p->kind == ICL_TASK_NOISY_LINEAR_REGRESSION) y = (float)((double)y + (double)p->noise_std * (double)noise);
    return y;
  }
  }
}

#endif
