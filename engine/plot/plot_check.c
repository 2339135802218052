/* Validation of a set of axes (series, bands, reference lines, limits).
 * Messages count series, points and lines from 1, as a reader does. */
#include <math.h>
#include <stdio.h>

#include "plot/plot_internal.h"

#define MAX_POINTS 50000000

typedef struct who {
  icl_ctx *ctx;
  const char *op;
  char name[ICL_PLOT_MAX_TEXT + 32]; /* "series 2 ('FIRE')" */
} who;

static int bad(who *w, const char *fmt, double v, long i) {
  char what[128];
  snprintf(what, sizeof what, fmt, i);
  return icl_errorf(w->ctx, isnan(v) || isinf(v) ? ICL_ENUMERIC : ICL_EINVAL, "%s: %s: %s = %g", w->op, w->name, what,
                    v);
}

static int check_color(who *w, int32_t c) {
  if (c == ICL_PLOT_AUTO_COLOR || (c >= 0 && c <= 0xFFFFFF)) return ICL_OK;
  return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: color %ld is not 0xRRGGBB", w->op, w->name, (long)c);
}

static int check_style(who *w, int style, double width) {
  if (style < 0 || style >= ICL_PLOT_NSTYLES)
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: unknown line style %d", w->op, w->name, style);
  if (!(width >= 0 && width <= 50))
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: width must be in (0, 50], got %g", w->op, w->name, width);
  return ICL_OK;
}

/* Points of one array: finite, or NaN (a gap); positive on a log axis. */
static int check_array(who *w, const char *arr, const double *v, int64_t n, int positive, int64_t *finite) {
  char fmt[64];
  snprintf(fmt, sizeof fmt, "%s[%%ld]", arr);
  for (int64_t i = 0; i < n; i++) {
    if (isnan(v[i])) continue;
    if (!isfinite(v[i])) return bad(w, fmt, v[i], (long)i + 1);
    if (fabs(v[i]) > ICL_PLOT_MAX_ABS)
      return icl_errorf(w->ctx, ICL_ERANGE, "%s: %s: %s[%ld] = %g is too large to plot (|v| <= %g)", w->op, w->name,
                        arr, (long)i + 1, v[i], ICL_PLOT_MAX_ABS);
    if (positive && v[i] <= 0) {
      return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: %s[%ld] = %g is not positive (logy)", w->op, w->name, arr,
                        (long)i + 1, v[i]);
    }
  }
  if (finite) {
    *finite = 0;
    for (int64_t i = 0; i < n; i++) *finite += !isnan(v[i]);
  }
  return ICL_OK;
}

static int check_series(who *w, const icl_plot_series *s, int logy) {
  int st = icl_plot_check_text(w->ctx, w->op, "series label", s->label);
  if (st) return st;
  if (s->n < 1) return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: needs at least one point", w->op, w->name);
  if (s->n > MAX_POINTS)
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: %lld points (at most %d)", w->op, w->name, (long long)s->n,
                      MAX_POINTS);
  if (!s->x || !s->y) return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: x and y are required", w->op, w->name);
  if ((st = check_array(w, "x", s->x, s->n, 0, NULL))) return st;
  if ((st = check_array(w, "y", s->y, s->n, logy, NULL))) return st;
  int64_t both = 0;
  for (int64_t i = 0; i < s->n; i++) both += !isnan(s->x[i]) && !isnan(s->y[i]);
  if (!both) return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: every point is a gap (NaN)", w->op, w->name);
  if (!s->band_lo != !s->band_hi)
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: a band needs both lo and hi", w->op, w->name);
  if (s->band_lo) {
    /* A log axis clips a band's non-positive lower edge rather than refusing it:
     * mean - std often dips below zero. */
    if ((st = check_array(w, "band.lo", s->band_lo, s->n, 0, NULL))) return st;
    if ((st = check_array(w, "band.hi", s->band_hi, s->n, logy, NULL))) return st;
    for (int64_t i = 0; i < s->n; i++)
      if (s->band_lo[i] > s->band_hi[i])
        return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: band.lo[%ld] = %g is above band.hi[%ld] = %g", w->op, w->name,
                          (long)i + 1, s->band_lo[i], (long)i + 1, s->band_hi[i]);
    if (!(s->band_alpha >= 0 && s->band_alpha <= 1))
      return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: band alpha must be in [0, 1], got %g", w->op, w->name,
                        s->band_alpha);
  }
  if ((st = check_color(w, s->color))) return st;
  if ((st = check_style(w, s->style, s->width))) return st;
  if (s->marker < 0 || s->marker >= ICL_PLOT_NMARKERS)
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: unknown marker %d", w->op, w->name, s->marker);
  if (!(s->marker_size >= 0 && s->marker_size <= 10))
    return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: marker_size must be in (0, 10], got %g", w->op, w->name,
                      s->marker_size);
  return ICL_OK;
}

