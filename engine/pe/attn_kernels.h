/* The attention area's device kernels (one table per backend): causal
 * softmax attention with an optional rotation of q/k and an optional
 * additive bias, its backward, and the kernels of the bias encodings.
 *
 * Layouts (row-major, contiguous):
 *   qkv   [B*T, 3*H*hd]  the fused projection; q, k, v blocks, head-major
 *                        inside each block (head h owns columns h*hd..h*hd+hd-1)
 *   q,k,v [B, H, T, hd]  post-rotation copies kept for backward
 *   P     [B, H, T, T]   probabilities kept for backward (row i valid for j <= i)
 *   out   [B*T, H*hd]    attention output before o_proj, head-major columns
 *   cos,sin [T, hd/2]    rotation tables with the attention factor folded in
 *                        (NULL: no rotation)
 *   bias  [H, T, T]      added to the scaled logits (NULL: none)
 * Logits: S = scale * q'k'^T + bias, causal (j > i masked, P = 0 there). */
#ifndef ICL_ATTN_KERNELS_H
#define ICL_ATTN_KERNELS_H

#include "core/context.h"
#include "nn/norm_ride.h"

typedef struct icl_attn_shape {
  int64_t B, T, H, hd;
  /* A hint, 0 or 1: every query row. k > 1: only the rows 0, k, 2k, ... are
   * needed (the others' outputs are never read and their output gradients
   * are zero); a kernel may skip the rest, leaving their out and P rows
   * unwritten and their dq zero, or compute them anyway. */
  int64_t qstep;
} icl_attn_shape;

/* Which probabilities a forward should hand out (analyses). */
typedef struct icl_attn_capture {
  float *out; /* [B, H, T, T] (all rows) or [B, H, 1, T] (one query row); NULL: none */
  int row;    /* -1: every query row; else only this (0-based) query row */
} icl_attn_capture;

/* What rides along the projection-fused passes (below): the o projection
 * and the RMSNorms on either side of the attention. */
typedef struct icl_attn_oproj {
  const float *Wo;   /* [H*hd, H*hd] */
  float *delta;      /* forward: out Wo^T, [B*T, H*hd] (qstep > 1: the query rows', compact) */
  const float *dres; /* backward: the gradient of delta (qstep > 1: compact) */
  const float *attn; /* backward: the forward's out */
  float *dWo;        /* backward: += dres^T attn */
  /* forward, with Wo: the residual add of delta and the norm after it
   * (delta then stays in the kernel's scratch, and the delta buffer is not
   * written); NULL: none */
  const icl_add_norm *norm;
  /* backward: the norm before the attention, from dx (which is then
   * scratch); NULL: none */
  const icl_norm_bwd *nbwd;
  /* backward: the bias gradient G[h] = sum_b dS[b, h] ([H, T, T], zero
   * above the diagonal), summed in the partials (then dS may be NULL: the
   * logit gradient is not written out); NULL: none */
  float *G;
} icl_attn_oproj;

