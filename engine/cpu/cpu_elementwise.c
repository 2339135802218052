/* Strided elementwise kernels of the CPU backend: fill, copy/convert, unary
 * and binary maps over pre-broadcast views. */
#include <math.h>
#include <string.h>

#include "../core/backend.h"
#include "cpu_kernels.h"
#include "strided.h"

/* below this many elements a parallel region costs more than it saves */
#define PAR_MIN 32768

static inline float bin_apply(icl_binop op, float a, float b) {
  switch (op) {
  case ICL_BIN_ADD: return a + b;
  case ICL_BIN_SUB: return a - b;
  case ICL_BIN_MUL: return a * b;
  case ICL_BIN_DIV: return a / b;
  case ICL_BIN_POW: return powf(a, b);
  case ICL_BIN_MAX: return a > b || isnan(a) ? a : b;
  case ICL_BIN_MIN: return a < b || isnan(a) ? a : b;
  case ICL_BIN_EQ: return a == b;
  case ICL_BIN_NE: return a != b;
  case ICL_BIN_LT: return a < b;
  case ICL_BIN_LE: return a <= b;
  case ICL_BIN_GT: return a > b;
  case ICL_BIN_GE: return a >= b;
  default: return NAN;
  }
}

static inline float un_apply(icl_unop op, float x, float p0, float p1) {
  switch (op) {
  case ICL_UN_NEG: return -x;
  case ICL_UN_ABS: return fabsf(x);
  case ICL_UN_SIGN: return (float)((x > 0) - (x < 0));
  case ICL_UN_EXP: return expf(x);
  case ICL_UN_LOG: return logf(x);
  case ICL_UN_SQRT: return sqrtf(x);
  case ICL_UN_SQUARE: return x * x;
  case ICL_UN_SIN: return sinf(x);
  case ICL_UN_COS: return cosf(x);
  case ICL_UN_TANH: return tanhf(x);
  case ICL_UN_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case ICL_UN_RELU: return x > 0 ? x : 0.0f;
  case ICL_UN_SILU: return x / (1.0f + expf(-x));
  case ICL_UN_RECIP: return 1.0f / x;
  case ICL_UN_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
  case ICL_UN_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  case ICL_UN_AFFINE: return p0 * x + p1;
  case ICL_UN_POWS: return powf(x, p0);
  case ICL_UN_RPOWS: return powf(p0, x);
  case ICL_UN_RSUB: return p0 - x;
  case ICL_UN_RDIV: return p0 / x;
  case ICL_UN_MAXS: return x > p0 || isnan(x) ? x : p0;
  case ICL_UN_MINS: return x < p0 || isnan(x) ? x : p0;
  case ICL_UN_CMPS: return bin_apply((icl_binop)(int)p1, x, p0);
  default: return NAN;
  }
}

static int64_t view_numel(const icl_view *v) {
  int64_t n = 1;
  for (int i = 0; i < v->ndim; i++) n *= v->shape[i];
  return n;
}

int icl_cpu_fill(icl_ctx *ctx, icl_view out, icl_dtype dt, double value) {
  (void)ctx;
  const icl_view *vs[1] = {&out};
  icl_walk w;
  icl_walk_init(&w, 1, vs);
  int64_t outer = icl_walk_outer_count(&w), inner = w.shape[w.ndim - 1];
  int64_t s0 = w.stride[0][w.ndim - 1];
  /* a contiguous block (the walk merged it into one row) is split into
   * pieces for the threads, other views by rows */
  const int64_t total = view_numel(&out), piece = outer == 1 ? 16384 : inner;
  const int64_t npiece = outer == 1 ? (inner + piece - 1) / piece : outer;
#pragma omp parallel for if (total >= PAR_MIN && npiece > 1) schedule(static)
  for (int64_t o = 0; o < npiece; o++) {
    int64_t off[1] = {0}, i0 = 0, i1 = inner;
    if (outer == 1) {
      i0 = o * piece;
      i1 = i0 + piece < inner ? i0 + piece : inner;
    } else {
      icl_walk_outer(&w, 1, o, off);
    }
    if (dt == ICL_F32) {
      float *p = (float *)out.data + off[0], v = (float)value;
      for (int64_t i = i0; i < i1; i++) p[i * s0] = v;
    } else {
      int32_t *p = (int32_t *)out.data + off[0], v = (int32_t)value;
      for (int64_t i = i0; i < i1; i++) p[i * s0] = v;
    }
  }
  return ICL_OK;
}

