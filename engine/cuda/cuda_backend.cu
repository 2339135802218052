/* The CUDA backend: per-context device state (device, stream, cuBLAS and
 * cuBLASLt handles with their workspace, properties), its lazy start, its
 * teardown, and the backend table that mirrors the CPU one.
 *
 * The state is created on the first request for the 'cuda' device. A failed
 * start is remembered (with its message) so that later requests answer at
 * once and the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.cuh"
#include "icl_cuda.h"

extern "C" {
#include "models/mamba_kernels.h"
#include "pe/attn_kernels.h"
}


/* Never launched: asking for its attributes tells whether this binary holds
 * code the device can run (a build for another architecture fails here, at
 * start, rather than at the first kernel). */
__global__ void icl_cuda_probe_kernel(int *p) {
  if (p) *p = 0;
}

static icl_backend make_table(void) {
  icl_backend t;
  memset(&t, 0, sizeof t);
  t.name = "cuda";
  t.device = ICL_CUDA;
  t.alloc = icl_cuda_alloc;
  t.release = icl_cuda_free;
  t.memcpy = icl_cuda_memcpy;
  t.sync = icl_cuda_sync;
  t.fill = icl_cuda_fill;
  t.copy = icl_cuda_copy;
  t.unary = icl_cuda_unary;
  t.binary = icl_cuda_binary;
  t.reduce = icl_cuda_reduce;
  t.softmax = icl_cuda_softmax;
  t.gemm = icl_cuda_gemm;
  t.random = icl_cuda_random;
  t.nonfinite = icl_cuda_nonfinite;
  /* per-area tables (nn, attn, mamba, task, optim) are added by their areas */
  t.nn = &icl_cuda_nn_kernels;
  t.attn = &icl_cuda_attn_kernels;
  t.mamba = &icl_cuda_mamba_kernels;
  t.task = &icl_cuda_task_kernels;
  t.optim = &icl_cuda_optim_kernels;
  return t;
}

static const icl_backend *cuda_table(void) {
  static const icl_backend table = make_table(); /* thread-safe one-time init */
  return &table;
}

/* Records why the start failed, in the state (for later calls) and in ctx. */
static int start_failed(icl_ctx *ctx, icl_cuda_state *st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int start_failed(icl_ctx *ctx, icl_cuda_state *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->why, sizeof st->why, fmt, ap);
  va_end(ap);
  st->failed = 1;
  cudaGetLastError(); /* a failed start must not leave an error for the next call */
  return icl_errorf(ctx, ICL_EDEVICE, "%s", st->why);
}

/* Frees whatever a (possibly partial) start created. */
static void teardown(icl_cuda_state *st) {
  if (st->failed && !st->stream) return;
  if (st->lane) icl_cuda_lane_use_state(st, 0);
  if (st->stream) cudaStreamSynchronize(st->stream);
  icl_cuda_lanes_destroy(st);
  icl_cuda_allocator_destroy(st);
  if (st->lt) cublasLtDestroy(st->lt);
  if (st->blas) cublasDestroy(st->blas);
  if (st->workspace) cudaFree(st->workspace);
  if (st->scratch) cudaFree(st->scratch);
  if (st->flag_dev) cudaFree(st->flag_dev);
  if (st->flag_host) cudaFreeHost(st->flag_host);
  if (st->stream) cudaStreamDestroy(st->stream);
  st->lt = NULL;
  st->blas = NULL;
  st->workspace = st->scratch = NULL;
  st->flag_dev = st->flag_host = NULL;
  st->stream = NULL;
  cudaGetLastError();
}

#define START(what, call)                                                                                   \
  do {                                                                                                      \
    cudaError_t e_ = (call);                                                                                \
    if (e_ != cudaSuccess) {                                                                                \
      teardown(st);                                                                                         \
      return start_failed(ctx, st, "device 'cuda': %s failed: %s", what, cudaGetErrorString(e_));           \
    }                                                                                                       \
  } while (0)

#define START_BLAS(what, call)                                                                              \
  do {                                                                                                      \
    cublasStatus_t s_ = (call);                                                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                      \
      teardown(st);                                                                                         \
      return start_failed(ctx, st, "device 'cuda': %s failed: %s", what, cublasGetStatusString(s_));        \
    }                                                                                                       \
  } while (0)

