/* Tensor userdata: lifetime (__gc, __close, :free share one idempotent
 * release), creation from shapes and nested tables, conversion back to Lua
 * values, printing, and views. Arithmetic lives in lua_tensor_ops.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_tensor_ops.h"
#include "lua_util.h"
#include "ops/ops.h"

/* ---- lifetime ------------------------------------------------------------ */

static int t_free(lua_State *L) {
  icl_lua_tensor *u = luaL_checkudata(L, 1, ICL_TENSOR_MT);
  if (u->t) {
    icl_tensor_free(icl_lua_ctx(L), u->t);
    u->t = NULL;
  }
  return 0;
}

static int t_is_freed(lua_State *L) {
  icl_lua_tensor *u = luaL_checkudata(L, 1, ICL_TENSOR_MT);
  lua_pushboolean(L, u->t == NULL);
  return 1;
}

/* ---- creation ------------------------------------------------------------ */

static const char *const create_opts[] = {"device", "dtype", "seed", NULL};

static icl_dtype opt_dtype(lua_State *L, int idx, const char *fname) {
  static const char *const dts[] = {"float32", "int32", NULL};
  return icl_lua_opt_choice(L, idx, "dtype", "float32", dts, fname) == 1 ? ICL_I32 : ICL_F32;
}

/* shape from args at 1.., options table after it (if any) */
static int read_shape_opts(lua_State *L, const char *fname, int64_t *shape, int *opts_idx) {
  int consumed = 0;
  int nd = icl_lua_read_shape(L, 1, fname, shape, &consumed);
  *opts_idx = 1 + consumed;
  if (!lua_isnoneornil(L, *opts_idx) && !lua_istable(L, *opts_idx))
    luaL_error(L, "%s: expected an options table after the shape, got %s", fname, luaL_typename(L, *opts_idx));
  icl_lua_check_opts(L, *opts_idx, fname, create_opts);
  return nd;
}

static int filled(lua_State *L, const char *fname, double value) {
  int64_t shape[ICL_MAX_DIMS];
  int oi;
  int nd = read_shape_opts(L, fname, shape, &oi);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_lua_push_tensor(L, icl_tensor_full(ctx, opt_dtype(L, oi, fname), icl_lua_opt_device(L, oi, fname), nd, shape,
                                         value));
  return 1;
}

static int l_zeros(lua_State *L) { return filled(L, "zeros", 0.0); }
static int l_ones(lua_State *L) { return filled(L, "ones", 1.0); }

static int l_full(lua_State *L) {
  int64_t shape[ICL_MAX_DIMS];
  int consumed = 0;
  if (!lua_istable(L, 1)) luaL_error(L, "full: expected a shape table as argument 1");
  int nd = icl_lua_read_shape(L, 1, "full", shape, &consumed);
  double v = luaL_checknumber(L, 2);
  icl_lua_check_opts(L, 3, "full", create_opts);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_lua_push_tensor(L, icl_tensor_full(ctx, opt_dtype(L, 3, "full"), icl_lua_opt_device(L, 3, "full"), nd, shape, v));
  return 1;
}

static uint64_t opt_seed_stream(lua_State *L, int oi, const char *fname, uint64_t *stream) {
  icl_ctx *ctx = icl_lua_ctx(L);
  int t = lua_isnoneornil(L, oi) ? LUA_TNIL : lua_getfield(L, oi, "seed");
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, oi)) lua_pop(L, 1);
    *stream = icl_ctx_next_stream(ctx);
    return ctx->rng_seed;
  }
  if (!lua_isinteger(L, -1)) luaL_error(L, "%s: option 'seed' must be an integer", fname);
  uint64_t s = (uint64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  *stream = 0;
  return s;
}

static int draw(lua_State *L, const char *fname, icl_dist dist, double p0, double p1, int extra_args) {
  int64_t shape[ICL_MAX_DIMS];
  int consumed = 0;
  int first = 1 + extra_args;
  int nd = icl_lua_read_shape(L, first, fname, shape, &consumed);
  int oi = first + consumed;
  icl_lua_check_opts(L, oi, fname, create_opts);
  uint64_t stream;
  uint64_t seed = opt_seed_stream(L, oi, fname, &stream);
  icl_dtype dt = dist == ICL_DIST_RANDINT ? ICL_I32 : ICL_F32;
  if (!lua_isnoneornil(L, oi)) dt = lua_getfield(L, oi, "dtype") == LUA_TNIL ? dt : opt_dtype(L, oi, fname);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_lua_push_tensor(L, icl_op_random(ctx, dist, dt, icl_lua_opt_device(L, oi, fname), nd, shape, p0, p1, seed, stream));
  return 1;
}

