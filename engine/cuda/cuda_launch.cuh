/* Kernel launches and dynamic shared memory of the attention and Mamba
 * kernels go through these two wrappers, so that the same sources also
 * build as plain C++ against the CPU emulator of the CUDA execution model in
 * tests/cuda/emu (which defines ICL_CUDA_EMU and its own versions of both):
 * the kernels' logic (indexing, masking, barriers, shuffles) is then tested
 * on a machine without a GPU. */
#ifndef ICL_CUDA_LAUNCH_CUH
#define ICL_CUDA_LAUNCH_CUH

#ifndef ICL_CUDA_EMU
#include <cuda_runtime.h>

/* k<<<grid, block, smem, stream>>>(args...); errors are read by ICL_CU_LAUNCHED */
template <typename... K, typename... A>
static inline void icl_launch(void (*k)(K...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A... args) {
  k<<<grid, block, smem, stream>>>(args...);
}

#define ICL_DYN_SMEM(type, name) extern __shared__ type name[]
#endif

#endif
