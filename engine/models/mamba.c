/* Mamba backbone: configuration, parameters and their initialisation
 * (spec §6.1, §6.4). Forward and backward live in mamba_block.c. */
#include "mamba.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/backend.h"
#include "core/rng.h"
#include "mamba_kernels.h"
#include "mamba_internal.h"

icl_mamba_cfg icl_mamba_defaults(int64_t hidden) {
  icl_mamba_cfg c = {0};
  c.hidden = hidden;
  c.state = 16;
  c.layers = 32;
  c.expand = 2;
  c.conv = 4;
  c.dt_rank = 0;
  c.chunk = 64;
  c.eps = 1e-5f;
  c.dt_min = 1e-3f;
  c.dt_max = 0.1f;
  c.dt_init_floor = 1e-4f;
  c.dt_scale = 1.0f;
  c.rescale_prenorm_residual = 0;
  return c;
}

static void mamba_destroy(icl_ctx *ctx, icl_model *m) {
  (void)ctx;
  icl_mamba *mb = m->backbone;
  if (mb) free(mb->layer);
  free(mb);
  m->backbone = NULL;
}

/* Host-side draws for the parameters whose init is a function of a uniform
 * (the dt bias) or deterministic (A_log), then copied to the device. */
static int init_host(icl_ctx *ctx, icl_model *m, int idx, int64_t n, float (*f)(const icl_mamba *, int64_t, float),
                     uint64_t seed, uint64_t stream) {
  icl_mamba *mb = m->backbone;
  float *h = malloc(sizeof(float) * (size_t)n);
  if (!h) return icl_errorf(ctx, ICL_ENOMEM, "mamba: init: out of memory");
  for (int64_t i = 0; i < n; i++) h[i] = f(mb, i, icl_u01(icl_philox(seed, stream, (uint64_t)i).v[0]));
  int rc = icl_params_set(ctx, &m->params, idx, h, n);
  free(h);
  return rc;
}

/* dt log-uniform in [dt_min, dt_max] (floored), bias = softplus^-1(dt) = dt + log(-expm1(-dt)) */
static float dt_bias_init(const icl_mamba *mb, int64_t i, float u01) {
  (void)i;
  double lo = log(mb->cfg.dt_min), hi = log(mb->cfg.dt_max);
  double dt = exp(u01 * (hi - lo) + lo);
  if (dt < mb->cfg.dt_init_floor) dt = mb->cfg.dt_init_floor;
  return (float)(dt + log(-expm1(-dt)));
}

/* S4D-real: A = -(n+1) for every channel */
static float a_log_init(const icl_mamba *mb, int64_t i, float u01) {
  (void)u01;
  return (float)log((double)(i % mb->cfg.state + 1));
}

static int mamba_init(icl_ctx *ctx, icl_model *m, uint64_t seed) {
  icl_mamba *mb = m->backbone;
  icl_params *p = &m->params;
  const icl_mamba_cfg *c = &mb->cfg;
  const float d = (float)c->hidden, E = (float)mb->E, R = (float)mb->R, K = (float)c->conv;
  int rc = icl_params_init_fill(ctx, p, mb->norm_f, 1.0f);
  for (int64_t l = 0; l < c->layers && !rc; l++) {
    const icl_mamba_layer *ly = &mb->layer[l];
    uint64_t st = 2 + 16 * (uint64_t)l; /* streams 0, 1 are read_in/read_out */
    float b_in = 1.0f / sqrtf(d), b_x = 1.0f / sqrtf(E), b_conv = 1.0f / sqrtf(K);
    float b_dt = c->dt_scale / sqrtf(R);
    float b_out = 1.0f / sqrtf(E) / (c->rescale_prenorm_residual ? sqrtf((float)c->layers) : 1.0f);
    rc = icl_params_init_fill(ctx, p, ly->norm, 1.0f);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->in_proj, -b_in, b_in, seed, st + 0);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->conv_w, -b_conv, b_conv, seed, st + 1);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->conv_b, -b_conv, b_conv, seed, st + 2);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->x_proj, -b_x, b_x, seed, st + 3);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->dt_w, -b_dt, b_dt, seed, st + 4);
    if (!rc) rc = init_host(ctx, m, ly->dt_b, mb->E, dt_bias_init, seed, st + 5);
    if (!rc) rc = init_host(ctx, m, ly->A_log, mb->E * c->state, a_log_init, seed, st + 6);
    if (!rc) rc = icl_params_init_fill(ctx, p, ly->D, 1.0f);
    if (!rc) rc = icl_params_init_uniform(ctx, p, ly->out_proj, -b_out, b_out, seed, st + 7);
  }
  return rc;
}

static const icl_backbone_ops mamba_ops = {"mamba", mamba_init, icl_mamba_workspace, icl_mamba_forward,
                                           icl_mamba_backward, mamba_destroy, NULL /* graph-safe */, NULL};

static int declare(icl_ctx *ctx, icl_model *m, int *idx, const char *name, int ndim, int64_t a, int64_t b,
                   int64_t c, int decay) {
  int64_t s[3] = {a, b, c};
  *idx = icl_params_declare(ctx, &m->params, name, ndim, s, decay);
  return *idx < 0 ? -*idx : ICL_OK;
}

