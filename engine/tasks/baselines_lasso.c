/* Lasso by cyclic coordinate descent, as sklearn's Lasso(alpha,
 * fit_intercept=False): position i minimises over w
 *     (1/(2n)) |y - X w|^2 + alpha |w|_1,    n = i, X = X_{<i}
 * and predicts <x_i, w> (position 0 predicts 0).
 *
 * The loop is sklearn's cd_fast.enet_coordinate_descent written on the
 * Gram matrix G = X^T X, q = X^T y and y^T y, which are updated by one
 * rank-1 term per new point; G w is kept up to date so a coordinate step
 * costs O(1) (O(D) when the coordinate moves):
 *   - objective scaled by n: (1/2)|y - Xw|^2 + (alpha n)|w|_1;
 *   - coordinates 0..D-1 in order, skipping all-zero columns;
 *   - after a sweep where max|dw| / max|w| < tol (or w = 0), the duality
 *     gap is computed and the position stops when gap <= tol * y^T y;
 *   - at most max_iter sweeps (T used 1e5; the default here too).
 * Warm start: position i starts from position i-1's solution (sklearn
 * refits from 0 each time; both stop at the same tolerance around the
 * unique optimum whenever the optimum is unique). */
#include <math.h>

#include "tasks/baselines.h"

static double soft(double t, double a) { return t > a ? t - a : (t < -a ? t + a : 0.0); }

int64_t icl_bl_lasso(const icl_baseline *bl, const float *x, const float *y, float *pred, int64_t N, int64_t D,
                     double *scratch) {
  double *G = scratch, *q = G + D * D, *w = q + D, *Gw = w + D, *xd = Gw + D;
  for (int64_t e = 0; e < D * D; e++) G[e] = 0;
  for (int64_t j = 0; j < D; j++) q[j] = w[j] = Gw[j] = 0;
  double yy = 0;
  int64_t capped = 0;
  const double tol = bl->tol;

  for (int64_t i = 0; i < N; i++) {
    const float *xi = x + i * D;
    for (int64_t j = 0; j < D; j++) xd[j] = xi[j];
    if (i > 0) {
      double p = 0;
      for (int64_t j = 0; j < D; j++) p += xd[j] * w[j];
      pred[i] = (float)p;
    } else {
      pred[0] = 0.0f;
    }
    if (i == N - 1) break;

    /* add point i: G += x x^T, q += y x, y^T y += y^2, G w += x (x . w) */
    double yi = y[i], xw = 0;
    for (int64_t j = 0; j < D; j++) xw += xd[j] * w[j];
    for (int64_t a = 0; a < D; a++) {
      if (xd[a] == 0) continue;
      double *Ga = G + a * D;
      for (int64_t b = 0; b < D; b++) Ga[b] += xd[a] * xd[b];
    }
    for (int64_t j = 0; j < D; j++) {
      q[j] += yi * xd[j];
      Gw[j] += xd[j] * xw;
    }
    yy += yi * yi;

    const double A = bl->alpha * (double)(i + 1), gap_tol = tol * yy;
    int64_t it;
    for (it = 0; it < bl->max_iter; it++) {
      double w_max = 0, dw_max = 0;
      for (int64_t j = 0; j < D; j++) {
        double gjj = G[j * D + j];
        if (gjj == 0) continue;
        double wo = w[j];
        double wn = soft(q[j] - Gw[j] + gjj * wo, A) / gjj;
        if (wn != wo) {
          double dl = wn - wo;
          const double *Gj = G + j * D; /* G is symmetric: column j = row j */
          for (int64_t b = 0; b < D; b++) Gw[b] += dl * Gj[b];
          w[j] = wn;
        }
        double ad = fabs(wn - wo), aw = fabs(wn);
        dw_max = ad > dw_max ? ad : dw_max;
        w_max = aw > w_max ? aw : w_max;
      }
      if (w_max == 0 || dw_max / w_max < tol || it == bl->max_iter - 1) {
        /* duality gap of the scaled problem */
        double dual = 0, wq = 0, wGw = 0, l1 = 0;
        for (int64_t j = 0; j < D; j++) {
          double g = fabs(q[j] - Gw[j]);
          dual = g > dual ? g : dual;
          wq += w[j] * q[j];
          wGw += w[j] * Gw[j];
          l1 += fabs(w[j]);
        }
        double r2 = yy - 2 * wq + wGw;
        if (r2 < 0) r2 = 0;
        double cst = 1, gap;
        if (dual > A) {
          cst = A / dual;
          gap = 0.5 * (r2 + r2 * cst * cst);
        } else {
          gap = r2;
        }
        gap += A * l1 - cst * (yy - wq);
        if (gap <= gap_tol) break;
      }
    }
    if (it >= bl->max_iter) capped++;
  }
  return capped;
}
