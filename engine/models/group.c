/* On the CPU the K steps run concurrently, one per OpenMP thread, each
 * single-threaded inside (nested parallel regions are serial, GEMMs are not
 * split, OpenBLAS is single-threaded): for small models a whole step per
 * core beats splitting every small op across cores, where fork/join and
 * barriers cost as much as the arithmetic. Each thread reports errors into
 * its own copy of the context, so concurrent failures never garble a
 * message. On a GPU the steps are issued one after another on the stream. */
#include "group.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static int one_step(icl_ctx *ctx, icl_model *m, icl_adamw *opt, icl_task *task, icl_tensor *xs, icl_tensor *ys,
                    const icl_task_draw *d, icl_loss_kind kind, float *loss) {
  int rc = icl_task_sample_into(ctx, task, xs, ys, d);
  if (!rc)
    rc = icl_model_loss_step(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), d->B, d->N, kind, loss);
  if (!rc) rc = icl_adamw_step(ctx, opt);
  return rc;
}

int icl_group_step(icl_ctx *ctx, int K, icl_model *const *models, icl_adamw *const *opts, icl_task *task,
                   icl_tensor *const *xs, icl_tensor *const *ys, const icl_task_draw *draws, icl_loss_kind kind,
                   float *const *loss_out) {
  if (K < 1) return icl_errorf(ctx, ICL_EINVAL, "group step: no models");
  icl_device dev = models[0]->device;
  for (int k = 0; k < K; k++) {
    icl_model *m = models[k];
    if (m->device != dev || m->n_dims != models[0]->n_dims || m->hidden != models[0]->hidden ||
        m->params.total != models[0]->params.total || m->ops != models[0]->ops)
      return icl_errorf(ctx, ICL_EINVAL, "group step: model %d differs in shape or device from model 1", k + 1);
    /* size every arena first: nothing may allocate inside the parallel loop */
    if (icl_model_reserve(ctx, m, draws[k].B, 2 * draws[k].N, 1)) return icl_error_prefix(ctx, "model %d: ", k + 1);
  }
  if (dev != ICL_CPU) {
    for (int k = 0; k < K; k++)
      if (one_step(ctx, models[k], opts[k], task, xs[k], ys[k], &draws[k], kind, loss_out ? loss_out[k] : NULL))
        return icl_error_prefix(ctx, "model %d: ", k + 1);
    return ICL_OK;
  }
  icl_ctx *local = malloc(sizeof *local * (size_t)K);
  int *rc = calloc((size_t)K, sizeof *rc);
  if (!local || !rc) {
    free(local);
    free(rc);
    return icl_errorf(ctx, ICL_ENOMEM, "group step: out of memory");
  }
  for (int k = 0; k < K; k++) local[k] = *ctx;
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < K; k++)
    rc[k] = one_step(&local[k], models[k], opts[k], task, xs[k], ys[k], &draws[k], kind,
                     loss_out ? loss_out[k] : NULL);
  int status = ICL_OK;
  for (int k = 0; k < K && !status; k++)
    if (rc[k]) {
      status = icl_errorf(ctx, rc[k], "model %d: %s", k + 1, local[k].errmsg);
    }
  free(local);
  free(rc);
  return status;
}
