/* The CUDA attention kernels (pe/attn_kernels.h) against the CPU reference,
 * entry by entry, on fresh random inputs with poisoned outputs (gpu_kern.h):
 * every encoding (none, RoPE, PI, dynamic NTK and static / dynamic YaRN at
 * lengths where the scaling is engaged, ALiBi, FIRE conventions A and B, a
 * callback bias buffer with garbage above the diagonal), the training
 * forward (out, rotated q/k/v, P), the inference forward (online softmax),
 * capture of all rows and of one query row (2T/5, T/3 or T-2), the backward with dS absent,
 * separate and aliasing P, the bias gradient and FIRE's parameter
 * gradients; head sizes 32 (standard), 16 (toy) and padded ones (8, 24, 40,
 * 64, 128); T not a multiple of the 64-row tile, T = 1, and long T.
 * The backward gets the CPU forward's q, k, v, P on both sides, so each
 * kernel is compared on identical inputs.
 *
 * Tolerances (|gpu - cpu| <= rtol |cpu| + atol max|cpu|, and normwise
 * ||gpu - cpu|| <= 1e-5 ||cpu|| where toleranced). Both sides are fp32; the
 * GPU sums in another order (tiles, shuffle trees) and uses expf where the
 * CPU uses its polynomial exp (both within 2 ulp):
 *   exact: v copies, ALiBi bias, bias_grad_reduce (same float operations in
 *     the same order)
 *   rtol 1e-6, atol 1e-6: rotated q, k (one rounding of a two-term sum, fused
 *     or not); FIRE bias and parameter gradients (the same operations; only
 *     the device's double log may differ from glibc's by an ulp)
 *   rtol 5e-5, atol 1e-6: P and captures. A logit carries ~hd ulps of
 *     rounding (~1e-6 relative to |logit| <= ~20), exp adds 2 ulp, and the
 *     row normaliser is a float sum of up to T terms (random-walk error
 *     ~sqrt(T) ulp, worst case T/8 ulp on the CPU's 8 lanes: 1.5e-5 at 2048).
 *   rtol 5e-5, atol 1e-5: out, dq/dk/dv, dS. Sums of P-weighted terms with
 *     cancellation: the absolute error scales with max|ref|, not with each
 *     (possibly tiny) element.
 * A wrong index, mask or rotation gives errors of order 1. */
#include "gpu_kern.h"
#include "pe/attn_kernels.h"
#include "pe/pe.h"

#ifdef GP_EMU
#define KG (&icl_cuda_attn_kernels)
#else
#define KG (GPU->attn)
#endif
#define KC (&icl_cpu_attn_kernels)

#define NORM 1e-5
#define EXACT -1, 0, 0
#define TOL_ROT 1e-6, 1e-6, NORM
#define TOL_FIRE 1e-6, 1e-6, NORM
#define TOL_P 5e-5, 1e-6, NORM
#define TOL_SUM 5e-5, 1e-5, NORM

enum { B_NONE, B_ALIBI, B_FIRE_A, B_FIRE_B, B_LUA };
enum { CAP_NONE, CAP_ALL, CAP_ROW };

typedef struct acase {
  const char *name;
  int64_t B, T, H, hd;
  icl_rot_kind rot;
  int bias;
  int64_t L_train;
  double factor;
  int dyn_code; /* dynamic YaRN: the code's reading */
  int cap;      /* capture in the training forward; the inference forward uses the other kind */
  int bwd;
} acase;

/* the lower triangle of [BH, T, T] */
static unsigned char *tri_mask(int64_t BH, int64_t T) {
  unsigned char *m = malloc((size_t)(BH * T * T));
  if (!m) gp_die("host memory");
  for (int64_t x = 0; x < BH * T * T; x++) {
    int64_t i = (x / T) % T, j = x % T;
    m[x] = j <= i;
  }
  return m;
}

typedef struct fire_params {
  dbuf W1, b1, W2, b2, c, Lm;
  float L_init, mult;
  int64_t W;
} fire_params;

static fire_params fire_new(int64_t H, int64_t hd, int conv_b) {
  fire_params f;
  f.W = conv_b ? 16 : 32;
  f.W1 = db_randu(f.W, -1, 1);
  f.b1 = db_randu(f.W, -1, 1);
  f.W2 = db_randu(H * f.W, -0.18f, 0.18f);
  f.b2 = db_randu(H, -0.18f, 0.18f);
  float c = conv_b ? -0.3f : 0.1f, lm = conv_b ? -0.8f : 1.0f;
  f.c = db_from(&c, 1);
  f.Lm = db_from(&lm, 1);
  f.L_init = 40.0f; /* threshold inside the sequence: both branches of max(i, thr) */
  f.mult = conv_b ? (float)(1.0 / sqrt((double)hd)) : 1.0f;
  return f;
}

