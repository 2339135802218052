/* The YAML tree builder: libyaml's event stream -> icl_ynode tree, with !include, merge keys,
 * anchors, duplicate-key checks and positions. The builder keeps an explicit stack (no C
 * recursion per nesting level), so deep or hostile input cannot overflow the C stack. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "yaml_internal.h"

#define TAG_INCLUDE "!include"
#define TAG_P "tag:yaml.org,2002:"

/* ---- memory: nodes and strings come from an arena freed at once ---------------------------- */

typedef struct ychunk {
  struct ychunk *next;
  size_t used, cap;
  _Alignas(16) char data[];
} ychunk;

typedef struct ypriv {
  ychunk *chunks;
  icl_ynode **colls; /* nodes whose entry arrays are malloc'd */
  size_t ncolls, capcolls;
  int64_t nodes;
} ypriv;

static void *arena(ypriv *P, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!P->chunks || P->chunks->used + n > P->chunks->cap) {
    size_t cap = n > 65536 ? n : 65536;
    ychunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = P->chunks, c->used = 0, c->cap = cap;
    P->chunks = c;
  }
  void *p = P->chunks->data + P->chunks->used;
  P->chunks->used += n;
  return p;
}

static char *arena_str(ypriv *P, const char *s, size_t n) {
  char *d = arena(P, n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

/* ---- the builder ----------------------------------------------------------------------------- */

typedef struct yframe {
  icl_ynode *node;
  const char *key; /* pending mapping key (NULL: the next scalar is a key) */
  int key_line, merge_key;
  char *anchor;
  icl_ynode **merge;
  int nmerge, capmerge;
} yframe;

typedef struct yanchor {
  const char *name;
  icl_ynode *node;
} yanchor;

typedef struct ybuild {
  icl_ctx *ctx;
  ypriv *P;
  const icl_yaml_opts *o;
  const char *file;      /* display path */
  const char *open_path; /* path used to open it (includes resolve against its directory) */
  const char *prefix;    /* key path of the include site ("" at top level) */
  struct ybuild *parent;
  int has_id;
  dev_t dev;
  ino_t ino;
  int depth0, includes;
  yframe *st;
  int nst, capst;
  yanchor *anc;
  int nanc, capanc;
  icl_ynode *root;
} ybuild;

/* "a.b[2].c" of the value being built, plus `last` when given */
static void keypath(const ybuild *b, int frames, const char *last, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "%s", b->prefix);
#define PUT(...) (k < cap ? (k += (size_t)snprintf(buf + k, cap - k, __VA_ARGS__)) : 0)
  for (int i = 0; i < frames && i < b->nst; i++) {
    const yframe *f = &b->st[i];
    if (f->node->kind == ICL_Y_SEQ) PUT("[%d]", f->node->n + 1);
    else if (f->key) PUT("%s%s", k ? "." : "", f->key);
  }
  if (last) PUT("%s%s", k ? "." : "", last);
#undef PUT
}

static int berr(ybuild *b, int line, const char *key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int berr(ybuild *b, int line, const char *key, const char *fmt, ...) {
  char path[512], msg[700];
  keypath(b, b->nst, key, path, sizeof path);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return icl_errorf(b->ctx, ICL_EFORMAT, "%s:%d: %s%s%s", b->file, line, path, path[0] ? ": " : "", msg);
}

static icl_ynode *new_node(ybuild *b, icl_ykind kind, yaml_mark_t m) {
  if (++b->P->nodes > b->o->max_nodes) {
    icl_errorf(b->ctx, ICL_EFORMAT, "%s:%d: more than %lld YAML nodes (file too large for a config)", b->file,
               (int)m.line + 1, (long long)b->o->max_nodes);
    return NULL;
  }
  icl_ynode *nd = arena(b->P, sizeof *nd);
  if (!nd) {
    icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory while reading YAML", b->file);
    return NULL;
  }
  memset(nd, 0, sizeof *nd);
  nd->kind = kind;
  nd->file = b->file;
  nd->line = (int)m.line + 1;
  nd->col = (int)m.column + 1;
  return nd;
}

static int append(ybuild *b, icl_ynode *c, const char *key, const char *file, int line, icl_ynode *v) {
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 4;
    icl_yentry *e = realloc(c->e, sizeof *e * (size_t)cap);
    if (!e) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory while reading YAML", b->file);
    if (!c->e) {
      ypriv *P = b->P;
      if (P->ncolls == P->capcolls) {
        size_t nc = P->capcolls ? P->capcolls * 2 : 64;
        icl_ynode **cs = realloc(P->colls, sizeof *cs * nc);
        if (!cs) {
          free(e);
          return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory while reading YAML", b->file);
        }
        P->colls = cs, P->capcolls = nc;
      }
      P->colls[P->ncolls++] = c;
    }
    c->e = e, c->cap = cap;
  }
  c->e[c->n++] = (icl_yentry){key, file, line, v};
  return ICL_OK;
}

static int add_anchor(ybuild *b, const char *name, icl_ynode *nd) {
  if (!name) return ICL_OK;
  if (b->nanc == b->capanc) {
    int cap = b->capanc ? b->capanc * 2 : 8;
    yanchor *a = realloc(b->anc, sizeof *a * (size_t)cap);
    if (!a) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
    b->anc = a, b->capanc = cap;
  }
  char *copy = arena_str(b->P, name, strlen(name));
  if (!copy) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
  b->anc[b->nanc++] = (yanchor){copy, nd};
  return ICL_OK;
}

/* A finished value goes into its parent (or becomes the root). */
static int add_value(ybuild *b, icl_ynode *v) {
  if (b->nst == 0) {
    b->root = v;
    return ICL_OK;
  }
  yframe *f = &b->st[b->nst - 1];
  icl_ynode *c = f->node;
  if (c->kind == ICL_Y_SEQ) return append(b, c, NULL, v->file, v->line, v);
  if (!f->key) return berr(b, v->line, NULL, "mapping keys must be plain scalars");
  int rc = ICL_OK;
  if (f->merge_key) {
    int ok = v->kind == ICL_Y_MAP;
    if (v->kind == ICL_Y_SEQ) {
      ok = 1;
      for (int i = 0; i < v->n; i++) ok &= v->e[i].value->kind == ICL_Y_MAP;
    }
    if (!ok) return berr(b, f->key_line, NULL, "a merge key needs a mapping or a list of mappings, got %s",
                         icl_ykind_name(v->kind));
    int add = v->kind == ICL_Y_MAP ? 1 : v->n;
    if (f->nmerge + add > f->capmerge) {
      int cap = (f->capmerge + add) * 2;
      icl_ynode **m = realloc(f->merge, sizeof *m * (size_t)cap);
      if (!m) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
      f->merge = m, f->capmerge = cap;
    }
    if (v->kind == ICL_Y_MAP) f->merge[f->nmerge++] = v;
    else
      for (int i = 0; i < v->n; i++) f->merge[f->nmerge++] = v->e[i].value;
  } else {
    rc = append(b, c, f->key, b->file, f->key_line, v);
  }
  f->key = NULL;
  return rc;
}

static int cmp_entry(const void *a, const void *b) {
  const icl_yentry *x = *(icl_yentry *const *)a, *y = *(icl_yentry *const *)b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x < y ? -1 : x > y);
}

