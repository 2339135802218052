/* The CUDA optimiser kernels (engine/cuda/cuda_optim.cu) against the CPU
 * reference (engine/optim/cpu_optim.c), on fresh random inputs.
 *
 * Tolerances:
 *   exact (required): adamw_update's parameters and moments (every rounding
 *     spelled out, same inputs), adamw_prepare's lr, clip, norm, step count
 *     and bad-step flag, ring_put, the no-op after a bad step
 *   rtol 2e-7, expected bit-identical: adamw_prepare's bias corrections (the
 *     device's powf is double pow rounded once; glibc's is within 0.52 ulp),
 *     and through them a few AdamW steps in a row (then rtol 1e-6)
 *   rtol 1e-6, expected bit-identical: sumsq (both sum in double, in
 *     different orders, and round once to float)
 * Exits 77 (skipped) without a CUDA device. */
#include <stdlib.h>

#include "gpu_pair.h"
#include "optim/adamw.h"
#include "optim/optim_kernels.h"

#define D(t) ((float *)icl_tensor_data(t))

static const icl_optim_kernels *OC, *OG;

static pair pnorm(int64_t n, double sd) { return pair_rand(ICL_F32, 1, &n, ICL_DIST_NORMAL, 0, sd); }

static void test_sumsq(void) {
  const int64_t ns[] = {16785408, 65536 * 3 + 17, 5, 1, 0};
  for (int k = 0; k < 5; k++) {
    for (int misalign = 0; misalign < 2; misalign++) {
      int64_t n = ns[k], one = 1;
      pair xb = pnorm(n + 1, 0.01), x = pair_narrow(xb, 0, misalign, n), out = pair_poison(ICL_F32, 1, &one);
      CHECK_OK(G, OC->sumsq(G, D(out.c), D(x.c), n));
      CHECK_OK(G, OG->sumsq(G, D(out.g), D(x.g), n));
      char what[64];
      snprintf(what, sizeof what, "sumsq n %lld%s", (long long)n, misalign ? " misal." : "");
      gp_check(what, out, ICL_F32, 1e-6, 0);
      gp_report_bits(what, out);
      pair_free(xb), pair_free(x), pair_free(out);
    }
  }
}

/* the scalar buffer after prepare: bias corrections within bc_rtol, the step
 * count and bad flag exact, the rest exact (rtol < 0) or within rtol */
static void check_scalars(const char *what, pair s, double bc_rtol, double rtol) {
  uint32_t *hc = gp_gather(s.c), *hg = gp_gather(s.g);
  for (int i = 0; i < ICL_OPT_NSCALARS; i++) {
    float c = gp_f(hc[i]), g = gp_f(hg[i]);
    double r = i == ICL_OPT_BC1 || i == ICL_OPT_BC2 ? bc_rtol : (i == ICL_OPT_STEPS || i == ICL_OPT_BAD ? -1 : rtol);
    if (r >= 0)
      CHECK_MSG(fabs((double)g - c) <= r * fabs((double)c) || gp_same_f32(g, c), "%s: scalar %d: %.9g vs %.9g", what, i,
                g, c);
    else
      CHECK_MSG(gp_same_f32(g, c), "%s: scalar %d: gpu %.9g cpu %.9g", what, i, g, c);
  }
  free(hc);
  free(hg);
}

