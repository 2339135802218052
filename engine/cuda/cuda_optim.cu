/* The optimiser's kernels on the GPU: the mirror of engine/optim/cpu_optim.c.
 *
 * sumsq sums in double over fixed chunks (one block each) and adds the
 * chunks' sums in chunk order, so the result never changes between runs (it
 * can differ from the CPU's double sum only in double rounding). The update
 * spells every rounding the CPU does (__fmul_rn & co.), so parameters and
 * moments are the CPU's bit for bit. adamw_prepare runs in one thread on the
 * device's scalar buffer, as the CPU does on its own; its powf is the device's
 * double pow rounded once to float (glibc's powf is within 0.52 ulp of the
 * exact value, so both give the same float except in rare near-ties).
 *
 * Nothing here allocates or waits for the host: a training step made of
 * these kernels can be captured into a CUDA graph. */
#include "cuda_internal.cuh"

extern "C" {
#include "optim/optim_kernels.h"
}

#define SUMSQ_CHUNK 65536
#define SUMSQ_THREADS 256

__device__ __forceinline__ double block_sum(double acc) {
  __shared__ double part[SUMSQ_THREADS / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
  __syncthreads();
  acc = threadIdx.x < SUMSQ_THREADS / 32 ? part[threadIdx.x] : 0.0;
  if (threadIdx.x < 32) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  }
  return acc; /* complete in thread 0 */
}

