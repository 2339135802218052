/* plot.heatmap: a matrix as coloured cells (row 1 at the top, square cells
 * when the page allows), with a colour bar. NaN cells stay blank. */
#include <math.h>
#include <plplot.h>
#include <stdlib.h>

#include "plot/plot_internal.h"

#define MAX_SIDE 8192
#define REL_LABEL 1.1
#define REL_TITLE 1.2

/* A perceptually uniform dark-blue to yellow map (viridis' anchor colours). */
static void use_colormap(void) {
  static const int32_t anchor[] = {0x440154, 0x482878, 0x3e4a89, 0x31688e, 0x26828e,
                                   0x1f9e89, 0x35b779, 0x6dcd59, 0xb4de2c, 0xfde725};
  enum { N = sizeof anchor / sizeof anchor[0] };
  PLFLT pos[N], r[N], g[N], b[N];
  for (int i = 0; i < N; i++) {
    pos[i] = (double)i / (N - 1);
    r[i] = ((anchor[i] >> 16) & 0xff) / 255.0;
    g[i] = ((anchor[i] >> 8) & 0xff) / 255.0;
    b[i] = (anchor[i] & 0xff) / 255.0;
  }
  plscmap1n(256);
  plscmap1l(1, N, pos, r, g, b, NULL);
}

static void zrange(const icl_plot_heatmap *hm, double *lo, double *hi) {
  if (hm->has_zlim) {
    *lo = hm->zlim[0], *hi = hm->zlim[1];
    return;
  }
  *lo = INFINITY, *hi = -INFINITY;
  for (int64_t i = 0; i < hm->rows * hm->cols; i++)
    if (!isnan(hm->z[i])) *lo = fmin(*lo, hm->z[i]), *hi = fmax(*hi, hm->z[i]);
  if (*hi <= *lo) *lo -= 0.5, *hi += 0.5;
}

/* plimagefr spreads n cells over [min, min + (n-1) * d] with d the spacing;
 * a single cell is doubled so that d stays finite. */
static int image(const double *z, int64_t rows, int64_t cols, double zlo, double zhi, double x0, double y0,
                 double dx, double dy) {
  int64_t nx = cols > 1 ? cols : 2, ny = rows > 1 ? rows : 2;
  double **col = malloc((size_t)nx * sizeof *col), *data = malloc((size_t)(nx * ny) * sizeof *data);
  if (!col || !data) {
    free(col);
    free(data);
    return ICL_ENOMEM;
  }
  for (int64_t c = 0; c < nx; c++) {
    col[c] = data + c * ny;
    for (int64_t r = 0; r < ny; r++) col[c][r] = z[(rows > 1 ? r : 0) * cols + (cols > 1 ? c : 0)];
  }
  double ex = cols > 1 ? dx : dx / 2, ey = rows > 1 ? dy : dy / 2;
  plimagefr((PLFLT_MATRIX)col, (PLINT)nx, (PLINT)ny, x0, x0 + (nx - 1) * ex, y0, y0 + (ny - 1) * ey, zlo, zhi, zlo,
            zhi, NULL, NULL);
  free(col);
  free(data);
  return ICL_OK;
}

static int colorbar(const icl_plot_frame *fr, const icl_plot_heatmap *hm, icl_plot_rect bar, double zlo,
                    double zhi, double ch) {
  enum { STEPS = 256 };
  double v[STEPS];
  for (int i = 0; i < STEPS; i++) v[i] = zlo + (i + 0.5) * (zhi - zlo) / STEPS;
  plvpor(bar.x0, bar.x1, bar.y0, bar.y1);
  plwind(0, 1, zlo, zhi);
  if (image(v, STEPS, 1, zlo, zhi, 0, zlo, 1, (zhi - zlo) / STEPS)) return ICL_ENOMEM;
  icl_plot_ticks xt, zt;
  icl_plot_make_ticks(&xt, 0, 1, 0, 0);
  icl_plot_make_ticks(&zt, zlo, zhi, 0, 0);
  icl_plot_use_font(fr, ch / fr->font);
  icl_plot_draw_box(&xt, &zt, fr, ICL_PLOT_BOX_COLORBAR);
  if (hm->zlabel && hm->zlabel[0]) {
    char buf[2 * ICL_PLOT_MAX_TEXT + 2];
    icl_plot_use_font(fr, ch * REL_LABEL / fr->font);
    double disp = (0.8 * ch + icl_plot_ticks_width(&zt, ch) + 1.6 * ch * REL_LABEL) / (ch * REL_LABEL);
    plmtex("r", disp, 0.5, 0.5, icl_plot_escape(hm->zlabel, buf, sizeof buf));
  }
  return ICL_OK;
}