static int l_randn(lua_State *L) { return draw(L, "randn", ICL_DIST_NORMAL, 0, 1, 0); }
static int l_rand(lua_State *L) { return draw(L, "rand", ICL_DIST_UNIFORM, 0, 1, 0); }
static int l_bernoulli(lua_State *L) {
  double p = luaL_checknumber(L, 1);
  return draw(L, "bernoulli", ICL_DIST_BERNOULLI, p, 0, 1);
}
/* randint(low, high, shape): integers in [low, high) */
static int l_randint(lua_State *L) {
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  return draw(L, "randint", ICL_DIST_RANDINT, (double)lo, (double)hi, 2);
}

static int l_arange(lua_State *L) {
  double a = luaL_checknumber(L, 1);
  double b, step = 1;
  int oi;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    b = lua_tonumber(L, 2);
    if (lua_type(L, 3) == LUA_TNUMBER) {
      step = lua_tonumber(L, 3);
      oi = 4;
    } else {
      oi = 3;
    }
  } else {
    b = a;
    a = 0;
    oi = 2;
  }
  icl_lua_check_opts(L, oi, "arange", create_opts);
  icl_device dev = icl_lua_opt_device(L, oi, "arange");
  icl_lua_push_tensor(L, icl_op_arange(icl_lua_ctx(L), dev, a, b, step));
  return 1;
}

/* nested tables -> shape, checking the table is rectangular */
static void probe_shape(lua_State *L, int idx, int depth, int *nd, int64_t *shape) {
  if (lua_type(L, idx) != LUA_TTABLE) return;
  if (depth >= ICL_MAX_DIMS) luaL_error(L, "tensor: nesting deeper than %d", ICL_MAX_DIMS);
  shape[depth] = (int64_t)lua_rawlen(L, idx);
  *nd = depth + 1;
  if (shape[depth] > 0) {
    lua_rawgeti(L, idx, 1);
    probe_shape(L, lua_gettop(L), depth + 1, nd, shape);
    lua_pop(L, 1);
  }
}

static void fill_from(lua_State *L, int idx, int depth, int nd, const int64_t *shape, icl_dtype dt, void *out,
                      int64_t *pos, char *path, size_t pathlen) {
  if (depth == nd) {
    if (lua_type(L, idx) != LUA_TNUMBER)
      luaL_error(L, "tensor: element %s is a %s, expected a number", path, luaL_typename(L, idx));
    lua_Number v = lua_tonumber(L, idx);
    if (dt == ICL_F32) ((float *)out)[*pos] = (float)v;
    else ((int32_t *)out)[*pos] = (int32_t)v;
    (*pos)++;
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || (int64_t)lua_rawlen(L, idx) != shape[depth])
    luaL_error(L, "tensor: ragged nested table at %s (expected %lld elements at depth %d)", path,
               (long long)shape[depth], depth + 1);
  size_t used = strlen(path);
  for (int64_t i = 0; i < shape[depth]; i++) {
    snprintf(path + used, pathlen - used, "[%lld]", (long long)i + 1);
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    fill_from(L, lua_gettop(L), depth + 1, nd, shape, dt, out, pos, path, pathlen);
    lua_pop(L, 1);
  }
  path[used] = '\0';
}

