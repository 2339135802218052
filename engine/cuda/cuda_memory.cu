/* Device memory of the CUDA backend: a caching allocator and memcpy.
 *
 * Tensors made and dropped from Lua would otherwise hit cudaMalloc/cudaFree
 * (each a device-wide synchronisation) on every op. Requests are rounded up
 * to size classes, four per power of two (so at most 25% slack, 512 bytes at
 * least), and a released block goes onto its class's free list. Reuse is safe
 * without events because every kernel and copy runs on the state's single
 * stream: work queued after the reuse runs after the work that used the block
 * before. A live map (pointer -> class) lets release find the class, ignore
 * foreign pointers and free blocks still live when the context goes away.
 *
 * Graph capture: alloc refuses while the stream is being captured (a captured
 * graph would keep using a block after the cache hands it to someone else);
 * the training step must allocate everything before its capture. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.cuh"

#define MIN_CLASS_BYTES 512
#define MAX_ALLOC_BYTES ((size_t)1 << 60)

static int size_class(size_t n) {
  if (n <= MIN_CLASS_BYTES) n = MIN_CLASS_BYTES;
  int p = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^p < n <= 2^(p+1) */
  size_t step = (size_t)1 << (p - 2);
  int q = (int)((n + step - 1) / step); /* 5..8 */
  return 4 * p + q - 4;
}

static size_t class_bytes(int c) { return (size_t)(c % 4 + 4) << (c / 4 - 2); }

/* ---- live map: open addressing, linear probing, backward-shift deletion ---- */

static size_t slot_of(const icl_cuda_allocator *a, const void *p) {
  uint64_t h = ((uint64_t)(uintptr_t)p >> 8) * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (a->live_cap - 1);
}

static int live_grow(icl_cuda_allocator *a) {
  size_t ncap = a->live_cap ? a->live_cap * 2 : 1024;
  icl_cuda_live_entry *nt = (icl_cuda_live_entry *)calloc(ncap, sizeof *nt);
  if (!nt) return -1;
  icl_cuda_live_entry *old = a->live;
  size_t ocap = a->live_cap;
  a->live = nt;
  a->live_cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    if (!old[i].p) continue;
    size_t s = slot_of(a, old[i].p);
    while (nt[s].p) s = (s + 1) & (ncap - 1);
    nt[s] = old[i];
  }
  free(old);
  return 0;
}

static int live_insert(icl_cuda_allocator *a, void *p, int cls) {
  if ((a->live_count + 1) * 2 > a->live_cap && live_grow(a)) return -1;
  size_t s = slot_of(a, p);
  while (a->live[s].p) s = (s + 1) & (a->live_cap - 1);
  a->live[s].p = p;
  a->live[s].cls = cls;
  a->live_count++;
  return 0;
}

/* Removes p; returns its class or -1 when p is not live. */
static int live_remove(icl_cuda_allocator *a, const void *p) {
  if (!a->live_cap) return -1;
  size_t mask = a->live_cap - 1, s = slot_of(a, p);
  while (a->live[s].p && a->live[s].p != p) s = (s + 1) & mask;
  if (!a->live[s].p) return -1;
  int cls = a->live[s].cls;
  /* backward shift: move later entries of the run into the hole when their
   * home slot does not lie cyclically in (hole, their slot] */
  size_t hole = s, j = s;
  for (;;) {
    j = (j + 1) & mask;
    if (!a->live[j].p) break;
    size_t home = slot_of(a, a->live[j].p);
    int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      a->live[hole] = a->live[j];
      hole = j;
    }
  }
  a->live[hole].p = NULL;
  a->live_count--;
  return cls;
}

/* ---- free lists ------------------------------------------------------------ */

static int vec_push(icl_cuda_ptrvec *v, void *p) {
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 16;
    void **nv = (void **)realloc(v->v, ncap * sizeof *nv);
    if (!nv) return -1;
    v->v = nv;
    v->cap = ncap;
  }
  v->v[v->n++] = p;
  return 0;
}

int icl_cuda_allocator_trim(icl_ctx *ctx, icl_cuda_state *st) {
  icl_cuda_allocator *a = &st->alloc;
  if (!a->cached_bytes) return ICL_OK;
  /* cudaFree would wait anyway; waiting here makes the order explicit */
  ICL_CU(ctx, "empty cache: synchronise", cudaStreamSynchronize(st->stream));
  for (int c = 0; c < ICL_CUDA_NCLASSES; c++) {
    icl_cuda_ptrvec *v = &a->free_list[c];
    while (v->n) {
      ICL_CU(ctx, "empty cache: cudaFree", cudaFree(v->v[v->n - 1]));
      v->n--;
      a->cached_bytes -= class_bytes(c);
    }
  }
  return ICL_OK;
}

