/* Shared by the engine/plot files only: the guarded PLplot session, the
 * validators, tick and text helpers, and the drawing of one set of axes. */
#ifndef ICL_PLOT_INTERNAL_H
#define ICL_PLOT_INTERNAL_H

#include "plot/plot.h"

/* ---- the guarded session (plot_stream.c) -------------------------------- */

/* Layout units of a figure: everything is sized from the font so that
 * figures of any pixel size keep their proportions. */
typedef struct icl_plot_frame {
  double page_w, page_h; /* page size in mm (PLplot's physical units) */
  double font;           /* base (tick label) character height in mm */
  double px;             /* one pixel at 1000x700 scale, in mm */
  double scale;          /* pixels per pixel-at-1000x700 (line widths) */
} icl_plot_frame;

typedef int (*icl_plot_draw_fn)(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec);

/* Checks the page and the device, opens a fresh pngcairo stream on a
 * temporary file, calls draw, closes the stream and renames the file into
 * place. A PLplot abort or exit inside draw becomes an error (EDEVICE). */
int icl_plot_render(icl_ctx *ctx, const char *op, const icl_plot_page *page, icl_plot_draw_fn draw,
                    const void *spec);

/* ---- validation (plot_check.c, plot_check_page.c) ------------------------ */

int icl_plot_check_page(icl_ctx *ctx, const char *op, const icl_plot_page *page);
int icl_plot_check_text(icl_ctx *ctx, const char *op, const char *what, const char *s);
int icl_plot_check_axes(icl_ctx *ctx, const char *op, const icl_plot_axes *ax);

/* ---- colours and styles (plot_style.c) ----------------------------------- */

enum {
  ICL_PLOT_COL_BG = 0,    /* white */
  ICL_PLOT_COL_FG = 1,    /* black: axes and text */
  ICL_PLOT_COL_GRID = 2,  /* light grey */
  ICL_PLOT_COL_FRAME = 3, /* legend border */
  ICL_PLOT_COL_WORK = 4,  /* scratch entry, set right before use */
  ICL_PLOT_NCOL0 = 5
};

int32_t icl_plot_default_color(int i); /* the i-th colour of the default palette */
void icl_plot_use_rgb(int32_t rgb, double alpha);
void icl_plot_use_style(int style, double width_px, const icl_plot_frame *fr);
void icl_plot_use_font(const icl_plot_frame *fr, double rel);
/* UTF-8 glyph drawn for a marker ("" for none). */
const char *icl_plot_marker_glyph(int marker);
/* PLplot treats '#' as an escape character; this copies s with '#' doubled. */
const char *icl_plot_escape(const char *s, char *buf, size_t cap);
/* Em size of the font relative to PLplot's character height (measured). */
#define ICL_PLOT_EM_PER_CH 1.5
/* Rough rendered width of s in mm at character height ch (DejaVu Sans). */
double icl_plot_text_width(const char *s, double ch);

/* ---- ticks (plot_ticks.c) ------------------------------------------------ */

typedef struct icl_plot_ticks {
  double lo, hi;  /* axis range (log10 of the data on a log axis) */
  double step;    /* major tick spacing in axis units */
  int log;        /* decades on a log axis */
  int decimals;   /* digits after the point in labels */
  int sci;        /* labels as 10^k */
} icl_plot_ticks;

/* Range of the finite values, widened by a margin; lo == hi is widened too. */
void icl_plot_auto_range(double lo, double hi, int log, double *out_lo, double *out_hi);
void icl_plot_make_ticks(icl_plot_ticks *t, double lo, double hi, int log, int integer);
/* Label of a tick at v in axis units (the exponent on a log axis). */
void icl_plot_tick_label(const icl_plot_ticks *t, double v, char *buf, size_t cap);
/* Width in mm of the widest tick label. */
double icl_plot_ticks_width(const icl_plot_ticks *t, double ch);
/* Light grid lines at the major ticks, then (after the data) the frame with
 * ticks and labels, on the current viewport and window. */
void icl_plot_draw_grid(const icl_plot_ticks *xt, const icl_plot_ticks *yt, const icl_plot_frame *fr);
enum { ICL_PLOT_BOX_LINES, ICL_PLOT_BOX_IMAGE, ICL_PLOT_BOX_COLORBAR };
void icl_plot_draw_box(const icl_plot_ticks *xt, const icl_plot_ticks *yt, const icl_plot_frame *fr, int mode);

/* ---- one set of axes (plot_axes.c, plot_series.c, plot_legend.c) --------- */

typedef struct icl_plot_rect {
  double x0, x1, y0, y1; /* normalised page coordinates */
} icl_plot_rect;

typedef struct icl_plot_limits {
  icl_plot_ticks xt, yt;
} icl_plot_limits;

/* Draws ax inside region (title, labels, frame, data, legend); rel scales
 * every font (1 for a full figure, smaller in a grid). */
int icl_plot_draw_axes(icl_ctx *ctx, const icl_plot_frame *fr, const icl_plot_axes *ax, icl_plot_rect region,
                       double rel);
/* Bands, reference lines, lines and markers, clipped to the axes. */
int icl_plot_draw_series(icl_ctx *ctx, const icl_plot_frame *fr, const icl_plot_axes *ax,
                         const icl_plot_limits *lim, double rel);
/* Legend box size in mm; drawing it at its place relative to the axes
 * viewport vp (normalised page coordinates). */
void icl_plot_legend_size(const icl_plot_frame *fr, const icl_plot_axes *ax, double rel, double *w, double *h);
void icl_plot_draw_legend(const icl_plot_frame *fr, const icl_plot_axes *ax, const icl_plot_limits *lim,
                          icl_plot_rect vp, double rel);

/* Colour actually used for series i (its own or the palette's). */
int32_t icl_plot_series_color(const icl_plot_axes *ax, int i);
int32_t icl_plot_refline_color(const icl_plot_refline *r);

#endif
