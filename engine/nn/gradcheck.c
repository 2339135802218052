#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

icl_gradcheck_opts icl_gradcheck_defaults(void) {
  icl_gradcheck_opts o = {5e-2, 200, 1};
  return o;
}

static int deriv(icl_ctx *ctx, float *x, int64_t i, double h, icl_gradcheck_fn f, void *ud, double *out) {
  float x0 = x[i];
  double fp, fm;
  x[i] = (float)(x0 + h);
  double hp = (double)x[i] - x0; /* the step float32 really took */
  int rc = f(ctx, ud, &fp);
  x[i] = (float)(x0 - h);
  double hm = x0 - (double)x[i];
  if (!rc) rc = f(ctx, ud, &fm);
  x[i] = x0;
  if (!rc) *out = (fp - fm) / (hp + hm);
  return rc;
}

static int cmp_desc(const void *a, const void *b) {
  double x = ((const double *)a)[0], y = ((const double *)b)[0];
  return x < y ? 1 : (x > y ? -1 : 0);
}

int icl_gradcheck(icl_ctx *ctx, float *x, const float *grad, int64_t n, icl_gradcheck_fn f, void *ud,
                  const icl_gradcheck_opts *opts, icl_gradcheck_report *rep) {
  icl_gradcheck_opts o = opts ? *opts : icl_gradcheck_defaults();
  memset(rep, 0, sizeof *rep);
  if (n <= 0) return icl_errorf(ctx, ICL_EINVAL, "gradcheck: nothing to check");
  if (!(o.eps > 0)) return icl_errorf(ctx, ICL_EINVAL, "gradcheck: eps must be > 0");
  int64_t m = o.max_checks > 0 && o.max_checks < n ? o.max_checks : n;
  int64_t *idx = malloc(sizeof *idx * (size_t)m);
  double *pairs = malloc(sizeof *pairs * 2 * (size_t)n);
  if (!idx || !pairs) {
    free(idx);
    free(pairs);
    return icl_errorf(ctx, ICL_ENOMEM, "gradcheck: out of memory");
  }
  if (m == n) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
  } else {
    /* half the budget on the largest gradients, half on a seeded sample */
    for (int64_t i = 0; i < n; i++) {
      pairs[2 * i] = fabs((double)grad[i]);
      pairs[2 * i + 1] = (double)i;
    }
    qsort(pairs, (size_t)n, 2 * sizeof(double), cmp_desc);
    int64_t top = m / 2;
    for (int64_t k = 0; k < top; k++) idx[k] = (int64_t)pairs[2 * k + 1];
    for (int64_t k = top; k < m; k++) {
      icl_philox_out r = icl_philox(o.seed, 7, (uint64_t)k);
      idx[k] = (int64_t)(((uint64_t)r.v[0] << 32 | r.v[1]) % (uint64_t)n);
    }
  }
  double scale = 0;
  for (int64_t k = 0; k < m; k++) scale = fmax(scale, fabs((double)grad[idx[k]]));
  double floor = 1e-2 * scale > 1e-7 ? 1e-2 * scale : 1e-7;
  int rc = ICL_OK;
  double err2 = 0, ana2 = 0;
  for (int64_t k = 0; k < m && !rc; k++) {
    int64_t i = idx[k];
    double d1, d2;
    rc = deriv(ctx, x, i, o.eps, f, ud, &d1);
    if (!rc) rc = deriv(ctx, x, i, o.eps / 2, f, ud, &d2);
    if (rc) break;
    double num = (4 * d2 - d1) / 3, ana = grad[i];
    double abs_err = fabs(num - ana);
    double den = fmax(fmax(fabs(num), fabs(ana)), floor);
    double rel = abs_err / den;
    if (!(rel <= rep->max_rel)) { /* NaN counts as the worst */
      rep->max_rel = isnan(rel) ? INFINITY : rel;
      rep->worst = i;
      rep->worst_numeric = num;
      rep->worst_analytic = ana;
    }
    rep->max_abs = fmax(rep->max_abs, abs_err);
    err2 += abs_err * abs_err;
    ana2 += ana * ana;
    rep->checked++;
  }
  rep->scale = scale;
  rep->norm_rel = ana2 > 0 ? sqrt(err2 / ana2) : sqrt(err2);
  free(idx);
  free(pairs);
  return rc;
}
