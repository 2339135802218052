/* Host memory for the CPU backend: 64-byte aligned (AVX loads, cache lines),
 * counted in the context so leaks show up in tests. Large blocks (model
 * buffers, activation arenas) are 2 MB aligned and offered to transparent
 * huge pages: kernels that walk a [tokens, channels] matrix down its rows
 * (the Mamba scan) touch a new 4 KB page every row or two, and the TLB
 * misses cost more than the arithmetic. */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu_kernels.h"

#define HUGE_PAGE ((size_t)2 << 20)

void *icl_cpu_alloc(icl_ctx *ctx, size_t nbytes) {
  size_t align = nbytes >= 2 * HUGE_PAGE ? HUGE_PAGE : 64;
  size_t rounded = (nbytes + align - 1) & ~(align - 1);
  void *p = aligned_alloc(align, rounded ? rounded : 64);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p && align == HUGE_PAGE) madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
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
