/* Counter-based random fills: element i in row-major order of the view gets
 * Philox(seed, stream, i), exactly as engine/cpu/cpu_random.c draws it, so a
 * tensor drawn on the GPU equals the one drawn on the CPU.
 *
 * Bit-for-bit agreement needs the same double arithmetic as the host: the
 * CPU is built with -ffp-contract=off, so p0 + span * u is a rounded multiply
 * then a rounded add; __dmul_rn/__dadd_rn keep nvcc from fusing them into an
 * FMA. Uniform, Bernoulli and randint are then identical; the normal goes
 * through the device's double log/cos, which may differ from glibc's in the
 * last double bit, so after rounding to float it can (rarely) differ by one
 * float ulp. */
#include "core/rng.h"
#include "cuda_internal.cuh"

struct draw_params {
  int dist;
  double p0;
  double span;  /* uniform: p1 - p0 */
  double p1;    /* normal: std */
  float pf;     /* bernoulli: (float)p0 */
  uint32_t nint; /* randint: (uint32_t)(p1 - p0) */
};

__device__ __forceinline__ double draw(const draw_params &p, icl_philox_out r) {
  switch (p.dist) {
  case ICL_DIST_UNIFORM: return __dadd_rn(p.p0, __dmul_rn(p.span, (double)icl_u01(r.v[0])));
  case ICL_DIST_NORMAL: return __dadd_rn(p.p0, __dmul_rn(p.p1, (double)icl_normal_from(r.v[0], r.v[1])));
  case ICL_DIST_BERNOULLI: return icl_u01(r.v[0]) < p.pf ? 1.0 : 0.0;
  case ICL_DIST_RANDINT: return __dadd_rn(p.p0, (double)icl_below(r.v[0], r.v[1], p.nint));
  default: return 0;
  }
}

template <typename T>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_random(icl_dwalk<1> w, int64_t n, int narrow, T *out, draw_params p, uint64_t seed, uint64_t stream) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[1];
    if (narrow) icl_dwalk_offsets<1, uint32_t>(w, (uint32_t)i, off);
    else icl_dwalk_offsets<1, int64_t>(w, i, off);
    double v = draw(p, icl_philox(seed, stream, (uint64_t)i));
    out[off[0]] = (T)v;
  }
}

extern "C" int icl_cuda_random(icl_ctx *ctx, icl_view out, icl_dtype dt, icl_dist dist, double p0, double p1,
                               uint64_t seed, uint64_t stream) {
  icl_cuda_state *st = ctx->cuda;
  int64_t n = icl_view_numel(&out);
  if (n == 0) return ICL_OK;
  if ((int)dist < ICL_DIST_UNIFORM || (int)dist > ICL_DIST_RANDINT)
    return icl_errorf(ctx, ICL_EINVAL, "cuda: random: unknown distribution %d", (int)dist);
  draw_params p;
  p.dist = (int)dist;
  p.p0 = p0;
  p.span = p1 - p0; /* what the CPU computes per element, computed once */
  p.p1 = p1;
  p.pf = (float)p0;
  p.nint = dist == ICL_DIST_RANDINT ? (uint32_t)(p1 - p0) : 0u;
  /* merging dims keeps the row-major order, so flat index i is element i */
  const icl_view *vs[1] = {&out};
  icl_dwalk<1> w = icl_dwalk_make<1>(vs);
  int narrow = icl_cuda_narrow_ok(st, n);
  unsigned blocks = icl_cuda_blocks(st, n, ICL_CUDA_THREADS);
  if (dt == ICL_F32)
    k_random<float><<<blocks, ICL_CUDA_THREADS, 0, st->stream>>>(w, n, narrow, (float *)out.data, p, seed, stream);
  else
    k_random<int32_t><<<blocks, ICL_CUDA_THREADS, 0, st->stream>>>(w, n, narrow, (int32_t *)out.data, p, seed,
                                                                    stream);
  ICL_CU_LAUNCHED(ctx, "random");
  return ICL_OK;
}