static int has_key(const icl_ynode *m, const char *k) {
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->e[i].key, k)) return 1;
  return 0;
}

/* Duplicate keys are an error; then merged maps fill in what the mapping lacks. */
static int finish_map(ybuild *b, yframe *f) {
  icl_ynode *m = f->node;
  if (m->n > 1) {
    icl_yentry **ix = malloc(sizeof *ix * (size_t)m->n);
    if (!ix) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
    for (int i = 0; i < m->n; i++) ix[i] = &m->e[i];
    qsort(ix, (size_t)m->n, sizeof *ix, cmp_entry);
    for (int i = 1; i < m->n; i++) {
      if (strcmp(ix[i - 1]->key, ix[i]->key)) continue;
      int first = ix[i - 1]->line, again = ix[i]->line;
      const char *key = ix[i]->key;
      free(ix);
      return berr(b, again, key, "duplicate key (first defined at line %d)", first);
    }
    free(ix);
  }
  for (int s = 0; s < f->nmerge; s++) {
    const icl_ynode *src = f->merge[s];
    for (int i = 0; i < src->n; i++)
      if (!has_key(m, src->e[i].key)) {
        int rc = append(b, m, src->e[i].key, src->e[i].file, src->e[i].line, src->e[i].value);
        if (rc) return rc;
      }
  }
  return ICL_OK;
}

