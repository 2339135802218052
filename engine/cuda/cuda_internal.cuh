/* Shared by the CUDA backend's .cu files (never by C code): the device state
 * hung off icl_ctx, error-checking macros, launch sizing and the strided walk
 * that kernels use to turn a flat element index into per-operand offsets.
 *
 * Everything runs on the state's one non-blocking stream, so that a training
 * step can later be captured into a CUDA graph as a whole: kernels here never
 * allocate, never synchronise and never touch the default stream. */
#ifndef ICL_CUDA_INTERNAL_CUH
#define ICL_CUDA_INTERNAL_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
#include "core/context.h"
#include "core/tensor.h"
#include "cpu/strided.h"
}

/* ---- caching allocator (cuda_memory.cu) ------------------------------------ */

/* Blocks are rounded to size classes (4 per power of two, >= 512 bytes) and a
 * released block goes back to its class's free list instead of cudaFree. */
#define ICL_CUDA_NCLASSES 256

typedef struct icl_cuda_ptrvec {
  void **v;
  size_t n, cap;
} icl_cuda_ptrvec;

typedef struct icl_cuda_live_entry {
  void *p;  /* NULL marks an empty slot */
  int cls;  /* size class of the block */
} icl_cuda_live_entry;

typedef struct icl_cuda_allocator {
  icl_cuda_ptrvec free_list[ICL_CUDA_NCLASSES];
  icl_cuda_live_entry *live; /* open-addressing map: pointer -> class */
  size_t live_cap, live_count;
  size_t live_bytes;   /* rounded bytes handed out and not yet released */
  size_t cached_bytes; /* rounded bytes sitting in free lists */
  size_t peak_bytes;   /* high-water mark of live + cached */
  uint64_t n_malloc;   /* cudaMalloc calls (cache misses) */
  uint64_t n_reuse;    /* allocations served from the cache */
} icl_cuda_allocator;

#define ICL_CUDA_WORKSPACE_BYTES ((size_t)32 << 20) /* what cuBLAS suggests for Hopper */
#define ICL_CUDA_SCRATCH_BYTES ((size_t)1 << 20)

/* ---- the state ------------------------------------------------------------ */

struct icl_cuda_state {
  int failed;        /* init failed: `why` holds the message, nothing else is valid */
  char why[512];
  int device;
  cudaDeviceProp prop;
  int sm_count;
  cudaStream_t stream; /* the one stream everything runs on */
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  void *workspace; /* cuBLAS/cuBLASLt workspace: set once so GEMMs never allocate */
  size_t workspace_bytes;
  void *scratch; /* reduction partials; fixed size, so reductions never allocate */
  size_t scratch_bytes;
  int *flag_dev;  /* one int for nonfinite */
  int *flag_host; /* pinned mirror of flag_dev */
  int wide_index; /* debug: force the 64-bit index path of strided kernels */
  icl_cuda_allocator alloc;
  /* lanes (cuda_lanes.cu): while lane k > 0 is in use, stream, workspace and
   * scratch above are lane k's, so that several training steps' graphs can
   * run at once without sharing a buffer; lane 0 is the context's own */
  int lane;
  cudaStream_t lane0_stream;
  void *lane0_workspace, *lane0_scratch;
  cudaEvent_t fork_event;
  struct icl_cuda_lane *lanes; /* [ICL_CUDA_LANES_MAX] (icl_cuda.h), made on first use */
};


struct icl_cuda_lane {
  cudaStream_t stream;
  void *workspace, *scratch;
  cudaEvent_t done;
};

/* frees the lanes (at teardown; the device is idle) */
void icl_cuda_lanes_destroy(icl_cuda_state *st);
/* switches to a lane that exists (0 always does); no error path */
void icl_cuda_lane_use_state(icl_cuda_state *st, int k);

/* ---- errors ---------------------------------------------------------------- */

#define ICL_CU(ctx, what, call)                                                                               \
  do {                                                                                                        \
    cudaError_t e_ = (call);                                                                                  \
    if (e_ != cudaSuccess) return icl_errorf((ctx), ICL_EDEVICE, "cuda: %s: %s", (what), cudaGetErrorString(e_)); \
  } while (0)

/* after every <<<...>>>: launch-configuration errors and sticky faults */
#define ICL_CU_LAUNCHED(ctx, what) ICL_CU(ctx, what, cudaGetLastError())

#define ICL_CUBLAS(ctx, what, call)                                                                           \
  do {                                                                                                        \
    cublasStatus_t s_ = (call);                                                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                          \
      return icl_errorf((ctx), ICL_EDEVICE, "cuda: %s: %s", (what), cublasGetStatusString(s_));               \
  } while (0)

/* ---- launch sizing ---------------------------------------------------------- */

#define ICL_CUDA_THREADS 256

/* Blocks for a grid-stride loop over n items: enough to fill every SM a few
 * times over, never more than the work needs. */
static inline unsigned icl_cuda_blocks(const icl_cuda_state *st, int64_t n, int threads) {
  int64_t need = (n + threads - 1) / threads;
  int64_t cap = (int64_t)st->sm_count * (2048 / threads) * 2;
  if (need > cap) need = cap;
  return need < 1 ? 1u : (unsigned)need;
}