static int l_tensor(lua_State *L) {
  static const char *const opts[] = {"device", "dtype", NULL};
  icl_lua_check_opts(L, 2, "tensor", opts);
  icl_dtype dt = opt_dtype(L, 2, "tensor");
  icl_device dev = icl_lua_opt_device(L, 2, "tensor");
  icl_ctx *ctx = icl_lua_ctx(L);
  if (lua_type(L, 1) == LUA_TNUMBER) { /* 0-dim */
    float f = (float)lua_tonumber(L, 1);
    int32_t i = (int32_t)lua_tonumber(L, 1);
    icl_lua_push_tensor(L, icl_tensor_from_host(ctx, dt == ICL_F32 ? (void *)&f : (void *)&i, dt, dev, 0, NULL));
    return 1;
  }
  if (icl_lua_is_tensor(L, 1)) {
    icl_lua_push_tensor(L, icl_clone(ctx, icl_lua_check_tensor(L, 1)));
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  int nd = 0;
  int64_t shape[ICL_MAX_DIMS];
  probe_shape(L, 1, 0, &nd, shape);
  int64_t n = icl_shape_numel(nd, shape);
  /* staging buffer as a Lua userdata: a malformed table raises mid-fill and
   * the collector then reclaims it, so nothing leaks */
  void *buf = lua_newuserdatauv(L, (size_t)(n ? n : 1) * icl_dtype_size(dt), 0);
  int64_t pos = 0;
  char path[256] = "";
  fill_from(L, 1, 0, nd, shape, dt, buf, &pos, path, sizeof path);
  icl_lua_push_tensor(L, icl_tensor_from_host(ctx, buf, dt, dev, nd, shape));
  return 1;
}

/* ---- back to Lua ------------------------------------------------------- */

/* Host copy of t's elements (contiguous, row-major). Caller frees. */
static void *host_copy(lua_State *L, icl_tensor *t) {
  size_t n = (size_t)icl_numel(t) * icl_dtype_size(t->dtype);
  void *buf = malloc(n ? n : 1);
  if (!buf) luaL_error(L, "out of memory copying a tensor to the host");
  if (icl_copy_to_host(icl_lua_ctx(L), buf, t)) {
    free(buf);
    icl_lua_raise(L);
  }
  return buf;
}

static void push_elem(lua_State *L, const void *buf, icl_dtype dt, int64_t i) {
  if (dt == ICL_F32) lua_pushnumber(L, ((const float *)buf)[i]);
  else lua_pushinteger(L, ((const int32_t *)buf)[i]);
}

static void build_table(lua_State *L, const void *buf, icl_dtype dt, int nd, const int64_t *shape, int depth,
                        int64_t *pos) {
  if (depth == nd) {
    push_elem(L, buf, dt, (*pos)++);
    return;
  }
  lua_createtable(L, (int)shape[depth], 0);
  for (int64_t i = 0; i < shape[depth]; i++) {
    build_table(L, buf, dt, nd, shape, depth + 1, pos);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int t_totable(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  void *buf = host_copy(L, t);
  int64_t pos = 0;
  build_table(L, buf, t->dtype, t->ndim, t->shape, 0, &pos);
  free(buf);
  return 1;
}

static int t_item(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  char b[128];
  if (icl_numel(t) != 1)
    return luaL_error(L, "item: tensor has %lld elements %s, expected exactly 1", (long long)icl_numel(t),
                      ICL_SHAPE_STR(t, b));
  void *buf = host_copy(L, t);
  push_elem(L, buf, t->dtype, 0);
  free(buf);
  return 1;
}

static int t_shape(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  icl_lua_push_shape(L, t->ndim, t->shape);
  return 1;
}

static int t_size(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  int d = icl_lua_dim(L, 2, "size", t->ndim, 0);
  lua_pushinteger(L, (lua_Integer)t->shape[d]);
  return 1;
}

static int t_stride(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  icl_lua_push_shape(L, t->ndim, t->stride);
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, icl_lua_check_tensor(L, 1)->ndim);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)icl_numel(icl_lua_check_tensor(L, 1)));
  return 1;
}

static int t_dtype(lua_State *L) {
  lua_pushstring(L, icl_dtype_name(icl_lua_check_tensor(L, 1)->dtype));
  return 1;
}

static int t_device(lua_State *L) {
  lua_pushstring(L, icl_device_name(icl_lua_check_tensor(L, 1)->storage->device));
  return 1;
}

static int t_is_contiguous(lua_State *L) {
  lua_pushboolean(L, icl_is_contiguous(icl_lua_check_tensor(L, 1)));
  return 1;
}

/* ---- printing ------------------------------------------------------------ */

#define PRINT_EDGE 3
#define PRINT_MAX 1000

static void fmt_elem(luaL_Buffer *b, const void *buf, icl_dtype dt, int64_t i, int sci, int width) {
  char s[64];
  if (dt == ICL_I32) snprintf(s, sizeof s, "%*d", width, ((const int32_t *)buf)[i]);
  else if (sci) snprintf(s, sizeof s, "%*.4e", width, ((const float *)buf)[i]);
  else snprintf(s, sizeof s, "%*.4f", width, ((const float *)buf)[i]);
  luaL_addstring(b, s);
}

