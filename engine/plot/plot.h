/* Figures written as PNG files through PLplot's pngcairo device: line plots
 * (series with bands, reference lines, legend), heat maps and grids of small
 * line plots. Everything is validated before PLplot sees it, because PLplot
 * exits the process on some bad input; each figure gets its own PLplot
 * stream, and the file appears atomically (rendered to "<stem>.tmp.png",
 * then renamed). Error messages number series, points, lines and panels
 * from 1, as a reader counts. PLplot keeps global state: call these from one
 * thread at a time. */
#ifndef ICL_PLOT_H
#define ICL_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

#define ICL_PLOT_DEFAULT_WIDTH 1000
#define ICL_PLOT_DEFAULT_HEIGHT 700
#define ICL_PLOT_MIN_SIDE 64
#define ICL_PLOT_MAX_SIDE 8192
#define ICL_PLOT_MAX_TEXT 256     /* bytes in a title, label or legend entry */
#define ICL_PLOT_MAX_SERIES 64    /* per panel */
#define ICL_PLOT_MAX_REFLINES 32  /* vertical plus horizontal, per panel */
#define ICL_PLOT_MAX_GRID_SIDE 16 /* rows and cols of a panel grid */
#define ICL_PLOT_MAX_CELLS (1 << 24) /* heat map rows * cols */
#define ICL_PLOT_AUTO_COLOR (-1)  /* take the next colour of the default palette */
#define ICL_PLOT_MAX_ABS 1e300    /* larger magnitudes are refused: ranges must stay finite */

typedef enum icl_plot_style {
  ICL_PLOT_SOLID = 0,
  ICL_PLOT_DASHED,
  ICL_PLOT_DOTTED,
  ICL_PLOT_DASHDOT,
  ICL_PLOT_NSTYLES
} icl_plot_style;

typedef enum icl_plot_marker {
  ICL_PLOT_MARK_NONE = 0,
  ICL_PLOT_MARK_CIRCLE,
  ICL_PLOT_MARK_SQUARE,
  ICL_PLOT_MARK_TRIANGLE,
  ICL_PLOT_MARK_DIAMOND,
  ICL_PLOT_MARK_PLUS,
  ICL_PLOT_MARK_CROSS,
  ICL_PLOT_NMARKERS
} icl_plot_marker;

typedef enum icl_plot_legend {
  ICL_PLOT_LEGEND_BEST = 0, /* the place inside the axes covering the fewest points */
  ICL_PLOT_LEGEND_TOP_RIGHT,
  ICL_PLOT_LEGEND_TOP_LEFT,
  ICL_PLOT_LEGEND_BOTTOM_RIGHT,
  ICL_PLOT_LEGEND_BOTTOM_LEFT,
  ICL_PLOT_LEGEND_OUTSIDE, /* right of the axes; the axes shrink to make room */
  ICL_PLOT_LEGEND_NONE,
  ICL_PLOT_NLEGENDS
} icl_plot_legend;

/* One curve. NaN in x or y marks a gap (the line breaks there); any other
 * non-finite value is an error. band_lo/band_hi (both or neither, n points
 * each, NaN = gap) shade the area between them in the series' colour. */
typedef struct icl_plot_series {
  const double *x, *y;
  int64_t n;
  const char *label;      /* NULL or "": not in the legend */
  int32_t color;          /* 0xRRGGBB, or ICL_PLOT_AUTO_COLOR */
  int style;              /* icl_plot_style */
  double width;           /* line width in pixels at 1000x700; 0 = default (2) */
  int marker;             /* icl_plot_marker */
  double marker_size;     /* relative to the tick-label font; 0 = default (1) */
  const double *band_lo, *band_hi;
  double band_alpha;      /* 0 = default (0.2) */
} icl_plot_series;

/* A vertical (x = at) or horizontal (y = at) reference line across the axes. */
typedef struct icl_plot_refline {
  double at;
  const char *label;      /* NULL or "": not in the legend */
  int32_t color;          /* 0xRRGGBB, or ICL_PLOT_AUTO_COLOR (dark grey) */
  int style;
  double width;           /* 0 = default (1.5) */
} icl_plot_refline;

/* One set of axes: what plot.lines draws, and each panel of a grid. */
typedef struct icl_plot_axes {
  const char *title, *xlabel, *ylabel; /* NULL = none */
  const icl_plot_series *series;
  int nseries;
  const icl_plot_refline *vlines, *hlines;
  int nvlines, nhlines;
  int has_xlim, has_ylim; /* else automatic, with a small margin */
  double xlim[2], ylim[2];
  int logy;
  int legend;             /* icl_plot_legend */
  int grid;               /* light grid lines at the major ticks */
} icl_plot_axes;

typedef struct icl_plot_page {
  const char *file; /* must end in .png; its directory must exist and be writable */
  int width, height; /* pixels; 0 = default */
} icl_plot_page;

/* z is rows x cols, row-major; row 1 is drawn at the top (matrix layout, as
 * attention maps are read). NaN cells are left blank (e.g. a causal mask). */
typedef struct icl_plot_heatmap {
  const char *title, *xlabel, *ylabel, *zlabel;
  const double *z;
  int64_t rows, cols;
  int has_zlim;
  double zlim[2];
  int colorbar;
} icl_plot_heatmap;

typedef struct icl_plot_grid {
  const char *title, *xlabel, *ylabel; /* figure-wide; panels may have their own */
  int rows, cols;
  const icl_plot_axes *panels; /* filled row by row; npanels <= rows * cols */
  int npanels;
} icl_plot_grid;

/* Zero-initialised defaults (then set the fields you need). */
icl_plot_series icl_plot_series_init(void);
icl_plot_refline icl_plot_refline_init(void);
icl_plot_axes icl_plot_axes_init(void);

int icl_plot_lines(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_axes *axes);
int icl_plot_heatmap_write(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_heatmap *hm);
int icl_plot_grid_write(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_grid *grid);

/* PLplot's output devices: fills names[0..*n) (static strings) with at most
 * max entries. icl_plot_has_device says whether one named device exists. */
int icl_plot_devices(icl_ctx *ctx, const char **names, int max, int *n);
int icl_plot_has_device(icl_ctx *ctx, const char *name);

/* Names used by the Lua binding and in messages. */
const char *icl_plot_style_name(int style);
const char *icl_plot_marker_name(int marker);
const char *icl_plot_legend_name(int legend);

#endif
