/* icl.core.plot: figures from plain Lua tables.
 *
 *   plot.lines{file=, width=1000, height=700, title=, xlabel=, ylabel=, xlim={lo,hi}, ylim={lo,hi},
 *              logy=false, grid=true, legend="best"|"top right"|"top left"|"bottom right"|
 *              "bottom left"|"outside"|"none"|false,
 *              series={{x=, y=, label=, color={r,g,b}|"#rrggbb", style="solid"|"dashed"|"dotted"|
 *                       "dashdot", width=2, marker="circle"|..., marker_size=1,
 *                       band={lo=, hi=, alpha=0.2}}, ...},
 *              vlines={{x=, label=, color=, style=, width=}}, hlines={{y=, ...}}}
 *   plot.heatmap{file=, width=, height=, title=, xlabel=, ylabel=, zlabel=, z={{...}, ...},
 *                zlim={lo,hi}, colorbar=true}
 *   plot.grid{file=, width=, height=, title=, xlabel=, ylabel=, rows=, cols=,
 *             panels={{title=, series=, vlines=, hlines=, xlim=, ylim=, logy=, legend=, grid=,
 *                      xlabel=, ylabel=}, ...}}
 *   plot.devices() -> {"pngcairo", ...}
 * Each writer returns the file name; any problem is a Lua error. */
#include "lua/lua_plot.h"

#include <string.h>

static const char *const LINES_KEYS[] = {"file", "width", "height", "title",  "xlabel", "ylabel", "xlim", "ylim",
                                         "logy", "legend", "grid",  "series", "vlines", "hlines", NULL};
static const char *const PANEL_KEYS[] = {"title", "xlabel", "ylabel", "xlim",   "ylim",   "logy",
                                         "legend", "grid",  "series", "vlines", "hlines", NULL};
static const char *const HEATMAP_KEYS[] = {"file",   "width", "height", "title", "xlabel",
                                           "ylabel", "zlabel", "z",     "zlim",  "colorbar", NULL};
static const char *const GRID_KEYS[] = {"file", "width", "height", "title", "xlabel",
                                        "ylabel", "rows", "cols",  "panels", NULL};

static void read_page(icl_pa *a, int idx, icl_plot_page *pg) {
  pg->file = icl_pa_string(a, idx, "file", "", NULL);
  if (!pg->file) icl_pa_error(a, "", "'file' is required");
  pg->width = icl_pa_int(a, idx, "width", "", 0);
  pg->height = icl_pa_int(a, idx, "height", "", 0);
}

static int done(lua_State *L, int st, icl_ctx *ctx, const char *file) {
  if (st) return luaL_error(L, "%s", icl_last_error(ctx));
  lua_pushstring(L, file);
  return 1;
}

static int l_lines(lua_State *L) {
  icl_pa a;
  icl_pa_begin(&a, L, "plot.lines");
  icl_pa_keys(&a, 1, "", LINES_KEYS);
  icl_plot_page pg;
  icl_plot_axes ax;
  read_page(&a, 1, &pg);
  icl_lua_plot_axes(&a, 1, "", &ax);
  icl_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  return done(L, icl_plot_lines(&ctx, &pg, &ax), &ctx, pg.file);
}

