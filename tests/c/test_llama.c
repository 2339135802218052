/* The Llama backbone with every position encoding: finite-difference checks
 * of every parameter gradient at a length past the training length,
 * causality, training vs inference forward, attention capture, parameter
 * names and counts, inference memory at B = 64, T = 816, and a step that
 * allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/rng.h"
#include "cpu/cpu_kernels.h"
#include "harness.h"
#include "models/llama.h"
#include "models/llama_internal.h"
#include "nn/gradcheck.h"
#include "ops/ops.h"

typedef struct enc_case {
  const char *name; /* published rope_scaling.type */
  int heads;
  int64_t hidden;
  int code_reading;  /* dynamic-yarn: the published code's reading */
  int fire_before;   /* FIRE convention B */
  float fire_L_init; /* 0: default 512 */
} enc_case;

static const enc_case cases[] = {
    {"rope", 2, 16, 0, 0, 0}, {"linear", 4, 16, 0, 0, 0},       {"dynamic", 2, 16, 0, 0, 0},
    {"yarn", 4, 16, 0, 0, 0}, {"dynamic-yarn", 2, 16, 0, 0, 0}, {"dynamic-yarn", 4, 16, 1, 0, 0},
    {"nope", 2, 16, 0, 0, 0}, {"alibi", 3, 12, 0, 0, 0},        {"alibi", 4, 16, 0, 0, 0},
    {"fire", 2, 16, 0, 0, 0}, {"fire", 4, 16, 0, 1, 0},         {"fire", 2, 16, 0, 0, 7.5f},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static icl_model *build(icl_ctx *ctx, const enc_case *c, uint64_t seed) {
  icl_llama_cfg cfg = icl_llama_defaults();
  cfg.n_dims = 3;
  cfg.hidden = c->hidden;
  cfg.layers = 2;
  cfg.heads = c->heads;
  cfg.init_std = 0.3f; /* large enough that attention is far from uniform */
  if (icl_pe_from_name(ctx, c->name, &cfg.pe)) return NULL;
  cfg.pe.L_train = 8; /* tokens: lengths of 20 tokens are past it (and past factor x L_train) */
  cfg.pe.factor = 2;
  cfg.pe.dyn_yarn = c->code_reading ? ICL_DYN_YARN_CODE : ICL_DYN_YARN_PAPER;
  cfg.pe.fire_scale_before = c->fire_before;
  cfg.pe.fire_width = 8;
  if (c->fire_L_init > 0) cfg.pe.fire_L_init = c->fire_L_init;
  return icl_llama_new(ctx, &cfg, ICL_CPU, seed);
}

static const char *case_label(const enc_case *c, char *buf, size_t n) {
  snprintf(buf, n, "%s%s%s%s (H=%d)", c->name, c->code_reading ? "/code" : "", c->fire_before ? "/B" : "",
           c->fire_L_init > 0 ? "/small-L" : "", c->heads);
  return buf;
}

typedef struct probe {
  icl_model *m;
  const float *xs, *ys;
  int64_t B, N;
} probe;

static int eval_mse(icl_ctx *ctx, void *ud, double *out) {
  probe *p = ud;
  float pred[256];
  if (icl_model_forward(ctx, p->m, p->xs, p->ys, p->B, p->N, pred, 0)) return ctx->errcode;
  double s = 0;
  for (int64_t i = 0; i < p->B * p->N; i++) s += ((double)pred[i] - p->ys[i]) * ((double)pred[i] - p->ys[i]);
  *out = s / (double)(p->B * p->N);
  return 0;
}

static void randn(float *x, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; i++) {
    icl_philox_out r = icl_philox(seed, 3, (uint64_t)i);
    x[i] = icl_normal_from(r.v[0], r.v[1]);
  }
}

/* FIRE's ReLU has kinks at W1 u + b1 = 0; finite differences across a kink
 * measure the average slope, not the derivative. Choose |b1| > |W1| so that
 * no unit changes state for u in [0, 1] (half of them active). */
