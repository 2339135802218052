/* The Boolean function classes (inputs in {-1,+1}^D, labels +-1): drawing
 * one prompt's function, the per-point forcing of the input sampler, and
 * the label. Header-only (ICL_HD) for the CUDA mirror. All arithmetic is on
 * small integers held in floats, hence exact everywhere.
 *
 * Parameter layouts (floats per prompt):
 *   cnf, dnf:      w[3*D] (clause c at c*D), then c* (the forced clause)
 *   sparse_thres:  w[D], then the threshold b
 *   the others:    w[D] (ternary, {0,1} or the 0/1 indicator of a subset)
 * Philox subs: sub 0 = w (cnf/dnf: sub c for clause c), sub 1 = threshold,
 * sub 3 = c*. Categorical draws use block e's words (0,1). Only the first V
 * coordinates get weights (V = D, or d_t with truncate_boolean). */
#ifndef ICL_TASK_BOOLEAN_H
#define ICL_TASK_BOOLEAN_H

#include "tasks/task_regression.h"

#define ICL_CNF_CLAUSES 3
#define ICL_SPARSE_DISJ_K 4
#define ICL_SPARSE_PARITY_K 2

/* {0, +1, -1} with probabilities (1 - 2q, q, q) from a uniform u */
ICL_HD float icl_tbool_ternary(float u, float p_zero, float q) {
  return u < p_zero ? 0.0f : (u < p_zero + q ? 1.0f : -1.0f);
}

ICL_HD void icl_tbool_draw(const icl_task_params *p, uint64_t seed, uint64_t stream, uint64_t g, uint32_t purpose,
                           int64_t V, float *fn) {
  const int64_t D = p->n_dims;
  const uint64_t b0 = icl_tfn_base(g, purpose, 0);
  switch (p->kind) {
  case ICL_TASK_CNF:
  case ICL_TASK_DNF: {
    for (int c = 0; c < ICL_CNF_CLAUSES; c++) {
      uint64_t bc = icl_tfn_base(g, purpose, (uint32_t)c);
      for (int64_t j = 0; j < D; j++)
        fn[c * D + j] = j < V ? icl_tbool_ternary(icl_u01(icl_trng_block(seed, stream, bc, (uint64_t)j).v[0]), 0.8f,
                                                  0.1f)
                              : 0.0f;
    }
    icl_philox_out r = icl_trng_block(seed, stream, icl_tfn_base(g, purpose, 3), 0);
    fn[ICL_CNF_CLAUSES * D] = (float)icl_below(r.v[0], r.v[1], ICL_CNF_CLAUSES);
    break;
  }
  case ICL_TASK_SPARSE_DISJUNCTION:
  case ICL_TASK_SPARSE_PARITY: {
    int64_t k = p->kind == ICL_TASK_SPARSE_DISJUNCTION ? ICL_SPARSE_DISJ_K : ICL_SPARSE_PARITY_K;
    icl_tfn_subset(seed, stream, b0, V, k, fn);
    for (int64_t j = V; j < D; j++) fn[j] = 0.0f;
    break;
  }
  default:
    for (int64_t j = 0; j < D; j++) {
      if (j >= V) {
        fn[j] = 0.0f;
        continue;
      }
      icl_philox_out r = icl_trng_block(seed, stream, b0, (uint64_t)j);
      float u = icl_u01(r.v[0]);
      switch (p->kind) {
      case ICL_TASK_INT_HALFSPACE: fn[j] = (float)icl_below(r.v[0], r.v[1], 7) - 3.0f; break;
      case ICL_TASK_MAJORITY: fn[j] = u < 0.7f ? 0.0f : 1.0f; break;
      case ICL_TASK_PARITY: fn[j] = (r.v[0] >> 31) ? 1.0f : 0.0f; break; /* Bern(1/2): a uniform subset */
      default: fn[j] = icl_tbool_ternary(u, 0.7f, 0.15f); break;        /* conjunction, disjunction, sparse_thres */
      }
    }
    if (p->kind == ICL_TASK_SPARSE_THRES) {
      icl_philox_out r = icl_trng_block(seed, stream, icl_tfn_base(g, purpose, 1), 0);
      fn[D] = (float)icl_below(r.v[0], r.v[1], 6) - 3.0f + 0.5f; /* {-2.5, ..., 2.5} */
    }
    break;
  }
}