static int draw(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec) {
  const icl_plot_heatmap *hm = spec;
  double zlo, zhi, ch = fr->font, chl = ch * REL_LABEL, cht = ch * REL_TITLE;
  zrange(hm, &zlo, &zhi);
  use_colormap();
  icl_plot_ticks xt, yt, zt;
  icl_plot_make_ticks(&xt, 0.5, hm->cols + 0.5, 0, 1);
  icl_plot_make_ticks(&yt, 0.5, hm->rows + 0.5, 0, 1);
  icl_plot_make_ticks(&zt, zlo, zhi, 0, 0);
  double ytw = icl_plot_ticks_width(&yt, ch);
  double left = 0.8 * ch + ytw + (hm->ylabel && hm->ylabel[0] ? 2.4 * chl : 0) + 0.8 * ch;
  double bottom = 2.6 * ch + (hm->xlabel && hm->xlabel[0] ? 2.0 * chl : 0) + 0.6 * ch;
  double top = hm->title && hm->title[0] ? 2.6 * cht : 1.2 * ch;
  double barw = 1.2 * ch * ICL_PLOT_EM_PER_CH, gap = 1.0 * ch * ICL_PLOT_EM_PER_CH;
  double right = 1.6 * ch;
  if (hm->colorbar)
    right = gap + barw + 0.8 * ch + icl_plot_ticks_width(&zt, ch) + (hm->zlabel && hm->zlabel[0] ? 2.4 * chl : 0) +
            0.8 * ch;
  double aw = fr->page_w - left - right, ah = fr->page_h - bottom - top;
  /* Square cells unless that would waste most of the page. */
  double cell = fmin(aw / hm->cols, ah / hm->rows), w = aw, h = ah;
  if (cell * hm->cols > aw / 3 && cell * hm->rows > ah / 3) w = cell * hm->cols, h = cell * hm->rows;
  double x0 = left + (aw - w) / 2, y0 = bottom + (ah - h) / 2;
  icl_plot_rect vp = {x0 / fr->page_w, (x0 + w) / fr->page_w, y0 / fr->page_h, (y0 + h) / fr->page_h};
  plvpor(vp.x0, vp.x1, vp.y0, vp.y1);
  plwind(0.5, hm->cols + 0.5, hm->rows + 0.5, 0.5);
  if (image(hm->z, hm->rows, hm->cols, zlo, zhi, 0.5, 0.5, 1, 1))
    return icl_errorf(ctx, ICL_ENOMEM, "plot.heatmap: no memory for %lld cells", (long long)(hm->rows * hm->cols));
  icl_plot_use_font(fr, 1.0);
  icl_plot_draw_box(&xt, &yt, fr, ICL_PLOT_BOX_IMAGE);
  char buf[2 * ICL_PLOT_MAX_TEXT + 2];
  plcol0(ICL_PLOT_COL_FG);
  if (hm->xlabel && hm->xlabel[0]) {
    icl_plot_use_font(fr, REL_LABEL);
    plmtex("b", (2.6 * ch + 1.4 * chl) / chl, 0.5, 0.5, icl_plot_escape(hm->xlabel, buf, sizeof buf));
  }
  if (hm->ylabel && hm->ylabel[0]) {
    icl_plot_use_font(fr, REL_LABEL);
    plmtex("l", (0.8 * ch + ytw + 1.7 * chl) / chl, 0.5, 0.5, icl_plot_escape(hm->ylabel, buf, sizeof buf));
  }
  if (hm->title && hm->title[0]) {
    icl_plot_use_font(fr, REL_TITLE);
    plmtex("t", 1.0, 0.5, 0.5, icl_plot_escape(hm->title, buf, sizeof buf));
  }
  if (!hm->colorbar) return ICL_OK;
  icl_plot_rect bar = {vp.x1 + gap / fr->page_w, vp.x1 + (gap + barw) / fr->page_w, vp.y0, vp.y1};
  if (colorbar(fr, hm, bar, zlo, zhi, ch))
    return icl_errorf(ctx, ICL_ENOMEM, "plot.heatmap: no memory for the colour bar");
  return ICL_OK;
}

