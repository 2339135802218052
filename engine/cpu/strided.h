/* Walking up to three views of one shape in lock step.
 * Dims that are contiguous in every view are merged first, so the common
 * cases (contiguous, scalar broadcast, row broadcast) reduce to one or two
 * flat loops with constant strides. */
#ifndef ICL_CPU_STRIDED_H
#define ICL_CPU_STRIDED_H

#include "../core/tensor.h"

typedef struct icl_walk {
  int ndim;
  int64_t shape[ICL_MAX_DIMS];
  int64_t stride[3][ICL_MAX_DIMS];
} icl_walk;

/* Prepare a walk over the common shape of n views (n <= 3). */
static inline void icl_walk_init(icl_walk *w, int n, const icl_view *const *v) {
  int nd = v[0]->ndim;
  int k = 0;
  for (int i = 0; i < nd; i++) {
    if (v[0]->shape[i] == 1) continue; /* size-1 dims never move */
    if (k > 0) {
      int mergeable = 1;
      for (int j = 0; j < n; j++)
        if (w->stride[j][k - 1] != v[j]->stride[i] * v[0]->shape[i]) mergeable = 0;
      if (mergeable) {
        w->shape[k - 1] *= v[0]->shape[i];
        for (int j = 0; j < n; j++) w->stride[j][k - 1] = v[j]->stride[i];
        continue;
      }
    }
    w->shape[k] = v[0]->shape[i];
    for (int j = 0; j < n; j++) w->stride[j][k] = v[j]->stride[i];
    k++;
  }
  if (k == 0) { /* scalar */
    w->shape[0] = 1;
    for (int j = 0; j < n; j++) w->stride[j][0] = 0;
    k = 1;
  }
  w->ndim = k;
}

/* Offsets of the element at flat position `pos` of the outer dims (all but the
 * last), for each view: lets OpenMP split the outer loop across threads. */
static inline void icl_walk_outer(const icl_walk *w, int n, int64_t pos, int64_t *off) {
  for (int j = 0; j < n; j++) off[j] = 0;
  for (int d = w->ndim - 2; d >= 0; d--) {
    int64_t i = pos % w->shape[d];
    pos /= w->shape[d];
    for (int j = 0; j < n; j++) off[j] += i * w->stride[j][d];
  }
}

static inline int64_t icl_walk_outer_count(const icl_walk *w) {
  int64_t c = 1;
  for (int d = 0; d < w->ndim - 1; d++) c *= w->shape[d];
  return c;
}

#endif
