/* The engine context: everything that would otherwise be global state.
 * It owns the last error message, the default random generator, the thread
 * count and (when built with CUDA) the device handles. One context per Lua
 * state / per C program; contexts are independent of each other. */
#ifndef ICL_CONTEXT_H
#define ICL_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ICL_ERRMSG_MAX 1024

typedef struct icl_cuda_state icl_cuda_state; /* opaque; defined by the CUDA backend */

typedef struct icl_ctx {
  char errmsg[ICL_ERRMSG_MAX];
  int errcode;
  uint64_t rng_seed;    /* default generator for draws without an explicit seed */
  uint64_t rng_stream;  /* next stream id of the default generator */
  int num_threads;      /* CPU threads for OpenMP loops and BLAS */
  int strict_fp32;      /* GPU GEMMs: 1 = no TF32 */
  icl_cuda_state *cuda; /* NULL until the CUDA backend is initialised */
  size_t cpu_bytes;     /* live bytes allocated through the CPU backend */
} icl_ctx;

icl_ctx *icl_ctx_new(void);
void icl_ctx_free(icl_ctx *ctx);

/* Record an error and return its code, so callers can write
 *   return icl_errorf(ctx, ICL_ESHAPE, "matmul: %s vs %s", a, b); */
int icl_errorf(icl_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the current message with more context ("layer 3: ..."). */
int icl_error_prefix(icl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *icl_last_error(const icl_ctx *ctx);
void icl_clear_error(icl_ctx *ctx);

void icl_set_num_threads(icl_ctx *ctx, int n);

#endif