static void keep_relu_off_kinks(icl_model *m) {
  for (int k = 0; k < m->params.n; k++) {
    const icl_param_info *e = &m->params.info[k];
    float *v = icl_params_data(&m->params, k);
    if (strstr(e->name, "fire.mlp.0.weight"))
      for (int64_t q = 0; q < e->numel; q++) v[q] = (q % 3 ? 0.4f : -0.3f) + 0.02f * (float)q;
    if (strstr(e->name, "fire.mlp.0.bias"))
      for (int64_t q = 0; q < e->numel; q++) v[q] = (q % 2 ? 1.0f : -1.0f) * (0.8f + 0.05f * (float)q);
    if (strstr(e->name, "fire.mlp.2.weight")) /* a strong bias: gradients well above float32 noise */
      for (int64_t q = 0; q < e->numel; q++) v[q] = 1.5f * sinf(1.7f * (float)q + 0.3f);
  }
}

static void test_gradcheck_all_encodings(void) {
  const int64_t B = 2, N = 10; /* T = 20 tokens > L_train = 8 and > factor x L_train = 16 */
  float xs[2 * 10 * 3], ys[2 * 10];
  randn(xs, B * N * 3, 11);
  randn(ys, B * N, 12);
  for (int ci = 0; ci < NCASES; ci++) {
    icl_ctx *ctx = icl_t_ctx();
    char lab[96];
    case_label(&cases[ci], lab, sizeof lab);
    icl_model *m = build(ctx, &cases[ci], 5 + (uint64_t)ci);
    CHECK_MSG(m != NULL, "%s: %s", lab, icl_last_error(ctx));
    if (!m) {
      icl_ctx_free(ctx);
      continue;
    }
    if (!strcmp(cases[ci].name, "fire")) keep_relu_off_kinks(m);
    float loss;
    CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, B, N, ICL_LOSS_MSE, &loss));
    probe p = {m, xs, ys, B, N};
    double want = 0;
    CHECK_OK(ctx, eval_mse(ctx, &p, &want));
    CHECK_CLOSE(loss, want, 1e-5, 1e-7); /* training and inference forwards agree */
    int64_t n = m->params.total;
    float *g = malloc(sizeof(float) * (size_t)n);
    memcpy(g, icl_tensor_data(m->params.grad), sizeof(float) * (size_t)n);
    icl_gradcheck_opts o = icl_gradcheck_defaults();
    o.max_checks = 400;
    o.eps = 1e-2;
    icl_gradcheck_report r;
    CHECK_OK(ctx, icl_gradcheck(ctx, icl_tensor_data(m->params.value), g, n, eval_mse, &p, &o, &r));
    const char *worst = "?";
    for (int k = 0; k < m->params.n; k++)
      if (r.worst >= m->params.info[k].offset && r.worst < m->params.info[k].offset + m->params.info[k].numel)
        worst = m->params.info[k].name;
    /* float32 noise puts single small entries near 1e-3; a wrong formula shows up as O(1) */
    CHECK_MSG(r.max_rel < 1e-2 && r.norm_rel < 1e-3, "%s: max rel %.3g at %s (num %.6g ana %.6g), norm rel %.3g", lab,
              r.max_rel, worst, r.worst_numeric, r.worst_analytic, r.norm_rel);
    printf("  %-28s all params: max rel %.2e, norm rel %.2e over %lld entries (worst %s)\n", lab, r.max_rel, r.norm_rel,
           (long long)r.checked, worst);
    /* the encoding's own parameters, every entry: each layer's FIRE block
     * (mlp.0, mlp.2, c, L_multiplier are adjacent) as one vector, so entries
     * with an exactly zero gradient (mlp.2.bias shifts a whole softmax row)
     * are judged on the block's scale */
    if (!strcmp(cases[ci].name, "fire")) {
      for (int64_t l = 0; l < 2; l++) {
        char n0[96], n1[96];
        snprintf(n0, sizeof n0, "layers.%lld.self_attn.fire.mlp.0.weight", (long long)l);
        snprintf(n1, sizeof n1, "layers.%lld.self_attn.fire.L_multiplier", (long long)l);
        const icl_param_info *a = &m->params.info[icl_params_find(&m->params, n0)];
        const icl_param_info *z = &m->params.info[icl_params_find(&m->params, n1)];
        int64_t len = z->offset + 1 - a->offset;
        icl_gradcheck_opts of = icl_gradcheck_defaults();
        of.eps = 5e-2; /* smooth here (no unit changes state), so a large step: less float32 noise */
        of.max_checks = 0;
        icl_gradcheck_report rf;
        double crel = 0;
        CHECK_OK(ctx, icl_gradcheck(ctx, (float *)icl_tensor_data(m->params.value) + a->offset, g + a->offset, len,
                                    eval_mse, &p, &of, &rf));
        /* entries whose true gradient is 0 (b1 of units that never switch, b2) carry pure float32 noise, so
         * the block is judged by its norm; c and L_multiplier are then checked one by one */
        CHECK_MSG(rf.norm_rel < 1e-2, "%s: layer %lld FIRE block norm rel %.3g (worst +%lld: num %.6g ana %.6g)", lab,
                  (long long)l, rf.norm_rel, (long long)rf.worst, rf.worst_numeric, rf.worst_analytic);
        for (int64_t off = z->offset - 16; off <= z->offset; off += 16) {
          icl_gradcheck_report rs;
          CHECK_OK(ctx, icl_gradcheck(ctx, (float *)icl_tensor_data(m->params.value) + off, g + off, 1, eval_mse, &p,
                                      &of, &rs));
          CHECK_MSG(rs.max_rel < 1e-2 || rs.max_abs < 2e-5, "%s: layer %lld %s rel %.3g (num %.6g ana %.6g)", lab,
                    (long long)l, off == z->offset ? "L_multiplier" : "c", rs.max_rel, rs.worst_numeric,
                    rs.worst_analytic);
          if (rs.max_rel > crel) crel = rs.max_rel;
        }
        if (cases[ci].fire_L_init > 0)
          CHECK_MSG(fabsf(g[z->offset]) > 1e-7f, "%s: layer %lld L_multiplier gradient is zero", lab, (long long)l);
        printf(
            "  %-28s layer %lld FIRE block (%lld entries): norm rel %.2e; c, L_multiplier: max rel %.2e "
            "(dc %.3g, dL %.3g)\n",
            lab, (long long)l, (long long)rf.checked, rf.norm_rel, crel, (double)g[z->offset - 16],
            (double)g[z->offset]);
      }
    }
    free(g);
    icl_model_free(ctx, m);
    CHECK(ctx->cpu_bytes == 0);
    icl_ctx_free(ctx);
  }
}