static int check_tag(ybuild *b, const char *tag, icl_ykind kind, yaml_mark_t m) {
  if (!tag || !strcmp(tag, "!")) return ICL_OK;
  if (kind == ICL_Y_SEQ && !strcmp(tag, TAG_P "seq")) return ICL_OK;
  if (kind == ICL_Y_MAP && !strcmp(tag, TAG_P "map")) return ICL_OK;
  if (!strcmp(tag, TAG_INCLUDE)) return berr(b, (int)m.line + 1, NULL, "!include needs a file name, not a %s",
                                             kind == ICL_Y_SEQ ? "sequence" : "mapping");
  return berr(b, (int)m.line + 1, NULL, "unsupported tag '%s' on a %s", tag, kind == ICL_Y_SEQ ? "sequence" : "mapping");
}

static int on_start(ybuild *b, const yaml_event_t *ev, icl_ykind kind) {
  const yaml_char_t *tag = kind == ICL_Y_SEQ ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
  const yaml_char_t *anchor = kind == ICL_Y_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
  int rc = check_tag(b, (const char *)tag, kind, ev->start_mark);
  if (rc) return rc;
  if (b->nst > 0 && b->st[b->nst - 1].node->kind == ICL_Y_MAP && !b->st[b->nst - 1].key)
    return berr(b, (int)ev->start_mark.line + 1, NULL, "mapping keys must be plain scalars, not collections");
  if (b->depth0 + b->nst + 1 > b->o->max_depth)
    return berr(b, (int)ev->start_mark.line + 1, NULL, "nesting deeper than %d levels", b->o->max_depth);
  icl_ynode *nd = new_node(b, kind, ev->start_mark);
  if (!nd) return b->ctx->errcode;
  if (b->nst == b->capst) {
    int cap = b->capst ? b->capst * 2 : 16;
    yframe *st = realloc(b->st, sizeof *st * (size_t)cap);
    if (!st) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
    b->st = st, b->capst = cap;
  }
  yframe *f = &b->st[b->nst++];
  memset(f, 0, sizeof *f);
  f->node = nd;
  if (anchor) {
    f->anchor = arena_str(b->P, (const char *)anchor, strlen((const char *)anchor));
    if (!f->anchor) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
  }
  return ICL_OK;
}

static int on_end(ybuild *b) {
  yframe *f = &b->st[b->nst - 1];
  int rc = f->node->kind == ICL_Y_MAP ? finish_map(b, f) : ICL_OK;
  free(f->merge);
  f->merge = NULL;
  icl_ynode *nd = f->node;
  const char *anchor = f->anchor;
  b->nst--;
  if (rc) return rc;
  if ((rc = add_anchor(b, anchor, nd))) return rc;
  return add_value(b, nd);
}

static int load_into(ybuild *b, FILE *fp, const char *text, size_t len);