__global__ void __launch_bounds__(SUMSQ_THREADS)
    k_sumsq_part(double *__restrict__ part, const float *__restrict__ x, int64_t n, int vec) {
  const int64_t lo = (int64_t)blockIdx.x * SUMSQ_CHUNK, hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
  double acc = 0.0;
  int64_t i = lo;
  if (vec) { /* lo is a multiple of 4 and x is 16-byte aligned */
    const int64_t hi4 = hi >> 2;
    for (int64_t q = (lo >> 2) + threadIdx.x; q < hi4; q += SUMSQ_THREADS) {
      float4 v = ((const float4 *)x)[q];
      acc +=
          (double)v.x * (double)v.x + (double)v.y * (double)v.y + (double)v.z * (double)v.z + (double)v.w * (double)v.w;
    }
    i = hi4 << 2;
  }
  for (int64_t j = i + threadIdx.x; j < hi; j += SUMSQ_THREADS) acc += (double)x[j] * (double)x[j];
  acc = block_sum(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(SUMSQ_THREADS)
    k_sumsq_finish(float *out, const double *__restrict__ part, int64_t nchunks) {
  double acc = 0.0;
  for (int64_t c = threadIdx.x; c < nchunks; c += SUMSQ_THREADS) acc += part[c];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = (float)acc;
}

static int sumsq(icl_ctx *ctx, float *out, const float *x, int64_t n) {
  icl_cuda_state *st = ctx->cuda;
  int64_t nchunks = n > 0 ? (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK : 0;
  if (nchunks > (int64_t)(st->scratch_bytes / sizeof(double)) || nchunks > INT32_MAX)
    return icl_errorf(ctx, ICL_EINVAL, "cuda: sumsq: %lld elements exceed the reduction scratch", (long long)n);
  double *part = (double *)st->scratch;
  if (nchunks > 0) {
    k_sumsq_part<<<(unsigned)nchunks, SUMSQ_THREADS, 0, st->stream>>>(part, x, n, icl_cuda_aligned16(x));
    ICL_CU_LAUNCHED(ctx, "sumsq");
  }
  k_sumsq_finish<<<1, SUMSQ_THREADS, 0, st->stream>>>(out, part, nchunks);
  ICL_CU_LAUNCHED(ctx, "sumsq");
  return ICL_OK;
}

/* glibc's powf, as the device computes it: double pow, rounded once */
__device__ __forceinline__ float pow_f(float b, float e) { return (float)pow((double)b, (double)e); }

__global__ void k_adamw_prepare(float *scal, const float *sq, icl_sched sched, float beta1, float beta2,
                                float max_norm) {
  float t = scal[ICL_OPT_STEPS];
  float norm = sqrtf(*sq);
  scal[ICL_OPT_GNORM] = norm;
  if (!isfinite(norm)) {
    if (scal[ICL_OPT_BAD] == 0.0f) scal[ICL_OPT_BAD] = __fadd_rn(t, 1.0f);
    scal[ICL_OPT_CLIP] = 0.0f;
    return; /* step count not advanced: the update is skipped */
  }
  scal[ICL_OPT_LR] = icl_sched_lr(sched, t);
  float t1 = __fadd_rn(t, 1.0f);
  scal[ICL_OPT_BC1] = __fdiv_rn(1.0f, __fsub_rn(1.0f, pow_f(beta1, t1)));
  scal[ICL_OPT_BC2] = __fdiv_rn(1.0f, sqrtf(__fsub_rn(1.0f, pow_f(beta2, t1))));
  float clip = 1.0f;
  if (max_norm > 0) {
    clip = __fdiv_rn(max_norm, __fadd_rn(norm, 1e-6f));
    if (clip > 1.0f) clip = 1.0f;
  }
  scal[ICL_OPT_CLIP] = clip;
  scal[ICL_OPT_STEPS] = t1;
}

static int adamw_prepare(icl_ctx *ctx, float *scal, const float *sq, icl_sched sched, float beta1, float beta2,
                         float max_norm) {
  icl_cuda_state *st = ctx->cuda;
  k_adamw_prepare<<<1, 1, 0, st->stream>>>(scal, sq, sched, beta1, beta2, max_norm);
  ICL_CU_LAUNCHED(ctx, "adamw_prepare");
  return ICL_OK;
}

struct adamw_consts {
  float lr, bc1, bc2, clip, decay, step;
};

__device__ __forceinline__ void adamw_one(float &p, float g, float &m, float &v, const adamw_consts &c, float beta1,
                                          float beta2, float eps) {
  float gi = __fmul_rn(g, c.clip);
  float mi = __fadd_rn(__fmul_rn(beta1, m), __fmul_rn(__fsub_rn(1.0f, beta1), gi));
  float vi = __fadd_rn(__fmul_rn(beta2, v), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, beta2), gi), gi));
  m = mi;
  v = vi;
  float denom = __fadd_rn(__fmul_rn(sqrtf(vi), c.bc2), eps);
  p = __fsub_rn(__fmul_rn(p, c.decay), __fdiv_rn(__fmul_rn(c.step, mi), denom));
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_adamw_update(float *__restrict__ p, const float *__restrict__ g, float *__restrict__ m, float *__restrict__ v,
                   int64_t n, const float *__restrict__ scal, float beta1, float beta2, float eps, float wd, int vec) {
  if (scal[ICL_OPT_BAD] != 0.0f) return; /* keep the last good parameters */
  adamw_consts c;
  c.lr = scal[ICL_OPT_LR];
  c.bc1 = scal[ICL_OPT_BC1];
  c.bc2 = scal[ICL_OPT_BC2];
  c.clip = scal[ICL_OPT_CLIP];
  c.decay = __fsub_rn(1.0f, __fmul_rn(c.lr, wd));
  c.step = __fmul_rn(c.lr, c.bc1);
  const int64_t step = (int64_t)gridDim.x * blockDim.x, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n >> 2;
    for (int64_t q = tid; q < n4; q += step) {
      float4 pp = ((float4 *)p)[q], gg = ((const float4 *)g)[q], mm = ((float4 *)m)[q], vv = ((float4 *)v)[q];
      adamw_one(pp.x, gg.x, mm.x, vv.x, c, beta1, beta2, eps);
      adamw_one(pp.y, gg.y, mm.y, vv.y, c, beta1, beta2, eps);
      adamw_one(pp.z, gg.z, mm.z, vv.z, c, beta1, beta2, eps);
      adamw_one(pp.w, gg.w, mm.w, vv.w, c, beta1, beta2, eps);
      ((float4 *)p)[q] = pp;
      ((float4 *)m)[q] = mm;
      ((float4 *)v)[q] = vv;
    }
    done = n4 << 2;
  }
  for (int64_t i = done + tid; i < n; i += step) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, g[i], mi, vi, c, beta1, beta2, eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

static int adamw_update(icl_ctx *ctx, float *p, const float *g, float *m, float *v, int64_t n, const float *scal,
                        float beta1, float beta2, float eps, float wd) {
  icl_cuda_state *st = ctx->cuda;
  if (n <= 0) return ICL_OK;
  int vec = icl_cuda_aligned16(p) && icl_cuda_aligned16(g) && icl_cuda_aligned16(m) && icl_cuda_aligned16(v);
  k_adamw_update<<<icl_cuda_blocks(st, vec ? (n + 3) / 4 : n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(
      p, g, m, v, n, scal, beta1, beta2, eps, wd, vec);
  ICL_CU_LAUNCHED(ctx, "adamw_update");
  return ICL_OK;
}

__global__ void k_ring_put(float *ring, int64_t n, const float *x, const float *scal) {
  int64_t s = (int64_t)scal[ICL_OPT_STEPS];
  ring[s % n] = x[0];
}

static int ring_put(icl_ctx *ctx, float *ring, int64_t n, const float *x, const float *scal) {
  icl_cuda_state *st = ctx->cuda;
  if (n <= 0) return icl_errorf(ctx, ICL_EINVAL, "ring_put: empty ring");
  k_ring_put<<<1, 1, 0, st->stream>>>(ring, n, x, scal);
  ICL_CU_LAUNCHED(ctx, "ring_put");
  return ICL_OK;
}

extern "C" const icl_optim_kernels icl_cuda_optim_kernels = {sumsq, adamw_prepare, adamw_update, ring_put};
