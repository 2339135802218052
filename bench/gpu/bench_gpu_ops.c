/* GPU micro-benchmark of the CUDA backend's generic ops: the standard model's
 * GEMM shapes in TF32 and strict FP32, its RMSNorm entries (33 backward calls
 * per training step; docs/cuda.md has their profile), and a large
 * device-to-device copy for memory bandwidth. Times with CUDA events on the backend's stream, median of
 * REPS runs after WARMUP, inputs random normal (never zeros) and rotated over
 * NSETS buffers so the L2 cache does not hold them between runs.
 *
 * Prints "no CUDA device, skipping" and exits 0 where there is no device. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "cuda/icl_cuda.h"
#include "nn/nn_kernels.h"
#include "ops/ops.h"

#define WARMUP 10
#define REPS 50
#define NSETS 4

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static float median(float *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_float);
  return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

#define CU(call)                                                                          \
  do {                                                                                    \
    cudaError_t e_ = (call);                                                              \
    if (e_ != cudaSuccess) {                                                              \
      fprintf(stderr, "bench: %s: %s\n", #call, cudaGetErrorString(e_));                  \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

static void die(icl_ctx *ctx, const char *what) {
  fprintf(stderr, "bench: %s: %s\n", what, icl_last_error(ctx));
  exit(1);
}

static icl_tensor *randn(icl_ctx *ctx, int64_t r, int64_t c, uint64_t stream) {
  int64_t s[2] = {r, c};
  icl_tensor *t = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CUDA, 2, s, 0.0, 1.0, 20240917u, stream);
  if (!t) die(ctx, "random input");
  return t;
}

typedef struct timer {
  cudaEvent_t start[REPS], stop[REPS];
  cudaStream_t stream;
} timer;

static void timer_init(timer *t, cudaStream_t s) {
  t->stream = s;
  for (int i = 0; i < REPS; i++) {
    CU(cudaEventCreate(&t->start[i]));
    CU(cudaEventCreate(&t->stop[i]));
  }
}

static float timer_median_ms(timer *t) {
  float ms[REPS];
  CU(cudaStreamSynchronize(t->stream));
  for (int i = 0; i < REPS; i++) CU(cudaEventElapsedTime(&ms[i], t->start[i], t->stop[i]));
  return median(ms, REPS);
}

static void bench_gemm(icl_ctx *ctx, const icl_backend *be, timer *tm, int64_t m, int64_t k, int64_t n, int strict) {
  icl_tensor *a[NSETS], *b[NSETS], *c[NSETS];
  for (int i = 0; i < NSETS; i++) {
    a[i] = randn(ctx, m, k, 100 + 3 * (uint64_t)i);
    b[i] = randn(ctx, k, n, 101 + 3 * (uint64_t)i);
    c[i] = randn(ctx, m, n, 102 + 3 * (uint64_t)i);
  }
  ctx->strict_fp32 = strict;
  for (int r = 0; r < WARMUP + REPS; r++) {
    int s = r % NSETS;
    if (r >= WARMUP) CU(cudaEventRecord(tm->start[r - WARMUP], tm->stream));
    if (be->gemm(ctx, 0, 0, m, n, k, 1.0f, icl_tensor_data(a[s]), k, 0, icl_tensor_data(b[s]), n, 0, 0.0f,
                 icl_tensor_data(c[s]), n, 0, 1))
      die(ctx, "gemm");
    if (r >= WARMUP) CU(cudaEventRecord(tm->stop[r - WARMUP], tm->stream));
  }
  float ms = timer_median_ms(tm);
  double tflops = 2.0 * (double)m * (double)n * (double)k / (ms * 1e-3) / 1e12;
  char shape[64];
  snprintf(shape, sizeof shape, "[%lld,%lld]x[%lld,%lld]", (long long)m, (long long)k, (long long)k, (long long)n);
  printf("%-8s %-26s %-8s %10.4f %12.1f TFLOP/s\n", "gemm", shape, strict ? "fp32" : "tf32", ms, tflops);
  for (int i = 0; i < NSETS; i++) {
    icl_tensor_free(ctx, a[i]);
    icl_tensor_free(ctx, b[i]);
    icl_tensor_free(ctx, c[i]);
  }
  ctx->strict_fp32 = 0;
}

/* The RMSNorm entries at the standard shape (64 x 102 tokens, hidden 256), as
 * the training step calls them; GB/s counts each operand read or written once. */
