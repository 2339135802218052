/* Llama forward. Training keeps, per layer, what backward needs (layer
 * input, normed inputs and their rstd, post-rotation q/k/v, probabilities,
 * attention output, the post-attention residual, gate/up pre-activations).
 * Inference keeps nothing per layer: the residual stream is updated in
 * place (the o_proj / down_proj GEMMs accumulate into it), the MLP runs in
 * row chunks, and attention probabilities exist only four rows at a time per
 * thread, so B = 64 x T = 816 fits in a few hundred MB. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "cpu_llama_mlp.h"
#include "llama_internal.h"

static float *P_(const icl_model *m, int idx) { return icl_params_data(&m->params, idx); }

/* rotation tables and the fixed bias (ALiBi) of this forward; FIRE and
 * callback biases are per layer (layer_bias) */
static int prepare_pe(icl_ctx *ctx, icl_model *m, const icl_backend *be, int64_t T, float *ws, const llama_layout *L) {
  icl_llama *s = llama_state(m);
  const icl_pe_cfg *pe = &s->cfg.pe;
  const int64_t half = s->hd / 2, H = s->cfg.heads;
  int64_t need = 2 * T * half + H + half;
  if (need > s->host_cap) {
    float *h = realloc(s->host, sizeof(float) * (size_t)need);
    if (!h) return icl_errorf(ctx, ICL_ENOMEM, "llama: out of memory for rotation tables");
    s->host = h;
    s->host_cap = need;
  }
  s->last_scale = s->last_mscale = 1.0;
  /* the tables depend on T and the configuration only, and nothing else
   * writes their part of the arena: the copies made for this T into this
   * arena are still there */
  const int have = ws == m->ws && s->pe_ws == ws && s->pe_gen == m->arena_gen && s->pe_T == T;
  s->pe_ws = NULL;
  int rc = ICL_OK;
  if (pe->rot != ICL_ROT_NONE) {
    float *inv = s->host + 2 * T * half + H;
    icl_pe_rotation(pe, s->hd, T, inv, &s->last_mscale, &s->last_scale);
    if (!have) {
      icl_rope_tables(inv, s->last_mscale, T, half, s->host, s->host + T * half);
      rc = be->memcpy(ctx, ws + L->cos, m->device, s->host, ICL_CPU, sizeof(float) * (size_t)(T * half));
      if (!rc)
        rc = be->memcpy(ctx, ws + L->sin, m->device, s->host + T * half, ICL_CPU, sizeof(float) * (size_t)(T * half));
    }
  }
  if (!rc && pe->bias == ICL_BIAS_ALIBI) {
    if (!have) {
      icl_alibi_slopes(H, s->host);
      rc = be->memcpy(ctx, ws + L->slopes, m->device, s->host, ICL_CPU, sizeof(float) * (size_t)H);
    }
    if (!rc) rc = be->attn->alibi_bias(ctx, ws + L->bias, ws + L->slopes, H, T);
  }
  if (!rc && ws == m->ws) {
    s->pe_ws = ws;
    s->pe_gen = m->arena_gen;
    s->pe_T = T;
  }
  return rc;
}

static int layer_bias(icl_ctx *ctx, icl_model *m, const icl_backend *be, int64_t l, int64_t T, float *bias) {
  icl_llama *s = llama_state(m);
  const icl_pe_cfg *pe = &s->cfg.pe;
  const llama_layer *ly = &s->layer[l];
  if (pe->bias == ICL_BIAS_FIRE) {
    float mult = pe->fire_scale_before ? (float)(1.0 / sqrt((double)s->hd)) : 1.0f;
    return be->attn->fire_fwd(ctx, bias, P_(m, ly->fire[FP_W1]), P_(m, ly->fire[FP_B1]), P_(m, ly->fire[FP_W2]),
                              P_(m, ly->fire[FP_B2]), P_(m, ly->fire[FP_C]), P_(m, ly->fire[FP_L]), pe->fire_L_init,
                              pe->fire_eps, pe->fire_width, s->cfg.heads, T, mult);
  }
  if (pe->bias == ICL_BIAS_CALLBACK) {
    int rc = pe->callback->forward(ctx, pe->callback->ud, (int)l, T, s->cfg.heads, bias);
    if (rc && !ctx->errcode) icl_errorf(ctx, ICL_ECALLBACK, "llama: the bias callback failed");
    return rc ? ICL_ECALLBACK : ICL_OK;
  }
  return ICL_OK;
}

