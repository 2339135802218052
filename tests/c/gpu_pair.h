/* Helpers for the GPU tests: a "pair" is one tensor on each device with the
 * same contents and the same view, so that an op can be run on both and the
 * results compared. Outputs are poisoned with a different value per device,
 * so an element that neither device wrote still shows up as a mismatch.
 * Reading back never goes through the GPU's own copy kernels: the raw
 * storage is fetched with memcpy and the view is gathered on the host. */
#ifndef ICL_TEST_GPU_PAIR_H
#define ICL_TEST_GPU_PAIR_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ops/ops.h"
#ifdef ICL_HAVE_CUDA
#include "cuda/icl_cuda.h"
#endif

/* The device under test. -DGP_DEVICE=ICL_CPU builds a dry run of the tests'
 * own logic (views, poisoning, read-back, tolerances), CPU against CPU, for a
 * machine without a GPU; the CUDA-only tests are left out with ICL_HAVE_CUDA
 * undefined (-UICL_HAVE_CUDA). */
#ifndef GP_DEVICE
#define GP_DEVICE ICL_CUDA
#endif

#define POISON_C 1234.5f
#define POISON_G -9876.25f
#define POISON_CI 123456
#define POISON_GI -654321

typedef struct pair {
  icl_tensor *c, *g;
} pair;

static icl_ctx *G;                /* the one context of the test program */
static const icl_backend *CPU, *GPU;
static uint64_t gp_seed, gp_stream; /* fresh inputs: every draw uses the next stream */

static inline void gp_die(const char *what) {
  fprintf(stderr, "FATAL: %s: %s\n", what, icl_last_error(G));
  exit(1);
}

static inline pair pair_upload(icl_tensor *c) {
  if (!c) gp_die("cpu tensor");
  pair p = {c, GP_DEVICE == ICL_CPU ? icl_clone(G, c) : icl_to_device(G, c, GP_DEVICE)};
  if (!p.g) gp_die("upload");
  return p;
}

static inline icl_tensor *gp_cpu_rand(icl_dtype dt, int nd, const int64_t *shape, icl_dist dist, double p0,
                                      double p1) {
  icl_tensor *t = icl_op_random(G, dist, dt, ICL_CPU, nd, shape, p0, p1, gp_seed, gp_stream++);
  if (!t) gp_die("random input");
  return t;
}

static inline pair pair_rand(icl_dtype dt, int nd, const int64_t *shape, icl_dist dist, double p0, double p1) {
  return pair_upload(gp_cpu_rand(dt, nd, shape, dist, p0, p1));
}

/* float input with a NaN every `every` elements (from a varying phase) and one +Inf */
static inline pair pair_rand_nan(int nd, const int64_t *shape, icl_dist dist, double p0, double p1, int64_t every) {
  icl_tensor *c = gp_cpu_rand(ICL_F32, nd, shape, dist, p0, p1);
  float *p = icl_tensor_data(c);
  int64_t n = icl_numel(c), phase = (int64_t)(gp_stream % (uint64_t)every);
  for (int64_t i = phase; i < n; i += every) p[i] = NAN;
  if (n > 2) p[n / 2 + 1] = INFINITY;
  return pair_upload(c);
}

static inline pair pair_poison(icl_dtype dt, int nd, const int64_t *shape) {
  pair p;
  p.c = icl_tensor_full(G, dt, ICL_CPU, nd, shape, dt == ICL_F32 ? POISON_C : POISON_CI);
  p.g = icl_tensor_full(G, dt, GP_DEVICE, nd, shape, dt == ICL_F32 ? POISON_G : POISON_GI);
  if (!p.c || !p.g) gp_die("poisoned output");
  return p;
}

static inline pair pair_transpose(pair p, int a, int b) {
  pair v = {icl_transpose(G, p.c, a, b), icl_transpose(G, p.g, a, b)};
  if (!v.c || !v.g) gp_die("transpose");
  return v;
}

