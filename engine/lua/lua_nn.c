/* Lua binding of the C modules, losses, AdamW and the gradient checker.
 * Exposed as icl.core._nn / ._optim / .gradcheck; lua/icl/nn.lua and
 * lua/icl/optim.lua build the public tables on top. */
#include <stdlib.h>
#include <string.h>

#include "lua_model.h"
#include "lua_modules.h"
#include "lua_util.h"
#include "nn/gradcheck.h"
#include "nn/module.h"
#include "optim/adamw.h"

#define MODULE_MT "icl.CModule"
#define ADAMW_MT "icl.AdamW"

typedef struct lmodule {
  icl_module *m;
} lmodule;

static icl_module *check_module(lua_State *L, int idx) {
  lmodule *u = luaL_checkudata(L, idx, MODULE_MT);
  if (!u->m) luaL_argerror(L, idx, "module was freed");
  return u->m;
}

static int push_module(lua_State *L, icl_module *m) {
  if (!m) return icl_lua_raise(L);
  lmodule *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = m;
  luaL_setmetatable(L, MODULE_MT);
  return 1;
}

static int m_gc(lua_State *L) {
  lmodule *u = luaL_checkudata(L, 1, MODULE_MT);
  if (u->m) icl_module_free(icl_lua_ctx(L), u->m);
  u->m = NULL;
  return 0;
}

static const char *const mod_opts[] = {"bias", "seed", "device", "eps", NULL};

static int l_linear(lua_State *L) {
  lua_Integer in = luaL_checkinteger(L, 1), out = luaL_checkinteger(L, 2);
  icl_lua_check_opts(L, 3, "Linear", mod_opts);
  int bias = icl_lua_opt_bool(L, 3, "bias", 1, "Linear");
  int seed = icl_lua_opt_int(L, 3, "seed", 0, "Linear");
  icl_device dev = icl_lua_opt_device(L, 3, "Linear");
  return push_module(L, icl_linear_new(icl_lua_ctx(L), in, out, bias, dev, (uint64_t)seed));
}

static int l_rmsnorm(lua_State *L) {
  lua_Integer d = luaL_checkinteger(L, 1);
  icl_lua_check_opts(L, 2, "RMSNorm", mod_opts);
  double eps = icl_lua_opt_number(L, 2, "eps", 1e-6, "RMSNorm");
  return push_module(L, icl_rmsnorm_new(icl_lua_ctx(L), d, (float)eps, icl_lua_opt_device(L, 2, "RMSNorm")));
}

static int l_silu(lua_State *L) { return push_module(L, icl_silu_new(icl_lua_ctx(L))); }

static int l_swiglu(lua_State *L) {
  lua_Integer d = luaL_checkinteger(L, 1), h = luaL_checkinteger(L, 2);
  icl_lua_check_opts(L, 3, "SwiGLU", mod_opts);
  int seed = icl_lua_opt_int(L, 3, "seed", 0, "SwiGLU");
  return push_module(L, icl_swiglu_new(icl_lua_ctx(L), d, h, icl_lua_opt_device(L, 3, "SwiGLU"), (uint64_t)seed));
}

static int m_forward(lua_State *L) {
  icl_module *m = check_module(L, 1);
  icl_lua_push_tensor(L, icl_module_forward(icl_lua_ctx(L), m, icl_lua_check_tensor(L, 2)));
  return 1;
}

static int m_backward(lua_State *L) {
  icl_module *m = check_module(L, 1);
  icl_lua_push_tensor(L, icl_module_backward(icl_lua_ctx(L), m, icl_lua_check_tensor(L, 2),
                                             icl_lua_check_tensor(L, 3)));
  return 1;
}

static int m_parameters(lua_State *L) {
  icl_module *m = check_module(L, 1);
  icl_ctx *ctx = icl_lua_ctx(L);
  lua_createtable(L, m->nparams, 0);
  for (int i = 0; i < m->nparams; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, m->pname[i]);
    lua_setfield(L, -2, "name");
    icl_lua_push_tensor(L, icl_view_new(ctx, m->param[i]));
    lua_setfield(L, -2, "value");
    icl_lua_push_tensor(L, icl_view_new(ctx, m->grad[i]));
    lua_setfield(L, -2, "grad");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_zero_grad(lua_State *L) {
  icl_lua_check_rc(L, icl_module_zero_grad(icl_lua_ctx(L), check_module(L, 1)));
  return 0;
}

/* bind(value_flat, grad_flat, offset) -> offset after; offsets count elements from 0 */
static int m_bind(lua_State *L) {
  icl_module *m = check_module(L, 1);
  icl_tensor *v = icl_lua_check_tensor(L, 2), *g = icl_lua_check_tensor(L, 3);
  lua_Integer off = luaL_optinteger(L, 4, 0);
  int64_t next;
  icl_lua_check_rc(L, icl_module_bind(icl_lua_ctx(L), m, v, g, off, &next));
  lua_pushinteger(L, (lua_Integer)next);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)icl_module_numel(check_module(L, 1)));
  return 1;
}