/* changing examples after i never changes the prediction at i */
static void test_causality(void) {
  const int64_t B = 2, N = 9, D = 3;
  float xs[2 * 9 * 3], ys[2 * 9], xs2[2 * 9 * 3], ys2[2 * 9], p1[18], p2[18];
  randn(xs, B * N * D, 21);
  randn(ys, B * N, 22);
  for (int ci = 0; ci < NCASES; ci++) {
    icl_ctx *ctx = icl_t_ctx();
    char lab[96];
    case_label(&cases[ci], lab, sizeof lab);
    icl_model *m = build(ctx, &cases[ci], 3);
    if (!m) continue;
    CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, p1, 0));
    int worst = 0;
    for (int64_t i = 0; i < N - 1; i++) {
      memcpy(xs2, xs, sizeof xs);
      memcpy(ys2, ys, sizeof ys);
      for (int64_t b = 0; b < B; b++)
        for (int64_t k = i + 1; k < N; k++) {
          ys2[b * N + k] += 1.5f;
          for (int64_t c = 0; c < D; c++) xs2[(b * N + k) * D + c] *= -2.0f;
        }
      /* y_i too: the prediction at i sits on the x_i token, before y_i */
      for (int64_t b = 0; b < B; b++) ys2[b * N + i] -= 3.0f;
      CHECK_OK(ctx, icl_model_forward(ctx, m, xs2, ys2, B, N, p2, i % 2));
      for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k <= i; k++)
          if (p1[b * N + k] != p2[b * N + k]) worst = 1;
      int changed = 0;
      for (int64_t b = 0; b < B; b++) changed |= p1[b * N + i + 1] != p2[b * N + i + 1];
      CHECK_MSG(changed, "%s: prediction %lld did not react to its own example", lab, (long long)(i + 1));
    }
    CHECK_MSG(!worst, "%s: a prediction changed when later examples changed", lab);
    icl_model_free(ctx, m);
    icl_ctx_free(ctx);
  }
}

