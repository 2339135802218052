/* Reading plot option tables from Lua: strict keys, typed fields, arrays of
 * numbers. Every failure is a Lua error naming the function, the place
 * ("series 2") and the field. Memory comes from userdata anchored in a table
 * on the stack, so a Lua error half-way through leaks nothing. */
#ifndef ICL_LUA_PLOT_ARGS_H
#define ICL_LUA_PLOT_ARGS_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

typedef struct icl_pa {
  lua_State *L;
  const char *op; /* "plot.lines" */
  int anchor;     /* absolute stack index of the anchor table */
  int nanchor;
} icl_pa;

/* Pushes the anchor table; the caller keeps it on the stack until done. */
void icl_pa_begin(icl_pa *a, lua_State *L, const char *op);

/* Errors "op: where: message". */
int icl_pa_error(icl_pa *a, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The value at idx must be a table whose keys are all in valid (NULL-ended). */
void icl_pa_table(icl_pa *a, int idx, const char *where);
void icl_pa_keys(icl_pa *a, int idx, const char *where, const char *const *valid);

void *icl_pa_alloc(icl_pa *a, size_t bytes);

/* Field readers: a nil field gives def (and *present = 0 where asked). */
const char *icl_pa_string(icl_pa *a, int idx, const char *key, const char *where, const char *def);
double icl_pa_number(icl_pa *a, int idx, const char *key, const char *where, double def);
int icl_pa_int(icl_pa *a, int idx, const char *key, const char *where, int def);
int icl_pa_bool(icl_pa *a, int idx, const char *key, const char *where, int def);
/* One of names[0..n); def when nil. */
int icl_pa_enum(icl_pa *a, int idx, const char *key, const char *where, const char *const *names, int n, int def);
/* {r, g, b} with 0..255 integers, or "#rrggbb"; def when nil. */
int32_t icl_pa_color(icl_pa *a, int idx, const char *key, const char *where, int32_t def);
/* A sequence of numbers (NaN allowed): NULL when nil. *n gets its length. */
double *icl_pa_numbers(icl_pa *a, int idx, const char *key, const char *where, int64_t *n);
/* {lo, hi}: returns 0 when nil. */
int icl_pa_range(icl_pa *a, int idx, const char *key, const char *where, double out[2]);

#endif
