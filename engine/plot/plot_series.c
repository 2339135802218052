/* The data layer of a set of axes: translucent bands first, then reference
 * lines, then the curves and their markers on top. NaN points split a curve
 * (and a band) into separate runs. */
#include <math.h>
#include <plplot.h>
#include <stdlib.h>

#include "plot/plot_internal.h"

/* y on the axis: log10 on a log axis, where non-positive values (only band
 * edges get here) go just below the window and are clipped. */
static double ypos(const icl_plot_limits *lim, double y) {
  if (!lim->yt.log) return y;
  return y > 0 ? log10(y) : lim->yt.lo - (lim->yt.hi - lim->yt.lo);
}

static int band_gap(const icl_plot_series *s, int64_t k) {
  return isnan(s->x[k]) || isnan(s->band_lo[k]) || isnan(s->band_hi[k]);
}

static void draw_band(const icl_plot_series *s, const icl_plot_limits *lim, int32_t rgb, double *px, double *py) {
  icl_plot_use_rgb(rgb, s->band_alpha > 0 ? s->band_alpha : 0.2);
  for (int64_t a = 0; a < s->n;) {
    if (band_gap(s, a)) {
      a++;
      continue;
    }
    int64_t b = a;
    while (b + 1 < s->n && !band_gap(s, b + 1)) b++;
    int64_t m = 0;
    for (int64_t k = a; k <= b; k++, m++) px[m] = s->x[k], py[m] = ypos(lim, s->band_lo[k]);
    for (int64_t k = b; k >= a; k--, m++) px[m] = s->x[k], py[m] = ypos(lim, s->band_hi[k]);
    if (b > a) plfill((PLINT)m, px, py);
    a = b + 1;
  }
}

static void draw_line(const icl_plot_frame *fr, const icl_plot_series *s, const icl_plot_limits *lim, int32_t rgb,
                      double *px, double *py) {
  icl_plot_use_rgb(rgb, 1.0);
  icl_plot_use_style(s->style, s->width > 0 ? s->width : 2.0, fr);
  for (int64_t a = 0; a < s->n;) {
    if (isnan(s->x[a]) || isnan(s->y[a])) {
      a++;
      continue;
    }
    int64_t m = 0, b = a;
    while (b < s->n && !isnan(s->x[b]) && !isnan(s->y[b])) px[m] = s->x[b], py[m++] = ypos(lim, s->y[b]), b++;
    if (m > 1) plline((PLINT)m, px, py);
    a = b;
  }
  pllsty(1);
}

static void draw_markers(const icl_plot_frame *fr, const icl_plot_series *s, const icl_plot_limits *lim,
                         int32_t rgb, double rel, double *px, double *py) {
  if (s->marker == ICL_PLOT_MARK_NONE) return;
  int64_t m = 0;
  for (int64_t k = 0; k < s->n; k++)
    if (!isnan(s->x[k]) && !isnan(s->y[k])) px[m] = s->x[k], py[m++] = ypos(lim, s->y[k]);
  icl_plot_use_rgb(rgb, 1.0);
  icl_plot_use_font(fr, rel * 0.8 * (s->marker_size > 0 ? s->marker_size : 1.0));
  plstring((PLINT)m, px, py, icl_plot_marker_glyph(s->marker));
}

static void draw_reflines(const icl_plot_frame *fr, const icl_plot_axes *ax, const icl_plot_limits *lim) {
  double px[2], py[2];
  for (int i = 0; i < ax->nvlines; i++) {
    const icl_plot_refline *r = &ax->vlines[i];
    icl_plot_use_rgb(icl_plot_refline_color(r), 1.0);
    icl_plot_use_style(r->style, r->width > 0 ? r->width : 1.5, fr);
    px[0] = px[1] = r->at, py[0] = lim->yt.lo, py[1] = lim->yt.hi;
    plline(2, px, py);
  }
  for (int i = 0; i < ax->nhlines; i++) {
    const icl_plot_refline *r = &ax->hlines[i];
    icl_plot_use_rgb(icl_plot_refline_color(r), 1.0);
    icl_plot_use_style(r->style, r->width > 0 ? r->width : 1.5, fr);
    px[0] = lim->xt.lo, px[1] = lim->xt.hi, py[0] = py[1] = ypos(lim, r->at);
    plline(2, px, py);
  }
  pllsty(1);
}

int icl_plot_draw_series(icl_ctx *ctx, const icl_plot_frame *fr, const icl_plot_axes *ax,
                         const icl_plot_limits *lim, double rel) {
  int64_t most = 2;
  for (int i = 0; i < ax->nseries; i++)
    if (ax->series[i].n > most) most = ax->series[i].n;
  double *px = malloc(2 * (size_t)most * sizeof *px), *py = malloc(2 * (size_t)most * sizeof *py);
  if (!px || !py) {
    free(px);
    free(py);
    return icl_errorf(ctx, ICL_ENOMEM, "plot: no memory for %lld points", (long long)most);
  }
  for (int i = 0; i < ax->nseries; i++)
    if (ax->series[i].band_lo) draw_band(&ax->series[i], lim, icl_plot_series_color(ax, i), px, py);
  draw_reflines(fr, ax, lim);
  for (int i = 0; i < ax->nseries; i++) draw_line(fr, &ax->series[i], lim, icl_plot_series_color(ax, i), px, py);
  for (int i = 0; i < ax->nseries; i++)
    draw_markers(fr, &ax->series[i], lim, icl_plot_series_color(ax, i), rel, px, py);
  free(px);
  free(py);
  return ICL_OK;
}