static int mlp_fused(const icl_model *m) {
  return m->device == ICL_CPU && icl_cpu_mlp_fused(m->hidden, llama_state(m)->F);
}

/* out = down(silu(gate) * up) of x's rows, keeping gu (and act, unfused),
 * then with res the residual add and the next norm (h = a + out, n, rstd):
 * fused per row chunk on the CPU where it applies (cpu_llama_mlp.c, same
 * bits; out is scratch then) */
static int mlp_fwd(icl_ctx *ctx, icl_model *m, const icl_backend *be, const llama_layer *ly, float *gu, float *act,
                   float *out, const float *x, int64_t rows, const icl_add_norm *res) {
  const int64_t d = m->hidden, F = llama_state(m)->F;
  if (mlp_fused(m)) {
    icl_cpu_mlp_fwd(gu, act, out, x, P_(m, ly->p[LP_GATE]), P_(m, ly->p[LP_DOWN]), rows, d, F, res);
    return ICL_OK;
  }
  int rc = be->gemm(ctx, 0, 1, rows, 2 * F, d, 1.0f, x, d, 0, P_(m, ly->p[LP_GATE]), d, 0, 0.0f, gu, 2 * F, 0, 1);
  if (!rc) rc = be->nn->swiglu_fwd(ctx, act, gu, rows, F);
  if (!rc) rc = be->gemm(ctx, 0, 1, rows, d, F, 1.0f, act, F, 0, P_(m, ly->p[LP_DOWN]), F, 0, 0.0f, out, d, 0, 1);
  if (!rc && res) rc = be->nn->add_rmsnorm_fwd(ctx, res->a, res->y, res->rstd, res->x, out, res->w, rows, d, res->eps);
  return rc;
}

/* The last layer after its attention, at the x tokens only (llama_trim):
 * the even rows of its input and attention output are gathered into R =
 * BT / 2 compact rows, and the layer's a, n2, r2, gu, act, the final norm's
 * input and rstd all hold R compact rows; y gets its even rows. With
 * in_attn the fused CPU attention did the o projection and the norm after
 * it; else the gather, the product and the norm run as passes of their own.
 * The fused CPU MLP's final norm writes y's even rows itself; else through
 * a compact copy. */
static int last_layer_x_rows(icl_ctx *ctx, icl_model *m, const icl_backend *be, float *ws, float *Y, float *y,
                             float *hc, float *delta, int64_t BT, const llama_layout *L, int in_attn) {
  icl_llama *s = llama_state(m);
  const llama_layer *ly = &s->layer[s->cfg.layers - 1];
  const int64_t d = m->hidden, R = BT / 2;
  const float eps = s->cfg.rms_eps;
  int rc = ICL_OK;
  if (!in_attn) { /* hc: the layer input's x rows (the qkv scratch is free after attention) */
    rc = be->copy(ctx, icl_llama_rows(hc, R, d, d), ICL_F32, icl_llama_rows(Y + L->o_h, R, d, 2 * d), ICL_F32);
    if (!rc)
      rc = be->gemm(ctx, 0, 1, R, d, d, 1.0f, Y + L->o_attn, 2 * d, 0, P_(m, ly->p[LP_O]), d, 0, 0.0f, delta, d, 0, 1);
    if (!rc)
      rc = be->nn->add_rmsnorm_fwd(ctx, Y + L->o_a, Y + L->o_n2, Y + L->o_r2, hc, delta, P_(m, ly->p[LP_LN2]), R, d,
                                   eps);
  }
  const int direct = mlp_fused(m);
  /* the final norm into y's even rows, or into hc (free again), then there */
  const icl_add_norm fin = {Y + L->o_a, P_(m, s->p_norm),       ws + L->hL, direct ? y : hc, ws + L->rF,
                            eps,        .ystep = direct ? 2 : 1};
  if (!rc) rc = mlp_fwd(ctx, m, be, ly, Y + L->o_gu, Y + L->o_act, delta, Y + L->o_n2, R, &fin);
  if (!rc && !direct) rc = be->copy(ctx, icl_llama_rows(y, R, d, 2 * d), ICL_F32, icl_llama_rows(hc, R, d, d), ICL_F32);
  return rc;
}

