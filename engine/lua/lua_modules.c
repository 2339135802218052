/* The list of binding groups added to the module table. Each group lives in
 * its own lua_<area>.c and sets its fields on the table at module_idx. */
#include "lua_modules.h"

#include "lua_model.h"
#include "lua_plot.h"

void icl_lua_open_extensions(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  icl_lua_open_nn(L, module_idx);
  icl_lua_open_model(L, module_idx);
  icl_lua_open_plot(L);
  lua_setfield(L, module_idx, "plot");
  icl_lua_open_io(L, module_idx);
  icl_lua_open_tasks(L, module_idx);
  icl_lua_open_group(L, module_idx);
  icl_lua_open_proc(L, module_idx);
  icl_lua_open_flock(L, module_idx);
  icl_lua_open_llama(L, module_idx);
  icl_lua_open_mamba(L, module_idx);
}