int icl_cpu_copy(icl_ctx *ctx, icl_view out, icl_dtype odt, icl_view in, icl_dtype idt) {
  (void)ctx;
  const icl_view *vs[2] = {&out, &in};
  icl_walk w;
  icl_walk_init(&w, 2, vs);
  int64_t outer = icl_walk_outer_count(&w), inner = w.shape[w.ndim - 1];
  int64_t so = w.stride[0][w.ndim - 1], si = w.stride[1][w.ndim - 1];
  int64_t total = view_numel(&out);
#pragma omp parallel for if (total >= PAR_MIN && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    int64_t off[2];
    icl_walk_outer(&w, 2, o, off);
    if (odt == ICL_F32 && idt == ICL_F32) {
      float *d = (float *)out.data + off[0];
      const float *s = (const float *)in.data + off[1];
      if (so == 1 && si == 1) memcpy(d, s, (size_t)inner * sizeof(float));
      else
        for (int64_t i = 0; i < inner; i++) d[i * so] = s[i * si];
    } else if (odt == ICL_I32 && idt == ICL_I32) {
      int32_t *d = (int32_t *)out.data + off[0];
      const int32_t *s = (const int32_t *)in.data + off[1];
      for (int64_t i = 0; i < inner; i++) d[i * so] = s[i * si];
    } else if (odt == ICL_F32) {
      float *d = (float *)out.data + off[0];
      const int32_t *s = (const int32_t *)in.data + off[1];
      for (int64_t i = 0; i < inner; i++) d[i * so] = (float)s[i * si];
    } else {
      /* float -> int truncates toward zero, as C and torch do */
      int32_t *d = (int32_t *)out.data + off[0];
      const float *s = (const float *)in.data + off[1];
      for (int64_t i = 0; i < inner; i++) d[i * so] = (int32_t)s[i * si];
    }
  }
  return ICL_OK;
}

int icl_cpu_unary(icl_ctx *ctx, icl_unop op, icl_view out, icl_view in, float p0, float p1) {
  (void)ctx;
  const icl_view *vs[2] = {&out, &in};
  icl_walk w;
  icl_walk_init(&w, 2, vs);
  int64_t outer = icl_walk_outer_count(&w), inner = w.shape[w.ndim - 1];
  int64_t so = w.stride[0][w.ndim - 1], si = w.stride[1][w.ndim - 1];
  int64_t total = view_numel(&out);
#pragma omp parallel for if (total >= PAR_MIN && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    int64_t off[2];
    icl_walk_outer(&w, 2, o, off);
    float *d = (float *)out.data + off[0];
    const float *s = (const float *)in.data + off[1];
    for (int64_t i = 0; i < inner; i++) d[i * so] = un_apply(op, s[i * si], p0, p1);
  }
  return ICL_OK;
}

int icl_cpu_binary(icl_ctx *ctx, icl_binop op, icl_view out, icl_view a, icl_view b) {
  (void)ctx;
  const icl_view *vs[3] = {&out, &a, &b};
  icl_walk w;
  icl_walk_init(&w, 3, vs);
  int64_t outer = icl_walk_outer_count(&w), inner = w.shape[w.ndim - 1];
  int64_t so = w.stride[0][w.ndim - 1], sa = w.stride[1][w.ndim - 1], sb = w.stride[2][w.ndim - 1];
  int64_t total = view_numel(&out);
#pragma omp parallel for if (total >= PAR_MIN && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    int64_t off[3];
    icl_walk_outer(&w, 3, o, off);
    float *d = (float *)out.data + off[0];
    const float *x = (const float *)a.data + off[1];
    const float *y = (const float *)b.data + off[2];
    if (so == 1 && sa == 1 && sb == 1 && op == ICL_BIN_ADD)
      for (int64_t i = 0; i < inner; i++) d[i] = x[i] + y[i];
    else if (so == 1 && sa == 1 && sb == 1 && op == ICL_BIN_MUL)
      for (int64_t i = 0; i < inner; i++) d[i] = x[i] * y[i];
    else
      for (int64_t i = 0; i < inner; i++) d[i * so] = bin_apply(op, x[i * sa], y[i * sb]);
  }
  return ICL_OK;
}

int icl_cpu_nonfinite(icl_ctx *ctx, const float *x, int64_t n, int *bad) {
  (void)ctx;
  int found = 0;
#pragma omp parallel for reduction(| : found) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) found |= !isfinite(x[i]);
  *bad = found;
  return ICL_OK;
}