static int forward_train(icl_ctx *ctx, icl_model *m, const icl_backend *be, const float *x, float *y, int64_t B,
                         int64_t T, float *ws, const llama_layout *L) {
  icl_llama *s = llama_state(m);
  const int64_t d = m->hidden, BT = B * T, nl = s->cfg.layers;
  const float eps = s->cfg.rms_eps, scale = (float)(1.0 / sqrt((double)s->hd));
  const float *cs = L->cos >= 0 ? ws + L->cos : NULL, *sn = L->sin >= 0 ? ws + L->sin : NULL;
  float *bias = L->bias >= 0 ? ws + L->bias : NULL;
  float *qkv = ws + L->scratch, *delta = qkv + BT * 3 * d;
  icl_attn_shape sh = {B, T, s->cfg.heads, s->hd, 1};
  const int proj = L->qkv_part >= 0 && icl_llama_attn_proj(m, B); /* q/k/v and o projections inside the attention */
  float *Y0 = ws + L->layers;
  /* the input's own buffer, or (the model wrapper's read-in, input_slot) already there */
  int rc = x == Y0 + L->o_h ? ICL_OK
                            : be->memcpy(ctx, Y0 + L->o_h, m->device, x, m->device, sizeof(float) * (size_t)(BT * d));
  if (!rc)
    rc = be->nn->rmsnorm_fwd(ctx, Y0 + L->o_n1, Y0 + L->o_r1, Y0 + L->o_h, P_(m, s->layer[0].p[LP_LN1]), BT, d, eps);
  for (int64_t l = 0; l < nl && !rc; l++) {
    const llama_layer *ly = &s->layer[l];
    float *Y = ws + L->layers + l * L->per_layer;
    if (!proj)
      rc = be->gemm(ctx, 0, 1, BT, 3 * d, d, 1.0f, Y + L->o_n1, d, 0, P_(m, ly->p[LP_Q]), d, 0, 0.0f, qkv, 3 * d, 0, 1);
    if (!rc && bias) rc = layer_bias(ctx, m, be, l, T, bias);
    /* a trimmed last layer needs its attention at the x tokens only */
    const int trimmed = L->trim && l == nl - 1;
    sh.qstep = trimmed ? 2 : 1;
    const icl_attn_capture *cap = s->n_capture ? &ly->cap : NULL;
    /* the o projection and the norm after it ride along the fused
     * attention (in a trimmed layer at the x rows, into compact rows) */
    const icl_add_norm n2 = {Y + L->o_h, P_(m, ly->p[LP_LN2]),    Y + L->o_a, Y + L->o_n2, Y + L->o_r2,
                             eps,        .xstep = trimmed ? 2 : 1};
    const icl_attn_oproj o = {.Wo = P_(m, ly->p[LP_O]), .delta = delta, .norm = &n2};
    if (!rc && proj)
      rc = be->attn->fwd_proj(ctx, sh, Y + L->o_attn, Y + L->o_n1, P_(m, ly->p[LP_Q]), cs, sn, bias, scale, Y + L->o_q,
                              Y + L->o_k, Y + L->o_v, Y + L->o_P, cap, &o, ws + L->attn_scratch, L->nthreads);
    else if (!rc)
      rc = be->attn->fwd(ctx, sh, Y + L->o_attn, qkv, cs, sn, bias, scale, Y + L->o_q, Y + L->o_k, Y + L->o_v,
                         Y + L->o_P, 1, cap, ws + L->attn_scratch, L->nthreads);
    if (!rc && trimmed) {
      rc = last_layer_x_rows(ctx, m, be, ws, Y, y, qkv, delta, BT, L, proj);
      break;
    }
    if (!rc && !proj)
      rc = be->gemm(ctx, 0, 1, BT, d, d, 1.0f, Y + L->o_attn, d, 0, P_(m, ly->p[LP_O]), d, 0, 0.0f, delta, d, 0, 1);
    if (!rc && !proj) /* (the fused attention did it) */
      rc = be->nn->add_rmsnorm_fwd(ctx, Y + L->o_a, Y + L->o_n2, Y + L->o_r2, Y + L->o_h, delta, P_(m, ly->p[LP_LN2]),
                                   BT, d, eps);
    /* the residual and the next norm (or the final one) ride along */
    icl_add_norm res = {Y + L->o_a, P_(m, s->p_norm), ws + L->hL, y, ws + L->rF, eps, 0, 0};
    if (l + 1 < nl) {
      float *N = Y + L->per_layer; /* the next layer's block */
      res =
          (icl_add_norm){Y + L->o_a, P_(m, s->layer[l + 1].p[LP_LN1]), N + L->o_h, N + L->o_n1, N + L->o_r1, eps, 0, 0};
    }
    if (!rc) rc = mlp_fwd(ctx, m, be, ly, Y + L->o_gu, Y + L->o_act, delta, Y + L->o_n2, BT, &res);
  }
  return rc;
}

