/* One set of axes inside a region of the page: limits, margins sized from
 * the text that goes into them, frame, data, labels, title and legend. */
#include <math.h>
#include <plplot.h>

#include "plot/plot_internal.h"

/* Font sizes relative to the tick labels. */
#define REL_LABEL 1.1
#define REL_TITLE 1.2

icl_plot_series icl_plot_series_init(void) {
  icl_plot_series s = {0};
  s.color = ICL_PLOT_AUTO_COLOR;
  return s;
}

icl_plot_refline icl_plot_refline_init(void) {
  icl_plot_refline r = {0};
  r.color = ICL_PLOT_AUTO_COLOR;
  return r;
}

icl_plot_axes icl_plot_axes_init(void) {
  icl_plot_axes a = {0};
  a.legend = ICL_PLOT_LEGEND_BEST;
  a.grid = 1;
  return a;
}

static void widen(double v, double *lo, double *hi) {
  if (isnan(v)) return;
  if (v < *lo) *lo = v;
  if (v > *hi) *hi = v;
}

/* Data range of everything drawn; a log axis ignores non-positive band edges. */
static void data_range(const icl_plot_axes *ax, double *xlo, double *xhi, double *ylo, double *yhi) {
  *xlo = *ylo = INFINITY;
  *xhi = *yhi = -INFINITY;
  for (int i = 0; i < ax->nseries; i++) {
    const icl_plot_series *s = &ax->series[i];
    for (int64_t k = 0; k < s->n; k++) {
      if (isnan(s->x[k])) continue;
      widen(s->x[k], xlo, xhi);
      widen(s->y[k], ylo, yhi);
      if (s->band_lo) {
        if (!ax->logy || s->band_lo[k] > 0) widen(s->band_lo[k], ylo, yhi);
        widen(s->band_hi[k], ylo, yhi);
      }
    }
  }
  for (int i = 0; i < ax->nvlines; i++) widen(ax->vlines[i].at, xlo, xhi);
  for (int i = 0; i < ax->nhlines; i++) widen(ax->hlines[i].at, ylo, yhi);
}

static void limits(const icl_plot_axes *ax, icl_plot_limits *lim) {
  double xlo, xhi, ylo, yhi;
  data_range(ax, &xlo, &xhi, &ylo, &yhi);
  if (ax->has_xlim) xlo = ax->xlim[0], xhi = ax->xlim[1];
  else icl_plot_auto_range(xlo, xhi, 0, &xlo, &xhi);
  if (ax->has_ylim) {
    ylo = ax->logy ? log10(ax->ylim[0]) : ax->ylim[0];
    yhi = ax->logy ? log10(ax->ylim[1]) : ax->ylim[1];
  } else {
    icl_plot_auto_range(ylo, yhi, ax->logy, &ylo, &yhi);
  }
  icl_plot_make_ticks(&lim->xt, xlo, xhi, 0, 0);
  icl_plot_make_ticks(&lim->yt, ylo, yhi, ax->logy, 0);
}

static int has_text(const char *s) { return s && s[0]; }

int icl_plot_draw_axes(icl_ctx *ctx, const icl_plot_frame *fr, const icl_plot_axes *ax, icl_plot_rect region,
                       double rel) {
  icl_plot_limits lim;
  limits(ax, &lim);
  double ch = fr->font * rel, chl = ch * REL_LABEL, cht = ch * REL_TITLE;

  /* Margins in mm, from the inside out: tick labels, axis label, padding. */
  double ytw = icl_plot_ticks_width(&lim.yt, ch);
  double left = 0.8 * ch + ytw + (has_text(ax->ylabel) ? 2.4 * chl : 0) + 0.8 * ch;
  double bottom = 2.6 * ch + (has_text(ax->xlabel) ? 2.0 * chl : 0) + 0.6 * ch;
  double top = has_text(ax->title) ? 2.6 * cht : 1.2 * ch;
  double right = 1.6 * ch;
  double lw = 0, lh = 0;
  if (ax->legend == ICL_PLOT_LEGEND_OUTSIDE) {
    icl_plot_legend_size(fr, ax, rel, &lw, &lh);
    if (lw > 0) right = lw + 3.0 * ch;
  }
  /* A tiny region keeps at least half of itself for the data. */
  double rw = (region.x1 - region.x0) * fr->page_w, rh = (region.y1 - region.y0) * fr->page_h;
  double sx = left + right > 0.5 * rw ? 0.5 * rw / (left + right) : 1;
  double sy = top + bottom > 0.5 * rh ? 0.5 * rh / (top + bottom) : 1;
  icl_plot_rect vp = {region.x0 + sx * left / fr->page_w, region.x1 - sx * right / fr->page_w,
                      region.y0 + sy * bottom / fr->page_h, region.y1 - sy * top / fr->page_h};

  plvpor(vp.x0, vp.x1, vp.y0, vp.y1);
  plwind(lim.xt.lo, lim.xt.hi, lim.yt.lo, lim.yt.hi);
  if (ax->grid) icl_plot_draw_grid(&lim.xt, &lim.yt, fr);
  int st = icl_plot_draw_series(ctx, fr, ax, &lim, rel);
  if (st) return st;
  icl_plot_use_font(fr, rel);
  icl_plot_draw_box(&lim.xt, &lim.yt, fr, ICL_PLOT_BOX_LINES);

  char buf[2 * ICL_PLOT_MAX_TEXT + 2];
  plcol0(ICL_PLOT_COL_FG);
  if (has_text(ax->xlabel)) {
    icl_plot_use_font(fr, rel * REL_LABEL);
    plmtex("b", sy * (2.6 * ch + 1.4 * chl) / chl, 0.5, 0.5, icl_plot_escape(ax->xlabel, buf, sizeof buf));
  }
  if (has_text(ax->ylabel)) {
    icl_plot_use_font(fr, rel * REL_LABEL);
    plmtex("l", sx * (0.8 * ch + ytw + 1.7 * chl) / chl, 0.5, 0.5, icl_plot_escape(ax->ylabel, buf, sizeof buf));
  }
  if (has_text(ax->title)) {
    icl_plot_use_font(fr, rel * REL_TITLE);
    plmtex("t", sy * 1.0, 0.5, 0.5, icl_plot_escape(ax->title, buf, sizeof buf));
  }
  icl_plot_draw_legend(fr, ax, &lim, vp, rel);
  return ICL_OK;
}
