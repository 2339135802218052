/* Llama backbone: configuration, parameters, initialisation and the
 * workspace layout. The passes are in llama_forward.c / llama_backward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/backend.h"
#include "cpu/cpu_kernels.h"
#include "cpu_llama_mlp.h"
#include "llama_internal.h"
#include "pe/cpu_attn_internal.h"

icl_llama_cfg icl_llama_defaults(void) {
  icl_llama_cfg c;
  memset(&c, 0, sizeof c);
  c.n_dims = 20;
  c.hidden = 256;
  c.layers = 16;
  c.heads = 8;
  c.intermediate = 0;
  c.rms_eps = 1e-6f;
  c.init_std = 0.02f;
  c.pe = icl_pe_defaults();
  return c;
}

int icl_llama_has_bias_params(const icl_llama *s) {
  return s->cfg.pe.bias == ICL_BIAS_FIRE || (s->cfg.pe.bias == ICL_BIAS_CALLBACK && s->cfg.pe.callback->nparams > 0);
}

static int64_t pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

icl_view icl_llama_rows(float *data, int64_t rows, int64_t cols, int64_t row_stride) {
  icl_view v;
  memset(&v, 0, sizeof v);
  v.data = data;
  v.ndim = 2;
  v.shape[0] = rows, v.shape[1] = cols;
  v.stride[0] = row_stride, v.stride[1] = 1;
  return v;
}

/* Whether a training pass computes its last layer at the x tokens only.
 * Predictions are read at the x tokens (even rows), so after the last
 * attention (whose keys and values need every row) the o projection, the
 * MLP and the final norm of the y rows feed nothing: their outputs are
 * never read and their gradients are exactly zero. Skipping them changes no
 * number of the x rows (each is computed by the same kernels from the same
 * inputs) and saves about 40% of the last layer. Off when attention
 * probabilities are captured (the analyses read every row), where the CPU
 * products are not row-exact (OpenBLAS: hidden above 128 or so, or a build
 * without AVX2), and, until it has run on a device, on CUDA;
 * ICL_LLAMA_TRIM=0 / 1 forces it. */
static int llama_trim(const icl_model *m, int64_t T) {
  const icl_llama *s = llama_state(m);
  if (T % 2 || s->n_capture) return 0;
  const char *e = getenv("ICL_LLAMA_TRIM");
  if (e && *e) return strcmp(e, "0") != 0;
  if (m->device != ICL_CPU) return 0;
  /* only where the trimmed products give each row the same bits as over
   * all rows, so a training forward predicts exactly what predict() does */
  const int64_t d = m->hidden, F = s->F;
  return icl_cpu_gemm_row_exact(0, d, d) && icl_cpu_gemm_row_exact(0, 2 * F, d) && icl_cpu_gemm_row_exact(0, d, F) &&
         icl_cpu_gemm_row_exact(0, 1, d);
}

/* The CPU attention can compute the q/k/v and o projections of one batch
 * element at a time next to its tiles (pe/cpu_attn_proj.c): the same bits
 * for the forward, the Wqkv and Wo gradients summed in fixed partials over
 * batch elements. Where the AVX2 GEMM takes the products and the packed
 * weights fit (hidden up to about 90), with two batch elements or more (it
 * parallelises over them; a fixed bound, so the bits do not depend on the
 * thread count); ICL_CPU_ATTN_PROJ=0 turns it off. */
int icl_llama_attn_proj(const icl_model *m, int64_t B) {
  const int64_t d = m->hidden;
  if (m->device != ICL_CPU || B < 2) return 0;
  const char *e = getenv("ICL_CPU_ATTN_PROJ"); /* read per call: tests switch it */
  if (e && strcmp(e, "0") == 0) return 0;
  return llama_state(m)->cfg.heads * llama_state(m)->hd == d && icl_cpu_gemm_row_exact(0, 3 * d, d) &&
         icl_cpu_gemm_row_exact(0, d, 3 * d) && icl_cpu_gemm_row_exact(0, d, d) && icl_cpu_attn_proj_fits(d);
}

