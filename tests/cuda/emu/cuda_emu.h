/* A CPU emulator of the CUDA execution model, for testing kernels on a
 * machine without a GPU. Include it first, then a kernel source (.cu) as
 * plain C++ (the wrappers emu_*.cc): the kernels and their host launchers
 * compile unchanged (engine/cuda/cuda_launch.cuh routes launches and
 * dynamic shared memory here) and run on host memory.
 *
 * Model. Blocks run one after another; the threads of a block are
 * cooperative fibers (emu_fiber.h) that run until they reach a barrier:
 *   __syncthreads()      releases when every live thread of the block is there
 *   __shfl_xor_sync(), __shfl_sync(), __shfl_down_sync()
 *                        release when all 32 lanes of the warp are there (the
 *                        kernels only shuffle with full warps); values pass
 *                        through a per-warp double buffer
 * Threads waiting at different barriers with nothing runnable is a deadlock
 * (the emulator aborts, naming the block): that is how a barrier inside
 * divergent code shows up. Lanes meeting at shuffles of different sequence
 * numbers abort too. Between barriers the threads run one at a time, in
 * index order and in reverse order on alternate rounds, so a missing barrier
 * (a read of what another thread writes in the same interval) gives a wrong
 * result in one of the orders. Dynamic shared memory is filled with NaN bytes
 * before each block, so a read of shared memory nothing wrote tends to poison
 * the result, and is followed by a guard zone checked after each block (a
 * write past the launch's size aborts). Intrinsics: __fmul_rn and friends are plain IEEE operations (build
 * with -ffp-contract=off); the kernels' other arithmetic is not fused
 * either, unlike nvcc's default contraction, so results can differ from a
 * GPU's in the last bits, never in logic.
 *
 * Not modelled: concurrency between blocks (they never communicate in these
 * kernels), memory ordering, timing, resource limits (register and shared
 * memory sizes are checked by the real build with ptxas). */
#ifndef ICL_CUDA_EMU_H
#define ICL_CUDA_EMU_H

#define ICL_CUDA_EMU 1
#define __host__
#define __device__
#define __global__
#define __shared__ static
#define __launch_bounds__(...)

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>

/* ---- the scheduler (cuda_emu.cc) ------------------------------------------------- */

struct emu_thread;
extern emu_thread *emu_cur;
extern uint3 emu_block_idx;
extern dim3 emu_block_dim, emu_grid_dim;
const uint3 &emu_thread_idx();

void emu_run(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);
void *emu_dyn_smem();
void emu_syncthreads();
float emu_shfl_xor(float v, int lane_mask);
int emu_lane();
/* every lane of the warp passes v and reads lane src's (a float or a double, exactly) */
double emu_shfl_from(double v, int src);

#define threadIdx (emu_thread_idx())
#define blockIdx (emu_block_idx)
#define blockDim (emu_block_dim)
#define gridDim (emu_grid_dim)

static inline void __syncthreads() { emu_syncthreads(); }
static inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32) {
  (void)mask;
  (void)width;
  return emu_shfl_xor(v, lane_mask);
}

/* width-segmented shuffles, as the device defines them */
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  (void)mask;
  const int lane = emu_lane();
  return (T)emu_shfl_from((double)v, (lane & ~(width - 1)) | (src & (width - 1)));
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  (void)mask;
  const int lane = emu_lane();
  const int s = (lane & (width - 1)) + (int)delta < width ? lane + (int)delta : lane;
  return (T)emu_shfl_from((double)v, s);
}

/* rounding-pinned intrinsics: plain IEEE operations on the host */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline int __float_as_int(float x) {
  int i;
  memcpy(&i, &x, 4);
  return i;
}
static inline unsigned __float_as_uint(float x) {
  unsigned i;
  memcpy(&i, &x, 4);
  return i;
}
static inline float __int_as_float(int i) {
  float x;
  memcpy(&x, &i, 4);
  return x;
}
static inline int __float2int_rz(float x) { return (int)x; }

/* ---- what engine/cuda/cuda_launch.cuh provides on a real build ----------------------- */

template <typename... K, typename... A>
static inline void icl_launch(void (*k)(K...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A... args) {
  (void)stream;
  emu_run(grid, block, smem, [&]() { k(args...); });
}

#define ICL_DYN_SMEM(type, name) type *name = reinterpret_cast<type *>(emu_dyn_smem())

/* runtime calls of the launchers */
template <typename... A> static inline cudaError_t emu_ok(A...) { return cudaSuccess; }
#define cudaFuncSetAttribute(...) emu_ok(__VA_ARGS__)
#define cudaGetLastError() cudaSuccess
#define cudaGetErrorString(e) ((void)(e), "emulated error")

#endif
