/* Row softmax and log-softmax (max-subtracted, float accumulation in double
 * only for the normaliser, which is where cancellation would bite). */
#include <math.h>

#include "cpu_kernels.h"

int icl_cpu_softmax(icl_ctx *ctx, float *out, const float *in, int64_t rows, int64_t cols, int log) {
  (void)ctx;
#pragma omp parallel for if (rows * cols >= 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *x = in + r * cols;
    float *y = out + r * cols;
    float mx = -INFINITY;
    for (int64_t j = 0; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < cols; j++) sum += exp((double)x[j] - mx);
    if (log) {
      float lse = (float)(mx + (double)logf((float)sum));
      for (int64_t j = 0; j < cols; j++) y[j] = x[j] - lse;
    } else {
      float inv = (float)(1.0 / sum);
      for (int64_t j = 0; j < cols; j++) y[j] = expf(x[j] - mx) * inv;
    }
  }
  return ICL_OK;
}
