/* Safetensors writer and strict reader; see safetensors.h for the format and checksums. */
#include "safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hash.h"
#include "json_mini.h"

#define MAX_HEADER 100000000ull /* the limit of the reference reader */
#define CK_DATA "icl.checksum"
#define CK_INDEX "icl.index_checksum"

/* ---- a growable byte buffer -------------------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sb_add(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void sb_json(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      sb_add(b, "\\", 1);
      sb_add(b, p, 1);
    } else if (*p < 0x20) {
      sb_fmt(b, "\\u%04x", *p);
    } else {
      sb_add(b, p, 1);
    }
  }
  sb_add(b, "\"", 1);
}

/* ---- shared helpers -------------------------------------------------------------------------- */

static const char *st_dtype(icl_dtype dt) { return dt == ICL_I32 ? "I32" : "F32"; }

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const icl_st_tensor *)a)->name, ((const icl_st_tensor *)b)->name);
}

static int cmp_tensor_off(const void *a, const void *b) {
  const icl_st_tensor *x = *(icl_st_tensor *const *)a, *y = *(icl_st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

typedef struct kv {
  const char *k, *v;
} kv;

static int cmp_kv(const void *a, const void *b) { return strcmp(((const kv *)a)->k, ((const kv *)b)->k); }

/* The canonical index text behind icl.index_checksum (t sorted by name, m sorted by key). */
static uint64_t index_hash(const icl_st_tensor *t, int n, const kv *m, int nm, int *oom) {
  sbuf b = {0};
  for (int i = 0; i < n; i++) {
    sb_str(&b, t[i].name);
    sb_add(&b, "", 1);
    sb_str(&b, st_dtype(t[i].dtype));
    sb_fmt(&b, "%c%d", 0, t[i].ndim);
    for (int d = 0; d < t[i].ndim; d++) sb_fmt(&b, "%c%" PRId64, 0, t[i].shape[d]);
    sb_fmt(&b, "%c%" PRIu64 "%c%" PRIu64 "\n", 0, t[i].begin, 0, t[i].end);
  }
  sb_add(&b, "\n", 1);
  for (int i = 0; i < nm; i++) {
    if (!strcmp(m[i].k, CK_DATA) || !strcmp(m[i].k, CK_INDEX)) continue;
    sb_str(&b, m[i].k);
    sb_add(&b, "", 1);
    sb_str(&b, m[i].v);
    sb_add(&b, "\n", 1);
  }
  *oom = b.oom;
  uint64_t h = b.oom ? 0 : icl_xxh64(b.p, b.n, 0);
  free(b.p);
  return h;
}

/* The header icl writes: metadata first (sorted), then the tensors (sorted), no spaces, padded
 * with spaces to a multiple of 8. The reader rebuilds it for icl-written files and requires the
 * same bytes, so even changes the JSON grammar tolerates (\u000a vs \u000A) are caught. */
static void build_header(sbuf *hdr, const icl_st_tensor *t, int n, const kv *m, int nm) {
  sb_str(hdr, "{\"__metadata__\":{");
  for (int i = 0; i < nm; i++) {
    if (i) sb_add(hdr, ",", 1);
    sb_json(hdr, m[i].k);
    sb_add(hdr, ":", 1);
    sb_json(hdr, m[i].v);
  }
  sb_add(hdr, "}", 1);
  for (int i = 0; i < n; i++) {
    sb_add(hdr, ",", 1);
    sb_json(hdr, t[i].name);
    sb_fmt(hdr, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(t[i].dtype));
    for (int d = 0; d < t[i].ndim; d++) sb_fmt(hdr, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
    sb_fmt(hdr, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", t[i].begin, t[i].end);
  }
  sb_add(hdr, "}", 1);
  while (!hdr->oom && (8 + hdr->n) % 8) sb_add(hdr, " ", 1);
}

static int check_text(icl_ctx *ctx, const char *path, const char *what, const char *s) {
  if (!s) return icl_errorf(ctx, ICL_EINVAL, "%s: %s is missing (NULL)", path, what);
  if (!icl_utf8_valid(s, strlen(s))) return icl_errorf(ctx, ICL_EINVAL, "%s: %s '%s' is not valid UTF-8", path, what, s);
  return ICL_OK;
}

/* ---- writer ---------------------------------------------------------------------------------- */

int icl_safetensors_save(icl_ctx *ctx, const char *path, int n, const char *const *names,
                         const icl_tensor *const *tensors, int nmeta, const char *const *mkeys,
                         const char *const *mvals) {
  if (n < 0 || nmeta < 0) return icl_errorf(ctx, ICL_EINVAL, "%s: negative tensor or metadata count", path);
  icl_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
  const void **src = calloc((size_t)n + 1, sizeof *src);
  void **owned = calloc((size_t)n + 1, sizeof *owned);
  kv *m = calloc((size_t)nmeta + 3, sizeof *m);
  sbuf hdr = {0};
  int rc = ICL_OK;
  char ckd[32], cki[32];
  if (!t || !src || !owned || !m) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    if ((rc = check_text(ctx, path, "tensor name", names[i]))) goto done;
    if (!names[i][0] || !strcmp(names[i], "__metadata__")) {
      rc = icl_errorf(ctx, ICL_EINVAL, "%s: invalid tensor name '%s'", path, names[i]);
      goto done;
    }
    if (!tensors[i]) {
      rc = icl_errorf(ctx, ICL_EINVAL, "%s: tensor '%s' is NULL", path, names[i]);
      goto done;
    }
    t[i].name = (char *)names[i];
    t[i].dtype = tensors[i]->dtype;
    t[i].ndim = tensors[i]->ndim;
    memcpy(t[i].shape, tensors[i]->shape, sizeof t[i].shape);
    t[i].t = (icl_tensor *)tensors[i];
  }
  qsort(t, (size_t)n, sizeof *t, cmp_tensor_name);
  for (int i = 1; i < n; i++)
    if (!strcmp(t[i - 1].name, t[i].name)) {
      rc = icl_errorf(ctx, ICL_EINVAL, "%s: tensor name '%s' appears twice", path, t[i].name);
      goto done;
    }
  for (int i = 0; i < nmeta; i++) {
    if ((rc = check_text(ctx, path, "metadata key", mkeys[i])) || (rc = check_text(ctx, path, "metadata value", mvals[i])))
      goto done;
    if (!strcmp(mkeys[i], CK_DATA) || !strcmp(mkeys[i], CK_INDEX)) {
      rc = icl_errorf(ctx, ICL_EINVAL, "%s: metadata key '%s' is reserved for icl's checksums", path, mkeys[i]);
      goto done;
    }
    m[i] = (kv){mkeys[i], mvals[i]};
  }
  qsort(m, (size_t)nmeta, sizeof *m, cmp_kv);
  for (int i = 1; i < nmeta; i++)
    if (!strcmp(m[i - 1].k, m[i].k)) {
      rc = icl_errorf(ctx, ICL_EINVAL, "%s: metadata key '%s' appears twice", path, m[i].k);
      goto done;
    }
  /* host copies where needed, offsets and the data checksum */
  icl_xxh64_state h;
  icl_xxh64_init(&h, 0);
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    const icl_tensor *x = t[i].t;
    size_t nb = (size_t)icl_numel(x) * icl_dtype_size(x->dtype);
    if (x->storage->device == ICL_CPU && icl_is_contiguous(x)) {
      src[i] = icl_tensor_data(x);
    } else {
      if (!(owned[i] = malloc(nb ? nb : 1))) {
        rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory copying tensor '%s' (%zu bytes)", path, t[i].name, nb);
        goto done;
      }
      if ((rc = icl_copy_to_host(ctx, owned[i], x))) {
        icl_error_prefix(ctx, "%s: tensor '%s': ", path, t[i].name);
        goto done;
      }
      src[i] = owned[i];
    }
    t[i].begin = off;
    t[i].end = off += nb;
    icl_xxh64_update(&h, src[i], nb);
  }
  int oom = 0;
  uint64_t hi = index_hash(t, n, m, nmeta, &oom);
  if (oom) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  snprintf(ckd, sizeof ckd, "xxh64:%016" PRIx64, icl_xxh64_digest(&h));
  snprintf(cki, sizeof cki, "xxh64:%016" PRIx64, hi);
  m[nmeta] = (kv){CK_DATA, ckd};
  m[nmeta + 1] = (kv){CK_INDEX, cki};
  qsort(m, (size_t)nmeta + 2, sizeof *m, cmp_kv);
  build_header(&hdr, t, n, m, nmeta + 2);
  if (hdr.oom) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hdr.n >> (8 * k));
  icl_afile *f = icl_afile_open(ctx, path);
  if (!f) {
    rc = ctx->errcode;
    goto done;
  }
  rc = icl_afile_write(ctx, f, len8, 8);
  if (!rc) rc = icl_afile_write(ctx, f, hdr.p, hdr.n);
  for (int i = 0; i < n && !rc; i++) rc = icl_afile_write(ctx, f, src[i], (size_t)(t[i].end - t[i].begin));
  if (rc) icl_afile_abort(f);
  else rc = icl_afile_commit(ctx, f);
done:
  for (int i = 0; owned && i < n; i++) free(owned[i]);
  free(owned);
  free(src);
  free(t);
  free(m);
  free(hdr.p);
  return rc;
}

/* ---- reader ---------------------------------------------------------------------------------- */

void icl_safetensors_free(icl_ctx *ctx, icl_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) {
    free(f->tensors[i].name);
    if (f->tensors[i].t) icl_tensor_free(ctx, f->tensors[i].t);
  }
  for (int i = 0; i < f->nmeta; i++) {
    free(f->mkeys[i]);
    free(f->mvals[i]);
  }
  free(f->tensors);
  free(f->mkeys);
  free(f->mvals);
  free(f);
}