static int check_reflines(who *w, const char *kind, const icl_plot_refline *r, int n, int positive) {
  for (int i = 0; i < n; i++) {
    snprintf(w->name, sizeof w->name, "%s %d%s%s%s", kind, i + 1, r[i].label ? " ('" : "",
             r[i].label ? r[i].label : "", r[i].label ? "')" : "");
    int st = icl_plot_check_text(w->ctx, w->op, "line label", r[i].label);
    if (st) return st;
    if (!isfinite(r[i].at)) return bad(w, "position", r[i].at, 0);
    if (fabs(r[i].at) > ICL_PLOT_MAX_ABS)
      return icl_errorf(w->ctx, ICL_ERANGE, "%s: %s: position %g is too large to plot", w->op, w->name, r[i].at);
    if (positive && r[i].at <= 0)
      return icl_errorf(w->ctx, ICL_EINVAL, "%s: %s: y = %g is not positive (logy)", w->op, w->name, r[i].at);
    if ((st = check_color(w, r[i].color))) return st;
    if ((st = check_style(w, r[i].style, r[i].width))) return st;
  }
  return ICL_OK;
}

static int check_lim(icl_ctx *ctx, const char *op, const char *name, const double *lim, int positive) {
  if (!isfinite(lim[0]) || !isfinite(lim[1]))
    return icl_errorf(ctx, ICL_ENUMERIC, "%s: %s = {%g, %g} is not finite", op, name, lim[0], lim[1]);
  if (fabs(lim[0]) > ICL_PLOT_MAX_ABS || fabs(lim[1]) > ICL_PLOT_MAX_ABS)
    return icl_errorf(ctx, ICL_ERANGE, "%s: %s = {%g, %g} is too large to plot", op, name, lim[0], lim[1]);
  if (!(lim[0] < lim[1]))
    return icl_errorf(ctx, ICL_EINVAL, "%s: %s = {%g, %g} must be increasing", op, name, lim[0], lim[1]);
  if (positive && lim[0] <= 0)
    return icl_errorf(ctx, ICL_EINVAL, "%s: %s = {%g, %g} must be positive with logy", op, name, lim[0], lim[1]);
  return ICL_OK;
}

int icl_plot_check_axes(icl_ctx *ctx, const char *op, const icl_plot_axes *ax) {
  int st = icl_plot_check_text(ctx, op, "title", ax->title);
  if (!st) st = icl_plot_check_text(ctx, op, "xlabel", ax->xlabel);
  if (!st) st = icl_plot_check_text(ctx, op, "ylabel", ax->ylabel);
  if (st) return st;
  if (ax->nseries < 1 || !ax->series) return icl_errorf(ctx, ICL_EINVAL, "%s: needs at least one series", op);
  if (ax->nseries > ICL_PLOT_MAX_SERIES)
    return icl_errorf(ctx, ICL_EINVAL, "%s: %d series (at most %d)", op, ax->nseries, ICL_PLOT_MAX_SERIES);
  if (ax->nvlines < 0 || ax->nhlines < 0 || ax->nvlines + ax->nhlines > ICL_PLOT_MAX_REFLINES ||
      (ax->nvlines && !ax->vlines) || (ax->nhlines && !ax->hlines))
    return icl_errorf(ctx, ICL_EINVAL, "%s: %d vlines + %d hlines (at most %d in all)", op, ax->nvlines, ax->nhlines,
                      ICL_PLOT_MAX_REFLINES);
  if (ax->legend < 0 || ax->legend >= ICL_PLOT_NLEGENDS)
    return icl_errorf(ctx, ICL_EINVAL, "%s: unknown legend position %d", op, ax->legend);
  if (ax->has_xlim && (st = check_lim(ctx, op, "xlim", ax->xlim, 0))) return st;
  if (ax->has_ylim && (st = check_lim(ctx, op, "ylim", ax->ylim, ax->logy))) return st;
  who w = {.ctx = ctx, .op = op};
  for (int i = 0; i < ax->nseries; i++) {
    const char *lab = ax->series[i].label;
    snprintf(w.name, sizeof w.name, "series %d%s%s%s", i + 1, lab ? " ('" : "", lab ? lab : "", lab ? "')" : "");
    if ((st = check_series(&w, &ax->series[i], ax->logy))) return st;
  }
  if ((st = check_reflines(&w, "vline", ax->vlines, ax->nvlines, 0))) return st;
  return check_reflines(&w, "hline", ax->hlines, ax->nhlines, ax->logy);
}