/* One training step with the environment variable var set to value: its
 * loss, a malloc'd copy of every gradient, and a training forward's
 * predictions. */
static float *step_with_env(icl_ctx *ctx, icl_model *m, const char *var, const char *value, const float *xs,
                            const float *ys, int64_t B, int64_t N, float *loss, float *pred) {
  setenv(var, value, 1);
  float *g = malloc(sizeof(float) * (size_t)m->params.total);
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, B, N, ICL_LOSS_MSE, loss));
  memcpy(g, icl_params_grad(&m->params, 0), sizeof(float) * (size_t)m->params.total);
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred, 1));
  unsetenv(var);
  return g;
}

/* The last layer at the x rows only (llama_trim) against the full layer:
 * the same loss and training predictions (bit for bit where the CPU GEMM is
 * row-exact) and every parameter gradient, for every encoding. */
static void test_trim_matches_full(void) {
  const int64_t B = 3, N = 10, D = 3;
  float xs[3 * 10 * 3], ys[3 * 10], pt[30], pf[30];
  randn(xs, B * N * D, 41);
  randn(ys, B * N, 42);
  for (int ci = 0; ci < NCASES; ci++) {
    icl_ctx *ctx = icl_t_ctx();
    char lab[96];
    case_label(&cases[ci], lab, sizeof lab);
    icl_model *m = build(ctx, &cases[ci], 5);
    if (!m) continue;
    const int64_t total = m->params.total;
    float loss[2], *g[2] = {step_with_env(ctx, m, "ICL_LLAMA_TRIM", "1", xs, ys, B, N, &loss[0], pt),
                            step_with_env(ctx, m, "ICL_LLAMA_TRIM", "0", xs, ys, B, N, &loss[1], pf)};
    if (icl_cpu_gemm_row_exact(0, cases[ci].hidden, cases[ci].hidden)) {
      CHECK_MSG(loss[0] == loss[1], "%s: loss %.9g trimmed vs %.9g full", lab, loss[0], loss[1]);
      CHECK_MSG(memcmp(pt, pf, sizeof pt) == 0, "%s: trimmed training predictions differ", lab);
    } else { /* OpenBLAS blocks by the row count (a build without AVX2) */
      CHECK_CLOSE(loss[0], loss[1], 1e-5, 0);
      for (int i = 0; i < 30; i++) CHECK_CLOSE(pt[i], pf[i], 1e-5, 1e-6);
    }
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < total; i++) {
      worst = fmax(worst, fabs((double)g[0][i] - g[1][i]));
      scale = fmax(scale, fabs((double)g[1][i]));
    }
    /* only the summation blocking of the weight-gradient GEMMs differs */
    CHECK_MSG(scale > 0 && worst <= 1e-5 * scale, "%s: gradients differ by %.3g (max %.3g)", lab, worst, scale);
    free(g[0]);
    free(g[1]);
    icl_model_free(ctx, m);
    icl_ctx_free(ctx);
  }
}

/* One step of model m with env var at on_value, then off_value: the loss,
 * the training predictions (npred) and every gradient must be the same bits,
 * except the parameters whose names contain one of the strings in rounded
 * (NULL-terminated; summed in another order by the path under test), which
 * must agree within 1e-5 of their largest entry. */
