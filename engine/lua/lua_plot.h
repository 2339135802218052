/* The plot table of icl.core: plot.lines, plot.heatmap, plot.grid and
 * plot.devices, taking plain Lua tables (see docs in lua_plot.c). */
#ifndef ICL_LUA_PLOT_H
#define ICL_LUA_PLOT_H

#include "lua/lua_plot_args.h"
#include "plot/plot.h"

/* Pushes the plot table. */
int icl_lua_open_plot(lua_State *L);

/* Reads the axis options, series and reference lines of the table at idx
 * (keys are checked by the caller). */
void icl_lua_plot_axes(icl_pa *a, int idx, const char *where, icl_plot_axes *ax);

#endif
