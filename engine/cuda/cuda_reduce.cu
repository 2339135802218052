/* Reductions over one dim or over everything: the CUDA mirror of
 * engine/cpu/cpu_reduce.c.
 *
 * Numbers: sums and products accumulate in double, variance is Welford per
 * thread and Chan's pairwise merge across threads (in double), so results
 * agree with the CPU's double loops far inside float rounding. Max/min/arg
 * use a total order that reproduces the CPU's sequential scan: a NaN beats
 * any number and the first NaN wins; otherwise the larger (smaller) value
 * wins and ties go to the lower index. The partitioning is fixed, so a result
 * never changes between runs.
 *
 * Shapes: the input is seen as `lines` lines of n elements with stride s,
 * line l starting where the merged (output, rest-of-input) walk puts it.
 * Depending on n, s and the line count, a line goes to one thread, one warp
 * or one block, or (few long lines) is split into chunks whose partials land
 * in the state's fixed scratch and are merged by a second kernel. Reducing
 * everything is one line, walked through the input's strides when the input
 * does not merge into a single strided run. Nothing here allocates. */
#include <math.h>

#include "cuda_internal.cuh"
#include "cuda_reduce_acc.cuh"

#define NWARPS (ICL_CUDA_THREADS / 32)

/* ---- shared pieces -------------------------------------------------------------- */

template <class K> __device__ __forceinline__ typename K::A warp_reduce(typename K::A a, int want_max) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) a = K::merge(a, K::shfl_down(a, d), want_max);
  return a; /* complete in lane 0 */
}

/* Every thread of the block must call it; the result is complete in thread 0. */
template <class K> __device__ __forceinline__ typename K::A block_reduce(typename K::A a, int want_max) {
  __shared__ typename K::A part[NWARPS];
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  a = warp_reduce<K>(a, want_max);
  if (lane == 0) part[wid] = a;
  __syncthreads();
  a = threadIdx.x < NWARPS ? part[threadIdx.x] : K::init();
  if (wid == 0) a = warp_reduce<K>(a, want_max);
  __syncthreads(); /* part may be reused by the caller's next round */
  return a;
}

__device__ __forceinline__ void store(void *out, int odt, int64_t off, double v, int32_t idx, int op) {
  if (op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN) {
    if (odt == ICL_I32) ((int32_t *)out)[off] = idx;
    else ((float *)out)[off] = (float)idx;
  } else if (odt == ICL_I32) {
    ((int32_t *)out)[off] = (int32_t)v;
  } else {
    ((float *)out)[off] = (float)v;
  }
}

/* where line l starts in the input (off[1]) and where its result goes (off[0]) */
__device__ __forceinline__ void line_offsets(const icl_dwalk<2> &ow, int64_t l, int narrow, int64_t (&off)[2]) {
  if (narrow) icl_dwalk_offsets<2, uint32_t>(ow, (uint32_t)l, off);
  else icl_dwalk_offsets<2, int64_t>(ow, l, off);
}

struct red_args {
  const float *in;
  void *out;
  int64_t lines, n, s;
  int odt, op, want_max;
  int narrow_lines, narrow_elems;
};

template <class K>
__device__ __forceinline__ void finish_line(const red_args &r, int64_t out_off, const typename K::A &a) {
  double v;
  int32_t idx;
  K::result(a, r.op, r.n, &v, &idx);
  store(r.out, r.odt, out_off, v, idx, r.op);
}

/* ---- one line per thread / warp / block ------------------------------------------ */

template <class K> __global__ void __launch_bounds__(ICL_CUDA_THREADS) k_red_thread(icl_dwalk<2> ow, red_args r) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t l = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; l < r.lines; l += step) {
    int64_t off[2];
    line_offsets(ow, l, r.narrow_lines, off);
    const float *p = r.in + off[1];
    typename K::A a = K::init();
    for (int64_t j = 0; j < r.n; j++) K::add(a, p[j * r.s], j, r.want_max);
    finish_line<K>(r, off[0], a);
  }
}

template <class K> __global__ void __launch_bounds__(ICL_CUDA_THREADS) k_red_warp(icl_dwalk<2> ow, red_args r) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t l = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; l < r.lines; l += nwarps) {
    int64_t off[2];
    line_offsets(ow, l, r.narrow_lines, off);
    const float *p = r.in + off[1];
    typename K::A a = K::init();
    for (int64_t j = lane; j < r.n; j += 32) K::add(a, p[j * r.s], j, r.want_max);
    a = warp_reduce<K>(a, r.want_max);
    if (lane == 0) finish_line<K>(r, off[0], a);
  }
}

