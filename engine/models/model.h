/* The in-context model shared by every backbone (Llama, Mamba, ...):
 *   tokens (x_i, (y_i, 0..0)) interleaved -> read_in (D -> hidden, no bias)
 *   -> backbone (its final norm included) -> read_out (hidden -> 1, no bias)
 *   -> predictions at the x positions (even tokens).
 * All parameters (read_in, the backbone's, read_out) live in one flat
 * buffer; activations live in one arena sized for the largest (B, T) seen,
 * so a step at a fixed shape allocates nothing. */
#ifndef ICL_MODEL_H
#define ICL_MODEL_H

#include "core/tensor.h"
#include "nn/nn_kernels.h"
#include "nn/params.h"

typedef struct icl_model icl_model;

/* What a backbone implements. x and y are [B*T, hidden] row-major device
 * buffers; ws is the backbone's workspace of workspace(B, T, train) floats,
 * untouched by the wrapper between a forward and its backward. */
typedef struct icl_backbone_ops {
  const char *family;
  /* initialise the backbone's parameters (after the buffer is allocated) */
  int (*init_params)(icl_ctx *ctx, icl_model *m, uint64_t seed);
  int64_t (*workspace)(const icl_model *m, int64_t B, int64_t T, int train);
  /* train != 0: keep what backward needs in ws. A training forward need
   * only write the rows of y at x tokens (the even rows: predictions are
   * read there and nowhere else), and its backward gets a dy that is zero
   * at the odd rows. */
  int (*forward)(icl_ctx *ctx, icl_model *m, const float *x, float *y, int64_t B, int64_t T, float *ws, int train);
  /* dy: gradient of y; writes dx (gradient of x); adds parameter gradients */
  int (*backward)(icl_ctx *ctx, icl_model *m, const float *dy, float *dx, int64_t B, int64_t T, float *ws);
  void (*destroy)(icl_ctx *ctx, icl_model *m);
  /* NULL or 1: a training step (forward, backward) enqueues device work only
   * (no host callbacks, no copies with the host at a fixed shape), so it can
   * be captured as a CUDA graph; 0 when this model's configuration cannot
   * (e.g. a Lua bias callback). */
  int (*graph_safe)(const icl_model *m);
  /* NULL, or where in ws a training forward of this shape wants its input
   * x: the wrapper writes the read-in's output there and passes it as x,
   * which saves the backbone a copy of [B*T, hidden] into its own buffer */
  float *(*input_slot)(const icl_model *m, int64_t B, int64_t T, float *ws);
} icl_backbone_ops;

struct icl_model {
  const icl_backbone_ops *ops;
  void *backbone; /* the family's own state */
  icl_params params;
  int p_read_in, p_read_out;
  int64_t n_dims, hidden;
  icl_device device;
  float init_std; /* read_in / read_out init (HF: initializer_range 0.02) */

  /* arena (device memory), sized for (cap_B, cap_T) */
  icl_tensor *arena;
  int64_t cap_B, cap_T, cap_ws;
  int cap_train;
  float *tokens, *h0, *hL, *out, *dout, *dhL, *dh0, *ws;
  int64_t last_B, last_T; /* shape of the last training forward (0 when none) */
  uint64_t arena_gen;     /* bumped whenever the arena is reallocated (pointers into it change) */
};

/* Step 1: create the wrapper (declares read_in.weight). */
icl_model *icl_model_create(icl_ctx *ctx, int64_t n_dims, int64_t hidden, icl_device dev);
/* Step 2: the family declares its parameters and sets m->ops / m->backbone. */
/* Step 3: declare read_out.weight, allocate the buffer, initialise everything. */
int icl_model_finish(icl_ctx *ctx, icl_model *m, uint64_t seed);
void icl_model_free(icl_ctx *ctx, icl_model *m);

/* xs [B,N,D], ys [B,N] device pointers (contiguous); pred [B,N] written.
 * train != 0 keeps activations for icl_model_backward. */
int icl_model_forward(icl_ctx *ctx, icl_model *m, const float *xs, const float *ys, int64_t B, int64_t N, float *pred,
                      int train);
/* dpred [B,N]: gradient of the loss w.r.t. the predictions of the last
 * training forward. Adds into the parameter gradients. */
int icl_model_backward(icl_ctx *ctx, icl_model *m, const float *dpred);
/* forward + mean loss + backward in one call (gradients zeroed first).
 * loss_out: one float on the device (may be NULL). */
int icl_model_loss_step(icl_ctx *ctx, icl_model *m, const float *xs, const float *ys, int64_t B, int64_t N,
                        icl_loss_kind kind, float *loss_out);
/* Make sure the arena fits (B, T, train); called by forward, exposed so a
 * trainer can size it once before capturing a graph. The arena grows to the
 * largest (B, T) seen, except that an inference request longer than the
 * training capacity (evaluation at several times the training length) gets
 * an inference-only arena: the training activations of that length are
 * never allocated. Every reallocation bumps m->arena_gen. */
int icl_model_reserve(icl_ctx *ctx, icl_model *m, int64_t B, int64_t T, int train);

#endif