/* z = {{row 1}, {row 2}, ...}, all rows of one length. */
static double *read_matrix(icl_pa *a, int idx, int64_t *rows, int64_t *cols) {
  lua_State *L = a->L;
  if (lua_getfield(L, idx, "z") != LUA_TTABLE)
    icl_pa_error(a, "", "'z' must be a table of rows, got %s", luaL_typename(L, -1));
  int z = lua_gettop(L);
  *rows = (int64_t)lua_rawlen(L, z);
  *cols = 0;
  if (*rows < 1) icl_pa_error(a, "", "'z' has no rows");
  if (*rows > 8192) icl_pa_error(a, "", "'z' has %lld rows (at most 8192)", (long long)*rows);
  if (lua_rawgeti(L, z, 1) != LUA_TTABLE) icl_pa_error(a, "", "z[1] must be a table of numbers");
  *cols = (int64_t)lua_rawlen(L, -1);
  lua_pop(L, 1);
  if (*cols < 1 || *cols > 8192) icl_pa_error(a, "", "z[1] has %lld values (1 to 8192)", (long long)*cols);
  if (*rows * *cols > ICL_PLOT_MAX_CELLS)
    icl_pa_error(a, "", "'z' has %lld cells (at most %d)", (long long)(*rows * *cols), ICL_PLOT_MAX_CELLS);
  double *v = icl_pa_alloc(a, (size_t)(*rows * *cols) * sizeof *v);
  for (int64_t r = 0; r < *rows; r++) {
    if (lua_rawgeti(L, z, (lua_Integer)(r + 1)) != LUA_TTABLE)
      icl_pa_error(a, "", "z[%lld] must be a table of numbers, got %s", (long long)(r + 1), luaL_typename(L, -1));
    int64_t n = (int64_t)lua_rawlen(L, -1);
    if (n != *cols)
      icl_pa_error(a, "", "z[%lld] has %lld values, z[1] has %lld", (long long)(r + 1), (long long)n,
                   (long long)*cols);
    for (int64_t c = 0; c < n; c++) {
      if (lua_rawgeti(L, -1, (lua_Integer)(c + 1)) != LUA_TNUMBER)
        icl_pa_error(a, "", "z[%lld][%lld] must be a number, got %s", (long long)(r + 1), (long long)(c + 1),
                     luaL_typename(L, -1));
      v[r * *cols + c] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

static int l_heatmap(lua_State *L) {
  icl_pa a;
  icl_pa_begin(&a, L, "plot.heatmap");
  icl_pa_keys(&a, 1, "", HEATMAP_KEYS);
  icl_plot_page pg;
  read_page(&a, 1, &pg);
  icl_plot_heatmap hm;
  memset(&hm, 0, sizeof hm);
  hm.title = icl_pa_string(&a, 1, "title", "", NULL);
  hm.xlabel = icl_pa_string(&a, 1, "xlabel", "", NULL);
  hm.ylabel = icl_pa_string(&a, 1, "ylabel", "", NULL);
  hm.zlabel = icl_pa_string(&a, 1, "zlabel", "", NULL);
  hm.has_zlim = icl_pa_range(&a, 1, "zlim", "", hm.zlim);
  hm.colorbar = icl_pa_bool(&a, 1, "colorbar", "", 1);
  hm.z = read_matrix(&a, 1, &hm.rows, &hm.cols);
  icl_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  return done(L, icl_plot_heatmap_write(&ctx, &pg, &hm), &ctx, pg.file);
}

static int l_grid(lua_State *L) {
  icl_pa a;
  icl_pa_begin(&a, L, "plot.grid");
  icl_pa_keys(&a, 1, "", GRID_KEYS);
  icl_plot_page pg;
  read_page(&a, 1, &pg);
  icl_plot_grid g;
  memset(&g, 0, sizeof g);
  g.title = icl_pa_string(&a, 1, "title", "", NULL);
  g.xlabel = icl_pa_string(&a, 1, "xlabel", "", NULL);
  g.ylabel = icl_pa_string(&a, 1, "ylabel", "", NULL);
  if (lua_getfield(L, 1, "panels") != LUA_TTABLE)
    icl_pa_error(&a, "", "'panels' must be a table (a list), got %s", luaL_typename(L, -1));
  int list = lua_gettop(L);
  size_t n = lua_rawlen(L, list);
  int most = ICL_PLOT_MAX_GRID_SIDE * ICL_PLOT_MAX_GRID_SIDE;
  if (n < 1 || n > (size_t)most) icl_pa_error(&a, "", "'panels' has %zu entries (1 to %d)", n, most);
  /* Without rows/cols: up to 4 across, as many rows as needed. */
  int dc = n < 4 ? (int)n : 4;
  g.cols = icl_pa_int(&a, 1, "cols", "", dc);
  g.rows = icl_pa_int(&a, 1, "rows", "", g.cols > 0 ? (int)((n + (size_t)g.cols - 1) / (size_t)g.cols) : 1);
  icl_plot_axes *p = icl_pa_alloc(&a, n * sizeof *p);
  for (size_t i = 0; i < n; i++) {
    char where[48];
    snprintf(where, sizeof where, "panel %zu", i + 1);
    lua_rawgeti(L, list, (lua_Integer)(i + 1));
    icl_pa_keys(&a, -1, where, PANEL_KEYS);
    icl_lua_plot_axes(&a, lua_gettop(L), where, &p[i]);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  g.panels = p;
  g.npanels = (int)n;
  icl_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  return done(L, icl_plot_grid_write(&ctx, &pg, &g), &ctx, pg.file);
}

static int l_devices(lua_State *L) {
  const char *names[128];
  int n = 0;
  icl_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  if (icl_plot_devices(&ctx, names, 128, &n)) return luaL_error(L, "%s", icl_last_error(&ctx));
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

int icl_lua_open_plot(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"lines", l_lines}, {"heatmap", l_heatmap}, {"grid", l_grid}, {"devices", l_devices}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
