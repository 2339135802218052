/* The task area's kernels on the GPU: prompt sampling for every function
 * class and the metric, the mirror of engine/tasks/cpu_tasks.c. Baselines
 * stay on the CPU (the table's entry is NULL, so baselines.c runs the CPU
 * kernel on host copies).
 *
 * Same bits as the CPU. Every number is a function of its Philox index
 * (tasks/task_rng.h), and the per-element formulas are the CPU's own
 * host-and-device code (task_regression.h, task_boolean.h), whose sums are
 * exact in double or in small integers, so the thread layout cannot change
 * them. One caveat, shared with cuda_random.cu: a normal draw goes through
 * the device's double log and cos, which can differ from glibc's in the last
 * double bit, so a Gaussian number can (very rarely, about once in 10^8
 * draws) come out one float ulp away from the CPU's.
 *
 * Phases (one kernel each, nothing allocated, nothing read back, so a
 * training step that samples can be captured as a CUDA graph):
 *   1. functions: one thread per float of each prompt's function(s); a random
 *      k-subset is "my key's rank among the keys is < k" per element, the
 *      same subset as the CPU's k passes;
 *   2. inputs: one thread per coordinate;
 *   3. labels: one thread per point (forcing of Boolean inputs, then f(x));
 *   4. noisy_linear_regression with renormalize_ys: one block computes the
 *      batch std in the CPU's order (double, per prompt then over prompts)
 *      and rescales. */
#include "cuda_internal.cuh"

#include "cuda_tasks.cuh"

extern "C" {
#include "tasks/task_kernels.h"
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_task_fn(task_args a, float *__restrict__ ws) {
  const uint64_t stream = stream_of(a.stream, a.stream_add);
  const int64_t n = a.B * a.slots * a.F, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step)
    task_fn_at(a, stream, ws, idx);
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_task_x(float *__restrict__ xs, int boolean, int64_t B, int64_t N, int64_t D, int64_t dt, uint64_t seed,
             uint64_t stream0, const float *stream_add, int64_t prompt_offset) {
  const uint64_t stream = stream_of(stream0, stream_add);
  const int64_t n = B * N * D, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step)
    xs[idx] = task_x_at(boolean, N, D, dt, seed, stream, prompt_offset, idx);
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_task_label(task_args a, float *__restrict__ xs, float *__restrict__ ys, const float *__restrict__ ws) {
  const uint64_t stream = stream_of(a.stream, a.stream_add);
  const int64_t n = a.B * a.N, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < n; row += step)
    task_label_at(a, stream, xs, ys, ws, row);
}

/* y <- y sqrt(D) / std(y): per-prompt double sums in point order into the
 * scratch, their sum in prompt order, then the rescale. One block. */
#define RENORM_THREADS 1024
__global__ void __launch_bounds__(RENORM_THREADS)
    k_task_renorm(float *ys, int64_t B, int64_t N, int64_t D, double *__restrict__ part) {
  __shared__ float f_sh;
  __shared__ int do_sh;
  for (int64_t b = threadIdx.x; b < B; b += RENORM_THREADS)
    task_renorm_prompt(ys, N, b, &part[2 * b], &part[2 * b + 1]);
  __syncthreads();
  if (threadIdx.x == 0) do_sh = task_renorm_factor(part, B, N, D, &f_sh);
  __syncthreads();
  if (!do_sh) return;
  const float f = f_sh;
  for (int64_t e = threadIdx.x; e < B * N; e += RENORM_THREADS) ys[e] = __fmul_rn(ys[e], f);
}

static int sample(icl_ctx *ctx, const icl_task_params *p, const icl_task_draw *d, float *xs, float *ys, float *ws) {
  icl_cuda_state *st = ctx->cuda;
  task_args a = task_args_make(p, d, icl_task_fn_floats(p), icl_task_fn_slots(p));
  if (a.B <= 0 || a.N <= 0) return ICL_OK;
  const int renorm = a.noisy && p->renormalize_ys && a.B * a.N > 1;
  if (renorm && (uint64_t)(2 * a.B) > st->scratch_bytes / sizeof(double))
    return icl_errorf(ctx, ICL_EINVAL, "cuda: %s: renormalize_ys over %lld prompts exceeds the reduction scratch",
                      icl_task_name(p->kind), (long long)a.B);
  int64_t nfn = a.B * a.slots * a.F, nx = a.B * a.N * a.D, npt = a.B * a.N;
  k_task_fn<<<icl_cuda_blocks(st, nfn, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(a, ws);
  ICL_CU_LAUNCHED(ctx, "task sample (functions)");
  k_task_x<<<icl_cuda_blocks(st, nx, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(
      xs, a.boolean, a.B, a.N, a.D, a.xdt, a.seed, a.stream, a.stream_add, a.prompt_offset);
  ICL_CU_LAUNCHED(ctx, "task sample (inputs)");
  k_task_label<<<icl_cuda_blocks(st, npt, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(a, xs, ys, ws);
  ICL_CU_LAUNCHED(ctx, "task sample (labels)");
  if (renorm) {
    k_task_renorm<<<1, RENORM_THREADS, 0, st->stream>>>(ys, a.B, a.N, a.D, (double *)st->scratch);
    ICL_CU_LAUNCHED(ctx, "task sample (renormalize)");
  }
  return ICL_OK;
}

static int sample_inputs(icl_ctx *ctx, icl_input_kind kind, const icl_task_draw *d, int64_t D, float *xs) {
  icl_cuda_state *st = ctx->cuda;
  int64_t nx = d->B * d->N * D;
  if (nx <= 0) return ICL_OK;
  k_task_x<<<icl_cuda_blocks(st, nx, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(
      xs, kind == ICL_INPUT_BOOLEAN, d->B, d->N, D, d->n_dims_truncated, d->seed, d->stream, d->stream_add,
      d->prompt_offset);
  ICL_CU_LAUNCHED(ctx, "sample_inputs");
  return ICL_OK;
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_metric(int kind, float *__restrict__ out, const float *__restrict__ pred, const float *__restrict__ ys,
             int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (kind == ICL_METRIC_SQUARED_ERROR) {
      float e = __fsub_rn(pred[i], ys[i]);
      out[i] = __fmul_rn(e, e);
    } else {
      float s = pred[i] > 0 ? 1.0f : (pred[i] < 0 ? -1.0f : 0.0f); /* sign(0) = 0 never matches a label */
      out[i] = s == ys[i] ? 1.0f : 0.0f;
    }
  }
}

static int metric(icl_ctx *ctx, icl_metric_kind kind, float *out, const float *pred, const float *ys, int64_t n) {
  icl_cuda_state *st = ctx->cuda;
  if (n <= 0) return ICL_OK;
  k_metric<<<icl_cuda_blocks(st, n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>((int)kind, out, pred, ys, n);
  ICL_CU_LAUNCHED(ctx, "metric");
  return ICL_OK;
}

/* baseline: NULL, the front end runs the CPU's on host copies */
extern "C" const icl_task_kernels icl_cuda_task_kernels = {sample, sample_inputs, metric, NULL};
