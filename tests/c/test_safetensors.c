/* Safetensors: XXH64 test vectors, round trips, the exact header layout, strict reading of
 * damaged files (every single-bit flip, truncation at every length, hand-made bad headers) and
 * atomic writes under injected write failures. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/fileio.h"
#include "io/hash.h"
#include "io/safetensors.h"
#include "ops/ops.h"

static char tmpdir[64];

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static unsigned char *slurp(const char *p, size_t *n) {
  icl_ctx *ctx = icl_t_ctx();
  char *d = NULL;
  if (icl_read_file(ctx, p, &d, n)) d = NULL;
  icl_ctx_free(ctx);
  return (unsigned char *)d;
}

static void spit(const char *p, const void *d, size_t n) {
  FILE *f = fopen(p, "wb");
  if (!f) return;
  if (n) fwrite(d, 1, n, f);
  fclose(f);
}

static void test_xxh64_vectors(void) {
  /* reference values from the xxhash reference implementation */
  CHECK(icl_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
  CHECK(icl_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bull);
  CHECK(icl_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
  CHECK(icl_xxh64("", 0, 7) == 0x95f0626f6f0a4409ull);
  CHECK(icl_xxh64("abc", 3, 7) == 0x9e755206156676d7ull);
  unsigned char big[771];
  for (int i = 0; i < 768; i++) big[i] = (unsigned char)(i % 256);
  memcpy(big + 768, "xyz", 3);
  CHECK(icl_xxh64(big, sizeof big, 0) == 0xe921a1b45bd779f8ull);
  CHECK(icl_xxh64(big, sizeof big, 7) == 0xb63555d1bf05377full);
  char digits[71];
  for (int i = 0; i < 70; i++) digits[i] = (char)('0' + i % 10);
  CHECK(icl_xxh64(digits, 70, 0) == 0x4916a0f3f0e1c781ull);
  /* streaming in uneven pieces gives the same digest */
  icl_xxh64_state h;
  icl_xxh64_init(&h, 0);
  size_t pieces[] = {1, 2, 31, 33, 64, 5, 635};
  size_t off = 0;
  for (int i = 0; i < 7; i++) {
    icl_xxh64_update(&h, big + off, pieces[i]);
    off += pieces[i];
  }
  CHECK(off == sizeof big && icl_xxh64_digest(&h) == 0xe921a1b45bd779f8ull);
}

/* a small file: w [2,3] F32, idx [4] I32, s (0-dim) F32, e [0] F32; metadata step=7 */
static int write_sample(icl_ctx *ctx, const char *p) {
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s0[1] = {0};
  float w[6] = {1, -2, 3.5f, 0.25f, 1e-30f, -0.0f}, sc = 42.0f;
  int32_t idx[4] = {7, -1, 0, 2147483647};
  icl_tensor *t[4] = {icl_tensor_from_host(ctx, w, ICL_F32, ICL_CPU, 2, s23),
                      icl_tensor_from_host(ctx, idx, ICL_I32, ICL_CPU, 1, s4),
                      icl_tensor_from_host(ctx, &sc, ICL_F32, ICL_CPU, 0, NULL),
                      icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, s0)};
  const char *names[4] = {"w", "idx", "s", "e"};
  const char *mk[2] = {"step", "note"}, *mv[2] = {"7", "quote \" and \\ and \n newline, caf\xc3\xa9"};
  int rc = icl_safetensors_save(ctx, p, 4, names, (const icl_tensor *const *)t, 2, mk, mv);
  for (int i = 0; i < 4; i++) icl_tensor_free(ctx, t[i]);
  return rc;
}

