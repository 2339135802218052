/* Lua binding of the training step (models/train_step.h), as
 * icl.core._train_step:
 *
 *   step = core._train_step(model, optimizer, sampler, {batch =, max_points =, seed =,
 *                                                       loss = "mse"|"bce", graphs = true})
 *   step:run(n_points, n_dims_truncated)   one step (the batch of stream = optimiser steps)
 *   step:loss(s) -> number                 the loss of 0-based step s (one of the last 256)
 *   step:stats() -> {eager=, captures=, replays=, nodes=, graphs=, why_off=}
 *   step:free()
 *   core._train_step_group(steps, lanes, n_points, n_dims_truncated)
 *                                          one step of each (icl_train_step_run_group); lanes: a
 *                                          list of GPU lanes, one per step, or nil (in turn)
 *
 * The step keeps the model, optimiser and sampler userdata alive (user
 * values) and checks before every call that none was freed. */
#include <string.h>

#include "lua_model.h"
#include "lua_modules.h"
#include "lua_util.h"
#include "models/train_step.h"
#include "optim/adamw.h"
#include "tasks/tasks.h"

#define TRAIN_STEP_MT "icl.TrainStep"

typedef struct lstep {
  icl_train_step *ts;
} lstep;

static int st_free(lua_State *L) {
  lstep *u = luaL_checkudata(L, 1, TRAIN_STEP_MT);
  if (u->ts) icl_train_step_free(icl_lua_ctx(L), u->ts);
  u->ts = NULL;
  return 0;
}

/* the step at idx, after checking that its model, optimiser and sampler are alive */
static icl_train_step *check_step_at(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lstep *u = luaL_checkudata(L, idx, TRAIN_STEP_MT);
  if (!u->ts) luaL_argerror(L, idx, "training step was freed");
  for (int k = 1; k <= 3; k++) lua_getiuservalue(L, idx, k);
  int top = lua_gettop(L);
  icl_lua_check_model(L, top - 2);
  icl_lua_check_adamw(L, top - 1);
  icl_lua_check_task_sampler(L, top);
  lua_pop(L, 3);
  return u->ts;
}

static icl_train_step *check_step(lua_State *L) { return check_step_at(L, 1); }

static int l_train_step(lua_State *L) {
  static const char *const opts[] = {"batch", "max_points", "seed", "loss", "graphs", NULL};
  static const char *const losses[] = {"mse", "bce", NULL};
  const char *fn = "train_step";
  icl_model *m = icl_lua_check_model(L, 1);
  icl_adamw *opt = icl_lua_check_adamw(L, 2);
  icl_task *task = icl_lua_check_task_sampler(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  icl_lua_check_opts(L, 4, fn, opts);
  icl_train_step_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.B = icl_lua_opt_int(L, 4, "batch", 0, fn);
  cfg.max_N = icl_lua_opt_int(L, 4, "max_points", 0, fn);
  lua_getfield(L, 4, "seed");
  cfg.seed = lua_isnil(L, -1) ? 0 : (uint64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  cfg.loss = icl_lua_opt_choice(L, 4, "loss", "mse", losses, fn) ? ICL_LOSS_BCE : ICL_LOSS_MSE;
  cfg.graphs = icl_lua_opt_bool(L, 4, "graphs", 1, fn);
  lstep *u = lua_newuserdatauv(L, sizeof *u, 3);
  u->ts = NULL;
  luaL_setmetatable(L, TRAIN_STEP_MT);
  for (int k = 1; k <= 3; k++) {
    lua_pushvalue(L, k);
    lua_setiuservalue(L, -2, k);
  }
  u->ts = icl_train_step_new(icl_lua_ctx(L), m, opt, task, &cfg);
  if (!u->ts) return icl_lua_raise(L);
  return 1;
}

static int st_run(lua_State *L) {
  icl_train_step *ts = check_step(L);
  lua_Integer N = luaL_checkinteger(L, 2), dt = luaL_checkinteger(L, 3);
  icl_lua_check_rc(L, icl_train_step_run(icl_lua_ctx(L), ts, (int64_t)N, (int64_t)dt));
  return 0;
}

static int st_loss(lua_State *L) {
  icl_train_step *ts = check_step(L);
  float v;
  icl_lua_check_rc(L, icl_train_step_loss(icl_lua_ctx(L), ts, (int64_t)luaL_checkinteger(L, 2), &v));
  lua_pushnumber(L, v);
  return 1;
}

static int st_stats(lua_State *L) {
  icl_train_step *ts = check_step(L);
  icl_train_step_stats s;
  icl_train_step_get_stats(ts, &s);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, s.eager);
  lua_setfield(L, -2, "eager");
  lua_pushinteger(L, s.captures);
  lua_setfield(L, -2, "captures");
  lua_pushinteger(L, s.replays);
  lua_setfield(L, -2, "replays");
  lua_pushinteger(L, s.nodes);
  lua_setfield(L, -2, "nodes");
  lua_pushboolean(L, s.graphs_on);
  lua_setfield(L, -2, "graphs");
  lua_pushstring(L, s.why_off);
  lua_setfield(L, -2, "why_off");
  return 1;
}

#define GROUP_MAX 64 /* ICL_GROUP_MAX (models/group.h) */

static int l_train_step_group(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int K = (int)luaL_len(L, 1);
  if (K < 1 || K > GROUP_MAX) return luaL_error(L, "train_step_group: 1..%d steps, got %d", GROUP_MAX, K);
  int with_lanes = !lua_isnoneornil(L, 2);
  if (with_lanes) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if ((int)luaL_len(L, 2) != K)
      return luaL_error(L, "train_step_group: %d steps but %d lanes", K, (int)luaL_len(L, 2));
  }
  lua_Integer N = luaL_checkinteger(L, 3), dt = luaL_checkinteger(L, 4);
  icl_train_step *ts[GROUP_MAX];
  int lanes[GROUP_MAX];
  for (int k = 0; k < K; k++) {
    lua_geti(L, 1, k + 1);
    ts[k] = check_step_at(L, -1);
    lua_pop(L, 1);
    if (with_lanes) {
      lua_geti(L, 2, k + 1);
      lanes[k] = (int)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  }
  icl_lua_check_rc(L, icl_train_step_run_group(icl_lua_ctx(L), K, ts, with_lanes ? lanes : NULL, (int64_t)N,
                                               (int64_t)dt));
  return 0;
}

static const luaL_Reg step_methods[] = {
    {"run", st_run}, {"loss", st_loss}, {"stats", st_stats}, {"free", st_free}, {NULL, NULL}};

void icl_lua_open_train(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  luaL_newmetatable(L, TRAIN_STEP_MT);
  lua_newtable(L);
  luaL_setfuncs(L, step_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, st_free);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, st_free);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_train_step);
  lua_setfield(L, module_idx, "_train_step");
  lua_pushcfunction(L, l_train_step_group);
  lua_setfield(L, module_idx, "_train_step_group");
}