void icl_llama_layout(const icl_model *m, int64_t B, int64_t T, int train, llama_layout *L) {
  const icl_llama *s = llama_state(m);
  const icl_pe_cfg *pe = &s->cfg.pe;
  const int64_t d = m->hidden, H = s->cfg.heads, hd = s->hd, F = s->F, BT = B * T;
  memset(L, 0, sizeof *L);
  int64_t off = 0;
#define TAKE(field, n) (L->field = off, off += pad16(n))
  L->cos = L->sin = L->slopes = L->bias = L->G = L->part = -1;
  if (pe->rot != ICL_ROT_NONE) {
    TAKE(cos, T * (hd / 2));
    TAKE(sin, T * (hd / 2));
  }
  if (pe->bias != ICL_BIAS_NONE) TAKE(bias, H * T * T);
  if (pe->bias == ICL_BIAS_ALIBI) TAKE(slopes, H);
  if (train && icl_llama_has_bias_params(s)) {
    TAKE(G, H * T * T);
    if (pe->bias == ICL_BIAS_FIRE) TAKE(part, 2 * T * (H * pe->fire_width + H + 2 * pe->fire_width + 2));
  }
  /* per-thread attention scratch, sized by the CPU kernels (a GPU table ignores it) */
  icl_attn_shape sh = {B, T, H, hd, 1};
  L->nthreads = max_threads();
  TAKE(attn_scratch, (int64_t)L->nthreads * icl_cpu_attn_kernels.scratch_floats(sh));
  if (train) {
    int64_t p = 0;
#define SUB(field, n) (L->field = p, p += pad16(n))
    SUB(o_h, BT * d);
    SUB(o_n1, BT * d);
    SUB(o_r1, BT);
    SUB(o_q, BT * d);
    SUB(o_k, BT * d);
    SUB(o_v, BT * d);
    SUB(o_P, B * H * T * T);
    SUB(o_attn, BT * d);
    SUB(o_a, BT * d);
    SUB(o_n2, BT * d);
    SUB(o_r2, BT);
    SUB(o_gu, BT * 2 * F);
    SUB(o_act, BT * F);
#undef SUB
    L->per_layer = p;
    L->layers = off;
    off += p * s->cfg.layers;
    TAKE(hL, BT * d);
    TAKE(rF, BT);
    L->trim = llama_trim(m, T);
    if (L->trim) TAKE(xc, BT * d);
    L->mlp_part = L->qkv_part = -1;
    if (m->device == ICL_CPU && icl_cpu_mlp_fused(d, F)) TAKE(mlp_part, icl_cpu_mlp_partial_floats(d, F));
    if (icl_llama_attn_proj(m, B)) TAKE(qkv_part, icl_attn_proj_part_floats(d, L->G >= 0 ? H * T * T : 0));
    /* forward: qkv 3d + delta d; backward: dgu 2F + dact F + dn d, or dn + dqkv 3d + dattn d */
    int64_t need = 4 * d;
    if (3 * F + d > need) need = 3 * F + d;
    if (5 * d > need) need = 5 * d;
    L->scratch = off;
    off += BT * need + 64;
  } else {
    TAKE(n, BT * d);
    TAKE(r, BT);
    TAKE(qkv, BT * 3 * d);
    TAKE(attn, BT * d);
    /* the MLP runs in row chunks so that [rows, 3F] never exceeds the chunk */
    L->mlp_rows = BT < 4096 ? BT : 4096;
    TAKE(mlp, L->mlp_rows * 3 * F);
  }
#undef TAKE
  L->total = off;
}

static int64_t llama_workspace(const icl_model *m, int64_t B, int64_t T, int train) {
  llama_layout L;
  icl_llama_layout(m, B, T, train, &L);
  return L.total;
}

static void llama_destroy(icl_ctx *ctx, icl_model *m) {
  (void)ctx;
  icl_llama *s = llama_state(m);
  if (!s) return;
  free(s->layer);
  free(s->host);
  free(s);
  m->backbone = NULL;
}

static int llama_init_params(icl_ctx *ctx, icl_model *m, uint64_t seed) {
  icl_llama *s = llama_state(m);
  icl_params *p = &m->params;
  const icl_pe_cfg *pe = &s->cfg.pe;
  uint64_t stream = 2; /* 0 and 1 belong to the wrapper */
  for (int64_t l = 0; l < s->cfg.layers; l++) {
    llama_layer *ly = &s->layer[l];
    for (int k = 0; k < LP__N; k++) {
      int rc = (k == LP_LN1 || k == LP_LN2)
                   ? icl_params_init_fill(ctx, p, ly->p[k], 1.0f)
                   : icl_params_init_normal(ctx, p, ly->p[k], 0, s->cfg.init_std, seed, stream);
      stream++;
      if (rc) return rc;
    }
    if (pe->bias == ICL_BIAS_FIRE) {
      /* PyTorch's default Linear init, kept for FIRE (spec §4): U(+-1/sqrt(fan_in)) */
      float b1 = 1.0f, b2 = 1.0f / sqrtf((float)pe->fire_width);
      if (icl_params_init_uniform(ctx, p, ly->fire[FP_W1], -b1, b1, seed, stream++) ||
          icl_params_init_uniform(ctx, p, ly->fire[FP_B1], -b1, b1, seed, stream++) ||
          icl_params_init_uniform(ctx, p, ly->fire[FP_W2], -b2, b2, seed, stream++) ||
          icl_params_init_uniform(ctx, p, ly->fire[FP_B2], -b2, b2, seed, stream++) ||
          icl_params_init_fill(ctx, p, ly->fire[FP_C], pe->fire_init_c) ||
          icl_params_init_fill(ctx, p, ly->fire[FP_L], pe->fire_init_L_mult))
        return ctx->errcode;
    }
    /* callback parameters are initialised by whoever supplied the callback (zeros until then) */
  }
  return icl_params_init_fill(ctx, p, s->p_norm, 1.0f);
}

