/* core.group_step(models, optimizers, sampler, xs_list, ys_list, draws, kind, losses):
 * one training step of K runs of one shape (see models/group.h).
 * draws[k] = {B =, N =, seed =, stream =, n_dims_truncated =}; losses[k]
 * are 0-dim float tensors on the models' device that receive the losses. */
#include <stdlib.h>

#include "lua_model.h"
#include "lua_modules.h"
#include "lua_util.h"
#include "models/group.h"

icl_task *icl_lua_check_task_sampler(lua_State *L, int idx);
icl_adamw *icl_lua_check_adamw(lua_State *L, int idx);

#define GROUP_MAX ICL_GROUP_MAX

static int l_group_step(lua_State *L) {
  static const char *const kinds[] = {"mse", "bce", NULL};
  for (int i = 1; i <= 6; i++)
    if (i != 3) luaL_checktype(L, i, LUA_TTABLE);
  int K = (int)lua_rawlen(L, 1);
  if (K < 1 || K > GROUP_MAX) return luaL_error(L, "group_step: 1..%d models, got %d", GROUP_MAX, K);
  for (int i = 2; i <= 6; i++)
    if (i != 3 && (int)lua_rawlen(L, i) != K) return luaL_error(L, "group_step: argument %d needs %d entries", i, K);
  icl_task *task = icl_lua_check_task_sampler(L, 3);
  int kind = luaL_checkoption(L, 7, "mse", kinds);
  int have_loss = lua_istable(L, 8);
  icl_model *models[GROUP_MAX];
  icl_adamw *opts[GROUP_MAX];
  icl_tensor *xs[GROUP_MAX], *ys[GROUP_MAX];
  icl_task_draw draws[GROUP_MAX];
  float *loss[GROUP_MAX];
  for (int k = 0; k < K; k++) {
    lua_rawgeti(L, 1, k + 1);
    models[k] = icl_lua_check_model(L, -1);
    lua_rawgeti(L, 2, k + 1);
    opts[k] = icl_lua_check_adamw(L, -1);
    lua_rawgeti(L, 4, k + 1);
    xs[k] = icl_lua_check_tensor(L, -1);
    lua_rawgeti(L, 5, k + 1);
    ys[k] = icl_lua_check_tensor(L, -1);
    lua_rawgeti(L, 6, k + 1);
    draws[k].B = icl_lua_opt_int(L, -1, "B", 0, "group_step");
    draws[k].N = icl_lua_opt_int(L, -1, "N", 0, "group_step");
    draws[k].seed = (uint64_t)icl_lua_opt_int(L, -1, "seed", 0, "group_step");
    lua_getfield(L, -1, "stream");
    draws[k].stream = (uint64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    draws[k].n_dims_truncated = icl_lua_opt_int(L, -1, "n_dims_truncated", (int)models[k]->n_dims, "group_step");
    draws[k].prompt_offset = 0;
    draws[k].stream_add = NULL;
    loss[k] = NULL;
    if (have_loss) {
      lua_rawgeti(L, 8, k + 1);
      icl_tensor *lt = icl_lua_check_tensor(L, -1);
      if (icl_numel(lt) != 1 || lt->dtype != ICL_F32) return luaL_error(L, "group_step: losses must be 1-element");
      loss[k] = icl_tensor_data(lt);
      lua_pop(L, 1);
    }
    lua_pop(L, 5); /* the objects stay referenced by the argument tables */
  }
  icl_lua_check_rc(L, icl_group_step(icl_lua_ctx(L), K, models, opts, task, xs, ys, draws, (icl_loss_kind)kind,
                                     loss));
  return 0;
}

void icl_lua_open_group(lua_State *L, int module_idx) {
  lua_pushcfunction(L, l_group_step);
  lua_setfield(L, module_idx, "group_step");
}
