#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>

#include "core/rng.h"

int icl_t_failures = 0;
int icl_t_passed_tests = 0;
int icl_t_failed_tests = 0;

void icl_t_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  FAIL %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  icl_t_failures++;
}

void icl_t_run(const char *name, void (*fn)(void)) {
  icl_t_failures = 0;
  fn();
  if (icl_t_failures) {
    icl_t_failed_tests++;
    printf("not ok - %s (%d failed checks)\n", name, icl_t_failures);
  } else {
    icl_t_passed_tests++;
    printf("ok - %s\n", name);
  }
  fflush(stdout);
}

int icl_t_finish(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, icl_t_passed_tests, icl_t_failed_tests);
  return icl_t_failed_tests ? 1 : 0;
}

icl_ctx *icl_t_ctx(void) {
  icl_ctx *ctx = icl_ctx_new();
  if (ctx && ctx->num_threads == 0) icl_set_num_threads(ctx, 2);
  return ctx;
}

double icl_t_maxrel(const float *a, const float *b, long n, double floor) {
  double worst = 0;
  for (long i = 0; i < n; i++) {
    double den = fabs((double)b[i]) > floor ? fabs((double)b[i]) : floor;
    double r = fabs((double)a[i] - (double)b[i]) / den;
    if (!(r <= worst)) worst = r; /* NaN propagates */
  }
  return worst;
}

float *icl_t_randn(int64_t n, float scale, float shift, uint64_t stream) {
  float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; p && i < n; i++) {
    icl_philox_out r = icl_philox(42, stream, (uint64_t)i);
    p[i] = shift + scale * icl_normal_from(r.v[0], r.v[1]);
  }
  return p;
}