static int parse_dtype(icl_ctx *ctx, const char *path, const char *name, const icl_jv *v, icl_dtype *dt) {
  static const char *const other[] = {"F64", "F16", "BF16", "I64", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
                                      "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", NULL};
  if (v->kind != ICL_J_STR) return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': dtype is not a string", path, name);
  if (!strcmp(v->s, "F32")) return *dt = ICL_F32, ICL_OK;
  if (!strcmp(v->s, "I32")) return *dt = ICL_I32, ICL_OK;
  for (int i = 0; other[i]; i++)
    if (!strcmp(v->s, other[i]))
      return icl_errorf(ctx, ICL_ENOTIMPL, "%s: tensor '%s': dtype %s is not supported (icl reads F32 and I32)", path,
                        name, v->s);
  return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': unknown dtype '%.40s'", path, name, v->s);
}

static int parse_entry(icl_ctx *ctx, const char *path, const char *name, const icl_jv *v, icl_st_tensor *t) {
  if (v->kind != ICL_J_OBJ) return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
  const icl_jv *dt = NULL, *sh = NULL, *of = NULL;
  for (int i = 0; i < v->n; i++) {
    const char *k = v->k[i];
    if (!strcmp(k, "dtype")) dt = &v->v[i];
    else if (!strcmp(k, "shape")) sh = &v->v[i];
    else if (!strcmp(k, "data_offsets")) of = &v->v[i];
    else return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': unexpected field '%.40s'", path, name, k);
  }
  if (!dt || !sh || !of)
    return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': missing field '%s'", path, name,
                      !dt ? "dtype" : !sh ? "shape" : "data_offsets");
  int rc = parse_dtype(ctx, path, name, dt, &t->dtype);
  if (rc) return rc;
  if (sh->kind != ICL_J_ARR || sh->n > ICL_MAX_DIMS)
    return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': shape must be a list of at most %d sizes", path, name,
                      ICL_MAX_DIMS);
  uint64_t numel = 1, u;
  t->ndim = sh->n;
  for (int d = 0; d < sh->n; d++) {
    if (!icl_jv_u64(&sh->v[d], &u) || u > (1ull << 40))
      return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': shape entry %d is not a valid size", path, name, d + 1);
    t->shape[d] = (int64_t)u;
    if (u && numel > (1ull << 60) / u)
      return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': shape is too large", path, name);
    numel *= u;
  }
  if (of->kind != ICL_J_ARR || of->n != 2 || !icl_jv_u64(&of->v[0], &t->begin) || !icl_jv_u64(&of->v[1], &t->end))
    return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers", path, name);
  if (t->end < t->begin)
    return icl_errorf(ctx, ICL_EFORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                      path, name, t->begin, t->end);
  uint64_t need = numel * icl_dtype_size(t->dtype);
  if (t->end - t->begin != need)
    return icl_errorf(ctx, ICL_EFORMAT,
                      "%s: tensor '%s': shape needs %" PRIu64 " bytes but data_offsets [%" PRIu64 ", %" PRIu64
                      "] span %" PRIu64,
                      path, name, need, t->begin, t->end, t->end - t->begin);
  return ICL_OK;
}

