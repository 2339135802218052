#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ABUF 65536

struct icl_afile {
  int fd;
  char *path, *tmp;
  uint64_t written;
  long long fail_after; /* < 0: no fault injection */
  size_t nbuf;
  unsigned char buf[ABUF];
};

icl_afile *icl_afile_open(icl_ctx *ctx, const char *path) {
  icl_afile *f = malloc(sizeof *f);
  size_t n = strlen(path);
  char *p = malloc(n + 1), *tmp = malloc(n + 32);
  if (!f || !p || !tmp) {
    free(f), free(p), free(tmp);
    icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  memcpy(p, path, n + 1);
  snprintf(tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
  f->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    icl_errorf(ctx, ICL_EIO, "%s: cannot create the temporary file '%s': %s", path, tmp, strerror(errno));
    free(f), free(p), free(tmp);
    return NULL;
  }
  f->path = p, f->tmp = tmp, f->written = 0, f->nbuf = 0;
  const char *env = getenv("ICL_FAULT_WRITE_FAIL_AFTER");
  f->fail_after = env && *env ? atoll(env) : -1;
  return f;
}

static int raw_write(icl_ctx *ctx, icl_afile *f, const unsigned char *p, size_t n) {
  while (n) {
    size_t chunk = n;
    int inject = 0;
    if (f->fail_after >= 0 && f->written + chunk > (uint64_t)f->fail_after) {
      chunk = f->written >= (uint64_t)f->fail_after ? 0 : (size_t)((uint64_t)f->fail_after - f->written);
      inject = 1;
    }
    ssize_t w = chunk ? write(f->fd, p, chunk) : 0;
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 || (inject && (size_t)w == chunk)) {
      int e = w < 0 ? errno : ENOSPC;
      if (w > 0) f->written += (uint64_t)w;
      return icl_errorf(ctx, ICL_EIO, "%s: write failed after %llu bytes: %s%s", f->path,
                        (unsigned long long)f->written, strerror(e),
                        inject ? " (fault injected by ICL_FAULT_WRITE_FAIL_AFTER)" : "");
    }
    f->written += (uint64_t)w;
    p += w, n -= (size_t)w;
  }
  return ICL_OK;
}

int icl_afile_write(icl_ctx *ctx, icl_afile *f, const void *data, size_t n) {
  const unsigned char *p = data;
  if (f->nbuf + n <= ABUF) {
    memcpy(f->buf + f->nbuf, p, n);
    f->nbuf += n;
    return ICL_OK;
  }
  if (f->nbuf) {
    int rc = raw_write(ctx, f, f->buf, f->nbuf);
    f->nbuf = 0;
    if (rc) return rc;
  }
  if (n >= ABUF) return raw_write(ctx, f, p, n);
  memcpy(f->buf, p, n);
  f->nbuf = n;
  return ICL_OK;
}

static void afree(icl_afile *f) {
  free(f->path);
  free(f->tmp);
  free(f);
}

void icl_afile_abort(icl_afile *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  unlink(f->tmp);
  afree(f);
}

static int sync_dir(icl_ctx *ctx, const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return icl_errorf(ctx, ICL_EIO, "%s: cannot open its directory to sync it: %s", path, strerror(errno));
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  /* some file systems cannot sync a directory; the rename itself has happened */
  if (rc && e != EINVAL && e != ENOTSUP)
    return icl_errorf(ctx, ICL_EIO, "%s: cannot sync its directory: %s", path, strerror(e));
  return ICL_OK;
}

