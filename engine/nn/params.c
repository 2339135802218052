#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"

void icl_params_init(icl_params *p) { memset(p, 0, sizeof *p); }

int icl_params_declare(icl_ctx *ctx, icl_params *p, const char *name, int ndim, const int64_t *shape, int decay) {
  if (p->value) return -icl_errorf(ctx, ICL_EINVAL, "params: '%s' declared after the buffer was allocated", name);
  if (strlen(name) >= ICL_PARAM_NAME_MAX) return -icl_errorf(ctx, ICL_EINVAL, "params: name too long: %s", name);
  if (ndim < 0 || ndim > ICL_PARAM_MAX_DIMS)
    return -icl_errorf(ctx, ICL_ESHAPE, "params: '%s' has %d dims (at most %d)", name, ndim, ICL_PARAM_MAX_DIMS);
  if (icl_params_find(p, name) >= 0) return -icl_errorf(ctx, ICL_EINVAL, "params: '%s' declared twice", name);
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 32;
    icl_param_info *ni = realloc(p->info, (size_t)cap * sizeof *ni);
    if (!ni) return -icl_errorf(ctx, ICL_ENOMEM, "params: out of memory");
    p->info = ni;
    p->cap = cap;
  }
  icl_param_info *e = &p->info[p->n];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  e->ndim = ndim;
  e->numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] <= 0) return -icl_errorf(ctx, ICL_ESHAPE, "params: '%s' has a non-positive size", name);
    e->shape[i] = shape[i];
    e->numel *= shape[i];
  }
  e->offset = p->total;
  e->decay = decay;
  e->trainable = 1;
  p->total += (e->numel + 15) & ~(int64_t)15;
  return p->n++;
}

int icl_params_alloc(icl_ctx *ctx, icl_params *p, icl_device dev) {
  int64_t n = p->total ? p->total : 16;
  p->device = dev;
  p->value = icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n);
  p->grad = p->value ? icl_tensor_zeros(ctx, ICL_F32, dev, 1, &n) : NULL;
  if (!p->grad) {
    icl_tensor_free(ctx, p->value);
    p->value = NULL;
    return icl_error_prefix(ctx, "params: allocating %lld floats: ", (long long)n);
  }
  return ICL_OK;
}

void icl_params_free(icl_ctx *ctx, icl_params *p) {
  icl_tensor_free(ctx, p->value);
  icl_tensor_free(ctx, p->grad);
  free(p->info);
  memset(p, 0, sizeof *p);
}

int icl_params_find(const icl_params *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->info[i].name, name) == 0) return i;
  return -1;
}

float *icl_params_data(const icl_params *p, int idx) {
  return (float *)icl_tensor_data(p->value) + p->info[idx].offset;
}

float *icl_params_grad(const icl_params *p, int idx) { return (float *)icl_tensor_data(p->grad) + p->info[idx].offset; }

icl_tensor *icl_params_view(icl_ctx *ctx, const icl_params *p, int idx, int grad) {
  const icl_param_info *e = &p->info[idx];
  icl_tensor *flat = grad ? p->grad : p->value;
  icl_tensor *v = icl_narrow(ctx, flat, 0, e->offset, e->numel);
  if (!v) return NULL;
  icl_tensor *r = icl_reshape(ctx, v, e->ndim, e->shape);
  icl_tensor_free(ctx, v);
  return r;
}

int icl_params_zero_grad(icl_ctx *ctx, icl_params *p) { return icl_fill(ctx, p->grad, 0.0); }

int64_t icl_params_count(const icl_params *p) {
  int64_t n = 0;
  for (int i = 0; i < p->n; i++) n += p->info[i].numel;
  return n;
}

static int init_draw(icl_ctx *ctx, icl_params *p, int idx, icl_dist dist, double a, double b, uint64_t seed,
                     uint64_t stream) {
  const icl_backend *be = icl_backend_get(ctx, p->device);
  if (!be) return ctx->errcode;
  icl_view v;
  memset(&v, 0, sizeof v);
  v.data = icl_params_data(p, idx);
  v.ndim = 1;
  v.shape[0] = p->info[idx].numel;
  v.stride[0] = 1;
  return be->random(ctx, v, ICL_F32, dist, a, b, seed, stream);
}

int icl_params_init_normal(icl_ctx *ctx, icl_params *p, int idx, float mean, float std, uint64_t seed,
                           uint64_t stream) {
  return init_draw(ctx, p, idx, ICL_DIST_NORMAL, mean, std, seed, stream);
}

int icl_params_init_uniform(icl_ctx *ctx, icl_params *p, int idx, float lo, float hi, uint64_t seed,
                            uint64_t stream) {
  return init_draw(ctx, p, idx, ICL_DIST_UNIFORM, lo, hi, seed, stream);
}

int icl_params_init_fill(icl_ctx *ctx, icl_params *p, int idx, float value) {
  const icl_backend *be = icl_backend_get(ctx, p->device);
  if (!be) return ctx->errcode;
  icl_view v;
  memset(&v, 0, sizeof v);
  v.data = icl_params_data(p, idx);
  v.ndim = 1;
  v.shape[0] = p->info[idx].numel;
  v.stride[0] = 1;
  return be->fill(ctx, v, ICL_F32, value);
}

int icl_params_set(icl_ctx *ctx, icl_params *p, int idx, const float *host, int64_t numel) {
  if (numel != p->info[idx].numel)
    return icl_errorf(ctx, ICL_ESHAPE, "params: '%s' has %lld elements, got %lld", p->info[idx].name,
                      (long long)p->info[idx].numel, (long long)numel);
  const icl_backend *be = icl_backend_get(ctx, p->device);
  if (!be) return ctx->errcode;
  return be->memcpy(ctx, icl_params_data(p, idx), p->device, host, ICL_CPU, (size_t)numel * sizeof(float));
}