static int parse_hex_ck(const char *s, uint64_t *out) {
  if (strncmp(s, "xxh64:", 6) || strlen(s) != 22) return 0;
  char *end;
  errno = 0;
  *out = strtoull(s + 6, &end, 16);
  for (const char *p = s + 6; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return !errno && !*end;
}

static int check_layout(icl_ctx *ctx, const char *path, icl_st_file *f, uint64_t data_len) {
  if (f->n == 0) {
    if (data_len) return icl_errorf(ctx, ICL_EFORMAT, "%s: %" PRIu64 " unexpected bytes after the header", path, data_len);
    return ICL_OK;
  }
  icl_st_tensor **o = malloc(sizeof *o * (size_t)f->n);
  if (!o) return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
  uint64_t max_end = 0;
  for (int i = 0; i < f->n; i++) {
    o[i] = &f->tensors[i];
    if (o[i]->end > max_end) max_end = o[i]->end;
  }
  int rc = ICL_OK;
  if (max_end > data_len) {
    rc = icl_errorf(ctx, ICL_EFORMAT,
                    "%s: file is truncated: the header places tensor data up to byte %" PRIu64
                    " of the data section, which holds only %" PRIu64 " bytes",
                    path, max_end, data_len);
    goto out;
  }
  qsort(o, (size_t)f->n, sizeof *o, cmp_tensor_off);
  uint64_t prev = 0;
  for (int i = 0; i < f->n; i++) {
    if (o[i]->begin < prev) {
      rc = icl_errorf(ctx, ICL_EFORMAT, "%s: tensors '%s' and '%s' overlap in the data section", path, o[i - 1]->name,
                      o[i]->name);
      goto out;
    }
    if (o[i]->begin > prev) {
      rc = icl_errorf(ctx, ICL_EFORMAT, "%s: %" PRIu64 " unaccounted bytes before tensor '%s' (data offsets have a gap)",
                      path, o[i]->begin - prev, o[i]->name);
      goto out;
    }
    prev = o[i]->end;
  }
  if (prev != data_len)
    rc = icl_errorf(ctx, ICL_EFORMAT, "%s: %" PRIu64 " unexpected bytes after the last tensor's data", path,
                    data_len - prev);
out:
  free(o);
  return rc;
}

static int read_data(icl_ctx *ctx, const char *path, FILE *fp, icl_st_file *f, uint64_t want, int have) {
  icl_st_tensor **o = malloc(sizeof *o * ((size_t)f->n + 1));
  if (!o) return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
  for (int i = 0; i < f->n; i++) o[i] = &f->tensors[i];
  qsort(o, (size_t)f->n, sizeof *o, cmp_tensor_off);
  icl_xxh64_state h;
  icl_xxh64_init(&h, 0);
  int rc = ICL_OK;
  for (int i = 0; i < f->n && !rc; i++) {
    icl_st_tensor *t = o[i];
    if (!(t->t = icl_tensor_empty(ctx, t->dtype, ICL_CPU, t->ndim, t->shape))) {
      rc = icl_error_prefix(ctx, "%s: tensor '%s': ", path, t->name);
      break;
    }
    size_t nb = (size_t)(t->end - t->begin);
    if (nb && fread(icl_tensor_data(t->t), 1, nb, fp) != nb)
      rc = icl_errorf(ctx, ICL_EIO, "%s: read error in tensor '%s' (file changed while reading?)", path, t->name);
    else
      icl_xxh64_update(&h, icl_tensor_data(t->t), nb);
  }
  free(o);
  if (!rc && have && icl_xxh64_digest(&h) != want)
    rc = icl_errorf(ctx, ICL_EFORMAT,
                    "%s: checksum mismatch: the data section hashes to xxh64:%016" PRIx64
                    " but the header records xxh64:%016" PRIx64 " (the file is corrupted)",
                    path, icl_xxh64_digest(&h), want);
  return rc;
}

static int parse_header(icl_ctx *ctx, const char *path, const icl_jv *root, icl_st_file *f) {
  if (root->kind != ICL_J_OBJ) return icl_errorf(ctx, ICL_EFORMAT, "%s: header is not a JSON object", path);
  const icl_jv *meta = icl_jv_get(root, "__metadata__");
  f->tensors = calloc((size_t)root->n + 1, sizeof *f->tensors);
  int nm = meta && meta->kind == ICL_J_OBJ ? meta->n : 0;
  f->mkeys = calloc((size_t)nm + 1, sizeof *f->mkeys);
  f->mvals = calloc((size_t)nm + 1, sizeof *f->mvals);
  if (!f->tensors || !f->mkeys || !f->mvals) return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
  if (meta && meta->kind != ICL_J_OBJ && meta->kind != ICL_J_NULL)
    return icl_errorf(ctx, ICL_EFORMAT, "%s: __metadata__ is not a JSON object", path);
  for (int i = 0; i < nm; i++) {
    if (meta->v[i].kind != ICL_J_STR || strlen(meta->k[i]) != meta->klen[i] || strlen(meta->v[i].s) != meta->v[i].len)
      return icl_errorf(ctx, ICL_EFORMAT, "%s: __metadata__ entry '%.60s' is not a plain string", path, meta->k[i]);
    if (!(f->mkeys[i] = strdup(meta->k[i])) || !(f->mvals[i] = strdup(meta->v[i].s))) {
      free(f->mkeys[i]);
      return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    }
    f->nmeta++;
  }
  for (int i = 0; i < root->n; i++) {
    if (!strcmp(root->k[i], "__metadata__")) continue;
    if (strlen(root->k[i]) != root->klen[i] || !root->k[i][0])
      return icl_errorf(ctx, ICL_EFORMAT, "%s: a tensor name is empty or contains a NUL byte", path);
    icl_st_tensor *t = &f->tensors[f->n];
    if (!(t->name = strdup(root->k[i]))) return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    f->n++;
    int rc = parse_entry(ctx, path, t->name, &root->v[i], t);
    if (rc) return rc;
  }
  qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_tensor_name);
  return ICL_OK;
}