static void test_prepare(void) {
  const float steps[] = {0, 1, 9, 10, 50, 99, 150, 20000};
  const float sqs[] = {0.25f, 1e4f, NAN, INFINITY, 0.0f};
  int64_t ns = ICL_OPT_NSCALARS, one = 1;
  int64_t bc_diff = 0, cases = 0;
  for (int sk = 0; sk < 2; sk++)
    for (int clip = 0; clip < 2; clip++)
      for (int t = 0; t < 8; t++)
        for (int q = 0; q < 5; q++)
          for (int bad = 0; bad < 2; bad++) {
            icl_sched sc = {sk ? ICL_SCHED_LINEAR : ICL_SCHED_CONSTANT, 3e-4f, 10, 100};
            icl_tensor *hs = icl_tensor_full(G, ICL_F32, ICL_CPU, 1, &ns, 0.0);
            D(hs)[ICL_OPT_STEPS] = steps[t];
            D(hs)[ICL_OPT_BAD] = bad ? 4.0f : 0.0f;
            D(hs)[7] = 123.0f; /* unused: must stay */
            icl_tensor *hq = icl_tensor_full(G, ICL_F32, ICL_CPU, 1, &one, sqs[q]);
            pair s = pair_upload(hs), sq = pair_upload(hq);
            CHECK_OK(G, OC->adamw_prepare(G, D(s.c), D(sq.c), sc, 0.9f, 0.999f, clip ? 1.0f : 0.0f));
            CHECK_OK(G, OG->adamw_prepare(G, D(s.g), D(sq.g), sc, 0.9f, 0.999f, clip ? 1.0f : 0.0f));
            char what[96];
            snprintf(what, sizeof what, "prepare sched %d clip %d t %g sumsq %g bad %d", sk, clip, steps[t], sqs[q],
                     bad);
            check_scalars(what, s, 2e-7, -1);
            uint32_t *hc = gp_gather(s.c), *hg = gp_gather(s.g);
            bc_diff += hc[ICL_OPT_BC1] != hg[ICL_OPT_BC1] || hc[ICL_OPT_BC2] != hg[ICL_OPT_BC2];
            cases++;
            free(hc), free(hg);
            pair_free(s), pair_free(sq);
          }
  printf("    adamw_prepare: bias corrections bit-identical in %lld of %lld cases\n", (long long)(cases - bc_diff),
         (long long)cases);
}

static void test_update(void) {
  const int64_t ns[] = {16785408, 1003, 4, 1};
  int64_t nsc = ICL_OPT_NSCALARS, one = 1;
  for (int k = 0; k < 4; k++)
    for (int misalign = 0; misalign < 2; misalign++)
      for (int wd = 0; wd < 2; wd++)
        for (int bad = 0; bad < 2; bad++) {
          if (k == 0 && (misalign || !wd || bad)) continue; /* the model's size once: it takes a while on the CPU */
          int64_t n = ns[k], o = misalign;
          pair pb = pnorm(n + 1, 0.02), gb = pnorm(n + 1, 1e-3), mb = pnorm(n + 1, 1e-4), vb = pnorm(n + 1, 1e-4);
          pair p = pair_narrow(pb, 0, o, n), g = pair_narrow(gb, 0, o, n), m = pair_narrow(mb, 0, o, n),
               v = pair_narrow(vb, 0, o, n);
          /* v >= 0 as AdamW keeps it */
          float *hv = D(vb.c);
          for (int64_t i = 0; i <= n; i++) hv[i] = fabsf(hv[i]);
          pair vold = vb;
          vb = pair_upload(icl_clone(G, vold.c));
          pair_free(vold);
          pair_free(v);
          v = pair_narrow(vb, 0, o, n);
          /* scalars of a real step, computed on the CPU, on both devices */
          icl_tensor *hs = icl_tensor_full(G, ICL_F32, ICL_CPU, 1, &nsc, 0.0),
                     *hq = icl_tensor_full(G, ICL_F32, ICL_CPU, 1, &one, 2.5);
          D(hs)[ICL_OPT_STEPS] = 6;
          icl_sched sc = {ICL_SCHED_LINEAR, 1e-3f, 3, 1000};
          CHECK_OK(G, OC->adamw_prepare(G, D(hs), D(hq), sc, 0.9f, 0.999f, 1.0f));
          if (bad) D(hs)[ICL_OPT_BAD] = 2.0f;
          pair s = pair_upload(hs);
          icl_tensor_free(G, hq);
          CHECK_OK(G, OC->adamw_update(G, D(p.c), D(g.c), D(m.c), D(v.c), n, D(s.c), 0.9f, 0.999f, 1e-8f,
                                       wd ? 0.01f : 0.0f));
          CHECK_OK(G, OG->adamw_update(G, D(p.g), D(g.g), D(m.g), D(v.g), n, D(s.g), 0.9f, 0.999f, 1e-8f,
                                       wd ? 0.01f : 0.0f));
          char what[96];
          snprintf(what, sizeof what, "adamw_update n %lld%s wd %d%s", (long long)n, misalign ? " misal." : "", wd,
                   bad ? " (bad step: no-op)" : "");
          gp_check(what, pb, ICL_F32, -1, 0); /* the whole buffers: the element before the view too */
          gp_check(what, mb, ICL_F32, -1, 0);
          gp_check(what, vb, ICL_F32, -1, 0);
          pair fs[] = {pb, gb, mb, vb, p, g, m, v, s};
          for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) pair_free(fs[i]);
        }
}

