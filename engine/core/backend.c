/* Device dispatch: the CPU table is always there; the CUDA table exists when
 * the engine was built with CUDA and a device answers. */
#include "backend.h"

#include "../cpu/cpu_kernels.h"
#include "areas.h"

const icl_backend icl_cpu_backend = {
    .name = "cpu",
    .device = ICL_CPU,
    .alloc = icl_cpu_alloc,
    .release = icl_cpu_release,
    .memcpy = icl_cpu_memcpy,
    .sync = icl_cpu_sync,
    .fill = icl_cpu_fill,
    .copy = icl_cpu_copy,
    .unary = icl_cpu_unary,
    .binary = icl_cpu_binary,
    .reduce = icl_cpu_reduce,
    .softmax = icl_cpu_softmax,
    .gemm = icl_cpu_gemm,
    .random = icl_cpu_random,
    .nonfinite = icl_cpu_nonfinite,
    ICL_CPU_AREA_TABLES
};

#ifdef ICL_HAVE_CUDA
/* engine/cuda: returns the table after initialising the device, or NULL with
 * the reason in ctx */
const icl_backend *icl_cuda_backend_get(icl_ctx *ctx);
int icl_cuda_device_present(icl_ctx *ctx);
void icl_cuda_release(icl_ctx *ctx);
int icl_cuda_compiled(void) { return 1; }
#else
int icl_cuda_compiled(void) { return 0; }
#endif

const icl_backend *icl_backend_get(icl_ctx *ctx, icl_device dev) {
  if (dev == ICL_CPU) return &icl_cpu_backend;
#ifdef ICL_HAVE_CUDA
  return icl_cuda_backend_get(ctx);
#else
  icl_errorf(ctx, ICL_EDEVICE, "device 'cuda' requested, but this build of icl has no CUDA backend "
                               "(rebuild with -DICL_CUDA=ON on a machine with nvcc)");
  return NULL;
#endif
}

int icl_cuda_available(icl_ctx *ctx) {
#ifdef ICL_HAVE_CUDA
  return icl_cuda_device_present(ctx);
#else
  (void)ctx;
  return 0;
#endif
}

void icl_backend_release_devices(icl_ctx *ctx) {
#ifdef ICL_HAVE_CUDA
  icl_cuda_release(ctx);
#else
  (void)ctx;
#endif
}
