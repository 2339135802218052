/* Plotting: valid figures become PNG files (written atomically), every kind
 * of bad input is an error rather than a crash or an exit, and PLplot's own
 * exit path is caught. */
#include <dirent.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "plot/plot.h"
#include "plot/plot_internal.h"

/* Exported by libplplot but declared only in its private plplotP.h. */
void plexit(const char *errormsg);
void plabort(const char *errormsg);

static char g_dir[64];

static const char *path(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static long file_size(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* A PNG signature and more than a blank page's worth of bytes. */
static int png_ok(const char *p, long min_bytes) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8] = {0};
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  size_t got = fread(head, 1, 8, f);
  fclose(f);
  return got == 8 && memcmp(head, sig, 8) == 0 && file_size(p) >= min_bytes;
}

/* No "*.tmp.png" left behind in the test directory. */
static int no_temp_files(void) {
  DIR *d = opendir(g_dir);
  int ok = 1;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strstr(e->d_name, ".tmp.png")) ok = 0;
  if (d) closedir(d);
  return ok;
}

enum { N = 120 };
static double X[N], Y1[N], Y2[N], LO[N], HI[N], Y3[N];

static void fill_data(void) {
  for (int i = 0; i < N; i++) {
    X[i] = i + 1;
    Y1[i] = 10.0 / (1 + 0.1 * i) + 0.5;
    LO[i] = Y1[i] * 0.8, HI[i] = Y1[i] * 1.2;
    Y2[i] = 2 + 0.01 * i;
    Y3[i] = 5 + sin(i * 0.2);
  }
  Y3[40] = NAN; /* a gap */
}

typedef struct fig {
  icl_plot_series s[3];
  icl_plot_refline v, h;
  icl_plot_axes ax;
  icl_plot_page pg;
} fig;

/* Everything a line plot can show. */
static void valid_fig(fig *f, const char *file) {
  for (int i = 0; i < 3; i++) f->s[i] = icl_plot_series_init();
  f->s[0].x = X, f->s[0].y = Y1, f->s[0].n = N, f->s[0].label = "FIRE", f->s[0].band_lo = LO, f->s[0].band_hi = HI;
  f->s[1].x = X, f->s[1].y = Y2, f->s[1].n = N, f->s[1].label = "Least Squares", f->s[1].style = ICL_PLOT_DASHED;
  f->s[1].color = 0x000000;
  f->s[2].x = X, f->s[2].y = Y3, f->s[2].n = N, f->s[2].label = "3-NN", f->s[2].style = ICL_PLOT_DOTTED;
  f->s[2].marker = ICL_PLOT_MARK_SQUARE, f->s[2].width = 1;
  f->v = icl_plot_refline_init(), f->h = icl_plot_refline_init();
  f->v.at = 50, f->v.label = "Bound", f->v.color = 0xd62728;
  f->h.at = 9, f->h.label = "zero estimator", f->h.style = ICL_PLOT_DASHDOT;
  f->ax = icl_plot_axes_init();
  f->ax.title = "linear_regression  d=20  N=50  fire";
  f->ax.xlabel = "# in-context examples", f->ax.ylabel = "squared error";
  f->ax.series = f->s, f->ax.nseries = 3;
  f->ax.vlines = &f->v, f->ax.nvlines = 1, f->ax.hlines = &f->h, f->ax.nhlines = 1;
  f->pg = (icl_plot_page){file, 0, 0};
}

static void test_devices(void) {
  icl_ctx *ctx = icl_t_ctx();
  const char *names[128];
  int n = 0;
  CHECK_OK(ctx, icl_plot_devices(ctx, names, 128, &n));
  CHECK(n > 0);
  CHECK(icl_plot_has_device(ctx, "pngcairo"));
  CHECK(!icl_plot_has_device(ctx, "no-such-device"));
  icl_ctx_free(ctx);
}

