/* Colours, line styles, fonts and text helpers shared by every figure kind. */
#include <math.h>
#include <plplot.h>
#include <string.h>

#include "plot/plot_internal.h"

/* The default palette (the widely used "category 10" colours): distinct
 * in colour and in lightness, and fine on white. */
static const int32_t PALETTE[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                  0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

int32_t icl_plot_default_color(int i) {
  int n = (int)(sizeof PALETTE / sizeof PALETTE[0]);
  return PALETTE[((i % n) + n) % n];
}

int32_t icl_plot_series_color(const icl_plot_axes *ax, int i) {
  if (ax->series[i].color != ICL_PLOT_AUTO_COLOR) return ax->series[i].color;
  int k = 0; /* count only the auto-coloured series before i */
  for (int j = 0; j < i; j++) k += ax->series[j].color == ICL_PLOT_AUTO_COLOR;
  return icl_plot_default_color(k);
}

int32_t icl_plot_refline_color(const icl_plot_refline *r) {
  return r->color == ICL_PLOT_AUTO_COLOR ? 0x404040 : r->color;
}

void icl_plot_use_rgb(int32_t rgb, double alpha) {
  plscol0a(ICL_PLOT_COL_WORK, (rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff, alpha);
  plcol0(ICL_PLOT_COL_WORK);
}

/* Dash patterns are in micrometres on the page and grow with the line width,
 * so thick dashed lines still read as dashed. */
void icl_plot_use_style(int style, double width_px, const icl_plot_frame *fr) {
  double w = width_px > 0 ? width_px : 1;
  plwidth(w * fr->scale);
  double um = 1000.0 * fr->px * (w < 1.2 ? 1.2 : w);
  PLINT mark[2], space[2];
  switch (style) {
  case ICL_PLOT_DASHED:
    mark[0] = (PLINT)(3.7 * um), space[0] = (PLINT)(1.8 * um);
    plstyl(1, mark, space);
    break;
  case ICL_PLOT_DOTTED:
    mark[0] = (PLINT)(1.0 * um), space[0] = (PLINT)(1.6 * um);
    plstyl(1, mark, space);
    break;
  case ICL_PLOT_DASHDOT:
    mark[0] = (PLINT)(4.0 * um), space[0] = (PLINT)(1.6 * um);
    mark[1] = (PLINT)(1.0 * um), space[1] = (PLINT)(1.6 * um);
    plstyl(2, mark, space);
    break;
  default: pllsty(1); break;
  }
}

void icl_plot_use_font(const icl_plot_frame *fr, double rel) { plschr(fr->font * rel, 1.0); }

const char *icl_plot_marker_glyph(int marker) {
  static const char *const glyph[ICL_PLOT_NMARKERS] = {"", "●", "■", "▲", "◆", "+", "×"};
  return marker > 0 && marker < ICL_PLOT_NMARKERS ? glyph[marker] : "";
}

const char *icl_plot_escape(const char *s, char *buf, size_t cap) {
  size_t j = 0;
  if (!s) s = "";
  for (size_t i = 0; s[i] && j + 2 < cap; i++) {
    if (s[i] == '#') buf[j++] = '#';
    buf[j++] = s[i];
  }
  buf[j] = '\0';
  return buf;
}

/* Advance widths of DejaVu Sans in em, by character class; PLplot has no
 * public way to measure text, and a slight overestimate only costs margin. */
double icl_plot_text_width(const char *s, double ch) {
  double em = 0;
  if (!s) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned c = *p;
    if ((c & 0xC0) == 0x80) continue; /* UTF-8 continuation byte */
    if (c >= '0' && c <= '9') em += 0.64;
    else if (c >= 'A' && c <= 'Z') em += 0.72;
    else if (c == 'i' || c == 'l' || c == 'j' || c == 't' || c == 'f' || c == 'r') em += 0.38;
    else if (c == 'm' || c == 'w') em += 0.95;
    else if (c >= 'a' && c <= 'z') em += 0.60;
    else if (c == ' ') em += 0.32;
    else if (c >= 0x80) em += 0.80;
    else em += 0.45;
  }
  return em * ch * ICL_PLOT_EM_PER_CH;
}

const char *icl_plot_style_name(int style) {
  static const char *const n[ICL_PLOT_NSTYLES] = {"solid", "dashed", "dotted", "dashdot"};
  return style >= 0 && style < ICL_PLOT_NSTYLES ? n[style] : NULL;
}

const char *icl_plot_marker_name(int marker) {
  static const char *const n[ICL_PLOT_NMARKERS] = {"none", "circle", "square", "triangle", "diamond", "plus", "cross"};
  return marker >= 0 && marker < ICL_PLOT_NMARKERS ? n[marker] : NULL;
}

const char *icl_plot_legend_name(int legend) {
  static const char *const n[ICL_PLOT_NLEGENDS] = {"best",        "top right", "top left", "bottom right",
                                                   "bottom left", "outside",   "none"};
  return legend >= 0 && legend < ICL_PLOT_NLEGENDS ? n[legend] : NULL;
}
