/* The task library: synthetic function classes for in-context learning.
 * A prompt is N pairs (x_i, f(x_i)) with one fresh function f per prompt;
 * xs is [B, N, D] and ys is [B, N]. Every random number comes from
 * core/rng.h's Philox at an index given by task_rng.h, so the same
 * (seed, stream) gives the same prompts on any device and thread count.
 * The formulas, probabilities and quirks follow docs/tasks.md (and the
 * spec it summarises). */
#ifndef ICL_TASKS_H
#define ICL_TASKS_H

#include <stdint.h>

#include "core/tensor.h"
#include "nn/nn_kernels.h"

typedef enum icl_task_kind {
  /* Gaussian inputs, regression (loss mse, metric squared error) */
  ICL_TASK_LINEAR_REGRESSION = 0,
  ICL_TASK_SPARSE_LINEAR_REGRESSION,
  ICL_TASK_NOISY_LINEAR_REGRESSION,
  ICL_TASK_QUADRATIC_REGRESSION,
  ICL_TASK_RELU_2NN_REGRESSION,
  ICL_TASK_DECISION_TREE,
  /* Boolean inputs, labels +-1 (loss bce, metric accuracy) */
  ICL_TASK_CONJUNCTION,
  ICL_TASK_DISJUNCTION,
  ICL_TASK_SPARSE_DISJUNCTION,
  ICL_TASK_CNF,
  ICL_TASK_DNF,
  ICL_TASK_INT_HALFSPACE,
  ICL_TASK_MAJORITY,
  ICL_TASK_PARITY,
  ICL_TASK_SPARSE_PARITY,
  ICL_TASK_SPARSE_THRES,
  ICL_TASK__COUNT
} icl_task_kind;

typedef enum icl_input_kind { ICL_INPUT_GAUSSIAN = 0, ICL_INPUT_BOOLEAN = 1 } icl_input_kind;
typedef enum icl_metric_kind { ICL_METRIC_SQUARED_ERROR = 0, ICL_METRIC_ACCURACY = 1 } icl_metric_kind;

/* What stays fixed for a task (its options). icl_task_defaults fills it. */
typedef struct icl_task_params {
  icl_task_kind kind;
  int64_t n_dims;              /* D */
  float scale;                 /* regression: y = scale * f(x) (G's `scale`), 1 */
  int sparsity;                /* sparse_linear_regression: support size, 3 */
  int hidden;                  /* relu_2nn_regression: hidden width, 100 */
  int depth;                   /* decision_tree: depth, 4 */
  float noise_std;             /* noisy_linear_regression: sigma, 1 */
  int renormalize_ys;          /* noisy_linear_regression: y <- y sqrt(D) / std(y) over the batch, 0 */
  int independent_label_function; /* T's eval quirk: x from function A (forcing included), y from B, 0 */
  int sparse_support_all_dims;    /* T's quirk: sparse support over all D dims instead of the first d_t, 0 */
  int truncate_boolean;           /* apply n_dims_truncated to Boolean tasks (the published code ignores it), 0 */
} icl_task_params;

/* What changes per call. */
typedef struct icl_task_draw {
  int64_t B, N;
  int64_t n_dims_truncated; /* d_t in [1, D]; D = no truncation */
  uint64_t seed, stream;
  int64_t prompt_offset;    /* prompt b of this call is global prompt prompt_offset + b */
  /* Optional (NULL: unused): the stream is stream + (uint64_t)*stream_add,
   * read where the kernels run (a device pointer on a GPU). A training step
   * points it at the optimiser's step count, so a step captured as a CUDA
   * graph draws a new batch on every replay without changing arguments. */
  const float *stream_add;
} icl_task_draw;

/* ---- registry ------------------------------------------------------------ */
const char *icl_task_name(icl_task_kind k);
/* ICL_OK, or ICL_EINVAL with the list of valid names in ctx */
int icl_task_from_name(icl_ctx *ctx, const char *name, icl_task_kind *out);
icl_input_kind icl_task_input(icl_task_kind k);
icl_loss_kind icl_task_loss(icl_task_kind k);
icl_metric_kind icl_task_metric_kind(icl_task_kind k);
/* The default baseline names of a task (NULL-terminated static list). */
const char *const *icl_task_default_baselines(icl_task_kind k);
icl_task_params icl_task_defaults(icl_task_kind k, int64_t n_dims);
/* Range checks of every field (names the field). */
int icl_task_validate(icl_ctx *ctx, const icl_task_params *p);
/* Floats of one drawn function of this task (the per-prompt workspace unit). */
int64_t icl_task_fn_floats(const icl_task_params *p);
/* Functions per prompt: 2 with independent_label_function, else 1. */
int icl_task_fn_slots(const icl_task_params *p);

/* ---- sampling ------------------------------------------------------------ */
/* A task sampler: the options plus a grow-only workspace for the drawn
 * functions, so sample_into allocates nothing once it has seen the batch
 * size (the training hot path). */
typedef struct icl_task {
  icl_task_params p;
  icl_tensor *ws;      /* function workspace on ws_dev */
  icl_device ws_dev;
  icl_tensor *stage_x, *stage_y; /* host staging when the device has no task kernels */
} icl_task;

icl_task *icl_task_new(icl_ctx *ctx, const icl_task_params *p);
void icl_task_free(icl_ctx *ctx, icl_task *t);
/* xs [B,N,D] and ys [B,N]: contiguous float32 tensors on one device; B and N
 * are read from them (d->B and d->N are ignored). */
int icl_task_sample_into(icl_ctx *ctx, icl_task *t, icl_tensor *xs, icl_tensor *ys, const icl_task_draw *d);
/* Allocating form: *xs, *ys are new tensors on dev. */
int icl_task_sample(icl_ctx *ctx, icl_task *t, icl_device dev, const icl_task_draw *d, icl_tensor **xs,
                    icl_tensor **ys);
/* Only the inputs of a named sampler (for tasks defined elsewhere, e.g. in
 * Lua): the same x as a built-in task with that input kind and no forcing. */
int icl_task_sample_inputs_into(icl_ctx *ctx, icl_input_kind kind, icl_tensor *xs, const icl_task_draw *d);

/* ---- metric ----------------------------------------------------------------- */
/* out[b,i] = (pred - y)^2, or 1[y == sign(pred)] with sign(0) = 0 (so 0 is
 * wrong). pred and ys [B,N] on one device; returns a new [B,N] tensor. */
icl_tensor *icl_task_metric(icl_ctx *ctx, icl_metric_kind kind, const icl_tensor *pred, const icl_tensor *ys);

/* A 64-bit seed derived from (seed, stream, tag): for tasks written outside
 * C that draw with the engine's seeded tensor draws. */
uint64_t icl_task_derive_seed(uint64_t seed, uint64_t stream, const char *tag);

#endif
