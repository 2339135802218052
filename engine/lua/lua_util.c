#include "lua_util.h"

#include <string.h>
#include <unistd.h>

#define CTX_KEY "icl.ctx"
#define DEVICE_KEY "icl.default_device"

typedef struct ctx_box {
  icl_ctx *ctx;
} ctx_box;

static int ctx_gc(lua_State *L) {
  ctx_box *b = luaL_checkudata(L, 1, "icl.Context");
  if (b->ctx) icl_ctx_free(b->ctx);
  b->ctx = NULL;
  return 0;
}

icl_ctx *icl_lua_ctx(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  ctx_box *b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (b && b->ctx) return b->ctx;
  /* first use in this state: create it; its finaliser runs after every
   * tensor's, because it was created before them */
  b = lua_newuserdatauv(L, sizeof *b, 0);
  b->ctx = icl_ctx_new();
  if (!b->ctx) luaL_error(L, "icl: cannot create the engine context (out of memory)");
  if (b->ctx->num_threads == 0) icl_set_num_threads(b->ctx, (int)sysconf(_SC_NPROCESSORS_ONLN));
  if (luaL_newmetatable(L, "icl.Context")) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  return b->ctx;
}

int icl_lua_raise(lua_State *L) {
  icl_ctx *ctx = icl_lua_ctx(L);
  return luaL_error(L, "%s", icl_last_error(ctx));
}

void icl_lua_check_rc(lua_State *L, int rc) {
  if (rc) icl_lua_raise(L);
}

void icl_lua_account(lua_State *L, size_t nbytes) {
  /* ask for a GC step proportional to what was allocated outside Lua */
  if (nbytes >= 1024) lua_gc(L, LUA_GCSTEP, (int)(nbytes / 1024 > 1 << 20 ? 1 << 20 : nbytes / 1024));
}

void icl_lua_push_tensor(lua_State *L, icl_tensor *t) {
  if (!t) {
    icl_lua_raise(L);
    return;
  }
  icl_lua_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = t;
  luaL_setmetatable(L, ICL_TENSOR_MT);
  if (t->storage->refcount == 1 && !t->storage->borrowed) icl_lua_account(L, t->storage->nbytes);
}

icl_tensor *icl_lua_to_tensor(lua_State *L, int idx) {
  icl_lua_tensor *u = luaL_testudata(L, idx, ICL_TENSOR_MT);
  return u ? u->t : NULL;
}

int icl_lua_is_tensor(lua_State *L, int idx) { return luaL_testudata(L, idx, ICL_TENSOR_MT) != NULL; }

icl_tensor *icl_lua_check_tensor(lua_State *L, int idx) {
  icl_lua_tensor *u = luaL_testudata(L, idx, ICL_TENSOR_MT);
  if (!u) {
    luaL_typeerror(L, idx, "icl tensor");
    return NULL;
  }
  if (!u->t) luaL_argerror(L, idx, "tensor was freed");
  return u->t;
}

void icl_lua_check_opts(lua_State *L, int idx, const char *fname, const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) luaL_error(L, "%s: options must be a table, got %s", fname, luaL_typename(L, idx));
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (int i = 0; allowed[i]; i++)
        if (strcmp(k, allowed[i]) == 0) ok = 1;
    }
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; allowed[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, allowed[i]);
      }
      luaL_pushresult(&b);
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
      luaL_error(L, "%s: unknown option '%s' (valid: %s)", fname, key, lua_tostring(L, -1));
    }
  }
}

static int get_field(lua_State *L, int idx, const char *key) {
  if (lua_isnoneornil(L, idx)) return LUA_TNIL;
  return lua_getfield(L, idx, key);
}

double icl_lua_opt_number(lua_State *L, int idx, const char *key, double dflt, const char *fname) {
  int t = get_field(L, idx, key);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TNUMBER) luaL_error(L, "%s: option '%s' must be a number, got %s", fname, key, lua_typename(L, t));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int icl_lua_opt_int(lua_State *L, int idx, const char *key, int dflt, const char *fname) {
  int t = get_field(L, idx, key);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    return dflt;
  }
  if (!lua_isinteger(L, -1)) {
    if (t == LUA_TNUMBER) {
      lua_Number n = lua_tonumber(L, -1);
      if (n == (lua_Number)(int)n) {
        lua_pop(L, 1);
        return (int)n;
      }
    }
    luaL_error(L, "%s: option '%s' must be an integer, got %s", fname, key,
               t == LUA_TNUMBER ? "a non-integer number" : lua_typename(L, t));
  }
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return (int)v;
}

