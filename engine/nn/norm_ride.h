/* An RMSNorm riding along a fused CPU pass (the Llama MLP, the attention with
 * its projections), done per row while the pass's output rows are in L1
 * instead of a pass of its own over memory; nn/rmsnorm_rows.h does the rows,
 * so the values are the same bits as the rmsnorm kernels'. */
#ifndef ICL_NORM_RIDE_H
#define ICL_NORM_RIDE_H

#include <stdint.h>

/* forward: a = x + delta (delta: the pass's output), y = w a / sqrt(mean(a^2) + eps), rstd per row.
 * Row r of a and rstd is r; of x, r xstep and of y, r ystep (0 meaning 1):
 * a trimmed last layer (llama_trim) reads its input's x rows and writes the
 * output's x rows (step 2) from compact rows. */
typedef struct icl_add_norm {
  const float *x, *w;
  float *a, *y, *rstd;
  float eps;
  int64_t xstep, ystep;
} icl_add_norm;

/* backward, from dy (the pass's input gradient, the norm's output
 * gradient): dres += the norm's input gradient, dw += its weight gradient
 * (summed in the pass's partials: within rounding of the rmsnorm kernel's
 * order); x: the norm's input, rstd: its saved per-row value */
typedef struct icl_norm_bwd {
  float *dres, *dw;
  const float *x, *w, *rstd;
} icl_norm_bwd;

#endif
