/* Llama backward (models_and_pe.md §7). The residual gradient lives in dx
 * for the whole pass: each RMSNorm backward accumulates its input gradient
 * into it, so the residual adds cost nothing. The shared scratch holds, in
 * the MLP phase, dgu [BT, 2F] | dact [BT, F] | dn [BT, d] and, in the
 * attention phase, dn [BT, d] | dqkv [BT, 3d] | dattn [BT, d]. */
#include <math.h>
#include <string.h>

#include "core/backend.h"
#include "cpu_llama_mlp.h"
#include "llama_internal.h"

static float *P_(const icl_model *m, int idx) { return icl_params_data(&m->params, idx); }
static float *G_(const icl_model *m, int idx) { return icl_params_grad(&m->params, idx); }

/* The bias encoding's parameters from the logit gradient: dS [B, H, T, T]
 * summed over the batch first, or (dS NULL) that sum already in G. */
static int bias_backward(icl_ctx *ctx, icl_model *m, const icl_backend *be, int64_t l, int64_t B, int64_t T,
                         const float *dS, float *ws, const llama_layout *L) {
  icl_llama *s = llama_state(m);
  const icl_pe_cfg *pe = &s->cfg.pe;
  const llama_layer *ly = &s->layer[l];
  const int64_t H = s->cfg.heads;
  float *G = ws + L->G;
  int rc = dS ? be->attn->bias_grad_reduce(ctx, G, dS, B, H, T) : ICL_OK;
  if (rc) return rc;
  if (pe->bias == ICL_BIAS_FIRE) {
    float mult = pe->fire_scale_before ? (float)(1.0 / sqrt((double)s->hd)) : 1.0f;
    return be->attn->fire_bwd(ctx, G, P_(m, ly->fire[FP_W1]), P_(m, ly->fire[FP_B1]), P_(m, ly->fire[FP_W2]),
                              P_(m, ly->fire[FP_C]), P_(m, ly->fire[FP_L]), pe->fire_L_init, pe->fire_eps,
                              pe->fire_width, H, T, mult, G_(m, ly->fire[FP_W1]), G_(m, ly->fire[FP_B1]),
                              G_(m, ly->fire[FP_W2]), G_(m, ly->fire[FP_B2]), G_(m, ly->fire[FP_C]),
                              G_(m, ly->fire[FP_L]), (double *)(ws + L->part));
  }
  if (pe->callback->backward) {
    rc = pe->callback->backward(ctx, pe->callback->ud, (int)l, T, H, G);
    if (rc && !ctx->errcode) icl_errorf(ctx, ICL_ECALLBACK, "llama: the bias callback's backward failed");
    return rc ? ICL_ECALLBACK : ICL_OK;
  }
  return ICL_OK;
}

/* The MLP's backward from dy (the gradient of its output): the down and
 * gate/up weight gradients, dgu, and dn = d(MLP input); rows of the layer's
 * act / gu / n2. Then the norm before it (post_attention_layernorm, input
 * a): its weight gradient and dres += its input gradient. Fused per row
 * chunk on the CPU where it applies (dn is scratch then). */
static int mlp_bwd(icl_ctx *ctx, icl_model *m, const icl_backend *be, const llama_layer *ly, float *Y,
                   const llama_layout *L, float *dgu, float *dn, float *dact, const float *dy, float *dres,
                   int64_t rows, float *ws) {
  const int64_t d = m->hidden, F = llama_state(m)->F;
  if (L->mlp_part >= 0 && icl_cpu_mlp_fused(d, F)) {
    const icl_norm_bwd nb = {dres, G_(m, ly->p[LP_LN2]), Y + L->o_a, P_(m, ly->p[LP_LN2]), Y + L->o_r2};
    icl_cpu_mlp_bwd(dgu, dn, dact, G_(m, ly->p[LP_GATE]), G_(m, ly->p[LP_DOWN]), ws + L->mlp_part, dy, Y + L->o_gu,
                    Y + L->o_act, Y + L->o_n2, P_(m, ly->p[LP_GATE]), P_(m, ly->p[LP_DOWN]), rows, d, F, &nb);
    return ICL_OK;
  }
  int rc = be->gemm(ctx, 1, 0, d, F, rows, 1.0f, dy, d, 0, Y + L->o_act, F, 0, 1.0f, G_(m, ly->p[LP_DOWN]), F, 0, 1);
  if (!rc) rc = be->gemm(ctx, 0, 0, rows, F, d, 1.0f, dy, d, 0, P_(m, ly->p[LP_DOWN]), F, 0, 0.0f, dact, F, 0, 1);
  if (!rc) rc = be->nn->swiglu_bwd(ctx, dgu, dact, Y + L->o_gu, rows, F);
  if (!rc)
    rc = be->gemm(ctx, 1, 0, 2 * F, d, rows, 1.0f, dgu, 2 * F, 0, Y + L->o_n2, d, 0, 1.0f, G_(m, ly->p[LP_GATE]), d, 0,
                  1);
  if (!rc)
    rc = be->gemm(ctx, 0, 0, rows, d, 2 * F, 1.0f, dgu, 2 * F, 0, P_(m, ly->p[LP_GATE]), d, 0, 0.0f, dn, d, 0, 1);
  if (!rc)
    rc = be->nn->rmsnorm_bwd(ctx, dres, G_(m, ly->p[LP_LN2]), dn, Y + L->o_a, P_(m, ly->p[LP_LN2]), Y + L->o_r2, rows,
                             d, 1);
  return rc;
}

