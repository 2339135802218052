/* The CUDA nn kernels (engine/cuda/cuda_nn.cu) against the CPU reference
 * (engine/nn/cpu_nn.c), every entry of the table, on fresh random inputs at
 * the standard model's shapes and at awkward ones (row lengths with an
 * 8-lane tail, shorter than 8, one column, misaligned buffers). Outputs that
 * are overwritten start poisoned (differently per device).
 *
 * Tolerances (|gpu - cpu| <= atol + rtol |cpu|; "expected bit-identical"
 * means the kernel follows the CPU's rounding order and the run prints how
 * many elements differ, without failing on it):
 *   exact (required): add, bias_add, add_rmsnorm's sum a, MSE dpred
 *   rtol 1e-6, expected bit-identical: rmsnorm y and rstd (8-lane row sums
 *     in the CPU's order), swiglu inside 8-column blocks (the CPU's
 *     polynomial exp, replayed in cuda_nn_math.cuh)
 *   rtol 1e-5, atol 1e-6 max|out|: rmsnorm dx (a difference of products),
 *     silu fwd/bwd and swiglu's tail columns (libm expf vs the device's,
 *     a few ulp apart), BCE dpred (sigmoid - t cancels)
 *   column sums (rmsnorm dw, bias_grad): |gpu - cpu| <= 1e-5 sum_r |term|
 *     (the CPU adds rows one by one in float; the GPU adds fixed chunks in
 *     double: the CPU's rounding is the difference)
 *   loss value: rtol 1e-6 (both sum in double, in different orders)
 * Exits 77 (skipped) without a CUDA device. */
#include <stdlib.h>

#include "gpu_pair.h"
#include "nn/nn_kernels.h"

#define D(t) ((float *)icl_tensor_data(t))

#ifdef GP_EMU
/* emu_test_gpu_nn: the CUDA kernels of cuda_nn.cu on the CPU emulator (tests/cuda/emu), host memory */
extern const icl_nn_kernels icl_cuda_nn_kernels;
void icl_emu_attach(icl_ctx *ctx);
void icl_emu_detach(icl_ctx *ctx);
#endif

static const icl_nn_kernels *NC, *NG;

static pair prand(int64_t n, double lo, double hi) { return pair_rand(ICL_F32, 1, &n, ICL_DIST_UNIFORM, lo, hi); }
static pair pnorm(int64_t n) { return pair_rand(ICL_F32, 1, &n, ICL_DIST_NORMAL, 0, 1); }
static pair ppoison(int64_t n) { return pair_poison(ICL_F32, 1, &n); }

/* tolerance relative to the output's largest magnitude */
static void check_scaled(const char *what, pair p, double rtol, double arel) {
  int64_t n = icl_numel(p.c);
  float *h = malloc(sizeof(float) * (size_t)(n ? n : 1));
  CPU->memcpy(G, h, ICL_CPU, D(p.c), ICL_CPU, sizeof(float) * (size_t)n);
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fabs((double)h[i]) > m ? fabs((double)h[i]) : m;
  free(h);
  gp_check(what, p, ICL_F32, rtol, arel * m);
}

/* Where a kernel follows the CPU's rounding order: on a GPU the count of
 * differing elements is printed; on the emulator (no contraction, plain IEEE
 * operations) any difference is a wrong order, and fails. */
static void expect_bits(const char *what, pair p) {
  int64_t diff = gp_report_bits(what, p);
#ifdef GP_EMU
  CHECK_MSG(diff == 0, "%s: %lld elements differ in their bits from the CPU's on the emulator", what, (long long)diff);
#else
  (void)diff;
#endif
}

