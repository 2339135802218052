/* placeholder until the bindings land */
#include <lua.h>
#include <lauxlib.h>
#include "lua/lua_plot.h"
int luaopen_icl_core(lua_State *L);
int luaopen_icl_core(lua_State *L) { lua_newtable(L); icl_lua_open_plot(L); lua_setfield(L, -2, "plot"); return 1; }
