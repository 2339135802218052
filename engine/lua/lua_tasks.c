/* Lua binding of the task library, exposed as icl.core._tasks;
 * lua/icl/tasks.lua builds the public API (icl.task, icl.baselines,
 * icl.register_task) on top.
 *
 *   _tasks.names() -> {name, ...}
 *   _tasks.info(name) -> {data=, loss=, metric=, baselines={...}, options={...}, defaults={...}}
 *   _tasks.new(name, opts) -> sampler      opts: n_dims + the task's options (info.options)
 *   sampler:sample(B, N, draw) -> xs, ys   draw: seed, stream, n_dims_truncated, device, prompt_offset
 *   sampler:sample_into(xs, ys, draw)
 *   _tasks.sample_inputs("gaussian"|"boolean", B, N, D, draw) -> xs
 *   _tasks.metric("squared_error"|"accuracy", pred, ys) -> [B,N]
 *   _tasks.baseline(name, xs, ys [, {tol=, max_iter=}]) -> pred
 *   _tasks.derive_seed(seed, stream, tag) -> integer
 *   _tasks.next_seed() -> seed, stream      (the context's default generator)
 *   _tasks.wall_time() -> seconds            (monotonic clock, for benchmarks) */
#include <string.h>
#include <time.h>

#include "lua_modules.h"
#include "lua_util.h"
#include "tasks/baselines.h"
#include "tasks/tasks.h"

#define SAMPLER_MT "icl.TaskSampler"

typedef struct lsampler {
  icl_task *t;
} lsampler;

static icl_task *check_sampler(lua_State *L, int idx) {
  lsampler *u = luaL_checkudata(L, idx, SAMPLER_MT);
  if (!u->t) luaL_argerror(L, idx, "task sampler was freed");
  return u->t;
}

icl_task *icl_lua_check_task_sampler(lua_State *L, int idx) { return check_sampler(L, idx); }

static int s_gc(lua_State *L) {
  lsampler *u = luaL_checkudata(L, 1, SAMPLER_MT);
  if (u->t) icl_task_free(icl_lua_ctx(L), u->t);
  u->t = NULL;
  return 0;
}

static icl_task_kind check_kind(lua_State *L, int idx) {
  icl_task_kind k;
  if (icl_task_from_name(icl_lua_ctx(L), luaL_checkstring(L, idx), &k)) icl_lua_raise(L);
  return k;
}

/* The options a task accepts (NULL-terminated, into out[16]). */
static void task_options(icl_task_kind k, const char **out) {
  int n = 0;
  out[n++] = "n_dims";
  out[n++] = "independent_label_function";
  if (icl_task_input(k) == ICL_INPUT_BOOLEAN) {
    out[n++] = "truncate_boolean";
  } else {
    if (k != ICL_TASK_DECISION_TREE) out[n++] = "scale";
    if (k == ICL_TASK_SPARSE_LINEAR_REGRESSION) out[n++] = "sparsity", out[n++] = "sparse_support_all_dims";
    if (k == ICL_TASK_NOISY_LINEAR_REGRESSION) out[n++] = "noise_std", out[n++] = "renormalize_ys";
    if (k == ICL_TASK_RELU_2NN_REGRESSION) out[n++] = "hidden";
    if (k == ICL_TASK_DECISION_TREE) out[n++] = "depth";
  }
  out[n] = NULL;
}

