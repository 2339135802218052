#include "lua_model.h"

#include <lauxlib.h>
#include <string.h>

#include "core/backend.h"
#include "lua_util.h"

typedef struct lmodel {
  icl_model *m;
} lmodel;

void icl_lua_push_model(lua_State *L, icl_model *m) {
  if (!m) {
    icl_lua_raise(L);
    return;
  }
  lmodel *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->m = m;
  luaL_setmetatable(L, ICL_MODEL_MT);
  if (m->params.value) icl_lua_account(L, (size_t)m->params.total * 2 * sizeof(float));
}

icl_model *icl_lua_check_model(lua_State *L, int idx) {
  lmodel *u = luaL_checkudata(L, idx, ICL_MODEL_MT);
  if (!u->m) luaL_argerror(L, idx, "model was freed");
  return u->m;
}

static int m_free(lua_State *L) {
  lmodel *u = luaL_checkudata(L, 1, ICL_MODEL_MT);
  if (u->m) icl_model_free(icl_lua_ctx(L), u->m);
  u->m = NULL;
  return 0;
}

/* xs [B,N,D] and ys [B,N] on the model's device, contiguous float32 */
static void check_batch(lua_State *L, icl_model *m, icl_tensor *xs, icl_tensor *ys, const char *fn) {
  char b1[128], b2[128];
  if (xs->ndim != 3 || ys->ndim != 2 || xs->shape[0] != ys->shape[0] || xs->shape[1] != ys->shape[1] ||
      xs->shape[2] != m->n_dims)
    luaL_error(L, "%s: expected xs [B, N, %d] and ys [B, N], got %s and %s", fn, (int)m->n_dims, ICL_SHAPE_STR(xs, b1),
               ICL_SHAPE_STR(ys, b2));
  if (xs->dtype != ICL_F32 || ys->dtype != ICL_F32) luaL_error(L, "%s: xs and ys must be float32", fn);
  if (xs->storage->device != m->device || ys->storage->device != m->device)
    luaL_error(L, "%s: xs and ys must be on the model's device (%s)", fn, icl_device_name(m->device));
}

/* contiguous copies when needed, left on the stack to stay alive */
static icl_tensor *contig(lua_State *L, int idx) {
  icl_tensor *t = icl_lua_check_tensor(L, idx);
  if (icl_is_contiguous(t)) {
    lua_pushvalue(L, idx);
    return t;
  }
  icl_lua_push_tensor(L, icl_contiguous(icl_lua_ctx(L), t));
  return icl_lua_check_tensor(L, -1);
}

static int forward_common(lua_State *L, int train) {
  icl_model *m = icl_lua_check_model(L, 1);
  icl_tensor *xs = contig(L, 2), *ys = contig(L, 3);
  check_batch(L, m, xs, ys, train ? "model:forward" : "model:predict");
  icl_ctx *ctx = icl_lua_ctx(L);
  int64_t shape[2] = {xs->shape[0], xs->shape[1]};
  icl_tensor *pred = icl_tensor_empty(ctx, ICL_F32, m->device, 2, shape);
  if (!pred) return icl_lua_raise(L);
  int rc = icl_model_forward(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), shape[0], shape[1],
                             icl_tensor_data(pred), train);
  if (rc) {
    icl_tensor_free(ctx, pred);
    return icl_lua_raise(L);
  }
  icl_lua_push_tensor(L, pred);
  return 1;
}

static int m_predict(lua_State *L) { return forward_common(L, 0); }

/* forward(xs, ys[, {train = true}]) */
static int m_forward(lua_State *L) {
  static const char *const opts[] = {"train", NULL};
  icl_lua_check_opts(L, 4, "model:forward", opts);
  int train = icl_lua_opt_bool(L, 4, "train", 1, "model:forward");
  lua_settop(L, 3);
  return forward_common(L, train);
}

static int m_backward(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  icl_tensor *d = contig(L, 2);
  char b[128];
  if (!m->last_B) return luaL_error(L, "model:backward: no training forward to differentiate");
  if (d->ndim != 2 || d->shape[0] != m->last_B || d->shape[1] != m->last_T / 2)
    return luaL_error(L, "model:backward: dpred %s must be [%d, %d] like the last forward's predictions",
                      ICL_SHAPE_STR(d, b), (int)m->last_B, (int)(m->last_T / 2));
  icl_lua_check_rc(L, icl_model_backward(icl_lua_ctx(L), m, icl_tensor_data(d)));
  return 0;
}