/* a trimmed pass's compact rows (R = BT / 2 each): the final norm's output
 * gradient at the x rows, then the residual gradient of the last layer's
 * input there */
static float *trim_dyc(float *ws, const llama_layout *L) { return ws + L->xc; }
static float *trim_dxc(float *ws, const llama_layout *L, int64_t BT, int64_t d) { return trim_dyc(ws, L) + BT / 2 * d; }

/* The last layer of a trimmed pass (llama_trim) down to its attention: the
 * final norm, MLP and o projection at the x rows, in the compact layout the
 * forward left (R = BT / 2 rows; dxc: the residual gradient of the layer
 * input's x rows, compact). With in_attn the fused CPU attention takes the o
 * projection's backward along and seeds the layer input's residual gradient
 * from dxc itself; else this leaves dattn (the attention phase's scratch)
 * with the x rows' gradient and zero at the y rows, exactly what the full
 * pass computes there, and dx with the residual gradient of the layer input
 * (zero at the y rows, which nothing after the attention reads). */
static int last_layer_x_rows(icl_ctx *ctx, icl_model *m, const icl_backend *be, const float *dy, float *dx, int64_t B,
                             int64_t T, float *ws, const llama_layout *L, int in_attn) {
  icl_llama *s = llama_state(m);
  const int64_t d = m->hidden, F = s->F, BT = B * T, R = BT / 2;
  const llama_layer *ly = &s->layer[s->cfg.layers - 1];
  float *Y = ws + L->layers + (s->cfg.layers - 1) * L->per_layer;
  float *scr = ws + L->scratch, *dyc = trim_dyc(ws, L), *dxc = trim_dxc(ws, L, BT, d);
  float *dgu = scr, *dact = scr + R * 2 * F, *dn = dact + R * F; /* MLP phase, compact */
  float *dattn = scr + BT * d + BT * 3 * d;                      /* attention phase, as in the full pass */
  int rc = be->copy(ctx, icl_llama_rows(dyc, R, d, d), ICL_F32, icl_llama_rows((float *)dy, R, d, 2 * d), ICL_F32);
  if (!rc) rc = be->nn->rmsnorm_bwd(ctx, dxc, G_(m, s->p_norm), dyc, ws + L->hL, P_(m, s->p_norm), ws + L->rF, R, d, 0);
  if (!rc) rc = mlp_bwd(ctx, m, be, ly, Y, L, dgu, dn, dact, dxc, dxc, R, ws);
  if (rc || in_attn) return rc;
  /* o projection: the attention output's x rows sit 2d apart */
  rc = be->gemm(ctx, 1, 0, d, d, R, 1.0f, dxc, d, 0, Y + L->o_attn, 2 * d, 0, 1.0f, G_(m, ly->p[LP_O]), d, 0, 1);
  if (!rc) rc = be->fill(ctx, icl_llama_rows(dattn, BT, d, d), ICL_F32, 0.0);
  if (!rc) rc = be->gemm(ctx, 0, 0, R, d, d, 1.0f, dxc, d, 0, P_(m, ly->p[LP_O]), d, 0, 0.0f, dattn, 2 * d, 0, 1);
  /* the residual gradient of the layer input, at full height for the rest */
  if (!rc) rc = be->fill(ctx, icl_llama_rows(dx, BT, d, d), ICL_F32, 0.0);
  if (!rc) rc = be->copy(ctx, icl_llama_rows(dx, R, d, 2 * d), ICL_F32, icl_llama_rows(dxc, R, d, d), ICL_F32);
  return rc;
}