static void test_round_trip_and_layout(void) {
  icl_ctx *ctx = icl_t_ctx();
  char p[256];
  path_of(p, sizeof p, "a.safetensors");
  CHECK_OK(ctx, write_sample(ctx, p));
  icl_st_file *f = icl_safetensors_load(ctx, p, ICL_CPU, ICL_ST_REQUIRE_CHECKSUM);
  CHECK_MSG(f != NULL, "load: %s", icl_last_error(ctx));
  if (f) {
    CHECK(f->n == 4 && f->checksummed == 1);
    CHECK(!strcmp(f->tensors[0].name, "e") && !strcmp(f->tensors[1].name, "idx") && !strcmp(f->tensors[3].name, "w"));
    const float *w = icl_tensor_data(f->tensors[3].t);
    CHECK(f->tensors[3].t->ndim == 2 && f->tensors[3].t->shape[1] == 3 && w[2] == 3.5f && w[4] == 1e-30f);
    const int32_t *ix = icl_tensor_data(f->tensors[1].t);
    CHECK(f->tensors[1].dtype == ICL_I32 && ix[3] == 2147483647 && ix[1] == -1);
    CHECK(f->tensors[2].t->ndim == 0 && *(const float *)icl_tensor_data(f->tensors[2].t) == 42.0f);
    CHECK(icl_numel(f->tensors[0].t) == 0);
    int found = 0;
    for (int i = 0; i < f->nmeta; i++) {
      if (!strcmp(f->mkeys[i], "step")) found += !strcmp(f->mvals[i], "7");
      if (!strcmp(f->mkeys[i], "note")) found += strstr(f->mvals[i], "\n newline, caf\xc3\xa9") != NULL;
    }
    CHECK(found == 2);
    icl_safetensors_free(ctx, f);
  }
  size_t n;
  unsigned char *d = slurp(p, &n);
  CHECK(d != NULL);
  if (d) {
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | d[k];
    CHECK((8 + hl) % 8 == 0 && hl < n && d[8] == '{');
    CHECK(!memcmp(d + 8, "{\"__metadata__\":{", 17));
    /* tensors in name order in the data section: e (0 bytes), idx (16), s (4), w (24) */
    CHECK(n == 8 + hl + 16 + 4 + 24);
    char *h = strndup((char *)d + 8, hl);
    CHECK(strstr(h, "\"idx\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}"));
    CHECK(strstr(h, "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[16,20]}"));
    CHECK(strstr(h, "\"icl.checksum\":\"xxh64:") && strstr(h, "\"icl.index_checksum\":\"xxh64:"));
    free(h);
    int32_t first;
    memcpy(&first, d + 8 + hl, 4);
    CHECK(first == 7);
    free(d);
  }
  /* a transposed view is written contiguous */
  int64_t s23[2] = {2, 3};
  float v[6] = {0, 1, 2, 3, 4, 5};
  icl_tensor *a = icl_tensor_from_host(ctx, v, ICL_F32, ICL_CPU, 2, s23), *at = icl_transpose(ctx, a, 0, 1);
  const char *nm[1] = {"at"};
  CHECK_OK(ctx, icl_safetensors_save(ctx, p, 1, nm, (const icl_tensor *const *)&at, 0, NULL, NULL));
  f = icl_safetensors_load(ctx, p, ICL_CPU, 0);
  CHECK(f && f->tensors[0].t->shape[0] == 3);
  if (f) {
    const float *x = icl_tensor_data(f->tensors[0].t);
    CHECK(x[0] == 0 && x[1] == 3 && x[2] == 1 && x[5] == 5);
  }
  icl_safetensors_free(ctx, f);
  icl_tensor_free(ctx, at);
  icl_tensor_free(ctx, a);
  /* bad arguments */
  const char *dup[2] = {"x", "x"};
  icl_tensor *two[2] = {icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, s23), icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, s23)};
  CHECK(icl_safetensors_save(ctx, p, 2, dup, (const icl_tensor *const *)two, 0, NULL, NULL) != 0 &&
        strstr(icl_last_error(ctx), "twice"));
  const char *rk[1] = {"icl.checksum"}, *rv[1] = {"x"};
  CHECK(icl_safetensors_save(ctx, p, 1, dup, (const icl_tensor *const *)two, 1, rk, rv) != 0 &&
        strstr(icl_last_error(ctx), "reserved"));
  icl_tensor_free(ctx, two[0]);
  icl_tensor_free(ctx, two[1]);
  icl_ctx_free(ctx);
}

