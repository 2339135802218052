/* Extras of the CUDA backend that C code may call beyond the backend table:
 * the stream (for events, graphs and other areas' kernels) and the caching
 * allocator's counters. Only declared when the engine is built with CUDA;
 * every function is safe to call before the device is initialised (it then
 * reports zeros / NULL and initialises nothing). */
#ifndef ICL_CUDA_H
#define ICL_CUDA_H

#ifdef ICL_HAVE_CUDA

#include <stddef.h>
#include <stdint.h>

#include "../core/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cudaStream_t everything of this context runs on (NULL before init). */
void *icl_cuda_stream(icl_ctx *ctx);

typedef struct icl_cuda_mem_stats {
  size_t live_bytes;   /* handed out, not yet released (rounded to size classes) */
  size_t cached_bytes; /* released, kept for reuse */
  size_t peak_bytes;   /* high-water mark of live + cached */
  uint64_t n_malloc;   /* cudaMalloc calls */
  uint64_t n_reuse;    /* allocations served from the cache */
} icl_cuda_mem_stats;

void icl_cuda_memory_stats(icl_ctx *ctx, icl_cuda_mem_stats *out);
/* Return every cached block to the driver (synchronises the stream). Must not
 * be called while the stream is being captured into a graph. */
int icl_cuda_empty_cache(icl_ctx *ctx);
/* Testing aid: 1 forces the 64-bit index path of the strided kernels, which
 * otherwise only runs for views of more than 2^32 elements. */
void icl_cuda_force_wide_index(icl_ctx *ctx, int on);

/* CUDA graphs of the context's stream (cuda_graph.cu). Between begin and
 * end, work enqueued on the stream is recorded instead of run; the backend
 * refuses what cannot be recorded (allocation, copies with the host, sync)
 * with an error naming it. end(ok = 0) abandons a capture whose body failed.
 * A graph replays the recorded kernels with the recorded arguments: every
 * pointer it uses must stay valid and in place while the graph is kept. */
typedef struct icl_cuda_graph icl_cuda_graph;
int icl_cuda_capture_begin(icl_ctx *ctx);
/* ok != 0: instantiate into *out (NULL + error when capture failed) */
int icl_cuda_capture_end(icl_ctx *ctx, int ok, icl_cuda_graph **out);
int icl_cuda_graph_launch(icl_ctx *ctx, icl_cuda_graph *g);
/* kernel nodes in the graph (for reports) */
size_t icl_cuda_graph_nodes(const icl_cuda_graph *g);
/* waits for the stream, then frees (NULL is fine) */
void icl_cuda_graph_free(icl_ctx *ctx, icl_cuda_graph *g);

/* Lanes (cuda_lanes.cu): streams 1..ICL_CUDA_LANES_MAX beside the context's
 * own (lane 0), each with its own GEMM workspace and reduction scratch, for
 * running several training steps' graphs at once. While lane k is in use,
 * everything of this context is enqueued on lane k. fork(K): lanes 1..K wait
 * for the work enqueued so far on lane 0; join(K): lane 0 waits for theirs.
 * Both from lane 0. A lane is made on first use (cudaMalloc; not while a
 * graph is captured). */
#define ICL_CUDA_LANES_MAX 64
int icl_cuda_lane_use(icl_ctx *ctx, int k);
int icl_cuda_lane_current(icl_ctx *ctx);
int icl_cuda_lanes_fork(icl_ctx *ctx, int K);
int icl_cuda_lanes_join(icl_ctx *ctx, int K);

#ifdef __cplusplus
}
#endif

#endif /* ICL_HAVE_CUDA */
#endif
