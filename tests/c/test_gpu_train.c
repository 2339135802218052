/* The captured training step (models/train_step.h) on the GPU against the
 * same step on the CPU, with a stand-in backbone made of the nn kernels and
 * GEMMs only (pre-norm SwiGLU MLP blocks, a final RMSNorm), so that the step,
 * its CUDA graphs, the device step counter and the loss ring are checked
 * whether or not the attention and Mamba kernels exist
 * (test_gpu_models.c trains the real models).
 *
 * Checked: 40 steps over a curriculum (three (N, d_t) keys, a strict/TF32
 * switch, an evaluation at 8x the length that moves the arena) give the
 * CPU's losses and parameters within tolerance; the GPU with graphs equals
 * the GPU without graphs; replays allocate nothing; the batch of a step is
 * the CPU sampler's for stream = step; the counts of eager, captured and
 * replayed steps are the design's.
 *
 * Tolerances: losses max rel 1e-4 (strict) / 2e-2 (TF32), parameters
 * normwise 2e-3 / 2e-2 (see test_gpu_models.c for why); graphs vs no graphs
 * normwise 1e-5 (expected bit-identical: the same kernels with the same
 * arguments; printed). Exits 77 (skipped) without a CUDA device. */
#include <stdlib.h>

#include "gpu_pair.h"
#include "models/train_step.h"

#define D(t) ((float *)icl_tensor_data(t))

/* ---- the stand-in backbone ----------------------------------------------------------- */

enum { LAYERS = 3, HID = 48, FF = 96 };

typedef struct mlp {
  int norm[LAYERS], w1[LAYERS], w2[LAYERS], fnorm;
} mlp;

/* per layer: h [BT d] | n [BT d] | r [BT] | gu [BT 2F] | act [BT F]; then hL, rF; scratch dgu | dact | dn */
static int64_t per_layer(int64_t bt) { return bt * (2 * HID + 1 + 3 * FF); }
static int64_t mlp_ws(const icl_model *m, int64_t B, int64_t T, int train) {
  (void)m;
  (void)train;
  int64_t bt = B * T;
  return LAYERS * per_layer(bt) + bt * (HID + 1) + bt * (3 * FF + HID);
}

#define P(m, i) icl_params_data(&(m)->params, (i))
#define GR(m, i) icl_params_grad(&(m)->params, (i))

static int mlp_fwd(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws, int train) {
  (void)train;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  mlp *s = m->backbone;
  int64_t bt = B * T, pl = per_layer(bt);
  int rc = be->memcpy(ctx, ws, m->device, x, m->device, sizeof(float) * (size_t)(bt * HID));
  for (int l = 0; l < LAYERS && !rc; l++) {
    float *h = ws + l * pl, *n = h + bt * HID, *r = n + bt * HID, *gu = r + bt, *act = gu + bt * 2 * FF;
    float *next = l + 1 < LAYERS ? ws + (l + 1) * pl : ws + LAYERS * pl;
    rc = be->nn->rmsnorm_fwd(ctx, n, r, h, P(m, s->norm[l]), bt, HID, 1e-6f);
    if (!rc) rc = be->gemm(ctx, 0, 1, bt, 2 * FF, HID, 1.0f, n, HID, 0, P(m, s->w1[l]), HID, 0, 0.0f, gu, 2 * FF, 0, 1);
    if (!rc) rc = be->nn->swiglu_fwd(ctx, act, gu, bt, FF);
    if (!rc) rc = be->memcpy(ctx, next, m->device, h, m->device, sizeof(float) * (size_t)(bt * HID));
    if (!rc) rc = be->gemm(ctx, 0, 1, bt, HID, FF, 1.0f, act, FF, 0, P(m, s->w2[l]), FF, 0, 1.0f, next, HID, 0, 1);
  }
  float *hL = ws + LAYERS * pl, *rF = hL + bt * HID;
  return rc ? rc : be->nn->rmsnorm_fwd(ctx, y, rF, hL, P(m, s->fnorm), bt, HID, 1e-6f);
}