static int forward_infer(icl_ctx *ctx, icl_model *m, const icl_backend *be, const float *x, float *y, int64_t B,
                         int64_t T, float *ws, const llama_layout *L) {
  icl_llama *s = llama_state(m);
  const int64_t d = m->hidden, F = s->F, BT = B * T, nl = s->cfg.layers, R = L->mlp_rows;
  const float eps = s->cfg.rms_eps, scale = (float)(1.0 / sqrt((double)s->hd));
  const float *cs = L->cos >= 0 ? ws + L->cos : NULL, *sn = L->sin >= 0 ? ws + L->sin : NULL;
  float *bias = L->bias >= 0 ? ws + L->bias : NULL;
  float *n = ws + L->n, *r = ws + L->r, *qkv = ws + L->qkv, *attn = ws + L->attn, *gu = ws + L->mlp,
        *act = gu + R * 2 * F;
  icl_attn_shape sh = {B, T, s->cfg.heads, s->hd, 1};
  int rc = be->memcpy(ctx, y, m->device, x, m->device, sizeof(float) * (size_t)(BT * d));
  if (!rc) rc = be->nn->rmsnorm_fwd(ctx, n, r, y, P_(m, s->layer[0].p[LP_LN1]), BT, d, eps);
  for (int64_t l = 0; l < nl && !rc; l++) {
    const llama_layer *ly = &s->layer[l];
    rc = be->gemm(ctx, 0, 1, BT, 3 * d, d, 1.0f, n, d, 0, P_(m, ly->p[LP_Q]), d, 0, 0.0f, qkv, 3 * d, 0, 1);
    if (!rc && bias) rc = layer_bias(ctx, m, be, l, T, bias);
    if (!rc)
      rc = be->attn->fwd(ctx, sh, attn, qkv, cs, sn, bias, scale, NULL, NULL, NULL, NULL, 0,
                         s->n_capture ? &ly->cap : NULL, ws + L->attn_scratch, L->nthreads);
    /* y += attn Wo^T: the residual add rides on the GEMM */
    if (!rc) rc = be->gemm(ctx, 0, 1, BT, d, d, 1.0f, attn, d, 0, P_(m, ly->p[LP_O]), d, 0, 1.0f, y, d, 0, 1);
    if (!rc) rc = be->nn->rmsnorm_fwd(ctx, n, r, y, P_(m, ly->p[LP_LN2]), BT, d, eps);
    for (int64_t r0 = 0; r0 < BT && !rc; r0 += R) {
      int64_t rows = BT - r0 < R ? BT - r0 : R;
      rc = be->gemm(ctx, 0, 1, rows, 2 * F, d, 1.0f, n + r0 * d, d, 0, P_(m, ly->p[LP_GATE]), d, 0, 0.0f, gu, 2 * F, 0,
                    1);
      if (!rc) rc = be->nn->swiglu_fwd(ctx, act, gu, rows, F);
      if (!rc)
        rc = be->gemm(ctx, 0, 1, rows, d, F, 1.0f, act, F, 0, P_(m, ly->p[LP_DOWN]), F, 0, 1.0f, y + r0 * d, d, 0, 1);
    }
    if (rc) break;
    if (l + 1 < nl)
      rc = be->nn->rmsnorm_fwd(ctx, n, r, y, P_(m, s->layer[l + 1].p[LP_LN1]), BT, d, eps);
    else
      rc = be->nn->rmsnorm_fwd(ctx, y, r, y, P_(m, s->p_norm), BT, d, eps); /* rows are independent: in place */
  }
  return rc;
}

int icl_llama_forward(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws,
                      int train) {
  const icl_backend *be = icl_backend_get(ctx, m->device);
  if (!be) return ctx->errcode;
  llama_layout L;
  icl_llama_layout(m, B, T, train, &L);
  int rc = prepare_pe(ctx, m, be, T, ws, &L);
  if (!rc) rc = train ? forward_train(ctx, m, be, x, y, B, T, ws, &L) : forward_infer(ctx, m, be, x, y, B, T, ws, &L);
  return rc;
}
