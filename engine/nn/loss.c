/* MSE and BCE-with-logits losses as tensor functions (mean over elements). */
#include "module.h"

#include "core/backend.h"

icl_tensor *icl_loss_fwd(icl_ctx *ctx, icl_loss_kind kind, const icl_tensor *pred, const icl_tensor *target,
                         icl_tensor **dpred) {
  char b1[128], b2[128];
  const char *name = kind == ICL_LOSS_MSE ? "mse_loss" : "bce_with_logits_loss";
  if (dpred) *dpred = NULL;
  if (!icl_same_shape(pred, target)) {
    icl_errorf(ctx, ICL_ESHAPE, "%s: prediction %s and target %s differ in shape", name, ICL_SHAPE_STR(pred, b1),
               ICL_SHAPE_STR(target, b2));
    return NULL;
  }
  if (pred->storage->device != target->storage->device) {
    icl_errorf(ctx, ICL_EDEVICE, "%s: prediction and target are on different devices", name);
    return NULL;
  }
  if (icl_numel(pred) == 0) {
    icl_errorf(ctx, ICL_ESHAPE, "%s: empty prediction", name);
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, pred->storage->device);
  if (!be) return NULL;
  icl_tensor *p = pred->dtype == ICL_F32 ? icl_contiguous(ctx, pred) : icl_to_dtype(ctx, pred, ICL_F32);
  icl_tensor *t = p ? (target->dtype == ICL_F32 ? icl_contiguous(ctx, target) : icl_to_dtype(ctx, target, ICL_F32))
                    : NULL;
  icl_tensor *loss = t ? icl_tensor_empty(ctx, ICL_F32, pred->storage->device, 0, NULL) : NULL;
  icl_tensor *g = (loss && dpred) ? icl_tensor_empty(ctx, ICL_F32, pred->storage->device, pred->ndim, pred->shape)
                                  : NULL;
  int rc = !loss || (dpred && !g);
  if (!rc)
    rc = be->nn->loss(ctx, kind, icl_tensor_data(loss), g ? icl_tensor_data(g) : NULL, icl_tensor_data(p), 1,
                      icl_tensor_data(t), icl_numel(p), 1.0f);
  icl_tensor_free(ctx, p);
  icl_tensor_free(ctx, t);
  if (rc) {
    icl_tensor_free(ctx, loss);
    icl_tensor_free(ctx, g);
    return NULL;
  }
  if (dpred) *dpred = g;
  return loss;
}
