/* Row softmax and log-softmax over contiguous rows (in place allowed): the
 * CUDA mirror of engine/cpu/cpu_softmax.c, formula for formula: float row
 * max, normaliser summed in double over exp(x - max), then
 *   log:  y = x - (float)(max + logf((float)sum))
 *   else: y = expf(x - max) * (float)(1 / sum).
 * A row goes to one warp (up to 1024 columns) or one block. All reads of a
 * row finish before its first write (the reductions synchronise the group),
 * which is what makes in-place safe. */
#include <math.h>

#include "cuda_internal.cuh"

#define FULL_MASK 0xffffffffu
#define NWARPS (ICL_CUDA_THREADS / 32)

/* butterflies: every lane ends with the same value (a + b == b + a) */
__device__ __forceinline__ float warp_max(float m) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    float o = __shfl_xor_sync(FULL_MASK, m, d);
    m = o > m ? o : m;
  }
  return m;
}

__device__ __forceinline__ double warp_sum(double s) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) s += __shfl_xor_sync(FULL_MASK, s, d);
  return s;
}

/* block-wide: every thread gets the same value (same combination order) */
__device__ __forceinline__ float block_max(float m, float *sh) {
  m = warp_max(m);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = m;
  __syncthreads();
  m = sh[0];
#pragma unroll
  for (int w = 1; w < NWARPS; w++) m = sh[w] > m ? sh[w] : m;
  __syncthreads();
  return m;
}

__device__ __forceinline__ double block_sum(double s, double *sh) {
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
  __syncthreads();
  s = sh[0];
#pragma unroll
  for (int w = 1; w < NWARPS; w++) s += sh[w];
  __syncthreads();
  return s;
}

/* Pass 3 of a row, given its max and normaliser. */
__device__ __forceinline__ void write_row(float *y, const float *x, int64_t cols, int64_t j0, int64_t step, float mx,
                                          double sum, int log) {
  if (log) {
    float lse = (float)((double)mx + (double)logf((float)sum));
    for (int64_t j = j0; j < cols; j += step) y[j] = __fsub_rn(x[j], lse);
  } else {
    float inv = (float)(1.0 / sum);
    for (int64_t j = j0; j < cols; j += step) y[j] = __fmul_rn(expf(__fsub_rn(x[j], mx)), inv);
  }
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_softmax_warp(float *out, const float *in, int64_t rows, int64_t cols, int log) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += nwarps) {
    const float *x = in + r * cols;
    float *y = out + r * cols;
    float mx = -INFINITY;
    for (int64_t j = lane; j < cols; j += 32) mx = x[j] > mx ? x[j] : mx;
    mx = warp_max(mx);
    double sum = 0;
    for (int64_t j = lane; j < cols; j += 32) sum += exp((double)x[j] - (double)mx);
    sum = warp_sum(sum);
    write_row(y, x, cols, lane, 32, mx, sum, log);
  }
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_softmax_block(float *out, const float *in, int64_t rows, int64_t cols, int log) {
  __shared__ float shm[NWARPS];
  __shared__ double shs[NWARPS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *x = in + r * cols;
    float *y = out + r * cols;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = x[j] > mx ? x[j] : mx;
    mx = block_max(mx, shm);
    double sum = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += exp((double)x[j] - (double)mx);
    sum = block_sum(sum, shs);
    write_row(y, x, cols, threadIdx.x, blockDim.x, mx, sum, log);
  }
}

extern "C" int icl_cuda_softmax(icl_ctx *ctx, float *out, const float *in, int64_t rows, int64_t cols, int log) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || cols <= 0) return ICL_OK;
  const int T = ICL_CUDA_THREADS;
  if (cols <= 1024) {
    k_softmax_warp<<<icl_cuda_blocks(st, rows * 32, T), T, 0, st->stream>>>(out, in, rows, cols, log);
  } else {
    int64_t cap = (int64_t)st->sm_count * 8;
    k_softmax_block<<<(unsigned)(rows < cap ? rows : cap), T, 0, st->stream>>>(out, in, rows, cols, log);
  }
  ICL_CU_LAUNCHED(ctx, "softmax");
  return ICL_OK;
}