/* The input sampler's label balancing for one point: with probability p
 * (coin u) overwrite the literals of function A (fn). */
ICL_HD void icl_tbool_force(const icl_task_params *p, const float *fn, float u, float *x) {
  const int64_t D = p->n_dims;
  const float *w = fn;
  float sgn; /* x_j <- sgn * w_j on the support */
  switch (p->kind) {
  case ICL_TASK_CONJUNCTION: /* forced positive: every literal true */
    if (!(u < 0.3f)) return;
    sgn = 1.0f;
    break;
  case ICL_TASK_DISJUNCTION:        /* forced negative: every literal false */
  case ICL_TASK_SPARSE_DISJUNCTION: /* x_S <- -1 */
    if (!(u < 0.3f)) return;
    sgn = -1.0f;
    break;
  case ICL_TASK_CNF: /* falsify clause c* */
    if (!(u < 0.3f)) return;
    w = fn + (int64_t)fn[ICL_CNF_CLAUSES * D] * D;
    sgn = -1.0f;
    break;
  case ICL_TASK_DNF: /* satisfy term c* */
    if (!(u < 0.35f)) return;
    w = fn + (int64_t)fn[ICL_CNF_CLAUSES * D] * D;
    sgn = 1.0f;
    break;
  default: return;
  }
  for (int64_t j = 0; j < D; j++)
    if (w[j] != 0.0f) x[j] = sgn * w[j];
}

ICL_HD float icl_tbool_sign(float a) { return a > 0.0f ? 1.0f : -1.0f; } /* arguments are never 0 */

/* <x, w> and m = |w|_1 */
ICL_HD float icl_tbool_dot(const float *w, const float *x, int64_t D, float *m) {
  float s = 0.0f, n = 0.0f;
  for (int64_t j = 0; j < D; j++) {
    s += w[j] * x[j];
    n += w[j] != 0.0f ? 1.0f : 0.0f;
  }
  *m = n;
  return s;
}

ICL_HD float icl_tbool_label(const icl_task_params *p, const float *fn, const float *x) {
  const int64_t D = p->n_dims;
  float m, s;
  switch (p->kind) {
  case ICL_TASK_CONJUNCTION: s = icl_tbool_dot(fn, x, D, &m); return icl_tbool_sign(s - (m - 1.0f));
  case ICL_TASK_DISJUNCTION:
  case ICL_TASK_SPARSE_DISJUNCTION: s = icl_tbool_dot(fn, x, D, &m); return icl_tbool_sign(s + (m - 1.0f));
  case ICL_TASK_CNF: { /* AND of ORs; an empty clause is false */
    float y = 1.0f;
    for (int c = 0; c < ICL_CNF_CLAUSES; c++) {
      s = icl_tbool_dot(fn + c * D, x, D, &m);
      float v = icl_tbool_sign(s + (m - 1.0f));
      y = v < y ? v : y;
    }
    return y;
  }
  case ICL_TASK_DNF: { /* OR of ANDs; an empty term is true */
    float y = -1.0f;
    for (int c = 0; c < ICL_CNF_CLAUSES; c++) {
      s = icl_tbool_dot(fn + c * D, x, D, &m);
      float v = icl_tbool_sign(s - (m - 1.0f));
      y = v > y ? v : y;
    }
    return y;
  }
  case ICL_TASK_INT_HALFSPACE:
  case ICL_TASK_MAJORITY: s = icl_tbool_dot(fn, x, D, &m); return icl_tbool_sign(s - 0.5f);
  case ICL_TASK_SPARSE_THRES: s = icl_tbool_dot(fn, x, D, &m); return icl_tbool_sign(s - fn[D]);
  case ICL_TASK_PARITY:
  case ICL_TASK_SPARSE_PARITY: { /* +1 iff an odd number of the selected bits are +1 */
    int odd = 0;
    for (int64_t j = 0; j < D; j++) odd ^= (fn[j] != 0.0f && x[j] > 0.0f);
    return odd ? 1.0f : -1.0f;
  }
  default: return 0.0f;
  }
}

#endif
