/* The YAML loader: typed scalars, !include (relative, nested, cycles, missing), merge keys,
 * anchors, duplicate keys, error positions, and hostile input (garbage, truncation, depth, size). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/yaml_load.h"

static char tmpdir[64];

static void write_text(const char *rel, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
  FILE *f = fopen(p, "wb");
  if (!f) {
    icl_t_fail(__FILE__, __LINE__, "cannot write %s", p);
    return;
  }
  fputs(text, f);
  fclose(f);
}

static icl_ydoc *parse(icl_ctx *ctx, const char *text) {
  return icl_yaml_load_string(ctx, text, strlen(text), "t.yaml", NULL);
}

static void test_scalars(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_ydoc *d = parse(ctx, "i: 42\nn: -7\nh: 0x1F\no: 0o17\nu: 1_000\nf: 3.0e-4\ng: 1e-05\nt: !!float 1e-05\n"
                           "z: 0.\ninf: -.inf\nb: true\nc: False\nnul: ~\nnul2: null\nempty:\ns: hello\nq: \"12\"\n"
                           "yes: yes\nlist: [1, two, 3.5]\nbig: 99999999999999999999\nforced: !!str 12\nfi: !!float 3\n");
  CHECK_MSG(d != NULL, "parse failed: %s", icl_last_error(ctx));
  if (!d) goto out;
  const icl_ynode *r = d->root, *v;
  CHECK(r->kind == ICL_Y_MAP && r->n == 22);
  CHECK((v = icl_ynode_get(r, "i")) && v->kind == ICL_Y_INT && v->i == 42);
  CHECK((v = icl_ynode_get(r, "n")) && v->kind == ICL_Y_INT && v->i == -7);
  CHECK((v = icl_ynode_get(r, "h")) && v->kind == ICL_Y_INT && v->i == 31);
  CHECK((v = icl_ynode_get(r, "o")) && v->kind == ICL_Y_INT && v->i == 15);
  CHECK((v = icl_ynode_get(r, "u")) && v->kind == ICL_Y_INT && v->i == 1000);
  CHECK((v = icl_ynode_get(r, "f")) && v->kind == ICL_Y_FLOAT && v->f == 3.0e-4);
  CHECK((v = icl_ynode_get(r, "g")) && v->kind == ICL_Y_FLOAT && v->f == 1e-05);
  CHECK((v = icl_ynode_get(r, "t")) && v->kind == ICL_Y_FLOAT && v->f == 1e-05);
  CHECK((v = icl_ynode_get(r, "z")) && v->kind == ICL_Y_FLOAT && v->f == 0.0);
  CHECK((v = icl_ynode_get(r, "inf")) && v->kind == ICL_Y_FLOAT && isinf(v->f) && v->f < 0);
  CHECK((v = icl_ynode_get(r, "b")) && v->kind == ICL_Y_BOOL && v->b == 1);
  CHECK((v = icl_ynode_get(r, "c")) && v->kind == ICL_Y_BOOL && v->b == 0);
  CHECK((v = icl_ynode_get(r, "nul")) && v->kind == ICL_Y_NULL);
  CHECK((v = icl_ynode_get(r, "nul2")) && v->kind == ICL_Y_NULL);
  CHECK((v = icl_ynode_get(r, "empty")) && v->kind == ICL_Y_NULL);
  CHECK((v = icl_ynode_get(r, "s")) && v->kind == ICL_Y_STR && !strcmp(v->str, "hello"));
  CHECK((v = icl_ynode_get(r, "q")) && v->kind == ICL_Y_STR && !strcmp(v->str, "12"));
  CHECK((v = icl_ynode_get(r, "yes")) && v->kind == ICL_Y_STR);
  CHECK((v = icl_ynode_get(r, "list")) && v->kind == ICL_Y_SEQ && v->n == 3 && v->e[1].value->kind == ICL_Y_STR &&
        v->e[2].value->kind == ICL_Y_FLOAT);
  CHECK((v = icl_ynode_get(r, "big")) && v->kind == ICL_Y_FLOAT);
  CHECK((v = icl_ynode_get(r, "forced")) && v->kind == ICL_Y_STR);
  CHECK((v = icl_ynode_get(r, "fi")) && v->kind == ICL_Y_FLOAT && v->f == 3.0);
  /* positions: the line of each key */
  CHECK(r->e[0].line == 1 && r->e[5].line == 6 && !strcmp(r->e[5].file, "t.yaml"));
  icl_yaml_free(d);
out:
  icl_ctx_free(ctx);
}

