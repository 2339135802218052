/* The guarded PLplot session. PLplot keeps global state and calls exit() from
 * plexit(); the only way back from there is a longjmp out of the exit
 * handler, which is what on_plexit does. Each figure gets a fresh stream
 * (plmkstrm ... plend1) and the caller's current stream is restored, so
 * nothing leaks from one figure into the next. PLplot is not thread-safe;
 * neither is this file. */
#include <limits.h>
#include <math.h>
#include <plplot.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "plot/plot_internal.h"

static jmp_buf *volatile g_jump; /* where the exit handler returns to */
static char g_msg[512];          /* first PLplot error of the current call */
/* plabort() writes here instead of stderr once a stream has it (plsError);
 * its messages are short fixed strings plus a ~60 byte frame. */
static PLINT g_errcode;
static char g_errbuf[4096];

static void note(const char *msg) {
  if (g_msg[0]) return;
  snprintf(g_msg, sizeof g_msg, "%s", msg && msg[0] ? msg : "unspecified error");
  size_t n = strlen(g_msg); /* PLplot's messages often end in a newline */
  while (n && (g_msg[n - 1] == '\n' || g_msg[n - 1] == ' ')) g_msg[--n] = '\0';
}

static int on_plexit(PLCHAR_VECTOR msg) {
  note(msg);
  if (g_jump) longjmp(*g_jump, 1);
  return 1; /* not reached while a guard is active */
}

static void on_plabort(PLCHAR_VECTOR msg) { note(msg); }

static void guard_on(jmp_buf *jb) {
  g_jump = jb;
  plsexit(on_plexit);
  plsabort(on_plabort);
}

static void guard_off(void) {
  g_jump = NULL;
  plsexit(NULL);
  plsabort(NULL);
}

int icl_plot_devices(icl_ctx *ctx, const char **names, int max, int *n) {
  enum { CAP = 128 };
  static const char *menu[CAP], *devs[CAP];
  const char **pm = menu, **pd = devs;
  int count = CAP;
  jmp_buf jb;
  *n = 0;
  g_msg[0] = '\0';
  if (setjmp(jb)) {
    guard_off();
    return icl_errorf(ctx, ICL_EDEVICE, "plot.devices: PLplot failed: %s", g_msg);
  }
  guard_on(&jb);
  plgDevs(&pm, &pd, &count);
  guard_off();
  for (int i = 0; i < count && i < max; i++) names[(*n)++] = devs[i];
  return ICL_OK;
}

int icl_plot_has_device(icl_ctx *ctx, const char *name) {
  const char *names[128];
  int n = 0;
  if (icl_plot_devices(ctx, names, 128, &n)) return 0;
  for (int i = 0; i < n; i++)
    if (names[i] && strcmp(names[i], name) == 0) return 1;
  return 0;
}

/* "dir/fig.png" -> "dir/fig.tmp.png" (the check already required ".png"). */
static int temp_name(const char *file, char *buf, size_t cap) {
  size_t n = strlen(file);
  if (n < 4 || n + 5 > cap) return 0;
  memcpy(buf, file, n - 4);
  memcpy(buf + n - 4, ".tmp.png", 9);
  return 1;
}

static void set_cmap0(void) {
  plscmap0n(ICL_PLOT_NCOL0);
  plscol0a(ICL_PLOT_COL_BG, 255, 255, 255, 1.0);
  plscol0a(ICL_PLOT_COL_FG, 0, 0, 0, 1.0);
  plscol0a(ICL_PLOT_COL_GRID, 225, 225, 225, 1.0);
  plscol0a(ICL_PLOT_COL_FRAME, 200, 200, 200, 1.0);
  plscol0a(ICL_PLOT_COL_WORK, 0, 0, 0, 1.0);
}

static void make_frame(icl_plot_frame *fr, int w, int h) {
  PLFLT x0, x1, y0, y1;
  plgspa(&x0, &x1, &y0, &y1);
  fr->page_w = x1 - x0;
  fr->page_h = y1 - y0;
  /* Sizes follow the page's geometric mean so a 2000x1400 figure looks like
   * a 1000x700 one at twice the resolution; small figures keep text readable
   * (at least 60% of the 1000x700 size) at the cost of plot area. */
  double scale = fmax(0.6, sqrt((double)w * h / (1000.0 * 700.0)));
  fr->scale = scale;
  fr->px = fr->page_w / w * scale;
  fr->font = 10.0 * fr->px;
}

int icl_plot_render(icl_ctx *ctx, const char *op, const icl_plot_page *page, icl_plot_draw_fn draw,
                    const void *spec) {
  int st = icl_plot_check_page(ctx, op, page);
  if (st) return st;
  if (!icl_plot_has_device(ctx, "pngcairo"))
    return icl_errorf(ctx, ICL_EDEVICE,
                      "%s: PLplot has no 'pngcairo' device (is plplot-driver-cairo installed? "
                      "plot.devices() lists what is available)",
                      op);
  char tmp[PATH_MAX + 16];
  if (!temp_name(page->file, tmp, sizeof tmp)) return icl_errorf(ctx, ICL_EINVAL, "%s: file name too long", op);
  int w = page->width ? page->width : ICL_PLOT_DEFAULT_WIDTH;
  int h = page->height ? page->height : ICL_PLOT_DEFAULT_HEIGHT;

  PLINT prev = 0;
  plgstrm(&prev);
  volatile int opened = 0, closed = 0, rc = ICL_OK;
  jmp_buf jb;
  g_msg[0] = '\0';
  if (setjmp(jb) == 0) {
    guard_on(&jb);
    PLINT strm = -1;
    plmkstrm(&strm);
    if (strm < 0) {
      note("no free PLplot stream");
    } else {
      opened = 1;
      plsError(&g_errcode, g_errbuf);
      plsdev("pngcairo");
      plsfnam(tmp);
      plspage(0, 0, w, h, 0, 0);
      set_cmap0();
      plinit();
      pladv(0);
      icl_plot_frame fr;
      make_frame(&fr, w, h);
      rc = draw(ctx, &fr, spec);
      closed = 1;
      plend1();
    }
  }
  /* Here after a normal end or a longjmp out of plexit. A stream left open by
   * an error is still ended; a second failure while ending is ignored. */
  if (opened && !closed) {
    closed = 1;
    if (setjmp(jb) == 0) {
      guard_on(&jb);
      plend1();
    }
  }
  guard_off();
  plsstrm(prev);
  if (rc || g_msg[0]) {
    remove(tmp);
    if (rc) return rc;
    return icl_errorf(ctx, ICL_EDEVICE, "%s: PLplot failed: %s", op, g_msg);
  }
  if (rename(tmp, page->file) != 0) {
    remove(tmp);
    return icl_errorf(ctx, ICL_EIO, "%s: cannot rename '%s' to '%s'", op, tmp, page->file);
  }
  return ICL_OK;
}
