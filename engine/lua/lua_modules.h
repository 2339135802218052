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
void icl_lua_open_train(lua_State *L, int module_idx); /* _train_step */

/* The C objects behind an optimiser / a built-in task sampler userdata
 * (raise when idx holds something else or a freed one). */
struct icl_adamw;
struct icl_task;
struct icl_adamw *icl_lua_check_adamw(lua_State *L, int idx);
struct icl_task *icl_lua_check_task_sampler(lua_State *L, int idx);

#endif