/* a Lua bias callback runs host code in every forward; attention capture
 * hands out pointers that change between calls */
static int llama_graph_safe(const icl_model *m) {
  const icl_llama *s = llama_state(m);
  return s->cfg.pe.bias != ICL_BIAS_CALLBACK && s->n_capture == 0;
}

/* a training forward keeps layer 0's input in the layer's block: the
 * read-in writes it there */
static float *llama_input_slot(const icl_model *m, int64_t B, int64_t T, float *ws) {
  llama_layout L;
  icl_llama_layout(m, B, T, 1, &L);
  return ws + L.layers + L.o_h;
}

static const icl_backbone_ops llama_ops = {"llama",           llama_init_params,  llama_workspace,
                                           icl_llama_forward, icl_llama_backward, llama_destroy,
                                           llama_graph_safe,  llama_input_slot};

static int declare(icl_ctx *ctx, icl_model *m, int *idx, const char *name, int ndim, int64_t a, int64_t b) {
  int64_t shape[2] = {a, b};
  *idx = icl_params_declare(ctx, &m->params, name, ndim, shape, 1);
  return *idx < 0 ? ctx->errcode : ICL_OK;
}

static int adjacent(const icl_params *p, int a, int b) {
  return p->info[a].offset + p->info[a].numel == p->info[b].offset;
}

static int declare_layers(icl_ctx *ctx, icl_model *m, icl_llama *s) {
  const int64_t d = m->hidden, F = s->F, H = s->cfg.heads;
  const icl_pe_cfg *pe = &s->cfg.pe;
  const icl_bias_callback *cb = pe->bias == ICL_BIAS_CALLBACK ? pe->callback : NULL;
  static const char *const lname[LP__N] = {
      "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
      "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
      "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight"};
  static const char *const fname[FP__N] = {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight",
                                           "mlp.2.bias",   "c",          "L_multiplier"};
  char name[ICL_PARAM_NAME_MAX];
  for (int64_t l = 0; l < s->cfg.layers; l++) {
    llama_layer *ly = &s->layer[l];
    for (int k = 0; k < LP__N; k++) {
      snprintf(name, sizeof name, "layers.%lld.%s", (long long)l, lname[k]);
      int64_t r = d, c = d;
      if (k == LP_GATE || k == LP_UP) r = F;
      if (k == LP_DOWN) c = F;
      int rc = (k == LP_LN1 || k == LP_LN2) ? declare(ctx, m, &ly->p[k], name, 1, d, 0)
                                            : declare(ctx, m, &ly->p[k], name, 2, r, c);
      if (rc) return rc;
    }
    if (!adjacent(&m->params, ly->p[LP_Q], ly->p[LP_K]) || !adjacent(&m->params, ly->p[LP_K], ly->p[LP_V]) ||
        !adjacent(&m->params, ly->p[LP_GATE], ly->p[LP_UP]))
      return icl_errorf(ctx, ICL_EINVAL,
                        "llama: hidden_size %lld and intermediate %lld must make q/k/v and gate/up contiguous "
                        "(hidden_size a multiple of 4)",
                        (long long)d, (long long)F);
    if (pe->bias == ICL_BIAS_FIRE) {
      int64_t W = pe->fire_width;
      int64_t shp[FP__N][2] = {{W, 1}, {W, 0}, {H, W}, {H, 0}, {1, 0}, {1, 0}};
      int nd[FP__N] = {2, 1, 2, 1, 1, 1};
      for (int k = 0; k < FP__N; k++) {
        snprintf(name, sizeof name, "layers.%lld.self_attn.fire.%s", (long long)l, fname[k]);
        if (declare(ctx, m, &ly->fire[k], name, nd[k], shp[k][0], shp[k][1])) return ctx->errcode;
      }
    }
    if (cb && cb->per_layer)
      for (int k = 0; k < cb->nparams; k++) {
        snprintf(name, sizeof name, "layers.%lld.self_attn.%s.%s", (long long)l, cb->prefix, cb->names[k]);
        ly->cb[k] = icl_params_declare(ctx, &m->params, name, cb->ndims[k], cb->shapes[k], 1);
        if (ly->cb[k] < 0) return ctx->errcode;
      }
  }
  if (cb && !cb->per_layer)
    for (int k = 0; k < cb->nparams; k++) {
      snprintf(name, sizeof name, "%s.%s", cb->prefix, cb->names[k]);
      int idx = icl_params_declare(ctx, &m->params, name, cb->ndims[k], cb->shapes[k], 1);
      if (idx < 0) return ctx->errcode;
      for (int64_t l = 0; l < s->cfg.layers; l++) s->layer[l].cb[k] = idx;
    }
  return declare(ctx, m, &s->p_norm, "norm.weight", 1, d, 0);
}

