/* The CUDA backend against the CPU reference, reductions side: every
 * reduction over every dim and over everything (shapes picked so that each
 * kernel layout runs: a thread, a warp or a block per line, long lines split
 * across blocks, strided and generic walks), softmax and log-softmax, and
 * gemm in all four transpose combinations, batched, padded, in TF32 and in
 * strict FP32. Inputs are fresh random draws (never zeros), outputs poisoned.
 *
 * Tolerances (|gpu - cpu| <= atol + rtol |cpu|):
 *   exact: max/min/argmax/argmin (incl. ties: first index; NaN: first NaN)
 *   1e-5 relative (+1e-10 absolute): sum/mean/var/var0/prod
 *   1e-5 relative: softmax; log-softmax 1e-5 relative + 1e-5 absolute
 *   gemm, normwise ||gpu - cpu|| / ||cpu|| and max |gpu - cpu| / max |cpu|:
 *     3e-3 with TF32, 1e-5 with ctx->strict_fp32
 * Exits 77 (skipped) without a CUDA device. */
#include <stdint.h>
#include <stdlib.h>

#include "gpu_pair.h"

static const char *red_names[] = {"sum", "mean", "max", "min", "argmax", "argmin", "var", "var0", "prod"};

#define V(t) icl_tensor_view_of(t)

/* ---- reductions and softmax ------------------------------------------------------- */

static int is_arg(int op) { return op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN; }

/* Reduce `in` over dim (-1: all) into a fresh poisoned output of dtype odt. */
static void reduce_case(const char *label, int op, pair in, int dim, icl_dtype odt) {
  int64_t shape[ICL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < in.c->ndim; i++)
    if (dim >= 0 && i != dim) shape[nd++] = in.c->shape[i];
  pair out = pair_poison(odt, nd, shape);
  CHECK_OK(G, CPU->reduce(G, (icl_redop)op, V(out.c), odt, V(in.c), dim));
  CHECK_OK(G, GPU->reduce(G, (icl_redop)op, V(out.g), odt, V(in.g), dim));
  char what[128];
  snprintf(what, sizeof what, "%s %s dim %d", red_names[op], label, dim);
  int exact = is_arg(op) || op == ICL_RED_MAX || op == ICL_RED_MIN || odt == ICL_I32;
  gp_check(what, out, odt, exact ? -1 : 1e-5, 1e-10);
  pair_free(out);
}

static pair reduce_input(int op, int nd, const int64_t *s) {
  return op == ICL_RED_PROD ? pair_rand(ICL_F32, nd, s, ICL_DIST_UNIFORM, 0.99, 1.01)
                            : pair_rand(ICL_F32, nd, s, ICL_DIST_NORMAL, 0.5, 2);
}

static void test_reduce(void) {
  /* shapes chosen to reach every kernel shape: a thread, a warp or a block per
   * line, and long lines split across blocks (contiguous and strided) */
  static const struct {
    int nd;
    int64_t s[3];
  } shp[] = {{3, {37, 300, 5}}, {2, {4, 100000}}, {2, {300, 5000}}, {2, {20000, 5}}, {2, {3000, 70}}};
  for (int op = 0; op < ICL_RED__COUNT; op++) {
    icl_dtype odt = is_arg(op) ? ICL_I32 : ICL_F32;
    for (size_t k = 0; k < sizeof shp / sizeof shp[0]; k++) {
      pair in = reduce_input(op, shp[k].nd, shp[k].s);
      char label[64];
      snprintf(label, sizeof label, "[%lld x %lld%s]", (long long)shp[k].s[0], (long long)shp[k].s[1],
               shp[k].nd == 3 ? " x 5" : "");
      for (int dim = -1; dim < shp[k].nd; dim++) reduce_case(label, op, in, dim, odt);
      pair_free(in);
    }
    /* non-contiguous input: generic walk for "all", strided lines otherwise */
    int64_t st[2] = {257, 300};
    pair base = reduce_input(op, 2, st), tr = pair_transpose(base, 0, 1);
    for (int dim = -1; dim < 2; dim++) reduce_case("transposed [300 x 257]", op, tr, dim, odt);
    pair_free(tr);
    pair_free(base);
    if (op == ICL_RED_MAX || op == ICL_RED_MIN || is_arg(op)) {
      /* ties (first index wins) and NaNs (first NaN wins) */
      int64_t s[2] = {200, 3000}, sn[2] = {64, 500};
      pair ties = pair_rand(ICL_F32, 2, s, ICL_DIST_RANDINT, -3, 3);
      pair nans = pair_rand_nan(2, sn, ICL_DIST_NORMAL, 0, 1, 1999);
      for (int dim = -1; dim < 2; dim++) {
        reduce_case("ties [200 x 3000]", op, ties, dim, odt);
        reduce_case("nans [64 x 500]", op, nans, dim, odt);
      }
      pair_free(ties);
      pair_free(nans);
    }
  }
  /* output through a strided view; the other output dtype */
  int64_t s[3] = {40, 50, 60}, sb[2] = {40, 70};
  pair in = reduce_input(ICL_RED_SUM, 3, s), base = pair_poison(ICL_F32, 2, sb), win = pair_narrow(base, 1, 5, 60);
  CHECK_OK(G, CPU->reduce(G, ICL_RED_MEAN, V(win.c), ICL_F32, V(in.c), 1));
  CHECK_OK(G, GPU->reduce(G, ICL_RED_MEAN, V(win.g), ICL_F32, V(in.g), 1));
  gp_check("mean into a narrowed output", win, ICL_F32, 1e-5, 1e-10);
  gp_check_outside("mean into a narrowed output", base, win, ICL_F32);
  reduce_case("[40 x 50 x 60] as float", ICL_RED_ARGMAX, in, 2, ICL_F32);
  reduce_case("[40 x 50 x 60] as int", ICL_RED_SUM, in, 0, ICL_I32);
  pair_free(in);
  pair_free(base);
  pair_free(win);
  /* empty lines: sum 0, mean NaN, prod 1, var NaN */
  int64_t se[2] = {5, 0};
  pair e = pair_poison(ICL_F32, 2, se);
  int ops[4] = {ICL_RED_SUM, ICL_RED_MEAN, ICL_RED_PROD, ICL_RED_VAR};
  for (int i = 0; i < 4; i++) reduce_case("empty [5 x 0]", ops[i], e, 1, ICL_F32);
  pair_free(e);
}

