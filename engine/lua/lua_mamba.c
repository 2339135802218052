/* Lua binding of the Mamba backbone: registers family "mamba" with the
 * generic model userdata (lua_model.h). The constructor takes the engine's
 * own option names; lua/icl/models/mamba.lua maps the published config keys
 * onto them. */
#include "lua_model.h"
#include "lua_modules.h"
#include "lua_util.h"
#include "models/mamba.h"

/* core._families.mamba{n_dims=, hidden=, state=, layers=, expand=, conv=, dt_rank=, chunk=, eps=,
 *   dt_min=, dt_max=, dt_init_floor=, dt_scale=, rescale_prenorm_residual=, seed=, device=} */
static int l_mamba_new(lua_State *L) {
  static const char *const opts[] = {"n_dims", "hidden",  "state",  "layers", "expand", "conv",
                                     "dt_rank", "chunk",  "eps",    "dt_min", "dt_max", "dt_init_floor",
                                     "dt_scale", "rescale_prenorm_residual", "seed", "device", NULL};
  const char *fn = "mamba";
  luaL_checktype(L, 1, LUA_TTABLE);
  icl_lua_check_opts(L, 1, fn, opts);
  int n_dims = icl_lua_opt_int(L, 1, "n_dims", 0, fn), hidden = icl_lua_opt_int(L, 1, "hidden", 0, fn);
  if (n_dims <= 0 || hidden <= 0) return luaL_error(L, "%s: n_dims and hidden must be positive integers", fn);
  icl_mamba_cfg c = icl_mamba_defaults(hidden);
  c.state = icl_lua_opt_int(L, 1, "state", (int)c.state, fn);
  c.layers = icl_lua_opt_int(L, 1, "layers", (int)c.layers, fn);
  c.expand = icl_lua_opt_int(L, 1, "expand", (int)c.expand, fn);
  c.conv = icl_lua_opt_int(L, 1, "conv", (int)c.conv, fn);
  c.dt_rank = icl_lua_opt_int(L, 1, "dt_rank", 0, fn);
  c.chunk = icl_lua_opt_int(L, 1, "chunk", (int)c.chunk, fn);
  c.eps = (float)icl_lua_opt_number(L, 1, "eps", c.eps, fn);
  c.dt_min = (float)icl_lua_opt_number(L, 1, "dt_min", c.dt_min, fn);
  c.dt_max = (float)icl_lua_opt_number(L, 1, "dt_max", c.dt_max, fn);
  c.dt_init_floor = (float)icl_lua_opt_number(L, 1, "dt_init_floor", c.dt_init_floor, fn);
  c.dt_scale = (float)icl_lua_opt_number(L, 1, "dt_scale", c.dt_scale, fn);
  c.rescale_prenorm_residual = icl_lua_opt_bool(L, 1, "rescale_prenorm_residual", 0, fn);
  int seed = icl_lua_opt_int(L, 1, "seed", 0, fn);
  icl_device dev = icl_lua_opt_device(L, 1, fn);
  icl_lua_push_model(L, icl_mamba_model_new(icl_lua_ctx(L), n_dims, &c, dev, (uint64_t)seed));
  return 1;
}

static const icl_mamba_cfg *check_mamba(lua_State *L) {
  const icl_mamba_cfg *c = icl_mamba_config(icl_lua_check_model(L, 1));
  if (!c) luaL_argerror(L, 1, "not a Mamba model");
  return c;
}

static int m_attention(lua_State *L) {
  check_mamba(L);
  return luaL_error(L, "model:attention: attention analysis does not apply to Mamba (attention-free)");
}

/* config() -> {hidden=, state=, layers=, expand=, conv=, dt_rank=, chunk=, eps=, inner=} */
static int m_config(lua_State *L) {
  const icl_mamba_cfg *c = check_mamba(L);
  lua_createtable(L, 0, 9);
  const struct {
    const char *k;
    int64_t v;
  } f[] = {{"hidden", c->hidden}, {"state", c->state},     {"layers", c->layers},
           {"expand", c->expand}, {"conv", c->conv},       {"dt_rank", c->dt_rank},
           {"chunk", c->chunk},   {"inner", c->expand * c->hidden}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    lua_pushinteger(L, (lua_Integer)f[i].v);
    lua_setfield(L, -2, f[i].k);
  }
  lua_pushnumber(L, c->eps);
  lua_setfield(L, -2, "eps");
  return 1;
}

/* workspace(B, T[, train]) -> saved floats, temporary floats (see icl_mamba_workspace_parts) */
static int m_workspace(lua_State *L) {
  check_mamba(L);
  lua_Integer B = luaL_checkinteger(L, 2), T = luaL_checkinteger(L, 3);
  int train = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
  if (B <= 0 || T <= 0) return luaL_error(L, "model:workspace: B and T must be positive");
  int64_t saved, temp;
  icl_mamba_workspace_parts(icl_lua_check_model(L, 1), B, T, train, &saved, &temp);
  lua_pushinteger(L, (lua_Integer)saved);
  lua_pushinteger(L, (lua_Integer)temp);
  return 2;
}

/* profile(on) switches phase timing on/off (and resets it); profile() ->
 * {gemm=, conv=, scan=, other= (seconds), gemm_flops=} since it was switched on */
static int m_profile(lua_State *L) {
  check_mamba(L);
  icl_model *m = icl_lua_check_model(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    icl_mamba_set_profiling(m, lua_toboolean(L, 2));
    return 0;
  }
  icl_mamba_profile p = icl_mamba_get_profile(m);
  lua_createtable(L, 0, 5);
  const struct {
    const char *k;
    double v;
  } f[] = {{"gemm", p.gemm}, {"conv", p.conv}, {"scan", p.scan}, {"other", p.other}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    lua_pushnumber(L, f[i].v);
    lua_setfield(L, -2, f[i].k);
  }
  lua_pushinteger(L, (lua_Integer)p.gemm_flops);
  lua_setfield(L, -2, "gemm_flops");
  return 1;
}

static const luaL_Reg mamba_methods[] = {{"attention", m_attention}, {"config", m_config},
                                         {"workspace", m_workspace}, {"profile", m_profile}, {NULL, NULL}};

void icl_lua_open_mamba(lua_State *L, int module_idx) {
  icl_lua_register_family(L, module_idx, "mamba", l_mamba_new, mamba_methods);
}