static int m_kind(lua_State *L) {
  lua_pushstring(L, check_module(L, 1)->ops->kind);
  return 1;
}

static int loss(lua_State *L, icl_loss_kind kind) {
  icl_tensor *g = NULL;
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *v = icl_loss_fwd(ctx, kind, icl_lua_check_tensor(L, 1), icl_lua_check_tensor(L, 2), &g);
  icl_lua_push_tensor(L, v);
  icl_lua_push_tensor(L, g);
  return 2;
}

static int l_mse(lua_State *L) { return loss(L, ICL_LOSS_MSE); }
static int l_bce(lua_State *L) { return loss(L, ICL_LOSS_BCE); }

/* ---- AdamW ---------------------------------------------------------------- */

typedef struct ladamw {
  icl_adamw opt;
  int live;
} ladamw;

static ladamw *check_adamw(lua_State *L, int idx) {
  ladamw *u = luaL_checkudata(L, idx, ADAMW_MT);
  if (!u->live) luaL_argerror(L, idx, "optimiser was freed");
  return u;
}

icl_adamw *icl_lua_check_adamw(lua_State *L, int idx) { return &check_adamw(L, idx)->opt; }

static int a_gc(lua_State *L) {
  ladamw *u = luaL_checkudata(L, 1, ADAMW_MT);
  if (u->live) icl_adamw_free(icl_lua_ctx(L), &u->opt);
  u->live = 0;
  return 0;
}

static const char *const adamw_opts[] = {"lr",           "beta1",    "beta2",  "eps",         "weight_decay",
                                         "max_grad_norm", "schedule", "warmup", "total_steps", NULL};

static icl_adamw_cfg adamw_cfg(lua_State *L, int oi) {
  const char *fn = "AdamW";
  icl_lua_check_opts(L, oi, fn, adamw_opts);
  icl_adamw_cfg c = icl_adamw_defaults((float)icl_lua_opt_number(L, oi, "lr", 1e-3, fn));
  c.beta1 = (float)icl_lua_opt_number(L, oi, "beta1", 0.9, fn);
  c.beta2 = (float)icl_lua_opt_number(L, oi, "beta2", 0.999, fn);
  c.eps = (float)icl_lua_opt_number(L, oi, "eps", 1e-8, fn);
  c.weight_decay = (float)icl_lua_opt_number(L, oi, "weight_decay", 0.01, fn);
  c.max_grad_norm = (float)icl_lua_opt_number(L, oi, "max_grad_norm", 0, fn);
  static const char *const scheds[] = {"constant", "linear", NULL};
  c.sched.kind = (icl_sched_kind)icl_lua_opt_choice(L, oi, "schedule", "constant", scheds, fn);
  c.sched.warmup = (float)icl_lua_opt_number(L, oi, "warmup", 0, fn);
  c.sched.total = (float)icl_lua_opt_number(L, oi, "total_steps", 0, fn);
  return c;
}

static ladamw *new_adamw(lua_State *L) {
  ladamw *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, ADAMW_MT);
  return u;
}

/* AdamW(value_flat, grad_flat, opts) */
static int l_adamw(lua_State *L) {
  icl_tensor *v = icl_lua_check_tensor(L, 1), *g = icl_lua_check_tensor(L, 2);
  icl_adamw_cfg c = adamw_cfg(L, 3);
  ladamw *u = new_adamw(L);
  icl_lua_check_rc(L, icl_adamw_init(icl_lua_ctx(L), &u->opt, v, g, c));
  u->live = 1;
  return 1;
}