static int check(icl_ctx *ctx, const char *op, const icl_plot_heatmap *hm) {
  int st = icl_plot_check_text(ctx, op, "title", hm->title);
  if (!st) st = icl_plot_check_text(ctx, op, "xlabel", hm->xlabel);
  if (!st) st = icl_plot_check_text(ctx, op, "ylabel", hm->ylabel);
  if (!st) st = icl_plot_check_text(ctx, op, "zlabel", hm->zlabel);
  if (st) return st;
  if (hm->rows < 1 || hm->cols < 1 || hm->rows > MAX_SIDE || hm->cols > MAX_SIDE)
    return icl_errorf(ctx, ICL_EINVAL, "%s: z is %lld x %lld (each side must be 1 to %d)", op, (long long)hm->rows,
                      (long long)hm->cols, MAX_SIDE);
  if (hm->rows * hm->cols > ICL_PLOT_MAX_CELLS)
    return icl_errorf(ctx, ICL_EINVAL, "%s: z has %lld cells (at most %d)", op, (long long)(hm->rows * hm->cols),
                      ICL_PLOT_MAX_CELLS);
  if (!hm->z) return icl_errorf(ctx, ICL_EINVAL, "%s: z is required", op);
  int64_t finite = 0;
  for (int64_t i = 0; i < hm->rows * hm->cols; i++) {
    if (isnan(hm->z[i])) continue;
    if (!isfinite(hm->z[i]))
      return icl_errorf(ctx, ICL_ENUMERIC, "%s: z[%lld][%lld] = %g", op, (long long)(i / hm->cols + 1),
                        (long long)(i % hm->cols + 1), hm->z[i]);
    if (fabs(hm->z[i]) > ICL_PLOT_MAX_ABS)
      return icl_errorf(ctx, ICL_ERANGE, "%s: z[%lld][%lld] = %g is too large to plot", op,
                        (long long)(i / hm->cols + 1), (long long)(i % hm->cols + 1), hm->z[i]);
    finite++;
  }
  if (!finite) return icl_errorf(ctx, ICL_EINVAL, "%s: every cell of z is NaN", op);
  if (hm->has_zlim) {
    if (!isfinite(hm->zlim[0]) || !isfinite(hm->zlim[1]))
      return icl_errorf(ctx, ICL_ENUMERIC, "%s: zlim = {%g, %g} is not finite", op, hm->zlim[0], hm->zlim[1]);
    if (fabs(hm->zlim[0]) > ICL_PLOT_MAX_ABS || fabs(hm->zlim[1]) > ICL_PLOT_MAX_ABS)
      return icl_errorf(ctx, ICL_ERANGE, "%s: zlim = {%g, %g} is too large to plot", op, hm->zlim[0], hm->zlim[1]);
    if (!(hm->zlim[0] < hm->zlim[1]))
      return icl_errorf(ctx, ICL_EINVAL, "%s: zlim = {%g, %g} must be increasing", op, hm->zlim[0], hm->zlim[1]);
  }
  return ICL_OK;
}

int icl_plot_heatmap_write(icl_ctx *ctx, const icl_plot_page *page, const icl_plot_heatmap *hm) {
  const char *op = "plot.heatmap";
  if (!hm) return icl_errorf(ctx, ICL_EINVAL, "%s: no heat map given", op);
  int st = icl_plot_check_page(ctx, op, page);
  if (!st) st = check(ctx, op, hm);
  if (!st) st = icl_plot_render(ctx, op, page, draw, hm);
  return st;
}
