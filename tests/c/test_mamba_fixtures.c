/* The Mamba backbone against the PyTorch / HF MambaModel reference fixtures
 * (tests/reference/fixtures/mamba*.safetensors, see tests/reference/README.md):
 * load the weights and inputs, run the engine's forward and checkpointed
 * backward (T_c smaller than the sequence), compare the predictions, the
 * loss and every parameter gradient.
 *
 * The fixtures are read with a minimal safetensors reader kept in this test
 * (8-byte header length, JSON header, raw little-endian F32 data); the
 * engine's own safetensors library lives in engine/io. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/mamba.h"

/* ---- a minimal JSON reader (objects, arrays, strings, numbers, literals) ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype type;
  double num;
  char *str;          /* J_STR */
  int n;              /* J_ARR / J_OBJ items */
  char **keys;        /* J_OBJ */
  struct jval *items; /* J_ARR / J_OBJ */
} jval;

static void jfree(jval *v) {
  free(v->str);
  for (int i = 0; i < v->n; i++) {
    if (v->keys) free(v->keys[i]);
    jfree(&v->items[i]);
  }
  free(v->keys);
  free(v->items);
}

static void jskip(const char **p) {
  while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t') (*p)++;
}

static int jparse(const char **p, jval *out);

static char *jstring(const char **p) {
  if (**p != '"') return NULL;
  (*p)++;
  size_t cap = 64, n = 0;
  char *s = malloc(cap);
  while (**p && **p != '"') {
    char c = *(*p)++;
    if (c == '\\') {
      c = *(*p)++;
      c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
      if (c == 'u') { /* the fixtures are ASCII; keep a placeholder */
        *p += 4;
        c = '?';
      }
    }
    if (n + 2 > cap) s = realloc(s, cap *= 2);
    s[n++] = c;
  }
  if (**p != '"') {
    free(s);
    return NULL;
  }
  (*p)++;
  s[n] = 0;
  return s;
}

static int jlist(const char **p, jval *out, char close, int obj) {
  (*p)++;
  out->type = obj ? J_OBJ : J_ARR;
  int cap = 0;
  jskip(p);
  if (**p == close) {
    (*p)++;
    return 0;
  }
  for (;;) {
    if (out->n == cap) {
      cap = cap ? 2 * cap : 8;
      out->items = realloc(out->items, sizeof(jval) * (size_t)cap);
      if (obj) out->keys = realloc(out->keys, sizeof(char *) * (size_t)cap);
    }
    jskip(p);
    if (obj) {
      char *k = jstring(p);
      if (!k) return -1;
      out->keys[out->n] = k;
      jskip(p);
      if (*(*p)++ != ':') return -1;
    }
    memset(&out->items[out->n], 0, sizeof(jval));
    out->n++;
    if (jparse(p, &out->items[out->n - 1])) return -1;
    jskip(p);
    if (**p == ',') {
      (*p)++;
      continue;
    }
    if (**p == close) {
      (*p)++;
      return 0;
    }
    return -1;
  }
}

static int jparse(const char **p, jval *out) {
  memset(out, 0, sizeof *out);
  jskip(p);
  if (**p == '{') return jlist(p, out, '}', 1);
  if (**p == '[') return jlist(p, out, ']', 0);
  if (**p == '"') {
    out->type = J_STR;
    out->str = jstring(p);
    return out->str ? 0 : -1;
  }
  if (!strncmp(*p, "true", 4) || !strncmp(*p, "null", 4)) {
    out->type = **p == 't' ? J_BOOL : J_NULL;
    out->num = **p == 't';
    *p += 4;
    return 0;
  }
  if (!strncmp(*p, "false", 5)) {
    out->type = J_BOOL;
    *p += 5;
    return 0;
  }
  char *end;
  out->type = J_NUM;
  out->num = strtod(*p, &end);
  if (end == *p) return -1;
  *p = end;
  return 0;
}

static const jval *jget(const jval *o, const char *key) {
  if (!o || o->type != J_OBJ) return NULL;
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return &o->items[i];
  return NULL;
}

static double jnum(const jval *o, const char *key) {
  const jval *v = jget(o, key);
  return v && v->type == J_NUM ? v->num : -1;
}

/* ---- safetensors ------------------------------------------------------------ */