static int l_names(lua_State *L) {
  lua_createtable(L, ICL_TASK__COUNT, 0);
  for (int k = 0; k < ICL_TASK__COUNT; k++) {
    lua_pushstring(L, icl_task_name((icl_task_kind)k));
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

static void push_params(lua_State *L, const icl_task_params *p) {
  const char *opts[16];
  task_options(p->kind, opts);
  lua_createtable(L, 0, 8);
  for (int i = 0; opts[i]; i++) {
    const char *o = opts[i];
    if (!strcmp(o, "n_dims")) lua_pushinteger(L, p->n_dims);
    else if (!strcmp(o, "independent_label_function")) lua_pushboolean(L, p->independent_label_function);
    else if (!strcmp(o, "truncate_boolean")) lua_pushboolean(L, p->truncate_boolean);
    else if (!strcmp(o, "scale")) lua_pushnumber(L, p->scale);
    else if (!strcmp(o, "sparsity")) lua_pushinteger(L, p->sparsity);
    else if (!strcmp(o, "sparse_support_all_dims")) lua_pushboolean(L, p->sparse_support_all_dims);
    else if (!strcmp(o, "noise_std")) lua_pushnumber(L, p->noise_std);
    else if (!strcmp(o, "renormalize_ys")) lua_pushboolean(L, p->renormalize_ys);
    else if (!strcmp(o, "hidden")) lua_pushinteger(L, p->hidden);
    else lua_pushinteger(L, p->depth);
    lua_setfield(L, -2, o);
  }
}

static int l_info(lua_State *L) {
  icl_task_kind k = check_kind(L, 1);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, icl_task_input(k) == ICL_INPUT_BOOLEAN ? "boolean" : "gaussian");
  lua_setfield(L, -2, "data");
  lua_pushstring(L, icl_task_loss(k) == ICL_LOSS_BCE ? "bce" : "mse");
  lua_setfield(L, -2, "loss");
  lua_pushstring(L, icl_task_metric_kind(k) == ICL_METRIC_ACCURACY ? "accuracy" : "squared_error");
  lua_setfield(L, -2, "metric");
  lua_newtable(L);
  const char *const *bl = icl_task_default_baselines(k);
  for (int i = 0; bl[i]; i++) {
    lua_pushstring(L, bl[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "baselines");
  const char *opts[16];
  task_options(k, opts);
  lua_newtable(L);
  for (int i = 0; opts[i]; i++) {
    lua_pushstring(L, opts[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "options");
  icl_task_params p = icl_task_defaults(k, 20);
  push_params(L, &p);
  lua_setfield(L, -2, "defaults");
  return 1;
}

static uint64_t opt_u64(lua_State *L, int idx, const char *key, uint64_t dflt, const char *fname, int *given) {
  if (given) *given = 0;
  if (lua_isnoneornil(L, idx)) return dflt;
  int t = lua_getfield(L, idx, key);
  uint64_t v = dflt;
  if (t != LUA_TNIL) {
    if (!lua_isinteger(L, -1)) luaL_error(L, "%s: option '%s' must be an integer, got %s", fname, key,
                                          t == LUA_TNUMBER ? "a non-integer number" : lua_typename(L, t));
    v = (uint64_t)lua_tointeger(L, -1);
    if (given) *given = 1;
  }
  lua_pop(L, 1);
  return v;
}

static int64_t opt_i64(lua_State *L, int idx, const char *key, int64_t dflt, const char *fname) {
  return (int64_t)opt_u64(L, idx, key, (uint64_t)dflt, fname, NULL);
}

static int l_new(lua_State *L) {
  icl_task_kind k = check_kind(L, 1);
  const char *fn = icl_task_name(k);
  const char *opts[16];
  task_options(k, opts);
  icl_lua_check_opts(L, 2, fn, opts);
  icl_task_params p = icl_task_defaults(k, opt_i64(L, 2, "n_dims", 20, fn));
  p.independent_label_function = icl_lua_opt_bool(L, 2, "independent_label_function", 0, fn);
  p.truncate_boolean = icl_lua_opt_bool(L, 2, "truncate_boolean", 0, fn);
  p.scale = (float)icl_lua_opt_number(L, 2, "scale", p.scale, fn);
  p.sparsity = icl_lua_opt_int(L, 2, "sparsity", p.sparsity, fn);
  p.sparse_support_all_dims = icl_lua_opt_bool(L, 2, "sparse_support_all_dims", 0, fn);
  p.noise_std = (float)icl_lua_opt_number(L, 2, "noise_std", p.noise_std, fn);
  p.renormalize_ys = icl_lua_opt_bool(L, 2, "renormalize_ys", 0, fn);
  p.hidden = icl_lua_opt_int(L, 2, "hidden", p.hidden, fn);
  p.depth = icl_lua_opt_int(L, 2, "depth", p.depth, fn);
  lsampler *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  luaL_setmetatable(L, SAMPLER_MT);
  u->t = icl_task_new(icl_lua_ctx(L), &p);
  if (!u->t) return icl_lua_raise(L);
  return 1;
}

static const char *const draw_opts[] = {"seed", "stream", "n_dims_truncated", "device", "prompt_offset", NULL};

/* the per-call options; without a seed the context's default generator
 * gives the seed (icl.manual_seed) and, unless a stream is given, its next
 * stream, like icl.randn */
static icl_task_draw read_draw(lua_State *L, int idx, int64_t D, const char *fn) {
  icl_lua_check_opts(L, idx, fn, draw_opts);
  icl_task_draw d;
  memset(&d, 0, sizeof d);
  int has_seed, has_stream;
  icl_ctx *ctx = icl_lua_ctx(L);
  d.seed = opt_u64(L, idx, "seed", 0, fn, &has_seed);
  d.stream = opt_u64(L, idx, "stream", 0, fn, &has_stream);
  if (!has_seed) {
    d.seed = ctx->rng_seed;
    if (!has_stream) d.stream = ctx->rng_stream++;
  }
  d.n_dims_truncated = opt_i64(L, idx, "n_dims_truncated", D, fn);
  d.prompt_offset = opt_i64(L, idx, "prompt_offset", 0, fn);
  return d;
}

static int s_sample(lua_State *L) {
  icl_task *t = check_sampler(L, 1);
  const char *fn = icl_task_name(t->p.kind);
  lua_Integer B = luaL_checkinteger(L, 2), N = luaL_checkinteger(L, 3);
  icl_task_draw d = read_draw(L, 4, t->p.n_dims, fn);
  d.B = B;
  d.N = N;
  icl_device dev = icl_lua_opt_device(L, 4, fn);
  icl_tensor *xs, *ys;
  if (icl_task_sample(icl_lua_ctx(L), t, dev, &d, &xs, &ys)) return icl_lua_raise(L);
  icl_lua_push_tensor(L, xs);
  icl_lua_push_tensor(L, ys);
  return 2;
}

static int s_sample_into(lua_State *L) {
  icl_task *t = check_sampler(L, 1);
  icl_tensor *xs = icl_lua_check_tensor(L, 2), *ys = icl_lua_check_tensor(L, 3);
  icl_task_draw d = read_draw(L, 4, t->p.n_dims, icl_task_name(t->p.kind));
  icl_lua_check_rc(L, icl_task_sample_into(icl_lua_ctx(L), t, xs, ys, &d));
  return 0;
}

static int s_params(lua_State *L) {
  icl_task *t = check_sampler(L, 1);
  push_params(L, &t->p);
  return 1;
}

static icl_input_kind check_input(lua_State *L, int idx) {
  static const char *const kinds[] = {"gaussian", "boolean", NULL};
  return luaL_checkoption(L, idx, NULL, kinds) == 1 ? ICL_INPUT_BOOLEAN : ICL_INPUT_GAUSSIAN;
}

static int l_sample_inputs(lua_State *L) {
  icl_input_kind kind = check_input(L, 1);
  lua_Integer B = luaL_checkinteger(L, 2), N = luaL_checkinteger(L, 3), D = luaL_checkinteger(L, 4);
  const char *fn = kind == ICL_INPUT_BOOLEAN ? "sample_inputs(boolean)" : "sample_inputs(gaussian)";
  icl_task_draw d = read_draw(L, 5, D, fn);
  if (B < 0 || N < 0 || D < 1) return luaL_error(L, "%s: need B, N >= 0 and D >= 1", fn);
  int64_t shape[3] = {B, N, D};
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *xs = icl_tensor_empty(ctx, ICL_F32, icl_lua_opt_device(L, 5, fn), 3, shape);
  if (!xs) return icl_lua_raise(L);
  icl_lua_push_tensor(L, xs); /* owned by Lua before anything can raise */
  icl_lua_check_rc(L, icl_task_sample_inputs_into(ctx, kind, xs, &d));
  return 1;
}

static int l_metric(lua_State *L) {
  static const char *const kinds[] = {"squared_error", "accuracy", NULL};
  int k = luaL_checkoption(L, 1, NULL, kinds);
  icl_lua_push_tensor(L, icl_task_metric(icl_lua_ctx(L), k ? ICL_METRIC_ACCURACY : ICL_METRIC_SQUARED_ERROR,
                                         icl_lua_check_tensor(L, 2), icl_lua_check_tensor(L, 3)));
  return 1;
}

static int l_baseline(lua_State *L) {
  static const char *const opts[] = {"tol", "max_iter", NULL};
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_baseline bl;
  if (icl_baseline_parse(ctx, luaL_checkstring(L, 1), &bl)) return icl_lua_raise(L);
  icl_tensor *xs = icl_lua_check_tensor(L, 2), *ys = icl_lua_check_tensor(L, 3);
  icl_lua_check_opts(L, 4, "baseline", opts);
  bl.tol = icl_lua_opt_number(L, 4, "tol", bl.tol, "baseline");
  bl.max_iter = opt_i64(L, 4, "max_iter", bl.max_iter, "baseline");
  icl_lua_push_tensor(L, icl_baseline_run(ctx, &bl, xs, ys));
  return 1;
}

static int l_derive_seed(lua_State *L) {
  uint64_t seed = (uint64_t)luaL_checkinteger(L, 1), stream = (uint64_t)luaL_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)icl_task_derive_seed(seed, stream, luaL_checkstring(L, 3)));
  return 1;
}

static int l_next_seed(lua_State *L) {
  icl_ctx *ctx = icl_lua_ctx(L);
  lua_pushinteger(L, (lua_Integer)ctx->rng_seed);
  lua_pushinteger(L, (lua_Integer)ctx->rng_stream++);
  return 2;
}

static int l_wall_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}

static const luaL_Reg sampler_methods[] = {{"sample", s_sample}, {"sample_into", s_sample_into},
                                           {"params", s_params}, {"free", s_gc},
                                           {NULL, NULL}};

static const luaL_Reg task_fns[] = {{"names", l_names},
                                    {"info", l_info},
                                    {"new", l_new},
                                    {"sample_inputs", l_sample_inputs},
                                    {"metric", l_metric},
                                    {"baseline", l_baseline},
                                    {"derive_seed", l_derive_seed},
                                    {"next_seed", l_next_seed},
                                    {"wall_time", l_wall_time},
                                    {NULL, NULL}};

void icl_lua_open_tasks(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  luaL_newmetatable(L, SAMPLER_MT);
  lua_newtable(L);
  luaL_setfuncs(L, sampler_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, s_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, s_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, task_fns, 0);
  lua_setfield(L, module_idx, "_tasks");
}
