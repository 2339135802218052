/* Counter-based random fills: element i (in row-major order of the view)
 * is a pure function of (seed, stream, i), see core/rng.h. */
#include "../core/rng.h"
#include "cpu_kernels.h"
#include "strided.h"

static inline double draw(icl_dist dist, double p0, double p1, icl_philox_out r) {
  switch (dist) {
  case ICL_DIST_UNIFORM: return p0 + (p1 - p0) * (double)icl_u01(r.v[0]);
  case ICL_DIST_NORMAL: return p0 + p1 * (double)icl_normal_from(r.v[0], r.v[1]);
  case ICL_DIST_BERNOULLI: return icl_u01(r.v[0]) < (float)p0 ? 1.0 : 0.0;
  case ICL_DIST_RANDINT: return p0 + (double)icl_below(r.v[0], r.v[1], (uint32_t)(p1 - p0));
  default: return 0;
  }
}

int icl_cpu_random(icl_ctx *ctx, icl_view out, icl_dtype dt, icl_dist dist, double p0, double p1, uint64_t seed,
                   uint64_t stream) {
  (void)ctx;
  int64_t n = 1;
  for (int i = 0; i < out.ndim; i++) n *= out.shape[i];
#pragma omp parallel for if (n >= 16384) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    /* row-major position -> strided offset */
    int64_t off = 0, rem = i;
    for (int d = out.ndim - 1; d >= 0; d--) {
      off += (rem % out.shape[d]) * out.stride[d];
      rem /= out.shape[d];
    }
    double v = draw(dist, p0, p1, icl_philox(seed, stream, (uint64_t)i));
    if (dt == ICL_F32) ((float *)out.data)[off] = (float)v;
    else ((int32_t *)out.data)[off] = (int32_t)v;
  }
  return ICL_OK;
}
