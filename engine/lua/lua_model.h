/* The Lua face of icl_model: one userdata type for every backbone.
 * A family binding (lua_llama.c, lua_mamba.c, ...) builds an icl_model and
 * pushes it with icl_lua_push_model; family-specific methods go into
 * icl.core._family_methods[<family>] and are found through __index. */
#ifndef ICL_LUA_MODEL_H
#define ICL_LUA_MODEL_H

#include <lauxlib.h>
#include <lua.h>

#include "models/model.h"

#define ICL_MODEL_MT "icl.Model"

void icl_lua_push_model(lua_State *L, icl_model *m); /* takes ownership; NULL raises the ctx error */
icl_model *icl_lua_check_model(lua_State *L, int idx);
/* Register a family constructor: core._families[name] = fn(options_table) -> model */
void icl_lua_register_family(lua_State *L, int module_idx, const char *name, lua_CFunction ctor,
                             const luaL_Reg *extra_methods);
/* AdamW over a parameter store (per-tensor decay/frozen flags); opts at opts_idx */
int icl_lua_push_adamw_params(lua_State *L, icl_params *p, int opts_idx);

void icl_lua_open_model(lua_State *L, int module_idx);

#endif