int icl_lua_opt_bool(lua_State *L, int idx, const char *key, int dflt, const char *fname) {
  int t = get_field(L, idx, key);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TBOOLEAN) luaL_error(L, "%s: option '%s' must be a boolean, got %s", fname, key, lua_typename(L, t));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *icl_lua_opt_string(lua_State *L, int idx, const char *key, const char *dflt, const char *fname) {
  int t = get_field(L, idx, key);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TSTRING) luaL_error(L, "%s: option '%s' must be a string, got %s", fname, key, lua_typename(L, t));
  /* the string stays alive in the options table */
  const char *v = lua_tostring(L, -1);
  lua_pop(L, 1);
  return v;
}

int icl_lua_opt_choice(lua_State *L, int idx, const char *key, const char *dflt, const char *const *choices,
                       const char *fname) {
  const char *v = icl_lua_opt_string(L, idx, key, dflt, fname);
  for (int i = 0; choices[i]; i++)
    if (v && strcmp(v, choices[i]) == 0) return i;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; choices[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, choices[i]);
  }
  luaL_pushresult(&b);
  return luaL_error(L, "%s: option '%s' = '%s' is not one of: %s", fname, key, v ? v : "nil", lua_tostring(L, -1));
}

icl_device icl_lua_default_device(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, DEVICE_KEY);
  icl_device d = lua_tointeger(L, -1) == 1 ? ICL_CUDA : ICL_CPU;
  lua_pop(L, 1);
  return d;
}

void icl_lua_set_default_device(lua_State *L, icl_device dev) {
  lua_pushinteger(L, dev == ICL_CUDA ? 1 : 0);
  lua_setfield(L, LUA_REGISTRYINDEX, DEVICE_KEY);
}

icl_device icl_lua_opt_device(lua_State *L, int idx, const char *fname) {
  static const char *const devs[] = {"cpu", "cuda", NULL};
  const char *dflt = icl_lua_default_device(L) == ICL_CUDA ? "cuda" : "cpu";
  return icl_lua_opt_choice(L, idx, "device", dflt, devs, fname) == 1 ? ICL_CUDA : ICL_CPU;
}

static int64_t check_size(lua_State *L, int idx, const char *fname, int pos) {
  if (!lua_isinteger(L, idx)) {
    int isnum = 0;
    lua_Number n = lua_tonumberx(L, idx, &isnum);
    if (!isnum || n != (lua_Number)(int64_t)n)
      luaL_error(L, "%s: size %d of the shape must be an integer, got %s", fname, pos, luaL_typename(L, idx));
    return (int64_t)n;
  }
  lua_Integer v = lua_tointeger(L, idx);
  if (v < 0) luaL_error(L, "%s: size %d of the shape is negative (%d)", fname, pos, (int)v);
  return (int64_t)v;
}

int icl_lua_read_shape(lua_State *L, int idx, const char *fname, int64_t *shape, int *consumed) {
  if (lua_istable(L, idx)) {
    int n = (int)lua_rawlen(L, idx);
    if (n > ICL_MAX_DIMS) luaL_error(L, "%s: shape has %d dims (at most %d)", fname, n, ICL_MAX_DIMS);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      shape[i] = check_size(L, -1, fname, i + 1);
      lua_pop(L, 1);
    }
    if (consumed) *consumed = 1;
    return n;
  }
  int n = 0;
  while (lua_type(L, idx + n) == LUA_TNUMBER) {
    if (n >= ICL_MAX_DIMS) luaL_error(L, "%s: shape has more than %d dims", fname, ICL_MAX_DIMS);
    shape[n] = check_size(L, idx + n, fname, n + 1);
    n++;
  }
  if (n == 0 && !lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    luaL_error(L, "%s: expected a shape (table of sizes), got %s", fname, luaL_typename(L, idx));
  if (consumed) *consumed = n;
  return n;
}

void icl_lua_push_shape(lua_State *L, int ndim, const int64_t *shape) {
  lua_createtable(L, ndim, 0);
  for (int i = 0; i < ndim; i++) {
    lua_pushinteger(L, (lua_Integer)shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

int icl_lua_dim(lua_State *L, int idx, const char *fname, int ndim, int allow_end) {
  if (!lua_isinteger(L, idx)) luaL_error(L, "%s: dim must be an integer, got %s", fname, luaL_typename(L, idx));
  lua_Integer d = lua_tointeger(L, idx);
  int n = ndim + (allow_end ? 1 : 0);
  lua_Integer z = d > 0 ? d - 1 : d + n;
  if (d == 0 || z < 0 || z >= n)
    luaL_error(L, "%s: dim %d is out of range for a %d-dim tensor (use 1..%d or -%d..-1)", fname, (int)d, ndim, n,
               n);
  return (int)z;
}

void icl_lua_setfuncs(lua_State *L, const luaL_Reg *fns) { luaL_setfuncs(L, fns, 0); }
