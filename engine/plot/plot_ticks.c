/* Axis ranges, tick spacing and tick labels. Labels are written by our own
 * formatter (plslabelfunc) so that an axis never gets PLplot's separate
 * "(x10^3)" scale note and the label widths are known for the margins. */
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <string.h>

#include "plot/plot_internal.h"

#define MARGIN 0.04 /* of the data range, on each side */

void icl_plot_auto_range(double lo, double hi, int log, double *out_lo, double *out_hi) {
  if (log) {
    lo = log10(lo);
    hi = log10(hi);
  }
  if (hi - lo <= 1e-12 * (fabs(lo) + fabs(hi)) || hi <= lo) {
    double d = log ? 0.5 : (fabs(lo) > 0 ? 0.1 * fabs(lo) : 1.0);
    *out_lo = lo - d;
    *out_hi = hi + d;
    return;
  }
  double m = MARGIN * (hi - lo);
  *out_lo = lo - m;
  *out_hi = hi + m;
}

static double nice_step(double range, double target) {
  double raw = range / target;
  double mag = pow(10, floor(log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

void icl_plot_make_ticks(icl_plot_ticks *t, double lo, double hi, int log, int integer) {
  memset(t, 0, sizeof *t);
  t->lo = lo;
  t->hi = hi;
  t->log = log;
  double range = hi - lo;
  if (log) {
    t->step = range > 8 ? ceil(range / 8) : 1;
    t->sci = lo < -2.5 || hi > 4.5;
    t->decimals = lo < 0 ? (int)ceil(-lo) : 0;
    return;
  }
  t->step = nice_step(range, 6);
  if (integer && t->step < 1) t->step = 1;
  double big = fmax(fabs(lo), fabs(hi));
  t->sci = big >= 1e6 || (big < 1e-3 && big > 0);
  t->decimals = t->step >= 1 ? 0 : (int)ceil(-log10(t->step) - 1e-9);
}

void icl_plot_tick_label(const icl_plot_ticks *t, double v, char *buf, size_t cap) {
  if (t->log) {
    double e = round(v);
    if (t->sci) snprintf(buf, cap, "10#u%d#d", (int)e);
    else snprintf(buf, cap, "%.*f", e < 0 ? (int)-e : 0, pow(10, e));
    return;
  }
  if (fabs(v) < 1e-9 * t->step) v = 0; /* no "-0" */
  if (t->sci) snprintf(buf, cap, "%.3g", v);
  else snprintf(buf, cap, "%.*f", t->decimals, v);
}

/* A log axis spanning less than a couple of decades would show one or two
 * labels at most (the decades), leaving the reader to guess the scale: label
 * some in-between values too (their minor ticks are already drawn). */
static int log_extras(const icl_plot_ticks *t, double *at, int cap) {
  static const double m_short[] = {2, 3, 4, 5, 6, 7, 8, 9}, m_mid[] = {2, 3, 5}, m_long[] = {2, 5};
  double range = t->hi - t->lo;
  const double *m;
  int nm;
  if (!t->log || t->sci || range > 2.5) return 0;
  if (range <= 0.8) m = m_short, nm = 8;
  else if (range <= 1.6) m = m_mid, nm = 3;
  else m = m_long, nm = 2;
  int n = 0;
  for (double e = floor(t->lo); e <= ceil(t->hi) && n < cap; e++)
    for (int i = 0; i < nm && n < cap; i++) {
      double v = e + log10(m[i]);
      if (v >= t->lo && v <= t->hi) at[n++] = v;
    }
  return n;
}

static void log_extra_label(double v, char *buf, size_t cap) {
  double x = pow(10, v);
  int dec = v < 0 ? (int)ceil(-v) : 0;
  snprintf(buf, cap, "%.*f", dec, x);
}

double icl_plot_ticks_width(const icl_plot_ticks *t, double ch) {
  double w = 0;
  char buf[64];
  double first = ceil(t->lo / t->step - 1e-9) * t->step;
  for (int i = 0; i < 64; i++) {
    double v = first + i * t->step;
    if (v > t->hi + 1e-9 * t->step) break;
    icl_plot_tick_label(t, v, buf, sizeof buf);
    /* "10#u-3#d" renders as a 10 and a smaller exponent */
    double lw = t->log && t->sci ? icl_plot_text_width("10", ch) + 0.8 * icl_plot_text_width(buf + 4, ch)
                                 : icl_plot_text_width(buf, ch);
    if (lw > w) w = lw;
  }
  double at[32];
  int n = log_extras(t, at, 32);
  for (int i = 0; i < n; i++) {
    log_extra_label(at[i], buf, sizeof buf);
    double lw = icl_plot_text_width(buf, ch);
    if (lw > w) w = lw;
  }
  return w;
}

typedef struct labels {
  const icl_plot_ticks *x, *y;
} labels;

static void label_cb(PLINT axis, PLFLT value, PLCHAR_NC_VECTOR out, PLINT len, PLPointer data) {
  const labels *l = data;
  const icl_plot_ticks *t = axis == PL_Y_AXIS ? l->y : l->x;
  icl_plot_tick_label(t, value, out, (size_t)len);
}

void icl_plot_draw_grid(const icl_plot_ticks *xt, const icl_plot_ticks *yt, const icl_plot_frame *fr) {
  pllsty(1);
  plwidth(fr->scale);
  plcol0(ICL_PLOT_COL_GRID);
  plbox(xt->log ? "gl" : "g", xt->step, 0, yt->log ? "gl" : "g", yt->step, 0);
}

void icl_plot_draw_box(const icl_plot_ticks *xt, const icl_plot_ticks *yt, const icl_plot_frame *fr, int mode) {
  labels l = {xt, yt};
  plslabelfunc(label_cb, &l);
  plsmaj(5.0 * fr->px, 1.0);
  plsmin(2.8 * fr->px, 1.0);
  pllsty(1);
  plwidth(fr->scale);
  plcol0(ICL_PLOT_COL_FG);
  char xopt[16], yopt[16];
  const char *xl = xt->log ? "ls" : "", *yl = yt->log ? "ls" : "";
  if (mode == ICL_PLOT_BOX_LINES) {
    /* Ticks point inwards on all four sides; minor ticks only between the
     * decades of a log axis. */
    snprintf(xopt, sizeof xopt, "bcnto%s", xl);
    snprintf(yopt, sizeof yopt, "bcntov%s", yl);
  } else {
    /* Outward ticks on images (inside they would hide cells), only on the
     * labelled sides so the title stays clear. */
    plbox("bc", 0, 0, "bc", 0, 0);
    snprintf(xopt, sizeof xopt, "%s", mode == ICL_PLOT_BOX_COLORBAR ? "" : "bntoi");
    snprintf(yopt, sizeof yopt, "%s%s", mode == ICL_PLOT_BOX_COLORBAR ? "cmtoiv" : "bntoiv", yl);
  }
  plbox(xopt, xt->step, 0, yopt, yt->step, 0);
  plslabelfunc(NULL, NULL);
  if (mode == ICL_PLOT_BOX_LINES) {
    /* where PLplot writes its own numeric labels (plbox's displacement) */
    double at[32];
    char buf[64];
    int n = log_extras(yt, at, 32);
    for (int i = 0; i < n; i++) {
      log_extra_label(at[i], buf, sizeof buf);
      plmtex("lv", 0.5, (at[i] - yt->lo) / (yt->hi - yt->lo), 1.0, buf);
    }
    n = log_extras(xt, at, 32);
    for (int i = 0; i < n; i++) {
      log_extra_label(at[i], buf, sizeof buf);
      plmtex("b", 1.5, (at[i] - xt->lo) / (xt->hi - xt->lo), 0.5, buf);
    }
  }
}
