/* Several runs of one shape trained in one process: K models with the same
 * shapes, each with its own parameters, optimiser and data seed, advance one
 * step together (sample -> forward -> loss -> backward -> AdamW). Each model
 * computes exactly what it computes trained alone with one thread. */
#ifndef ICL_GROUP_H
#define ICL_GROUP_H

#include "models/model.h"
#include "optim/adamw.h"
#include "tasks/tasks.h"

/* At most this many models in one step (their contexts are copied onto the stack). */
#define ICL_GROUP_MAX 64

/* draws[k] says which prompts model k trains on; loss_out[k] (one float on
 * the model's device, may be NULL) gets its mean loss. */
int icl_group_step(icl_ctx *ctx, int K, icl_model *const *models, icl_adamw *const *opts, icl_task *task,
                   icl_tensor *const *xs, icl_tensor *const *ys, const icl_task_draw *draws, icl_loss_kind kind,
                   float *const *loss_out);

#endif