static void check_path_same_bits(icl_ctx *ctx, icl_model *m, const char *lab, const char *var, const char *on_value,
                                 const char *off_value, const char *const *rounded, const float *xs, const float *ys,
                                 int64_t B, int64_t N) {
  float *p[2] = {malloc(sizeof(float) * B * N), malloc(sizeof(float) * B * N)};
  float loss[2], *g[2] = {step_with_env(ctx, m, var, on_value, xs, ys, B, N, &loss[0], p[0]),
                          step_with_env(ctx, m, var, off_value, xs, ys, B, N, &loss[1], p[1])};
  CHECK_MSG(loss[0] == loss[1], "%s: loss %.9g (%s=%s) vs %.9g (%s)", lab, loss[0], var, on_value, loss[1], off_value);
  double worst = 0, scale = 0;
  int same_elsewhere = 1;
  for (int pi = 0; pi < m->params.n; pi++) {
    const icl_param_info *in = &m->params.info[pi];
    int r = 0;
    for (const char *const *q = rounded; *q; q++) r |= strstr(in->name, *q) != NULL;
    for (int64_t i = in->offset; i < in->offset + in->numel; i++) {
      if (r) {
        worst = fmax(worst, fabs((double)g[0][i] - g[1][i]));
        scale = fmax(scale, fabs((double)g[1][i]));
      } else {
        same_elsewhere &= g[0][i] == g[1][i];
      }
    }
  }
  CHECK_MSG(scale > 0 && worst <= 1e-5 * scale, "%s: %s gradients differ by %.3g (max %.3g)", lab, rounded[0], worst,
            scale);
  CHECK_MSG(same_elsewhere, "%s: gradients outside %s... differ", lab, rounded[0]);
  CHECK_MSG(memcmp(p[0], p[1], sizeof(float) * B * N) == 0, "%s: predictions differ", lab);
  for (int k = 0; k < 2; k++) {
    free(g[k]);
    free(p[k]);
  }
}

/* The fused CPU MLP (cpu_llama_mlp.c, with the norms riding along) against
 * the unfused passes: the same bits in the loss, the training predictions
 * and every gradient but the MLP weights' and the post-attention norm's
 * (summed in row-chunk partials), those within rounding. */
static void test_fused_mlp_same_bits(void) {
  const int64_t B = 3, N = 40, D = 3; /* 240 rows: several chunks and a ragged one */
  float *xs = malloc(sizeof(float) * B * N * D), *ys = malloc(sizeof(float) * B * N);
  randn(xs, B * N * D, 51);
  randn(ys, B * N, 52);
  const char *const rounded[] = {".mlp.", ".post_attention_layernorm.", NULL};
  for (int ci = 0; ci < NCASES; ci += 4) {
    icl_ctx *ctx = icl_t_ctx();
    char lab[96];
    case_label(&cases[ci], lab, sizeof lab);
    icl_model *m = build(ctx, &cases[ci], 6);
    if (m) check_path_same_bits(ctx, m, lab, "ICL_CPU_MLP", "fused", "unfused", rounded, xs, ys, B, N);
    icl_model_free(ctx, m);
    icl_ctx_free(ctx);
  }
  free(xs);
  free(ys);
}

/* The CPU attention with the qkv and o projections (and the norms on either
 * side) fused in (pe/cpu_attn_proj.c) against the projections as their own
 * GEMMs: the same bits in the loss, the training predictions and every
 * gradient but those of Wqkv, Wo, the input norm and FIRE (the bias gradient:
 * summed over batch elements in fixed partials), those within rounding. B = 9 spreads batch elements unevenly over the 8
 * partials; every encoding, the last layer trimmed (qstep 2) as in training. */
static void test_attn_proj_same_bits(void) {
  const int64_t B = 9, N = 12, D = 3;
  float *xs = malloc(sizeof(float) * B * N * D), *ys = malloc(sizeof(float) * B * N);
  randn(xs, B * N * D, 61);
  randn(ys, B * N, 62);
  const char *const rounded[] = {".q_proj.", ".k_proj.", ".v_proj.", ".o_proj.", ".input_layernorm.", ".fire.", NULL};
  for (int ci = 0; ci < NCASES; ci++) {
    icl_ctx *ctx = icl_t_ctx();
    char lab[96];
    case_label(&cases[ci], lab, sizeof lab);
    icl_model *m = build(ctx, &cases[ci], 7);
    /* a build without the AVX2 kernel has no fused path to compare */
    if (m && icl_llama_attn_proj(m, B))
      check_path_same_bits(ctx, m, lab, "ICL_CPU_ATTN_PROJ", "1", "0", rounded, xs, ys, B, N);
    icl_model_free(ctx, m);
    icl_ctx_free(ctx);
  }
  free(xs);
  free(ys);
}

