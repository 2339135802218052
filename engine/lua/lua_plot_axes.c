/* Lua tables -> icl_plot_axes: series, reference lines and axis options, as
 * taken by plot.lines and by each panel of plot.grid. */
#include <stdio.h>
#include <string.h>

#include "lua/lua_plot.h"

static const char *const SERIES_KEYS[] = {"x",     "y",      "label",       "color", "style",
                                          "width", "marker", "marker_size", "band",  NULL};
static const char *const BAND_KEYS[] = {"lo", "hi", "alpha", NULL};
static const char *const VLINE_KEYS[] = {"x", "label", "color", "style", "width", NULL};
static const char *const HLINE_KEYS[] = {"y", "label", "color", "style", "width", NULL};

static const char *STYLES[ICL_PLOT_NSTYLES], *MARKERS[ICL_PLOT_NMARKERS], *LEGENDS[ICL_PLOT_NLEGENDS];

static void names(void) {
  for (int i = 0; i < ICL_PLOT_NSTYLES; i++) STYLES[i] = icl_plot_style_name(i);
  for (int i = 0; i < ICL_PLOT_NMARKERS; i++) MARKERS[i] = icl_plot_marker_name(i);
  for (int i = 0; i < ICL_PLOT_NLEGENDS; i++) LEGENDS[i] = icl_plot_legend_name(i);
}

/* Number of entries of the sequence t[key] (0 when nil); the value is left
 * pushed either way. */
static int push_list(icl_pa *a, int idx, const char *key, const char *where, int max) {
  lua_State *L = a->L;
  int t = lua_getfield(L, idx, key);
  if (t == LUA_TNIL) return 0;
  if (t != LUA_TTABLE) icl_pa_error(a, where, "'%s' must be a table (a list), got %s", key, luaL_typename(L, -1));
  size_t n = lua_rawlen(L, -1);
  if (n > (size_t)max) icl_pa_error(a, where, "'%s' has %zu entries (at most %d)", key, n, max);
  return (int)n;
}

static void read_series(icl_pa *a, int idx, const char *outer, int i, icl_plot_series *s) {
  char where[ICL_PLOT_MAX_TEXT + 96];
  snprintf(where, sizeof where, "%s%sseries %d", outer, outer[0] ? ": " : "", i);
  icl_pa_keys(a, idx, where, SERIES_KEYS);
  *s = icl_plot_series_init();
  s->label = icl_pa_string(a, idx, "label", where, NULL);
  if (s->label) {
    size_t n = strlen(where);
    snprintf(where + n, sizeof where - n, " ('%.*s')", ICL_PLOT_MAX_TEXT, s->label);
  }
  int64_t nx = 0, ny = 0;
  s->y = icl_pa_numbers(a, idx, "y", where, &ny);
  if (!s->y) icl_pa_error(a, where, "'y' is required");
  s->x = icl_pa_numbers(a, idx, "x", where, &nx);
  if (!s->x) { /* x defaults to 1, 2, ..., #y */
    double *x = icl_pa_alloc(a, (size_t)ny * sizeof *x);
    for (int64_t k = 0; k < ny; k++) x[k] = (double)(k + 1);
    s->x = x, nx = ny;
  }
  if (nx != ny) icl_pa_error(a, where, "x has %lld points, y has %lld", (long long)nx, (long long)ny);
  s->n = ny;
  s->color = icl_pa_color(a, idx, "color", where, ICL_PLOT_AUTO_COLOR);
  s->style = icl_pa_enum(a, idx, "style", where, STYLES, ICL_PLOT_NSTYLES, ICL_PLOT_SOLID);
  s->width = icl_pa_number(a, idx, "width", where, 0);
  int no_marker = lua_getfield(a->L, idx, "marker") == LUA_TBOOLEAN && !lua_toboolean(a->L, -1);
  lua_pop(a->L, 1);
  if (!no_marker) s->marker = icl_pa_enum(a, idx, "marker", where, MARKERS, ICL_PLOT_NMARKERS, ICL_PLOT_MARK_NONE);
  s->marker_size = icl_pa_number(a, idx, "marker_size", where, 0);
  int t = lua_getfield(a->L, idx, "band");
  if (t != LUA_TNIL) {
    char bw[sizeof where + 8];
    snprintf(bw, sizeof bw, "%s: band", where);
    int b = lua_gettop(a->L);
    icl_pa_keys(a, b, bw, BAND_KEYS);
    int64_t nlo = 0, nhi = 0;
    s->band_lo = icl_pa_numbers(a, b, "lo", bw, &nlo);
    s->band_hi = icl_pa_numbers(a, b, "hi", bw, &nhi);
    if (!s->band_lo || !s->band_hi) icl_pa_error(a, bw, "needs both 'lo' and 'hi'");
    if (nlo != ny || nhi != ny)
      icl_pa_error(a, bw, "lo has %lld points and hi %lld, but y has %lld", (long long)nlo, (long long)nhi,
                   (long long)ny);
    s->band_alpha = icl_pa_number(a, b, "alpha", bw, 0);
  }
  lua_pop(a->L, 1);
}