static int do_include(ybuild *b, const char *rel, yaml_mark_t m, icl_ynode **out) {
  int line = (int)m.line + 1;
  while (*rel == ' ' || *rel == '\t') rel++;
  size_t rl = strlen(rel);
  while (rl && (rel[rl - 1] == ' ' || rel[rl - 1] == '\t')) rl--;
  if (!rl) return berr(b, line, NULL, "!include needs a file name");
  if (b->includes + 1 > b->o->max_includes)
    return berr(b, line, NULL, "!include nested deeper than %d files", b->o->max_includes);
  /* open through dir(open_path)/rel, display as normalised dir(file)/rel */
  const char *os = strrchr(b->open_path, '/'), *ds = strrchr(b->file, '/');
  size_t ol = os ? (size_t)(os - b->open_path) : 1, dl = ds ? (size_t)(ds - b->file) : 1;
  char *op = malloc(ol + rl + 3), *dp = malloc(dl + rl + 3);
  if (!op || !dp) {
    free(op), free(dp);
    return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
  }
  if (rel[0] == '/') {
    snprintf(op, rl + 1, "%s", rel);
    snprintf(dp, rl + 1, "%s", rel);
  } else {
    snprintf(op, ol + rl + 3, "%.*s/%.*s", (int)ol, os ? b->open_path : ".", (int)rl, rel);
    snprintf(dp, dl + rl + 3, "%.*s/%.*s", (int)dl, ds ? b->file : ".", (int)rl, rel);
  }
  char *norm = icl_y_norm_path(dp);
  free(dp);
  const char *disp = norm ? arena_str(b->P, norm, strlen(norm)) : NULL;
  const char *open_path = arena_str(b->P, op, strlen(op));
  free(norm);
  free(op);
  if (!disp || !open_path) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
  struct stat sb;
  if (stat(open_path, &sb) != 0)
    return berr(b, line, NULL, "!include '%.*s': cannot open '%s': %s", (int)rl, rel, disp, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return berr(b, line, NULL, "!include '%.*s': '%s' is a directory", (int)rl, rel, disp);
  for (ybuild *a = b; a; a = a->parent) {
    if (!a->has_id || a->dev != sb.st_dev || a->ino != sb.st_ino) continue;
    char chain[600];
    size_t k = 0;
    const ybuild *list[64];
    int nl = 0;
    for (ybuild *c = b; c && nl < 64; c = c->parent) list[nl++] = c;
    for (int i = nl - 1; i >= 0 && k < sizeof chain; i--)
      k += (size_t)snprintf(chain + k, sizeof chain - k, "%s -> ", list[i]->file);
    if (k < sizeof chain) snprintf(chain + k, sizeof chain - k, "%s", disp);
    return berr(b, line, NULL, "!include '%.*s' creates an include cycle: %s", (int)rl, rel, chain);
  }
  FILE *fp = fopen(open_path, "rb");
  if (!fp) return berr(b, line, NULL, "!include '%.*s': cannot open '%s': %s", (int)rl, rel, disp, strerror(errno));
  char prefix[512];
  keypath(b, b->nst, NULL, prefix, sizeof prefix);
  ybuild child = {.ctx = b->ctx, .P = b->P, .o = b->o, .file = disp, .open_path = open_path,
                  .prefix = arena_str(b->P, prefix, strlen(prefix)), .parent = b, .has_id = 1,
                  .dev = sb.st_dev, .ino = sb.st_ino, .depth0 = b->depth0 + b->nst, .includes = b->includes + 1};
  if (!child.prefix) {
    fclose(fp);
    return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
  }
  int rc = load_into(&child, fp, NULL, 0);
  fclose(fp);
  if (rc) {
    char msg[ICL_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", icl_last_error(b->ctx));
    return icl_errorf(b->ctx, rc, "%s (included from %s:%d)", msg, b->file, line);
  }
  *out = child.root;
  return ICL_OK;
}

static int on_scalar(ybuild *b, const yaml_event_t *ev) {
  const char *tag = (const char *)ev->data.scalar.tag, *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  int line = (int)ev->start_mark.line + 1;
  yframe *f = b->nst ? &b->st[b->nst - 1] : NULL;
  if (f && f->node->kind == ICL_Y_MAP && !f->key) { /* a key */
    if (tag && strcmp(tag, "!") && strcmp(tag, TAG_P "str"))
      return berr(b, line, NULL, "mapping keys must be plain strings (tag '%s' on key '%.*s')", tag, (int)(n > 60 ? 60 : n), s);
    if (memchr(s, 0, n)) return berr(b, line, NULL, "a mapping key contains a NUL byte");
    f->key = arena_str(b->P, s, n);
    if (!f->key) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
    f->key_line = line;
    f->merge_key = !tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && n == 2 && !memcmp(s, "<<", 2);
    return ICL_OK;
  }
  icl_ynode *nd = NULL;
  int rc;
  if (tag && !strcmp(tag, TAG_INCLUDE)) {
    if (!b->o->includes) return berr(b, line, NULL, "!include is not allowed here");
    if (memchr(s, 0, n)) return berr(b, line, NULL, "!include file name contains a NUL byte");
    if ((rc = do_include(b, s, ev->start_mark, &nd))) return rc;
    if (!nd && !(nd = new_node(b, ICL_Y_NULL, ev->start_mark))) return b->ctx->errcode;
  } else {
    if (!(nd = new_node(b, ICL_Y_STR, ev->start_mark))) return b->ctx->errcode;
    if (!(nd->str = arena_str(b->P, s, n))) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: out of memory", b->file);
    nd->len = n;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!tag) {
      if (plain) icl_y_type_plain(nd, s, n);
    } else if (!strcmp(tag, "!") || !strcmp(tag, TAG_P "str")) {
      /* a string */
    } else if (!strcmp(tag, TAG_P "null")) {
      if (!icl_y_is_null(s, n)) return berr(b, line, NULL, "'%.*s' is not a null (tag !!null)", (int)(n > 60 ? 60 : n), s);
      nd->kind = ICL_Y_NULL;
    } else if (!strcmp(tag, TAG_P "bool")) {
      if (!icl_y_parse_bool(s, n, &nd->b)) return berr(b, line, NULL, "'%.*s' is not a bool (tag !!bool)", (int)(n > 60 ? 60 : n), s);
      nd->kind = ICL_Y_BOOL;
    } else if (!strcmp(tag, TAG_P "int")) {
      double f2;
      if (icl_y_parse_int(s, n, &nd->i, &f2) != 1)
        return berr(b, line, NULL, "'%.*s' is not a 64-bit integer (tag !!int)", (int)(n > 60 ? 60 : n), s);
      nd->kind = ICL_Y_INT;
    } else if (!strcmp(tag, TAG_P "float")) {
      int64_t iv;
      int r = icl_y_parse_int(s, n, &iv, &nd->f);
      if (r == 1) nd->f = (double)iv;
      else if (r == 0 && !icl_y_parse_float(s, n, &nd->f))
        return berr(b, line, NULL, "'%.*s' is not a number (tag !!float)", (int)(n > 60 ? 60 : n), s);
      nd->kind = ICL_Y_FLOAT;
    } else {
      return berr(b, line, NULL, "unsupported tag '%s'", tag);
    }
  }
  if ((rc = add_anchor(b, (const char *)ev->data.scalar.anchor, nd))) return rc;
  return add_value(b, nd);
}

static int on_alias(ybuild *b, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  for (int i = b->nanc - 1; i >= 0; i--)
    if (!strcmp(b->anc[i].name, name)) {
      yframe *f = b->nst ? &b->st[b->nst - 1] : NULL;
      if (f && f->node->kind == ICL_Y_MAP && !f->key)
        return berr(b, (int)ev->start_mark.line + 1, NULL, "an alias (*%s) cannot be a mapping key", name);
      return add_value(b, b->anc[i].node);
    }
  return berr(b, (int)ev->start_mark.line + 1, NULL, "unknown anchor '*%s' (anchors must be defined, and complete, before use)", name);
}

static int syntax_error(ybuild *b, const yaml_parser_t *p) {
  char path[512], ctxs[200] = "";
  keypath(b, b->nst, NULL, path, sizeof path);
  if (p->context)
    snprintf(ctxs, sizeof ctxs, " (%s at line %d)", p->context, (int)p->context_mark.line + 1);
  const char *what = p->error == YAML_READER_ERROR ? "cannot read the file (not UTF-8 text?)" : "YAML syntax error";
  return icl_errorf(b->ctx, ICL_EFORMAT, "%s:%d:%d: %s%s%s: %s%s", b->file, (int)p->problem_mark.line + 1,
                    (int)p->problem_mark.column + 1, path, path[0] ? ": " : "", what,
                    p->problem ? p->problem : "unknown problem", ctxs);
}

static int load_into(ybuild *b, FILE *fp, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return icl_errorf(b->ctx, ICL_ENOMEM, "%s: cannot initialise libyaml", b->file);
  if (fp) yaml_parser_set_input_file(&p, fp);
  else yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int rc = ICL_OK, done = 0, docs = 0;
  while (!done && !rc) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = syntax_error(b, &p);
      break;
    }
    switch (ev.type) {
    case YAML_STREAM_END_EVENT: done = 1; break;
    case YAML_DOCUMENT_START_EVENT:
      if (docs++) rc = berr(b, (int)ev.start_mark.line + 1, NULL, "more than one YAML document in the file");
      break;
    case YAML_ALIAS_EVENT: rc = on_alias(b, &ev); break;
    case YAML_SCALAR_EVENT: rc = on_scalar(b, &ev); break;
    case YAML_SEQUENCE_START_EVENT: rc = on_start(b, &ev, ICL_Y_SEQ); break;
    case YAML_MAPPING_START_EVENT: rc = on_start(b, &ev, ICL_Y_MAP); break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: rc = on_end(b); break;
    default: break;
    }
    yaml_event_delete(&ev);
  }
  if (!rc && fp && ferror(fp)) rc = icl_errorf(b->ctx, ICL_EIO, "%s: read error", b->file);
  yaml_parser_delete(&p);
  for (int i = 0; i < b->nst; i++) free(b->st[i].merge);
  free(b->st);
  free(b->anc);
  if (!rc && !b->root) {
    yaml_mark_t m = {0, 0, 0};
    if (!(b->root = new_node(b, ICL_Y_NULL, m))) rc = b->ctx->errcode;
  }
  return rc;
}