static void test_lines_written(void) {
  icl_ctx *ctx = icl_t_ctx();
  fig f;
  valid_fig(&f, path("lines.png"));
  PLINT before = -1, after = -2;
  plgstrm(&before);
  CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
  plgstrm(&after);
  CHECK(before == after); /* the caller's PLplot stream is restored */
  CHECK(png_ok(f.pg.file, 10000));
  /* log y, fixed limits, every legend place, other sizes */
  f.ax.logy = 1;
  f.ax.has_ylim = 1, f.ax.ylim[0] = 0.1, f.ax.ylim[1] = 100;
  f.pg.file = path("lines_log.png");
  CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
  CHECK(png_ok(f.pg.file, 10000));
  f.ax.logy = 0, f.ax.has_ylim = 0;
  for (int l = 0; l < ICL_PLOT_NLEGENDS; l++) {
    char name[64];
    snprintf(name, sizeof name, "legend_%d.png", l);
    f.ax.legend = l;
    f.pg = (icl_plot_page){path(name), 400 + 100 * l, 300};
    CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
    CHECK(png_ok(f.pg.file, 3000));
  }
  f.pg = (icl_plot_page){path("tiny.png"), ICL_PLOT_MIN_SIDE, ICL_PLOT_MIN_SIDE};
  CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
  CHECK(png_ok(f.pg.file, 100));
  /* a single point, and a constant series (degenerate ranges) */
  double one = 3;
  icl_plot_series s = icl_plot_series_init();
  s.x = &one, s.y = &one, s.n = 1, s.marker = ICL_PLOT_MARK_CIRCLE;
  icl_plot_axes ax = icl_plot_axes_init();
  ax.series = &s, ax.nseries = 1;
  icl_plot_page pg = {path("one_point.png"), 300, 200};
  CHECK_OK(ctx, icl_plot_lines(ctx, &pg, &ax));
  CHECK(png_ok(pg.file, 500));
  CHECK(no_temp_files());
  icl_ctx_free(ctx);
}

static void test_heatmap_written(void) {
  icl_ctx *ctx = icl_t_ctx();
  enum { R = 24, C = 24 };
  static double z[R * C];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) z[i * C + j] = j <= i ? 1.0 / (i + 1) : NAN; /* causal mask */
  icl_plot_heatmap hm = {.title = "attention", .xlabel = "key", .ylabel = "query", .zlabel = "weight",
                         .z = z, .rows = R, .cols = C, .colorbar = 1};
  icl_plot_page pg = {path("heat.png"), 0, 0};
  CHECK_OK(ctx, icl_plot_heatmap_write(ctx, &pg, &hm));
  CHECK(png_ok(pg.file, 5000));
  hm.has_zlim = 1, hm.zlim[0] = 0, hm.zlim[1] = 0.5, hm.colorbar = 0;
  pg.file = path("heat_zlim.png");
  CHECK_OK(ctx, icl_plot_heatmap_write(ctx, &pg, &hm));
  CHECK(png_ok(pg.file, 5000));
  double single = 7, row[5] = {1, 2, 3, 4, 5};
  icl_plot_heatmap one = {.z = &single, .rows = 1, .cols = 1, .colorbar = 1};
  pg = (icl_plot_page){path("heat_1x1.png"), 300, 300};
  CHECK_OK(ctx, icl_plot_heatmap_write(ctx, &pg, &one));
  CHECK(png_ok(pg.file, 500));
  icl_plot_heatmap wide = {.z = row, .rows = 1, .cols = 5, .colorbar = 1};
  pg.file = path("heat_1x5.png");
  CHECK_OK(ctx, icl_plot_heatmap_write(ctx, &pg, &wide));
  CHECK(png_ok(pg.file, 500));
  icl_ctx_free(ctx);
}

