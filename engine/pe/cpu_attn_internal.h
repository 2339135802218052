/* Pieces of the CPU attention shared by its passes over (batch, head) tiles
 * (cpu_attn.c) and the passes with the qkv projection fused in
 * (cpu_attn_proj.c). */
#ifndef ICL_CPU_ATTN_INTERNAL_H
#define ICL_CPU_ATTN_INTERNAL_H

#include "attn_kernels.h"

/* floats of one tile's scratch; a thread's scratch (scratch_floats) is this
 * followed by T x 3 H hd floats of fused projection rows and T x H hd of
 * output-gradient rows, each rounded up to 16 */
int64_t icl_cpu_attn_tile_floats(icl_attn_shape s);

/* One (batch b, head h) tile's forward from batch b's fused projection rows
 * qkv_b (row stride 3 H hd), writing its out rows and (keep) q, k, v, P. */
void icl_cpu_attn_fwd_tile(icl_attn_shape s, int64_t b, int64_t h, float *out_b, const float *qkv_b, const float *cos_t,
                           const float *sin_t, const float *bias, float scale, float *q, float *k, float *v, float *P,
                           int keep, const icl_attn_capture *cap, float *sc);
/* One tile's backward into head h's columns of batch b's gradient rows
 * dqkv_b (row stride 3 H hd). The logit gradient dS of the tile, for bias
 * gradients: written to dS (its [B, H, T, T] layout, may alias P) when not
 * NULL; added to Gh [T, T] (zero above the diagonal) when not NULL, or
 * written there when g_first. */
void icl_cpu_attn_bwd_tile(icl_attn_shape s, int64_t b, int64_t h, float *dqkv_b, const float *dout_b,
                           const float *cos_t, const float *sin_t, float scale, const float *q, const float *k,
                           const float *v, float *P, float *dS, float *Gh, int g_first, float *sc);

/* whether both weights of hidden size D fit the passes' pack buffers */
int icl_cpu_attn_proj_fits(int64_t D);
int icl_cpu_attn_fwd_proj(icl_ctx *ctx, icl_attn_shape s, float *out, const float *x, const float *Wqkv,
                          const float *cos_t, const float *sin_t, const float *bias, float scale, float *q, float *k,
                          float *v, float *P, const icl_attn_capture *cap, const icl_attn_oproj *o, float *scratch,
                          int nthreads);
int icl_cpu_attn_bwd_proj(icl_ctx *ctx, icl_attn_shape s, float *dx, float *dWqkv, float *part, const float *x,
                          const float *Wqkv, const float *dout, const float *cos_t, const float *sin_t, float scale,
                          const float *q, const float *k, const float *v, float *P, float *dS, const icl_attn_oproj *o,
                          float *scratch, int nthreads);

#endif