static int mlp_bwd(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws) {
  const icl_backend *be = icl_backend_get(ctx, m->device);
  mlp *s = m->backbone;
  int64_t bt = B * T, pl = per_layer(bt);
  float *hL = ws + LAYERS * pl, *rF = hL + bt * HID, *dgu = rF + bt, *dact = dgu + bt * 2 * FF, *dn = dact + bt * FF;
  int rc = be->nn->rmsnorm_bwd(ctx, dx, GR(m, s->fnorm), dy, hL, P(m, s->fnorm), rF, bt, HID, 0);
  for (int l = LAYERS - 1; l >= 0 && !rc; l--) {
    float *h = ws + l * pl, *n = h + bt * HID, *r = n + bt * HID, *gu = r + bt, *act = gu + bt * 2 * FF;
    rc = be->gemm(ctx, 1, 0, HID, FF, bt, 1.0f, dx, HID, 0, act, FF, 0, 1.0f, GR(m, s->w2[l]), FF, 0, 1);
    if (!rc) rc = be->gemm(ctx, 0, 0, bt, FF, HID, 1.0f, dx, HID, 0, P(m, s->w2[l]), FF, 0, 0.0f, dact, FF, 0, 1);
    if (!rc) rc = be->nn->swiglu_bwd(ctx, dgu, dact, gu, bt, FF);
    if (!rc)
      rc = be->gemm(ctx, 1, 0, 2 * FF, HID, bt, 1.0f, dgu, 2 * FF, 0, n, HID, 0, 1.0f, GR(m, s->w1[l]), HID, 0, 1);
    if (!rc)
      rc = be->gemm(ctx, 0, 0, bt, HID, 2 * FF, 1.0f, dgu, 2 * FF, 0, P(m, s->w1[l]), HID, 0, 0.0f, dn, HID, 0, 1);
    if (!rc) rc = be->nn->rmsnorm_bwd(ctx, dx, GR(m, s->norm[l]), dn, h, P(m, s->norm[l]), r, bt, HID, 1);
  }
  return rc;
}

static int mlp_init(icl_ctx *ctx, icl_model *m, uint64_t seed) {
  mlp *s = m->backbone;
  int rc = icl_params_init_fill(ctx, &m->params, s->fnorm, 1.0f);
  for (int l = 0; l < LAYERS && !rc; l++) {
    rc = icl_params_init_fill(ctx, &m->params, s->norm[l], 1.0f);
    if (!rc) rc = icl_params_init_normal(ctx, &m->params, s->w1[l], 0, 0.05f, seed, 10 + 2 * l);
    if (!rc) rc = icl_params_init_normal(ctx, &m->params, s->w2[l], 0, 0.05f, seed, 11 + 2 * l);
  }
  return rc;
}

static void mlp_destroy(icl_ctx *ctx, icl_model *m) {
  (void)ctx;
  free(m->backbone);
  m->backbone = NULL;
}

static const icl_backbone_ops mlp_ops = {"mlp", mlp_init, mlp_ws, mlp_fwd, mlp_bwd, mlp_destroy, NULL, NULL};

static icl_model *mlp_new(int64_t n_dims, icl_device dev) {
  icl_model *m = icl_model_create(G, n_dims, HID, dev);
  if (!m) return NULL;
  mlp *s = calloc(1, sizeof *s);
  m->backbone = s;
  m->ops = &mlp_ops;
  char name[64];
  int64_t sn[1] = {HID}, s1[2] = {2 * FF, HID}, s2[2] = {HID, FF};
  for (int l = 0; l < LAYERS; l++) {
    snprintf(name, sizeof name, "layers.%d.norm", l);
    s->norm[l] = icl_params_declare(G, &m->params, name, 1, sn, 0);
    snprintf(name, sizeof name, "layers.%d.w1", l);
    s->w1[l] = icl_params_declare(G, &m->params, name, 2, s1, 1);
    snprintf(name, sizeof name, "layers.%d.w2", l);
    s->w2[l] = icl_params_declare(G, &m->params, name, 2, s2, 1);
  }
  s->fnorm = icl_params_declare(G, &m->params, "norm", 1, sn, 0);
  if (icl_model_finish(G, m, 3)) {
    icl_model_free(G, m);
    return NULL;
  }
  return m;
}

