/* Elementwise maps over up to three pre-broadcast views of one shape.
 *
 * A map is a functor F with
 *   operator()(const int64_t (&off)[N])  element at per-operand offsets (strided path)
 *   flat(int64_t i)                      element i of contiguous operands
 *   vec4(int64_t i)                      elements 4i..4i+3 of contiguous, 16-byte aligned operands
 * and icl_cuda_map picks the path: one flat run (vectorised when every
 * pointer is 16-byte aligned) or the general strided walk, with 32-bit index
 * arithmetic when the element count allows. Kernels use grid-stride loops and
 * 64-bit loop counters, so any element count works. */
#ifndef ICL_CUDA_MAP_CUH
#define ICL_CUDA_MAP_CUH

#include "cuda_internal.cuh"

/* 16 bytes of T that the compiler loads and stores as one 128-bit access */
template <typename T> struct alignas(16) icl_v4 {
  T v[4];
};

template <int N, class F>
__global__ void __launch_bounds__(ICL_CUDA_THREADS) icl_k_map_strided(icl_dwalk<N> w, int64_t n, int narrow, F f) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t off[N];
  if (narrow) {
    for (; i < n; i += step) {
      icl_dwalk_offsets<N, uint32_t>(w, (uint32_t)i, off);
      f(off);
    }
  } else {
    for (; i < n; i += step) {
      icl_dwalk_offsets<N, int64_t>(w, i, off);
      f(off);
    }
  }
}

template <class F> __global__ void __launch_bounds__(ICL_CUDA_THREADS) icl_k_map_flat(int64_t n, F f) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) f.flat(i);
}

template <class F> __global__ void __launch_bounds__(ICL_CUDA_THREADS) icl_k_map_vec4(int64_t n, F f) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t n4 = n >> 2;
  for (int64_t i = tid; i < n4; i += step) f.vec4(i);
  for (int64_t i = (n4 << 2) + tid; i < n; i += step) f.flat(i); /* at most 3 left */
}

/* Runs f over the views (views[0] is the output; all share its shape).
 * vec_ok: the caller's promise that f.vec4 is valid when the run is flat
 * (elements of 4 bytes); alignment is checked here. */
template <int N, class F>
static int icl_cuda_map(icl_ctx *ctx, const char *what, const icl_view *const *views, const F &f, int vec_ok) {
  icl_cuda_state *st = ctx->cuda;
  int64_t n = icl_view_numel(views[0]);
  if (n == 0) return ICL_OK;
  icl_dwalk<N> w = icl_dwalk_make<N>(views);
  if (icl_dwalk_flat(w)) {
    int aligned = vec_ok;
    for (int j = 0; j < N; j++) aligned = aligned && icl_cuda_aligned16(views[j]->data);
    if (aligned) {
      icl_k_map_vec4<F><<<icl_cuda_blocks(st, (n + 3) / 4, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(n, f);
    } else {
      icl_k_map_flat<F><<<icl_cuda_blocks(st, n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(n, f);
    }
  } else {
    int narrow = icl_cuda_narrow_ok(st, n);
    icl_k_map_strided<N, F>
        <<<icl_cuda_blocks(st, n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(w, n, narrow, f);
  }
  ICL_CU_LAUNCHED(ctx, what);
  return ICL_OK;
}

#endif