static void test_ring(void) {
  int64_t nr = 256, nsc = ICL_OPT_NSCALARS, one = 1;
  pair ring = pair_poison(ICL_F32, 1, &nr), x = pnorm(one, 1);
  const float steps[] = {0, 5, 255, 256, 1000};
  for (int k = 0; k < 5; k++) {
    icl_tensor *hs = icl_tensor_full(G, ICL_F32, ICL_CPU, 1, &nsc, 0.0);
    D(hs)[ICL_OPT_STEPS] = steps[k];
    pair s = pair_upload(hs);
    CHECK_OK(G, OC->ring_put(G, D(ring.c), nr, D(x.c), D(s.c)));
    CHECK_OK(G, OG->ring_put(G, D(ring.g), nr, D(x.g), D(s.g)));
    pair_free(s);
  }
  /* slots 0, 5, 255 and 232 (1000 mod 256) written, the rest still poisoned */
  uint32_t *hc = gp_gather(ring.c), *hg = gp_gather(ring.g);
  int64_t bad = 0;
  for (int64_t i = 0; i < nr; i++) {
    int w = i == 0 || i == 5 || i == 255 || i == 232;
    bad += w ? hc[i] != hg[i] : !(gp_f(hc[i]) == POISON_C && gp_f(hg[i]) == POISON_G);
  }
  CHECK_MSG(bad == 0, "ring_put: %lld slots wrong", (long long)bad);
  free(hc), free(hg);
  pair_free(ring), pair_free(x);
}

/* icl_adamw_step (sumsq, prepare, update per segment) for a few steps */
static void test_steps(void) {
  int64_t n = 300007;
  pair p = pnorm(n, 0.02), g = pnorm(n, 1e-2);
  icl_adamw oc, og;
  icl_adamw_cfg cfg = icl_adamw_defaults(1e-3f);
  cfg.max_grad_norm = 0.5f;
  cfg.sched.kind = ICL_SCHED_LINEAR, cfg.sched.warmup = 2, cfg.sched.total = 10;
  CHECK_OK(G, icl_adamw_init(G, &oc, p.c, g.c, cfg));
  CHECK_OK(G, icl_adamw_init(G, &og, p.g, g.g, cfg));
  /* three segments: decayed, frozen, not decayed */
  icl_adamw_segment seg[3] = {{0, 100000, 1, 0}, {100000, 1000, 1, 1}, {101000, n - 101000, 0, 0}};
  for (int k = 0; k < 2; k++) {
    icl_adamw *o = k ? &og : &oc;
    o->seg = realloc(o->seg, sizeof seg);
    memcpy(o->seg, seg, sizeof seg);
    o->nseg = 3;
  }
  for (int s = 0; s < 5; s++) {
    CHECK_OK(G, icl_adamw_step(G, &oc));
    CHECK_OK(G, icl_adamw_step(G, &og));
  }
  pair m = {oc.m, og.m}, v = {oc.v, og.v}, sc = {oc.scal, og.scal};
  gp_check("5 AdamW steps: parameters", p, ICL_F32, 1e-6, 0);
  gp_report_bits("5 AdamW steps: parameters", p);
  gp_check("5 AdamW steps: m", m, ICL_F32, 1e-6, 0);
  gp_check("5 AdamW steps: v", v, ICL_F32, 1e-6, 0);
  check_scalars("5 AdamW steps: scalars", sc, 2e-7, 1e-6);
  icl_adamw_free(G, &oc);
  icl_adamw_free(G, &og);
  pair_free(p), pair_free(g);
}

int main(void) {
  if (gp_start("test_gpu_optim")) return 77;
  OC = CPU->optim;
  OG = GPU->optim;
  if (!OG) {
    printf("not ok - the %s backend has no optim table\n", GPU->name);
    return 1;
  }
  ICL_RUN(test_sumsq);
  ICL_RUN(test_prepare);
  ICL_RUN(test_update);
  ICL_RUN(test_ring);
  ICL_RUN(test_steps);
  return gp_finish("test_gpu_optim");
}