static void expect_error(icl_ctx *ctx, icl_ydoc *d, const char *const *parts, const char *what) {
  CHECK_MSG(d == NULL, "%s: expected an error", what);
  if (d) {
    icl_yaml_free(d);
    return;
  }
  for (int i = 0; parts[i]; i++)
    CHECK_MSG(strstr(icl_last_error(ctx), parts[i]) != NULL, "%s: '%s' not in: %s", what, parts[i], icl_last_error(ctx));
}

static void test_errors(void) {
  icl_ctx *ctx = icl_t_ctx();
  expect_error(ctx, parse(ctx, "a: 1\nb:\n  c: 2\n  c: 3\n"), (const char *[]){"t.yaml:4", "b.c", "duplicate key", "line 3", NULL},
               "duplicate");
  expect_error(ctx, parse(ctx, "a: 1\nb: [1, 2\nc: 3\n"), (const char *[]){"t.yaml:3", "syntax error", NULL}, "syntax");
  expect_error(ctx, parse(ctx, "a:\n  b: !weird 1\n"), (const char *[]){"t.yaml:2", "a.b", "unsupported tag", NULL}, "tag");
  expect_error(ctx, parse(ctx, "a: !!int 1.5\n"), (const char *[]){"t.yaml:1", "!!int", NULL}, "!!int");
  expect_error(ctx, parse(ctx, "a: *nope\n"), (const char *[]){"unknown anchor", NULL}, "anchor");
  expect_error(ctx, parse(ctx, "a: &x [1, *x]\n"), (const char *[]){"unknown anchor", NULL}, "recursive alias");
  expect_error(ctx, parse(ctx, "a: 1\n---\nb: 2\n"), (const char *[]){"more than one", NULL}, "documents");
  expect_error(ctx, parse(ctx, "? [1]\n: 2\n"), (const char *[]){"keys must be", NULL}, "complex key");
  expect_error(ctx, parse(ctx, "a:\n  <<: 5\n"), (const char *[]){"merge key", "a.<<", NULL}, "merge of a scalar");
  expect_error(ctx, icl_yaml_load_file(ctx, "/nonexistent/x.yaml", NULL), (const char *[]){"/nonexistent/x.yaml", NULL},
               "missing file");
  icl_ctx_free(ctx);
}

