/* Shared by the CUDA Mamba kernels (cuda_mamba_conv.cu, cuda_mamba_scan.cu):
 * scalar device copies of the CPU kernels' 8-lane math (nn/vmath.h,
 * models/mamba_vmath.h), operation for operation with the rounding pinned
 * (__fmul_rn / __fadd_rn stop nvcc from fusing what the CPU computes as a
 * separate multiply and add; the CPU side is built with -ffp-contract=off).
 * Same inputs, same bits: the conv, Δ, the decay factors and the scan
 * states agree with the CPU exactly, and the remaining differences come
 * only from sums taken in another order (see cuda_mamba_scan.cu). */
#ifndef ICL_CUDA_MAMBA_CUH
#define ICL_CUDA_MAMBA_CUH

#include "cuda_internal.cuh"
#include "cuda_launch.cuh"
#include "cuda_nn_math.cuh"

extern "C" {
#include "models/mamba_kernels.h"
}

#define CM_LOG2E 1.44269504088896341f

/* v8_exp2: x clamped to [-126, 127] (NaN -> -126, as maxps), x = n + f, a
 * degree-5 polynomial in f times 2^n */
__device__ __forceinline__ float cm_exp2(float x) {
  x = fminf(fmaxf(x, -126.0f), 127.0f);
  const float magic = 12582912.0f;
  float n = __fsub_rn(__fadd_rn(x, magic), magic);
  float f = __fsub_rn(x, n);
  float p = 1.327647129e-3f;
  p = __fadd_rn(__fmul_rn(p, f), 9.675541893e-3f);
  p = __fadd_rn(__fmul_rn(p, f), 5.550713092e-2f);
  p = __fadd_rn(__fmul_rn(p, f), 2.402212024e-1f);
  p = __fadd_rn(__fmul_rn(p, f), 6.931469440e-1f);
  p = __fadd_rn(__fmul_rn(p, f), 1.000000119f);
  return __fmul_rn(p, __int_as_float((__float2int_rz(n) + 127) << 23));
}

/* v8_log_ge1: natural log for finite x >= 1 */
__device__ __forceinline__ float cm_log_ge1(float x) {
  int xi = __float_as_int(x);
  int k = ((xi >> 23) & 0xff) - 127;
  float m = __int_as_float((xi & 0x007fffff) | 0x3f800000);
  if (m > 1.41421356f) {
    m = __fmul_rn(m, 0.5f);
    k += 1;
  }
  float s = __fdiv_rn(__fsub_rn(m, 1.0f), __fadd_rn(m, 1.0f)), s2 = __fmul_rn(s, s);
  float p = 2.0f / 11.0f;
  p = __fadd_rn(__fmul_rn(p, s2), 2.0f / 9.0f);
  p = __fadd_rn(__fmul_rn(p, s2), 2.0f / 7.0f);
  p = __fadd_rn(__fmul_rn(p, s2), 2.0f / 5.0f);
  p = __fadd_rn(__fmul_rn(p, s2), 2.0f / 3.0f);
  p = __fadd_rn(__fmul_rn(p, s2), 2.0f);
  float kf = (float)k;
  return __fadd_rn(__fadd_rn(__fmul_rn(kf, 0.693359375f), __fmul_rn(s, p)), __fmul_rn(kf, -2.12194440e-4f));
}

/* v8_softplus with PyTorch's threshold 20; *sig = d softplus / dx */
__device__ __forceinline__ float cm_softplus(float x, float *sig) {
  float e = icl_nn_v8_exp(fminf(x, 20.0f));
  float u = __fadd_rn(1.0f, e), um1 = __fsub_rn(u, 1.0f);
  int tiny = um1 == 0.0f;
  float l = __fmul_rn(cm_log_ge1(u), __fdiv_rn(e, tiny ? 1.0f : um1));
  int above = x > 20.0f;
  if (sig) *sig = above ? 1.0f : __fdiv_rn(e, u);
  return above ? x : (tiny ? e : l);
}

/* silu'(x) * g = g * (s (1 + x (1 - s))), s = sigmoid(x): the CPU's grouping */
__device__ __forceinline__ float cm_dsilu(float x, float s) {
  return __fmul_rn(s, __fadd_rn(1.0f, __fmul_rn(x, __fsub_rn(1.0f, s))));
}

/* the Mamba entry points of the table, by file */
extern "C" {
int icl_cuda_mamba_conv_fwd(icl_ctx *ctx, float *u, const float *x, int64_t ldx, const float *w, const float *b,
                            int64_t B, int64_t T, int64_t E, int64_t K);
int icl_cuda_mamba_conv_bwd(icl_ctx *ctx, float *dx, float *dw, float *db, float *du, const float *x, int64_t ldx,
                            const float *w, const float *b, int64_t B, int64_t T, int64_t E, int64_t K,
                            float *scratch);
int64_t icl_cuda_mamba_conv_bwd_scratch(int64_t B, int64_t E, int64_t K);
}

#endif
