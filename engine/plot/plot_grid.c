/* plot.grid: rows x cols small line plots on one page (e.g. one per
 * attention head), filled row by row, under an optional figure title and
 * with optional figure-wide axis labels. */
#include <math.h>
#include <plplot.h>
#include <stdio.h>

#include "plot/plot_internal.h"

/* Fonts shrink with the number of panels across, down to 75%. */
static double panel_rel(const icl_plot_grid *g) {
  int most = g->rows > g->cols ? g->rows : g->cols;
  return fmax(0.75, 1.0 - 0.08 * (most - 1));
}

static int has_text(const char *s) { return s && s[0]; }

static int draw(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec) {
  const icl_plot_grid *g = spec;
  double ch = fr->font, rel = panel_rel(g);
  double top = has_text(g->title) ? 2.4 * ch * 1.3 : 0.2 * ch;
  double bottom = has_text(g->xlabel) ? 2.2 * ch * 1.1 : 0;
  double left = has_text(g->ylabel) ? 2.2 * ch * 1.1 : 0;
  icl_plot_rect area = {left / fr->page_w, 1 - 0.4 * ch / fr->page_w, bottom / fr->page_h, 1 - top / fr->page_h};
  double cw = (area.x1 - area.x0) / g->cols, rh = (area.y1 - area.y0) / g->rows;
  for (int i = 0; i < g->npanels; i++) {
    int r = i / g->cols, c = i % g->cols;
    icl_plot_rect cell = {area.x0 + c * cw, area.x0 + (c + 1) * cw, area.y1 - (r + 1) * rh, area.y1 - r * rh};
    int st = icl_plot_draw_axes(ctx, fr, &g->panels[i], cell, rel);
    if (st) return st;
  }
  /* Figure-wide text goes on a viewport covering the whole page. */
  char buf[2 * ICL_PLOT_MAX_TEXT + 2];
  plvpor(0, 1, 0, 1);
  plwind(0, 1, 0, 1);
  plcol0(ICL_PLOT_COL_FG);
  if (has_text(g->title)) {
    icl_plot_use_font(fr, 1.3);
    plmtex("t", -1.6, 0.5, 0.5, icl_plot_escape(g->title, buf, sizeof buf));
  }
  if (has_text(g->xlabel)) {
    icl_plot_use_font(fr, 1.1);
    plmtex("b", -1.0, 0.5 * (area.x0 + area.x1), 0.5, icl_plot_escape(g->xlabel, buf, sizeof buf));
  }
  if (has_text(g->ylabel)) {
    icl_plot_use_font(fr, 1.1);
    plmtex("l", -1.6, 0.5 * (area.y0 + area.y1), 0.5, icl_plot_escape(g->ylabel, buf, sizeof buf));
  }
  return ICL_OK;
}

static int check(icl_ctx *ctx, const char *op, const icl_plot_grid *g) {
  int st = icl_plot_check_text(ctx, op, "title", g->title);
  if (!st) st = icl_plot_check_text(ctx, op, "xlabel", g->xlabel);
  if (!st) st = icl_plot_check_text(ctx, op, "ylabel", g->ylabel);
  if (st) return st;
  if (g->rows < 1 || g->cols < 1 || g->rows > ICL_PLOT_MAX_GRID_SIDE || g->cols > ICL_PLOT_MAX_GRID_SIDE)
    return icl_errorf(ctx, ICL_EINVAL, "%s: rows = %d, cols = %d (each must be 1 to %d)", op, g->rows, g->cols,
                      ICL_PLOT_MAX_GRID_SIDE);
  if (g->npanels < 1 || !g->panels) return icl_errorf(ctx, ICL_EINVAL, "%s: needs at least one panel", op);
  if (g->npanels > g->rows * g->cols)
    return icl_errorf(ctx, ICL_EINVAL, "%s: %d panels do not fit in %d x %d", op, g->npanels, g->rows, g->cols);
  for (int i = 0; i < g->npanels; i++) {
    char where[ICL_PLOT_MAX_TEXT + 48];
    const char *t = g->panels[i].title;
    snprintf(where, sizeof where, "%s: panel %d%s%s%s", op, i + 1, t ? " ('" : "", t ? t : "", t ? "')" : "");
    if ((st = icl_plot_check_axes(ctx, where, &g->panels[i]))) return st;
  }
  return ICL_OK;
}

int icl_plot_grid_write(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_grid *grid) {
  const char *op = "plot.grid";
  if (!grid) return icl_errorf(ctx, ICL_EINVAL, "%s: no grid given", op);
  int st = icl_plot_check_page(ctx, op, page);
  if (!st) st = check(ctx, op, grid);
  if (!st) st = icl_plot_render(ctx, op, page, draw, grid);
  return st;
}
