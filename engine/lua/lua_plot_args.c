#include "lua/lua_plot_args.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void icl_pa_begin(icl_pa *a, lua_State *L, const char *op) {
  a->L = L;
  a->op = op;
  a->nanchor = 0;
  lua_newtable(L);
  a->anchor = lua_gettop(L);
}

int icl_pa_error(icl_pa *a, const char *where, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (where && where[0]) return luaL_error(a->L, "%s: %s: %s", a->op, where, msg);
  return luaL_error(a->L, "%s: %s", a->op, msg);
}

void icl_pa_table(icl_pa *a, int idx, const char *where) {
  if (lua_type(a->L, idx) != LUA_TTABLE)
    icl_pa_error(a, where, "expected a table, got %s", luaL_typename(a->L, idx));
}

void icl_pa_keys(icl_pa *a, int idx, const char *where, const char *const *valid) {
  lua_State *L = a->L;
  idx = lua_absindex(L, idx);
  icl_pa_table(a, idx, where);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (int i = 0; valid[i]; i++) ok |= strcmp(k, valid[i]) == 0;
    }
    if (!ok) {
      char list[512] = "";
      for (int i = 0; valid[i]; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, valid[i], sizeof list - strlen(list) - 1);
      }
      if (lua_type(L, -1) == LUA_TSTRING)
        icl_pa_error(a, where, "unknown key '%s' (valid: %s)", lua_tostring(L, -1), list);
      icl_pa_error(a, where, "unexpected %s key (valid: %s)", luaL_typename(L, -1), list);
    }
  }
}

void *icl_pa_alloc(icl_pa *a, size_t bytes) {
  void *p = lua_newuserdatauv(a->L, bytes ? bytes : 1, 0);
  lua_rawseti(a->L, a->anchor, ++a->nanchor);
  return p;
}

/* Pushes t[key] and returns its type; the caller pops. */
static int field(icl_pa *a, int idx, const char *key) { return lua_getfield(a->L, idx, key); }

static int wrong(icl_pa *a, const char *where, const char *key, const char *want) {
  return icl_pa_error(a, where, "'%s' must be %s, got %s", key, want, luaL_typename(a->L, -1));
}

const char *icl_pa_string(icl_pa *a, int idx, const char *key, const char *where, const char *def) {
  int t = field(a, idx, key);
  const char *s = def;
  if (t == LUA_TSTRING) {
    s = lua_tostring(a->L, -1);
    lua_rawseti(a->L, a->anchor, ++a->nanchor); /* keeps the string alive */
    return s;
  }
  if (t != LUA_TNIL) wrong(a, where, key, "a string");
  lua_pop(a->L, 1);
  return s;
}

double icl_pa_number(icl_pa *a, int idx, const char *key, const char *where, double def) {
  int t = field(a, idx, key);
  double v = def;
  if (t == LUA_TNUMBER) v = lua_tonumber(a->L, -1);
  else if (t != LUA_TNIL) wrong(a, where, key, "a number");
  lua_pop(a->L, 1);
  return v;
}

int icl_pa_int(icl_pa *a, int idx, const char *key, const char *where, int def) {
  int t = field(a, idx, key), ok = 0;
  lua_Integer v = def;
  if (t == LUA_TNUMBER) {
    v = lua_tointegerx(a->L, -1, &ok);
    if (!ok || v < -2147483647 || v > 2147483647) wrong(a, where, key, "an integer");
  } else if (t != LUA_TNIL) {
    wrong(a, where, key, "an integer");
  }
  lua_pop(a->L, 1);
  return (int)v;
}

int icl_pa_bool(icl_pa *a, int idx, const char *key, const char *where, int def) {
  int t = field(a, idx, key), v = def;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(a->L, -1);
  else if (t != LUA_TNIL) wrong(a, where, key, "a boolean");
  lua_pop(a->L, 1);
  return v;
}

int icl_pa_enum(icl_pa *a, int idx, const char *key, const char *where, const char *const *names, int n, int def) {
  int t = field(a, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(a->L, 1);
    return def;
  }
  char list[512] = "";
  for (int i = 0; i < n; i++) {
    if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
    strncat(list, names[i], sizeof list - strlen(list) - 1);
  }
  if (t != LUA_TSTRING) icl_pa_error(a, where, "'%s' must be one of %s, got %s", key, list, luaL_typename(a->L, -1));
  const char *s = lua_tostring(a->L, -1);
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      lua_pop(a->L, 1);
      return i;
    }
  return icl_pa_error(a, where, "'%s' must be one of %s, got '%s'", key, list, s);
}

static int hexval(int c) { return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10; }

int32_t icl_pa_color(icl_pa *a, int idx, const char *key, const char *where, int32_t def) {
  lua_State *L = a->L;
  int t = field(a, idx, key);
  int32_t rgb = def;
  if (t == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    int ok = strlen(s) == 7 && s[0] == '#';
    for (int i = 1; ok && i < 7; i++) ok = isxdigit((unsigned char)s[i]) != 0;
    if (!ok) icl_pa_error(a, where, "'%s' = '%s' is not a colour (use \"#rrggbb\" or {r, g, b})", key, s);
    rgb = 0;
    for (int i = 1; i < 7; i++) rgb = rgb * 16 + hexval((unsigned char)s[i]);
  } else if (t == LUA_TTABLE) {
    if (lua_rawlen(L, -1) != 3) icl_pa_error(a, where, "'%s' must be {r, g, b} with three entries", key);
    rgb = 0;
    for (int i = 1; i <= 3; i++) {
      lua_rawgeti(L, -1, i);
      int ok = 0;
      lua_Integer c = lua_tointegerx(L, -1, &ok);
      if (!ok || c < 0 || c > 255) icl_pa_error(a, where, "'%s'[%d] must be an integer in 0..255", key, i);
      rgb = rgb * 256 + (int32_t)c;
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    wrong(a, where, key, "a colour ({r, g, b} or \"#rrggbb\")");
  }
  lua_pop(L, 1);
  return rgb;
}

double *icl_pa_numbers(icl_pa *a, int idx, const char *key, const char *where, int64_t *n) {
  lua_State *L = a->L;
  int t = field(a, idx, key);
  *n = 0;
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (t != LUA_TTABLE) wrong(a, where, key, "a table of numbers");
  int64_t len = (int64_t)lua_rawlen(L, -1);
  double *v = icl_pa_alloc(a, (size_t)len * sizeof *v);
  for (int64_t i = 0; i < len; i++) {
    if (lua_rawgeti(L, -1, (lua_Integer)(i + 1)) != LUA_TNUMBER)
      icl_pa_error(a, where, "%s[%lld] must be a number, got %s", key, (long long)(i + 1), luaL_typename(L, -1));
    v[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *n = len;
  return v;
}

int icl_pa_range(icl_pa *a, int idx, const char *key, const char *where, double out[2]) {
  lua_State *L = a->L;
  int t = field(a, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE) wrong(a, where, key, "a table {lo, hi}");
  if (lua_rawlen(L, -1) != 2)
    icl_pa_error(a, where, "'%s' must have two entries {lo, hi}, got %d", key, (int)lua_rawlen(L, -1));
  for (int i = 0; i < 2; i++) {
    if (lua_rawgeti(L, -1, i + 1) != LUA_TNUMBER) icl_pa_error(a, where, "'%s'[%d] must be a number", key, i + 1);
    out[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 1;
}
