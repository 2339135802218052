/* Arithmetic, reductions and other maths methods of the tensor userdata. */
#ifndef ICL_LUA_TENSOR_OPS_H
#define ICL_LUA_TENSOR_OPS_H

#include <lua.h>

/* add the maths methods to the methods table at idx */
void icl_lua_tensor_ops_register(lua_State *L, int methods_idx);
/* add __add, __sub, ... to the metatable at idx */
void icl_lua_tensor_ops_metamethods(lua_State *L, int mt_idx);

#endif