static void fire_free(fire_params *f) {
  dbuf *b[] = {&f->W1, &f->b1, &f->W2, &f->b2, &f->c, &f->Lm};
  for (int i = 0; i < 6; i++) db_free(b[i]);
}

/* FIRE backward from the same G on both sides, into random starting gradients */
static void fire_bwd_case(fire_params *f, int64_t H, int64_t T) {
  const int64_t W = f->W, np = H * W + H + 2 * W + 2;
  float *g = gk_randn(H * T * T, 1e-2f, 0);
  for (int64_t x = 0; x < H * T * T; x++)
    if (x % T > (x / T) % T) g[x] = 0;
  dbuf G_ = db_from(g, H * T * T);
  free(g);
  dbuf dW1 = db_randn(W, 1, 0), db1 = db_randn(W, 1, 0), dW2 = db_randn(H * W, 1, 0), db2 = db_randn(H, 1, 0),
       dc = db_randn(1, 1, 0), dL = db_randn(1, 1, 0);
  dbuf pc = db_poison(2 * T * np), pg = db_poison(2 * T * np); /* doubles: two floats each */
  CHECK_OK(G, KC->fire_bwd(G, G_.c, f->W1.c, f->b1.c, f->W2.c, f->c.c, f->Lm.c, f->L_init, 1e-6f, W, H, T, f->mult,
                           dW1.c, db1.c, dW2.c, db2.c, dc.c, dL.c, (double *)pc.c));
  CHECK_OK(G, KG->fire_bwd(G, G_.g, f->W1.g, f->b1.g, f->W2.g, f->c.g, f->Lm.g, f->L_init, 1e-6f, W, H, T, f->mult,
                           dW1.g, db1.g, dW2.g, db2.g, dc.g, dL.g, (double *)pg.g));
  gk_check("fire dW1", dW1, NULL, TOL_FIRE);
  gk_check("fire db1", db1, NULL, TOL_FIRE);
  gk_check("fire dW2", dW2, NULL, TOL_FIRE);
  gk_check("fire db2", db2, NULL, TOL_FIRE);
  gk_check("fire dc", dc, NULL, TOL_FIRE);
  gk_check("fire dL_mult", dL, NULL, TOL_FIRE);
  dbuf *b[] = {&G_, &dW1, &db1, &dW2, &db2, &dc, &dL, &pc, &pg};
  for (int i = 0; i < 9; i++) db_free(b[i]);
}

