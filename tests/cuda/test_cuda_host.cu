/* Host-side checks of the CUDA backend's logic, runnable without a GPU (and
 * so in CI): the strided walk's offsets, the allocator's size classes and
 * live map, the register-only sin/cos, and the reductions' merge rules under
 * arbitrary combination trees. Built by nvcc from the backend's own headers
 * (and cuda_memory.cu itself, for its static helpers); the device-side
 * behaviour is covered by tests/c/test_gpu_ops.c on a GPU. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cuda/cuda_memory.cu"
#include "../../engine/cuda/cuda_reduce_acc.cuh"
#include "../../engine/cuda/cuda_trig.cuh"

/* cuda_memory.cu reports through icl_errorf; the engine is not linked here */
extern "C" int icl_errorf(icl_ctx *ctx, int code, const char *fmt, ...) {
  (void)ctx;
  (void)fmt;
  return code;
}

#include "host_check.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t next_u64(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int below(int n) { return (int)(next_u64() % (uint64_t)n); }

/* ---- walks --------------------------------------------------------------------- */

static int64_t view_offset(const icl_view *v, int64_t i) {
  int64_t off = 0;
  for (int d = v->ndim - 1; d >= 0; d--) {
    off += (i % v->shape[d]) * v->stride[d];
    i /= v->shape[d];
  }
  return off;
}