static void print_rec(luaL_Buffer *b, const void *buf, const icl_tensor *t, int depth, int64_t base, int summarise,
                      int sci, int width) {
  int64_t n = t->shape[depth];
  int64_t inner = icl_shape_numel(t->ndim - depth - 1, t->shape + depth + 1);
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (summarise && n > 2 * PRINT_EDGE && i == PRINT_EDGE) {
      luaL_addstring(b, depth == t->ndim - 1 ? "...," : "...,\n");
      i = n - PRINT_EDGE;
    }
    if (depth == t->ndim - 1) fmt_elem(b, buf, t->dtype, base + i, sci, width);
    else print_rec(b, buf, t, depth + 1, base + i * inner, summarise, sci, width);
    if (i < n - 1) {
      luaL_addchar(b, ',');
      if (depth == t->ndim - 1) luaL_addchar(b, ' ');
      else {
        for (int k = depth; k < t->ndim - 1; k++) luaL_addchar(b, '\n');
        for (int k = 0; k <= depth; k++) luaL_addchar(b, ' ');
      }
    }
  }
  luaL_addchar(b, ']');
}

static int t_tostring(lua_State *L) {
  icl_lua_tensor *u = luaL_checkudata(L, 1, ICL_TENSOR_MT);
  if (!u->t) {
    lua_pushstring(L, "icl.Tensor (freed)");
    return 1;
  }
  icl_tensor *t = u->t;
  char sh[128];
  luaL_Buffer b;
  void *buf = host_copy(L, t);
  int64_t n = icl_numel(t);
  int sci = 0;
  if (t->dtype == ICL_F32) {
    float mx = 0, mn = INFINITY;
    for (int64_t i = 0; i < n; i++) {
      float a = fabsf(((float *)buf)[i]);
      if (!isfinite(a)) continue;
      mx = a > mx ? a : mx;
      if (a > 0) mn = a < mn ? a : mn;
    }
    sci = mx >= 1e5f || (mn < 1e-3f && mx > 0);
  }
  luaL_buffinit(L, &b);
  char head[256];
  snprintf(head, sizeof head, "icl.Tensor %s %s (%s)\n", icl_dtype_name(t->dtype), ICL_SHAPE_STR(t, sh),
           icl_device_name(t->storage->device));
  luaL_addstring(&b, head);
  if (t->ndim == 0) fmt_elem(&b, buf, t->dtype, 0, sci, 0);
  else if (n == 0) luaL_addstring(&b, "[]");
  else print_rec(&b, buf, t, 0, 0, n > PRINT_MAX, sci, sci ? 11 : 9);
  free(buf);
  luaL_pushresult(&b);
  return 1;
}

/* ---- views ------------------------------------------------------------- */

