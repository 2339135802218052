/* Safetensors files (the Hugging Face format, readable by PyTorch's `safetensors`):
 *   8-byte little-endian header length N | N bytes of JSON header, padded with spaces so that
 *   8 + N is a multiple of 8 | data section (tensors back to back, row-major, little-endian).
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the data section) and "__metadata__" to a string->string map.
 *
 * icl writes tensors in sorted name order, F32 or I32, and two integrity entries in __metadata__:
 *   "icl.checksum":       "xxh64:<16 hex digits>"  XXH64 (seed 0) of the whole data section;
 *   "icl.index_checksum": "xxh64:<16 hex digits>"  XXH64 of a canonical text of the index (every
 *                          tensor's name, dtype, shape and offsets, in name order) and of every
 *                          other metadata pair (in key order), so a flipped bit in a name, a shape
 *                          or a metadata value is caught too.
 * The reader validates the structure strictly (length, JSON, dtypes, shapes, offsets in range,
 * no overlap, no gap, no trailing bytes) and verifies both checksums when present. Files written
 * by other tools (no checksums) are read after the structural checks. Writes are atomic
 * (fileio.h). */
#ifndef ICL_SAFETENSORS_H
#define ICL_SAFETENSORS_H

#include "core/tensor.h"

typedef struct icl_st_tensor {
  char *name;
  icl_dtype dtype;
  int ndim;
  int64_t shape[ICL_MAX_DIMS];
  uint64_t begin, end; /* byte offsets in the data section */
  icl_tensor *t;       /* NULL when only the header was read; owned by the file struct */
} icl_st_tensor;

typedef struct icl_st_file {
  int n;
  icl_st_tensor *tensors; /* in name order */
  int nmeta;
  char **mkeys, **mvals; /* in key order, the icl.* checksum entries included */
  int checksummed;       /* 1: the file carried icl checksums and they matched */
} icl_st_file;

enum { ICL_ST_HEADER_ONLY = 1, ICL_ST_REQUIRE_CHECKSUM = 2 };

/* names/tensors: n entries (any order, names unique); meta: nmeta key/value pairs (keys unique,
 * not "icl.checksum" / "icl.index_checksum"). Tensors may be views and may live on any device. */
int icl_safetensors_save(icl_ctx *ctx, const char *path, int n, const char *const *names,
                         const icl_tensor *const *tensors, int nmeta, const char *const *mkeys,
                         const char *const *mvals);
/* flags: ICL_ST_*; tensors are created on dev. NULL + error naming the file and the problem. */
icl_st_file *icl_safetensors_load(icl_ctx *ctx, const char *path, icl_device dev, int flags);
void icl_safetensors_free(icl_ctx *ctx, icl_st_file *f);

#endif