/* column sums: |gpu - cpu| <= rel * absum[j] per column */
static void check_colsum(const char *what, pair out, const double *absum, int64_t d, double rel) {
  uint32_t *hc = gp_gather(out.c), *hg = gp_gather(out.g);
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t j = 0; j < d; j++) {
    double e = fabs((double)gp_f(hg[j]) - (double)gp_f(hc[j])), r = e / (absum[j] > 0 ? absum[j] : 1);
    if (!(r <= worst)) worst = r;
    if (!(e <= rel * absum[j]) && bad++ == 0) first = j;
  }
  CHECK_MSG(bad == 0, "%s: %lld of %lld columns off; first %lld: gpu %.9g cpu %.9g", what, (long long)bad, (long long)d,
            (long long)first, gp_f(hg[first < 0 ? 0 : first]), gp_f(hc[first < 0 ? 0 : first]));
  printf("    %-44s max err / sum|terms| %.3g (tol %g)\n", what, worst, rel);
  free(hc);
  free(hg);
}

/* ---- RMSNorm ------------------------------------------------------------------------------- */

static void rmsnorm_case(int64_t rows, int64_t d, int misalign) {
  char what[96];
  int64_t n = rows * d, off = misalign ? 1 : 0;
  /* misaligned: views one float into their buffers */
  pair xb = pnorm(n + off), wb = prand(d + off, 0.5, 1.5), db = pnorm(n + off), dyb = pnorm(n + off);
  pair x = pair_narrow(xb, 0, off, n), w = pair_narrow(wb, 0, off, d), delta = pair_narrow(db, 0, off, n),
       dy = pair_narrow(dyb, 0, off, n);
  pair y = ppoison(n), r = ppoison(rows), a = ppoison(n), y2 = ppoison(n), r2 = ppoison(rows);
  CHECK_OK(G, NC->rmsnorm_fwd(G, D(y.c), D(r.c), D(x.c), D(w.c), rows, d, 1e-6f));
  CHECK_OK(G, NG->rmsnorm_fwd(G, D(y.g), D(r.g), D(x.g), D(w.g), rows, d, 1e-6f));
  snprintf(what, sizeof what, "rmsnorm_fwd y [%lld x %lld]%s", (long long)rows, (long long)d,
           misalign ? " misal." : "");
  gp_check(what, y, ICL_F32, 1e-6, 0);
  expect_bits(what, y);
  snprintf(what, sizeof what, "rmsnorm_fwd rstd [%lld x %lld]", (long long)rows, (long long)d);
  gp_check(what, r, ICL_F32, 1e-6, 0);
  expect_bits(what, r);
  CHECK_OK(G, NC->add_rmsnorm_fwd(G, D(a.c), D(y2.c), D(r2.c), D(x.c), D(delta.c), D(w.c), rows, d, 1e-6f));
  CHECK_OK(G, NG->add_rmsnorm_fwd(G, D(a.g), D(y2.g), D(r2.g), D(x.g), D(delta.g), D(w.g), rows, d, 1e-6f));
  snprintf(what, sizeof what, "add_rmsnorm a [%lld x %lld]", (long long)rows, (long long)d);
  gp_check(what, a, ICL_F32, -1, 0);
  snprintf(what, sizeof what, "add_rmsnorm y [%lld x %lld]", (long long)rows, (long long)d);
  gp_check(what, y2, ICL_F32, 1e-6, 0);
  expect_bits(what, y2);
  gp_check("add_rmsnorm rstd", r2, ICL_F32, 1e-6, 0);
  /* a aliasing x (the residual stream updated in place) */
  pair xa = pair_upload(icl_clone(G, x.c)), ya = ppoison(n), ra = ppoison(rows);
  CHECK_OK(G, NC->add_rmsnorm_fwd(G, D(xa.c), D(ya.c), D(ra.c), D(xa.c), D(delta.c), D(w.c), rows, d, 1e-6f));
  CHECK_OK(G, NG->add_rmsnorm_fwd(G, D(xa.g), D(ya.g), D(ra.g), D(xa.g), D(delta.g), D(w.g), rows, d, 1e-6f));
  gp_check("add_rmsnorm in place (a = x)", xa, ICL_F32, -1, 0);
  gp_check("add_rmsnorm in place y", ya, ICL_F32, 1e-6, 0);
  /* y aliasing x (the final norm of inference) */
  pair yi = pair_upload(icl_clone(G, x.c)), ri = ppoison(rows);
  CHECK_OK(G, NC->rmsnorm_fwd(G, D(yi.c), D(ri.c), D(yi.c), D(w.c), rows, d, 1e-6f));
  CHECK_OK(G, NG->rmsnorm_fwd(G, D(yi.g), D(ri.g), D(yi.g), D(w.g), rows, d, 1e-6f));
  gp_check("rmsnorm_fwd in place (y = x)", yi, ICL_F32, 1e-6, 0);
  /* backward, from the CPU's rstd on both devices */
  pair rs = pair_upload(icl_clone(G, r.c));
  for (int acc = 0; acc < 2; acc++) {
    pair dx = acc ? pnorm(n) : ppoison(n), dw = prand(d, -1, 1);
    double *absum = calloc((size_t)d, sizeof(double));
    const float *hx = D(x.c), *hdy = D(dy.c), *hr = D(rs.c), *hdw = D(dw.c);
    for (int64_t j = 0; j < d; j++) absum[j] = fabs((double)hdw[j]);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < d; j++) absum[j] += fabs((double)hdy[i * d + j] * hx[i * d + j] * hr[i]);
    CHECK_OK(G, NC->rmsnorm_bwd(G, D(dx.c), D(dw.c), D(dy.c), D(x.c), D(w.c), D(rs.c), rows, d, acc));
    CHECK_OK(G, NG->rmsnorm_bwd(G, D(dx.g), D(dw.g), D(dy.g), D(x.g), D(w.g), D(rs.g), rows, d, acc));
    snprintf(what, sizeof what, "rmsnorm_bwd dx%s [%lld x %lld]", acc ? " +=" : "", (long long)rows, (long long)d);
    check_scaled(what, dx, 1e-5, 1e-6);
    expect_bits(what, dx);
    snprintf(what, sizeof what, "rmsnorm_bwd dw [%lld x %lld]", (long long)rows, (long long)d);
    check_colsum(what, dw, absum, d, 1e-5);
    free(absum);
    pair_free(dx);
    pair_free(dw);
  }
  pair fs[] = {xb, wb, db, dyb, x, w, delta, dy, y, r, a, y2, r2, xa, ya, ra, yi, ri, rs};
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) pair_free(fs[i]);
}