int icl_llama_backward(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws) {
  const icl_backend *be = icl_backend_get(ctx, m->device);
  if (!be) return ctx->errcode;
  icl_llama *s = llama_state(m);
  llama_layout L;
  icl_llama_layout(m, B, T, 1, &L);
  const int64_t d = m->hidden, F = s->F, BT = B * T, nl = s->cfg.layers;
  const float scale = (float)(1.0 / sqrt((double)s->hd));
  const float *cs = L.cos >= 0 ? ws + L.cos : NULL, *sn = L.sin >= 0 ? ws + L.sin : NULL;
  const int bias_params = icl_llama_has_bias_params(s);
  icl_attn_shape sh = {B, T, s->cfg.heads, s->hd, 1};
  const int proj = L.qkv_part >= 0 && icl_llama_attn_proj(m, B); /* q/k/v and o projections inside the attention */
  float *scr = ws + L.scratch;
  float *dgu = scr, *dact = scr + BT * 2 * F, *dn = dact + BT * F; /* MLP phase */
  float *dqkv = scr + BT * d, *dattn = dqkv + BT * 3 * d;          /* attention phase (dn = scr) */
  int rc = ICL_OK;
  if (L.trim) {
    rc = last_layer_x_rows(ctx, m, be, dy, dx, B, T, ws, &L, proj);
  } else {
    /* final norm: dx = d h_L (overwrites) */
    rc = be->nn->rmsnorm_bwd(ctx, dx, G_(m, s->p_norm), dy, ws + L.hL, P_(m, s->p_norm), ws + L.rF, BT, d, 0);
  }
  for (int64_t l = nl - 1; l >= 0 && !rc; l--) {
    const llama_layer *ly = &s->layer[l];
    float *Y = ws + L.layers + l * L.per_layer;
    if (!(L.trim && l == nl - 1)) { /* a trimmed last layer did its MLP and o projection above */
      /* MLP: h' = a + down(silu(gate) * up) */
      rc = mlp_bwd(ctx, m, be, ly, Y, &L, dgu, dn, dact, dx, dx, BT, ws);
      /* attention: a = h + o_proj(attn); the fused attention takes the o
       * projection's backward along */
      if (!rc && !proj)
        rc = be->gemm(ctx, 1, 0, d, d, BT, 1.0f, dx, d, 0, Y + L.o_attn, d, 0, 1.0f, G_(m, ly->p[LP_O]), d, 0, 1);
      if (!rc && !proj)
        rc = be->gemm(ctx, 0, 0, BT, d, d, 1.0f, dx, d, 0, P_(m, ly->p[LP_O]), d, 0, 0.0f, dattn, d, 0, 1);
    }
    /* a trimmed layer: the o projection's gradient comes from the compact
     * x rows (dxc), in the fused attention or above */
    const int trimmed = L.trim && l == nl - 1;
    const icl_norm_bwd n1 = {dx, G_(m, ly->p[LP_LN1]), Y + L.o_h, P_(m, ly->p[LP_LN1]), Y + L.o_r1};
    /* the fused attention sums the bias gradient itself: no dS pass */
    const icl_attn_oproj o = {.Wo = P_(m, ly->p[LP_O]),
                              .dres = trimmed ? trim_dxc(ws, &L, BT, d) : dx,
                              .attn = Y + L.o_attn,
                              .dWo = G_(m, ly->p[LP_O]),
                              .nbwd = &n1,
                              .G = bias_params ? ws + L.G : NULL};
    sh.qstep = trimmed ? 2 : 1; /* as the forward ran it */
    float *dS = bias_params && !proj ? Y + L.o_P : NULL;
    if (!rc && proj) { /* the Wqkv gradient and the norm's backward come out of the attention */
      rc = be->attn->bwd_proj(ctx, sh, scr, G_(m, ly->p[LP_Q]), ws + L.qkv_part, Y + L.o_n1, P_(m, ly->p[LP_Q]), dattn,
                              cs, sn, scale, Y + L.o_q, Y + L.o_k, Y + L.o_v, Y + L.o_P, dS, &o, ws + L.attn_scratch,
                              L.nthreads);
    } else if (!rc) {
      rc = be->attn->bwd(ctx, sh, dqkv, dattn, cs, sn, scale, Y + L.o_q, Y + L.o_k, Y + L.o_v, Y + L.o_P, dS,
                         ws + L.attn_scratch, L.nthreads);
      if (!rc)
        rc = be->gemm(ctx, 1, 0, 3 * d, d, BT, 1.0f, dqkv, 3 * d, 0, Y + L.o_n1, d, 0, 1.0f, G_(m, ly->p[LP_Q]), d, 0,
                      1);
      if (!rc)
        rc = be->gemm(ctx, 0, 0, BT, d, 3 * d, 1.0f, dqkv, 3 * d, 0, P_(m, ly->p[LP_Q]), d, 0, 0.0f, scr, d, 0, 1);
    }
    if (!rc && bias_params) rc = bias_backward(ctx, m, be, l, B, T, dS, ws, &L);
    if (!rc && !proj) /* (the fused attention did it) */
      rc = be->nn->rmsnorm_bwd(ctx, dx, G_(m, ly->p[LP_LN1]), scr, Y + L.o_h, P_(m, ly->p[LP_LN1]), Y + L.o_r1, BT, d,
                               1);
  }
  return rc;
}