static int t_reshape(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int64_t shape[ICL_MAX_DIMS];
  /* sizes may include one -1; read them without the non-negative check */
  int nd = 0;
  if (lua_istable(L, 2)) {
    nd = (int)lua_rawlen(L, 2);
    if (nd > ICL_MAX_DIMS) return luaL_error(L, "reshape: too many dims");
    for (int i = 0; i < nd; i++) {
      lua_rawgeti(L, 2, i + 1);
      if (!lua_isinteger(L, -1)) return luaL_error(L, "reshape: size %d must be an integer", i + 1);
      shape[i] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    for (int i = 2; lua_type(L, i) == LUA_TNUMBER; i++) {
      if (nd >= ICL_MAX_DIMS) return luaL_error(L, "reshape: too many dims");
      shape[nd++] = luaL_checkinteger(L, i);
    }
  }
  icl_lua_push_tensor(L, icl_reshape(icl_lua_ctx(L), t, nd, shape));
  return 1;
}

static int t_transpose(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int a, b;
  if (lua_isnoneornil(L, 2)) {
    if (t->ndim != 2) return luaL_error(L, "transpose: without dims the tensor must be 2-dim (it has %d)", t->ndim);
    a = 0, b = 1;
  } else {
    a = icl_lua_dim(L, 2, "transpose", t->ndim, 0);
    b = icl_lua_dim(L, 3, "transpose", t->ndim, 0);
  }
  icl_lua_push_tensor(L, icl_transpose(icl_lua_ctx(L), t, a, b));
  return 1;
}

static int t_permute(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int perm[ICL_MAX_DIMS];
  int n = lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : lua_gettop(L) - 1;
  if (n != t->ndim) return luaL_error(L, "permute: %d dims given for a %d-dim tensor", n, t->ndim);
  for (int i = 0; i < n; i++) {
    if (lua_istable(L, 2)) lua_rawgeti(L, 2, i + 1);
    else lua_pushvalue(L, i + 2);
    perm[i] = icl_lua_dim(L, -1, "permute", t->ndim, 0);
    lua_pop(L, 1);
  }
  icl_lua_push_tensor(L, icl_permute(icl_lua_ctx(L), t, perm));
  return 1;
}

static int t_narrow(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int d = icl_lua_dim(L, 2, "narrow", t->ndim, 0);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  icl_lua_push_tensor(L, icl_narrow(icl_lua_ctx(L), t, d, start - 1, len));
  return 1;
}

static int t_select(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int d = icl_lua_dim(L, 2, "select", t->ndim, 0);
  lua_Integer i = luaL_checkinteger(L, 3);
  if (i < 0) i += t->shape[d] + 1;
  icl_lua_push_tensor(L, icl_select(icl_lua_ctx(L), t, d, i - 1));
  return 1;
}

static int t_expand(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int64_t shape[ICL_MAX_DIMS];
  int nd = 0;
  if (lua_istable(L, 2)) {
    nd = (int)lua_rawlen(L, 2);
    if (nd > ICL_MAX_DIMS) return luaL_error(L, "expand: too many dims");
    for (int i = 0; i < nd; i++) {
      lua_rawgeti(L, 2, i + 1);
      shape[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    for (int i = 2; lua_type(L, i) == LUA_TNUMBER && nd < ICL_MAX_DIMS; i++) shape[nd++] = lua_tointeger(L, i);
  }
  icl_lua_push_tensor(L, icl_expand(icl_lua_ctx(L), t, nd, shape));
  return 1;
}

static int t_unsqueeze(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int d = icl_lua_dim(L, 2, "unsqueeze", t->ndim, 1);
  icl_lua_push_tensor(L, icl_unsqueeze(icl_lua_ctx(L), t, d));
  return 1;
}

static int t_squeeze(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? ICL_DIM_ALL : icl_lua_dim(L, 2, "squeeze", t->ndim, 0);
  icl_lua_push_tensor(L, icl_squeeze(icl_lua_ctx(L), t, d));
  return 1;
}

static int t_view_same(lua_State *L) {
  icl_lua_push_tensor(L, icl_view_new(icl_lua_ctx(L), icl_lua_check_tensor(L, 1)));
  return 1;
}

static int t_contiguous(lua_State *L) {
  icl_lua_push_tensor(L, icl_contiguous(icl_lua_ctx(L), icl_lua_check_tensor(L, 1)));
  return 1;
}

static int t_clone(lua_State *L) {
  icl_lua_push_tensor(L, icl_clone(icl_lua_ctx(L), icl_lua_check_tensor(L, 1)));
  return 1;
}

static int t_to(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  static const char *const devs[] = {"cpu", "cuda", NULL};
  int d = luaL_checkoption(L, 2, NULL, devs);
  icl_lua_push_tensor(L, icl_to_device(icl_lua_ctx(L), t, d == 1 ? ICL_CUDA : ICL_CPU));
  return 1;
}

static int t_float(lua_State *L) {
  icl_lua_push_tensor(L, icl_to_dtype(icl_lua_ctx(L), icl_lua_check_tensor(L, 1), ICL_F32));
  return 1;
}

static int t_int(lua_State *L) {
  icl_lua_push_tensor(L, icl_to_dtype(icl_lua_ctx(L), icl_lua_check_tensor(L, 1), ICL_I32));
  return 1;
}

static int t_fill(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  icl_lua_check_rc(L, icl_fill(icl_lua_ctx(L), t, luaL_checknumber(L, 2)));
  lua_settop(L, 1);
  return 1;
}

static int t_copy(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1), *s = icl_lua_check_tensor(L, 2);
  icl_lua_check_rc(L, icl_copy_into(icl_lua_ctx(L), t, s));
  lua_settop(L, 1);
  return 1;
}

/* t[i]: a number for 1-dim tensors, else a view of row i (1-based) */
static int t_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    icl_tensor *t = icl_lua_check_tensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "index: cannot index a 0-dim tensor");
    lua_Integer i = luaL_checkinteger(L, 2);
    icl_ctx *ctx = icl_lua_ctx(L);
    icl_tensor *row = icl_select(ctx, t, 0, i - 1);
    if (!row) return icl_lua_raise(L);
    if (row->ndim == 0) {
      icl_lua_push_tensor(L, row);
      lua_replace(L, 1);
      lua_settop(L, 1);
      return t_item(L);
    }
    icl_lua_push_tensor(L, row);
    return 1;
  }
  luaL_getmetatable(L, ICL_TENSOR_MT);
  lua_getfield(L, -1, "__methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int t_newindex(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *row = icl_select(ctx, t, 0, i - 1);
  if (!row) return icl_lua_raise(L);
  int rc;
  if (lua_type(L, 3) == LUA_TNUMBER) rc = icl_fill(ctx, row, lua_tonumber(L, 3));
  else rc = icl_copy_into(ctx, row, icl_lua_check_tensor(L, 3));
  icl_tensor_free(ctx, row);
  icl_lua_check_rc(L, rc);
  return 0;
}