static inline pair pair_narrow(pair p, int dim, int64_t start, int64_t len) {
  pair v = {icl_narrow(G, p.c, dim, start, len), icl_narrow(G, p.g, dim, start, len)};
  if (!v.c || !v.g) gp_die("narrow");
  return v;
}

static inline pair pair_permute(pair p, const int *perm) {
  pair v = {icl_permute(G, p.c, perm), icl_permute(G, p.g, perm)};
  if (!v.c || !v.g) gp_die("permute");
  return v;
}

static inline void pair_free(pair p) {
  icl_tensor_free(G, p.c);
  icl_tensor_free(G, p.g);
}

/* Raw copy of a tensor's whole storage (4-byte elements). */
static inline uint32_t *gp_raw(const icl_tensor *t) {
  size_t nb = t->storage->nbytes ? t->storage->nbytes : 4;
  uint32_t *h = malloc(nb);
  if (!h) gp_die("host memory");
  const icl_backend *be = icl_backend_get(G, t->storage->device);
  if (be->memcpy(G, h, ICL_CPU, t->storage->data, t->storage->device, nb)) gp_die("read back");
  return h;
}

/* Storage offset of row-major element i of the view. */
static inline int64_t gp_offset(const icl_tensor *t, int64_t i) {
  int64_t off = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return off;
}

/* The view's elements in row-major order (4-byte words). */
static inline uint32_t *gp_gather(const icl_tensor *t) {
  int64_t n = icl_numel(t);
  uint32_t *raw = gp_raw(t), *out = malloc((size_t)(n ? n : 1) * 4);
  if (!out) gp_die("host memory");
  for (int64_t i = 0; i < n; i++) out[i] = raw[gp_offset(t, i)];
  free(raw);
  return out;
}

static inline float gp_f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline int gp_same_f32(float a, float b) {
  return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* Compares the two devices' views. rtol < 0: exact (bitwise, any NaN equals
 * any NaN). Else |gpu - cpu| <= atol + rtol |cpu|, equal infinities and NaNs
 * accepted. Prints the worst error of toleranced checks. */
static inline void gp_check(const char *what, pair p, icl_dtype dt, double rtol, double atol) {
  int64_t n = icl_numel(p.c);
  uint32_t *hc = gp_gather(p.c), *hg = gp_gather(p.g);
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    int ok;
    if (dt == ICL_I32) {
      ok = hc[i] == hg[i];
    } else {
      float a = gp_f(hg[i]), b = gp_f(hc[i]);
      if (rtol < 0 || gp_same_f32(a, b)) {
        ok = gp_same_f32(a, b);
      } else {
        double err = fabs((double)a - (double)b);
        ok = err <= atol + rtol * fabs((double)b);
        double rel = err / (fabs((double)b) > 1e-30 ? fabs((double)b) : 1e-30);
        if (!(rel <= worst)) worst = rel;
      }
    }
    if (!ok && bad++ == 0) first = i;
  }
  if (bad) {
    if (dt == ICL_I32)
      icl_t_fail(__FILE__, __LINE__, "%s: %lld of %lld differ; first at %lld: gpu %d, cpu %d", what, (long long)bad,
                 (long long)n, (long long)first, (int)hg[first], (int)hc[first]);
    else
      icl_t_fail(__FILE__, __LINE__, "%s: %lld of %lld differ (rtol %g, atol %g); first at %lld: gpu %.9g, cpu %.9g",
                 what, (long long)bad, (long long)n, rtol, atol, (long long)first, gp_f(hg[first]), gp_f(hc[first]));
  }
  if (rtol >= 0 && dt == ICL_F32) printf("    %-44s max rel err %.3g (rtol %g)\n", what, worst, rtol);
  free(hc);
  free(hg);
}

/* Prints how many elements of the pair's views differ in their bits (for
 * results that are expected, not required, to be identical). Returns it. */
static inline int64_t gp_report_bits(const char *what, pair p) {
  int64_t n = icl_numel(p.c), diff = 0;
  uint32_t *hc = gp_gather(p.c), *hg = gp_gather(p.g);
  for (int64_t i = 0; i < n; i++) diff += hc[i] != hg[i];
  printf("    %-44s %s (%lld of %lld elements differ in their bits)\n", what, diff ? "not bit-identical" : "bit-identical",
         (long long)diff, (long long)n);
  free(hc);
  free(hg);
  return diff;
}