/* ---- public ---------------------------------------------------------------------------------- */

icl_yaml_opts icl_yaml_defaults(void) { return (icl_yaml_opts){1, 256, 32, 50000000}; }

const char *icl_ykind_name(icl_ykind k) {
  static const char *const names[] = {"null", "bool", "integer", "float", "string", "sequence", "mapping"};
  return (unsigned)k < 7 ? names[k] : "?";
}

void icl_yaml_free(icl_ydoc *doc) {
  if (!doc) return;
  ypriv *P = doc->priv;
  if (P) {
    for (size_t i = 0; i < P->ncolls; i++) free(P->colls[i]->e);
    free(P->colls);
    for (ychunk *c = P->chunks, *nx; c; c = nx) {
      nx = c->next;
      free(c);
    }
    free(P);
  }
  free(doc);
}

static icl_ydoc *load(icl_ctx *ctx, const char *name, FILE *fp, const char *text, size_t len,
                      const icl_yaml_opts *opts, const struct stat *sb) {
  icl_yaml_opts o = opts ? *opts : icl_yaml_defaults();
  icl_ydoc *doc = calloc(1, sizeof *doc);
  ypriv *P = calloc(1, sizeof *P);
  if (!doc || !P) {
    free(doc), free(P);
    icl_errorf(ctx, ICL_ENOMEM, "yaml: out of memory");
    return NULL;
  }
  doc->priv = P;
  const char *file = arena_str(P, name, strlen(name));
  if (!file) {
    icl_yaml_free(doc);
    icl_errorf(ctx, ICL_ENOMEM, "yaml: out of memory");
    return NULL;
  }
  ybuild b = {.ctx = ctx, .P = P, .o = &o, .file = file, .open_path = file, .prefix = ""};
  if (sb) b.has_id = 1, b.dev = sb->st_dev, b.ino = sb->st_ino;
  if (load_into(&b, fp, text, len)) {
    icl_yaml_free(doc);
    return NULL;
  }
  doc->root = b.root;
  return doc;
}

icl_ydoc *icl_yaml_load_file(icl_ctx *ctx, const char *path, const icl_yaml_opts *opts) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    icl_errorf(ctx, ICL_EIO, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  if (S_ISDIR(sb.st_mode)) {
    icl_errorf(ctx, ICL_EIO, "%s: cannot read: is a directory", path);
    return NULL;
  }
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    icl_errorf(ctx, ICL_EIO, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  icl_ydoc *doc = load(ctx, path, fp, NULL, 0, opts, &sb);
  fclose(fp);
  return doc;
}

icl_ydoc *icl_yaml_load_string(icl_ctx *ctx, const char *text, size_t len, const char *name,
                               const icl_yaml_opts *opts) {
  return load(ctx, name ? name : "<string>", NULL, text, len, opts, NULL);
}

const icl_ynode *icl_ynode_get(const icl_ynode *map, const char *key) {
  if (!map || map->kind != ICL_Y_MAP) return NULL;
  for (int i = 0; i < map->n; i++)
    if (!strcmp(map->e[i].key, key)) return map->e[i].value;
  return NULL;
}