void icl_cuda_allocator_destroy(icl_cuda_state *st) {
  icl_cuda_allocator *a = &st->alloc;
  for (int c = 0; c < ICL_CUDA_NCLASSES; c++) {
    for (size_t i = 0; i < a->free_list[c].n; i++) cudaFree(a->free_list[c].v[i]);
    free(a->free_list[c].v);
  }
  /* blocks of tensors still alive when the context goes: theirs is the leak,
   * the device memory is returned all the same */
  for (size_t i = 0; i < a->live_cap; i++)
    if (a->live[i].p) cudaFree(a->live[i].p);
  free(a->live);
  memset(a, 0, sizeof *a);
}

int icl_cuda_capturing(icl_cuda_state *st) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(st->stream, &cs) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return cs != cudaStreamCaptureStatusNone;
}

extern "C" void *icl_cuda_alloc(icl_ctx *ctx, size_t nbytes) {
  icl_cuda_state *st = ctx->cuda;
  icl_cuda_allocator *a = &st->alloc;
  if (nbytes > MAX_ALLOC_BYTES) {
    icl_errorf(ctx, ICL_ENOMEM, "cuda: cannot allocate %zu bytes", nbytes);
    return NULL;
  }
  if (icl_cuda_capturing(st)) {
    icl_errorf(ctx, ICL_EDEVICE, "cuda: alloc of %zu bytes while the stream is captured into a graph "
                                 "(allocate before capture)", nbytes);
    return NULL;
  }
  int c = size_class(nbytes);
  size_t bytes = class_bytes(c);
  void *p = NULL;
  if (a->free_list[c].n) {
    p = a->free_list[c].v[--a->free_list[c].n];
    a->cached_bytes -= bytes;
    a->n_reuse++;
  } else {
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      /* give the cache back and try once more */
      cudaGetLastError();
      if (icl_cuda_allocator_trim(ctx, st)) return NULL;
      e = cudaMalloc(&p, bytes);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      icl_errorf(ctx, e == cudaErrorMemoryAllocation ? ICL_ENOMEM : ICL_EDEVICE,
                 "cuda: alloc: cannot allocate %zu bytes (%zu live, %zu cached): %s", nbytes, a->live_bytes,
                 a->cached_bytes, cudaGetErrorString(e));
      return NULL;
    }
    a->n_malloc++;
  }
  if (live_insert(a, p, c)) {
    cudaFree(p);
    icl_errorf(ctx, ICL_ENOMEM, "cuda: alloc: out of host memory for the allocator's map");
    return NULL;
  }
  a->live_bytes += bytes;
  if (a->live_bytes + a->cached_bytes > a->peak_bytes) a->peak_bytes = a->live_bytes + a->cached_bytes;
  return p;
}

extern "C" void icl_cuda_free(icl_ctx *ctx, void *p, size_t nbytes) {
  (void)nbytes; /* the live map knows the block's class */
  if (!p || !ctx || !ctx->cuda || ctx->cuda->failed) return;
  icl_cuda_allocator *a = &ctx->cuda->alloc;
  int c = live_remove(a, p);
  if (c < 0) return; /* not ours (or released twice): leave it alone */
  size_t bytes = class_bytes(c);
  a->live_bytes -= bytes;
  if (vec_push(&a->free_list[c], p)) {
    cudaFree(p); /* no host memory for the list: give it back instead */
    return;
  }
  a->cached_bytes += bytes;
}

extern "C" int icl_cuda_memcpy(icl_ctx *ctx, void *dst, icl_device ddev, const void *src, icl_device sdev,
                               size_t n) {
  if (!n) return ICL_OK;
  if (ddev == ICL_CPU && sdev == ICL_CPU) {
    memmove(dst, src, n);
    return ICL_OK;
  }
  cudaMemcpyKind kind = ddev == ICL_CPU   ? cudaMemcpyDeviceToHost
                        : sdev == ICL_CPU ? cudaMemcpyHostToDevice
                                          : cudaMemcpyDeviceToDevice;
  icl_cuda_state *st = ctx->cuda;
  if (kind != cudaMemcpyDeviceToDevice && icl_cuda_capturing(st))
    return icl_errorf(ctx, ICL_EDEVICE, "cuda: memcpy of %zu bytes %s the host while the stream is captured into a "
                                        "graph (copies with the host synchronise; do them before capture)",
                      n, kind == cudaMemcpyDeviceToHost ? "to" : "from");
  ICL_CU(ctx, "memcpy", cudaMemcpyAsync(dst, src, n, kind, st->stream));
  /* host memory is the caller's again on return: a device-to-host copy must
   * have landed, and a host-to-device copy from pageable memory is not
   * guaranteed to have read its source before the async call returns */
  if (kind != cudaMemcpyDeviceToDevice) ICL_CU(ctx, "memcpy: synchronise", cudaStreamSynchronize(st->stream));
  return ICL_OK;
}