/* loss_step(xs, ys, "mse"|"bce"[, out]) -> 0-dim loss tensor (gradients zeroed, then filled).
 * out: a one-element float32 tensor on the model's device that receives the loss and is returned,
 * so that a training loop allocates nothing per step. */
static int m_loss_step(lua_State *L) {
  static const char *const kinds[] = {"mse", "bce", NULL};
  icl_model *m = icl_lua_check_model(L, 1);
  int kind = luaL_checkoption(L, 4, "mse", kinds);
  icl_tensor *out = lua_isnoneornil(L, 5) ? NULL : icl_lua_check_tensor(L, 5);
  if (out && (icl_numel(out) != 1 || out->dtype != ICL_F32 || out->storage->device != m->device))
    return luaL_error(L, "model:loss_step: out must be a one-element float32 tensor on the model's device (%s)",
                      icl_device_name(m->device));
  icl_tensor *xs = contig(L, 2), *ys = contig(L, 3);
  check_batch(L, m, xs, ys, "model:loss_step");
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *loss = out ? out : icl_tensor_empty(ctx, ICL_F32, m->device, 0, NULL);
  if (!loss) return icl_lua_raise(L);
  int rc = icl_model_loss_step(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), xs->shape[0], xs->shape[1],
                               (icl_loss_kind)kind, icl_tensor_data(loss));
  if (rc) {
    if (!out) icl_tensor_free(ctx, loss);
    return icl_lua_raise(L);
  }
  if (out) lua_pushvalue(L, 5);
  else icl_lua_push_tensor(L, loss);
  return 1;
}

/* num_params([{published = true}]): published asks the family's param_counts()
 * for the count the original stack reported (e.g. with an unused embedding) */
static int m_num_params(lua_State *L) {
  static const char *const opts[] = {"published", NULL};
  icl_model *m = icl_lua_check_model(L, 1);
  icl_lua_check_opts(L, 2, "model:num_params", opts);
  if (icl_lua_opt_bool(L, 2, "published", 0, "model:num_params")) {
    lua_getfield(L, 1, "param_counts");
    if (!lua_isfunction(L, -1))
      return luaL_error(L, "model:num_params: family '%s' has no published count", m->ops->family);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "published");
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)icl_params_count(&m->params));
  return 1;
}

static int m_param_list(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  lua_createtable(L, m->params.n, 0);
  for (int i = 0; i < m->params.n; i++) {
    const icl_param_info *e = &m->params.info[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "name");
    icl_lua_push_shape(L, e->ndim, e->shape);
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, (lua_Integer)e->offset);
    lua_setfield(L, -2, "offset");
    lua_pushinteger(L, (lua_Integer)e->numel);
    lua_setfield(L, -2, "numel");
    lua_pushboolean(L, e->decay);
    lua_setfield(L, -2, "decay");
    lua_pushboolean(L, e->trainable);
    lua_setfield(L, -2, "trainable");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int find_param(lua_State *L, icl_model *m, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int i = icl_params_find(&m->params, name);
  if (i < 0) luaL_error(L, "model: no parameter named '%s' (see model:param_list())", name);
  return i;
}

static int m_get(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  icl_lua_push_tensor(L, icl_params_view(icl_lua_ctx(L), &m->params, find_param(L, m, 2), 0));
  return 1;
}

static int m_grad(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  icl_lua_push_tensor(L, icl_params_view(icl_lua_ctx(L), &m->params, find_param(L, m, 2), 1));
  return 1;
}

/* set(name, tensor): copy values in (shape must match) */
static int m_set(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  int i = find_param(L, m, 2);
  icl_tensor *src = icl_lua_check_tensor(L, 3);
  const icl_param_info *e = &m->params.info[i];
  char b1[128], b2[128];
  int same = src->ndim == e->ndim;
  for (int k = 0; same && k < e->ndim; k++) same = src->shape[k] == e->shape[k];
  if (!same)
    return luaL_error(L, "model:set('%s'): shape %s, expected %s", e->name, ICL_SHAPE_STR(src, b1),
                      icl_shape_str(e->ndim, e->shape, b2, sizeof b2));
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *dst = icl_params_view(ctx, &m->params, i, 0);
  icl_tensor *s2 = dst ? icl_to_device(ctx, src, m->device) : NULL;
  int rc = s2 ? icl_copy_into(ctx, dst, s2) : ctx->errcode;
  icl_tensor_free(ctx, dst);
  icl_tensor_free(ctx, s2);
  icl_lua_check_rc(L, rc);
  return 0;
}

/* set_trainable(name, bool) / set_decay(name, bool): flags read by m:optimizer() */
static int m_set_flag(lua_State *L, int trainable) {
  icl_model *m = icl_lua_check_model(L, 1);
  int i = find_param(L, m, 2);
  luaL_checktype(L, 3, LUA_TBOOLEAN);
  if (trainable) m->params.info[i].trainable = lua_toboolean(L, 3);
  else m->params.info[i].decay = lua_toboolean(L, 3);
  return 0;
}
static int m_set_trainable(lua_State *L) { return m_set_flag(L, 1); }
static int m_set_decay(lua_State *L) { return m_set_flag(L, 0); }

static int m_flat(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_lua_push_tensor(L, icl_view_new(ctx, m->params.value));
  icl_lua_push_tensor(L, icl_view_new(ctx, m->params.grad));
  return 2;
}

static int m_zero_grad(lua_State *L) {
  icl_lua_check_rc(L, icl_params_zero_grad(icl_lua_ctx(L), &icl_lua_check_model(L, 1)->params));
  return 0;
}

static int m_optimizer(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  return icl_lua_push_adamw_params(L, &m->params, 2);
}

static int m_info(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, m->ops->family);
  lua_setfield(L, -2, "family");
  lua_pushinteger(L, (lua_Integer)m->n_dims);
  lua_setfield(L, -2, "n_dims");
  lua_pushinteger(L, (lua_Integer)m->hidden);
  lua_setfield(L, -2, "hidden");
  lua_pushstring(L, icl_device_name(m->device));
  lua_setfield(L, -2, "device");
  lua_pushinteger(L, (lua_Integer)icl_params_count(&m->params));
  lua_setfield(L, -2, "num_params");
  return 1;
}

