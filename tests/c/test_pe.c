/* Position-encoding formulas against the test vectors of models_and_pe.md
 * §9 (ALiBi slopes, YaRN inv_freq / m, dynamic NTK bases, FIRE u), the
 * per-forward rotation of each RoPE variant, and the FIRE kernels'
 * parameter gradients by finite differences (with a small init_L so the
 * max(i, L) branch is active). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "harness.h"
#include "nn/gradcheck.h"
#include "pe/attn_kernels.h"
#include "pe/pe.h"

static void test_alibi_slopes(void) {
  float s[16];
  icl_alibi_slopes(4, s);
  for (int h = 0; h < 4; h++) CHECK_CLOSE(s[h], pow(2.0, -2.0 * (h + 1)), 1e-7, 0);
  icl_alibi_slopes(8, s);
  for (int h = 0; h < 8; h++) CHECK_CLOSE(s[h], pow(2.0, -(h + 1.0)), 1e-7, 0);
  icl_alibi_slopes(6, s);
  const double e6[6] = {-2, -4, -6, -8, -1, -3};
  for (int h = 0; h < 6; h++) CHECK_CLOSE(s[h], pow(2.0, e6[h]), 1e-7, 0);
  icl_alibi_slopes(12, s);
  const double e12[12] = {-1, -2, -3, -4, -5, -6, -7, -8, -0.5, -1.5, -2.5, -3.5};
  for (int h = 0; h < 12; h++) CHECK_CLOSE(s[h], pow(2.0, e12[h]), 1e-7, 0);
  icl_alibi_slopes(16, s);
  for (int h = 0; h < 16; h++) CHECK_CLOSE(s[h], pow(2.0, -0.5 * (h + 1)), 1e-7, 0);
}

static void test_yarn_vectors(void) {
  double lo, hi, m;
  float inv[64];
  icl_yarn_range(1e4, 64, 2048, 32, 1, &lo, &hi);
  CHECK(lo == 8 && hi == 21);
  icl_yarn_inv_freq(1e4, 64, 4, 2048, 32, 1, inv, &m);
  CHECK_CLOSE(m, 1.1386294361, 1e-9, 0);
  CHECK_CLOSE(inv[0], 1.0, 1e-6, 0);
  CHECK_CLOSE(inv[8], 0.1, 1e-6, 0);
  CHECK_CLOSE(inv[9], 0.07066311, 1e-6, 0);
  CHECK_CLOSE(inv[20], 9.730085e-4, 1e-6, 0);
  CHECK_CLOSE(inv[21], 5.928434e-4, 1e-6, 0);
  CHECK_CLOSE(inv[31], 3.333804e-5, 1e-6, 0);
  icl_yarn_range(1e4, 128, 4096, 32, 1, &lo, &hi);
  CHECK(lo == 20 && hi == 46);
  CHECK_CLOSE(icl_yarn_mscale(16), 1.2772588722, 1e-9, 0);
  icl_yarn_range(1e4, 64, 1024, 32, 1, &lo, &hi);
  CHECK(lo == 5 && hi == 18);
  CHECK_CLOSE(icl_yarn_mscale(2), 1.0693147181, 1e-9, 0);
  /* s = 1: plain RoPE */
  float d[32];
  icl_rope_default_inv_freq(1e4, 64, d);
  icl_yarn_inv_freq(1e4, 64, 1, 2048, 32, 1, inv, &m);
  CHECK(m == 1.0);
  for (int c = 0; c < 32; c++) CHECK_CLOSE(inv[c], d[c], 1e-7, 0);
}

static void test_ntk_vectors(void) {
  CHECK_CLOSE(icl_rope_ntk_base(1e4, 64, 2, 4096, 2048), 31082.24, 1e-6, 0);
  CHECK_CLOSE(icl_rope_ntk_base(1e4, 64, 2, 8192, 2048), 74534.83, 1e-6, 0);
  /* f = 1 is the paper form b * s^(D/(D-2)) */
  CHECK_CLOSE(icl_rope_ntk_base(1e4, 64, 1, 4096, 2048), 1e4 * pow(2.0, 64.0 / 62.0), 1e-12, 0);
}

static void test_fire_u(void) {
  const double thr = 512, c = 0.1, eps = 1e-6;
  CHECK_CLOSE(icl_fire_u(c, thr, eps, 5, 0), 0.102517, 0, 1e-6);
  CHECK_CLOSE(icl_fire_u(c, thr, eps, 100, 50), 0.453027, 0, 1e-6);
  CHECK_CLOSE(icl_fire_u(c, thr, eps, 511, 0), 0.999515, 0, 1e-6);
  CHECK_CLOSE(icl_fire_u(c, thr, eps, 1000, 0), 1.000000, 0, 1e-6);
  CHECK_CLOSE(icl_fire_u(c, thr, eps, 4095, 4000), 0.390764, 0, 1e-6);
  CHECK(icl_fire_u(c, thr, eps, 0, 0) == 0);
}

