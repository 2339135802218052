/* On the CPU the K steps run concurrently, one per OpenMP thread, each
 * single-threaded inside (nested parallel regions are serial, GEMMs are not
 * split, OpenBLAS is single-threaded): for small models a whole step per
 * core beats splitting every small op across cores, where fork/join and
 * barriers cost as much as the arithmetic. Each thread reports errors into
 * its own copy of the context, so concurrent failures never garble a
 * message. On a GPU the steps are issued one after another on the stream.
 *
 * The prompts are drawn first, one batch after another with every thread:
 * the sampler is shared and keeps the prompts' functions in its own
 * workspace, so two threads drawing at once would overwrite each other's
 * (and could both resize it). Every number of a batch is a function of its
 * Philox index, so this gives the bits of a run drawn alone. */
#include "group.h"

#include <string.h>

static int step_model(icl_ctx *ctx, icl_model *m, icl_adamw *opt, const icl_tensor *xs, const icl_tensor *ys,
                      const icl_task_draw *d, icl_loss_kind kind, float *loss) {
  int rc = icl_model_loss_step(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), d->B, d->N, kind, loss);
  if (!rc) rc = icl_adamw_step(ctx, opt);
  return rc;
}

int icl_group_step(icl_ctx *ctx, int K, icl_model *const *models, icl_adamw *const *opts, icl_task *task,
                   icl_tensor *const *xs, icl_tensor *const *ys, const icl_task_draw *draws, icl_loss_kind kind,
                   float *const *loss_out) {
  if (K < 1 || K > ICL_GROUP_MAX)
    return icl_errorf(ctx, ICL_EINVAL, "group step: 1..%d models, got %d", ICL_GROUP_MAX, K);
  icl_device dev = models[0]->device;
  for (int k = 0; k < K; k++) {
    icl_model *m = models[k];
    if (m->device != dev || m->n_dims != models[0]->n_dims || m->hidden != models[0]->hidden ||
        m->params.total != models[0]->params.total || m->ops != models[0]->ops)
      return icl_errorf(ctx, ICL_EINVAL, "group step: model %d differs in shape or device from model 1", k + 1);
    for (int j = 0; j < k; j++)
      if (models[j] == m || opts[j] == opts[k] || xs[j] == xs[k] || ys[j] == ys[k])
        return icl_errorf(ctx, ICL_EINVAL, "group step: entries %d and %d share a model, optimiser or buffer", j + 1,
                          k + 1);
    if (xs[k]->ndim != 3 || ys[k]->ndim != 2 || xs[k]->shape[0] != draws[k].B || xs[k]->shape[1] != draws[k].N)
      return icl_errorf(ctx, ICL_ESHAPE, "group step: model %d: the draw says B %lld, N %lld; xs must be [B, N, D], "
                        "ys [B, N]", k + 1, (long long)draws[k].B, (long long)draws[k].N);
    /* size every arena first: nothing may allocate inside the parallel loop */
    if (icl_model_reserve(ctx, m, draws[k].B, 2 * draws[k].N, 1)) return icl_error_prefix(ctx, "model %d: ", k + 1);
  }
  for (int k = 0; k < K; k++) {
    if (icl_task_sample_into(ctx, task, xs[k], ys[k], &draws[k])) return icl_error_prefix(ctx, "model %d: ", k + 1);
  }
  /* one model on the CPU still goes through the parallel loop: it must compute with one thread
   * like the others, as its checkpoints say, also when a group shrinks to one run */
  if (dev != ICL_CPU) {
    for (int k = 0; k < K; k++)
      if (step_model(ctx, models[k], opts[k], xs[k], ys[k], &draws[k], kind, loss_out ? loss_out[k] : NULL))
        return icl_error_prefix(ctx, "model %d: ", k + 1);
    return ICL_OK;
  }
  /* one context copy per model, on the stack: a step allocates nothing */
  icl_ctx local[ICL_GROUP_MAX];
  int rc[ICL_GROUP_MAX];
  for (int k = 0; k < K; k++) {
    memcpy(&local[k], ctx, sizeof *ctx);
    rc[k] = ICL_OK;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < K; k++)
    rc[k] = step_model(&local[k], models[k], opts[k], xs[k], ys[k], &draws[k], kind, loss_out ? loss_out[k] : NULL);
  for (int k = 0; k < K; k++)
    if (rc[k]) return icl_errorf(ctx, rc[k], "model %d: %s", k + 1, local[k].errmsg);
  return ICL_OK;
}