/* Normwise relative error ||gpu - cpu|| / ||cpu|| of two views (NaN if either
 * has a NaN), and the largest elementwise |gpu - cpu| / max|cpu|. */
static inline double gp_normwise(pair p, double *maxrel) {
  int64_t n = icl_numel(p.c);
  uint32_t *hc = gp_gather(p.c), *hg = gp_gather(p.g);
  double num = 0, den = 0, maxd = 0, maxc = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = gp_f(hg[i]), b = gp_f(hc[i]), d = a - b;
    num += d * d;
    den += b * b;
    if (!(fabs(d) <= maxd)) maxd = fabs(d);
    if (fabs(b) > maxc) maxc = fabs(b);
  }
  free(hc);
  free(hg);
  if (maxrel) *maxrel = maxd / (maxc > 0 ? maxc : 1);
  return sqrt(num) / (den > 0 ? sqrt(den) : 1);
}

/* Elements of `base` (a full poisoned pair) outside `view` must still hold
 * each device's poison. */
static inline void gp_check_outside(const char *what, pair base, pair view, icl_dtype dt) {
  int64_t nb = icl_numel(base.c), nv = icl_numel(view.c);
  char *in = calloc((size_t)(nb ? nb : 1), 1);
  if (!in) gp_die("host memory");
  for (int64_t i = 0; i < nv; i++) in[gp_offset(view.c, i) - base.c->offset] = 1;
  uint32_t *hc = gp_gather(base.c), *hg = gp_gather(base.g);
  int64_t bad = 0;
  for (int64_t i = 0; i < nb; i++) {
    if (in[i]) continue;
    int ok = dt == ICL_F32 ? gp_f(hc[i]) == POISON_C && gp_f(hg[i]) == POISON_G
                           : (int32_t)hc[i] == POISON_CI && (int32_t)hg[i] == POISON_GI;
    bad += !ok;
  }
  CHECK_MSG(bad == 0, "%s: %lld elements outside the view were written", what, (long long)bad);
  free(in);
  free(hc);
  free(hg);
}

/* Context and seed for a GPU test program. Returns 77 (printed: skipped)
 * when there is no device, for main to return. The seed comes from the clock
 * unless ICL_TEST_SEED is set, so every run draws fresh inputs. */
static inline int gp_start(const char *suite) {
  G = icl_t_ctx();
  if (!G) return 1;
  if (GP_DEVICE == ICL_CUDA && !icl_cuda_available(G)) {
    icl_backend_get(G, ICL_CUDA); /* for the reason */
    printf("%s: skipped: %s\n", suite, icl_last_error(G));
    icl_ctx_free(G);
    return 77;
  }
  CPU = icl_backend_get(G, ICL_CPU);
  GPU = icl_backend_get(G, GP_DEVICE);
  const char *env = getenv("ICL_TEST_SEED");
  gp_seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  printf("%s: seed %llu (ICL_TEST_SEED=%llu repeats this run)\n", suite, (unsigned long long)gp_seed,
         (unsigned long long)gp_seed);
  return 0;
}

/* By now every test freed its tensors: no device block may be left live. */
static inline int gp_finish(const char *suite) {
#ifdef ICL_HAVE_CUDA
  icl_cuda_mem_stats s;
  icl_cuda_memory_stats(G, &s);
  if (s.live_bytes) {
    printf("not ok - no leaks (%zu device bytes still live)\n", s.live_bytes);
    icl_t_failed_tests++;
  }
  printf("    allocator: %llu cudaMalloc, %llu reuses, peak %.1f MiB\n", (unsigned long long)s.n_malloc,
         (unsigned long long)s.n_reuse, (double)s.peak_bytes / (1 << 20));
#endif
  int rc = icl_t_finish(suite);
  icl_ctx_free(G);
  return rc;
}

#endif
