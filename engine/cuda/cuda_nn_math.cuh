/* Float arithmetic of the nn kernels, written so that the device computes
 * what engine/nn/cpu_nn.c computes, bit for bit where the CPU's formula
 * allows it. The CPU build uses -ffp-contract=off, so every product and sum
 * there is rounded on its own; nvcc would fuse a*b+c into an FMA, so the
 * device side spells each operation with a round-to-nearest intrinsic.
 *
 * Host-and-device: tests/cuda/test_cuda_host.cu runs these on the host
 * against nn/vmath.h and the CPU kernels' formulas (no GPU needed). */
#ifndef ICL_CUDA_NN_MATH_CUH
#define ICL_CUDA_NN_MATH_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ICL_NN_HD __host__ __device__ __forceinline__

#ifdef __CUDA_ARCH__
#define ICL_FMUL(a, b) __fmul_rn((a), (b))
#define ICL_FADD(a, b) __fadd_rn((a), (b))
#define ICL_FSUB(a, b) __fsub_rn((a), (b))
#define ICL_FDIV(a, b) __fdiv_rn((a), (b))
#else
/* host: the host compiler is not asked to contract (no -mfma in the test) */
#define ICL_FMUL(a, b) ((float)(a) * (float)(b))
#define ICL_FADD(a, b) ((float)(a) + (float)(b))
#define ICL_FSUB(a, b) ((float)(a) - (float)(b))
#define ICL_FDIV(a, b) ((float)(a) / (float)(b))
#endif

ICL_NN_HD float icl_nn_as_float(int32_t i) {
#ifdef __CUDA_ARCH__
  return __int_as_float(i);
#else
  float f;
  memcpy(&f, &i, 4);
  return f;
#endif
}

ICL_NN_HD int32_t icl_nn_as_int(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_int(f);
#else
  int32_t i;
  memcpy(&i, &f, 4);
  return i;
#endif
}

/* One lane of nn/vmath.h's icl_v8_exp: clamp to [-87, 88], Cody-Waite
 * reduction by the 1.5 * 2^23 rounding trick, Cephes polynomial, exponent
 * built from the integer bits. Every step is the vector code's, in its order. */
ICL_NN_HD float icl_nn_v8_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;
  float t = ICL_FADD(ICL_FMUL(x, 1.44269504088896341f), magic);
  float n = ICL_FSUB(t, magic);
  int32_t ni = icl_nn_as_int(t) - icl_nn_as_int(magic);
  float r = ICL_FSUB(ICL_FSUB(x, ICL_FMUL(n, 0.693359375f)), ICL_FMUL(n, -2.12194440e-4f));
  float p = 1.9875691500e-4f;
  p = ICL_FADD(ICL_FMUL(p, r), 1.3981999507e-3f);
  p = ICL_FADD(ICL_FMUL(p, r), 8.3334519073e-3f);
  p = ICL_FADD(ICL_FMUL(p, r), 4.1665795894e-2f);
  p = ICL_FADD(ICL_FMUL(p, r), 1.6666665459e-1f);
  p = ICL_FADD(ICL_FMUL(p, r), 5.0000001201e-1f);
  p = ICL_FADD(ICL_FADD(ICL_FMUL(p, ICL_FMUL(r, r)), r), 1.0f);
  float e = icl_nn_as_float((ni + 127) << 23);
  return ICL_FMUL(p, e);
}

/* icl_v8_sigmoid's lane: 1 / (1 + exp(-x)) with the polynomial exp */
ICL_NN_HD float icl_nn_v8_sigmoid(float x) { return ICL_FDIV(1.0f, ICL_FADD(1.0f, icl_nn_v8_exp(-x))); }

/* cpu_nn.c's scalar sigmoidf (libm expf: the device's expf may differ by an ulp or two) */
ICL_NN_HD float icl_nn_sigmoid(float x) { return ICL_FDIV(1.0f, ICL_FADD(1.0f, expf(-x))); }

/* SwiGLU forward of one element: (g * sigmoid(g)) * u. vec: the element sits
 * in one of the CPU's 8-lane blocks (polynomial exp), else in its scalar tail. */
ICL_NN_HD float icl_nn_swiglu(float g, float u, int vec) {
  float s = vec ? icl_nn_v8_sigmoid(g) : icl_nn_sigmoid(g);
  return ICL_FMUL(ICL_FMUL(g, s), u);
}

/* SwiGLU backward of one element: du = (d * g) * s, dg = ((d * u) * s) * (1 + g (1 - s)) */
ICL_NN_HD void icl_nn_swiglu_bwd(float g, float u, float d, int vec, float *dg, float *du) {
  float s = vec ? icl_nn_v8_sigmoid(g) : icl_nn_sigmoid(g);
  *du = ICL_FMUL(ICL_FMUL(d, g), s);
  *dg = ICL_FMUL(ICL_FMUL(ICL_FMUL(d, u), s), ICL_FADD(1.0f, ICL_FMUL(g, ICL_FSUB(1.0f, s))));
}

/* SiLU and its derivative, as cpu_nn.c writes them */
ICL_NN_HD float icl_nn_silu(float x) { return ICL_FMUL(x, icl_nn_sigmoid(x)); }
ICL_NN_HD float icl_nn_silu_bwd(float x, float dy) {
  float s = icl_nn_sigmoid(x);
  return ICL_FMUL(ICL_FMUL(dy, s), ICL_FADD(1.0f, ICL_FMUL(x, ICL_FSUB(1.0f, s))));
}

/* RMSNorm's 1 / sqrt(sum / d + eps) */
ICL_NN_HD float icl_nn_rstd(float sumsq, int64_t d, float eps) {
  return ICL_FDIV(1.0f, sqrtf(ICL_FADD(ICL_FDIV(sumsq, (float)d), eps)));
}

/* y = w * (x * rs) */
ICL_NN_HD float icl_nn_norm_out(float w, float x, float rs) { return ICL_FMUL(w, ICL_FMUL(x, rs)); }

/* RMSNorm backward of one element: rs * (dy w - x c) with c = gx rs rs / d */
ICL_NN_HD float icl_nn_norm_c(float gx, float rs, int64_t d) {
  return ICL_FDIV(ICL_FMUL(ICL_FMUL(gx, rs), rs), (float)d);
}
ICL_NN_HD float icl_nn_norm_dx(float dy, float w, float x, float c, float rs) {
  return ICL_FMUL(rs, ICL_FSUB(ICL_FMUL(dy, w), ICL_FMUL(x, c)));
}

#endif
