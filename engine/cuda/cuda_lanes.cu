/* Lanes: extra streams, each with its own cuBLAS workspace and reduction
 * scratch, so that the training steps of a group (several runs of one shape
 * in one process) run at the same time on one GPU. A small model's step
 * leaves most of the chip idle and is bound by kernel latency, not by the
 * work: K steps on K streams overlap where K steps on one stream queue.
 *
 * Everything the kernels of a step share through the state (the stream they
 * are enqueued on, the GEMM workspace, the reduction partials) is swapped
 * when a lane is put in use; a graph captured on lane k keeps lane k's
 * buffers, so replays on different lanes touch disjoint memory. The caching
 * allocator is not stream-aware: lanes are for steps that allocate nothing
 * (graph replays); the caller synchronises a lane after any step that may
 * have allocated (models/train_step.c). */
#include <stdlib.h>

#include "cuda_internal.cuh"
#include "icl_cuda.h"

void icl_cuda_lane_use_state(icl_cuda_state *st, int k) {
  if (st->lane == 0) { /* remember the context's own before the first switch */
    st->lane0_stream = st->stream;
    st->lane0_workspace = st->workspace;
    st->lane0_scratch = st->scratch;
  }
  if (k == 0) {
    st->stream = st->lane0_stream;
    st->workspace = st->lane0_workspace;
    st->scratch = st->lane0_scratch;
  } else {
    struct icl_cuda_lane *l = &st->lanes[k - 1];
    st->stream = l->stream;
    st->workspace = l->workspace;
    st->scratch = l->scratch;
  }
  st->lane = k;
  /* both only record the pointers; neither synchronises */
  cublasSetStream(st->blas, st->stream);
  cublasSetWorkspace(st->blas, st->workspace, st->workspace_bytes);
}

static int lane_make(icl_ctx *ctx, icl_cuda_state *st, int k) {
  if (!st->lanes) {
    st->lanes = (struct icl_cuda_lane *)calloc(ICL_CUDA_LANES_MAX, sizeof *st->lanes);
    if (!st->lanes) return icl_errorf(ctx, ICL_ENOMEM, "cuda: out of host memory for the lanes");
  }
  if (!st->fork_event)
    ICL_CU(ctx, "cudaEventCreate (fork)", cudaEventCreateWithFlags(&st->fork_event, cudaEventDisableTiming));
  struct icl_cuda_lane *l = &st->lanes[k - 1];
  /* each part once: after a failure the next call makes only what is missing (the stream last) */
  if (!l->workspace) ICL_CU(ctx, "lane workspace", cudaMalloc(&l->workspace, st->workspace_bytes));
  if (!l->scratch) ICL_CU(ctx, "lane scratch", cudaMalloc(&l->scratch, st->scratch_bytes));
  if (!l->done) ICL_CU(ctx, "lane event", cudaEventCreateWithFlags(&l->done, cudaEventDisableTiming));
  if (!l->stream) ICL_CU(ctx, "lane stream", cudaStreamCreateWithFlags(&l->stream, cudaStreamNonBlocking));
  return ICL_OK;
}

static icl_cuda_state *lanes_state(icl_ctx *ctx, int k, const char *what) {
  icl_cuda_state *st = ctx && ctx->cuda && !ctx->cuda->failed ? ctx->cuda : NULL;
  if (!st) {
    icl_errorf(ctx, ICL_EDEVICE, "cuda: %s: the CUDA device is not started", what);
    return NULL;
  }
  if (k < 0 || k > ICL_CUDA_LANES_MAX) {
    icl_errorf(ctx, ICL_EINVAL, "cuda: %s: lane %d is not in 0..%d", what, k, ICL_CUDA_LANES_MAX);
    return NULL;
  }
  return st;
}

extern "C" int icl_cuda_lane_use(icl_ctx *ctx, int k) {
  icl_cuda_state *st = lanes_state(ctx, k, "lane");
  if (!st) return ICL_EDEVICE;
  if (icl_cuda_capturing(st)) return icl_errorf(ctx, ICL_EDEVICE, "cuda: lane switch while a graph is captured");
  if (k > 0 && lane_make(ctx, st, k)) return ctx->errcode;
  icl_cuda_lane_use_state(st, k);
  return ICL_OK;
}

extern "C" int icl_cuda_lane_current(icl_ctx *ctx) {
  return ctx && ctx->cuda && !ctx->cuda->failed ? ctx->cuda->lane : 0;
}

extern "C" int icl_cuda_lanes_fork(icl_ctx *ctx, int K) {
  icl_cuda_state *st = lanes_state(ctx, K, "fork");
  if (!st) return ICL_EDEVICE;
  if (st->lane != 0) return icl_errorf(ctx, ICL_EINVAL, "cuda: fork from lane %d (must be lane 0)", st->lane);
  for (int k = 1; k <= K; k++)
    if (lane_make(ctx, st, k)) return ctx->errcode;
  if (K == 0) return ICL_OK;
  ICL_CU(ctx, "fork: record", cudaEventRecord(st->fork_event, st->stream));
  for (int k = 1; k <= K; k++) ICL_CU(ctx, "fork: wait", cudaStreamWaitEvent(st->lanes[k - 1].stream, st->fork_event, 0));
  return ICL_OK;
}

extern "C" int icl_cuda_lanes_join(icl_ctx *ctx, int K) {
  icl_cuda_state *st = lanes_state(ctx, K, "join");
  if (!st) return ICL_EDEVICE;
  if (st->lane != 0) return icl_errorf(ctx, ICL_EINVAL, "cuda: join from lane %d (must be lane 0)", st->lane);
  for (int k = 1; k <= K && st->lanes; k++) {
    struct icl_cuda_lane *l = &st->lanes[k - 1];
    if (!l->stream) continue;
    ICL_CU(ctx, "join: record", cudaEventRecord(l->done, l->stream));
    ICL_CU(ctx, "join: wait", cudaStreamWaitEvent(st->stream, l->done, 0));
  }
  return ICL_OK;
}

void icl_cuda_lanes_destroy(icl_cuda_state *st) {
  if (!st->lanes) return;
  for (int k = 0; k < ICL_CUDA_LANES_MAX; k++) {
    struct icl_cuda_lane *l = &st->lanes[k];
    if (l->stream) {
      cudaStreamSynchronize(l->stream);
      cudaStreamDestroy(l->stream);
    }
    if (l->done) cudaEventDestroy(l->done);
    if (l->workspace) cudaFree(l->workspace);
    if (l->scratch) cudaFree(l->scratch);
  }
  if (st->fork_event) cudaEventDestroy(st->fork_event);
  free(st->lanes);
  st->lanes = NULL;
  st->fork_event = NULL;
}
