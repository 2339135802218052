/* 8-lane float math for CPU kernels (GCC vector extensions; AVX2 when the
 * build targets it, plain SSE/scalar code otherwise). */
#ifndef ICL_VMATH_H
#define ICL_VMATH_H

typedef float icl_v8f __attribute__((vector_size(32)));
typedef int icl_v8i __attribute__((vector_size(32)));
typedef float icl_v8fu __attribute__((vector_size(32), aligned(4))); /* unaligned access */

static inline icl_v8f icl_v8_load(const float *p) { return *(const icl_v8fu *)p; }
static inline void icl_v8_store(float *p, icl_v8f v) { *(icl_v8fu *)p = v; }
static inline icl_v8f icl_v8_set1(float x) { return (icl_v8f){x, x, x, x, x, x, x, x}; }
static inline icl_v8f icl_v8_select(icl_v8i mask, icl_v8f a, icl_v8f b) {
  return (icl_v8f)(((icl_v8i)a & mask) | ((icl_v8i)b & ~mask));
}

/* exp(x) for x in [-87, 88] (clamped outside): Cody-Waite reduction and a
 * degree-6 polynomial (Cephes coefficients), within ~2 ulp of expf */
static inline icl_v8f icl_v8_exp(icl_v8f x) {
  const icl_v8f lo = icl_v8_set1(-87.0f), hi = icl_v8_set1(88.0f);
  x = icl_v8_select(x < lo, lo, x);
  x = icl_v8_select(x > hi, hi, x);
  const icl_v8f magic = icl_v8_set1(12582912.0f); /* 1.5 * 2^23: round to nearest */
  icl_v8f t = x * icl_v8_set1(1.44269504088896341f) + magic;
  icl_v8f n = t - magic;
  icl_v8i ni = (icl_v8i)t - (icl_v8i)magic;
  icl_v8f r = x - n * icl_v8_set1(0.693359375f) - n * icl_v8_set1(-2.12194440e-4f);
  icl_v8f p = icl_v8_set1(1.9875691500e-4f);
  p = p * r + icl_v8_set1(1.3981999507e-3f);
  p = p * r + icl_v8_set1(8.3334519073e-3f);
  p = p * r + icl_v8_set1(4.1665795894e-2f);
  p = p * r + icl_v8_set1(1.6666665459e-1f);
  p = p * r + icl_v8_set1(5.0000001201e-1f);
  p = p * (r * r) + r + icl_v8_set1(1.0f);
  icl_v8i e = (ni + 127) << 23;
  return p * (icl_v8f)e;
}

/* logistic sigmoid 1 / (1 + exp(-x)) */
static inline icl_v8f icl_v8_sigmoid(icl_v8f x) { return icl_v8_set1(1.0f) / (icl_v8_set1(1.0f) + icl_v8_exp(-x)); }

#endif
