/* A small strict JSON reader (RFC 8259) for file headers (safetensors). Depth-limited, UTF-8
 * validated, \u escapes decoded (surrogate pairs joined, lone surrogates rejected), duplicate
 * object keys rejected. Numbers keep their source text; icl_jv_u64 reads exact integers. */
#ifndef ICL_JSON_MINI_H
#define ICL_JSON_MINI_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

typedef enum icl_jkind { ICL_J_NULL, ICL_J_BOOL, ICL_J_NUM, ICL_J_STR, ICL_J_ARR, ICL_J_OBJ } icl_jkind;

typedef struct icl_jv {
  icl_jkind kind;
  int b;
  char *s; /* string (decoded, NUL-terminated; len excludes it) or number text */
  size_t len;
  int n;
  struct icl_jv *v; /* array items / object values */
  char **k;         /* object keys (decoded) */
  size_t *klen;
  size_t pos;       /* byte offset of the value in the text */
} icl_jv;

/* what: prefix for error messages ("model.safetensors: header"). */
int icl_json_parse(icl_ctx *ctx, const char *what, const char *text, size_t len, icl_jv *out);
void icl_json_free(icl_jv *v);
/* 1 if v is a non-negative integer literal that fits in uint64 */
int icl_jv_u64(const icl_jv *v, uint64_t *out);
const icl_jv *icl_jv_get(const icl_jv *obj, const char *key);
/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) */
int icl_utf8_valid(const char *s, size_t n);

#endif