static inline int64_t icl_view_numel(const icl_view *v) {
  int64_t n = 1;
  for (int i = 0; i < v->ndim; i++) n *= v->shape[i];
  return n;
}

/* ---- strided walks on the device -------------------------------------------- */

/* The merged walk of core/cpu's strided.h (same merging rules, so the flat
 * order is the row-major order of the views), as a kernel parameter. */
template <int N> struct icl_dwalk {
  int ndim;
  int64_t shape[ICL_MAX_DIMS];
  int64_t stride[N][ICL_MAX_DIMS];
};

template <int N> static inline icl_dwalk<N> icl_dwalk_make(const icl_view *const *v) {
  icl_walk w;
  icl_walk_init(&w, N, v);
  icl_dwalk<N> d;
  d.ndim = w.ndim;
  for (int i = 0; i < ICL_MAX_DIMS; i++) {
    d.shape[i] = i < w.ndim ? w.shape[i] : 1;
    for (int j = 0; j < N; j++) d.stride[j][i] = i < w.ndim ? w.stride[j][i] : 0;
  }
  return d;
}

/* All operands contiguous in one flat run: the kernels' fast path. */
template <int N> static inline int icl_dwalk_flat(const icl_dwalk<N> &w) {
  if (w.ndim != 1) return 0;
  for (int j = 0; j < N; j++)
    if (w.stride[j][0] != 1) return 0;
  return 1;
}

/* Offsets of flat element i for each operand. I is uint32_t when the element
 * count fits (cheap divisions), else int64_t. The loop over dims is unrolled
 * with constant indices so the walk stays in the constant bank and registers
 * (a run-time index would push it to local memory). The outermost dim needs
 * no division: what is left of i is its index. */
template <int N, typename I>
__host__ __device__ __forceinline__ void icl_dwalk_offsets(const icl_dwalk<N> &w, I i, int64_t (&off)[N]) {
#pragma unroll
  for (int j = 0; j < N; j++) off[j] = 0;
#pragma unroll
  for (int d = ICL_MAX_DIMS - 1; d >= 0; d--) {
    if (d < w.ndim) {
      I r;
      if (d == 0) {
        r = i;
      } else {
        I s = (I)w.shape[d];
        I q = i / s;
        r = i - q * s;
        i = q;
      }
#pragma unroll
      for (int j = 0; j < N; j++) off[j] += (int64_t)r * w.stride[j][d];
    }
  }
}

/* 1 when kernels over n elements may use 32-bit index arithmetic */
static inline int icl_cuda_narrow_ok(const icl_cuda_state *st, int64_t n) {
  return !st->wide_index && n <= (int64_t)UINT32_MAX;
}

static inline int icl_cuda_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* ---- entry points of each file (C linkage: the backend table holds them) ---- */

extern "C" {
void *icl_cuda_alloc(icl_ctx *ctx, size_t nbytes);
void icl_cuda_free(icl_ctx *ctx, void *p, size_t nbytes);
int icl_cuda_memcpy(icl_ctx *ctx, void *dst, icl_device ddev, const void *src, icl_device sdev, size_t n);
int icl_cuda_sync(icl_ctx *ctx);
int icl_cuda_fill(icl_ctx *ctx, icl_view out, icl_dtype dt, double value);
int icl_cuda_copy(icl_ctx *ctx, icl_view out, icl_dtype odt, icl_view in, icl_dtype idt);
int icl_cuda_unary(icl_ctx *ctx, icl_unop op, icl_view out, icl_view in, float p0, float p1);
int icl_cuda_binary(icl_ctx *ctx, icl_binop op, icl_view out, icl_view a, icl_view b);
int icl_cuda_reduce(icl_ctx *ctx, icl_redop op, icl_view out, icl_dtype odt, icl_view in, int dim);
int icl_cuda_softmax(icl_ctx *ctx, float *out, const float *in, int64_t rows, int64_t cols, int log);
int icl_cuda_gemm(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
                  float *c, int64_t ldc, int64_t stride_c, int64_t batch);
int icl_cuda_random(icl_ctx *ctx, icl_view out, icl_dtype dt, icl_dist dist, double p0, double p1, uint64_t seed,
                    uint64_t stream);
int icl_cuda_nonfinite(icl_ctx *ctx, const float *x, int64_t n, int *bad);
}

/* per-area kernel tables (cuda_<area>.cu), wired in cuda_backend.cu */
extern "C" {
extern const struct icl_nn_kernels icl_cuda_nn_kernels;
extern const struct icl_optim_kernels icl_cuda_optim_kernels;
extern const struct icl_task_kernels icl_cuda_task_kernels;
/* defined by the attention / Mamba areas when they land (declared here so
 * that wiring them is one line each in cuda_backend.cu) */
extern const struct icl_attn_kernels icl_cuda_attn_kernels;
extern const struct icl_mamba_kernels icl_cuda_mamba_kernels;
}

/* 1 while the state's stream is being captured into a graph (cuda_memory.cu) */
int icl_cuda_capturing(icl_cuda_state *st);

/* allocator internals used by cuda_backend.cu */
void icl_cuda_allocator_destroy(icl_cuda_state *st);
int icl_cuda_allocator_trim(icl_ctx *ctx, icl_cuda_state *st);

#endif
