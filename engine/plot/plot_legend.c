/* The legend, drawn by hand rather than with pllegend so that its samples
 * show the real dash pattern, width, marker and band of each entry, and so
 * that its size is known before it is placed. "best" picks, of the corners and
 * a lattice of places in between, the one whose box covers the fewest sampled
 * points of the curves (corners first on a tie). */
#include <math.h>
#include <plplot.h>

#include "plot/plot_internal.h"

#define REL_LEGEND 0.95

typedef struct entry {
  const char *label;
  int32_t rgb;
  int style, marker, band;
  double width;
} entry;

static int entries(const icl_plot_axes *ax, entry *out) {
  int n = 0;
  for (int i = 0; i < ax->nseries; i++) {
    const icl_plot_series *s = &ax->series[i];
    if (!s->label || !s->label[0]) continue;
    out[n++] = (entry){s->label, icl_plot_series_color(ax, i), s->style, s->marker, s->band_lo != NULL,
                       s->width > 0 ? s->width : 2.0};
  }
  for (int k = 0; k < 2; k++) {
    const icl_plot_refline *r = k ? ax->hlines : ax->vlines;
    int nr = k ? ax->nhlines : ax->nvlines;
    for (int i = 0; i < nr; i++)
      if (r[i].label && r[i].label[0])
        out[n++] = (entry){r[i].label, icl_plot_refline_color(&r[i]), r[i].style, 0, 0,
                           r[i].width > 0 ? r[i].width : 1.5};
  }
  return n;
}

typedef struct geom {
  double ch, em, pad, row, sample, gap, w, h;
} geom;

static int measure(const icl_plot_frame *fr, const icl_plot_axes *ax, double rel, entry *e, geom *g) {
  int n = entries(ax, e);
  g->ch = fr->font * rel * REL_LEGEND;
  g->em = g->ch * ICL_PLOT_EM_PER_CH;
  g->pad = 0.5 * g->em;
  g->row = 1.35 * g->em;
  g->sample = 2.2 * g->em;
  g->gap = 0.5 * g->em;
  double tw = 0;
  for (int i = 0; i < n; i++) tw = fmax(tw, icl_plot_text_width(e[i].label, g->ch));
  g->w = n ? 2 * g->pad + g->sample + g->gap + tw : 0;
  g->h = n ? 2 * g->pad + n * g->row : 0;
  return n;
}

void icl_plot_legend_size(const icl_plot_frame *fr, const icl_plot_axes *ax, double rel, double *w, double *h) {
  entry e[ICL_PLOT_MAX_SERIES + ICL_PLOT_MAX_REFLINES];
  geom g;
  measure(fr, ax, rel, e, &g);
  *w = g.w;
  *h = g.h;
}

static double ypos(const icl_plot_limits *lim, double y) { return lim->yt.log ? log10(y) : y; }

/* Sampled points of every curve (and crossing reference lines) inside a box
 * given in axis units. */
static double hits_of(const icl_plot_limits *lim, const double *x, const double *y, int64_t n, double x0,
                      double x1, double y0, double y1) {
  double hits = 0;
  int sub = n > 4096 ? 1 : 8;
  for (int64_t k = 0; k < n; k++) {
    if (isnan(x[k]) || isnan(y[k]) || (lim->yt.log && y[k] <= 0)) continue;
    int seg = k + 1 < n && !isnan(x[k + 1]) && !isnan(y[k + 1]) && !(lim->yt.log && y[k + 1] <= 0);
    double ya = ypos(lim, y[k]), yb = seg ? ypos(lim, y[k + 1]) : ya, xb = seg ? x[k + 1] : x[k];
    for (int j = 0; j < (seg ? sub : 1); j++) {
      double t = (double)j / sub, px = x[k] + t * (xb - x[k]), py = ya + t * (yb - ya);
      hits += px >= x0 && px <= x1 && py >= y0 && py <= y1;
    }
  }
  return hits;
}

/* Sampled points of every curve and band edge (and crossing reference lines)
 * inside a box given in axis units. */
static double cover(const icl_plot_axes *ax, const icl_plot_limits *lim, double x0, double x1, double y0,
                    double y1) {
  double hits = 0;
  for (int i = 0; i < ax->nseries; i++) {
    const icl_plot_series *s = &ax->series[i];
    hits += hits_of(lim, s->x, s->y, s->n, x0, x1, y0, y1);
    if (s->band_lo) {
      hits += 0.5 * hits_of(lim, s->x, s->band_lo, s->n, x0, x1, y0, y1);
      hits += 0.5 * hits_of(lim, s->x, s->band_hi, s->n, x0, x1, y0, y1);
    }
  }
  for (int i = 0; i < ax->nvlines; i++) hits += 20 * (ax->vlines[i].at >= x0 && ax->vlines[i].at <= x1);
  for (int i = 0; i < ax->nhlines; i++) {
    double y = ypos(lim, ax->hlines[i].at);
    hits += 20 * (y >= y0 && y <= y1);
  }
  return hits;
}