static void test_rmsnorm(void) {
  rmsnorm_case(6528, 256, 0); /* the standard model: 64 prompts x 102 tokens, hidden 256 */
  rmsnorm_case(37, 20, 0);
  rmsnorm_case(37, 20, 1);
  rmsnorm_case(5, 7, 0);
  rmsnorm_case(100, 1000, 0);
  rmsnorm_case(3, 1, 0);
}

/* ---- elementwise ----------------------------------------------------------------------------- */

static void test_elementwise(void) {
  const int64_t ns[] = {1671168, 1001, 3};
  for (int k = 0; k < 3; k++) {
    int64_t n = ns[k];
    for (int misalign = 0; misalign < 2; misalign++) {
      int64_t off = misalign;
      pair ab = pnorm(n + off), bb = prand(n + off, -30, 30), a = pair_narrow(ab, 0, off, n),
           b = pair_narrow(bb, 0, off, n);
      pair y = ppoison(n), s = ppoison(n), ds = ppoison(n);
      CHECK_OK(G, NC->add(G, D(y.c), D(a.c), D(b.c), n));
      CHECK_OK(G, NG->add(G, D(y.g), D(a.g), D(b.g), n));
      gp_check("add", y, ICL_F32, -1, 0);
      CHECK_OK(G, NC->silu_fwd(G, D(s.c), D(b.c), n));
      CHECK_OK(G, NG->silu_fwd(G, D(s.g), D(b.g), n));
      gp_check("silu_fwd", s, ICL_F32, 1e-5, 1e-6);
      CHECK_OK(G, NC->silu_bwd(G, D(ds.c), D(a.c), D(b.c), n));
      CHECK_OK(G, NG->silu_bwd(G, D(ds.g), D(a.g), D(b.g), n));
      check_scaled("silu_bwd", ds, 1e-5, 1e-6);
      /* in place: y aliases a */
      pair ia = pair_upload(icl_clone(G, a.c));
      CHECK_OK(G, NC->add(G, D(ia.c), D(ia.c), D(b.c), n));
      CHECK_OK(G, NG->add(G, D(ia.g), D(ia.g), D(b.g), n));
      gp_check("add in place", ia, ICL_F32, -1, 0);
      pair fs[] = {ab, bb, a, b, y, s, ds, ia};
      for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) pair_free(fs[i]);
    }
  }
  const int64_t shapes[][2] = {{6528, 256}, {37, 20}, {4, 1}};
  for (int k = 0; k < 3; k++) {
    int64_t rows = shapes[k][0], d = shapes[k][1];
    pair y = pnorm(rows * d), b = pnorm(d), db = pnorm(d), dy = pnorm(rows * d);
    CHECK_OK(G, NC->bias_add(G, D(y.c), D(b.c), rows, d));
    CHECK_OK(G, NG->bias_add(G, D(y.g), D(b.g), rows, d));
    gp_check("bias_add", y, ICL_F32, -1, 0);
    double *absum = calloc((size_t)d, sizeof(double));
    for (int64_t j = 0; j < d; j++) absum[j] = fabs((double)D(db.c)[j]);
    for (int64_t i = 0; i < rows * d; i++) absum[i % d] += fabs((double)D(dy.c)[i]);
    CHECK_OK(G, NC->bias_grad(G, D(db.c), D(dy.c), rows, d));
    CHECK_OK(G, NG->bias_grad(G, D(db.g), D(dy.g), rows, d));
    char what[64];
    snprintf(what, sizeof what, "bias_grad [%lld x %lld]", (long long)rows, (long long)d);
    check_colsum(what, db, absum, d, 1e-5);
    free(absum);
    pair_free(y), pair_free(b), pair_free(db), pair_free(dy);
  }
}