int icl_afile_commit(icl_ctx *ctx, icl_afile *f) {
  int rc = f->nbuf ? raw_write(ctx, f, f->buf, f->nbuf) : ICL_OK;
  f->nbuf = 0;
  if (!rc && fsync(f->fd) != 0) rc = icl_errorf(ctx, ICL_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
  if (!rc) {
    int c = close(f->fd);
    f->fd = -1;
    if (c != 0) rc = icl_errorf(ctx, ICL_EIO, "%s: close failed: %s", f->path, strerror(errno));
  }
  if (!rc && rename(f->tmp, f->path) != 0)
    rc = icl_errorf(ctx, ICL_EIO, "%s: cannot rename '%s' over it: %s", f->path, f->tmp, strerror(errno));
  if (rc) {
    icl_afile_abort(f);
    return rc;
  }
  rc = sync_dir(ctx, f->path);
  afree(f);
  return rc;
}

int icl_write_file_atomic(icl_ctx *ctx, const char *path, const void *data, size_t n) {
  icl_afile *f = icl_afile_open(ctx, path);
  if (!f) return ctx->errcode;
  int rc = icl_afile_write(ctx, f, data, n);
  if (rc) {
    icl_afile_abort(f);
    return rc;
  }
  return icl_afile_commit(ctx, f);
}

int icl_read_file(icl_ctx *ctx, const char *path, char **data, size_t *n) {
  *data = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return icl_errorf(ctx, ICL_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
    int e = S_ISDIR(sb.st_mode) ? EISDIR : errno;
    close(fd);
    return icl_errorf(ctx, ICL_EIO, "%s: cannot read: %s", path, strerror(e));
  }
  size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096, k = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory (%zu bytes)", path, cap);
  }
  for (;;) {
    if (k + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        close(fd);
        return icl_errorf(ctx, ICL_ENOMEM, "%s: out of memory", path);
      }
      buf = nb, cap *= 2;
    }
    ssize_t r = read(fd, buf + k, cap - 1 - k);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return icl_errorf(ctx, ICL_EIO, "%s: read failed: %s", path, strerror(e));
    }
    if (r == 0) break;
    k += (size_t)r;
  }
  close(fd);
  buf[k] = 0;
  *data = buf;
  *n = k;
  return ICL_OK;
}

int icl_path_exists(const char *path, int *is_dir) {
  struct stat sb;
  if (stat(path, &sb) != 0) return 0;
  if (is_dir) *is_dir = S_ISDIR(sb.st_mode);
  return 1;
}

int icl_mkdir_p(icl_ctx *ctx, const char *path) {
  size_t n = strlen(path);
  if (n == 0) return icl_errorf(ctx, ICL_EINVAL, "mkdir_p: empty path");
  char *p = malloc(n + 1);
  if (!p) return icl_errorf(ctx, ICL_ENOMEM, "mkdir_p: out of memory");
  memcpy(p, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != 0) continue;
    char c = p[i];
    p[i] = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      int e = errno;
      int rc = icl_errorf(ctx, ICL_EIO, "mkdir_p: cannot create '%s': %s", p, strerror(e));
      free(p);
      return rc;
    }
    p[i] = c;
  }
  int dir = 0;
  int ok = icl_path_exists(path, &dir) && dir;
  free(p);
  return ok ? ICL_OK : icl_errorf(ctx, ICL_EIO, "mkdir_p: '%s' exists and is not a directory", path);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void icl_free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

int icl_list_dir(icl_ctx *ctx, const char *path, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(path);
  if (!d) return icl_errorf(ctx, ICL_EIO, "list_dir: cannot open '%s': %s", path, strerror(errno));
  char **v = NULL;
  int k = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (k == cap) {
      cap = cap ? cap * 2 : 16;
      char **nv = realloc(v, sizeof *nv * (size_t)cap);
      if (!nv) goto oom;
      v = nv;
    }
    if (!(v[k] = strdup(e->d_name))) goto oom;
    k++;
  }
  closedir(d);
  if (k) qsort(v, (size_t)k, sizeof *v, cmp_str);
  *names = v;
  *n = k;
  return ICL_OK;
oom:
  closedir(d);
  icl_free_names(v, k);
  return icl_errorf(ctx, ICL_ENOMEM, "list_dir: out of memory");
}

int icl_remove(icl_ctx *ctx, const char *path) {
  if (remove(path) != 0) return icl_errorf(ctx, ICL_EIO, "remove: cannot remove '%s': %s", path, strerror(errno));
  return ICL_OK;
}

int icl_rename(icl_ctx *ctx, const char *from, const char *to) {
  if (rename(from, to) != 0)
    return icl_errorf(ctx, ICL_EIO, "rename: cannot rename '%s' to '%s': %s", from, to, strerror(errno));
  return ICL_OK;
}