static void test_capture(void) {
  icl_ctx *ctx = icl_t_ctx();
  enc_case c = {"alibi", 4, 16, 0, 0, 0};
  icl_model *m = build(ctx, &c, 9);
  const int64_t B = 2, N = 7, T = 14, H = 4;
  float xs[2 * 7 * 3], ys[2 * 7], pred[14], pred2[14];
  randn(xs, B * N * 3, 31);
  randn(ys, B * N, 32);
  float *all = malloc(sizeof(float) * B * H * T * T), *last = malloc(sizeof(float) * B * H * T);
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred, 0));
  CHECK_OK(ctx, icl_llama_set_capture(ctx, m, 1, all, -1));
  CHECK_OK(ctx, icl_llama_set_capture(ctx, m, 0, last, (int)T - 2)); /* the final x token's row */
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred2, 0));
  CHECK(memcmp(pred, pred2, sizeof pred) == 0);
  double worst = 0;
  for (int64_t r = 0; r < B * H * T; r++) {
    int64_t i = r % T;
    double s = 0;
    for (int64_t j = 0; j < T; j++) {
      float p = all[r * T + j];
      if (j > i) CHECK(p == 0);
      s += p;
    }
    worst = fmax(worst, fabs(s - 1));
  }
  CHECK(worst < 1e-5);
  /* layer 0's row T-2, against a full capture of layer 0 */
  icl_llama_clear_capture(m);
  CHECK_OK(ctx, icl_llama_set_capture(ctx, m, 0, all, -1));
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred2, 1)); /* training mode captures too */
  for (int64_t bh = 0; bh < B * H; bh++)
    for (int64_t j = 0; j < T; j++) CHECK(last[bh * T + j] == all[(bh * T + T - 2) * T + j]);
  icl_llama_clear_capture(m);
  CHECK(icl_llama_set_capture(ctx, m, 2, all, -1) == ICL_ERANGE);
  free(all);
  free(last);
  icl_model_free(ctx, m);
  icl_ctx_free(ctx);
}

