/* Reductions of the CPU backend over one dim or over everything.
 * Sums accumulate in double: these back the user-facing tensor API, where a
 * mean over 10^6 elements should not drift, not the training hot path. */
#include <math.h>
#include <stdlib.h>

#include "../core/backend.h"
#include "cpu_kernels.h"
#include "strided.h"

/* Reduce n values at p with stride s. */
static double reduce_line(icl_redop op, const float *p, int64_t n, int64_t s, int32_t *argidx) {
  switch (op) {
  case ICL_RED_SUM:
  case ICL_RED_MEAN: {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += p[i * s];
    return op == ICL_RED_MEAN ? (n ? acc / (double)n : NAN) : acc;
  }
  case ICL_RED_PROD: {
    double acc = 1;
    for (int64_t i = 0; i < n; i++) acc *= p[i * s];
    return acc;
  }
  case ICL_RED_VAR:
  case ICL_RED_VAR0: {
    double m = 0, acc = 0;
    for (int64_t i = 0; i < n; i++) m += p[i * s];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) {
      double d = p[i * s] - m;
      acc += d * d;
    }
    int64_t den = op == ICL_RED_VAR ? n - 1 : n;
    return den > 0 ? acc / (double)den : NAN;
  }
  case ICL_RED_MAX:
  case ICL_RED_ARGMAX:
  case ICL_RED_MIN:
  case ICL_RED_ARGMIN: {
    int want_max = op == ICL_RED_MAX || op == ICL_RED_ARGMAX;
    float best = p[0];
    int32_t bi = 0;
    for (int64_t i = 1; i < n; i++) {
      float v = p[i * s];
      if (isnan(best)) break; /* NaN wins, as in torch */
      if (isnan(v) || (want_max ? v > best : v < best)) {
        best = v;
        bi = (int32_t)i;
      }
    }
    if (argidx) *argidx = bi;
    return best;
  }
  default: return NAN;
  }
}

static void store(icl_view *out, icl_dtype odt, int64_t off, double v, int32_t idx, icl_redop op) {
  if (op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN) {
    if (odt == ICL_I32) ((int32_t *)out->data)[off] = idx;
    else ((float *)out->data)[off] = (float)idx;
  } else if (odt == ICL_I32) {
    ((int32_t *)out->data)[off] = (int32_t)v;
  } else {
    ((float *)out->data)[off] = (float)v;
  }
}

int icl_cpu_reduce(icl_ctx *ctx, icl_redop op, icl_view out, icl_dtype odt, icl_view in, int dim) {
  (void)ctx;
  if (dim < 0) {
    /* everything: gather into one line when the input is not contiguous */
    int64_t n = 1;
    for (int i = 0; i < in.ndim; i++) n *= in.shape[i];
    const icl_view *vs[1] = {&in};
    icl_walk w;
    icl_walk_init(&w, 1, vs);
    int32_t idx = 0;
    double v;
    if (w.ndim == 1) {
      v = reduce_line(op, (const float *)in.data, n, w.stride[0][0], &idx);
    } else {
      float *tmp = malloc((size_t)n * sizeof(float));
      if (!tmp) return icl_errorf(ctx, ICL_ENOMEM, "reduce: out of memory");
      icl_view tv = in;
      tv.data = tmp;
      int64_t s = 1;
      for (int i = in.ndim - 1; i >= 0; i--) {
        tv.stride[i] = s;
        s *= in.shape[i];
      }
      icl_cpu_copy(ctx, tv, ICL_F32, in, ICL_F32);
      v = reduce_line(op, tmp, n, 1, &idx);
      free(tmp);
    }
    store(&out, odt, 0, v, idx, op);
    return ICL_OK;
  }
  /* outer view: the input without `dim`, walked in step with the output */
  icl_view rest = in;
  int64_t n = in.shape[dim], s = in.stride[dim];
  rest.ndim = in.ndim - 1;
  for (int i = dim; i < rest.ndim; i++) {
    rest.shape[i] = in.shape[i + 1];
    rest.stride[i] = in.stride[i + 1];
  }
  const icl_view *vs[2] = {&out, &rest};
  icl_walk w;
  icl_walk_init(&w, 2, vs);
  int64_t outer = icl_walk_outer_count(&w), inner = w.shape[w.ndim - 1];
  int64_t so = w.stride[0][w.ndim - 1], si = w.stride[1][w.ndim - 1];
#pragma omp parallel for if (outer * inner * n >= 65536 && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    int64_t off[2];
    icl_walk_outer(&w, 2, o, off);
    for (int64_t i = 0; i < inner; i++) {
      int32_t idx = 0;
      double v = reduce_line(op, (const float *)in.data + off[1] + i * si, n, s, &idx);
      store(&out, odt, off[0] + i * so, v, idx, op);
    }
  }
  return ICL_OK;
}
