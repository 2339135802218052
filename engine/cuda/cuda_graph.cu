/* CUDA graphs of the context's one stream: capture, instantiate, replay.
 *
 * Capture runs in thread-local mode: the capturing thread may not call
 * unsafe APIs (cudaMalloc, synchronising copies), and the backend turns such
 * calls into clear errors before they reach CUDA (alloc, memcpy with the
 * host and sync check icl_cuda_capturing). A failed body is abandoned with
 * end(ok = 0), which also clears the capture's error so the stream is usable
 * again at once. */
#include <stdlib.h>

#include "cuda_internal.cuh"
#include "icl_cuda.h"

struct icl_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  size_t nodes;
};

extern "C" int icl_cuda_capture_begin(icl_ctx *ctx) {
  icl_cuda_state *st = ctx->cuda;
  if (!st || st->failed) return icl_errorf(ctx, ICL_EDEVICE, "cuda: capture: the device is not initialised");
  if (icl_cuda_capturing(st)) return icl_errorf(ctx, ICL_EDEVICE, "cuda: capture: already capturing");
  ICL_CU(ctx, "capture begin", cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal));
  return ICL_OK;
}

extern "C" int icl_cuda_capture_end(icl_ctx *ctx, int ok, icl_cuda_graph **out) {
  icl_cuda_state *st = ctx->cuda;
  if (out) *out = NULL;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(st->stream, &graph);
  if (!ok || e != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError(); /* capture errors are not sticky: clear the record */
    if (!ok) return ICL_OK;
    return icl_errorf(ctx, ICL_EDEVICE, "cuda: capture end: %s", cudaGetErrorString(e));
  }
  icl_cuda_graph *g = (icl_cuda_graph *)calloc(1, sizeof *g);
  if (!g) {
    cudaGraphDestroy(graph);
    return icl_errorf(ctx, ICL_ENOMEM, "cuda: capture: out of host memory");
  }
  g->graph = graph;
  cudaGraphGetNodes(graph, NULL, &g->nodes);
  e = cudaGraphInstantiate(&g->exec, graph, 0);
  if (e == cudaSuccess) e = cudaGraphUpload(g->exec, st->stream);
  if (e != cudaSuccess) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    cudaGraphDestroy(graph);
    free(g);
    cudaGetLastError();
    return icl_errorf(ctx, ICL_EDEVICE, "cuda: graph instantiate: %s", cudaGetErrorString(e));
  }
  *out = g;
  return ICL_OK;
}

extern "C" int icl_cuda_graph_launch(icl_ctx *ctx, icl_cuda_graph *g) {
  ICL_CU(ctx, "graph launch", cudaGraphLaunch(g->exec, ctx->cuda->stream));
  return ICL_OK;
}

extern "C" size_t icl_cuda_graph_nodes(const icl_cuda_graph *g) { return g ? g->nodes : 0; }

extern "C" void icl_cuda_graph_free(icl_ctx *ctx, icl_cuda_graph *g) {
  if (!g) return;
  if (ctx && ctx->cuda && !ctx->cuda->failed) cudaStreamSynchronize(ctx->cuda->stream);
  cudaGraphExecDestroy(g->exec);
  cudaGraphDestroy(g->graph);
  cudaGetLastError();
  free(g);
}