static void test_names_and_counts(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_llama_cfg cfg = icl_llama_defaults(); /* standard: 16 layers, hidden 256, 8 heads, D = 20 */
  icl_model *m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  CHECK(m != NULL);
  CHECK(icl_params_count(&m->params) == 16791040);
  CHECK(icl_llama_published_params(m) == 24983040);
  const char *want[] = {"read_in.weight",
                        "layers.0.self_attn.q_proj.weight",
                        "layers.0.self_attn.k_proj.weight",
                        "layers.0.self_attn.v_proj.weight",
                        "layers.0.self_attn.o_proj.weight",
                        "layers.0.mlp.gate_proj.weight",
                        "layers.0.mlp.up_proj.weight",
                        "layers.0.mlp.down_proj.weight",
                        "layers.0.input_layernorm.weight",
                        "layers.0.post_attention_layernorm.weight"};
  for (int k = 0; k < 10; k++) CHECK(strcmp(m->params.info[k].name, want[k]) == 0);
  CHECK(icl_params_find(&m->params, "norm.weight") >= 0 && icl_params_find(&m->params, "read_out.weight") >= 0);
  /* HF init: Linear N(0, 0.02^2), norms 1 */
  int q = icl_params_find(&m->params, "layers.3.self_attn.q_proj.weight");
  const float *w = icl_params_data(&m->params, q);
  double s2 = 0;
  for (int i = 0; i < 65536; i++) s2 += (double)w[i] * w[i];
  CHECK_CLOSE(sqrt(s2 / 65536), 0.02, 0.02, 0);
  CHECK(icl_params_data(&m->params, icl_params_find(&m->params, "layers.5.input_layernorm.weight"))[7] == 1.0f);
  /* inference at 8x the training length fits comfortably */
  int64_t ws = m->ops->workspace(m, 64, 816, 0);
  printf("  standard model, B=64 T=816 inference workspace: %.0f MB (training at T=102: %.0f MB)\n", ws * 4.0 / 1e6,
         m->ops->workspace(m, 64, 102, 1) * 4.0 / 1e6);
  CHECK(ws * 4 < 1500000000LL);
  icl_model_free(ctx, m);
  cfg.hidden = 256, cfg.layers = 4, cfg.heads = 4;
  m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  CHECK(llabs(icl_llama_published_params(m) - 12390000) < 10000);
  icl_model_free(ctx, m);
  cfg.hidden = 512, cfg.layers = 16, cfg.heads = 8;
  m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  CHECK(llabs(icl_llama_published_params(m) - 83520000) < 10000);
  icl_model_free(ctx, m);
  /* FIRE names and shapes */
  cfg = icl_llama_defaults();
  cfg.layers = 2;
  icl_pe_from_name(ctx, "fire", &cfg.pe);
  m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  int i1 = icl_params_find(&m->params, "layers.1.self_attn.fire.mlp.2.weight");
  CHECK(i1 >= 0 && m->params.info[i1].shape[0] == 8 && m->params.info[i1].shape[1] == 32);
  int ic = icl_params_find(&m->params, "layers.0.self_attn.fire.c");
  CHECK(ic >= 0 && icl_params_data(&m->params, ic)[0] == 0.1f);
  int iw = icl_params_find(&m->params, "layers.0.self_attn.fire.mlp.0.weight");
  double mx = 0;
  for (int k = 0; k < 32; k++) mx = fmax(mx, fabs(icl_params_data(&m->params, iw)[k]));
  CHECK(mx > 0.5 && mx <= 1.0); /* U(-1, 1) */
  icl_model_free(ctx, m);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

/* a 1-layer standard-width model really runs at B = 64, T = 816, and a
 * training step at a fixed shape does not grow or move anything */
static void test_long_inference_and_no_alloc(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_llama_cfg cfg = icl_llama_defaults();
  cfg.layers = 1;
  icl_pe_from_name(ctx, "dynamic-yarn", &cfg.pe);
  icl_model *m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  const int64_t B = 64, N = 408;
  float *xs = malloc(sizeof(float) * B * N * 20), *ys = malloc(sizeof(float) * B * N),
        *pred = malloc(sizeof(float) * B * N);
  randn(xs, B * N * 20, 41);
  randn(ys, B * N, 42);
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred, 0));
  int finite = 1;
  for (int64_t i = 0; i < B * N; i++) finite &= isfinite(pred[i]) != 0;
  CHECK(finite);
  double sc, ms;
  icl_llama_last_rotation(m, &sc, &ms);
  CHECK(sc == 8.0);
  icl_model_free(ctx, m);
  cfg.layers = 2;
  cfg.hidden = 64;
  cfg.heads = 2;
  icl_pe_from_name(ctx, "fire", &cfg.pe);
  m = icl_llama_new(ctx, &cfg, ICL_CPU, 1);
  float loss;
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, 8, 51, ICL_LOSS_MSE, &loss));
  size_t bytes = ctx->cpu_bytes;
  void *arena = m->arena->storage->data;
  for (int k = 0; k < 3; k++) CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, 8, 51, ICL_LOSS_MSE, &loss));
  CHECK(ctx->cpu_bytes == bytes && m->arena->storage->data == arena);
  icl_model_free(ctx, m);
  free(xs);
  free(ys);
  free(pred);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_names_and_counts);
  ICL_RUN(test_gradcheck_all_encodings);
  ICL_RUN(test_causality);
  ICL_RUN(test_trim_matches_full);
  ICL_RUN(test_fused_mlp_same_bits);
  ICL_RUN(test_attn_proj_same_bits);
  ICL_RUN(test_capture);
  ICL_RUN(test_long_inference_and_no_alloc);
  return icl_t_finish("test_llama");
}