typedef struct icl_attn_kernels {
  /* Forward. Training (keep != 0): q, k, v, P are written for backward.
   * Inference (keep == 0): q, k, v, P may be NULL; the kernel uses its own
   * per-thread scratch (scratch, scratch_floats(shape) floats per thread
   * for up to nthreads threads). */
  int (*fwd)(icl_ctx *ctx, icl_attn_shape s, float *out, const float *qkv, const float *cos_t, const float *sin_t,
             const float *bias, float scale, float *q, float *k, float *v, float *P, int keep,
             const icl_attn_capture *cap, float *scratch, int nthreads);
  /* Backward from the kept q, k, v, P: dout [B*T, H*hd] -> dqkv [B*T, 3*H*hd]
   * (rotation undone). When dS != NULL the logit gradient is written there
   * ([B, H, T, T], may alias P: P is consumed), for bias gradients. */
  int (*bwd)(icl_ctx *ctx, icl_attn_shape s, float *dqkv, const float *dout, const float *cos_t, const float *sin_t,
             float scale, const float *q, const float *k, const float *v, float *P, float *dS, float *scratch,
             int nthreads);
  /* floats of per-thread scratch that fwd/bwd need for this shape */
  int64_t (*scratch_floats)(icl_attn_shape s);
  /* G[h] = sum_b dS[b, h] (lower triangle; zero above) */
  int (*bias_grad_reduce)(icl_ctx *ctx, float *G, const float *dS, int64_t B, int64_t H, int64_t T);
  /* ALiBi: bias[h, i, j] = -slopes[h] * (i - j) for j <= i */
  int (*alibi_bias)(icl_ctx *ctx, float *bias, const float *slopes, int64_t H, int64_t T);
  /* FIRE forward: bias [H, T, T] from the layer's parameters. mult scales the
   * bias (1, or 1/sqrt(hd) for the "before scaling" convention). */
  int (*fire_fwd)(icl_ctx *ctx, float *bias, const float *W1, const float *b1, const float *W2, const float *b2,
                  const float *c, const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T,
                  float mult);
  /* FIRE backward from G [H, T, T]: adds into dW1, db1, dW2, db2, dc, dLmult.
   * part: T * (H*W + H + 2*W + 2) doubles of scratch (per-row partial sums,
   * reduced in row order so any thread count gives the same result). */
  int (*fire_bwd)(icl_ctx *ctx, const float *G, const float *W1, const float *b1, const float *W2, const float *c,
                  const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T, float mult, float *dW1,
                  float *db1, float *dW2, float *db2, float *dc, float *dLmult, double *part);
  /* Optional (NULL where a backend has none): the training forward with the
   * qkv projection fused in, from x [B*T, d] and Wqkv [3*H*hd, d] (q, k, v
   * rows of nn.Linear weights); the same outputs as the projection followed
   * by fwd(keep = 1), bit for bit. With o (and o->Wo), also the o projection
   * of the output: o->delta = out Wo^T, as its own GEMM would give it. */
  int (*fwd_proj)(icl_ctx *ctx, icl_attn_shape s, float *out, const float *x, const float *Wqkv, const float *cos_t,
                  const float *sin_t, const float *bias, float scale, float *q, float *k, float *v, float *P,
                  const icl_attn_capture *cap, const icl_attn_oproj *o, float *scratch, int nthreads);
  /* ... and its backward: bwd, then dx = dqkv Wqkv (written, [B*T, d]) and
   * dWqkv += dqkv^T x. With o: dout is not read but computed as o->dres Wo,
   * and o->dWo += o->dres^T o->attn (qstep > 1: at the query rows, o->dres
   * compact, which then also seeds o->nbwd->dres there, zero at the other
   * rows, before the norm's backward adds to it). The weight gradients sum batch elements
   * into ICL_ATTN_PROJ_PARTS fixed partials added in order, so any thread
   * count gives the same bits (part: icl_attn_proj_part_floats floats); so
   * does o->G, the bias gradient. */
  int (*bwd_proj)(icl_ctx *ctx, icl_attn_shape s, float *dx, float *dWqkv, float *part, const float *x,
                  const float *Wqkv, const float *dout, const float *cos_t, const float *sin_t, float scale,
                  const float *q, const float *k, const float *v, float *P, float *dS, const icl_attn_oproj *o,
                  float *scratch, int nthreads);
} icl_attn_kernels;

#define ICL_ATTN_PROJ_PARTS 8
/* partial weight gradients of Wqkv, Wo and the norm's weight, for hidden
 * size D = H hd, and (nG = H T T, else 0) of the bias */
static inline int64_t icl_attn_proj_part_floats(int64_t D, int64_t nG) {
  return ICL_ATTN_PROJ_PARTS * (4 * D * D + D + nG);
}

extern const icl_attn_kernels icl_cpu_attn_kernels;
#ifdef ICL_HAVE_CUDA
extern const icl_attn_kernels icl_cuda_attn_kernels; /* engine/cuda/cuda_attn_*.cu */
#endif

#endif