/* a random view of a given shape: permuted, padded, sometimes broadcast dims */
static icl_view random_view(int nd, const int64_t *shape, int allow_bcast) {
  icl_view v;
  memset(&v, 0, sizeof v);
  v.ndim = nd;
  int perm[ICL_MAX_DIMS];
  for (int i = 0; i < nd; i++) perm[i] = i;
  if (below(2))
    for (int i = nd - 1; i > 0; i--) {
      int j = below(i + 1), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  int64_t s = 1;
  for (int k = nd - 1; k >= 0; k--) { /* dims in perm order, innermost last */
    int d = perm[k];
    v.shape[d] = shape[d];
    v.stride[d] = allow_bcast && below(5) == 0 ? 0 : s;
    s *= shape[d] + (below(4) == 0 ? below(3) : 0); /* sometimes padding */
  }
  return v;
}

static void test_walk_offsets(void) {
  for (int trial = 0; trial < 3000; trial++) {
    int nd = below(ICL_MAX_DIMS + 1);
    int64_t shape[ICL_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = 1 + below(trial < 2000 ? 4 : 7);
    icl_view a = random_view(nd, shape, 0), b = random_view(nd, shape, 1), c = random_view(nd, shape, 1);
    if (trial % 3 == 0) b = a; /* same layout: merges */
    const icl_view *vs[3] = {&a, &b, &c};
    icl_dwalk<3> w = icl_dwalk_make<3>(vs);
    int64_t n = icl_view_numel(&a);
    for (int64_t i = 0; i < n; i++) {
      int64_t o32[3], o64[3];
      icl_dwalk_offsets<3, uint32_t>(w, (uint32_t)i, o32);
      icl_dwalk_offsets<3, int64_t>(w, i, o64);
      for (int j = 0; j < 3; j++) {
        int64_t want = view_offset(vs[j], i);
        EXPECT(o32[j] == want && o64[j] == want, "trial %d elem %lld operand %d: %lld / %lld, want %lld", trial,
               (long long)i, j, (long long)o32[j], (long long)o64[j], (long long)want);
      }
    }
  }
  /* contiguous operands collapse to one flat run */
  int64_t shape[4] = {3, 5, 7, 2};
  icl_view a;
  memset(&a, 0, sizeof a);
  a.ndim = 4;
  for (int d = 3, s = 1; d >= 0; s *= (int)shape[d], d--) a.shape[d] = shape[d], a.stride[d] = s;
  const icl_view *vs[2] = {&a, &a};
  icl_dwalk<2> w = icl_dwalk_make<2>(vs);
  EXPECT(icl_dwalk_flat(w) && w.shape[0] == 210, "contiguous views must be one flat run");
}

/* ---- allocator ------------------------------------------------------------------ */

static void test_size_classes(void) {
  int prev = -1;
  for (size_t n = 0; n < 70000; n++) {
    int c = size_class(n);
    size_t b = class_bytes(c);
    EXPECT(b >= n && b >= 512, "n %zu: class %d has %zu bytes", n, c, b);
    EXPECT(n <= 512 || b * 4 <= n * 5 + 4 * 512, "n %zu: %zu bytes is more than 25%% slack", n, b);
    EXPECT(c >= prev, "classes must grow with n (n %zu)", n);
    EXPECT(size_class(b) == c, "class %d: its own size maps elsewhere", c);
    prev = c;
  }
  for (int k = 0; k < 100000; k++) {
    size_t n = (size_t)(next_u64() >> (4 + below(60)));
    int c = size_class(n);
    EXPECT(c >= 0 && c < ICL_CUDA_NCLASSES && class_bytes(c) >= n && (n < 1024 || class_bytes(c) <= n + n / 4 + 1),
           "n %zu: class %d, %zu bytes", n, c, class_bytes(c));
  }
  EXPECT(size_class(MAX_ALLOC_BYTES) < ICL_CUDA_NCLASSES, "largest allocation has no class");
}

static void test_live_map(void) {
  icl_cuda_allocator a;
  memset(&a, 0, sizeof a);
  enum { M = 20000 };
  static char *ptrs[M];
  static int cls[M], in[M];
  for (int i = 0; i < M; i++) { /* distinct fake blocks with varied low bits */
    ptrs[i] = (char *)0x7f0000000000ull + (uint64_t)i * 1536 + (uint64_t)(i % 3) * 512;
    in[i] = 0;
  }
  for (int step = 0; step < 200000; step++) {
    int i = below(M);
    if (!in[i]) {
      cls[i] = below(ICL_CUDA_NCLASSES);
      EXPECT(live_insert(&a, ptrs[i], cls[i]) == 0, "insert failed");
      in[i] = 1;
    } else {
      int c = live_remove(&a, ptrs[i]);
      EXPECT(c == cls[i], "remove %d: class %d, want %d", i, c, cls[i]);
      in[i] = 0;
    }
    if (step % 20000 == 0) {
      size_t count = 0;
      for (int k = 0; k < M; k++) count += in[k];
      EXPECT(count == a.live_count, "count %zu vs map %zu", count, a.live_count);
    }
  }
  EXPECT(live_remove(&a, (void *)0x1234) == -1, "an unknown pointer must not be found");
  for (int i = 0; i < M; i++)
    if (in[i]) EXPECT(live_remove(&a, ptrs[i]) == cls[i], "final remove %d", i);
  EXPECT(a.live_count == 0, "map not empty at the end");
  free(a.live);
}

/* ---- sin / cos ---------------------------------------------------------------------- */

static double ulp_err(float got, long double want) {
  if (isnan(got) && isnan((double)want)) return 0;
  float w = (float)want;
  float ulp = nextafterf(fabsf(w), INFINITY) - fabsf(w);
  return (double)(fabsl((long double)got - want) / (long double)ulp);
}

static void test_trig(void) {
  double worst[2] = {0, 0};
  for (int k = 0; k < 2000000; k++) {
    uint32_t u = (uint32_t)next_u64();
    if (k < 500000) u = 0x3f000000u + (uint32_t)k * 211u; /* dense over [0.5, ~1e5] */
    float x;
    memcpy(&x, &u, 4);
    if (!isfinite(x)) continue;
    double es = ulp_err(icl_sinf_acc(x), sinl((long double)x)), ec = ulp_err(icl_cosf_acc(x), cosl((long double)x));
    if (es > worst[0]) worst[0] = es;
    if (ec > worst[1]) worst[1] = ec;
  }
  printf("    sin worst %.3f ulp, cos worst %.3f ulp\n", worst[0], worst[1]);
  EXPECT(worst[0] <= 1.0 && worst[1] <= 1.0, "sin/cos beyond 1 ulp: %.3f / %.3f", worst[0], worst[1]);
  EXPECT(isnan(icl_sinf_acc(INFINITY)) && isnan(icl_cosf_acc(-INFINITY)) && isnan(icl_sinf_acc(NAN)), "Inf/NaN");
  EXPECT(signbit(icl_sinf_acc(-0.0f)) && icl_cosf_acc(0.0f) == 1.0f, "signed zero");
}

/* ---- reduction merges under random trees ------------------------------------------------ */

/* combine a[0..n) in a random binary tree, like any kernel layout might */
template <class K> static typename K::A tree(typename K::A *a, int n, int want_max) {
  while (n > 1) {
    int i = below(n - 1);
    a[i] = below(2) ? K::merge(a[i], a[i + 1], want_max) : K::merge(a[i + 1], a[i], want_max);
    memmove(&a[i + 1], &a[i + 2], sizeof a[0] * (size_t)(n - i - 2));
    n--;
  }
  return a[0];
}

/* the CPU backend's scan (engine/cpu/cpu_reduce.c) */
static void cpu_ext(const float *p, int n, int want_max, float *best, int *bi) {
  *best = p[0];
  *bi = 0;
  for (int i = 1; i < n; i++) {
    float v = p[i];
    if (isnan(*best)) break;
    if (isnan(v) || (want_max ? v > *best : v < *best)) *best = v, *bi = i;
  }
}

static void test_merges(void) {
  enum { N = 300 };
  static float x[N];
  static KExt::A e[N];
  static KVar::A va[N];
  for (int trial = 0; trial < 4000; trial++) {
    int n = 1 + below(N);
    int kind = trial % 3; /* 0 normal, 1 ties, 2 NaNs */
    for (int i = 0; i < n; i++) {
      x[i] = kind == 1 ? (float)(below(5) - 2) : (float)((double)(next_u64() >> 11) * 0x1p-53 * 8 - 4);
      if (kind == 2 && below(40) == 0) x[i] = NAN;
    }
    /* leaves are runs of consecutive elements, as one thread would see them */
    for (int want_max = 0; want_max < 2; want_max++) {
      int leaves = 0;
      for (int i = 0; i < n;) {
        int len = 1 + below(8);
        KExt::A a = KExt::init();
        for (int j = i; j < n && j < i + len; j++) KExt::add(a, x[j], j, want_max);
        e[leaves++] = a;
        i += len;
      }
      e[leaves++] = KExt::init(); /* an idle thread */
      KExt::A r = tree<KExt>(e, leaves, want_max);
      float best;
      int bi;
      cpu_ext(x, n, want_max, &best, &bi);
      EXPECT(r.i == bi && (r.v == best || (isnan(r.v) && isnan(best))),
             "trial %d (%s): index %lld value %g, cpu %d %g", trial, want_max ? "max" : "min", r.i, r.v, bi, best);
    }
    if (kind == 2) continue;
    /* variance: any tree of Welford leaves agrees with the CPU's two passes */
    int leaves = 0;
    for (int i = 0; i < n;) {
      int len = 1 + below(8);
      KVar::A a = KVar::init();
      for (int j = i; j < n && j < i + len; j++) KVar::add(a, x[j], j, 0);
      va[leaves++] = a;
      i += len;
    }
    va[leaves++] = KVar::init();
    KVar::A r = tree<KVar>(va, leaves, 0);
    double m = 0, acc = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) acc += (x[i] - m) * (x[i] - m);
    double v, want = n > 1 ? acc / (n - 1) : NAN;
    int32_t idx;
    KVar::result(r, ICL_RED_VAR, n, &v, &idx);
    EXPECT((isnan(want) && isnan(v)) || fabs(v - want) <= 1e-12 * fabs(want) + 1e-300, "trial %d var %.17g vs %.17g",
           trial, v, want);
  }
}

int main(void) {
  run("walk_offsets", test_walk_offsets);
  run("size_classes", test_size_classes);
  run("live_map", test_live_map);
  run("trig", test_trig);
  run("merges", test_merges);
  printf("test_cuda_host: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
