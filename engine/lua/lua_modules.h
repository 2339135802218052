/* Openers of the binding groups (one per area). */
#ifndef ICL_LUA_MODULES_H
#define ICL_LUA_MODULES_H

#include <lua.h>

void icl_lua_open_extensions(lua_State *L, int module_idx);
void icl_lua_open_nn(lua_State *L, int module_idx);
void icl_lua_open_group(lua_State *L, int module_idx);
void icl_lua_open_io(lua_State *L, int module_idx);
void icl_lua_open_tasks(lua_State *L, int module_idx);
void icl_lua_open_proc(lua_State *L, int module_idx);  /* spawn, waitpid, kill, sleep */
void icl_lua_open_flock(lua_State *L, int module_idx); /* lock_file */
void icl_lua_open_llama(lua_State *L, int module_idx);
void icl_lua_open_mamba(lua_State *L, int module_idx);

#endif
