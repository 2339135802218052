/* Accurate float sin and cos that keep everything in registers.
 *
 * CUDA's sinf/cosf are accurate, but their reduction for |x| > 105615 keeps a
 * small array in local memory, which the build forbids (see CMakeLists.txt).
 * These reduce every |x| > pi/4 the Payne-Hanek way: |x| = m 2^E (m a 24-bit
 * integer) times a 96-bit window of the bits of 2/pi, taken where the product
 * has its quadrant bits, gives (|x| 2/pi) mod 4 to 2^-62; bits left of the
 * window only add multiples of 4, bits right of it less than 2^-71. The
 * reduced argument r in [-pi/4, pi/4] then goes through the Taylor series in
 * double (terms to r^17 / r^18: truncation below 1e-19), rounded once to
 * float, so results are within an ulp of the true value for every finite x
 * (usually correctly rounded), like glibc's on the CPU side.
 *
 * Host-and-device so the algorithm can be checked against libm on a machine
 * without a GPU. */
#ifndef ICL_CUDA_TRIG_CUH
#define ICL_CUDA_TRIG_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define ICL_TRIG_HD __host__ __device__ __forceinline__
#define ICL_TRIG_TABLE __device__ const
#else
#define ICL_TRIG_HD static inline
#define ICL_TRIG_TABLE static const
#endif

/* 2/pi in binary, 32 bits a word from the first fractional bit, after one
 * word of zeros so that a window may start left of the binary point. */
ICL_TRIG_TABLE uint32_t icl_two_over_pi_bits[8] = {0x00000000u, 0xA2F9836Eu, 0x4E441529u, 0xFC2757D1u,
                                                   0xF534DDC0u, 0xDB629599u, 0x3C439041u, 0xFE5163ABu};

ICL_TRIG_HD uint32_t icl_trig_f2u(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

/* |x| (finite, >= 0.5) = q pi/2 + r with |r| <= pi/4 (to ~2^-62 absolute);
 * returns r and sets *quadrant = q mod 4. */
ICL_TRIG_HD double icl_trig_reduce(float ax, int *quadrant) {
  uint32_t bits = icl_trig_f2u(ax);
  int e = (int)(bits >> 23) - 150;               /* ax = m 2^e */
  uint64_t m = (bits & 0x7fffffu) | 0x800000u;   /* normal: ax >= 0.5 */
  /* the window starts at fractional bit e - 1 of 2/pi: padded bit s = e + 31 (1-based) */
  int s = e + 31;
  int q = (s - 1) >> 5, sh = (s - 1) & 31;
  const uint32_t *t = icl_two_over_pi_bits;
  uint64_t a = ((uint64_t)t[q] << 32) | t[q + 1];
  uint64_t b = ((uint64_t)t[q + 1] << 32) | t[q + 2];
  uint64_t c = ((uint64_t)t[q + 2] << 32) | t[q + 3];
  uint64_t w0 = (uint32_t)(a >> (32 - sh)), w1 = (uint32_t)(b >> (32 - sh)), w2 = (uint32_t)(c >> (32 - sh));
  /* m * (w0:w1:w2) = p0 2^64 + (p1 mod 2^32) 2^32 + (p2 mod 2^32); binary point at bit 94 */
  uint64_t p2 = m * w2;
  uint64_t p1 = m * w1 + (p2 >> 32);
  uint64_t p0 = m * w0 + (p1 >> 32);
  int quad = (int)(p0 >> 30) & 3;
  uint64_t frac = ((p0 & 0x3fffffffu) << 32) | (p1 & 0xffffffffu); /* top 62 fraction bits */
  int64_t f = (int64_t)frac;
  if (frac >= ((uint64_t)1 << 61)) { /* round to the nearest quadrant */
    f -= (int64_t)1 << 62;
    quad = (quad + 1) & 3;
  }
  *quadrant = quad;
  return (double)f * (1.0 / 4611686018427387904.0) * 1.5707963267948966192;
}

ICL_TRIG_HD double icl_trig_sin_poly(double r) {
  double r2 = r * r;
  double p = 1.0 / 355687428096000.0;
  p = p * r2 - 1.0 / 1307674368000.0;
  p = p * r2 + 1.0 / 6227020800.0;
  p = p * r2 - 1.0 / 39916800.0;
  p = p * r2 + 1.0 / 362880.0;
  p = p * r2 - 1.0 / 5040.0;
  p = p * r2 + 1.0 / 120.0;
  p = p * r2 - 1.0 / 6.0;
  return r + r * r2 * p;
}

ICL_TRIG_HD double icl_trig_cos_poly(double r) {
  double r2 = r * r;
  double p = -1.0 / 6402373705728000.0;
  p = p * r2 + 1.0 / 20922789888000.0;
  p = p * r2 - 1.0 / 87178291200.0;
  p = p * r2 + 1.0 / 479001600.0;
  p = p * r2 - 1.0 / 3628800.0;
  p = p * r2 + 1.0 / 40320.0;
  p = p * r2 - 1.0 / 720.0;
  p = p * r2 + 1.0 / 24.0;
  p = p * r2 - 0.5;
  return 1.0 + r2 * p;
}

/* which: 0 sin, 1 cos */
ICL_TRIG_HD float icl_trig_f(float x, int which) {
  float ax = fabsf(x);
  if (!(ax <= 3.40282347e38f)) return x - x; /* NaN for Inf and NaN */
  double r = ax;
  int q = 0;
  if (ax > 0.78539816f) r = icl_trig_reduce(ax, &q);
  q += which; /* cos(y) = sin(y + pi/2) */
  double v = (q & 1) ? icl_trig_cos_poly(r) : icl_trig_sin_poly(r);
  if (q & 2) v = -v;
  float res = (float)v;
  /* sin is odd, cos even */
  return which == 0 && signbit(x) ? -res : res;
}

ICL_TRIG_HD float icl_sinf_acc(float x) { return icl_trig_f(x, 0); }
ICL_TRIG_HD float icl_cosf_acc(float x) { return icl_trig_f(x, 1); }

#endif