static void bench_norm(icl_ctx *ctx, const icl_backend *be, timer *tm) {
  const int64_t rows = 6528, d = 256, n = rows * d;
  icl_tensor *x[NSETS], *dy[NSETS], *dx[NSETS], *y = randn(ctx, rows, d, 40), *a = randn(ctx, rows, d, 41);
  icl_tensor *w = randn(ctx, 1, d, 42), *dw = randn(ctx, 1, d, 43), *rstd = randn(ctx, rows, 1, 44);
  for (int i = 0; i < NSETS; i++) {
    x[i] = randn(ctx, rows, d, 50 + 3 * (uint64_t)i);
    dy[i] = randn(ctx, rows, d, 51 + 3 * (uint64_t)i);
    dx[i] = randn(ctx, rows, d, 52 + 3 * (uint64_t)i);
  }
#define F(t) ((float *)icl_tensor_data(t))
  /* rstd of x[0] for the backward (any positive values do for timing) */
  if (be->nn->rmsnorm_fwd(ctx, F(y), F(rstd), F(x[0]), F(w), rows, d, 1e-6f)) die(ctx, "rmsnorm_fwd");
  static const char *names[4] = {"rmsnorm_fwd", "add_rmsnorm", "rms_bwd dx+=", "rms_bwd +dw"};
  /* floats moved per element: fwd x, y; add: x, delta, a, y; bwd dx+=: dy, x, dx read + dx written; + dw: the
   * column sum reads dy and x again */
  static const double floats[4] = {2, 4, 4, 6};
  for (int v = 0; v < 4; v++) {
    for (int r = 0; r < WARMUP + REPS; r++) {
      int s = r % NSETS;
      if (r >= WARMUP) CU(cudaEventRecord(tm->start[r - WARMUP], tm->stream));
      int rc = v == 0   ? be->nn->rmsnorm_fwd(ctx, F(y), F(rstd), F(x[s]), F(w), rows, d, 1e-6f)
               : v == 1 ? be->nn->add_rmsnorm_fwd(ctx, F(a), F(y), F(rstd), F(x[s]), F(dy[s]), F(w), rows, d, 1e-6f)
                        : be->nn->rmsnorm_bwd(ctx, F(dx[s]), v == 3 ? F(dw) : NULL, F(dy[s]), F(x[s]), F(w), F(rstd),
                                              rows, d, 1);
      if (rc) die(ctx, names[v]);
      if (r >= WARMUP) CU(cudaEventRecord(tm->stop[r - WARMUP], tm->stream));
    }
    float ms = timer_median_ms(tm);
    double gbs = floats[v] * 4.0 * (double)n / (ms * 1e-3) / 1e9;
    printf("%-8s %-26s %-8s %10.4f %12.1f GB/s\n", names[v], "[6528,256]", "-", ms, gbs);
  }
#undef F
  for (int i = 0; i < NSETS; i++) icl_tensor_free(ctx, x[i]), icl_tensor_free(ctx, dy[i]), icl_tensor_free(ctx, dx[i]);
  icl_tensor_free(ctx, y), icl_tensor_free(ctx, a), icl_tensor_free(ctx, w), icl_tensor_free(ctx, dw);
  icl_tensor_free(ctx, rstd);
}

/* 1 GiB each way: bytes moved = read + write */
static void bench_copy(icl_ctx *ctx, const icl_backend *be, timer *tm) {
  int64_t n = (int64_t)1 << 28;
  icl_tensor *src = randn(ctx, n / 4096, 4096, 7), *dst = randn(ctx, n / 4096, 4096, 8);
  size_t bytes = (size_t)n * sizeof(float);
  for (int variant = 0; variant < 2; variant++) {
    for (int r = 0; r < WARMUP + REPS; r++) {
      if (r >= WARMUP) CU(cudaEventRecord(tm->start[r - WARMUP], tm->stream));
      if (variant == 0) {
        if (be->memcpy(ctx, icl_tensor_data(dst), ICL_CUDA, icl_tensor_data(src), ICL_CUDA, bytes)) die(ctx, "memcpy");
      } else {
        /* a kernel that reads and writes every element (the vectorised map path) */
        if (be->unary(ctx, ICL_UN_NEG, icl_tensor_view_of(dst), icl_tensor_view_of(src), 0, 0)) die(ctx, "unary");
      }
      if (r >= WARMUP) CU(cudaEventRecord(tm->stop[r - WARMUP], tm->stream));
    }
    float ms = timer_median_ms(tm);
    double gbs = 2.0 * (double)bytes / (ms * 1e-3) / 1e9;
    printf("%-8s %-26s %-8s %10.4f %12.1f GB/s\n", variant ? "neg" : "memcpy", "1 GiB d2d", "-", ms, gbs);
  }
  icl_tensor_free(ctx, src);
  icl_tensor_free(ctx, dst);
}

int main(void) {
  icl_ctx *ctx = icl_ctx_new();
  if (!ctx) return 1;
  if (!icl_cuda_available(ctx)) {
    printf("no CUDA device, skipping\n");
    icl_ctx_free(ctx);
    return 0;
  }
  const icl_backend *be = icl_backend_get(ctx, ICL_CUDA);
  if (!be) die(ctx, "backend");
  int dev = 0;
  struct cudaDeviceProp prop;
  CU(cudaGetDevice(&dev));
  CU(cudaGetDeviceProperties(&prop, dev));
  printf("device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
         (double)prop.totalGlobalMem / (1 << 30));
  printf("median of %d runs after %d warm-up, %d rotating input sets\n\n", REPS, WARMUP, NSETS);
  printf("%-8s %-26s %-8s %10s %20s\n", "op", "shape", "mode", "ms", "rate");
  timer tm;
  timer_init(&tm, (cudaStream_t)icl_cuda_stream(ctx));
  static const int64_t shapes[3][3] = {{6528, 256, 1024}, {6528, 1024, 256}, {6528, 256, 768}};
  for (int strict = 0; strict < 2; strict++)
    for (int i = 0; i < 3; i++) bench_gemm(ctx, be, &tm, shapes[i][0], shapes[i][1], shapes[i][2], strict);
  bench_norm(ctx, be, &tm);
  bench_copy(ctx, be, &tm);
  for (int i = 0; i < REPS; i++) {
    cudaEventDestroy(tm.start[i]);
    cudaEventDestroy(tm.stop[i]);
  }
  icl_cuda_mem_stats ms;
  icl_cuda_memory_stats(ctx, &ms);
  printf("\nallocator: %llu cudaMalloc, %llu reuses, peak %.1f MiB\n", (unsigned long long)ms.n_malloc,
         (unsigned long long)ms.n_reuse, (double)ms.peak_bytes / (1 << 20));
  icl_ctx_free(ctx);
  return 0;
}