static void test_grid_written(void) {
  icl_ctx *ctx = icl_t_ctx();
  fig f;
  valid_fig(&f, NULL);
  icl_plot_axes panels[8];
  char titles[8][16];
  for (int i = 0; i < 8; i++) {
    panels[i] = f.ax;
    snprintf(titles[i], sizeof titles[i], "head %d", i + 1);
    panels[i].title = titles[i];
    panels[i].legend = i == 0 ? ICL_PLOT_LEGEND_BEST : ICL_PLOT_LEGEND_NONE;
    panels[i].xlabel = panels[i].ylabel = NULL;
  }
  icl_plot_grid g = {.title = "per head", .xlabel = "position", .ylabel = "weight", .rows = 2, .cols = 4,
                     .panels = panels, .npanels = 8};
  icl_plot_page pg = {path("grid.png"), 1400, 700};
  CHECK_OK(ctx, icl_plot_grid_write(ctx, &pg, &g));
  CHECK(png_ok(pg.file, 20000));
  g.npanels = 5; /* a partly filled grid */
  pg.file = path("grid_partial.png");
  CHECK_OK(ctx, icl_plot_grid_write(ctx, &pg, &g));
  CHECK(png_ok(pg.file, 10000));
  icl_ctx_free(ctx);
}

/* Each case breaks one thing of a valid figure. */
static void expect_lines_error(icl_ctx *ctx, fig *f, int code, const char *needle, int line) {
  icl_clear_error(ctx);
  int st = icl_plot_lines(ctx, &f->pg, &f->ax);
  CHECK_MSG(st == code, "line %d: status %d (%s), expected %d", line, st, icl_last_error(ctx), code);
  CHECK_MSG(strstr(icl_last_error(ctx), needle) != NULL, "line %d: '%s' lacks '%s'", line, icl_last_error(ctx),
            needle);
  CHECK_MSG(strncmp(icl_last_error(ctx), "plot.lines: ", 12) == 0, "line %d: '%s'", line, icl_last_error(ctx));
}

#define BAD(code, needle, ...)                                                                                  \
  do {                                                                                                          \
    fig f;                                                                                                      \
    valid_fig(&f, path("bad.png"));                                                                             \
    __VA_ARGS__;                                                                                                \
    expect_lines_error(ctx, &f, code, needle, __LINE__);                                                        \
  } while (0)

