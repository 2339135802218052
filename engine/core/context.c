#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#ifdef _OPENMP
#include <omp.h>
#endif

const char *icl_status_name(int status) {
  switch (status) {
  case ICL_OK: return "ok";
  case ICL_EINVAL: return "invalid argument";
  case ICL_ESHAPE: return "shape mismatch";
  case ICL_ERANGE: return "out of range";
  case ICL_ENOMEM: return "out of memory";
  case ICL_EIO: return "i/o error";
  case ICL_EFORMAT: return "bad format";
  case ICL_EDEVICE: return "device error";
  case ICL_ENOTIMPL: return "not implemented";
  case ICL_ENUMERIC: return "non-finite value";
  case ICL_ECALLBACK: return "callback error";
  default: return "unknown error";
  }
}

extern void openblas_set_num_threads(int) __attribute__((weak));

icl_ctx *icl_ctx_new(void) {
  icl_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->rng_seed = 0x1c1u;
  ctx->num_threads = 0;
  const char *env = getenv("ICL_NUM_THREADS");
  if (env && atoi(env) > 0) icl_set_num_threads(ctx, atoi(env));
  else if (openblas_set_num_threads) openblas_set_num_threads(1);
  /* the strict-FP32 switch for whole runs (icl train, benchmarks): GPU GEMMs
   * without TF32; the CPU computes in FP32 either way */
  const char *strict = getenv("ICL_STRICT_FP32");
  ctx->strict_fp32 = strict && *strict && strcmp(strict, "0") != 0;
  return ctx;
}

void icl_ctx_free(icl_ctx *ctx) {
  if (!ctx) return;
  icl_backend_release_devices(ctx);
  free(ctx);
}

static void vset(icl_ctx *ctx, int code, const char *fmt, va_list ap) {
  ctx->errcode = code;
  vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
}

int icl_errorf(icl_ctx *ctx, int code, const char *fmt, ...) {
  if (!ctx) return code;
  va_list ap;
  va_start(ap, fmt);
  vset(ctx, code, fmt, ap);
  va_end(ap);
  return code;
}

int icl_error_prefix(icl_ctx *ctx, const char *fmt, ...) {
  char prefix[256];
  char old[ICL_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, ctx->errmsg, sizeof old);
  size_t np = strlen(prefix);
  if (np >= sizeof ctx->errmsg) np = sizeof ctx->errmsg - 1;
  memcpy(ctx->errmsg, prefix, np);
  size_t room = sizeof ctx->errmsg - 1 - np, nold = strlen(old);
  if (nold > room) nold = room;
  memcpy(ctx->errmsg + np, old, nold);
  ctx->errmsg[np + nold] = '\0';
  return ctx->errcode;
}

const char *icl_last_error(const icl_ctx *ctx) { return ctx->errmsg[0] ? ctx->errmsg : "no error"; }

void icl_clear_error(icl_ctx *ctx) {
  ctx->errcode = ICL_OK;
  ctx->errmsg[0] = '\0';
}

/* OpenMP owns the CPU threads. OpenBLAS keeps one thread: the CPU GEMM
 * splits large products over OpenMP threads itself (engine/cpu/cpu_gemm.c),
 * so two pools never busy-wait against each other. */

void icl_set_num_threads(icl_ctx *ctx, int n) {
  if (n < 1) n = 1;
  ctx->num_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}