icl_model *icl_llama_new(icl_ctx *ctx, const icl_llama_cfg *cfg, icl_device dev, uint64_t seed) {
  const int64_t d = cfg->hidden, H = cfg->heads;
  if (cfg->layers <= 0 || H <= 0 || d <= 0 || d % H) {
    icl_errorf(ctx, ICL_EINVAL, "llama: need layers > 0 and hidden_size (%lld) divisible by heads (%lld)", (long long)d,
               (long long)H);
    return NULL;
  }
  if (icl_pe_validate(ctx, &cfg->pe, H, d / H)) return NULL;
  if (cfg->pe.bias == ICL_BIAS_CALLBACK && cfg->pe.callback->nparams > ICL_BIAS_CB_MAX_PARAMS) {
    icl_errorf(ctx, ICL_EINVAL, "llama: a bias callback has at most %d parameters", ICL_BIAS_CB_MAX_PARAMS);
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return NULL;
  if (!be->attn) {
    icl_errorf(ctx, ICL_ENOTIMPL, "llama: no attention kernels on device %s", icl_device_name(dev));
    return NULL;
  }
  icl_model *m = icl_model_create(ctx, cfg->n_dims, d, dev);
  if (!m) return NULL;
  icl_llama *s = calloc(1, sizeof *s);
  llama_layer *layers = s ? calloc((size_t)cfg->layers, sizeof *layers) : NULL;
  if (!layers) {
    free(s);
    icl_model_free(ctx, m);
    icl_errorf(ctx, ICL_ENOMEM, "llama: out of memory");
    return NULL;
  }
  s->cfg = *cfg;
  s->hd = d / H;
  s->F = cfg->intermediate > 0 ? cfg->intermediate : 4 * d;
  s->cfg.intermediate = s->F;
  s->layer = layers;
  s->last_scale = s->last_mscale = 1.0;
  m->backbone = s;
  m->ops = &llama_ops;
  m->init_std = cfg->init_std;
  if (declare_layers(ctx, m, s) || icl_model_finish(ctx, m, seed)) {
    icl_error_prefix(ctx, "llama: ");
    icl_model_free(ctx, m);
    return NULL;
  }
  return m;
}

const icl_llama_cfg *icl_llama_config(const icl_model *m) {
  return m && m->ops == &llama_ops ? &llama_state(m)->cfg : NULL;
}

int icl_llama_set_capture(icl_ctx *ctx, icl_model *m, int64_t layer, float *out, int row) {
  if (!icl_llama_config(m)) return icl_errorf(ctx, ICL_EINVAL, "attention capture: not a llama model");
  icl_llama *s = llama_state(m);
  if (layer < 0 || layer >= s->cfg.layers)
    return icl_errorf(ctx, ICL_ERANGE, "attention capture: layer %lld out of range (model has %lld)", (long long)layer,
                      (long long)s->cfg.layers);
  icl_attn_capture *c = &s->layer[layer].cap;
  if (c->out && !out) s->n_capture--;
  if (!c->out && out) s->n_capture++;
  c->out = out;
  c->row = row;
  return ICL_OK;
}

void icl_llama_clear_capture(icl_model *m) {
  if (!icl_llama_config(m)) return;
  icl_llama *s = llama_state(m);
  for (int64_t l = 0; l < s->cfg.layers; l++) s->layer[l].cap.out = NULL;
  s->n_capture = 0;
}

int64_t icl_llama_published_params(const icl_model *m) {
  const icl_llama *s = llama_state(m);
  int64_t n = icl_params_count(&m->params) + (int64_t)ICL_LLAMA_VOCAB * m->hidden;
  if (s->cfg.pe.bias == ICL_BIAS_FIRE) n += s->cfg.layers; /* init_L, a frozen nn.Parameter per module */
  return n;
}

void icl_llama_last_rotation(const icl_model *m, double *scale, double *mscale) {
  const icl_llama *s = llama_state(m);
  *scale = s->last_scale;
  *mscale = s->last_mscale;
}
