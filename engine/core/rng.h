/* Philox4x32-10, the counter-based generator cuRAND also implements.
 * Header-only and usable from host C and CUDA device code, so the same
 * (seed, stream, index) gives the same bits on either device.
 *
 * Layout: key = seed (two 32-bit words); counter = (index_lo, index_hi,
 * stream_lo, stream_hi). Element i of a draw uses the four words of block
 * Philox(seed, stream, i): word 0 for a uniform, words 0 and 1 for a normal.
 * Wasting words keeps every element independent of every other, so any
 * thread layout on any device produces identical tensors. */
#ifndef ICL_RNG_H
#define ICL_RNG_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define ICL_HD __host__ __device__ __forceinline__
#else
#define ICL_HD static inline
#endif

typedef struct icl_philox_out { uint32_t v[4]; } icl_philox_out;

ICL_HD uint32_t icl_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

ICL_HD icl_philox_out icl_philox(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32);
  uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = icl_mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = icl_mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  icl_philox_out o;
  o.v[0] = c0; o.v[1] = c1; o.v[2] = c2; o.v[3] = c3;
  return o;
}

/* Uniform in [0, 1): top 24 bits, exact in float on every device. */
ICL_HD float icl_u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }
/* Uniform in (0, 1]: safe for log. */
ICL_HD double icl_u01_open(uint32_t w) { return ((double)(w >> 8) + 1.0) * (1.0 / 16777216.0); }

/* Standard normal by Box-Muller in double, rounded once to float: the host and
 * device libm agree to well under a float ulp, so both give the same float. */
ICL_HD float icl_normal_from(uint32_t w0, uint32_t w1) {
  double u1 = icl_u01_open(w0);
  double u2 = (double)(w1 >> 8) * (1.0 / 16777216.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2));
}

/* Integer uniform in [0, n) from two words (64-bit multiply-shift, no modulo bias
 * worth measuring for the n < 2^16 used here). */
ICL_HD uint32_t icl_below(uint32_t w0, uint32_t w1, uint32_t n) {
  uint64_t x = ((uint64_t)w0 << 32) | w1;
  /* high 32 bits of x * n computed without 128-bit types */
  uint64_t lo = (x & 0xffffffffu) * n;
  uint64_t hi = (x >> 32) * n + (lo >> 32);
  return (uint32_t)(hi >> 32);
}

#endif