static void test_softmax(void) {
  static const int64_t rc[][2] = {{1000, 37}, {64, 5000}, {3, 1}, {513, 1024}, {7, 1025}};
  for (size_t k = 0; k < sizeof rc / sizeof rc[0]; k++) {
    for (int log = 0; log < 2; log++) {
      pair in = pair_rand(ICL_F32, 2, rc[k], ICL_DIST_NORMAL, 0, 4), out = pair_poison(ICL_F32, 2, rc[k]);
      CHECK_OK(G, CPU->softmax(G, icl_tensor_data(out.c), icl_tensor_data(in.c), rc[k][0], rc[k][1], log));
      CHECK_OK(G, GPU->softmax(G, icl_tensor_data(out.g), icl_tensor_data(in.g), rc[k][0], rc[k][1], log));
      char what[96];
      snprintf(what, sizeof what, "%s [%lld x %lld]", log ? "log-softmax" : "softmax", (long long)rc[k][0],
               (long long)rc[k][1]);
      gp_check(what, out, ICL_F32, 1e-5, log ? 1e-5 : 1e-30);
      /* in place */
      CHECK_OK(G, CPU->softmax(G, icl_tensor_data(in.c), icl_tensor_data(in.c), rc[k][0], rc[k][1], log));
      CHECK_OK(G, GPU->softmax(G, icl_tensor_data(in.g), icl_tensor_data(in.g), rc[k][0], rc[k][1], log));
      snprintf(what, sizeof what, "%s [%lld x %lld] in place", log ? "log-softmax" : "softmax", (long long)rc[k][0],
               (long long)rc[k][1]);
      gp_check(what, in, ICL_F32, 1e-5, log ? 1e-5 : 1e-30);
      pair_free(in);
      pair_free(out);
    }
  }
}

/* ---- gemm ------------------------------------------------------------------------------ */

