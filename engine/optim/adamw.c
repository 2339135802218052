#include "adamw.h"

#include <stdlib.h>
#include <string.h>

#include "core/backend.h"

icl_adamw_cfg icl_adamw_defaults(float lr) {
  icl_adamw_cfg c;
  c.beta1 = 0.9f;
  c.beta2 = 0.999f;
  c.eps = 1e-8f;
  c.weight_decay = 0.01f;
  c.max_grad_norm = 0.0f;
  c.sched.kind = ICL_SCHED_CONSTANT;
  c.sched.base_lr = lr;
  c.sched.warmup = 0;
  c.sched.total = 0;
  return c;
}

static int check_cfg(icl_ctx *ctx, const icl_adamw_cfg *c) {
  if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
    return icl_errorf(ctx, ICL_EINVAL, "adamw: betas must be in [0, 1) (got %g, %g)", c->beta1, c->beta2);
  if (!(c->eps > 0)) return icl_errorf(ctx, ICL_EINVAL, "adamw: eps must be > 0 (got %g)", c->eps);
  if (!(c->weight_decay >= 0)) return icl_errorf(ctx, ICL_EINVAL, "adamw: weight_decay must be >= 0");
  if (!(c->sched.base_lr >= 0)) return icl_errorf(ctx, ICL_EINVAL, "adamw: lr must be >= 0");
  if (c->sched.kind == ICL_SCHED_LINEAR && !(c->sched.total > 0 && c->sched.warmup >= 0))
    return icl_errorf(ctx, ICL_EINVAL, "adamw: a linear schedule needs total > 0 and warmup >= 0");
  return ICL_OK;
}

int icl_adamw_init(icl_ctx *ctx, icl_adamw *opt, icl_tensor *value, icl_tensor *grad, icl_adamw_cfg cfg) {
  memset(opt, 0, sizeof *opt);
  if (check_cfg(ctx, &cfg)) return ctx->errcode;
  if (value->ndim != 1 || !icl_same_shape(value, grad) || !icl_is_contiguous(value) || !icl_is_contiguous(grad) ||
      value->dtype != ICL_F32 || grad->dtype != ICL_F32 || value->storage->device != grad->storage->device)
    return icl_errorf(ctx, ICL_ESHAPE, "adamw: parameters and gradients must be flat float32 buffers of one length "
                                       "on one device");
  icl_device dev = value->storage->device;
  int64_t n = value->shape[0], ns = ICL_OPT_NSCALARS, one = 1;
  opt->cfg = cfg;
  opt->value = icl_view_new(ctx, value);
  opt->grad = icl_view_new(ctx, grad);
  opt->m = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n);
  opt->v = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n);
  opt->scal = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &ns);
  opt->sumsq = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &one);
  opt->seg = malloc(sizeof *opt->seg);
  if (!opt->value || !opt->grad || !opt->m || !opt->v || !opt->scal || !opt->sumsq || !opt->seg) {
    icl_adamw_free(ctx, opt);
    return ctx->errcode ? ctx->errcode : icl_errorf(ctx, ICL_ENOMEM, "adamw: out of memory");
  }
  opt->nseg = 1;
  opt->seg[0] = (icl_adamw_segment){0, n, 1, 0};
  return ICL_OK;
}

int icl_adamw_init_params(icl_ctx *ctx, icl_adamw *opt, icl_params *p, icl_adamw_cfg cfg) {
  if (icl_adamw_init(ctx, opt, p->value, p->grad, cfg)) return ctx->errcode;
  free(opt->seg);
  opt->seg = malloc(sizeof *opt->seg * (size_t)(p->n > 0 ? p->n : 1));
  if (!opt->seg) {
    icl_adamw_free(ctx, opt);
    return icl_errorf(ctx, ICL_ENOMEM, "adamw: out of memory");
  }
  /* merge neighbouring tensors with equal flags; the padding after each
   * tensor goes with it (it is zero and stays zero) */
  opt->nseg = 0;
  for (int i = 0; i < p->n; i++) {
    const icl_param_info *e = &p->info[i];
    int64_t end = i + 1 < p->n ? p->info[i + 1].offset : p->total;
    int frozen = !e->trainable, decay = e->decay;
    icl_adamw_segment *last = opt->nseg ? &opt->seg[opt->nseg - 1] : NULL;
    if (last && last->decay == decay && last->frozen == frozen) {
      last->length = end - last->offset;
    } else {
      opt->seg[opt->nseg++] = (icl_adamw_segment){e->offset, end - e->offset, decay, frozen};
    }
  }
  return ICL_OK;
}

int icl_adamw_step(icl_ctx *ctx, icl_adamw *opt) {
  const icl_backend *be = icl_backend_get(ctx, opt->value->storage->device);
  if (!be) return ctx->errcode;
  const icl_optim_kernels *k = be->optim;
  if (!k) return icl_errorf(ctx, ICL_ENOTIMPL, "adamw: no optimiser kernels on %s", be->name);
  float *scal = icl_tensor_data(opt->scal), *sq = icl_tensor_data(opt->sumsq);
  float *p = icl_tensor_data(opt->value), *g = icl_tensor_data(opt->grad);
  float *m = icl_tensor_data(opt->m), *v = icl_tensor_data(opt->v);
  int rc = k->sumsq(ctx, sq, g, opt->grad->shape[0]);
  if (!rc) rc = k->adamw_prepare(ctx, scal, sq, opt->cfg.sched, opt->cfg.beta1, opt->cfg.beta2, opt->cfg.max_grad_norm);
  for (int i = 0; !rc && i < opt->nseg; i++) {
    const icl_adamw_segment *s = &opt->seg[i];
    if (s->frozen || s->length == 0) continue;
    rc = k->adamw_update(ctx, p + s->offset, g + s->offset, m + s->offset, v + s->offset, s->length, scal,
                         opt->cfg.beta1, opt->cfg.beta2, opt->cfg.eps, s->decay ? opt->cfg.weight_decay : 0.0f);
  }
  return rc;
}

int icl_adamw_scalars(icl_ctx *ctx, const icl_adamw *opt, float out[ICL_OPT_NSCALARS]) {
  return icl_copy_to_host(ctx, out, opt->scal);
}

void icl_adamw_free(icl_ctx *ctx, icl_adamw *opt) {
  icl_tensor_free(ctx, opt->value);
  icl_tensor_free(ctx, opt->grad);
  icl_tensor_free(ctx, opt->m);
  icl_tensor_free(ctx, opt->v);
  icl_tensor_free(ctx, opt->scal);
  icl_tensor_free(ctx, opt->sumsq);
  free(opt->seg);
  memset(opt, 0, sizeof *opt);
}
