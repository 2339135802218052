/* What the CPU Mamba kernels add to the shared 8-lane math of nn/vmath.h:
 * partial-block loads/stores, max/min, a fixed-order horizontal sum, the
 * per-(token, channel, state) decay exp2 (cheaper than icl_v8_exp: no
 * Cody-Waite step, a degree-5 polynomial), and softplus with its sigmoid.
 * GCC vector extensions: AVX2 with -march=native, SSE otherwise; every lane
 * does the same IEEE operations in the same order (no FMA contraction), so
 * results do not depend on the vector width or the build.
 * log (for softplus only, argument >= 1): x = m 2^k with m in [sqrt(.5),
 * sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1), by its odd series to s^11. */
#ifndef ICL_MAMBA_VMATH_H
#define ICL_MAMBA_VMATH_H

#include <stdint.h>

/* Without AVX, GCC warns that 32-byte vector arguments change the ABI; these
 * helpers are static inline and never cross a library boundary. */
#pragma GCC diagnostic ignored "-Wpsabi"

#include "nn/vmath.h"

/* always inlined: an outlined clone would raise that warning again, with no
 * source location for the pragma to apply to */
#define V8_FN static inline __attribute__((always_inline))

/* short names for the shared 8-lane types (nn/vmath.h) */
typedef icl_v8f v8f;
typedef icl_v8i v8i;
#define V8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define V8I(x) ((v8i){(x), (x), (x), (x), (x), (x), (x), (x)})

/* loads/stores of the first nv lanes of a channel block (a partial block
 * at the end of the channels reads 0 in its idle lanes) */
V8_FN v8f v8_load(const float *p, int nv) {
  if (nv >= 8) return icl_v8_load(p);
  v8f v = V8(0.0f);
  for (int i = 0; i < nv; i++) v[i] = p[i];
  return v;
}
V8_FN void v8_store(float *p, v8f v, int nv) {
  if (nv >= 8) icl_v8_store(p, v);
  else
    for (int i = 0; i < nv; i++) p[i] = v[i];
}

#if defined(__AVX__)
V8_FN v8f v8_max(v8f a, v8f b) { return __builtin_ia32_maxps256(a, b); }
V8_FN v8f v8_min(v8f a, v8f b) { return __builtin_ia32_minps256(a, b); }
#else
V8_FN v8f v8_max(v8f a, v8f b) { return icl_v8_select(a > b, a, b); }
V8_FN v8f v8_min(v8f a, v8f b) { return icl_v8_select(a < b, a, b); }
#endif
V8_FN float v8_hsum(v8f v) {
  /* fixed pairwise order */
  float a = (v[0] + v[4]) + (v[2] + v[6]), b = (v[1] + v[5]) + (v[3] + v[7]);
  return a + b;
}

#define ICL_LOG2E 1.44269504088896341f

/* 2^x: x = n + f with n = round(x), |f| <= 1/2 (exact), 2^f by a degree-5
 * polynomial fitted here for minimal relative error on [-1/2, 1/2]
 * (7.5e-8 in exact arithmetic, 2.3e-7 with float Horner steps), times 2^n
 * built in the exponent field. x is clamped to [-126, 127]: the result never
 * underflows below 2^-126 (a decay factor that small is as good as 0). */
V8_FN v8f v8_exp2(v8f x) {
  x = v8_min(v8_max(x, V8(-126.0f)), V8(127.0f));
  const v8f round_magic = V8(12582912.0f); /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
  v8f n = (x + round_magic) - round_magic;
  v8f f = x - n;
  v8f p = V8(1.327647129e-3f);
  p = p * f + V8(9.675541893e-3f);
  p = p * f + V8(5.550713092e-2f);
  p = p * f + V8(2.402212024e-1f);
  p = p * f + V8(6.931469440e-1f);
  p = p * f + V8(1.000000119f);
  v8i e = (__builtin_convertvector(n, v8i) + V8I(127)) << 23;
  return p * (v8f)e;
}

/* natural log for x >= 1 (finite) */
V8_FN v8f v8_log_ge1(v8f x) {
  v8i xi = (v8i)x;
  v8i k = ((xi >> 23) & V8I(0xff)) - V8I(127);
  v8f m = (v8f)((xi & V8I(0x007fffff)) | V8I(0x3f800000)); /* [1, 2) */
  v8i big = m > V8(1.41421356f);
  m = icl_v8_select(big, m * V8(0.5f), m);
  k = k + (big & V8I(1));
  v8f s = (m - V8(1.0f)) / (m + V8(1.0f)), s2 = s * s;
  v8f p = V8(2.0f / 11.0f);
  p = p * s2 + V8(2.0f / 9.0f);
  p = p * s2 + V8(2.0f / 7.0f);
  p = p * s2 + V8(2.0f / 5.0f);
  p = p * s2 + V8(2.0f / 3.0f);
  p = p * s2 + V8(2.0f);
  v8f kf = __builtin_convertvector(k, v8f);
  return (kf * V8(0.693359375f) + s * p) + kf * V8(-2.12194440e-4f);
}

/* softplus with PyTorch's threshold: x for x > 20, else log(1 + e^x), the
 * log1p computed as log(u) * e / (u - 1) with u = 1 + e (exact to a few
 * ulp even when e is tiny). *sig gets the sigmoid, d softplus / dx. */
V8_FN v8f v8_softplus(v8f x, v8f *sig) {
  v8f e = icl_v8_exp(v8_min(x, V8(20.0f)));
  v8f u = V8(1.0f) + e, um1 = u - V8(1.0f);
  v8i tiny = um1 == V8(0.0f);
  v8f l = v8_log_ge1(u) * (e / icl_v8_select(tiny, V8(1.0f), um1));
  v8i above = x > V8(20.0f);
  if (sig) *sig = icl_v8_select(above, V8(1.0f), e / u);
  return icl_v8_select(above, x, icl_v8_select(tiny, e, l));
}

#endif