/* ---- one run ------------------------------------------------------------------------------ */

enum { DIMS = 10, BATCH = 16, STEPS = 40 };

typedef struct run {
  icl_model *m;
  icl_adamw opt;
  icl_task *task;
  icl_train_step *ts;
  float loss[STEPS];
} run;

static void stage(int s, int64_t *N, int64_t *dt) {
  *N = s < 10 ? 11 : (s < 25 ? 17 : 23);
  *dt = s < 10 ? 4 : (s < 25 ? 7 : DIMS);
}

/* strict for steps in [20, 30): a switch of the GEMMs' compute type */
static int strict_at(int s, int base) { return s >= 20 && s < 30 ? !base : base; }

static void run_start_seed(run *r, icl_device dev, int graphs, const float *params0, uint64_t seed);
static void run_start(run *r, icl_device dev, int graphs, const float *params0) {
  run_start_seed(r, dev, graphs, params0, gp_seed);
}

static void run_start_seed(run *r, icl_device dev, int graphs, const float *params0, uint64_t seed) {
  memset(r, 0, sizeof *r);
  r->m = mlp_new(DIMS, dev);
  if (!r->m) gp_die("model");
  if (params0 &&
      GPU->memcpy(G, D(r->m->params.value), dev, params0, ICL_CPU, sizeof(float) * (size_t)r->m->params.total))
    gp_die("upload");
  icl_adamw_cfg oc = icl_adamw_defaults(2e-3f);
  oc.max_grad_norm = 1.0f;
  oc.sched.kind = ICL_SCHED_LINEAR, oc.sched.warmup = 5, oc.sched.total = STEPS;
  if (icl_adamw_init_params(G, &r->opt, &r->m->params, oc)) gp_die("adamw");
  icl_task_params tp = icl_task_defaults(ICL_TASK_NOISY_LINEAR_REGRESSION, DIMS);
  r->task = icl_task_new(G, &tp);
  icl_train_step_cfg cfg = {BATCH, 23, seed, ICL_LOSS_MSE, graphs};
  r->ts = icl_train_step_new(G, r->m, &r->opt, r->task, &cfg);
  if (!r->ts) gp_die("train step");
}

/* STEPS steps; the losses read at "log intervals" (every 8 steps) from the ring */
static void run_all(run *r, int strict_base, int64_t *replay_allocs) {
  (void)replay_allocs; /* counted on a GPU build only */
  for (int s = 0; s < STEPS; s++) {
    int64_t N, dt;
    stage(s, &N, &dt);
    G->strict_fp32 = strict_at(s, strict_base);
#ifdef ICL_HAVE_CUDA
    icl_cuda_mem_stats m0, m1;
    icl_cuda_memory_stats(G, &m0);
#endif
    CHECK_OK(G, icl_train_step_run(G, r->ts, N, dt));
#ifdef ICL_HAVE_CUDA
    icl_cuda_memory_stats(G, &m1);
    if (s == 5 || s == 15 || s == 35) *replay_allocs += (int64_t)(m1.n_malloc + m1.n_reuse - m0.n_malloc - m0.n_reuse);
#endif
    if (s % 8 == 7 || s == STEPS - 1)
      for (int k = s - s % 8; k <= s; k++) CHECK_OK(G, icl_train_step_loss(G, r->ts, k, &r->loss[k]));
    if (s == 30) { /* an evaluation at 8x the length between steps: the arena moves */
      int64_t B = 4, L = 8 * 23, sx[3] = {B, L, DIMS};
      icl_tensor *xs = icl_tensor_full(G, ICL_F32, r->m->device, 3, sx, 0.5),
                 *ys = icl_tensor_full(G, ICL_F32, r->m->device, 2, sx, 0.25);
      icl_tensor *p = icl_tensor_empty(G, ICL_F32, r->m->device, 2, sx);
      CHECK_OK(G, icl_model_forward(G, r->m, D(xs), D(ys), B, L, D(p), 0));
      icl_tensor_free(G, xs), icl_tensor_free(G, ys), icl_tensor_free(G, p);
    }
  }
  G->strict_fp32 = 0;
}