/* which scale each variant uses at a given length (L_train 102, factor 8) */
static void test_rotation_per_length(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_pe_cfg c = icl_pe_defaults();
  float inv[16], ref[16];
  double m, s;
  icl_rope_default_inv_freq(1e4, 32, ref);
  CHECK_OK(ctx, icl_pe_from_name(ctx, "dynamic-yarn", &c));
  CHECK(c.rot == ICL_ROT_DYNAMIC_YARN && c.bias == ICL_BIAS_NONE);
  CHECK(icl_pe_rotation(&c, 32, 102, inv, &m, &s) && s == 1 && m == 1 && inv[5] == ref[5]);
  icl_pe_rotation(&c, 32, 204, inv, &m, &s);
  CHECK(s == 2.0);
  CHECK_CLOSE(m, 0.1 * log(2.0) + 1, 1e-12, 0);
  icl_pe_rotation(&c, 32, 816, inv, &m, &s);
  CHECK(s == 8.0);
  c.dyn_yarn = ICL_DYN_YARN_CODE; /* plain RoPE up to 8 x 102 = 816 tokens */
  icl_pe_rotation(&c, 32, 816, inv, &m, &s);
  CHECK(s == 1.0 && m == 1.0 && inv[7] == ref[7]);
  icl_pe_rotation(&c, 32, 1020, inv, &m, &s);
  CHECK(s == 10.0);
  CHECK_OK(ctx, icl_pe_from_name(ctx, "dynamic", &c));
  icl_pe_rotation(&c, 32, 102, inv, &m, &s);
  CHECK(s == 1.0 && inv[3] == ref[3]);
  icl_pe_rotation(&c, 32, 204, inv, &m, &s);
  CHECK(s == 9.0); /* HF: f L / Lmax - (f - 1) = 16 - 7 */
  float nb[16];
  icl_rope_default_inv_freq(icl_rope_ntk_base(1e4, 32, 8, 204, 102), 32, nb);
  CHECK(inv[3] == nb[3]);
  CHECK_OK(ctx, icl_pe_from_name(ctx, "linear", &c));
  icl_pe_rotation(&c, 32, 50, inv, &m, &s);
  CHECK_CLOSE(inv[2], ref[2] / 8, 1e-7, 0);
  CHECK_OK(ctx, icl_pe_from_name(ctx, "yarn", &c));
  icl_pe_rotation(&c, 32, 50, inv, &m, &s);
  CHECK(s == 8);
  CHECK_CLOSE(m, 0.1 * log(8.0) + 1, 1e-12, 0);
  CHECK_OK(ctx, icl_pe_from_name(ctx, "nope", &c));
  CHECK(!icl_pe_rotation(&c, 32, 50, inv, &m, &s));
  CHECK(icl_pe_from_name(ctx, "rotary", &c) == ICL_EINVAL);
  CHECK(strstr(icl_last_error(ctx), "dynamic-yarn") != NULL);
  icl_ctx_free(ctx);
}

/* FIRE kernels: forward against the formula; backward by finite differences
 * of L = sum_h,i,j G_h(i,j) bias_h(i,j) with respect to every parameter */
typedef struct fire_probe {
  icl_ctx *ctx;
  float *theta; /* W1 [W], b1 [W], W2 [H*W], b2 [H], c, Lmult */
  const float *G;
  float *bias;
  int64_t W, H, T;
  float L_init, mult;
} fire_probe;

/* the loss in double from the closed form (no float rounding, so the
 * finite differences can use a step small enough to miss the ReLU kinks) */
static int fire_eval(icl_ctx *ctx, void *ud, double *out) {
  (void)ctx;
  fire_probe *p = ud;
  const float *t = p->theta;
  int64_t W = p->W, H = p->H, T = p->T;
  double c = t[2 * W + H * W + H], thr = fabs((double)t[2 * W + H * W + H + 1] * p->L_init), s = 0;
  for (int64_t i = 0; i < T; i++)
    for (int64_t j = 0; j <= i; j++) {
      double u = icl_fire_u(c, thr, 1e-6, (double)i, (double)j);
      for (int64_t h = 0; h < H; h++) {
        double acc = t[2 * W + H * W + h];
        for (int64_t k = 0; k < W; k++) {
          double a = t[k] * u + t[W + k];
          acc += t[2 * W + h * W + k] * (a > 0 ? a : 0);
        }
        s += (double)p->G[(h * T + i) * T + j] * p->mult * acc;
      }
    }
  *out = s;
  return 0;
}