typedef struct stfile {
  unsigned char *buf;
  size_t size, data; /* data: offset of the byte buffer */
  jval header, config;
} stfile;

static int st_open(stfile *f, const char *path) {
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  fseek(fp, 0, SEEK_END);
  f->size = (size_t)ftell(fp);
  fseek(fp, 0, SEEK_SET);
  f->buf = malloc(f->size + 1);
  size_t got = fread(f->buf, 1, f->size, fp);
  fclose(fp);
  if (got != f->size || f->size < 8) return -1;
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | f->buf[i];
  if (8 + hl > f->size) return -1;
  char *h = malloc(hl + 1);
  memcpy(h, f->buf + 8, hl);
  h[hl] = 0;
  const char *p = h;
  int rc = jparse(&p, &f->header);
  free(h);
  f->data = 8 + hl;
  const jval *cfg = jget(jget(&f->header, "__metadata__"), "config");
  if (rc || !cfg || cfg->type != J_STR) return -1;
  p = cfg->str;
  return jparse(&p, &f->config);
}

static void st_close(stfile *f) {
  free(f->buf);
  jfree(&f->header);
  jfree(&f->config);
}

/* tensor data (F32 only) and its element count; NULL if absent */
static const float *st_tensor(const stfile *f, const char *name, int64_t *numel) {
  const jval *t = jget(&f->header, name);
  const jval *dt = jget(t, "dtype"), *shape = jget(t, "shape"), *off = jget(t, "data_offsets");
  if (!t || !dt || strcmp(dt->str, "F32") || !shape || !off || off->n != 2) return NULL;
  int64_t n = 1;
  for (int i = 0; i < shape->n; i++) n *= (int64_t)shape->items[i].num;
  size_t a = (size_t)off->items[0].num, b = (size_t)off->items[1].num;
  if (b - a != (size_t)n * 4 || f->data + b > f->size) return NULL;
  if (numel) *numel = n;
  return (const float *)(f->buf + f->data + a); /* the data buffer starts 8-aligned in these files */
}

/* ---- comparison --------------------------------------------------------------- */

typedef struct cmp {
  double norm_rel, max_abs_rel; /* ||a-b||/||b||, max|a-b| / max|b| */
} cmp;

static cmp compare(const float *a, const float *b, int64_t n) {
  double e2 = 0, b2 = 0, emax = 0, bmax = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    e2 += d * d, b2 += (double)b[i] * b[i];
    emax = fmax(emax, fabs(d)), bmax = fmax(bmax, fabs((double)b[i]));
  }
  cmp c = {b2 > 0 ? sqrt(e2 / b2) : sqrt(e2), bmax > 0 ? emax / bmax : emax};
  return c;
}

