/* The simple baselines: averaging and k nearest neighbours (the null
 * classifier is a constant fill in baselines.c). */
#include "tasks/baselines.h"

/* w_i = (1/i) sum_{j<i} y_j x_j; position 0 predicts 0 (G and T; B used -1) */
void icl_bl_averaging(const float *x, const float *y, float *pred, int64_t N, int64_t D, double *s) {
  for (int64_t j = 0; j < D; j++) s[j] = 0;
  for (int64_t i = 0; i < N; i++) {
    const float *xi = x + i * D;
    double p = 0;
    for (int64_t j = 0; j < D; j++) p += (double)xi[j] * s[j];
    pred[i] = i == 0 ? 0.0f : (float)(p / (double)i);
    for (int64_t j = 0; j < D; j++) s[j] += (double)y[i] * (double)xi[j];
  }
}

/* Mean y of the k' = min(i, k) earlier points nearest to x_i (squared
 * Euclidean distance in float, exact for Boolean inputs). Ties go to the
 * lower index: candidates arrive in index order and only a strictly
 * smaller distance displaces an earlier one. k <= ICL_KNN_MAX_K. */
void icl_bl_knn(int k, const float *x, const float *y, float *pred, int64_t N, int64_t D) {
  float bd[ICL_KNN_MAX_K];
  int64_t bi[ICL_KNN_MAX_K];
  const int kk = k;
  for (int64_t i = 0; i < N; i++) {
    if (i == 0) {
      pred[0] = 0.0f;
      continue;
    }
    if (k >= i) { /* all earlier points: no search needed */
      double s = 0;
      for (int64_t j = 0; j < i; j++) s += y[j];
      pred[i] = (float)(s / (double)i);
      continue;
    }
    const float *xi = x + i * D;
    int n = 0;
    for (int64_t j = 0; j < i; j++) {
      const float *xj = x + j * D;
      float d = 0;
      for (int64_t t = 0; t < D; t++) {
        float e = xi[t] - xj[t];
        d += e * e;
      }
      if (n == kk && !(d < bd[n - 1])) continue;
      int pos = n < kk ? n : kk - 1; /* drop the worst when full */
      while (pos > 0 && d < bd[pos - 1]) {
        bd[pos] = bd[pos - 1];
        bi[pos] = bi[pos - 1];
        pos--;
      }
      bd[pos] = d;
      bi[pos] = j;
      if (n < kk) n++;
    }
    double s = 0;
    for (int q = 0; q < n; q++) s += y[bi[q]];
    pred[i] = (float)(s / (double)n);
  }
}