static void fire_case(float L_init, float c, float Lmult, float mult) {
  icl_ctx *ctx = icl_t_ctx();
  const int64_t W = 6, H = 3, T = 14, n = 2 * W + H * W + H + 2;
  float theta[64], grad[64] = {0}, *G = malloc(sizeof(float) * H * T * T), *bias = malloc(sizeof(float) * H * T * T);
  double *part = malloc(sizeof(double) * (size_t)(T * (H * W + H + 2 * W + 2)));
  for (int64_t k = 0; k < n; k++) theta[k] = (float)(0.7 * sin(1.3 * k + 0.4));
  theta[2 * W + H * W + H] = c;
  theta[2 * W + H * W + H + 1] = Lmult;
  for (int64_t q = 0; q < H * T * T; q++) G[q] = (float)cos(0.37 * q);
  fire_probe p = {ctx, theta, G, bias, W, H, T, L_init, mult};
  CHECK_OK(ctx, icl_cpu_attn_kernels.fire_fwd(ctx, bias, theta, theta + W, theta + 2 * W, theta + 2 * W + H * W,
                                             theta + 2 * W + H * W + H, theta + 2 * W + H * W + H + 1, L_init, 1e-6f,
                                             W, H, T, mult));
  /* forward against the closed form at one (h, i, j) */
  {
    int64_t h = 1, i = 11, j = 4;
    double u = icl_fire_u(c, fabs(Lmult * L_init), 1e-6, (double)i, (double)j), acc = theta[2 * W + H * W + h];
    for (int64_t k = 0; k < W; k++) {
      double a = theta[k] * u + theta[W + k];
      acc += theta[2 * W + h * W + k] * (a > 0 ? a : 0);
    }
    CHECK_CLOSE(bias[(h * T + i) * T + j], mult * acc, 1e-5, 1e-6);
  }
  const float *t = theta;
  float *g = grad;
  CHECK_OK(ctx, icl_cpu_attn_kernels.fire_bwd(ctx, G, t, t + W, t + 2 * W, t + 2 * W + H * W + H,
                                             t + 2 * W + H * W + H + 1, L_init, 1e-6f, W, H, T, mult, g, g + W,
                                             g + 2 * W, g + 2 * W + H * W, g + 2 * W + H * W + H,
                                             g + 2 * W + H * W + H + 1, part));
  icl_gradcheck_opts o = icl_gradcheck_defaults();
  o.eps = 1e-4; /* double-precision loss: a small step misses the ReLU kinks */
  icl_gradcheck_report r;
  CHECK_OK(ctx, icl_gradcheck(ctx, theta, grad, n, fire_eval, &p, &o, &r));
  CHECK_MSG(r.max_rel < 1e-4, "FIRE grads (L_init %g, c %g): max rel %.3g at %lld (num %.6g, ana %.6g)",
            (double)L_init, (double)c, r.max_rel, (long long)r.worst, r.worst_numeric, r.worst_analytic);
  /* with a small threshold dL_multiplier must be non-zero (the max(i, L) branch) */
  if (L_init * fabsf(Lmult) < (float)(T - 1)) CHECK(fabsf(grad[n - 1]) > 1e-4f);
  printf("  fire L_init %g c %g mult %g: max rel %.2e over %lld params (dc %.4g, dLmult %.4g)\n", (double)L_init,
         (double)c, (double)mult, r.max_rel, (long long)r.checked, (double)grad[n - 2], (double)grad[n - 1]);
  free(G);
  free(bias);
  free(part);
  icl_ctx_free(ctx);
}

static void test_fire_grads(void) {
  fire_case(512, 0.1f, 1.0f, 1.0f);        /* training regime: constant normaliser */
  fire_case(6.3f, 0.1f, 1.0f, 1.0f);       /* threshold inside the sequence */
  fire_case(6.3f, -0.3f, -0.8f, 0.35f);    /* negative c, negative multiplier, convention B scale */
}

static void test_alibi_bias_kernel(void) {
  icl_ctx *ctx = icl_t_ctx();
  float sl[3], bias[3 * 5 * 5];
  icl_alibi_slopes(3, sl);
  CHECK_OK(ctx, icl_cpu_attn_kernels.alibi_bias(ctx, bias, sl, 3, 5));
  CHECK(bias[(2 * 5 + 4) * 5 + 1] == -sl[2] * 3);
  CHECK(bias[(1 * 5 + 3) * 5 + 3] == 0);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_alibi_slopes);
  ICL_RUN(test_yarn_vectors);
  ICL_RUN(test_ntk_vectors);
  ICL_RUN(test_fire_u);
  ICL_RUN(test_rotation_per_length);
  ICL_RUN(test_fire_grads);
  ICL_RUN(test_alibi_bias_kernel);
  return icl_t_finish("test_pe");
}
