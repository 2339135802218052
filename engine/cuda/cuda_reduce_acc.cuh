/* The reductions' accumulators (see cuda_reduce.cu): one type per family of
 * ops with init / add / merge / result, host-and-device (except the warp
 * shuffle) so that the merge rules can be checked on a machine without a GPU.
 * merge must be associative and commutative up to double rounding: the
 * kernels combine partial results in tree order, not in index order. */
#ifndef ICL_CUDA_REDUCE_ACC_CUH
#define ICL_CUDA_REDUCE_ACC_CUH

#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
}

#define ICL_ACC_HD __host__ __device__ __forceinline__
#define FULL_MASK 0xffffffffu

struct KSum { /* SUM, MEAN */
  typedef double A;
  static ICL_ACC_HD A init() { return 0.0; }
  static ICL_ACC_HD void add(A &a, float x, int64_t, int) { a += (double)x; }
  static ICL_ACC_HD A merge(A a, A b, int) { return a + b; }
  static __device__ __forceinline__ A shfl_down(A a, int d) { return __shfl_down_sync(FULL_MASK, a, d); }
  static ICL_ACC_HD void result(const A &a, int op, int64_t n, double *v, int32_t *idx) {
    *idx = 0;
    *v = op == ICL_RED_MEAN ? (n ? a / (double)n : (double)NAN) : a;
  }
};

struct KProd {
  typedef double A;
  static ICL_ACC_HD A init() { return 1.0; }
  static ICL_ACC_HD void add(A &a, float x, int64_t, int) { a *= (double)x; }
  static ICL_ACC_HD A merge(A a, A b, int) { return a * b; }
  static __device__ __forceinline__ A shfl_down(A a, int d) { return __shfl_down_sync(FULL_MASK, a, d); }
  static ICL_ACC_HD void result(const A &a, int, int64_t, double *v, int32_t *idx) {
    *idx = 0;
    *v = a;
  }
};

struct VarAcc {
  double n, mean, m2;
};

struct KVar { /* VAR (unbiased), VAR0 (biased) */
  typedef VarAcc A;
  static ICL_ACC_HD A init() {
    A a = {0.0, 0.0, 0.0};
    return a;
  }
  static ICL_ACC_HD void add(A &a, float xf, int64_t, int) {
    double x = (double)xf;
    a.n += 1.0;
    double d = x - a.mean;
    a.mean += d / a.n;
    a.m2 += d * (x - a.mean);
  }
  static ICL_ACC_HD A merge(A a, A b, int) {
    if (b.n == 0.0) return a;
    if (a.n == 0.0) return b;
    A r;
    r.n = a.n + b.n;
    double d = b.mean - a.mean;
    r.mean = a.mean + d * (b.n / r.n);
    r.m2 = a.m2 + b.m2 + d * d * (a.n * b.n / r.n);
    return r;
  }
  static __device__ __forceinline__ A shfl_down(A a, int d) {
    A r;
    r.n = __shfl_down_sync(FULL_MASK, a.n, d);
    r.mean = __shfl_down_sync(FULL_MASK, a.mean, d);
    r.m2 = __shfl_down_sync(FULL_MASK, a.m2, d);
    return r;
  }
  static ICL_ACC_HD void result(const A &a, int op, int64_t n, double *v, int32_t *idx) {
    *idx = 0;
    int64_t den = op == ICL_RED_VAR ? n - 1 : n;
    *v = den > 0 ? a.m2 / (double)den : (double)NAN;
  }
};

struct ExtAcc {
  float v;
  long long i; /* < 0: nothing seen yet */
};

struct KExt { /* MAX, MIN, ARGMAX, ARGMIN; want_max picks the direction */
  typedef ExtAcc A;
  static ICL_ACC_HD A init() {
    A a = {0.0f, -1};
    return a;
  }
  static ICL_ACC_HD A merge(A a, A b, int want_max) {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    bool an = isnan(a.v), bn = isnan(b.v);
    if (an || bn) {
      if (an && bn) return b.i < a.i ? b : a;
      return an ? a : b;
    }
    if (want_max ? b.v > a.v : b.v < a.v) return b;
    if (b.v == a.v && b.i < a.i) return b;
    return a;
  }
  static ICL_ACC_HD void add(A &a, float x, int64_t j, int want_max) {
    A b = {x, (long long)j};
    a = merge(a, b, want_max);
  }
  static __device__ __forceinline__ A shfl_down(A a, int d) {
    A r;
    r.v = __shfl_down_sync(FULL_MASK, a.v, d);
    r.i = __shfl_down_sync(FULL_MASK, a.i, d);
    return r;
  }
  static ICL_ACC_HD void result(const A &a, int, int64_t, double *v, int32_t *idx) {
    *v = a.i < 0 ? (double)NAN : (double)a.v;
    *idx = a.i < 0 ? 0 : (int32_t)a.i;
  }
};

#endif
