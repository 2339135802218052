/* plot.lines: one set of axes filling the page. */
#include "plot/plot_internal.h"

static int draw(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec) {
  icl_plot_rect all = {0, 1, 0, 1};
  return icl_plot_draw_axes(ctx, fr, spec, all, 1.0);
}

int icl_plot_lines(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_axes *axes) {
  const char *op = "plot.lines";
  if (!axes) return icl_errorf(ctx, ICL_EINVAL, "%s: no axes given", op);
  int st = icl_plot_check_page(ctx, op, page);
  if (!st) st = icl_plot_check_axes(ctx, op, axes);
  if (!st) st = icl_plot_render(ctx, op, page, draw, axes);
  return st;
}