int icl_lua_push_adamw_params(lua_State *L, icl_params *p, int opts_idx) {
  icl_adamw_cfg c = adamw_cfg(L, opts_idx);
  ladamw *u = new_adamw(L);
  icl_lua_check_rc(L, icl_adamw_init_params(icl_lua_ctx(L), &u->opt, p, c));
  u->live = 1;
  return 1;
}

static int a_step(lua_State *L) {
  ladamw *u = check_adamw(L, 1);
  icl_lua_check_rc(L, icl_adamw_step(icl_lua_ctx(L), &u->opt));
  return 0;
}

static int a_scalars(lua_State *L) {
  ladamw *u = check_adamw(L, 1);
  float s[ICL_OPT_NSCALARS];
  icl_lua_check_rc(L, icl_adamw_scalars(icl_lua_ctx(L), &u->opt, s));
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, s[ICL_OPT_LR]);
  lua_setfield(L, -2, "lr");
  lua_pushnumber(L, s[ICL_OPT_GNORM]);
  lua_setfield(L, -2, "grad_norm");
  lua_pushnumber(L, s[ICL_OPT_CLIP]);
  lua_setfield(L, -2, "clip");
  lua_pushinteger(L, (lua_Integer)s[ICL_OPT_STEPS]);
  lua_setfield(L, -2, "steps");
  lua_pushinteger(L, (lua_Integer)s[ICL_OPT_BAD] - 1);
  lua_setfield(L, -2, "bad_step"); /* -1: none */
  return 1;
}

/* the optimiser's state tensors (views, for checkpoints): m, v, scalars */
static int a_state(lua_State *L) {
  ladamw *u = check_adamw(L, 1);
  icl_ctx *ctx = icl_lua_ctx(L);
  lua_createtable(L, 0, 3);
  icl_lua_push_tensor(L, icl_view_new(ctx, u->opt.m));
  lua_setfield(L, -2, "m");
  icl_lua_push_tensor(L, icl_view_new(ctx, u->opt.v));
  lua_setfield(L, -2, "v");
  icl_lua_push_tensor(L, icl_view_new(ctx, u->opt.scal));
  lua_setfield(L, -2, "scalars");
  return 1;
}

/* segments: list of {offset=, length=, decay=bool, frozen=bool} */
static int a_set_segments(lua_State *L) {
  ladamw *u = check_adamw(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2);
  if (n < 1) return luaL_error(L, "AdamW:set_segments: need at least one segment");
  icl_adamw_segment *seg = lua_newuserdatauv(L, sizeof *seg * (size_t)n, 0);
  int64_t total = u->opt.value->shape[0];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    seg[i].offset = icl_lua_opt_int(L, -1, "offset", 0, "AdamW:set_segments");
    seg[i].length = icl_lua_opt_int(L, -1, "length", 0, "AdamW:set_segments");
    seg[i].decay = icl_lua_opt_bool(L, -1, "decay", 1, "AdamW:set_segments");
    seg[i].frozen = icl_lua_opt_bool(L, -1, "frozen", 0, "AdamW:set_segments");
    lua_pop(L, 1);
    if (seg[i].offset < 0 || seg[i].length < 0 || seg[i].offset + seg[i].length > total)
      return luaL_error(L, "AdamW:set_segments: segment %d is outside the %lld-element buffer", i + 1,
                        (long long)total);
  }
  icl_adamw_segment *copy = realloc(u->opt.seg, sizeof *copy * (size_t)n);
  if (!copy) return luaL_error(L, "AdamW:set_segments: out of memory");
  memcpy(copy, seg, sizeof *copy * (size_t)n);
  u->opt.seg = copy;
  u->opt.nseg = n;
  return 0;
}

/* ---- gradcheck ------------------------------------------------------------ */

typedef struct gc_ud {
  lua_State *L;
  int fn_idx;
} gc_ud;

static int gc_eval(icl_ctx *ctx, void *ud, double *loss) {
  gc_ud *g = ud;
  lua_State *L = g->L;
  lua_pushvalue(L, g->fn_idx);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    icl_errorf(ctx, ICL_ECALLBACK, "gradcheck: the loss function failed: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return ICL_ECALLBACK;
  }
  int ok = 0;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    *loss = lua_tonumber(L, -1);
    ok = 1;
  } else if (icl_lua_is_tensor(L, -1)) {
    icl_tensor *t = icl_lua_to_tensor(L, -1);
    float v;
    if (t && icl_numel(t) == 1 && t->dtype == ICL_F32 && !icl_copy_to_host(ctx, &v, t)) {
      *loss = v;
      ok = 1;
    }
  }
  lua_pop(L, 1);
  if (!ok) return icl_errorf(ctx, ICL_ECALLBACK, "gradcheck: the loss function must return a number or a 1-element tensor");
  return ICL_OK;
}