static void run_case(const acase *k) {
  const int64_t B = k->B, T = k->T, H = k->H, hd = k->hd, D = H * hd, BT = B * T, half = hd / 2, BH = B * H;
  const float scale = (float)(1.0 / sqrt((double)hd));
  icl_attn_shape s = {B, T, H, hd, 1};
  printf("  %s: B %lld, T %lld, H %lld, hd %lld\n", k->name, (long long)B, (long long)T, (long long)H,
         (long long)hd);
  char what[160];
#define W(x) (snprintf(what, sizeof what, "%s: %s", k->name, x), what)

  /* rotation tables, as the model builds them for this length */
  dbuf cs = {0}, sn = {0};
  if (k->rot != ICL_ROT_NONE) {
    icl_pe_cfg pe = icl_pe_defaults();
    pe.rot = k->rot;
    pe.L_train = k->L_train;
    pe.factor = k->factor;
    pe.dyn_yarn = k->dyn_code ? ICL_DYN_YARN_CODE : ICL_DYN_YARN_PAPER;
    float *inv = malloc(sizeof(float) * (size_t)half), *ct = malloc(sizeof(float) * (size_t)(T * half)),
          *st = malloc(sizeof(float) * (size_t)(T * half));
    double msc, scl;
    icl_pe_rotation(&pe, hd, T, inv, &msc, &scl);
    icl_rope_tables(inv, msc, T, half, ct, st);
    printf("    rotation %s: scale in effect %.4g, attention factor %.4g\n", icl_pe_name(&pe), scl, msc);
    if (k->rot != ICL_ROT_ROPE) CHECK_MSG(scl > 1, "%s: the scaling is not engaged at T = %lld", k->name, (long long)T);
    cs = db_from(ct, T * half);
    sn = db_from(st, T * half);
    free(inv);
    free(ct);
    free(st);
  }

  /* the bias [H, T, T] */
  dbuf bias = {0}, slopes = {0};
  fire_params fp;
  memset(&fp, 0, sizeof fp);
  if (k->bias == B_ALIBI) {
    float *sl = malloc(sizeof(float) * (size_t)H);
    icl_alibi_slopes(H, sl);
    slopes = db_from(sl, H);
    free(sl);
    bias = db_poison(H * T * T);
    CHECK_OK(G, KC->alibi_bias(G, bias.c, slopes.c, H, T));
    CHECK_OK(G, KG->alibi_bias(G, bias.g, slopes.g, H, T));
    gk_check(W("alibi bias"), bias, NULL, EXACT);
  } else if (k->bias == B_FIRE_A || k->bias == B_FIRE_B) {
    fp = fire_new(H, hd, k->bias == B_FIRE_B);
    bias = db_poison(H * T * T);
    CHECK_OK(G, KC->fire_fwd(G, bias.c, fp.W1.c, fp.b1.c, fp.W2.c, fp.b2.c, fp.c.c, fp.Lm.c, fp.L_init, 1e-6f, fp.W,
                             H, T, fp.mult));
    CHECK_OK(G, KG->fire_fwd(G, bias.g, fp.W1.g, fp.b1.g, fp.W2.g, fp.b2.g, fp.c.g, fp.Lm.g, fp.L_init, 1e-6f, fp.W,
                             H, T, fp.mult));
    gk_check(W("fire bias"), bias, NULL, TOL_FIRE);
  } else if (k->bias == B_LUA) { /* a callback's buffer: defined for j <= i only */
    float *h = gk_randn(H * T * T, 1, 0);
    for (int64_t x = 0; x < H * T * T; x++)
      if (x % T > (x / T) % T) h[x] = x % 3 ? NAN : 1e30f;
    bias = db_from(h, H * T * T);
    free(h);
  }

  /* training forward */
  unsigned char *tri = tri_mask(BH, T);
  dbuf qkv = db_randn(BT * 3 * D, 1, 0);
  dbuf out = db_poison(BT * D), q = db_poison(BH * T * hd), kk = db_poison(BH * T * hd), v = db_poison(BH * T * hd),
       P = db_poison(BH * T * T);
  const int64_t capn = k->cap == CAP_ALL ? BH * T * T : BH * T, capn2 = k->cap == CAP_ALL ? BH * T : BH * T * T;
  dbuf cap = db_poison(capn);
  float *scc = malloc(sizeof(float) * (size_t)(KC->scratch_floats(s) * GK_NTH + 1));
  int64_t sgn = KG->scratch_floats(s) * GK_NTH + 1;
  float *scg = gk_dev_alloc(sgn);
  /* a row inside the sequence (zeros past its tile); for the other pass the
   * final x token's row (the analyses' "last_x") when T is even, else T/3 (a
   * tile with tiles after it: the GPU runs its two passes on that tile only) */
  const int trow = (int)(2 * T / 5), irow = T % 2 ? (int)(T / 3) : (int)T - 2;
  icl_attn_capture capc = {cap.c, k->cap == CAP_ALL ? -1 : trow}, capg = {cap.g, capc.row};
  CHECK_OK(G, KC->fwd(G, s, out.c, qkv.c, cs.c, sn.c, bias.c, scale, q.c, kk.c, v.c, P.c, 1,
                      k->cap ? &capc : NULL, scc, GK_NTH));
  CHECK_OK(G, KG->fwd(G, s, out.g, qkv.g, cs.g, sn.g, bias.g, scale, q.g, kk.g, v.g, P.g, 1,
                      k->cap ? &capg : NULL, scg, GK_NTH));
  gk_check(W("train out"), out, NULL, TOL_SUM);
  gk_check(W("train q (rotated)"), q, NULL, TOL_ROT);
  gk_check(W("train k (rotated)"), kk, NULL, TOL_ROT);
  gk_check(W("train v"), v, NULL, EXACT);
  gk_check(W("train P (j <= i)"), P, tri, TOL_P);
  if (k->cap) gk_check(W(k->cap == CAP_ALL ? "train capture, all rows" : "train capture, row 2T/5"), cap, NULL, TOL_P);

  /* inference forward (online softmax, or two passes with the other capture kind) */
  dbuf out2 = db_poison(BT * D), cap2 = db_poison(capn2);
  icl_attn_capture cap2c = {cap2.c, k->cap == CAP_ALL ? irow : -1}, cap2g = {cap2.g, cap2c.row};
  CHECK_OK(G, KC->fwd(G, s, out2.c, qkv.c, cs.c, sn.c, bias.c, scale, NULL, NULL, NULL, NULL, 0,
                      k->cap ? &cap2c : NULL, scc, GK_NTH));
  CHECK_OK(G, KG->fwd(G, s, out2.g, qkv.g, cs.g, sn.g, bias.g, scale, NULL, NULL, NULL, NULL, 0,
                      k->cap ? &cap2g : NULL, scg, GK_NTH));
  gk_check(W(k->cap ? "inference out (with capture)" : "inference out (online softmax)"), out2, NULL, TOL_SUM);
  if (k->cap)
    gk_check(W(k->cap == CAP_ALL ? (T % 2 ? "inference capture, row T/3" : "inference capture, row T-2")
                                 : "inference capture, all rows"),
             cap2, NULL, TOL_P);

  /* backward on the CPU forward's q, k, v, P (the same inputs on both sides) */
  if (k->bwd) {
    dbuf q0 = db_copy_c(q), k0 = db_copy_c(kk), v0 = db_copy_c(v), dout = db_randn(BT * D, 1, 0);
    for (int variant = 0; variant < 3; variant++) { /* dS: none, separate, aliasing P */
      static const char *vname[] = {"no dS", "dS separate", "dS aliasing P"};
      dbuf P0 = db_copy_c(P), dqkv = db_poison(BT * 3 * D), dS = variant == 1 ? db_poison(BH * T * T) : P0;
      float *dSc = variant ? dS.c : NULL, *dSg = variant ? dS.g : NULL;
      CHECK_OK(G, KC->bwd(G, s, dqkv.c, dout.c, cs.c, sn.c, scale, q0.c, k0.c, v0.c, P0.c, dSc, scc, GK_NTH));
      CHECK_OK(G, KG->bwd(G, s, dqkv.g, dout.g, cs.g, sn.g, scale, q0.g, k0.g, v0.g, P0.g, dSg, scg, GK_NTH));
      char vw[96];
      snprintf(vw, sizeof vw, "dqkv (%s)", vname[variant]);
      gk_check(W(vw), dqkv, NULL, TOL_SUM);
      if (variant) {
        snprintf(vw, sizeof vw, "dS (%s, zeros above)", vname[variant]);
        gk_check(W(vw), dS, NULL, TOL_SUM);
      }
      if (variant == 0) { /* P is left alone unless dS aliases it */
        gk_check(W("P after a backward without dS (lower)"), P0, tri, EXACT);
      }
      if (variant == 1) { /* the bias gradient, from the same dS on both sides */
        dbuf dSs = db_copy_c(dS), Gb = db_poison(H * T * T);
        CHECK_OK(G, KC->bias_grad_reduce(G, Gb.c, dSs.c, B, H, T));
        CHECK_OK(G, KG->bias_grad_reduce(G, Gb.g, dSs.g, B, H, T));
        gk_check(W("bias_grad_reduce"), Gb, NULL, EXACT);
        db_free(&dSs);
        db_free(&Gb);
        db_free(&dS);
      }
      db_free(&P0);
      db_free(&dqkv);
    }
    db_free(&q0);
    db_free(&k0);
    db_free(&v0);
    db_free(&dout);
  }
  if (k->bias == B_FIRE_A || k->bias == B_FIRE_B) {
    fire_bwd_case(&fp, H, T);
    fire_free(&fp);
  }

  dbuf *all[] = {&cs, &sn, &bias, &slopes, &qkv, &out, &q, &kk, &v, &P, &cap, &out2, &cap2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) db_free(all[i]);
  free(scc);
  GPU->release(G, scg, sizeof(float) * (size_t)sgn);
  free(tri);
#undef W
}