static void test_every_bit_flip(void) {
  icl_ctx *ctx = icl_t_ctx();
  char p[256], q[256];
  path_of(p, sizeof p, "flip.safetensors");
  path_of(q, sizeof q, "flip2.safetensors");
  CHECK_OK(ctx, write_sample(ctx, p));
  size_t n;
  unsigned char *d = slurp(p, &n);
  if (!d) return;
  int undetected = 0, first_bad = -1;
  for (size_t i = 0; i < n; i++)
    for (int b = 0; b < 8; b++) {
      d[i] ^= (unsigned char)(1u << b);
      spit(q, d, n);
      icl_st_file *f = icl_safetensors_load(ctx, q, ICL_CPU, 0);
      if (f) {
        undetected++;
        if (first_bad < 0) first_bad = (int)(i * 8 + (size_t)b);
        icl_safetensors_free(ctx, f);
      } else if (!strstr(icl_last_error(ctx), q)) {
        icl_t_fail(__FILE__, __LINE__, "flip at byte %zu: message does not name the file: %s", i, icl_last_error(ctx));
      }
      d[i] ^= (unsigned char)(1u << b);
    }
  CHECK_MSG(undetected == 0, "%d of %zu single-bit flips went undetected (first at bit %d)", undetected, n * 8, first_bad);
  /* truncation at every length */
  for (size_t k = 0; k < n; k++) {
    spit(q, d, k);
    icl_st_file *f = icl_safetensors_load(ctx, q, ICL_CPU, 0);
    CHECK_MSG(f == NULL, "truncated to %zu bytes but loaded", k);
    icl_safetensors_free(ctx, f);
  }
  spit(q, d, 5);
  CHECK(icl_safetensors_load(ctx, q, ICL_CPU, 0) == NULL && strstr(icl_last_error(ctx), "too short"));
  spit(q, d, n - 3);
  CHECK(icl_safetensors_load(ctx, q, ICL_CPU, 0) == NULL && strstr(icl_last_error(ctx), "truncated"));
  free(d);
  icl_ctx_free(ctx);
}

/* write 8-byte length + header (padded) + nbytes of zeros */
static void handmade(const char *p, const char *hdr, size_t nbytes) {
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  unsigned char *d = calloc(1, 8 + padded + nbytes);
  for (int k = 0; k < 8; k++) d[k] = (unsigned char)((uint64_t)padded >> (8 * k));
  memcpy(d + 8, hdr, hl);
  memset(d + 8 + hl, ' ', padded - hl);
  spit(p, d, 8 + padded + nbytes);
  free(d);
}