static void test_includes(void) {
  icl_ctx *ctx = icl_t_ctx();
  char p[256];
  snprintf(p, sizeof p, "%s/sub", tmpdir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/sub/deeper", tmpdir);
  mkdir(p, 0755);
  write_text("sub/part.yaml", "# a fragment\nx: 1\ny: !include deeper/leaf.yaml\n");
  write_text("sub/deeper/leaf.yaml", "[1, 2, 3]\n");
  write_text("sub/empty.yaml", "");
  write_text("top.yaml", "a: !include sub/part.yaml\nb:\n  !include sub/empty.yaml\nc:\n  <<: !include sub/part.yaml\n  x: 9\n");
  snprintf(p, sizeof p, "%s/top.yaml", tmpdir);
  icl_ydoc *d = icl_yaml_load_file(ctx, p, NULL);
  CHECK_MSG(d != NULL, "include failed: %s", icl_last_error(ctx));
  if (d) {
    const icl_ynode *a = icl_ynode_get(d->root, "a"), *b = icl_ynode_get(d->root, "b"), *c = icl_ynode_get(d->root, "c");
    CHECK(a && a->kind == ICL_Y_MAP && a->n == 2);
    const icl_ynode *y = icl_ynode_get(a, "y");
    CHECK(y && y->kind == ICL_Y_SEQ && y->n == 3);
    CHECK(a && strstr(a->e[0].file, "sub/part.yaml") && a->e[0].line == 2);
    CHECK(y && strstr(y->file, "sub/deeper/leaf.yaml") && !strstr(y->file, ".."));
    CHECK(b && b->kind == ICL_Y_NULL);
    const icl_ynode *cx = icl_ynode_get(c, "x");
    CHECK(c && c->n == 2 && cx && cx->kind == ICL_Y_INT && cx->i == 9);
    icl_yaml_free(d);
  }
  /* missing include names the including file, its line and the key path */
  write_text("miss.yaml", "model:\n  size: 1\npatch:\n  !include sub/nothere.yaml\n");
  snprintf(p, sizeof p, "%s/miss.yaml", tmpdir);
  expect_error(ctx, icl_yaml_load_file(ctx, p, NULL),
               (const char *[]){"miss.yaml:4", "patch", "nothere.yaml", "No such file", NULL}, "missing include");
  /* cycles, direct and indirect */
  write_text("self.yaml", "a: !include self.yaml\n");
  snprintf(p, sizeof p, "%s/self.yaml", tmpdir);
  expect_error(ctx, icl_yaml_load_file(ctx, p, NULL), (const char *[]){"self.yaml:1", "cycle", NULL}, "self include");
  write_text("c1.yaml", "a:\n  b: !include sub/c2.yaml\n");
  write_text("sub/c2.yaml", "- !include ../c1.yaml\n");
  snprintf(p, sizeof p, "%s/c1.yaml", tmpdir);
  expect_error(ctx, icl_yaml_load_file(ctx, p, NULL), (const char *[]){"c2.yaml:1", "cycle", "c1.yaml -> ", NULL},
               "indirect cycle");
  /* an include on a collection or a key */
  expect_error(ctx, parse(ctx, "a: !include [1]\n"), (const char *[]){"!include needs a file name", NULL}, "include seq");
  icl_ctx_free(ctx);
}

static void test_anchors_and_merge(void) {
  icl_ctx *ctx = icl_t_ctx();
  icl_ydoc *d = parse(ctx, "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: [*b, {z: 3, x: 7}]\n  y: 5\n");
  CHECK_MSG(d != NULL, "%s", icl_last_error(ctx));
  if (d) {
    const icl_ynode *m = icl_ynode_get(d->root, "merged");
    CHECK(icl_ynode_get(d->root, "use") == icl_ynode_get(d->root, "base"));
    CHECK(m && m->n == 3);
    CHECK(icl_ynode_get(m, "x")->i == 1 && icl_ynode_get(m, "y")->i == 5 && icl_ynode_get(m, "z")->i == 3);
    icl_yaml_free(d);
  }
  /* a billion-laughs document stays a small DAG */
  const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
  d = parse(ctx, bomb);
  CHECK(d != NULL);
  icl_yaml_free(d);
  icl_ctx_free(ctx);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void test_hostile_input(void) {
  icl_ctx *ctx = icl_t_ctx();
  /* random bytes and random YAML-ish characters: an error or a tree, never a crash */
  static const char alphabet[] = "ab: -[]{},&*!|>'\"#\n  \t?%@`01.e~<";
  char buf[512];
  for (int t = 0; t < 3000; t++) {
    size_t n = (size_t)(next_rand() % sizeof buf);
    for (size_t i = 0; i < n; i++)
      buf[i] = t % 2 ? (char)next_rand() : alphabet[next_rand() % (sizeof alphabet - 1)];
    icl_yaml_free(icl_yaml_load_string(ctx, buf, n, "g.yaml", NULL));
  }
  /* every prefix of a real config */
  const char *cfg = "model:\n  type: decoder\n  max_length: [102, 2048]\n  rope_scaling: {type: yarn}\n"
                    "task:\n  name: \"linear\"\n  list:\n    - a: 1\n      b: &x [1, 2]\n    - *x\n";
  for (size_t n = 0; n <= strlen(cfg); n++) icl_yaml_free(icl_yaml_load_string(ctx, cfg, n, "p.yaml", NULL));
  /* very deep nesting is refused with a message, not a stack overflow */
  size_t depth = 100000;
  char *deep = malloc(depth + 1);
  memset(deep, '[', depth);
  deep[depth] = 0;
  icl_ydoc *d = icl_yaml_load_string(ctx, deep, depth, "deep.yaml", NULL);
  CHECK(d == NULL && strstr(icl_last_error(ctx), "nesting deeper"));
  icl_yaml_free(d);
  free(deep);
  /* a large file (about 8 MB, 1M entries) loads */
  size_t cap = 9u << 20, k = 0;
  char *big = malloc(cap);
  for (int i = 0; i < 1000000 && k + 32 < cap; i++) k += (size_t)snprintf(big + k, cap - k, "- %d\n", i);
  d = icl_yaml_load_string(ctx, big, k, "big.yaml", NULL);
  CHECK_MSG(d && d->root->kind == ICL_Y_SEQ && d->root->n == 1000000, "big: %s", d ? "wrong shape" : icl_last_error(ctx));
  icl_yaml_free(d);
  /* a mapping with many keys and one duplicate at the end */
  k = 0;
  for (int i = 0; i < 200000; i++) k += (size_t)snprintf(big + k, cap - k, "k%d: %d\n", i, i);
  k += (size_t)snprintf(big + k, cap - k, "k17: again\n");
  d = icl_yaml_load_string(ctx, big, k, "keys.yaml", NULL);
  CHECK(d == NULL && strstr(icl_last_error(ctx), "keys.yaml:200001") && strstr(icl_last_error(ctx), "k17"));
  icl_yaml_free(d);
  free(big);
  icl_ctx_free(ctx);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/icl_yaml_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  ICL_RUN(test_scalars);
  ICL_RUN(test_errors);
  ICL_RUN(test_includes);
  ICL_RUN(test_anchors_and_merge);
  ICL_RUN(test_hostile_input);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return icl_t_finish("yaml");
}