static int sort_meta(icl_st_file *f) {
  kv *m = malloc(sizeof *m * ((size_t)f->nmeta + 1));
  if (!m) return -1;
  for (int i = 0; i < f->nmeta; i++) m[i] = (kv){f->mkeys[i], f->mvals[i]};
  qsort(m, (size_t)f->nmeta, sizeof *m, cmp_kv);
  for (int i = 0; i < f->nmeta; i++) f->mkeys[i] = (char *)m[i].k, f->mvals[i] = (char *)m[i].v;
  free(m);
  return 0;
}

icl_st_file *icl_safetensors_load(icl_ctx *ctx, const char *path, icl_device dev, int flags) {
  const uint16_t one = 1;
  if (*(const unsigned char *)&one != 1) {
    icl_errorf(ctx, ICL_ENOTIMPL, "%s: safetensors needs a little-endian host", path);
    return NULL;
  }
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    icl_errorf(ctx, ICL_EIO, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  icl_st_file *f = calloc(1, sizeof *f);
  char *hdr = NULL;
  icl_jv root = {0};
  int rc = ICL_OK;
  struct stat sb;
  unsigned char len8[8];
  if (!f) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    rc = icl_errorf(ctx, ICL_EIO, "%s: not a regular file", path);
    goto done;
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8 || fread(len8, 1, 8, fp) != 8) {
    rc = icl_errorf(ctx, ICL_EFORMAT, "%s: file is %" PRIu64 " bytes, too short to hold a safetensors header length", path,
                    size);
    goto done;
  }
  uint64_t hl = 0;
  for (int k = 7; k >= 0; k--) hl = (hl << 8) | len8[k];
  if (hl < 2 || hl > MAX_HEADER || hl > size - 8) {
    rc = icl_errorf(ctx, ICL_EFORMAT,
                    "%s: header length %" PRIu64 " is impossible for a %" PRIu64
                    "-byte file (truncated, corrupted, or not a safetensors file)",
                    path, hl, size);
    goto done;
  }
  if (!(hdr = malloc((size_t)hl + 1))) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if (fread(hdr, 1, (size_t)hl, fp) != (size_t)hl) {
    rc = icl_errorf(ctx, ICL_EIO, "%s: cannot read the %" PRIu64 "-byte header", path, hl);
    goto done;
  }
  if (hdr[0] != '{') {
    rc = icl_errorf(ctx, ICL_EFORMAT, "%s: header does not start with '{' (not a safetensors file?)", path);
    goto done;
  }
  char what[600];
  snprintf(what, sizeof what, "%s: header", path);
  if ((rc = icl_json_parse(ctx, what, hdr, (size_t)hl, &root))) goto done;
  if ((rc = parse_header(ctx, path, &root, f))) goto done;
  if ((rc = check_layout(ctx, path, f, size - 8 - hl))) goto done;
  if (sort_meta(f)) {
    rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  const char *ckd = NULL, *cki = NULL;
  for (int i = 0; i < f->nmeta; i++) {
    if (!strcmp(f->mkeys[i], CK_DATA)) ckd = f->mvals[i];
    if (!strcmp(f->mkeys[i], CK_INDEX)) cki = f->mvals[i];
  }
  uint64_t want_d = 0, want_i = 0;
  if ((ckd || cki) && (!ckd || !cki || !parse_hex_ck(ckd, &want_d) || !parse_hex_ck(cki, &want_i))) {
    rc = icl_errorf(ctx, ICL_EFORMAT, "%s: malformed icl checksum entries in __metadata__ (%s = '%.40s', %s = '%.40s')",
                    path, CK_DATA, ckd ? ckd : "(missing)", CK_INDEX, cki ? cki : "(missing)");
    goto done;
  }
  if (!ckd && (flags & ICL_ST_REQUIRE_CHECKSUM)) {
    rc = icl_errorf(ctx, ICL_EFORMAT, "%s: the file carries no icl checksum", path);
    goto done;
  }
  if (ckd) {
    int oom = 0;
    uint64_t got = 0;
    int canonical = 0;
    kv *m = malloc(sizeof *m * ((size_t)f->nmeta + 1));
    if (m) {
      for (int i = 0; i < f->nmeta; i++) m[i] = (kv){f->mkeys[i], f->mvals[i]};
      got = index_hash(f->tensors, f->n, m, f->nmeta, &oom);
      sbuf canon = {0};
      build_header(&canon, f->tensors, f->n, m, f->nmeta);
      oom |= canon.oom;
      canonical = canon.n == hl && !memcmp(canon.p, hdr, (size_t)hl);
      free(canon.p);
      free(m);
    }
    if (!m || oom) {
      rc = icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
      goto done;
    }
    if (!canonical) {
      rc = icl_errorf(ctx, ICL_EFORMAT,
                      "%s: the header is not byte-for-byte the one icl wrote for this content (the file is "
                      "corrupted or was edited)",
                      path);
      goto done;
    }
    if (got != want_i) {
      rc = icl_errorf(ctx, ICL_EFORMAT,
                      "%s: checksum mismatch in the header: tensor names, shapes, offsets or metadata hash to "
                      "xxh64:%016" PRIx64 " but the header records xxh64:%016" PRIx64 " (the file is corrupted)",
                      path, got, want_i);
      goto done;
    }
  }
  if (!(flags & ICL_ST_HEADER_ONLY)) {
    if ((rc = read_data(ctx, path, fp, f, want_d, ckd != NULL))) goto done;
    f->checksummed = ckd != NULL;
    for (int i = 0; i < f->n && dev != ICL_CPU; i++) {
      icl_tensor *d = icl_to_device(ctx, f->tensors[i].t, dev);
      if (!d) {
        rc = icl_error_prefix(ctx, "%s: tensor '%s': ", path, f->tensors[i].name);
        goto done;
      }
      icl_tensor_free(ctx, f->tensors[i].t);
      f->tensors[i].t = d;
    }
  } else {
    f->checksummed = 0;
  }
done:
  fclose(fp);
  free(hdr);
  icl_json_free(&root);
  if (rc) {
    icl_safetensors_free(ctx, f);
    return NULL;
  }
  return f;
}