static int t_len(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  lua_pushinteger(L, t->ndim ? (lua_Integer)t->shape[0] : 0);
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, icl_lua_is_tensor(L, 1));
  return 1;
}

static int l_cat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  if (n < 1 || n > 4096) return luaL_error(L, "cat: expected 1..4096 tensors, got %d", n);
  const icl_tensor *ts[4096];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    ts[i] = icl_lua_check_tensor(L, -1);
    lua_pop(L, 1); /* still referenced by the argument table */
  }
  int d = lua_isnoneornil(L, 2) ? 0 : icl_lua_dim(L, 2, "cat", ts[0]->ndim, 0);
  icl_lua_push_tensor(L, icl_op_cat(icl_lua_ctx(L), ts, n, d));
  return 1;
}

static const luaL_Reg tensor_methods[] = {
    {"free", t_free},       {"is_freed", t_is_freed},   {"totable", t_totable},     {"item", t_item},
    {"shape", t_shape},     {"size", t_size},           {"stride", t_stride},       {"dim", t_dim},
    {"numel", t_numel},     {"dtype", t_dtype},         {"device", t_device},       {"is_contiguous", t_is_contiguous},
    {"reshape", t_reshape}, {"view", t_reshape},        {"transpose", t_transpose}, {"t", t_transpose},
    {"permute", t_permute}, {"narrow", t_narrow},       {"select", t_select},       {"expand", t_expand},
    {"unsqueeze", t_unsqueeze}, {"squeeze", t_squeeze}, {"alias", t_view_same},     {"contiguous", t_contiguous},
    {"clone", t_clone},     {"to", t_to},               {"float", t_float},         {"int", t_int},
    {"fill", t_fill},       {"copy", t_copy},           {NULL, NULL}};

static const luaL_Reg module_fns[] = {{"tensor", l_tensor},   {"zeros", l_zeros},       {"ones", l_ones},
                                      {"full", l_full},       {"randn", l_randn},       {"rand", l_rand},
                                      {"bernoulli", l_bernoulli}, {"randint", l_randint}, {"arange", l_arange},
                                      {"is_tensor", l_is_tensor}, {"cat", l_cat},       {NULL, NULL}};

void icl_lua_open_tensor(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  luaL_newmetatable(L, ICL_TENSOR_MT);
  lua_newtable(L); /* methods */
  luaL_setfuncs(L, tensor_methods, 0);
  icl_lua_tensor_ops_register(L, lua_gettop(L)); /* arithmetic methods + metamethods */
  lua_setfield(L, -2, "__methods");
  lua_pushcfunction(L, t_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, t_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, t_free);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, t_free);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, t_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, t_len);
  lua_setfield(L, -2, "__len");
  lua_pushstring(L, "icl.Tensor");
  lua_setfield(L, -2, "__name");
  icl_lua_tensor_ops_metamethods(L, lua_gettop(L));
  lua_pop(L, 1);
  lua_pushvalue(L, module_idx);
  luaL_setfuncs(L, module_fns, 0);
  lua_pop(L, 1);
}