/* dry and emulated runs do all of their work on this machine's CPU: smaller long cases */
#if GK_HOST_ONLY
#define LONG_T 700
#define MID_B 1
#define MID_H 2
#else
#define LONG_T 2048
#define MID_B 8
#define MID_H 8
#endif

static void test_encodings(void) {
  static const acase cases[] = {
      {"rope, standard head", 2, 102, 2, 32, ICL_ROT_ROPE, B_NONE, 102, 8, 0, CAP_ALL, 1},
      {"nope, toy head 16", 3, 65, 2, 16, ICL_ROT_NONE, B_NONE, 102, 8, 0, CAP_ROW, 1},
      {"PI (linear, factor 4)", 2, 130, 2, 32, ICL_ROT_LINEAR, B_NONE, 64, 4, 0, CAP_NONE, 1},
      {"dynamic NTK, T > L_train", 2, 130, 2, 32, ICL_ROT_DYNAMIC, B_NONE, 64, 8, 0, CAP_NONE, 1},
      {"YaRN (static, factor 8)", 2, 97, 2, 32, ICL_ROT_YARN, B_NONE, 32, 8, 0, CAP_NONE, 1},
      {"dynamic YaRN (paper), T = 6.25 L_train", 1, 200, 2, 32, ICL_ROT_DYNAMIC_YARN, B_NONE, 32, 8, 0, CAP_ALL, 1},
      {"dynamic YaRN (code), T > factor L_train", 1, 300, 1, 32, ICL_ROT_DYNAMIC_YARN, B_NONE, 32, 8, 1, CAP_NONE, 1},
      {"ALiBi, 3 heads", 2, 129, 3, 32, ICL_ROT_NONE, B_ALIBI, 102, 8, 0, CAP_ROW, 1},
      {"FIRE convention A", 2, 100, 2, 32, ICL_ROT_NONE, B_FIRE_A, 102, 8, 0, CAP_NONE, 1},
      {"FIRE convention B (before scaling)", 1, 77, 3, 16, ICL_ROT_NONE, B_FIRE_B, 102, 8, 0, CAP_ALL, 1},
      {"callback bias buffer, NaN above the diagonal", 2, 70, 2, 32, ICL_ROT_NONE, B_LUA, 102, 8, 0, CAP_ALL, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

static void test_head_sizes(void) {
  static const acase cases[] = {
      {"hd 8 (padded to 16)", 2, 66, 2, 8, ICL_ROT_ROPE, B_NONE, 102, 8, 0, CAP_NONE, 1},
      {"hd 24 (padded to 32), ALiBi 6 heads", 1, 70, 6, 24, ICL_ROT_ROPE, B_ALIBI, 102, 8, 0, CAP_NONE, 1},
      {"hd 40 (padded to 64)", 1, 64, 2, 40, ICL_ROT_ROPE, B_NONE, 102, 8, 0, CAP_ALL, 1},
      {"hd 64", 1, 90, 2, 64, ICL_ROT_YARN, B_NONE, 32, 8, 0, CAP_NONE, 1},
      {"hd 128", 1, 80, 1, 128, ICL_ROT_ROPE, B_LUA, 102, 8, 0, CAP_ROW, 1},
      {"hd 7, no rotation (odd)", 1, 33, 2, 7, ICL_ROT_NONE, B_NONE, 102, 8, 0, CAP_NONE, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

static void test_lengths(void) {
  static const acase cases[] = {
      {"T = 1", 2, 1, 2, 32, ICL_ROT_ROPE, B_ALIBI, 102, 8, 0, CAP_ALL, 1},
      {"T = 2", 1, 2, 1, 16, ICL_ROT_ROPE, B_NONE, 102, 8, 0, CAP_ROW, 1},
      {"T = 64 (one full tile)", 2, 64, 2, 32, ICL_ROT_ROPE, B_NONE, 102, 8, 0, CAP_NONE, 1},
      {"T = 128 (two full tiles)", 1, 128, 2, 32, ICL_ROT_NONE, B_FIRE_A, 102, 8, 0, CAP_NONE, 1},
      {"long T, training and backward", 1, LONG_T, 1, 32, ICL_ROT_DYNAMIC_YARN, B_NONE, 102, 8, 0, CAP_ROW, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* the standard model's inference shape (heads of 32, T = 816 = 8 x 102), forward only */
static void test_standard_inference(void) {
  const acase k = {"inference at 8x the training length", MID_B, 816, MID_H, 32, ICL_ROT_DYNAMIC_YARN, B_NONE, 102, 8, 0,
                   CAP_NONE, 0};
  run_case(&k);
}

/* the CUDA kernels stop at head_dim 128, with a message (the CPU ones have no limit) */
static void test_errors(void) {
  if (GK_DRY) return;
  icl_attn_shape s = {1, 4, 1, 256, 1};
  dbuf x = db_poison(4 * 3 * 256);
  CHECK(KG->fwd(G, s, x.g, x.g, NULL, NULL, NULL, 1.0f, NULL, NULL, NULL, NULL, 0, NULL, NULL, 1) == ICL_ENOTIMPL);
  CHECK(strstr(icl_last_error(G), "head_dim 256") != NULL);
  icl_clear_error(G);
  CHECK(KG->bwd(G, s, x.g, x.g, NULL, NULL, 1.0f, x.g, x.g, x.g, x.g, NULL, NULL, 1) == ICL_ENOTIMPL);
  icl_clear_error(G);
  db_free(&x);
}

int main(void) {
  if (gk_start("test_gpu_attn")) return 77;
  ICL_RUN(test_encodings);
  ICL_RUN(test_head_sizes);
  ICL_RUN(test_lengths);
  ICL_RUN(test_standard_inference);
  ICL_RUN(test_errors);
  return gk_finish("test_gpu_attn");
}
