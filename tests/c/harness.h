/* A small C test harness: checks count failures instead of aborting, so one
 * run reports every broken expectation. A test file is a list of static
 * functions run by ICL_RUN in main(). */
#ifndef ICL_TEST_HARNESS_H
#define ICL_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

#include "core/backend.h"
#include "core/context.h"
#include "core/tensor.h"

extern int icl_t_failures;     /* failed checks in the current test */
extern int icl_t_passed_tests; /* tests with no failed check */
extern int icl_t_failed_tests;

void icl_t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void icl_t_run(const char *name, void (*fn)(void));
int icl_t_finish(const char *suite);

#define CHECK(cond)                                                                                     \
  do {                                                                                                  \
    if (!(cond)) icl_t_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                              \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                            \
  do {                                                                                                  \
    if (!(cond)) icl_t_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
  } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                                   \
  do {                                                                                                  \
    double _a = (double)(a), _b = (double)(b);                                                          \
    if (!(fabs(_a - _b) <= (atol) + (rtol)*fabs(_b)))                                                   \
      icl_t_fail(__FILE__, __LINE__, "%s = %.9g, expected %s = %.9g (rtol %g, atol %g)", #a, _a, #b, _b, \
                 (double)(rtol), (double)(atol));                                                       \
  } while (0)

#define CHECK_OK(ctx, expr)                                                                             \
  do {                                                                                                  \
    int _rc = (expr);                                                                                   \
    if (_rc) icl_t_fail(__FILE__, __LINE__, "%s returned %d: %s", #expr, _rc, icl_last_error(ctx));     \
  } while (0)

#define ICL_RUN(fn) icl_t_run(#fn, fn)

/* Fresh context for a test (2 threads unless ICL_NUM_THREADS says otherwise). */
icl_ctx *icl_t_ctx(void);
/* Max relative difference between two float arrays, scaled by max(|b|, floor). */
double icl_t_maxrel(const float *a, const float *b, long n, double floor);
/* n host floats shift + scale * N(0, 1) from Philox(42, stream, i); caller frees */
float *icl_t_randn(int64_t n, float scale, float shift, uint64_t stream);

#endif