static void run_end(run *r) {
  icl_train_step_free(G, r->ts);
  icl_task_free(G, r->task);
  icl_adamw_free(G, &r->opt);
  icl_model_free(G, r->m);
}

static double normwise_dev(const float *c_host, const float *g_dev, int64_t n) {
  float *g = malloc(sizeof(float) * (size_t)n);
  if (GPU->memcpy(G, g, ICL_CPU, g_dev, GP_DEVICE, sizeof(float) * (size_t)n)) gp_die("read back");
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)g[i] - c_host[i];
    num += d * d;
    den += (double)c_host[i] * c_host[i];
  }
  free(g);
  return sqrt(num) / (den > 0 ? sqrt(den) : 1);
}

static void test_cpu_vs_gpu(void) {
  for (int strict = 1; strict >= 0; strict--) {
    run c, g, e;
    run_start(&c, ICL_CPU, 1, NULL);
    run_start(&g, GP_DEVICE, 1, D(c.m->params.value));
    run_start(&e, GP_DEVICE, 0, D(c.m->params.value));
    int64_t allocs = 0, allocs_e = 0;
    run_all(&c, strict, &allocs_e);
    run_all(&g, strict, &allocs);
    run_all(&e, strict, &allocs_e);
    const char *mode = strict ? "fp32 first" : "tf32 first";
    double worst = 0;
    for (int s = 0; s < STEPS; s++) {
      double d = fabs((double)g.loss[s] - c.loss[s]) / fabs((double)c.loss[s]);
      if (!(d <= worst)) worst = d;
    }
    /* steps 20..29 run in the other mode: the looser tolerance covers the run */
    double tl = 2e-2, tp = 2e-2;
    CHECK_MSG(worst <= tl, "%s: losses differ by %.3g (tol %g)", mode, worst, tl);
    double perr = normwise_dev(D(c.m->params.value), D(g.m->params.value), c.m->params.total);
    CHECK_MSG(perr <= tp, "%s: parameters differ normwise by %.3g (tol %g)", mode, perr, tp);
    printf("    %-20s losses max rel %.3g, parameters normwise %.3g\n", mode, worst, perr);
    /* the first 20 steps are all in one mode: tighter */
    double w20 = 0;
    for (int s = 0; s < 20; s++) {
      double d = fabs((double)g.loss[s] - c.loss[s]) / fabs((double)c.loss[s]);
      if (!(d <= w20)) w20 = d;
    }
    CHECK_MSG(w20 <= (strict ? 1e-4 : 2e-2), "%s: losses of the first 20 steps differ by %.3g", mode, w20);
    printf("    %-20s first 20 steps' losses max rel %.3g (tol %g)\n", mode, w20, strict ? 1e-4 : 2e-2);
    /* graphs vs no graphs on the GPU: the same kernels */
    pair pv = {e.m->params.value, g.m->params.value};
    double gmax, gerr = gp_normwise(pv, &gmax);
    CHECK_MSG(gerr <= 1e-5, "graphs vs eager: parameters differ normwise by %.3g", gerr);
    gp_report_bits("graphs vs eager: parameters", pv);
    int ldiff = 0;
    for (int s = 0; s < STEPS; s++) ldiff += memcmp(&e.loss[s], &g.loss[s], 4) != 0;
    printf("    graphs vs eager: %d of %d losses differ in their bits\n", ldiff, STEPS);
    CHECK_MSG(allocs == 0, "%s: replayed steps allocated %lld times", mode, (long long)allocs);
    icl_train_step_stats st;
    icl_train_step_get_stats(g.ts, &st);
    printf("    %-20s %lld eager, %lld captured, %lld replayed, %lld graph nodes%s%s\n", mode, (long long)st.eager,
           (long long)st.captures, (long long)st.replays, (long long)st.nodes,
           st.graphs_on ? "" : "; off: ", st.why_off);
    if (GP_DEVICE == ICL_CUDA) {
      /* keys (N, d_t, mode): (11,4) at 0, (17,7) at 10, (17,7) other mode at 20, (23,10) other mode at 25,
       * (23,10) at 30; the evaluation after step 30 moves the arena, so step 31 is eager again. Eager:
       * 0, 10, 20, 25, 30, 31; captured: 1, 11, 21, 26, 32; every other step (captures too) replays */
      CHECK_MSG(st.graphs_on, "graphs went off: %s", st.why_off);
      CHECK_MSG(st.eager == 6 && st.captures == 5 && st.replays == STEPS - 6,
                "expected 6 eager steps, 5 captures, %d replays", STEPS - 6);
    }
    /* the batch of the last step is the CPU sampler's for stream STEPS - 1 */
    const float *bx, *by;
    icl_train_step_batch(g.ts, &bx, &by);
    int64_t N = 23, sx[3] = {BATCH, N, DIMS};
    icl_tensor *xs = icl_tensor_empty(G, ICL_F32, ICL_CPU, 3, sx), *ys = icl_tensor_empty(G, ICL_F32, ICL_CPU, 2, sx);
    icl_task_draw d = {0, 0, DIMS, gp_seed, STEPS - 1, 0, NULL};
    CHECK_OK(G, icl_task_sample_into(G, c.task, xs, ys, &d));
    double xe = normwise_dev(D(xs), bx, BATCH * N * DIMS), ye = normwise_dev(D(ys), by, BATCH * N);
    CHECK_MSG(xe <= 1e-6 && ye <= 1e-5, "the last batch is not stream %d's: %.3g %.3g", STEPS - 1, xe, ye);
    icl_tensor_free(G, xs), icl_tensor_free(G, ys);
    run_end(&c), run_end(&g), run_end(&e);
  }
}

