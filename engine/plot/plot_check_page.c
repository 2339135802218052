/* Checks of the output file, the pixel size and text fields: all done before
 * PLplot runs, since PLplot answers an unopenable file with exit() (or with a
 * prompt on stdin when it has no file name at all). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/plot_internal.h"

static int check_dir(icl_ctx *ctx, const char *op, const char *file) {
  char dir[PATH_MAX];
  const char *slash = strrchr(file, '/');
  if (!slash) {
    snprintf(dir, sizeof dir, ".");
  } else if (slash == file) {
    snprintf(dir, sizeof dir, "/");
  } else {
    size_t n = (size_t)(slash - file);
    memcpy(dir, file, n);
    dir[n] = '\0';
  }
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return icl_errorf(ctx, ICL_EIO, "%s: directory '%s' of '%s' does not exist (%s)", op, dir, file, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return icl_errorf(ctx, ICL_EIO, "%s: '%s' is not a directory", op, dir);
  if (access(dir, W_OK | X_OK) != 0) return icl_errorf(ctx, ICL_EIO, "%s: directory '%s' is not writable", op, dir);
  if (stat(file, &sb) == 0 && S_ISDIR(sb.st_mode))
    return icl_errorf(ctx, ICL_EIO, "%s: '%s' is a directory", op, file);
  if (stat(file, &sb) == 0 && access(file, W_OK) != 0)
    return icl_errorf(ctx, ICL_EIO, "%s: '%s' exists and is not writable", op, file);
  return ICL_OK;
}

static int check_side(icl_ctx *ctx, const char *op, const char *what, int v) {
  if (v == 0 || (v >= ICL_PLOT_MIN_SIDE && v <= ICL_PLOT_MAX_SIDE)) return ICL_OK;
  return icl_errorf(ctx, ICL_EINVAL, "%s: %s must be between %d and %d pixels, got %d", op, what, ICL_PLOT_MIN_SIDE,
                    ICL_PLOT_MAX_SIDE, v);
}

int icl_plot_check_page(icl_ctx *ctx, const char *op, const icl_plot_page *page) {
  if (!page || !page->file || !page->file[0]) return icl_errorf(ctx, ICL_EINVAL, "%s: file is required", op);
  size_t n = strlen(page->file);
  if (n + 16 >= PATH_MAX) return icl_errorf(ctx, ICL_EINVAL, "%s: file name is too long (%zu bytes)", op, n);
  if (n < 5 || strcasecmp(page->file + n - 4, ".png") != 0 || page->file[n - 5] == '/')
    return icl_errorf(ctx, ICL_EINVAL, "%s: file '%s' must end in .png", op, page->file);
  if (strstr(page->file, "%n"))
    return icl_errorf(ctx, ICL_EINVAL, "%s: file '%s' contains \"%%n\", which PLplot replaces by a page number", op,
                      page->file);
  int st = check_side(ctx, op, "width", page->width);
  if (!st) st = check_side(ctx, op, "height", page->height);
  if (!st) st = check_dir(ctx, op, page->file);
  return st;
}

/* Length of the UTF-8 sequence starting at s, or 0 when it is malformed. */
static int utf8_len(const unsigned char *s) {
  int n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 0x6 ? 2 : (s[0] >> 4) == 0xE ? 3 : (s[0] >> 3) == 0x1E ? 4 : 0;
  if (n == 2 && s[0] < 0xC2) return 0; /* overlong */
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return n;
}

int icl_plot_check_text(icl_ctx *ctx, const char *op, const char *what, const char *s) {
  if (!s) return ICL_OK;
  size_t n = strlen(s);
  if (n > ICL_PLOT_MAX_TEXT)
    return icl_errorf(ctx, ICL_EINVAL, "%s: %s is %zu bytes long (at most %d)", op, what, n, ICL_PLOT_MAX_TEXT);
  for (size_t i = 0; i < n;) {
    const unsigned char *p = (const unsigned char *)s + i;
    if (p[0] < 0x20 || p[0] == 0x7F)
      return icl_errorf(ctx, ICL_EINVAL, "%s: %s contains a control character at byte %zu", op, what, i + 1);
    int k = utf8_len(p);
    if (!k) return icl_errorf(ctx, ICL_EINVAL, "%s: %s is not valid UTF-8 (byte %zu)", op, what, i + 1);
    i += (size_t)k;
  }
  return ICL_OK;
}