int icl_mamba_attach(icl_ctx *ctx, icl_model *m, const icl_mamba_cfg *cfg) {
  icl_mamba_cfg c = *cfg;
  if (m->ops) return icl_errorf(ctx, ICL_EINVAL, "mamba: the model already has a backbone (%s)", m->ops->family);
  if (c.hidden != m->hidden)
    return icl_errorf(ctx, ICL_EINVAL, "mamba: hidden_size %lld differs from the model's %lld", (long long)c.hidden,
                      (long long)m->hidden);
  if (c.dt_rank == 0) c.dt_rank = (c.hidden + 15) / 16;
  if (c.state <= 0 || c.layers <= 0 || c.expand <= 0 || c.conv <= 0 || c.dt_rank <= 0 || c.chunk <= 0)
    return icl_errorf(ctx, ICL_EINVAL,
                      "mamba: state_size, num_hidden_layers, expand, conv_kernel, dt_rank and chunk must be positive "
                      "(got %lld, %lld, %lld, %lld, %lld, %lld)",
                      (long long)c.state, (long long)c.layers, (long long)c.expand, (long long)c.conv,
                      (long long)c.dt_rank, (long long)c.chunk);
  if (c.state > ICL_MAMBA_MAX_N || c.conv > ICL_MAMBA_MAX_K)
    return icl_errorf(ctx, ICL_EINVAL, "mamba: state_size must be <= %d and conv_kernel <= %d (got %lld, %lld)",
                      ICL_MAMBA_MAX_N, ICL_MAMBA_MAX_K, (long long)c.state, (long long)c.conv);
  if (!(c.eps > 0) || !(c.dt_min > 0) || !(c.dt_max >= c.dt_min) || !(c.dt_init_floor > 0))
    return icl_errorf(ctx, ICL_EINVAL, "mamba: eps, dt_min, dt_init_floor must be > 0 and dt_max >= dt_min");
  const icl_backend *be = icl_backend_get(ctx, m->device);
  if (!be) return ctx->errcode;
  if (!be->mamba) return icl_errorf(ctx, ICL_ENOTIMPL, "mamba: no kernels on device %s", icl_device_name(m->device));
  icl_mamba *mb = calloc(1, sizeof *mb);
  if (mb) mb->layer = calloc((size_t)c.layers, sizeof *mb->layer);
  if (!mb || !mb->layer) {
    free(mb);
    return icl_errorf(ctx, ICL_ENOMEM, "mamba: out of memory");
  }
  mb->cfg = c;
  mb->E = c.expand * c.hidden;
  mb->R = c.dt_rank;
  mb->k = be->mamba;
  m->backbone = mb;
  m->ops = &mamba_ops;
  const int64_t d = c.hidden, E = mb->E, N = c.state, R = c.dt_rank, K = c.conv;
  char nm[ICL_PARAM_NAME_MAX];
  int rc = ICL_OK;
#define DECL(field, suffix, ndim, a, b, cc, decay)                    \
  if (!rc) {                                                          \
    snprintf(nm, sizeof nm, "layers.%lld.%s", (long long)l, suffix);  \
    rc = declare(ctx, m, &ly->field, nm, ndim, a, b, cc, decay);      \
  }
  for (int64_t l = 0; l < c.layers && !rc; l++) {
    icl_mamba_layer *ly = &mb->layer[l];
    DECL(norm, "norm.weight", 1, d, 0, 0, 1)
    DECL(in_proj, "mixer.in_proj.weight", 2, 2 * E, d, 0, 1)
    DECL(conv_w, "mixer.conv1d.weight", 3, E, 1, K, 1)
    DECL(conv_b, "mixer.conv1d.bias", 1, E, 0, 0, 1)
    DECL(x_proj, "mixer.x_proj.weight", 2, R + 2 * N, E, 0, 1)
    DECL(dt_w, "mixer.dt_proj.weight", 2, E, R, 0, 1)
    DECL(dt_b, "mixer.dt_proj.bias", 1, E, 0, 0, 1)
    DECL(A_log, "mixer.A_log", 2, E, N, 0, 0) /* mamba_ssm: _no_weight_decay */
    DECL(D, "mixer.D", 1, E, 0, 0, 0)
    DECL(out_proj, "mixer.out_proj.weight", 2, d, E, 0, 1)
  }
#undef DECL
  if (!rc) rc = declare(ctx, m, &mb->norm_f, "norm_f.weight", 1, d, 0, 0, 1);
  return rc;
}

icl_model *icl_mamba_model_new(icl_ctx *ctx, int64_t n_dims, const icl_mamba_cfg *cfg, icl_device dev,
                               uint64_t seed) {
  icl_model *m = icl_model_create(ctx, n_dims, cfg->hidden, dev);
  if (!m) return NULL;
  if (icl_mamba_attach(ctx, m, cfg) || icl_model_finish(ctx, m, seed)) {
    icl_model_free(ctx, m);
    return NULL;
  }
  return m;
}

const icl_mamba_cfg *icl_mamba_config(const icl_model *m) {
  return m && m->ops == &mamba_ops ? &((const icl_mamba *)m->backbone)->cfg : NULL;
}
