/* Helpers for the kernel-level GPU tests (test_gpu_attn.c, test_gpu_mamba.c),
 * on top of gpu_pair.h: a dbuf is one float buffer per side, host memory
 * for the CPU reference (c) and memory of the device under test (g), with
 * the same contents, or poisoned with a different value per side so that
 * an element nobody wrote shows up as a mismatch.
 *
 * Three builds of each test (tests/CMakeLists.txt):
 *   test_gpu_*       the CUDA kernels against the CPU ones (exit 77 without a GPU)
 *   dry_test_gpu_*   -DGP_DEVICE=ICL_CPU -UICL_HAVE_CUDA: CPU against CPU, which must
 *                    pass with every error exactly 0 (the harness has no false failures)
 *   emu_test_gpu_*   -DGP_DEVICE=ICL_CPU -DGP_EMU: the CUDA kernel sources compiled for
 *                    the CPU emulator of tests/cuda/emu (host memory), against the CPU */
#ifndef ICL_TEST_GPU_KERN_H
#define ICL_TEST_GPU_KERN_H

#include <math.h>

#include "core/rng.h"
#include "gpu_pair.h"

#ifdef GP_EMU
void icl_emu_attach(icl_ctx *ctx);
void icl_emu_detach(icl_ctx *ctx);
#endif

#define GK_NTH 4 /* threads (and scratch slots) given to the CPU kernels */

/* 1 where the device side runs on this machine's CPU too (dry run, emulator): smaller long cases */
#if defined(GP_EMU) || !defined(ICL_HAVE_CUDA)
#define GK_HOST_ONLY 1
#else
#define GK_HOST_ONLY 0
#endif

/* the dry run: both sides are the CPU, so every compared element must be identical */
#if !defined(GP_EMU) && !defined(ICL_HAVE_CUDA)
#define GK_DRY (GP_DEVICE == ICL_CPU)
#else
#define GK_DRY 0
#endif

typedef struct dbuf {
  float *c, *g;
  int64_t n;
} dbuf;

static inline float *gk_dev_alloc(int64_t n) {
  float *p = GPU->alloc(G, sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!p) gp_die("device alloc");
  return p;
}
static inline void gk_upload(float *dst, const float *src, int64_t n) {
  if (n > 0 && GPU->memcpy(G, dst, GP_DEVICE, src, ICL_CPU, sizeof(float) * (size_t)n)) gp_die("upload");
}
static inline float *gk_download(const float *src, int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!h) gp_die("host memory");
  if (n > 0 && GPU->memcpy(G, h, ICL_CPU, src, GP_DEVICE, sizeof(float) * (size_t)n)) gp_die("read back");
  return h;
}

static inline dbuf db_from(const float *h, int64_t n) {
  dbuf b = {malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)), gk_dev_alloc(n), n};
  if (!b.c) gp_die("host memory");
  memcpy(b.c, h, sizeof(float) * (size_t)n);
  gk_upload(b.g, h, n);
  return b;
}
static inline dbuf db_fill2(int64_t n, float vc, float vg) {
  float *h = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!h) gp_die("host memory");
  for (int64_t i = 0; i < n; i++) h[i] = vg;
  dbuf b = db_from(h, n);
  for (int64_t i = 0; i < n; i++) b.c[i] = vc;
  free(h);
  return b;
}
static inline dbuf db_poison(int64_t n) { return db_fill2(n, POISON_C, POISON_G); }
/* the same contents on both sides: the host side's, uploaded */
static inline dbuf db_copy_c(dbuf src) { return db_from(src.c, src.n); }
static inline void db_free(dbuf *b) {
  if (b->c) free(b->c);
  if (b->g) GPU->release(G, b->g, sizeof(float) * (size_t)(b->n > 0 ? b->n : 1));
  b->c = b->g = NULL;
}

