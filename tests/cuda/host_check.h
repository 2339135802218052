/* The check harness of the host-side CUDA tests (test_cuda_host.cu,
 * test_cuda_kernels_host.cu): EXPECT counts failed checks of the current
 * case (printing the first ten), run() reports a case as TAP-like ok/not ok. */
#ifndef ICL_TESTS_CUDA_HOST_CHECK_H
#define ICL_TESTS_CUDA_HOST_CHECK_H

#include <stdio.h>

static int failures = 0, passed = 0, failed = 0;
#define EXPECT(cond, ...)                                                                                              \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      if (failures++ < 10) {                                                                                           \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                                         \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, "\n");                                                                                         \
      }                                                                                                                \
    }                                                                                                                  \
  } while (0)

static void run(const char *name, void (*fn)(void)) {
  failures = 0;
  fn();
  if (failures)
    failed++, printf("not ok - %s (%d failed checks)\n", name, failures);
  else
    passed++, printf("ok - %s\n", name);
}

#endif
