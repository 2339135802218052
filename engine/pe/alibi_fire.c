/* Host formulas of the bias encodings: ALiBi slopes (Press et al.) and FIRE's
 * interpolated distance (Li et al.); the kernels use the same expressions. */
#include <math.h>

#include "pe.h"

/* slopes(n) for a power of two n: 2^(-8(h+1)/n). Otherwise the slopes of the
 * largest power of two p < n, then every other slope of 2p (indices 0, 2, ..),
 * i.e. 2^(-4(2k+1)/p), k = 0 .. n-p-1. */
void icl_alibi_slopes(int64_t H, float *slopes) {
  int64_t p = 1;
  while (2 * p <= H) p *= 2;
  for (int64_t h = 0; h < p; h++) slopes[h] = (float)pow(2.0, -8.0 * (double)(h + 1) / (double)p);
  for (int64_t k = 0; k < H - p; k++) slopes[p + k] = (float)pow(2.0, -4.0 * (double)(2 * k + 1) / (double)p);
}

double icl_fire_u(double c, double thr, double eps, double i, double j) {
  double m = i > thr ? i : thr;
  return log(fabs(c * (i - j)) + 1.0) / (log(fabs(c * m) + 1.0) + eps);
}