static int m_family(lua_State *L) {
  lua_pushstring(L, icl_lua_check_model(L, 1)->ops->family);
  return 1;
}

/* uservalue 1: a Lua table the Lua layer may use (config, attached encodings) */
static int m_extra(lua_State *L) {
  icl_lua_check_model(L, 1);
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  return 1;
}

static const luaL_Reg methods[] = {{"predict", m_predict},
                                   {"forward", m_forward},
                                   {"backward", m_backward},
                                   {"loss_step", m_loss_step},
                                   {"num_params", m_num_params},
                                   {"param_list", m_param_list},
                                   {"get", m_get},
                                   {"grad", m_grad},
                                   {"set", m_set},
                                   {"set_trainable", m_set_trainable},
                                   {"set_decay", m_set_decay},
                                   {"flat", m_flat},
                                   {"zero_grad", m_zero_grad},
                                   {"optimizer", m_optimizer},
                                   {"info", m_info},
                                   {"family", m_family},
                                   {"extra", m_extra},
                                   {"free", m_free},
                                   {NULL, NULL}};

/* __index: common methods, then the family's own */
static int m_index(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "icl.model_methods");
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  lua_pop(L, 2);
  lmodel *u = luaL_checkudata(L, 1, ICL_MODEL_MT);
  if (!u->m) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "icl.family_methods");
  if (lua_getfield(L, -1, u->m->ops->family) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int m_tostring(lua_State *L) {
  lmodel *u = luaL_checkudata(L, 1, ICL_MODEL_MT);
  if (!u->m) lua_pushstring(L, "icl.Model (freed)");
  else
    lua_pushfstring(L, "icl.Model %s (n_dims %d, hidden %d, %d parameters, %s)", u->m->ops->family, (int)u->m->n_dims,
                    (int)u->m->hidden, (int)icl_params_count(&u->m->params), icl_device_name(u->m->device));
  return 1;
}

void icl_lua_register_family(lua_State *L, int module_idx, const char *name, lua_CFunction ctor,
                             const luaL_Reg *extra_methods) {
  module_idx = lua_absindex(L, module_idx);
  if (lua_getfield(L, module_idx, "_families") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, module_idx, "_families");
  }
  lua_pushcfunction(L, ctor);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "icl.family_methods");
  lua_newtable(L);
  if (extra_methods) luaL_setfuncs(L, extra_methods, 0);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void icl_lua_open_model(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  /* the Lua layer adds methods written in Lua (save, ...) to this table */
  lua_pushvalue(L, -1);
  lua_setfield(L, module_idx, "_model_methods");
  lua_setfield(L, LUA_REGISTRYINDEX, "icl.model_methods");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "icl.family_methods");
  luaL_newmetatable(L, ICL_MODEL_MT);
  lua_pushcfunction(L, m_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_free);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, m_free);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, m_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setfield(L, module_idx, "_families");
}
