/* A model's parameters: named views into one flat buffer, with a flat
 * gradient buffer beside it (the llm.c habit). Optimiser, clipping,
 * checkpoints and an all-reduce each become one call over one buffer.
 * Usage: declare every tensor, then alloc once; pointers stay valid until
 * free. Offsets are padded to 16 floats so every tensor starts 64-byte
 * aligned (vector loads, cache lines). */
#ifndef ICL_PARAMS_H
#define ICL_PARAMS_H

#include "core/tensor.h"

#define ICL_PARAM_NAME_MAX 96
#define ICL_PARAM_MAX_DIMS 4

typedef struct icl_param_info {
  char name[ICL_PARAM_NAME_MAX];
  int ndim;
  int64_t shape[ICL_PARAM_MAX_DIMS];
  int64_t offset; /* floats into the flat buffer */
  int64_t numel;
  int decay;     /* weight decay applies to this tensor */
  int trainable; /* 0: kept in the buffer (saved, loaded) but never updated */
} icl_param_info;

typedef struct icl_params {
  int n, cap;
  icl_param_info *info;
  int64_t total; /* floats, padded */
  icl_device device;
  icl_tensor *value; /* [total] */
  icl_tensor *grad;  /* [total] */
} icl_params;

void icl_params_init(icl_params *p);
/* Returns the new index (>= 0) or a negative status. */
int icl_params_declare(icl_ctx *ctx, icl_params *p, const char *name, int ndim, const int64_t *shape, int decay);
int icl_params_alloc(icl_ctx *ctx, icl_params *p, icl_device dev);
void icl_params_free(icl_ctx *ctx, icl_params *p);

int icl_params_find(const icl_params *p, const char *name); /* -1 if absent */
float *icl_params_data(const icl_params *p, int idx);
float *icl_params_grad(const icl_params *p, int idx);
/* A tensor header viewing parameter idx (or its gradient); caller frees the header. */
icl_tensor *icl_params_view(icl_ctx *ctx, const icl_params *p, int idx, int grad);
int icl_params_zero_grad(icl_ctx *ctx, icl_params *p);
int64_t icl_params_count(const icl_params *p); /* real elements, without padding */

/* Initialisers over one parameter (device-side, counter-based RNG). */
int icl_params_init_normal(icl_ctx *ctx, icl_params *p, int idx, float mean, float std, uint64_t seed,
                           uint64_t stream);
int icl_params_init_uniform(icl_ctx *ctx, icl_params *p, int idx, float lo, float hi, uint64_t seed,
                            uint64_t stream);
int icl_params_init_fill(icl_ctx *ctx, icl_params *p, int idx, float value);
/* Copy host floats into parameter idx (numel floats). */
int icl_params_set(icl_ctx *ctx, icl_params *p, int idx, const float *host, int64_t numel);

#endif
