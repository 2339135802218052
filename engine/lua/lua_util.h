/* Shared helpers of the Lua binding: the context of a Lua state, tensor
 * userdata, argument checking and the C-status-to-Lua-error bridge.
 * Every binding file includes this; nothing outside engine/lua knows Lua. */
#ifndef ICL_LUA_UTIL_H
#define ICL_LUA_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "core/tensor.h"

#define ICL_TENSOR_MT "icl.Tensor"

typedef struct icl_lua_tensor {
  icl_tensor *t; /* NULL once freed */
} icl_lua_tensor;

/* The context owned by this Lua state (created by luaopen_icl_core). */
icl_ctx *icl_lua_ctx(lua_State *L);

/* Raise the context's last error as a Lua error (never returns). */
int icl_lua_raise(lua_State *L);
/* Raise unless rc == 0. */
void icl_lua_check_rc(lua_State *L, int rc);

/* Tensor userdata. push takes ownership of t; a NULL t raises the context's
 * error, so `icl_lua_push_tensor(L, icl_op_...(...))` is the usual idiom. */
void icl_lua_push_tensor(lua_State *L, icl_tensor *t);
icl_tensor *icl_lua_check_tensor(lua_State *L, int idx);
icl_tensor *icl_lua_to_tensor(lua_State *L, int idx); /* NULL if not a live tensor */
int icl_lua_is_tensor(lua_State *L, int idx);

/* Option tables: error on keys not in `allowed` (NULL-terminated), naming
 * the function, the key and the valid keys. idx may be none/nil. */
void icl_lua_check_opts(lua_State *L, int idx, const char *fname, const char *const *allowed);
/* Typed option getters (value or default); wrong types raise. */
double icl_lua_opt_number(lua_State *L, int idx, const char *key, double dflt, const char *fname);
int icl_lua_opt_int(lua_State *L, int idx, const char *key, int dflt, const char *fname);
int icl_lua_opt_bool(lua_State *L, int idx, const char *key, int dflt, const char *fname);
const char *icl_lua_opt_string(lua_State *L, int idx, const char *key, const char *dflt, const char *fname);
/* one of `choices` (NULL-terminated); returns its index */
int icl_lua_opt_choice(lua_State *L, int idx, const char *key, const char *dflt, const char *const *choices,
                       const char *fname);
/* "cpu" / "cuda" (default: the state's default device) */
icl_device icl_lua_opt_device(lua_State *L, int idx, const char *fname);
void icl_lua_set_default_device(lua_State *L, icl_device dev);
icl_device icl_lua_default_device(lua_State *L);

/* A shape from a table {2, 3} at idx, or from the integers idx..top when
 * idx is a number; returns ndim. */
int icl_lua_read_shape(lua_State *L, int idx, const char *fname, int64_t *shape, int *consumed);
void icl_lua_push_shape(lua_State *L, int ndim, const int64_t *shape);
/* 1-based or negative Lua dim -> 0-based; raises naming fname when invalid.
 * allow_end: accept ndim+1 (for unsqueeze). */
int icl_lua_dim(lua_State *L, int idx, const char *fname, int ndim, int allow_end);

/* Tell the garbage collector about memory it cannot see (tensor storage). */
void icl_lua_account(lua_State *L, size_t nbytes);

/* Register functions with no upvalues into the table on top of the stack. */
void icl_lua_setfuncs(lua_State *L, const luaL_Reg *fns);

/* Sub-module openers: each pushes its table (or fills the module table). */
void icl_lua_open_tensor(lua_State *L, int module_idx);

#endif
