/* Tensors: a refcounted storage plus a view header (shape, strides, offset).
 * Views (reshape, transpose, narrow, select, expand, ...) share the storage;
 * freeing a header drops one reference and the storage goes with the last.
 * Dims and indices are 0-based here; the Lua binding converts. */
#ifndef ICL_TENSOR_H
#define ICL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"

#define ICL_MAX_DIMS 8
/* "every dim" for reductions and squeeze */
#define ICL_DIM_ALL (-1000000)

typedef enum icl_dtype { ICL_F32 = 0, ICL_I32 = 1 } icl_dtype;
typedef enum icl_device { ICL_CPU = 0, ICL_CUDA = 1 } icl_device;

typedef struct icl_storage {
  void *data;
  size_t nbytes;
  int refcount;
  icl_device device;
  int borrowed; /* memory belongs to someone else: never freed here */
} icl_storage;

typedef struct icl_tensor {
  icl_storage *storage;
  int64_t offset; /* in elements */
  int ndim;
  int64_t shape[ICL_MAX_DIMS];
  int64_t stride[ICL_MAX_DIMS]; /* in elements; 0 marks a broadcast dim */
  icl_dtype dtype;
} icl_tensor;

/* What kernels see: a data pointer at element 0 plus shape and strides.
 * Passed by value so the CUDA backend can hand it straight to a kernel. */
typedef struct icl_view {
  void *data;
  int ndim;
  int64_t shape[ICL_MAX_DIMS];
  int64_t stride[ICL_MAX_DIMS];
} icl_view;

size_t icl_dtype_size(icl_dtype dt);
const char *icl_dtype_name(icl_dtype dt);
const char *icl_device_name(icl_device dev);

/* Creation. All return NULL on failure with the reason in ctx. */
icl_tensor *icl_tensor_empty(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape);
icl_tensor *icl_tensor_zeros(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape);
icl_tensor *icl_tensor_full(icl_ctx *ctx, icl_dtype dt, icl_device dev, int ndim, const int64_t *shape,
                            double value);
/* Wrap memory owned elsewhere (e.g. a model's flat buffer); never freed here. */
icl_tensor *icl_tensor_borrow(icl_ctx *ctx, void *data, icl_dtype dt, icl_device dev, int ndim,
                              const int64_t *shape);
/* From host data (copied). */
icl_tensor *icl_tensor_from_host(icl_ctx *ctx, const void *src, icl_dtype dt, icl_device dev, int ndim,
                                 const int64_t *shape);

void icl_tensor_free(icl_ctx *ctx, icl_tensor *t);

/* Queries. */
int64_t icl_numel(const icl_tensor *t);
int64_t icl_shape_numel(int ndim, const int64_t *shape);
int icl_is_contiguous(const icl_tensor *t);
void *icl_tensor_data(const icl_tensor *t); /* pointer to element 0 of the view */
icl_view icl_tensor_view_of(const icl_tensor *t);
int icl_same_shape(const icl_tensor *a, const icl_tensor *b);
/* "[2, 3]" into buf; returns buf. */
const char *icl_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
#define ICL_SHAPE_STR(t, buf) icl_shape_str((t)->ndim, (t)->shape, buf, sizeof buf)

/* Views: new headers sharing storage. */
icl_tensor *icl_view_new(icl_ctx *ctx, const icl_tensor *t); /* same view, +1 ref */
icl_tensor *icl_reshape(icl_ctx *ctx, const icl_tensor *t, int ndim, const int64_t *shape); /* view or copy */
icl_tensor *icl_transpose(icl_ctx *ctx, const icl_tensor *t, int a, int b);
icl_tensor *icl_permute(icl_ctx *ctx, const icl_tensor *t, const int *perm);
icl_tensor *icl_narrow(icl_ctx *ctx, const icl_tensor *t, int dim, int64_t start, int64_t len);
icl_tensor *icl_select(icl_ctx *ctx, const icl_tensor *t, int dim, int64_t index);
icl_tensor *icl_expand(icl_ctx *ctx, const icl_tensor *t, int ndim, const int64_t *shape);
icl_tensor *icl_unsqueeze(icl_ctx *ctx, const icl_tensor *t, int dim);
icl_tensor *icl_squeeze(icl_ctx *ctx, const icl_tensor *t, int dim); /* ICL_DIM_ALL: every size-1 dim */

/* Copies. */
icl_tensor *icl_contiguous(icl_ctx *ctx, const icl_tensor *t); /* new ref; copies only if needed */
icl_tensor *icl_clone(icl_ctx *ctx, const icl_tensor *t);
icl_tensor *icl_to_device(icl_ctx *ctx, const icl_tensor *t, icl_device dev);
icl_tensor *icl_to_dtype(icl_ctx *ctx, const icl_tensor *t, icl_dtype dt);
/* dst <- src, src broadcast to dst's shape, converting dtype. */
int icl_copy_into(icl_ctx *ctx, icl_tensor *dst, const icl_tensor *src);
int icl_fill(icl_ctx *ctx, icl_tensor *t, double value);
/* Host copy of the whole view as contiguous data (dst has numel elements). */
int icl_copy_to_host(icl_ctx *ctx, void *dst, const icl_tensor *t);

/* Broadcasting: the common shape of a and b (numpy rules). */
int icl_broadcast_shape(icl_ctx *ctx, const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                        int *nout, int64_t *sout);
/* View of t with stride 0 on broadcast dims so that it has shape (ndim, shape). */
int icl_broadcast_view(icl_ctx *ctx, const char *op, const icl_tensor *t, int ndim, const int64_t *shape,
                       icl_view *out);

/* Normalise a possibly negative dim; error names op and arg. */
int icl_norm_dim(icl_ctx *ctx, const char *op, int dim, int ndim, int *out);

#endif