static void test_bad_headers(void) {
  icl_ctx *ctx = icl_t_ctx();
  char p[256];
  path_of(p, sizeof p, "bad.safetensors");
  struct {
    const char *hdr;
    size_t data;
    const char *msg;
  } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
       12, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "unexpected bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"},
      {"{\"a\":{\"dtype\":\"X99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
      {"{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, "not supported"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unexpected field"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape entry"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8, "data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8, "duplicate key"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "plain string"},
      {"{\"__metadata__\":{\"icl.checksum\":\"xxh64:zz\"}}", 0, "malformed"},
      {"[1,2]", 0, "does not start with"},
      {"{\"a\":", 0, "invalid JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    handmade(p, cases[i].hdr, cases[i].data);
    icl_st_file *f = icl_safetensors_load(ctx, p, ICL_CPU, 0);
    CHECK_MSG(f == NULL && strstr(icl_last_error(ctx), cases[i].msg) && strstr(icl_last_error(ctx), p),
              "case %zu: expected '%s', got: %s", i, cases[i].msg, f ? "(loaded)" : icl_last_error(ctx));
    icl_safetensors_free(ctx, f);
  }
  /* a header length far beyond the file */
  unsigned char d[16] = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  spit(p, d, 16);
  CHECK(icl_safetensors_load(ctx, p, ICL_CPU, 0) == NULL && strstr(icl_last_error(ctx), "header length"));
  /* a valid file with no checksums (as other tools write them) loads; with require_checksum it does not */
  handmade(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
  icl_st_file *f = icl_safetensors_load(ctx, p, ICL_CPU, 0);
  CHECK(f && f->n == 1 && f->checksummed == 0);
  icl_safetensors_free(ctx, f);
  CHECK(icl_safetensors_load(ctx, p, ICL_CPU, ICL_ST_REQUIRE_CHECKSUM) == NULL);
  icl_ctx_free(ctx);
}

static int count_tmp_files(void) {
  DIR *dir = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while (dir && (e = readdir(dir)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (dir) closedir(dir);
  return n;
}

static void test_atomic_writes(void) {
  icl_ctx *ctx = icl_t_ctx();
  char p[256];
  path_of(p, sizeof p, "keep.safetensors");
  CHECK_OK(ctx, write_sample(ctx, p));
  size_t n0, n1;
  unsigned char *before = slurp(p, &n0);
  int64_t big[1] = {100000};
  icl_tensor *t = icl_tensor_full(ctx, ICL_F32, ICL_CPU, 1, big, 3.0);
  const char *nm[1] = {"big"};
  long limits[] = {0, 7, 100, 65536, 399999};
  for (int i = 0; i < 5; i++) {
    char lim[32];
    snprintf(lim, sizeof lim, "%ld", limits[i]);
    setenv("ICL_FAULT_WRITE_FAIL_AFTER", lim, 1);
    int rc = icl_safetensors_save(ctx, p, 1, nm, (const icl_tensor *const *)&t, 0, NULL, NULL);
    CHECK_MSG(rc != 0 && strstr(icl_last_error(ctx), "No space left") && strstr(icl_last_error(ctx), p),
              "limit %ld: %s", limits[i], rc ? icl_last_error(ctx) : "(saved)");
    unsigned char *after = slurp(p, &n1);
    CHECK_MSG(after && n1 == n0 && !memcmp(before, after, n0), "limit %ld: the previous file changed", limits[i]);
    free(after);
    CHECK(count_tmp_files() == 0);
  }
  unsetenv("ICL_FAULT_WRITE_FAIL_AFTER");
  icl_st_file *f = icl_safetensors_load(ctx, p, ICL_CPU, 0);
  CHECK(f && f->n == 4);
  icl_safetensors_free(ctx, f);
  CHECK_OK(ctx, icl_safetensors_save(ctx, p, 1, nm, (const icl_tensor *const *)&t, 0, NULL, NULL));
  f = icl_safetensors_load(ctx, p, ICL_CPU, 0);
  CHECK(f && f->n == 1 && ((const float *)icl_tensor_data(f->tensors[0].t))[99999] == 3.0f);
  icl_safetensors_free(ctx, f);
  icl_tensor_free(ctx, t);
  free(before);
  /* the plain atomic writer and the helpers */
  path_of(p, sizeof p, "x/y/z");
  CHECK_OK(ctx, icl_mkdir_p(ctx, p));
  CHECK_OK(ctx, icl_mkdir_p(ctx, p));
  path_of(p, sizeof p, "x/y/z/state.json");
  CHECK_OK(ctx, icl_write_file_atomic(ctx, p, "{\"a\":1}", 7));
  setenv("ICL_FAULT_WRITE_FAIL_AFTER", "3", 1);
  CHECK(icl_write_file_atomic(ctx, p, "{\"a\":2}", 7) != 0);
  unsetenv("ICL_FAULT_WRITE_FAIL_AFTER");
  char *s;
  size_t sn;
  CHECK_OK(ctx, icl_read_file(ctx, p, &s, &sn));
  CHECK(sn == 7 && !memcmp(s, "{\"a\":1}", 7));
  free(s);
  char **names;
  int nn;
  path_of(p, sizeof p, "x/y/z");
  CHECK_OK(ctx, icl_list_dir(ctx, p, &names, &nn));
  CHECK(nn == 1 && !strcmp(names[0], "state.json"));
  icl_free_names(names, nn);
  CHECK(icl_write_file_atomic(ctx, "/nonexistent_dir_icl/x", "a", 1) != 0 && strstr(icl_last_error(ctx), "/nonexistent_dir_icl/x"));
  icl_ctx_free(ctx);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/icl_st_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  ICL_RUN(test_xxh64_vectors);
  ICL_RUN(test_round_trip_and_layout);
  ICL_RUN(test_every_bit_flip);
  ICL_RUN(test_bad_headers);
  ICL_RUN(test_atomic_writes);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return icl_t_finish("safetensors");
}