/* More keys than graph slots (8), visited twice: every key is evicted before
 * its second visit, and a step must never replay another key's graph. */
static void test_many_keys(void) {
  run c, g;
  run_start(&c, ICL_CPU, 1, NULL);
  run_start(&g, GP_DEVICE, 1, D(c.m->params.value));
  G->strict_fp32 = 1;
  double worst = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < 10; k++)
      for (int rep = 0; rep < 3; rep++) {
        int64_t N = 11 + k, s = (pass * 10 + k) * 3 + rep;
        float lc = 0, lg = 0;
        CHECK_OK(G, icl_train_step_run(G, c.ts, N, DIMS));
        CHECK_OK(G, icl_train_step_run(G, g.ts, N, DIMS));
        CHECK_OK(G, icl_train_step_loss(G, c.ts, s, &lc));
        CHECK_OK(G, icl_train_step_loss(G, g.ts, s, &lg));
        double d = fabs((double)lg - lc) / fabs((double)lc);
        if (!(d <= worst)) worst = d;
      }
  G->strict_fp32 = 0;
  CHECK_MSG(worst <= 1e-4, "10 keys x 2 visits: losses differ by %.3g (tol 1e-4)", worst);
  icl_train_step_stats st;
  icl_train_step_get_stats(g.ts, &st);
  printf("    10 keys x 2 visits: losses max rel %.3g; %lld eager, %lld captured, %lld replayed\n", worst,
         (long long)st.eager, (long long)st.captures, (long long)st.replays);
  if (GP_DEVICE == ICL_CUDA)
    CHECK_MSG(st.graphs_on && st.eager == 20 && st.captures == 20 && st.replays == 40,
              "expected 20 eager steps, 20 captures, 40 replays (%s)", st.why_off);
  run_end(&c), run_end(&g);
}

