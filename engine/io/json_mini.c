#include "json_mini.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct jp {
  icl_ctx *ctx;
  const char *what;
  const unsigned char *s;
  size_t n, i;
  int depth;
} jp;

static int jerr(jp *p, const char *msg) {
  return icl_errorf(p->ctx, ICL_EFORMAT, "%s: invalid JSON at byte %zu: %s", p->what, p->i, msg);
}

int icl_utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    int len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (i + (size_t)len > n) return 0;
    for (int k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += (size_t)len;
  }
  return 1;
}

static void ws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int hex4(jp *p, unsigned *out) {
  if (p->i + 4 > p->n) return jerr(p, "truncated \\u escape");
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned char c = p->s[p->i + (size_t)k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return jerr(p, "bad hex digit in \\u escape");
  }
  p->i += 4;
  *out = v;
  return 0;
}

static int str(jp *p, char **out, size_t *olen) {
  size_t start = ++p->i, cap = 16, k = 0;
  char *b = malloc(cap);
  if (!b) return icl_errorf(p->ctx, ICL_ENOMEM, "%s: out of memory", p->what);
  for (;;) {
    if (p->i >= p->n) {
      free(b);
      return jerr(p, "unterminated string");
    }
    unsigned char c = p->s[p->i];
    if (k + 5 > cap) {
      char *nb = realloc(b, cap *= 2);
      if (!nb) {
        free(b);
        return icl_errorf(p->ctx, ICL_ENOMEM, "%s: out of memory", p->what);
      }
      b = nb;
    }
    if (c == '"') {
      p->i++;
      break;
    }
    if (c < 0x20) {
      free(b);
      return jerr(p, "control character in a string");
    }
    if (c != '\\') {
      b[k++] = (char)c;
      p->i++;
      continue;
    }
    if (++p->i >= p->n) {
      free(b);
      return jerr(p, "unterminated escape");
    }
    c = p->s[p->i++];
    const char *esc = "\"\"\\\\//b\bf\fn\nr\rt\t";
    const char *m = NULL;
    for (int t = 0; esc[t]; t += 2)
      if (esc[t] == (char)c) m = esc + t + 1;
    if (m) {
      b[k++] = *m;
      continue;
    }
    if (c != 'u') {
      free(b);
      return jerr(p, "unknown escape");
    }
    unsigned cp, lo;
    if (hex4(p, &cp)) return free(b), p->ctx->errcode;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return free(b), jerr(p, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
        return free(b), jerr(p, "high surrogate without a low surrogate");
      p->i += 2;
      if (hex4(p, &lo)) return free(b), p->ctx->errcode;
      if (lo < 0xDC00 || lo > 0xDFFF) return free(b), jerr(p, "high surrogate without a low surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp < 0x80) b[k++] = (char)cp;
    else if (cp < 0x800) b[k++] = (char)(0xC0 | cp >> 6), b[k++] = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
      b[k++] = (char)(0xE0 | cp >> 12), b[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[k++] = (char)(0x80 | (cp & 0x3F));
    else
      b[k++] = (char)(0xF0 | cp >> 18), b[k++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
      b[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[k++] = (char)(0x80 | (cp & 0x3F));
  }
  if (!icl_utf8_valid((const char *)p->s + start, p->i - 1 - start)) {
    free(b);
    p->i = start;
    return jerr(p, "string is not valid UTF-8");
  }
  b[k] = 0;
  *out = b;
  *olen = k;
  return 0;
}

static int value(jp *p, icl_jv *v);

static int push(jp *p, icl_jv *v, int *cap) {
  if (v->n < *cap) return 0;
  int nc = *cap ? *cap * 2 : 4;
  icl_jv *nv = realloc(v->v, sizeof *nv * (size_t)nc);
  if (!nv) return icl_errorf(p->ctx, ICL_ENOMEM, "%s: out of memory", p->what);
  v->v = nv;
  if (v->kind == ICL_J_OBJ) {
    char **nk = realloc(v->k, sizeof *nk * (size_t)nc);
    if (nk) v->k = nk;
    size_t *nl = nk ? realloc(v->klen, sizeof *nl * (size_t)nc) : NULL;
    if (nl) v->klen = nl;
    if (!nk || !nl) return icl_errorf(p->ctx, ICL_ENOMEM, "%s: out of memory", p->what);
  }
  *cap = nc;
  return 0;
}

static int container(jp *p, icl_jv *v, int obj) {
  if (++p->depth > MAX_DEPTH) return jerr(p, "nested too deeply");
  v->kind = obj ? ICL_J_OBJ : ICL_J_ARR;
  p->i++;
  ws(p);
  int cap = 0;
  if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
    p->i++;
    p->depth--;
    return 0;
  }
  for (;;) {
    if (push(p, v, &cap)) return p->ctx->errcode;
    icl_jv *it = &v->v[v->n];
    memset(it, 0, sizeof *it);
    if (obj) {
      ws(p);
      if (p->i >= p->n || p->s[p->i] != '"') return jerr(p, "expected a string key");
      size_t kpos = p->i;
      if (str(p, &v->k[v->n], &v->klen[v->n])) return p->ctx->errcode;
      v->n++; /* owned from here on, even if the value fails */
      for (int j = 0; j < v->n - 1; j++)
        if (v->klen[j] == v->klen[v->n - 1] && !memcmp(v->k[j], v->k[v->n - 1], v->klen[j])) {
          p->i = kpos;
          return jerr(p, "duplicate key");
        }
      ws(p);
      if (p->i >= p->n || p->s[p->i] != ':') return jerr(p, "expected ':'");
      p->i++;
      if (value(p, it)) return p->ctx->errcode;
    } else {
      v->n++;
      if (value(p, it)) return p->ctx->errcode;
    }
    ws(p);
    if (p->i >= p->n) return jerr(p, obj ? "unterminated object" : "unterminated array");
    unsigned char c = p->s[p->i++];
    if (c == ',') continue;
    if (c == (obj ? '}' : ']')) break;
    p->i--;
    return jerr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  p->depth--;
  return 0;
}

static int number(jp *p, icl_jv *v) {
  size_t st = p->i;
  const unsigned char *s = p->s;
  if (p->i < p->n && s[p->i] == '-') p->i++;
  if (p->i >= p->n || !(s[p->i] >= '0' && s[p->i] <= '9')) return jerr(p, "bad number");
  if (s[p->i] == '0') {
    p->i++;
    if (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') return jerr(p, "leading zero in a number");
  } else {
    while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
  }
  if (p->i < p->n && s[p->i] == '.') {
    p->i++;
    if (p->i >= p->n || !(s[p->i] >= '0' && s[p->i] <= '9')) return jerr(p, "digit expected after '.'");
    while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
  }
  if (p->i < p->n && (s[p->i] == 'e' || s[p->i] == 'E')) {
    p->i++;
    if (p->i < p->n && (s[p->i] == '+' || s[p->i] == '-')) p->i++;
    if (p->i >= p->n || !(s[p->i] >= '0' && s[p->i] <= '9')) return jerr(p, "digit expected in exponent");
    while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
  }
  v->kind = ICL_J_NUM;
  v->len = p->i - st;
  v->s = malloc(v->len + 1);
  if (!v->s) return icl_errorf(p->ctx, ICL_ENOMEM, "%s: out of memory", p->what);
  memcpy(v->s, s + st, v->len);
  v->s[v->len] = 0;
  return 0;
}

static int word(jp *p, const char *w) {
  size_t l = strlen(w);
  if (p->i + l > p->n || memcmp(p->s + p->i, w, l)) return 0;
  p->i += l;
  return 1;
}

static int value(jp *p, icl_jv *v) {
  ws(p);
  v->pos = p->i;
  if (p->i >= p->n) return jerr(p, "unexpected end of input");
  unsigned char c = p->s[p->i];
  if (c == '{' || c == '[') return container(p, v, c == '{');
  if (c == '"') {
    v->kind = ICL_J_STR;
    return str(p, &v->s, &v->len);
  }
  if (c == '-' || (c >= '0' && c <= '9')) return number(p, v);
  if (word(p, "true")) return v->kind = ICL_J_BOOL, v->b = 1, 0;
  if (word(p, "false")) return v->kind = ICL_J_BOOL, v->b = 0, 0;
  if (word(p, "null")) return v->kind = ICL_J_NULL, 0;
  return jerr(p, "unexpected character");
}

int icl_json_parse(icl_ctx *ctx, const char *what, const char *text, size_t len, icl_jv *out) {
  jp p = {ctx, what, (const unsigned char *)text, len, 0, 0};
  memset(out, 0, sizeof *out);
  if (value(&p, out)) {
    icl_json_free(out);
    return ctx->errcode;
  }
  ws(&p);
  if (p.i != p.n) {
    icl_json_free(out);
    return jerr(&p, "unexpected data after the JSON value");
  }
  return 0;
}

void icl_json_free(icl_jv *v) {
  if (!v) return;
  for (int i = 0; i < v->n; i++) {
    icl_json_free(&v->v[i]);
    if (v->k) free(v->k[i]);
  }
  free(v->v);
  free(v->k);
  free(v->klen);
  free(v->s);
  memset(v, 0, sizeof *v);
}

int icl_jv_u64(const icl_jv *v, uint64_t *out) {
  if (v->kind != ICL_J_NUM || v->s[0] == '-' || strpbrk(v->s, ".eE")) return 0;
  errno = 0;
  char *end;
  unsigned long long u = strtoull(v->s, &end, 10);
  if (errno || *end) return 0;
  *out = u;
  return 1;
}

const icl_jv *icl_jv_get(const icl_jv *obj, const char *key) {
  if (obj->kind != ICL_J_OBJ) return NULL;
  for (int i = 0; i < obj->n; i++)
    if (!strcmp(obj->k[i], key)) return &obj->v[i];
  return NULL;
}