/* ---- SwiGLU ------------------------------------------------------------------------------------ */

static void swiglu_case(int64_t rows, int64_t f, int misalign) {
  char what[96];
  int64_t off = misalign;
  pair gub = prand(rows * 2 * f + off, -8, 8), dhb = pnorm(rows * f + off);
  pair gu = pair_narrow(gub, 0, off, rows * 2 * f), dh = pair_narrow(dhb, 0, off, rows * f);
  pair h = ppoison(rows * f), dgu = ppoison(rows * 2 * f);
  CHECK_OK(G, NC->swiglu_fwd(G, D(h.c), D(gu.c), rows, f));
  CHECK_OK(G, NG->swiglu_fwd(G, D(h.g), D(gu.g), rows, f));
  CHECK_OK(G, NC->swiglu_bwd(G, D(dgu.c), D(dh.c), D(gu.c), rows, f));
  CHECK_OK(G, NG->swiglu_bwd(G, D(dgu.g), D(dh.g), D(gu.g), rows, f));
  int tail = f % 8 != 0;
  snprintf(what, sizeof what, "swiglu_fwd [%lld x %lld]%s", (long long)rows, (long long)f, misalign ? " misal." : "");
  if (tail)
    check_scaled(what, h, 1e-5, 1e-6);
  else
    gp_check(what, h, ICL_F32, 1e-6, 1e-30);
  gp_report_bits(what, h);
  snprintf(what, sizeof what, "swiglu_bwd [%lld x %lld]%s", (long long)rows, (long long)f, misalign ? " misal." : "");
  check_scaled(what, dgu, 1e-5, 1e-6);
  gp_report_bits(what, dgu);
  pair_free(gub), pair_free(dhb), pair_free(gu), pair_free(dh), pair_free(h), pair_free(dgu);
}

static void test_swiglu(void) {
  swiglu_case(6528, 1024, 0); /* the standard model's MLP */
  swiglu_case(37, 30, 0);     /* 8-lane blocks and a tail of 6 */
  swiglu_case(37, 64, 1);     /* misaligned: the scalar kernel */
  swiglu_case(9, 5, 0);       /* all tail */
}

/* ---- loss ------------------------------------------------------------------------------------ */