static void gemm_case(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t batch, int64_t pad, float alpha,
                      float beta, int strict, int bcast_a) {
  int64_t lda = (ta ? m : k) + pad, rows_a = ta ? k : m, stride_a = bcast_a ? 0 : rows_a * lda + 7 * pad;
  int64_t ldb = (tb ? k : n) + pad, rows_b = tb ? n : k, stride_b = rows_b * ldb + 3 * pad;
  int64_t ldc = n + pad, stride_c = m * ldc + 5 * pad;
  int64_t na = (batch - 1) * stride_a + rows_a * lda, nb = (batch - 1) * stride_b + rows_b * ldb,
          nc = (batch - 1) * stride_c + m * ldc;
  if (na < 1) na = 1;
  if (nb < 1) nb = 1;
  pair a = pair_rand(ICL_F32, 1, &na, ICL_DIST_NORMAL, 0, 1), b = pair_rand(ICL_F32, 1, &nb, ICL_DIST_NORMAL, 0, 1);
  pair c = beta == 0 ? pair_poison(ICL_F32, 1, &nc) : pair_rand(ICL_F32, 1, &nc, ICL_DIST_NORMAL, 0, 1);
  G->strict_fp32 = strict;
  CHECK_OK(G, CPU->gemm(G, ta, tb, m, n, k, alpha, icl_tensor_data(a.c), lda, stride_a, icl_tensor_data(b.c), ldb,
                        stride_b, beta, icl_tensor_data(c.c), ldc, stride_c, batch));
  CHECK_OK(G, GPU->gemm(G, ta, tb, m, n, k, alpha, icl_tensor_data(a.g), lda, stride_a, icl_tensor_data(b.g), ldb,
                        stride_b, beta, icl_tensor_data(c.g), ldc, stride_c, batch));
  G->strict_fp32 = 0;
  uint32_t *hc = gp_gather(c.c), *hg = gp_gather(c.g);
  double num = 0, den = 0, maxd = 0, maxr = 0;
  int64_t untouched_bad = 0;
  for (int64_t i = 0; i < nc; i++) {
    int64_t bi = i / stride_c, w = i - bi * stride_c, r = w / ldc, q = w - r * ldc;
    int inside = bi < batch && r < m && q < n;
    float x = gp_f(hg[i]), y = gp_f(hc[i]);
    if (inside) {
      double dd = (double)x - (double)y;
      num += dd * dd;
      den += (double)y * y;
      if (!(fabs(dd) <= maxd)) maxd = fabs(dd);
      if (fabs((double)y) > maxr) maxr = fabs((double)y);
    } else {
      untouched_bad += beta == 0 ? !(x == POISON_G && y == POISON_C) : hg[i] != hc[i];
    }
  }
  double tol = strict ? 1e-5 : 3e-3, rel = sqrt(num / (den > 0 ? den : 1)), relmax = maxd / (maxr > 0 ? maxr : 1);
  char what[128];
  snprintf(what, sizeof what, "gemm %s%s m%lld n%lld k%lld b%lld%s beta %g %s", ta ? "T" : "N", tb ? "T" : "N",
           (long long)m, (long long)n, (long long)k, (long long)batch, bcast_a ? " (A shared)" : "", beta,
           strict ? "fp32" : "tf32");
  CHECK_MSG(rel <= tol && relmax <= tol, "%s: normwise %.3g, max %.3g (tol %g)", what, rel, relmax, tol);
  CHECK_MSG(untouched_bad == 0, "%s: %lld elements outside C written", what, (long long)untouched_bad);
  printf("    %-44s normwise %.3g, max %.3g (tol %g)\n", what, rel, relmax, tol);
  free(hc);
  free(hg);
  pair_free(a);
  pair_free(b);
  pair_free(c);
}

static void test_gemm(void) {
  for (int strict = 0; strict < 2; strict++) {
    for (int t = 0; t < 4; t++) {
      gemm_case(t & 1, t >> 1, 67, 45, 129, 3, 3, 1.25f, 0.0f, strict, 0);
      gemm_case(t & 1, t >> 1, 67, 45, 129, 3, 0, 1.0f, 0.5f, strict, 0);
    }
    gemm_case(0, 0, 512, 256, 384, 1, 0, 1.0f, 0.0f, strict, 0);
    gemm_case(0, 1, 96, 80, 64, 2, 1, 1.0f, 0.0f, strict, 1);
  }
  gemm_case(0, 0, 20, 30, 0, 2, 1, 1.0f, 0.5f, 1, 0); /* k = 0: C = beta C */
  gemm_case(1, 1, 20, 30, 0, 2, 1, 1.0f, 0.0f, 1, 0); /* k = 0, beta 0: zeros */
  if (GP_DEVICE == ICL_CUDA) { /* errors name the device and the op */
    CHECK(GPU->gemm(G, 0, 0, -1, 2, 2, 1, NULL, 2, 0, NULL, 2, 0, 0, NULL, 2, 0, 1) == ICL_EINVAL);
    CHECK(strstr(icl_last_error(G), "cuda: gemm") != NULL);
    icl_clear_error(G);
  }
}

#ifdef ICL_HAVE_CUDA
/* the 64-bit index path of the line walks and the generic walk */
static void test_wide_index(void) {
  icl_cuda_force_wide_index(G, 1);
  int64_t st[2] = {257, 300}, s3[3] = {37, 300, 5};
  pair in = pair_rand(ICL_F32, 2, st, ICL_DIST_NORMAL, 0, 1), tr = pair_transpose(in, 0, 1);
  pair in3 = pair_rand(ICL_F32, 3, s3, ICL_DIST_NORMAL, 0, 1);
  for (int dim = -1; dim < 2; dim++) reduce_case("wide transposed", ICL_RED_ARGMIN, tr, dim, ICL_I32);
  for (int dim = -1; dim < 3; dim++) reduce_case("wide [37 x 300 x 5]", ICL_RED_VAR, in3, dim, ICL_F32);
  pair_free(in);
  pair_free(tr);
  pair_free(in3);
  icl_cuda_force_wide_index(G, 0);
}
#endif

int main(void) {
  if (gp_start("test_gpu_reduce")) return 77;
  ICL_RUN(test_reduce);
  ICL_RUN(test_softmax);
  ICL_RUN(test_gemm);
#ifdef ICL_HAVE_CUDA
  ICL_RUN(test_wide_index);
#endif
  return gp_finish("test_gpu_reduce");
}