static void test_bad_lines(void) {
  icl_ctx *ctx = icl_t_ctx();
  static double inf_y[N], nan_y[N], zero_y[N], lo_hi[N];
  for (int i = 0; i < N; i++) inf_y[i] = Y1[i], nan_y[i] = NAN, zero_y[i] = Y1[i], lo_hi[i] = HI[i] + 1;
  inf_y[7] = INFINITY, zero_y[3] = 0;
  char long_text[ICL_PLOT_MAX_TEXT + 10];
  memset(long_text, 'a', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  /* the page */
  BAD(ICL_EINVAL, "file is required", f.pg.file = NULL);
  BAD(ICL_EINVAL, "must end in .png", f.pg.file = path("bad.pdf"));
  BAD(ICL_EINVAL, "must end in .png", f.pg.file = path(".png"));
  BAD(ICL_EIO, "does not exist", f.pg.file = path("missing/bad.png"));
  BAD(ICL_EINVAL, "page number", f.pg.file = path("fig%n.png"));
  BAD(ICL_EIO, "is a directory", mkdir(path("dir.png"), 0700); f.pg.file = path("dir.png"));
  BAD(ICL_EINVAL, "width must be between", f.pg.width = 10);
  BAD(ICL_EINVAL, "height must be between", f.pg.height = 100000);
  BAD(ICL_EINVAL, "width must be between", f.pg.width = -5);
  /* the series */
  BAD(ICL_EINVAL, "at least one series", f.ax.nseries = 0);
  BAD(ICL_EINVAL, "series 2 ('Least Squares'): needs at least one point", f.s[1].n = 0);
  BAD(ICL_EINVAL, "x and y are required", f.s[0].x = NULL);
  BAD(ICL_ENUMERIC, "series 1 ('FIRE'): y[8] = inf", f.s[0].y = inf_y);
  BAD(ICL_ENUMERIC, "x[8] = inf", f.s[1].x = inf_y);
  BAD(ICL_ENUMERIC, "band.hi[8] = inf", f.s[0].band_hi = inf_y);
  BAD(ICL_EINVAL, "every point is a gap", f.s[2].y = nan_y);
  BAD(ICL_ERANGE, "too large to plot", inf_y[7] = 1e308; f.s[0].y = inf_y);
  BAD(ICL_EINVAL, "band needs both", f.s[0].band_hi = NULL);
  BAD(ICL_EINVAL, "is above band.hi", f.s[0].band_lo = lo_hi);
  BAD(ICL_EINVAL, "band alpha", f.s[0].band_alpha = 2);
  BAD(ICL_EINVAL, "is not 0xRRGGBB", f.s[1].color = 0x1000000);
  BAD(ICL_EINVAL, "unknown line style", f.s[1].style = 9);
  BAD(ICL_EINVAL, "width must be in", f.s[1].width = -1);
  BAD(ICL_EINVAL, "width must be in", f.s[1].width = NAN);
  BAD(ICL_EINVAL, "unknown marker", f.s[1].marker = 42);
  BAD(ICL_EINVAL, "marker_size", f.s[1].marker_size = 100);
  BAD(ICL_EINVAL, "series label is", f.s[0].label = long_text);
  BAD(ICL_EINVAL, "not valid UTF-8", f.s[0].label = "bad \xff label");
  BAD(ICL_EINVAL, "control character", f.ax.title = "two\nlines");
  /* limits, log axis, reference lines, legend */
  BAD(ICL_EINVAL, "xlim = {5, 1} must be increasing", f.ax.has_xlim = 1; f.ax.xlim[0] = 5; f.ax.xlim[1] = 1);
  BAD(ICL_ENUMERIC, "ylim", f.ax.has_ylim = 1; f.ax.ylim[0] = 0; f.ax.ylim[1] = NAN);
  BAD(ICL_EINVAL, "must be positive with logy", f.ax.logy = 1; f.ax.has_ylim = 1; f.ax.ylim[0] = 0;
      f.ax.ylim[1] = 1);
  BAD(ICL_EINVAL, "y[4] = 0 is not positive (logy)", f.ax.logy = 1; f.s[0].y = zero_y);
  BAD(ICL_EINVAL, "hline 1 ('zero estimator'): y = -1 is not positive", f.ax.logy = 1; f.h.at = -1);
  BAD(ICL_ENUMERIC, "vline 1 ('Bound')", f.v.at = INFINITY);
  BAD(ICL_EINVAL, "unknown line style", f.v.style = -1);
  BAD(ICL_EINVAL, "at most", f.ax.nvlines = ICL_PLOT_MAX_REFLINES + 1);
  BAD(ICL_EINVAL, "unknown legend position", f.ax.legend = 99);
  CHECK(file_size(path("bad.png")) < 0); /* nothing was written */
  icl_ctx_free(ctx);
}

static void test_bad_heatmap_and_grid(void) {
  icl_ctx *ctx = icl_t_ctx();
  double z[4] = {1, 2, 3, 4}, zinf[4] = {1, INFINITY, 3, 4}, znan[4] = {NAN, NAN, NAN, NAN};
  icl_plot_page pg = {path("bad_heat.png"), 0, 0};
  icl_plot_heatmap hm = {.z = z, .rows = 2, .cols = 2, .colorbar = 1};
  hm.rows = 0;
  CHECK(icl_plot_heatmap_write(ctx, &pg, &hm) == ICL_EINVAL && strstr(icl_last_error(ctx), "z is 0 x 2"));
  hm.rows = 2, hm.z = NULL;
  CHECK(icl_plot_heatmap_write(ctx, &pg, &hm) == ICL_EINVAL && strstr(icl_last_error(ctx), "z is required"));
  hm.z = zinf;
  CHECK(icl_plot_heatmap_write(ctx, &pg, &hm) == ICL_ENUMERIC && strstr(icl_last_error(ctx), "z[1][2] = inf"));
  hm.z = znan;
  CHECK(icl_plot_heatmap_write(ctx, &pg, &hm) == ICL_EINVAL && strstr(icl_last_error(ctx), "every cell"));
  hm.z = z, hm.has_zlim = 1, hm.zlim[0] = 1, hm.zlim[1] = 1;
  CHECK(icl_plot_heatmap_write(ctx, &pg, &hm) == ICL_EINVAL && strstr(icl_last_error(ctx), "zlim"));
  CHECK(file_size(pg.file) < 0);

  fig f;
  valid_fig(&f, NULL);
  icl_plot_axes panels[3] = {f.ax, f.ax, f.ax};
  panels[1].title = "head 2";
  panels[1].nseries = 0;
  icl_plot_grid g = {.rows = 2, .cols = 2, .panels = panels, .npanels = 3};
  pg.file = path("bad_grid.png");
  CHECK(icl_plot_grid_write(ctx, &pg, &g) == ICL_EINVAL);
  CHECK(strstr(icl_last_error(ctx), "plot.grid: panel 2 ('head 2'): needs at least one series") != NULL);
  panels[1].nseries = 3;
  g.rows = 1, g.cols = 2;
  CHECK(icl_plot_grid_write(ctx, &pg, &g) == ICL_EINVAL && strstr(icl_last_error(ctx), "do not fit"));
  g.rows = 0;
  CHECK(icl_plot_grid_write(ctx, &pg, &g) == ICL_EINVAL && strstr(icl_last_error(ctx), "rows = 0"));
  g.rows = 1, g.cols = ICL_PLOT_MAX_GRID_SIDE + 1;
  CHECK(icl_plot_grid_write(ctx, &pg, &g) == ICL_EINVAL);
  CHECK(file_size(pg.file) < 0);
  icl_ctx_free(ctx);
}

/* PLplot's plexit() would end the process; the guard turns it into an error
 * and the next figure is unaffected. */
static int draw_exit(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec) {
  (void)ctx, (void)fr, (void)spec;
  plexit("simulated fatal error");
  return ICL_OK;
}

static int draw_abort(icl_ctx *ctx, const icl_plot_frame *fr, const void *spec) {
  (void)ctx, (void)fr, (void)spec;
  plabort("simulated abort");
  return ICL_OK;
}

static void test_plplot_exit_is_caught(void) {
  icl_ctx *ctx = icl_t_ctx();
  fig f;
  valid_fig(&f, path("atomic.png"));
  CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
  long size = file_size(f.pg.file);
  icl_plot_page pg = {f.pg.file, 300, 200};
  CHECK(icl_plot_render(ctx, "test", &pg, draw_exit, NULL) == ICL_EDEVICE);
  CHECK(strstr(icl_last_error(ctx), "test: PLplot failed: simulated fatal error") != NULL);
  CHECK(file_size(f.pg.file) == size); /* the old figure is untouched */
  CHECK(icl_plot_render(ctx, "test", &pg, draw_abort, NULL) == ICL_EDEVICE);
  CHECK(strstr(icl_last_error(ctx), "simulated abort") != NULL);
  CHECK(file_size(f.pg.file) == size);
  CHECK(no_temp_files());
  f.pg.file = path("after_exit.png");
  CHECK_OK(ctx, icl_plot_lines(ctx, &f.pg, &f.ax));
  CHECK(png_ok(f.pg.file, 10000));
  icl_ctx_free(ctx);
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (remove(p) != 0) rmdir(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/icl_test_plot_XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  fill_data();
  ICL_RUN(test_devices);
  ICL_RUN(test_lines_written);
  ICL_RUN(test_heatmap_written);
  ICL_RUN(test_grid_written);
  ICL_RUN(test_bad_lines);
  ICL_RUN(test_bad_heatmap_and_grid);
  ICL_RUN(test_plplot_exit_is_caught);
  /* ICL_PLOT_KEEP=1 keeps the figures for a look */
  if (getenv("ICL_PLOT_KEEP")) printf("figures in %s\n", g_dir);
  else remove_dir(g_dir);
  return icl_t_finish("test_plot");
}