static void check_fixture(const char *file, int64_t chunk) {
  icl_ctx *ctx = icl_t_ctx();
  char path[512];
  const char *src = getenv("ICL_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/reference/fixtures/%s", src ? src : ".", file);
  stfile f;
  if (st_open(&f, path)) {
    icl_t_fail(__FILE__, __LINE__, "cannot read fixture %s", path);
    st_close(&f);
    icl_ctx_free(ctx);
    return;
  }
  const jval *mc = jget(&f.config, "mamba");
  icl_mamba_cfg c = icl_mamba_defaults((int64_t)jnum(&f.config, "hidden"));
  c.layers = (int64_t)jnum(&f.config, "layers");
  c.state = (int64_t)jnum(mc, "state");
  c.expand = (int64_t)jnum(mc, "expand");
  c.conv = (int64_t)jnum(mc, "conv");
  c.dt_rank = (int64_t)jnum(mc, "dt_rank");
  c.eps = (float)jnum(mc, "layer_norm_epsilon");
  c.chunk = chunk;
  const int64_t D = (int64_t)jnum(&f.config, "D"), B = (int64_t)jnum(&f.config, "B"), N = (int64_t)jnum(&f.config, "N");
  CHECK(!strcmp(jget(&f.config, "loss")->str, "mse"));
  CHECK_MSG(chunk < 2 * N, "T_c %lld must be smaller than the %lld tokens", (long long)chunk, (long long)(2 * N));
  icl_model *m = icl_mamba_model_new(ctx, D, &c, ICL_CPU, 0);
  CHECK(m != NULL);
  if (!m) goto done;
  /* every model parameter comes from the file, and the file has no other parameter */
  int nparams_file = 0;
  for (int i = 0; i < f.header.n; i++) {
    const char *k = f.header.keys[i];
    if (strcmp(k, "__metadata__") && strncmp(k, "input.", 6) && strncmp(k, "expected.", 9) && strncmp(k, "grad.", 5))
      nparams_file++;
  }
  CHECK_MSG(nparams_file == m->params.n, "%s: %d parameters in the file, %d in the model", file, nparams_file,
            m->params.n);
  for (int i = 0; i < m->params.n; i++) {
    int64_t n = 0;
    const float *v = st_tensor(&f, m->params.info[i].name, &n);
    CHECK_MSG(v != NULL, "%s: no tensor %s", file, m->params.info[i].name);
    if (v) CHECK_OK(ctx, icl_params_set(ctx, &m->params, i, v, n));
  }
  int64_t nx, ny, np;
  const float *xs = st_tensor(&f, "input.xs", &nx), *ys = st_tensor(&f, "input.ys", &ny);
  const float *want_pred = st_tensor(&f, "expected.pred", &np), *want_loss = st_tensor(&f, "expected.loss", NULL);
  CHECK(xs && ys && want_pred && want_loss && nx == B * N * D && ny == B * N && np == B * N);
  if (!xs || !ys || !want_pred || !want_loss) goto done;
  float loss, *pred = malloc(sizeof(float) * (size_t)(B * N));
  CHECK_OK(ctx, icl_model_loss_step(ctx, m, xs, ys, B, N, ICL_LOSS_MSE, &loss));
  CHECK_OK(ctx, icl_model_forward(ctx, m, xs, ys, B, N, pred, 0));
  cmp cp = compare(pred, want_pred, B * N);
  double lrel = fabs((double)loss - *want_loss) / fabs((double)*want_loss);
  printf("  %s (T=%lld, T_c=%lld): pred norm rel %.2e, max abs rel %.2e; loss %.8g vs %.8g (rel %.2e)\n", file,
         (long long)(2 * N), (long long)chunk, cp.norm_rel, cp.max_abs_rel, loss, *want_loss, lrel);
  CHECK_MSG(cp.norm_rel < 1e-4 && cp.max_abs_rel < 1e-4, "%s: predictions differ (%.3g, %.3g)", file, cp.norm_rel,
            cp.max_abs_rel);
  CHECK_MSG(lrel < 1e-4, "%s: loss %.8g, expected %.8g", file, loss, *want_loss);
  double worst_norm = 0, worst_abs = 0;
  const char *worst_name = "";
  for (int i = 0; i < m->params.n; i++) {
    char gname[ICL_PARAM_NAME_MAX + 8];
    snprintf(gname, sizeof gname, "grad.%s", m->params.info[i].name);
    int64_t n = 0;
    const float *want = st_tensor(&f, gname, &n);
    CHECK_MSG(want && n == m->params.info[i].numel, "%s: no %s", file, gname);
    if (!want) continue;
    cmp cg = compare(icl_params_grad(&m->params, i), want, n);
    CHECK_MSG(cg.norm_rel < 1e-4 && cg.max_abs_rel < 1e-4, "%s: %s differs: norm rel %.3g, max abs rel %.3g", file,
              gname, cg.norm_rel, cg.max_abs_rel);
    if (cg.norm_rel > worst_norm) worst_norm = cg.norm_rel, worst_name = m->params.info[i].name;
    worst_abs = fmax(worst_abs, cg.max_abs_rel);
  }
  printf("  %s: %d gradients, worst norm rel %.2e (%s), worst max abs rel %.2e\n", file, m->params.n, worst_norm,
         worst_name, worst_abs);
  free(pred);
done:
  icl_model_free(ctx, m);
  st_close(&f);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

static void test_mamba_n24(void) { check_fixture("mamba_n24.safetensors", 7); }
static void test_mamba_l3_n40(void) { check_fixture("mamba_l3_n40.safetensors", 16); }

int main(void) {
  ICL_RUN(test_mamba_n24);
  ICL_RUN(test_mamba_l3_n40);
  return icl_t_finish("test_mamba_fixtures");
}