static void loss_case(icl_loss_kind kind, int64_t n, int64_t ps, float scale) {
  char what[96];
  pair pred = pnorm(n * ps),
       tgt = kind == ICL_LOSS_MSE ? pnorm(n) : pair_rand(ICL_F32, 1, &n, ICL_DIST_BERNOULLI, 0.5, 0);
  if (kind == ICL_LOSS_BCE) { /* labels +-1 */
    float *t = D(tgt.c);
    for (int64_t i = 0; i < n; i++) t[i] = 2 * t[i] - 1;
    pair old = tgt;
    tgt = pair_upload(icl_clone(G, old.c));
    pair_free(old);
  }
  int64_t one = 1;
  pair l = pair_poison(ICL_F32, 1, &one), dp = ppoison(n * ps);
  CHECK_OK(G, NC->loss(G, kind, D(l.c), D(dp.c), D(pred.c), ps, D(tgt.c), n, scale));
  CHECK_OK(G, NG->loss(G, kind, D(l.g), D(dp.g), D(pred.g), ps, D(tgt.g), n, scale));
  snprintf(what, sizeof what, "loss %s n %lld value", kind == ICL_LOSS_MSE ? "mse" : "bce", (long long)n);
  gp_check(what, l, ICL_F32, 1e-6, 0);
  gp_report_bits(what, l);
  /* dpred at i * ps; the rest keeps each device's poison */
  uint32_t *hc = gp_gather(dp.c), *hg = gp_gather(dp.g);
  int64_t bad = 0, untouched = 0, diff = 0;
  double tol_a = 4e-7 * fabs(scale) / (double)n;
  for (int64_t i = 0; i < n * ps; i++) {
    float c = gp_f(hc[i]), g = gp_f(hg[i]);
    if (i % ps) {
      untouched += !(c == POISON_C && g == POISON_G);
      continue;
    }
    diff += hc[i] != hg[i];
    if (kind == ICL_LOSS_MSE)
      bad += hc[i] != hg[i];
    else
      bad += !(fabs((double)g - c) <= tol_a + 1e-5 * fabs((double)c));
  }
  CHECK_MSG(bad == 0, "loss %s dpred: %lld of %lld off", kind == ICL_LOSS_MSE ? "mse" : "bce", (long long)bad,
            (long long)n);
  CHECK_MSG(untouched == 0, "loss dpred: %lld entries between the predictions were written", (long long)untouched);
  printf("    %-44s %lld of %lld differ in their bits (%s)\n", "loss dpred", (long long)diff, (long long)n,
         kind == ICL_LOSS_MSE ? "exact required" : "rtol 1e-5");
  free(hc);
  free(hg);
  /* loss only, no gradient */
  CHECK_OK(G, NG->loss(G, kind, D(l.g), NULL, D(pred.g), ps, D(tgt.g), n, scale));
  gp_check("loss without dpred", l, ICL_F32, 1e-6, 0);
  pair_free(pred), pair_free(tgt), pair_free(l), pair_free(dp);
}

static void test_loss(void) {
  for (int k = 0; k < 2; k++) {
    icl_loss_kind kind = k ? ICL_LOSS_BCE : ICL_LOSS_MSE;
    loss_case(kind, 3264, 2, 1.0f); /* 64 x 51 predictions at every other token */
    loss_case(kind, 7, 1, 0.5f);
    loss_case(kind, 100003, 3, 2.0f);
  }
  CHECK(NG->loss(G, ICL_LOSS_MSE, NULL, NULL, NULL, 1, NULL, 0, 1.0f) == ICL_EINVAL);
  icl_clear_error(G);
}

int main(void) {
  if (gp_start("test_gpu_nn")) return 77;
  NC = CPU->nn;
  NG = GPU->nn;
#ifdef GP_EMU
  NG = &icl_cuda_nn_kernels;
  icl_emu_attach(G);
  printf("test_gpu_nn: the CUDA kernels run on the CPU emulator (tests/cuda/emu)\n");
#endif
  if (!NG) {
    printf("not ok - the %s backend has no nn table\n", GPU->name);
    return 1;
  }
  ICL_RUN(test_rmsnorm);
  ICL_RUN(test_elementwise);
  ICL_RUN(test_swiglu);
  ICL_RUN(test_loss);
#ifdef GP_EMU
  icl_emu_detach(G);
#endif
  return gp_finish("test_gpu_nn");
}