template <class K> __global__ void __launch_bounds__(ICL_CUDA_THREADS) k_red_block(icl_dwalk<2> ow, red_args r) {
  for (int64_t l = blockIdx.x; l < r.lines; l += gridDim.x) {
    int64_t off[2];
    line_offsets(ow, l, r.narrow_lines, off);
    const float *p = r.in + off[1];
    typename K::A a = K::init();
    for (int64_t j = threadIdx.x; j < r.n; j += blockDim.x) K::add(a, p[j * r.s], j, r.want_max);
    a = block_reduce<K>(a, r.want_max);
    if (threadIdx.x == 0) finish_line<K>(r, off[0], a);
  }
}

/* ---- long lines split into chunks ------------------------------------------------- */

/* GENERIC: one line over the whole input, element j found through iw (the
 * input's own walk) because its dims do not merge into one strided run. */
template <class K, bool GENERIC>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_red_partial(icl_dwalk<2> ow, icl_dwalk<1> iw, red_args r, int64_t chunks, int64_t chunk_len,
                  typename K::A *part) {
  for (int64_t b = blockIdx.x; b < r.lines * chunks; b += gridDim.x) {
    int64_t l = b / chunks, c = b - l * chunks;
    int64_t base = 0;
    if (!GENERIC) {
      int64_t off[2];
      line_offsets(ow, l, r.narrow_lines, off);
      base = off[1];
    }
    int64_t j0 = c * chunk_len, j1 = j0 + chunk_len < r.n ? j0 + chunk_len : r.n;
    typename K::A a = K::init();
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
      float x;
      if (GENERIC) {
        int64_t eo[1];
        if (r.narrow_elems) icl_dwalk_offsets<1, uint32_t>(iw, (uint32_t)j, eo);
        else icl_dwalk_offsets<1, int64_t>(iw, j, eo);
        x = r.in[eo[0]];
      } else {
        x = r.in[base + j * r.s];
      }
      K::add(a, x, j, r.want_max);
    }
    a = block_reduce<K>(a, r.want_max);
    if (threadIdx.x == 0) part[b] = a;
  }
}

template <class K>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_red_final(icl_dwalk<2> ow, red_args r, int64_t chunks, const typename K::A *part) {
  for (int64_t l = blockIdx.x; l < r.lines; l += gridDim.x) {
    typename K::A a = K::init();
    for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) a = K::merge(a, part[l * chunks + c], r.want_max);
    a = block_reduce<K>(a, r.want_max);
    if (threadIdx.x == 0) {
      int64_t off[2];
      line_offsets(ow, l, r.narrow_lines, off);
      finish_line<K>(r, off[0], a);
    }
  }
}

/* ---- host side ----------------------------------------------------------------------- */

enum red_mode { MODE_THREAD, MODE_WARP, MODE_BLOCK, MODE_SPLIT };

static red_mode pick_mode(const icl_cuda_state *st, int64_t lines, int64_t n, int64_t s) {
  int64_t many = 2 * (int64_t)st->sm_count; /* lines enough for one block each to fill the chip */
  if (s == 1) {
    if (n <= 16) return MODE_THREAD;
    if (n <= 1024) return MODE_WARP;
    return lines >= many ? MODE_BLOCK : MODE_SPLIT;
  }
  /* strided lines: with many lines, neighbouring lines are usually neighbours
   * in memory, so one thread per line reads coalesced */
  if (lines >= 4096) return MODE_THREAD;
  if (n >= 8192 && lines < many) return MODE_SPLIT;
  return n <= 1024 ? MODE_WARP : MODE_BLOCK;
}

