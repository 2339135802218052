/* Minimum-norm least squares, updated as the points arrive.
 *
 * Position i predicts <x_i, w_i> with w_i = X_{<i}^+ y_{<i}, the minimum-norm
 * least-squares solution (what torch.linalg.lstsq with gelsy returns, also
 * for i < D and for rank-deficient X, e.g. zero-padded dimensions or
 * repeated Boolean inputs).
 *
 * The rows seen so far span a subspace with an orthonormal basis Q (r rows,
 * built by Gram-Schmidt with one re-orthogonalisation pass). Every row is
 * x_j = Q^T c_j, so X = C Q with C (i x r) of full column rank, and the
 * minimum-norm solution is w = Q^T u with u = argmin |C u - y|, which is
 * unique. C's QR factor R (r x r) and Q_C^T y are updated by Givens
 * rotations, one row at a time; a new basis direction only adds a zero
 * column to the old rows. The prediction is <x_i, Q^T u> = (Q x_i) . u.
 * Cost per point O(rD + r^2), all in double.
 *
 * Rank: a new row counts as independent when its residual after
 * projection exceeds tol * |x|, with tol = FLT_EPSILON * max(i + 1, D) by
 * default: the per-row analogue of gelsy's cutoff rcond = eps * max(m, n)
 * for float32 inputs. */
#include <float.h>
#include <math.h>

#include "tasks/baselines.h"

void icl_bl_least_squares(const icl_baseline *bl, const float *x, const float *y, float *pred, int64_t N, int64_t D,
                          double *scratch) {
  double *Q = scratch;         /* D x D, rows 0..r-1 used */
  double *R = Q + D * D;       /* D x D upper triangular, r x r used */
  double *z = R + D * D;       /* Q_C^T y, first r */
  double *u = z + D;           /* solution in the Q basis */
  double *c = u + D;           /* coordinates of the current row */
  double *v = c + D;           /* residual of the current row */
  double *xd = v + D;          /* current row in double */
  double *row = xd + D;        /* the row being rotated into R */
  int64_t r = 0;

  for (int64_t i = 0; i < N; i++) {
    const float *xi = x + i * D;
    double nx2 = 0;
    for (int64_t j = 0; j < D; j++) {
      xd[j] = xi[j];
      nx2 += xd[j] * xd[j];
    }
    for (int64_t k = 0; k < r; k++) {
      const double *q = Q + k * D;
      double s = 0;
      for (int64_t j = 0; j < D; j++) s += q[j] * xd[j];
      c[k] = s;
    }
    double p = 0;
    for (int64_t k = 0; k < r; k++) p += c[k] * u[k];
    pred[i] = i == 0 ? 0.0f : (float)p;
    if (i == N - 1) break;

    /* residual, then a second Gram-Schmidt pass to keep Q orthonormal */
    for (int64_t j = 0; j < D; j++) v[j] = xd[j];
    for (int64_t k = 0; k < r; k++) {
      const double *q = Q + k * D;
      for (int64_t j = 0; j < D; j++) v[j] -= c[k] * q[j];
    }
    for (int64_t k = 0; k < r; k++) {
      const double *q = Q + k * D;
      double s = 0;
      for (int64_t j = 0; j < D; j++) s += q[j] * v[j];
      c[k] += s;
      for (int64_t j = 0; j < D; j++) v[j] -= s * q[j];
    }
    double nv2 = 0;
    for (int64_t j = 0; j < D; j++) nv2 += v[j] * v[j];
    double tol = bl->tol > 0 ? bl->tol : (double)FLT_EPSILON * (double)((i + 1) > D ? (i + 1) : D);
    if (r < D && nx2 > 0 && nv2 > tol * tol * nx2) {
      double nv = sqrt(nv2);
      double *q = Q + r * D;
      for (int64_t j = 0; j < D; j++) q[j] = v[j] / nv;
      c[r] = nv;
      for (int64_t l = 0; l <= r; l++) R[l * D + r] = 0; /* new column (old rows have 0 there) */
      for (int64_t l = 0; l < r; l++) R[r * D + l] = 0;
      z[r] = 0;
      u[r] = 0;
      r++;
    }

    /* rotate the row (c, y_i) into (R, z) */
    for (int64_t k = 0; k < r; k++) row[k] = c[k];
    double yy = y[i];
    for (int64_t k = 0; k < r; k++) {
      if (row[k] == 0) continue;
      double a = R[k * D + k], b = row[k];
      double h = hypot(a, b), cs = a / h, sn = b / h;
      R[k * D + k] = h;
      for (int64_t l = k + 1; l < r; l++) {
        double t1 = R[k * D + l], t2 = row[l];
        R[k * D + l] = cs * t1 + sn * t2;
        row[l] = cs * t2 - sn * t1;
      }
      double t1 = z[k];
      z[k] = cs * t1 + sn * yy;
      yy = cs * yy - sn * t1;
    }
    /* R u = z */
    for (int64_t k = r - 1; k >= 0; k--) {
      double s = z[k];
      for (int64_t l = k + 1; l < r; l++) s -= R[k * D + l] * u[l];
      u[k] = s / R[k * D + k];
    }
  }
}
