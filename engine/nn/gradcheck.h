/* Finite-difference gradient checking, usable from C tests and from Lua.
 * Central differences refined by Richardson extrapolation,
 *   D(h) = (f(x+h) - f(x-h)) / 2h,   R = (4 D(h/2) - D(h)) / 3,
 * whose truncation error is O(h^4): with float32 models this leaves only
 * rounding, so a tolerance of ~1e-3 relative still exposes any wrong formula
 * (which shows up as O(1) relative error). Relative errors are measured
 * against max(|numeric|, |analytic|, floor), where floor = 1e-2 x the largest
 * checked |gradient|: an entry a hundred times smaller than the largest is
 * compared on the scale of the largest, where float32 rounding lives.
 * The default step is large (5e-2) because Richardson removes truncation
 * error up to h^4 and float32 rounding of the loss, divided by h, is what
 * remains; functions with kinks (ReLU, clamps) want a smaller step. */
#ifndef ICL_GRADCHECK_H
#define ICL_GRADCHECK_H

#include <stdint.h>

#include "core/context.h"

/* Evaluate the loss at the current inputs; return 0 or a status. */
typedef int (*icl_gradcheck_fn)(icl_ctx *ctx, void *ud, double *loss);

typedef struct icl_gradcheck_opts {
  double eps;         /* step h (absolute); default 5e-2 */
  int64_t max_checks; /* entries checked: all if n <= max_checks, else the largest-|g| ones plus a seeded sample */
  uint64_t seed;
} icl_gradcheck_opts;

typedef struct icl_gradcheck_report {
  double max_rel, max_abs;
  int64_t worst;          /* index of the worst entry */
  double worst_numeric, worst_analytic;
  int64_t checked;
  double scale;           /* largest |analytic| among checked entries */
  double norm_rel;        /* ||numeric - analytic|| / ||analytic|| over checked entries */
} icl_gradcheck_report;

icl_gradcheck_opts icl_gradcheck_defaults(void);
/* x: host floats perturbed in place (restored after); grad: the analytic
 * gradient of f with respect to x (host). */
int icl_gradcheck(icl_ctx *ctx, float *x, const float *grad, int64_t n, icl_gradcheck_fn f, void *ud,
                  const icl_gradcheck_opts *opts, icl_gradcheck_report *rep);

#endif