static void read_reflines(icl_pa *a, int idx, const char *outer, int vertical, icl_plot_refline **out, int *n) {
  const char *key = vertical ? "vlines" : "hlines";
  *n = push_list(a, idx, key, outer, ICL_PLOT_MAX_REFLINES);
  int list = lua_gettop(a->L);
  *out = icl_pa_alloc(a, (size_t)*n * sizeof **out);
  for (int i = 0; i < *n; i++) {
    char where[160];
    snprintf(where, sizeof where, "%s%s%s %d", outer, outer[0] ? ": " : "", vertical ? "vline" : "hline", i + 1);
    lua_rawgeti(a->L, list, i + 1);
    int r = lua_gettop(a->L);
    icl_pa_keys(a, r, where, vertical ? VLINE_KEYS : HLINE_KEYS);
    icl_plot_refline *l = &(*out)[i];
    *l = icl_plot_refline_init();
    const char *at = vertical ? "x" : "y";
    if (lua_getfield(a->L, r, at) != LUA_TNUMBER) icl_pa_error(a, where, "'%s' must be a number", at);
    lua_pop(a->L, 1);
    l->at = icl_pa_number(a, r, at, where, 0);
    l->label = icl_pa_string(a, r, "label", where, NULL);
    l->color = icl_pa_color(a, r, "color", where, ICL_PLOT_AUTO_COLOR);
    l->style = icl_pa_enum(a, r, "style", where, STYLES, ICL_PLOT_NSTYLES, ICL_PLOT_SOLID);
    l->width = icl_pa_number(a, r, "width", where, 0);
    lua_pop(a->L, 1);
  }
  lua_pop(a->L, 1);
}

void icl_lua_plot_axes(icl_pa *a, int idx, const char *where, icl_plot_axes *ax) {
  lua_State *L = a->L;
  names();
  idx = lua_absindex(L, idx);
  *ax = icl_plot_axes_init();
  ax->title = icl_pa_string(a, idx, "title", where, NULL);
  ax->xlabel = icl_pa_string(a, idx, "xlabel", where, NULL);
  ax->ylabel = icl_pa_string(a, idx, "ylabel", where, NULL);
  ax->has_xlim = icl_pa_range(a, idx, "xlim", where, ax->xlim);
  ax->has_ylim = icl_pa_range(a, idx, "ylim", where, ax->ylim);
  ax->logy = icl_pa_bool(a, idx, "logy", where, 0);
  ax->grid = icl_pa_bool(a, idx, "grid", where, 1);
  int t = lua_getfield(L, idx, "legend");
  if (t == LUA_TBOOLEAN) { /* legend = false hides it, true means "best" */
    ax->legend = lua_toboolean(L, -1) ? ICL_PLOT_LEGEND_BEST : ICL_PLOT_LEGEND_NONE;
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    ax->legend = icl_pa_enum(a, idx, "legend", where, LEGENDS, ICL_PLOT_NLEGENDS, ICL_PLOT_LEGEND_BEST);
  }
  int n = push_list(a, idx, "series", where, ICL_PLOT_MAX_SERIES);
  if (n == 0) icl_pa_error(a, where, "'series' must list at least one series");
  int list = lua_gettop(L);
  icl_plot_series *s = icl_pa_alloc(a, (size_t)n * sizeof *s);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    read_series(a, lua_gettop(L), where, i + 1, &s[i]);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  ax->series = s;
  ax->nseries = n;
  icl_plot_refline *v, *h;
  read_reflines(a, idx, where, 1, &v, &ax->nvlines);
  read_reflines(a, idx, where, 0, &h, &ax->nhlines);
  ax->vlines = v;
  ax->hlines = h;
}
