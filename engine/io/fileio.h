/* Files: atomic replacement and a few POSIX helpers (Lua 5.4 has none).
 *
 * Atomic write recipe: write to "<path>.tmp.<pid>" in the same directory, fsync the file, close,
 * rename over <path>, fsync the directory. On any failure the temp file is removed and an existing
 * <path> is left untouched.
 * Fault injection for tests: with ICL_FAULT_WRITE_FAIL_AFTER=<bytes> in the environment, every
 * atomic writer fails with ENOSPC once it has written that many bytes. */
#ifndef ICL_FILEIO_H
#define ICL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

typedef struct icl_afile icl_afile;

/* Start writing <path> atomically. NULL + error on failure. */
icl_afile *icl_afile_open(icl_ctx *ctx, const char *path);
int icl_afile_write(icl_ctx *ctx, icl_afile *f, const void *data, size_t n);
/* Flush, fsync, rename, fsync the directory; frees f (also on failure, after cleaning up). */
int icl_afile_commit(icl_ctx *ctx, icl_afile *f);
/* Give up: close and remove the temp file; frees f. */
void icl_afile_abort(icl_afile *f);

int icl_write_file_atomic(icl_ctx *ctx, const char *path, const void *data, size_t n);
/* Whole file into a malloc'd buffer (NUL-terminated; *n excludes it). */
int icl_read_file(icl_ctx *ctx, const char *path, char **data, size_t *n);

/* 1 if path exists (any kind); *is_dir set when not NULL */
int icl_path_exists(const char *path, int *is_dir);
int icl_mkdir_p(icl_ctx *ctx, const char *path);
/* Sorted entry names without "." and ".."; free with icl_free_names. */
int icl_list_dir(icl_ctx *ctx, const char *path, char ***names, int *n);
void icl_free_names(char **names, int n);
/* a file, or an empty directory */
int icl_remove(icl_ctx *ctx, const char *path);
int icl_rename(icl_ctx *ctx, const char *from, const char *to);

#endif