static int start_device(icl_ctx *ctx, icl_cuda_state *st) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return start_failed(ctx, st, "device 'cuda' requested, but no CUDA device is available (cudaGetDeviceCount: %s)",
                        cudaGetErrorString(e));
  if (count < 1)
    return start_failed(ctx, st, "device 'cuda' requested, but no CUDA device is available (cudaGetDeviceCount: "
                                 "0 devices)");
  int dev = 0;
  const char *env = getenv("ICL_CUDA_DEVICE");
  if (env && *env) {
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (!end || *end || v < 0 || v >= count)
      return start_failed(ctx, st, "device 'cuda': ICL_CUDA_DEVICE=%s is not a device index in [0, %d)", env, count);
    dev = (int)v;
  }
  st->device = dev;
  START("cudaSetDevice", cudaSetDevice(dev));
  START("cudaGetDeviceProperties", cudaGetDeviceProperties(&st->prop, dev));
  st->sm_count = st->prop.multiProcessorCount > 0 ? st->prop.multiProcessorCount : 1;
  cudaFuncAttributes fa;
  e = cudaFuncGetAttributes(&fa, icl_cuda_probe_kernel);
  if (e != cudaSuccess)
    return start_failed(ctx, st, "device 'cuda': %s (compute capability %d.%d) cannot run this build (%s); "
                                 "rebuild with -DICL_CUDA_ARCHS=%d%d",
                        st->prop.name, st->prop.major, st->prop.minor, cudaGetErrorString(e), st->prop.major,
                        st->prop.minor);
  START("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
  START("cudaMalloc (workspace)", cudaMalloc(&st->workspace, ICL_CUDA_WORKSPACE_BYTES));
  st->workspace_bytes = ICL_CUDA_WORKSPACE_BYTES;
  START("cudaMalloc (scratch)", cudaMalloc(&st->scratch, ICL_CUDA_SCRATCH_BYTES));
  st->scratch_bytes = ICL_CUDA_SCRATCH_BYTES;
  START("cudaMalloc (flag)", cudaMalloc((void **)&st->flag_dev, sizeof(int)));
  START("cudaMallocHost (flag)", cudaMallocHost((void **)&st->flag_host, sizeof(int)));
  START_BLAS("cublasCreate", cublasCreate(&st->blas));
  START_BLAS("cublasSetStream", cublasSetStream(st->blas, st->stream));
  /* a fixed workspace keeps cuBLAS from allocating inside a graph capture */
  START_BLAS("cublasSetWorkspace", cublasSetWorkspace(st->blas, st->workspace, st->workspace_bytes));
  /* TF32 or not is chosen per call through the compute type (gemm) */
  START_BLAS("cublasSetMathMode", cublasSetMathMode(st->blas, CUBLAS_DEFAULT_MATH));
  START_BLAS("cublasLtCreate", cublasLtCreate(&st->lt));
  const char *wide = getenv("ICL_CUDA_WIDE_INDEX");
  st->wide_index = wide && atoi(wide) > 0;
  return ICL_OK;
}

extern "C" const icl_backend *icl_cuda_backend_get(icl_ctx *ctx) {
  if (!ctx) return NULL;
  icl_cuda_state *st = ctx->cuda;
  if (!st) {
    st = (icl_cuda_state *)calloc(1, sizeof *st);
    if (!st) {
      icl_errorf(ctx, ICL_ENOMEM, "device 'cuda': out of host memory for the device state");
      return NULL;
    }
    ctx->cuda = st;
    if (start_device(ctx, st)) return NULL;
    return cuda_table();
  }
  if (st->failed) {
    icl_errorf(ctx, ICL_EDEVICE, "%s", st->why);
    return NULL;
  }
  return cuda_table();
}

extern "C" int icl_cuda_device_present(icl_ctx *ctx) {
  if (!ctx) return 0;
  if (ctx->cuda) return !ctx->cuda->failed;
  /* a probe, not a request: keep whatever error the caller had */
  int code = ctx->errcode;
  char msg[ICL_ERRMSG_MAX];
  memcpy(msg, ctx->errmsg, sizeof msg);
  const icl_backend *be = icl_cuda_backend_get(ctx);
  ctx->errcode = code;
  memcpy(ctx->errmsg, msg, sizeof msg);
  return be != NULL;
}

extern "C" void icl_cuda_release(icl_ctx *ctx) {
  if (!ctx || !ctx->cuda) return;
  teardown(ctx->cuda);
  free(ctx->cuda);
  ctx->cuda = NULL;
}

extern "C" int icl_cuda_sync(icl_ctx *ctx) {
  if (icl_cuda_capturing(ctx->cuda))
    return icl_errorf(ctx, ICL_EDEVICE, "cuda: sync while the stream is captured into a graph");
  ICL_CU(ctx, "sync", cudaStreamSynchronize(ctx->cuda->stream));
  return ICL_OK;
}

/* ---- extras (icl_cuda.h) ----------------------------------------------------- */

static icl_cuda_state *live_state(icl_ctx *ctx) {
  return ctx && ctx->cuda && !ctx->cuda->failed ? ctx->cuda : NULL;
}

extern "C" void *icl_cuda_stream(icl_ctx *ctx) {
  icl_cuda_state *st = live_state(ctx);
  return st ? (void *)st->stream : NULL;
}

extern "C" void icl_cuda_memory_stats(icl_ctx *ctx, icl_cuda_mem_stats *out) {
  memset(out, 0, sizeof *out);
  icl_cuda_state *st = live_state(ctx);
  if (!st) return;
  out->live_bytes = st->alloc.live_bytes;
  out->cached_bytes = st->alloc.cached_bytes;
  out->peak_bytes = st->alloc.peak_bytes;
  out->n_malloc = st->alloc.n_malloc;
  out->n_reuse = st->alloc.n_reuse;
}

extern "C" int icl_cuda_empty_cache(icl_ctx *ctx) {
  icl_cuda_state *st = live_state(ctx);
  return st ? icl_cuda_allocator_trim(ctx, st) : ICL_OK;
}

extern "C" void icl_cuda_force_wide_index(icl_ctx *ctx, int on) {
  icl_cuda_state *st = live_state(ctx);
  if (st) st->wide_index = on != 0;
}
