/* One training step of an in-context model, on either device:
 *
 *   sample the batch (task kernels, stream = the optimiser's step count)
 *   -> forward, loss, backward (icl_model_loss_step)
 *   -> the loss into a device ring at the step's slot
 *   -> AdamW (icl_adamw_step)
 *
 * Everything the step touches is allocated when it is created or first
 * meets a shape (the batch buffers for the run's largest n_points, the task
 * workspace, the model's arena), so a step at a seen shape allocates
 * nothing. Every step-dependent number lives on the device: the sampler
 * reads the stream from the optimiser's scalar buffer (ICL_OPT_STEPS, which
 * AdamW advances on the device), the loss goes to ring[step mod RING]. On a
 * GPU the step is therefore captured as a CUDA graph once per (N, d_t,
 * TF32 or strict, arena) and replayed with no host work and no
 * synchronisation; the host reads the ring at log intervals only. On the
 * CPU the same function runs the same kernels as the eager loop (same bits).
 *
 * Shapes: the first step at a new key runs eagerly (it uploads what the
 * model keeps for that length, e.g. Llama's rotation tables), the second is
 * captured and every later one replays. Graphs are dropped when the model's
 * arena is reallocated (an evaluation at a longer length, a larger batch),
 * and recaptured after one eager step. */
#ifndef ICL_TRAIN_STEP_H
#define ICL_TRAIN_STEP_H

#include "models/model.h"
#include "optim/adamw.h"
#include "tasks/tasks.h"

#define ICL_TRAIN_RING 256 /* losses kept on the device (the last 256 steps) */

typedef struct icl_train_step_cfg {
  int64_t B;     /* prompts per batch */
  int64_t max_N; /* largest n_points of the run: buffers and arena are sized for it up front */
  uint64_t seed; /* the run's seed: the batch of step s is Philox(seed, stream s) */
  icl_loss_kind loss;
  int graphs; /* 1: capture CUDA graphs on a GPU (ignored on the CPU) */
} icl_train_step_cfg;

typedef struct icl_train_step_stats {
  int64_t eager;     /* steps run kernel by kernel */
  int64_t captures;  /* graphs captured */
  int64_t replays;   /* steps run as a graph replay */
  int64_t nodes;     /* nodes of the last graph captured */
  int graphs_on;     /* graphs in use (0 on the CPU, when asked off, or after a capture failed) */
  char why_off[256]; /* why graphs are off ("" when on) */
} icl_train_step_stats;

typedef struct icl_train_step icl_train_step;

/* model, optimiser and task stay owned by the caller and must outlive the step */
icl_train_step *icl_train_step_new(icl_ctx *ctx, icl_model *m, icl_adamw *opt, const icl_task *task,
                                   const icl_train_step_cfg *cfg);
void icl_train_step_free(icl_ctx *ctx, icl_train_step *ts);
/* One step on a batch of N points with inputs truncated to d_t coordinates. */
int icl_train_step_run(icl_ctx *ctx, icl_train_step *ts, int64_t N, int64_t d_t);
/* One step of each of K steps (runs of one shape, trained together) on the
 * same (N, d_t). On a GPU step k runs on lane lanes[k] (cuda/icl_cuda.h; 1..
 * ICL_CUDA_LANES_MAX, a fixed lane per step, since its graphs keep the lane's
 * buffers) so that the K graph replays overlap on the device, or all on the
 * context's stream in turn with lanes == NULL. A step that is not a replay
 * (eager, capture) is waited for before the next one starts: only replays
 * allocate nothing. On the CPU the steps run in turn. Returns with the
 * context's own stream waiting for every lane; an error names the step. */
int icl_train_step_run_group(icl_ctx *ctx, int K, icl_train_step *const *ts, const int *lanes, int64_t N,
                             int64_t d_t);
/* The loss of 0-based step s (one of the last ICL_TRAIN_RING steps taken;
 * synchronises with the device). */
int icl_train_step_loss(icl_ctx *ctx, icl_train_step *ts, int64_t s, float *out);
/* The batch of the last step (device pointers into the step's buffers, for
 * tests): xs [B, N, D] and ys [B, N] contiguous at the last N. */
void icl_train_step_batch(const icl_train_step *ts, const float **xs, const float **ys);
void icl_train_step_get_stats(const icl_train_step *ts, icl_train_step_stats *out);

#endif