template <class K>
static int run(icl_ctx *ctx, const icl_dwalk<2> &ow, const icl_dwalk<1> &iw, int generic, red_args r, red_mode mode) {
  icl_cuda_state *st = ctx->cuda;
  cudaStream_t s = st->stream;
  const int T = ICL_CUDA_THREADS;
  int64_t cap = (int64_t)st->sm_count * 8;
  if (mode == MODE_THREAD) {
    k_red_thread<K><<<icl_cuda_blocks(st, r.lines, T), T, 0, s>>>(ow, r);
  } else if (mode == MODE_WARP) {
    k_red_warp<K><<<icl_cuda_blocks(st, r.lines * 32, T), T, 0, s>>>(ow, r);
  } else if (mode == MODE_BLOCK) {
    k_red_block<K><<<(unsigned)(r.lines < cap ? r.lines : cap), T, 0, s>>>(ow, r);
  } else {
    /* enough chunks to give every SM a few blocks, each chunk >= 1024 elements,
     * all partials within the scratch */
    int64_t per_line = (4 * (int64_t)st->sm_count + r.lines - 1) / r.lines;
    int64_t by_len = (r.n + 1023) / 1024;
    int64_t by_room = (int64_t)(st->scratch_bytes / sizeof(typename K::A)) / r.lines;
    int64_t chunks = per_line < by_len ? per_line : by_len;
    if (chunks > by_room) chunks = by_room;
    if (chunks < 1) chunks = 1;
    int64_t chunk_len = (r.n + chunks - 1) / chunks;
    if (chunk_len < 1) chunk_len = 1;
    typename K::A *part = (typename K::A *)st->scratch;
    int64_t blocks = r.lines * chunks;
    unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
    if (generic)
      k_red_partial<K, true><<<grid, T, 0, s>>>(ow, iw, r, chunks, chunk_len, part);
    else
      k_red_partial<K, false><<<grid, T, 0, s>>>(ow, iw, r, chunks, chunk_len, part);
    ICL_CU_LAUNCHED(ctx, "reduce");
    k_red_final<K><<<(unsigned)(r.lines < cap ? r.lines : cap), T, 0, s>>>(ow, r, chunks, part);
  }
  ICL_CU_LAUNCHED(ctx, "reduce");
  return ICL_OK;
}

extern "C" int icl_cuda_reduce(icl_ctx *ctx, icl_redop op, icl_view out, icl_dtype odt, icl_view in, int dim) {
  icl_cuda_state *st = ctx->cuda;
  if ((int)op < 0 || op >= ICL_RED__COUNT) return icl_errorf(ctx, ICL_EINVAL, "cuda: reduce: unknown op %d", (int)op);
  if (dim >= in.ndim) return icl_errorf(ctx, ICL_ERANGE, "cuda: reduce: dim %d of a %d-dim view", dim, in.ndim);
  red_args r;
  r.in = (const float *)in.data;
  r.out = out.data;
  r.odt = (int)odt;
  r.op = (int)op;
  r.want_max = op == ICL_RED_MAX || op == ICL_RED_ARGMAX;
  icl_dwalk<2> ow = {};
  icl_dwalk<1> iw = {};
  int generic = 0;
  red_mode mode;
  if (dim < 0) {
    /* everything: one line; out is a single element at out.data */
    const icl_view *vs[1] = {&in};
    iw = icl_dwalk_make<1>(vs);
    r.lines = 1;
    r.n = icl_view_numel(&in);
    generic = iw.ndim > 1;
    r.s = generic ? 0 : iw.stride[0][0];
    ow.ndim = 1;
    for (int i = 0; i < ICL_MAX_DIMS; i++) {
      ow.shape[i] = 1;
      ow.stride[0][i] = ow.stride[1][i] = 0;
    }
    mode = MODE_SPLIT;
  } else {
    /* the input without `dim`, walked in step with the output */
    icl_view rest = in;
    rest.ndim = in.ndim - 1;
    for (int i = dim; i < rest.ndim; i++) {
      rest.shape[i] = in.shape[i + 1];
      rest.stride[i] = in.stride[i + 1];
    }
    const icl_view *vs[2] = {&out, &rest};
    ow = icl_dwalk_make<2>(vs);
    r.lines = icl_view_numel(&rest);
    r.n = in.shape[dim];
    r.s = in.stride[dim];
    mode = pick_mode(st, r.lines, r.n, r.s);
  }
  if (r.lines == 0) return ICL_OK;
  r.narrow_lines = icl_cuda_narrow_ok(st, r.lines);
  r.narrow_elems = icl_cuda_narrow_ok(st, r.n);
  switch (op) {
  case ICL_RED_SUM:
  case ICL_RED_MEAN: return run<KSum>(ctx, ow, iw, generic, r, mode);
  case ICL_RED_PROD: return run<KProd>(ctx, ow, iw, generic, r, mode);
  case ICL_RED_VAR:
  case ICL_RED_VAR0: return run<KVar>(ctx, ow, iw, generic, r, mode);
  default: return run<KExt>(ctx, ow, iw, generic, r, mode);
  }
}