/* Three runs (three seeds) stepped as a group, each on a lane of its own
 * (icl_train_step_run_group), through stage changes, a strict/TF32 switch
 * and an evaluation that moves the arenas: every loss and every parameter
 * has the bits of the same run stepped alone. On a GPU the lanes' graphs
 * overlap; a shared buffer between them would show here as a difference. */
static void test_group_lanes(void) {
  enum { K = 3 };
  run alone[K], grp[K];
  int64_t allocs = 0;
  for (int k = 0; k < K; k++) {
    run_start_seed(&alone[k], GP_DEVICE, 1, NULL, gp_seed + 17 * (uint64_t)k);
    run_all(&alone[k], 0, &allocs);
  }
  icl_train_step *ts[K];
  int lanes[K] = {2, 1, 3}; /* any fixed lane per run */
  for (int k = 0; k < K; k++) {
    run_start_seed(&grp[k], GP_DEVICE, 1, NULL, gp_seed + 17 * (uint64_t)k);
    ts[k] = grp[k].ts;
  }
  for (int s = 0; s < STEPS; s++) {
    int64_t N, dt;
    stage(s, &N, &dt);
    G->strict_fp32 = strict_at(s, 0);
    CHECK_OK(G, icl_train_step_run_group(G, K, ts, lanes, N, dt));
    if (s % 8 == 7 || s == STEPS - 1)
      for (int k = 0; k < K; k++)
        for (int j = s - s % 8; j <= s; j++) CHECK_OK(G, icl_train_step_loss(G, grp[k].ts, j, &grp[k].loss[j]));
    if (s == 30)
      for (int k = 0; k < K; k++) {
        int64_t B = 4, L = 8 * 23, sx[3] = {B, L, DIMS};
        icl_tensor *xs = icl_tensor_full(G, ICL_F32, GP_DEVICE, 3, sx, 0.5),
                   *ys = icl_tensor_full(G, ICL_F32, GP_DEVICE, 2, sx, 0.25);
        icl_tensor *p = icl_tensor_empty(G, ICL_F32, GP_DEVICE, 2, sx);
        CHECK_OK(G, icl_model_forward(G, grp[k].m, D(xs), D(ys), B, L, D(p), 0));
        icl_tensor_free(G, xs), icl_tensor_free(G, ys), icl_tensor_free(G, p);
      }
  }
  G->strict_fp32 = 0;
  for (int k = 0; k < K; k++) {
    int ldiff = 0;
    for (int s = 0; s < STEPS; s++) ldiff += memcmp(&alone[k].loss[s], &grp[k].loss[s], 4) != 0;
    pair pv = {alone[k].m->params.value, grp[k].m->params.value};
    double gmax, gerr = gp_normwise(pv, &gmax);
    icl_train_step_stats st;
    icl_train_step_get_stats(grp[k].ts, &st);
    printf("    run %d (lane %d): %d of %d losses differ in their bits, parameters normwise %.3g; "
           "%lld eager, %lld captured, %lld replayed\n", k + 1, lanes[k], ldiff, STEPS, gerr, (long long)st.eager,
           (long long)st.captures, (long long)st.replays);
    CHECK_MSG(ldiff == 0 && gerr == 0, "run %d of the group: not the bits of the run alone", k + 1);
    if (GP_DEVICE == ICL_CUDA) CHECK_MSG(st.graphs_on && st.replays == STEPS - 6, "run %d: graphs off or "
                                         "fewer replays (%s)", k + 1, st.why_off);
  }
  CHECK_MSG(icl_train_step_run_group(G, 0, ts, lanes, 11, 4) != 0, "an empty group is refused");
  icl_clear_error(G);
  for (int k = 0; k < K; k++) run_end(&alone[k]), run_end(&grp[k]);
}

int main(void) {
  if (gp_start("test_gpu_train")) return 77;
  ICL_RUN(test_cpu_vs_gpu);
  ICL_RUN(test_many_keys);
  ICL_RUN(test_group_lanes);
  return gp_finish("test_gpu_train");
}