static int l_gradcheck(lua_State *L) {
  static const char *const opts[] = {"eps", "max_checks", "seed", NULL};
  luaL_checktype(L, 1, LUA_TFUNCTION);
  icl_tensor *x = icl_lua_check_tensor(L, 2), *g = icl_lua_check_tensor(L, 3);
  icl_lua_check_opts(L, 4, "gradcheck", opts);
  char b1[128], b2[128];
  if (x->storage->device != ICL_CPU || x->dtype != ICL_F32 || !icl_is_contiguous(x))
    return luaL_error(L, "gradcheck: x must be a contiguous float32 CPU tensor");
  if (!icl_same_shape(x, g))
    return luaL_error(L, "gradcheck: x %s and grad %s differ in shape", ICL_SHAPE_STR(x, b1), ICL_SHAPE_STR(g, b2));
  icl_gradcheck_opts o = icl_gradcheck_defaults();
  o.eps = icl_lua_opt_number(L, 4, "eps", o.eps, "gradcheck");
  o.max_checks = icl_lua_opt_int(L, 4, "max_checks", (int)o.max_checks, "gradcheck");
  o.seed = (uint64_t)icl_lua_opt_int(L, 4, "seed", 1, "gradcheck");
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *gh = icl_contiguous(ctx, g);
  if (!gh) return icl_lua_raise(L);
  icl_lua_push_tensor(L, gh); /* keep it alive across Lua calls */
  gc_ud ud = {L, 1};
  icl_gradcheck_report r;
  int rc = icl_gradcheck(ctx, icl_tensor_data(x), icl_tensor_data(gh), icl_numel(x), gc_eval, &ud, &o, &r);
  icl_lua_check_rc(L, rc);
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, r.max_rel);
  lua_setfield(L, -2, "max_rel");
  lua_pushnumber(L, r.norm_rel);
  lua_setfield(L, -2, "norm_rel");
  lua_pushnumber(L, r.max_abs);
  lua_setfield(L, -2, "max_abs");
  lua_pushinteger(L, (lua_Integer)r.worst + 1);
  lua_setfield(L, -2, "worst_index");
  lua_pushnumber(L, r.worst_numeric);
  lua_setfield(L, -2, "numeric");
  lua_pushnumber(L, r.worst_analytic);
  lua_setfield(L, -2, "analytic");
  lua_pushinteger(L, (lua_Integer)r.checked);
  lua_setfield(L, -2, "checked");
  lua_pushnumber(L, r.scale);
  lua_setfield(L, -2, "scale");
  return 1;
}

static const luaL_Reg module_methods[] = {{"forward", m_forward},     {"backward", m_backward}, {"parameters", m_parameters},
                                          {"zero_grad", m_zero_grad}, {"bind", m_bind},         {"numel", m_numel},
                                          {"kind", m_kind},           {"free", m_gc},           {NULL, NULL}};

static const luaL_Reg adamw_methods[] = {{"step", a_step},   {"scalars", a_scalars}, {"state", a_state},
                                         {"set_segments", a_set_segments}, {"free", a_gc}, {NULL, NULL}};

static const luaL_Reg nn_fns[] = {{"Linear", l_linear}, {"RMSNorm", l_rmsnorm},   {"SiLU", l_silu},
                                  {"SwiGLU", l_swiglu}, {"mse_loss", l_mse}, {"bce_with_logits_loss", l_bce},
                                  {NULL, NULL}};

void icl_lua_open_nn(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  luaL_newmetatable(L, MODULE_MT);
  lua_newtable(L);
  luaL_setfuncs(L, module_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, m_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, ADAMW_MT);
  lua_newtable(L);
  luaL_setfuncs(L, adamw_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, a_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, a_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, nn_fns, 0);
  lua_setfield(L, module_idx, "_nn");
  lua_newtable(L);
  lua_pushcfunction(L, l_adamw);
  lua_setfield(L, -2, "AdamW");
  lua_setfield(L, module_idx, "_optim");
  lua_pushcfunction(L, l_gradcheck);
  lua_setfield(L, module_idx, "gradcheck");
}
