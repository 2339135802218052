/* Typing of YAML scalars (the YAML 1.1-ish rules listed in yaml_load.h) and the display paths
 * of included files. Kept apart from the event-driven builder in yaml_load.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_internal.h"

static int is_digit_in(char c, int base) {
  if (base == 16) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  if (base == 8) return c >= '0' && c <= '7';
  return c >= '0' && c <= '9';
}

/* Copy s without underscores that sit between digits into buf; 0 if it does not fit or an
 * underscore is misplaced (leading, trailing, doubled). */
static int strip_underscores(const char *s, size_t n, char *buf, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '_') {
      if (!(i > 0 && is_digit_in(s[i - 1], 16) && i + 1 < n && is_digit_in(s[i + 1], 16))) return 0;
      continue;
    }
    if (k + 1 >= cap) return 0;
    buf[k++] = s[i];
  }
  buf[k] = 0;
  return 1;
}

/* 1: int; 2: int syntax but out of int64 range (value in *f); 0: not an int */
int icl_y_parse_int(const char *s, size_t n, int64_t *out, double *f) {
  char buf[128];
  if (n == 0 || !strip_underscores(s, n, buf, sizeof buf)) return 0;
  const char *p = buf;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  int base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
  else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) base = 8, p += 2;
  if (!*p) return 0;
  for (const char *q = p; *q; q++)
    if (!is_digit_in(*q, base)) return 0;
  errno = 0;
  unsigned long long u = strtoull(p, NULL, base);
  if (errno == ERANGE || u > (unsigned long long)INT64_MAX + (neg ? 1u : 0u)) {
    *f = strtod(buf, NULL);
    if (base != 10) *f = neg ? -(double)u : (double)u;
    return 2;
  }
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 1;
}

/* 1 if s is a float: digits with a dot and/or an exponent, or .inf / .nan */
int icl_y_parse_float(const char *s, size_t n, double *out) {
  char buf[512];
  if (n == 0 || !strip_underscores(s, n, buf, sizeof buf)) return 0;
  const char *p = buf;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
    *out = neg ? -INFINITY : INFINITY;
    return 1;
  }
  if (p == buf && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
    *out = NAN;
    return 1;
  }
  int digits = 0, dot = 0, exp = 0;
  const char *q = p;
  while (*q >= '0' && *q <= '9') q++, digits++;
  if (*q == '.') {
    dot = 1;
    q++;
    while (*q >= '0' && *q <= '9') q++, digits++;
  }
  if (!digits) return 0;
  if (*q == 'e' || *q == 'E') {
    exp = 1;
    q++;
    if (*q == '+' || *q == '-') q++;
    if (!(*q >= '0' && *q <= '9')) return 0;
    while (*q >= '0' && *q <= '9') q++;
  }
  if (*q || (!dot && !exp)) return 0;
  *out = strtod(buf, NULL);
  return 1;
}

int icl_y_parse_bool(const char *s, size_t n, int *out) {
  static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 3; i++) {
    if (n == strlen(t[i]) && !memcmp(s, t[i], n)) return *out = 1, 1;
    if (n == strlen(f[i]) && !memcmp(s, f[i], n)) return *out = 0, 1;
  }
  return 0;
}

int icl_y_is_null(const char *s, size_t n) {
  return n == 0 || (n == 1 && s[0] == '~') || (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                                          !memcmp(s, "NULL", 4)));
}

/* Type an untagged plain scalar. */
void icl_y_type_plain(icl_ynode *nd, const char *s, size_t n) {
  int64_t i;
  double f;
  int b, r;
  if (icl_y_is_null(s, n)) {
    nd->kind = ICL_Y_NULL;
  } else if (icl_y_parse_bool(s, n, &b)) {
    nd->kind = ICL_Y_BOOL;
    nd->b = b;
  } else if ((r = icl_y_parse_int(s, n, &i, &f)) == 1) {
    nd->kind = ICL_Y_INT;
    nd->i = i;
  } else if (r == 2) {
    nd->kind = ICL_Y_FLOAT;
    nd->f = f;
  } else if (icl_y_parse_float(s, n, &f)) {
    nd->kind = ICL_Y_FLOAT;
    nd->f = f;
  }
}

/* Lexical normalisation of a display path: collapses "x/../", "./" and doubled slashes. The file
 * itself is opened through the unnormalised path, so symbolic links still resolve correctly. */
char *icl_y_norm_path(const char *p) {
  size_t n = strlen(p);
  char *out = malloc(n + 2), *tmp = malloc(n + 1);
  const char **seg = malloc(sizeof *seg * (n / 2 + 2));
  if (!out || !tmp || !seg) {
    free(out), free(tmp), free(seg);
    return NULL;
  }
  memcpy(tmp, p, n + 1);
  int abs = p[0] == '/', ns = 0, lead_up = 0;
  for (char *tok = strtok(tmp, "/"); tok; tok = strtok(NULL, "/")) {
    if (!strcmp(tok, ".")) continue;
    if (!strcmp(tok, "..")) {
      if (ns > lead_up) {
        ns--;
        continue;
      }
      if (abs) continue;
      lead_up++;
    }
    seg[ns++] = tok;
  }
  size_t k = 0;
  if (abs) out[k++] = '/';
  for (int i = 0; i < ns; i++) {
    size_t l = strlen(seg[i]);
    memcpy(out + k, seg[i], l);
    k += l;
    if (i + 1 < ns) out[k++] = '/';
  }
  if (k == 0) out[k++] = '.';
  out[k] = 0;
  free(tmp);
  free(seg);
  return out;
}
