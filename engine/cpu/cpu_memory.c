/* Host memory for the CPU backend: 64-byte aligned (AVX loads, cache lines),
 * counted in the context so leaks show up in tests. */
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"

void *icl_cpu_alloc(icl_ctx *ctx, size_t nbytes) {
  size_t rounded = (nbytes + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) {
    icl_errorf(ctx, ICL_ENOMEM, "cpu: cannot allocate %zu bytes", nbytes);
    return NULL;
  }
  ctx->cpu_bytes += nbytes;
  return p;
}

void icl_cpu_release(icl_ctx *ctx, void *p, size_t nbytes) {
  if (!p) return;
  ctx->cpu_bytes -= nbytes;
  free(p);
}

int icl_cpu_memcpy(icl_ctx *ctx, void *dst, icl_device ddev, const void *src, icl_device sdev, size_t n) {
  if (ddev != ICL_CPU || sdev != ICL_CPU)
    return icl_errorf(ctx, ICL_EDEVICE, "cpu: cannot copy to or from a %s device without the CUDA backend",
                      icl_device_name(ddev != ICL_CPU ? ddev : sdev));
  if (n) memmove(dst, src, n);
  return ICL_OK;
}

int icl_cpu_sync(icl_ctx *ctx) {
  (void)ctx;
  return ICL_OK;
}