/* Lower-left corner of the box in mm from the axes' lower-left corner. */
static void place(const icl_plot_axes *ax, const icl_plot_limits *lim, const geom *g, double vw, double vh,
                  double *bx, double *by) {
  double in = 0.6 * g->em, r = vw - in - g->w, t = vh - in - g->h;
  /* TR, TL, BR, BL; then, for "best", a 7x7 lattice of places in between */
  double cx[4 + 49] = {r, in, r, in}, cy[4 + 49] = {t, t, in, in};
  int ncand = 4;
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 7; j++, ncand++) cx[ncand] = r - (r - in) * j / 6, cy[ncand] = t - (t - in) * i / 6;
  int pick = 0;
  switch (ax->legend) {
  case ICL_PLOT_LEGEND_TOP_LEFT: pick = 1; break;
  case ICL_PLOT_LEGEND_BOTTOM_RIGHT: pick = 2; break;
  case ICL_PLOT_LEGEND_BOTTOM_LEFT: pick = 3; break;
  case ICL_PLOT_LEGEND_OUTSIDE:
    *bx = vw + 1.0 * g->em;
    *by = vh - g->h;
    return;
  case ICL_PLOT_LEGEND_BEST: {
    double best = INFINITY;
    double sx = (lim->xt.hi - lim->xt.lo) / vw, sy = (lim->yt.hi - lim->yt.lo) / vh;
    int64_t total = 0;
    for (int i = 0; i < ax->nseries; i++) total += ax->series[i].n;
    if (total > 200000) ncand = 4; /* keep huge figures fast */
    double clear = 0.5 * g->em; /* keep some air between the box and the data */
    for (int c = 0; c < ncand; c++) {
      double x0 = lim->xt.lo + (cx[c] - clear) * sx, y0 = lim->yt.lo + (cy[c] - clear) * sy;
      double v = cover(ax, lim, x0, x0 + (g->w + 2 * clear) * sx, y0, y0 + (g->h + 2 * clear) * sy);
      if (v < best) best = v, pick = c;
    }
    break;
  }
  default: break;
  }
  *bx = cx[pick];
  *by = cy[pick];
}

static void draw_entry(const icl_plot_frame *fr, const entry *e, const geom *g, double yc, double rel) {
  double x[2] = {g->pad, g->pad + g->sample}, y[2] = {yc, yc};
  if (e->band) {
    double bx[4] = {x[0], x[1], x[1], x[0]}, h = 0.3 * g->row;
    double by[4] = {yc - h, yc - h, yc + h, yc + h};
    icl_plot_use_rgb(e->rgb, 0.2);
    plfill(4, bx, by);
  }
  icl_plot_use_rgb(e->rgb, 1.0);
  icl_plot_use_style(e->style, e->width, fr);
  plline(2, x, y);
  pllsty(1);
  if (e->marker) {
    double xm = 0.5 * (x[0] + x[1]);
    icl_plot_use_font(fr, rel * 0.8);
    plstring(1, &xm, &yc, icl_plot_marker_glyph(e->marker));
  }
  char buf[2 * ICL_PLOT_MAX_TEXT + 2];
  plcol0(ICL_PLOT_COL_FG);
  icl_plot_use_font(fr, rel * REL_LEGEND);
  plptex(x[1] + g->gap, yc, 1, 0, 0, icl_plot_escape(e->label, buf, sizeof buf));
}

void icl_plot_draw_legend(const icl_plot_frame *fr, const icl_plot_axes *ax, const icl_plot_limits *lim,
                          icl_plot_rect vp, double rel) {
  if (ax->legend == ICL_PLOT_LEGEND_NONE) return;
  entry e[ICL_PLOT_MAX_SERIES + ICL_PLOT_MAX_REFLINES];
  geom g;
  int n = measure(fr, ax, rel, e, &g);
  if (!n) return;
  double vw = (vp.x1 - vp.x0) * fr->page_w, vh = (vp.y1 - vp.y0) * fr->page_h, bx, by;
  place(ax, lim, &g, vw, vh, &bx, &by);
  double nx = vp.x0 + bx / fr->page_w, ny = vp.y0 + by / fr->page_h;
  /* The window reaches a little past the box: lines on the clip boundary
   * itself would be dropped. */
  double m = 2 * fr->px, ex = m / fr->page_w, ey = m / fr->page_h;
  plvpor(nx - ex, nx + g.w / fr->page_w + ex, ny - ey, ny + g.h / fr->page_h + ey);
  plwind(-m, g.w + m, -m, g.h + m);
  double rx[5] = {0, g.w, g.w, 0, 0}, ry[5] = {0, 0, g.h, g.h, 0};
  icl_plot_use_rgb(0xffffff, 0.85);
  plfill(4, rx, ry);
  pllsty(1);
  plwidth(fr->scale);
  plcol0(ICL_PLOT_COL_FRAME);
  plline(5, rx, ry);
  for (int i = 0; i < n; i++) draw_entry(fr, &e[i], &g, g.h - g.pad - (i + 0.5) * g.row, rel);
}