/* fresh draws: shift + scale N(0, 1), or uniform [lo, hi) */
static inline float *gk_randn(int64_t n, float scale, float shift) {
  float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!p) gp_die("host memory");
  uint64_t s = gp_stream++;
  for (int64_t i = 0; i < n; i++) {
    icl_philox_out r = icl_philox(gp_seed, s, (uint64_t)i);
    p[i] = shift + scale * icl_normal_from(r.v[0], r.v[1]);
  }
  return p;
}
static inline float *gk_randu(int64_t n, float lo, float hi) {
  float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!p) gp_die("host memory");
  uint64_t s = gp_stream++;
  for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * icl_u01(icl_philox(gp_seed, s, (uint64_t)i).v[0]);
  return p;
}
static inline dbuf db_randn(int64_t n, float scale, float shift) {
  float *h = gk_randn(n, scale, shift);
  dbuf b = db_from(h, n);
  free(h);
  return b;
}
static inline dbuf db_randu(int64_t n, float lo, float hi) {
  float *h = gk_randu(n, lo, hi);
  dbuf b = db_from(h, n);
  free(h);
  return b;
}

/* Compares the sides over the elements where mask (NULL: all) is non-zero.
 * rtol < 0: bitwise (any NaN equals any NaN). Else each element must satisfy
 * |g - c| <= rtol |c| + atol_rel max|c| (equal values, infinities, NaNs
 * accepted), and when norm_tol > 0 also ||g - c|| <= norm_tol ||c|| over the
 * selection. Prints the largest error relative to max|c| and the normwise one. */
static inline void gk_check(const char *what, dbuf b, const unsigned char *mask, double rtol, double atol_rel,
                            double norm_tol) {
  float *h = gk_download(b.g, b.n);
  double scale = 0, num = 0, den = 0, worst = 0;
  for (int64_t i = 0; i < b.n; i++)
    if ((!mask || mask[i]) && isfinite(b.c[i]) && fabs((double)b.c[i]) > scale) scale = fabs((double)b.c[i]);
  int64_t bad = 0, first = -1, sel = 0;
  for (int64_t i = 0; i < b.n; i++) {
    if (mask && !mask[i]) continue;
    sel++;
    float g = h[i], c = b.c[i];
    int ok;
    if (rtol < 0 || gp_same_f32(g, c)) {
      ok = gp_same_f32(g, c);
    } else {
      double d = fabs((double)g - (double)c);
      ok = d <= rtol * fabs((double)c) + atol_rel * scale;
      if (!(d <= worst)) worst = d;
      num += d * d;
      den += (double)c * c;
    }
    if (GK_DRY && !gp_same_f32(g, c)) ok = 0;
    if (!ok && bad++ == 0) first = i;
  }
  double rel = worst / (scale > 0 ? scale : 1), nrel = sqrt(num / (den > 0 ? den : 1));
  if (bad)
    icl_t_fail(__FILE__, __LINE__, "%s: %lld of %lld differ (rtol %g, atol %g x max %.3g); first at %lld: gpu %.9g, cpu %.9g",
               what, (long long)bad, (long long)sel, rtol, atol_rel, scale, (long long)first, h[first], b.c[first]);
  if (rtol >= 0 && norm_tol > 0 && !(nrel <= norm_tol))
    icl_t_fail(__FILE__, __LINE__, "%s: normwise error %.3g > %g", what, nrel, norm_tol);
  if (rtol < 0) printf("    %-52s exact (%lld elements)\n", what, (long long)sel);
  else printf("    %-52s max err %.2e x max|cpu|, normwise %.2e\n", what, rel, nrel);
  free(h);
}

/* Context for a kernel test program: gp_start, plus the emulator's device state. */
static inline int gk_start(const char *suite) {
  int rc = gp_start(suite);
  if (rc) return rc;
#ifdef GP_EMU
  icl_emu_attach(G);
  printf("%s: the CUDA kernels run on the CPU emulator (tests/cuda/emu)\n", suite);
#elif !defined(ICL_HAVE_CUDA)
  if (GP_DEVICE == ICL_CPU) printf("%s: dry run, the CPU against itself (every error must be 0)\n", suite);
#endif
  return 0;
}
static inline int gk_finish(const char *suite) {
#ifdef GP_EMU
  icl_emu_detach(G);
#endif
  return gp_finish(suite);
}

#endif
