/* Does a float buffer hold a NaN or an Inf? One flag in device memory, set by
 * any thread that sees one, read back through a pinned int. The read-back
 * synchronises, so this is for checks between steps, not inside a graph. */
#include "cuda_internal.cuh"

/* exponent all ones: Inf or NaN (bit test, independent of compiler flags) */
__device__ __forceinline__ int bad_bits(float x) { return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u; }

__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_nonfinite(const float *x, int64_t n, int vec, int *flag) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int found = 0;
  int64_t done = 0;
  if (vec) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    int64_t n4 = n >> 2;
    for (int64_t i = tid; i < n4; i += step) {
      float4 v = x4[i];
      found |= bad_bits(v.x) | bad_bits(v.y) | bad_bits(v.z) | bad_bits(v.w);
    }
    done = n4 << 2;
  }
  for (int64_t i = done + tid; i < n; i += step) found |= bad_bits(x[i]);
  /* one store per warp that found something */
  if (__any_sync(0xffffffffu, found) && (threadIdx.x & 31) == 0) *flag = 1;
}

extern "C" int icl_cuda_nonfinite(icl_ctx *ctx, const float *x, int64_t n, int *bad) {
  icl_cuda_state *st = ctx->cuda;
  *bad = 0;
  if (n <= 0) return ICL_OK;
  ICL_CU(ctx, "nonfinite: clear flag", cudaMemsetAsync(st->flag_dev, 0, sizeof(int), st->stream));
  int vec = icl_cuda_aligned16(x);
  int64_t items = vec ? (n + 3) / 4 : n;
  k_nonfinite<<<icl_cuda_blocks(st, items, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(x, n, vec,
                                                                                                   st->flag_dev);
  ICL_CU_LAUNCHED(ctx, "nonfinite");
  ICL_CU(ctx, "nonfinite: read flag",
         cudaMemcpyAsync(st->flag_host, st->flag_dev, sizeof(int), cudaMemcpyDeviceToHost, st->stream));
  ICL_CU(ctx, "nonfinite: synchronise", cudaStreamSynchronize(st->stream));
  *bad = *st->flag_host != 0;
  return ICL_OK;
}
