/* Lua binding of the Llama backbone: the family constructor
 * core._families.llama(options) and the family methods (attention capture,
 * parameter counts, encoding info), plus the bridge that lets a Lua table
 * act as an additive-bias position encoding.
 *
 * The Lua bias: the C attention calls back through an icl_bias_callback
 * whose ud is a `lbias` userdata. Its Lua side runs on a dedicated Lua
 * thread whose stack holds [1] the spec table and [2] the per-layer
 * {p = {name = value view}, g = {name = grad view}} tables; the thread and
 * the userdata are anchored in the model's uservalue, so they live as long
 * as the model. forward(spec, T, p, layer) returns a [H, T, T] tensor;
 * backward(spec, G, p, g, layer) receives the batch-summed logit gradient G
 * [H, T, T] and adds into g (views of the model's gradient buffer). */
#include <lauxlib.h>
#include <string.h>

#include "core/backend.h"
#include "lua_model.h"
#include "lua_modules.h"
#include "lua_util.h"
#include "models/llama.h"

typedef struct lbias {
  icl_bias_callback cb;
  lua_State *T;   /* runs the callbacks; stack: [1] spec, [2] per-layer tables */
  icl_device dev; /* the model's: where the bias and G buffers live */
} lbias;

static int call_lua(icl_ctx *ctx, lbias *b, int nargs, int nres, const char *what) {
  if (lua_pcall(b->T, nargs, nres, 0) != LUA_OK) {
    icl_errorf(ctx, ICL_ECALLBACK, "lua bias %s: %s", what, lua_tostring(b->T, -1));
    lua_settop(b->T, 2);
    return ICL_ECALLBACK;
  }
  return ICL_OK;
}

static int lbias_forward(icl_ctx *ctx, void *ud, int layer, int64_t T, int64_t H, float *bias) {
  lbias *b = ud;
  lua_State *L = b->T;
  lua_settop(L, 2);
  lua_getfield(L, 1, "forward");
  lua_pushvalue(L, 1);
  lua_pushinteger(L, (lua_Integer)T);
  lua_rawgeti(L, 2, layer + 1);
  lua_getfield(L, -1, "p");
  lua_remove(L, -2);
  lua_pushinteger(L, layer + 1);
  if (call_lua(ctx, b, 4, 1, "forward")) return ICL_ECALLBACK;
  icl_tensor *t = icl_lua_to_tensor(L, -1);
  int rc = ICL_OK;
  if (!t || t->ndim != 3 || t->shape[0] != H || t->shape[1] != T || t->shape[2] != T || t->dtype != ICL_F32) {
    char sb[128] = "not a tensor";
    if (t) ICL_SHAPE_STR(t, sb);
    rc = icl_errorf(ctx, ICL_ECALLBACK, "lua bias forward: must return a float32 [%lld, %lld, %lld] tensor, got %s",
                    (long long)H, (long long)T, (long long)T, sb);
  } else {
    int64_t shape[3] = {H, T, T};
    icl_tensor *dst = icl_tensor_borrow(ctx, bias, ICL_F32, b->dev, 3, shape);
    rc = dst ? icl_copy_into(ctx, dst, t) : ctx->errcode;
    icl_tensor_free(ctx, dst);
  }
  lua_settop(L, 2);
  return rc;
}

static int lbias_backward(icl_ctx *ctx, void *ud, int layer, int64_t T, int64_t H, const float *G) {
  lbias *b = ud;
  lua_State *L = b->T;
  lua_settop(L, 2);
  lua_getfield(L, 1, "backward");
  if (lua_isnil(L, -1)) {
    lua_settop(L, 2);
    return ICL_OK; /* no parameters to train */
  }
  lua_pushvalue(L, 1);
  int64_t shape[3] = {H, T, T};
  /* a copy: the Lua side may keep its tensor after the buffer is reused */
  icl_tensor *gv = icl_tensor_borrow(ctx, (void *)G, ICL_F32, b->dev, 3, shape);
  icl_tensor *g = gv ? icl_clone(ctx, gv) : NULL;
  icl_tensor_free(ctx, gv);
  if (!g) {
    lua_settop(L, 2);
    return ctx->errcode;
  }
  icl_lua_push_tensor(L, g);
  lua_rawgeti(L, 2, layer + 1);
  lua_getfield(L, -1, "p");
  lua_getfield(L, -2, "g");
  lua_remove(L, -3);
  lua_pushinteger(L, layer + 1);
  int rc = call_lua(ctx, b, 5, 0, "backward");
  lua_settop(L, 2);
  return rc;
}

/* spec.params = { {name = "a", shape = {H}}, ... }, spec.per_layer (default true) */
static lbias *make_bias(lua_State *L, int spec_idx, int64_t heads) {
  spec_idx = lua_absindex(L, spec_idx);
  lbias *b = lua_newuserdatauv(L, sizeof *b, 1);
  memset(b, 0, sizeof *b);
  b->cb.ud = b;
  b->cb.forward = lbias_forward;
  b->cb.backward = lbias_backward;
  snprintf(b->cb.prefix, sizeof b->cb.prefix, "lua_bias");
  if (lua_getfield(L, spec_idx, "forward") != LUA_TFUNCTION)
    luaL_error(L, "llama: lua_bias needs a forward(self, T, params, layer) function returning [H, T, T]");
  lua_pop(L, 1);
  lua_getfield(L, spec_idx, "per_layer");
  b->cb.per_layer = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, spec_idx, "name") == LUA_TSTRING) snprintf(b->cb.prefix, sizeof b->cb.prefix, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_getfield(L, spec_idx, "params") == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, -1);
    if (n > ICL_BIAS_CB_MAX_PARAMS) luaL_error(L, "llama: lua_bias has at most %d parameters", ICL_BIAS_CB_MAX_PARAMS);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      if (lua_getfield(L, -1, "name") != LUA_TSTRING) luaL_error(L, "llama: lua_bias.params[%d] needs a name", i + 1);
      snprintf(b->cb.names[i], sizeof b->cb.names[i], "%s", lua_tostring(L, -1));
      lua_pop(L, 1);
      lua_getfield(L, -1, "shape");
      if (lua_isnil(L, -1)) {
        b->cb.ndims[i] = 1;
        b->cb.shapes[i][0] = heads;
      } else {
        int used;
        b->cb.ndims[i] = icl_lua_read_shape(L, lua_gettop(L), "lua_bias.params.shape", b->cb.shapes[i], &used);
        if (b->cb.ndims[i] < 1 || b->cb.ndims[i] > 4) luaL_error(L, "llama: lua_bias shapes have 1 to 4 dims");
      }
      lua_pop(L, 2);
    }
    b->cb.nparams = n;
  }
  lua_pop(L, 1);
  /* the thread that runs the callbacks, anchored in the userdata */
  b->T = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, spec_idx);
  lua_xmove(L, b->T, 1);
  lua_newtable(b->T);
  return b;
}

/* per-layer parameter / gradient views, on the callback thread's stack */
static void bind_bias_views(lua_State *L, lbias *b, icl_model *m, int64_t layers) {
  icl_ctx *ctx = icl_lua_ctx(L);
  lua_State *T = b->T;
  for (int64_t l = 0; l < layers; l++) {
    lua_createtable(T, 0, 2);
    for (int which = 0; which < 2; which++) {
      lua_createtable(T, 0, b->cb.nparams);
      for (int k = 0; k < b->cb.nparams; k++) {
        char name[ICL_PARAM_NAME_MAX];
        if (b->cb.per_layer)
          snprintf(name, sizeof name, "layers.%lld.self_attn.%s.%s", (long long)l, b->cb.prefix, b->cb.names[k]);
        else snprintf(name, sizeof name, "%s.%s", b->cb.prefix, b->cb.names[k]);
        int idx = icl_params_find(&m->params, name);
        icl_lua_push_tensor(T, icl_params_view(ctx, &m->params, idx, which));
        lua_setfield(T, -2, b->cb.names[k]);
      }
      lua_setfield(T, -2, which ? "g" : "p");
    }
    lua_rawseti(T, 2, l + 1);
  }
}

static const char *const ctor_opts[] = {"n_dims",       "hidden_size",  "num_hidden_layers", "num_attention_heads",
                                        "intermediate_size", "max_length", "rope_theta",     "pe",
                                        "factor",       "dynamic_yarn", "fire_width",        "fire_convention",
                                        "fire_init_c",  "fire_init_L",  "fire_init_L_multiplier", "rms_norm_eps",
                                        "initializer_range", "seed",   "device",            "lua_bias",
                                        "beta_fast",    "beta_slow",    NULL};

static int l_llama_new(lua_State *L) {
  const char *fn = "llama";
  luaL_checktype(L, 1, LUA_TTABLE);
  icl_lua_check_opts(L, 1, fn, ctor_opts);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_llama_cfg c = icl_llama_defaults();
  c.n_dims = icl_lua_opt_int(L, 1, "n_dims", 20, fn);
  c.hidden = icl_lua_opt_int(L, 1, "hidden_size", 256, fn);
  c.layers = icl_lua_opt_int(L, 1, "num_hidden_layers", 16, fn);
  c.heads = icl_lua_opt_int(L, 1, "num_attention_heads", 8, fn);
  c.intermediate = icl_lua_opt_int(L, 1, "intermediate_size", 0, fn);
  c.rms_eps = (float)icl_lua_opt_number(L, 1, "rms_norm_eps", 1e-6, fn);
  c.init_std = (float)icl_lua_opt_number(L, 1, "initializer_range", 0.02, fn);
  if (icl_pe_from_name(ctx, icl_lua_opt_string(L, 1, "pe", "rope", fn), &c.pe)) return icl_lua_raise(L);
  c.pe.L_train = icl_lua_opt_int(L, 1, "max_length", 102, fn);
  c.pe.theta = icl_lua_opt_number(L, 1, "rope_theta", 10000, fn);
  c.pe.factor = icl_lua_opt_number(L, 1, "factor", 8, fn);
  c.pe.beta_fast = icl_lua_opt_number(L, 1, "beta_fast", 32, fn);
  c.pe.beta_slow = icl_lua_opt_number(L, 1, "beta_slow", 1, fn);
  static const char *const readings[] = {"paper", "code", NULL};
  c.pe.dyn_yarn = (icl_dyn_yarn_reading)icl_lua_opt_choice(L, 1, "dynamic_yarn", "paper", readings, fn);
  c.pe.fire_width = icl_lua_opt_int(L, 1, "fire_width", 32, fn);
  static const char *const convs[] = {"A", "B", NULL};
  c.pe.fire_scale_before = icl_lua_opt_choice(L, 1, "fire_convention", "A", convs, fn);
  c.pe.fire_init_c = (float)icl_lua_opt_number(L, 1, "fire_init_c", 0.1, fn);
  c.pe.fire_L_init = (float)icl_lua_opt_number(L, 1, "fire_init_L", 512, fn);
  c.pe.fire_init_L_mult = (float)icl_lua_opt_number(L, 1, "fire_init_L_multiplier", 1.0, fn);
  uint64_t seed = (uint64_t)icl_lua_opt_int(L, 1, "seed", 0, fn);
  icl_device dev = icl_lua_opt_device(L, 1, fn);
  lbias *b = NULL;
  lua_getfield(L, 1, "lua_bias");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) return luaL_error(L, "llama: lua_bias must be a table");
    if (c.pe.bias != ICL_BIAS_NONE && c.pe.bias != ICL_BIAS_CALLBACK)
      return luaL_error(L, "llama: lua_bias cannot be combined with pe '%s'", icl_pe_name(&c.pe));
    b = make_bias(L, -1, c.heads); /* userdata at the top */
    b->dev = dev;
    c.pe.bias = ICL_BIAS_CALLBACK;
    c.pe.callback = &b->cb;
  } else if (c.pe.bias == ICL_BIAS_CALLBACK) {
    return luaL_error(L, "llama: pe 'lua' needs a lua_bias table");
  }
  int bias_idx = lua_gettop(L);
  icl_model *m = icl_llama_new(ctx, &c, dev, seed);
  if (!m) return icl_lua_raise(L);
  icl_lua_push_model(L, m);
  if (b) {
    bind_bias_views(L, b, m, c.layers);
    /* anchor the bridge in the model's Lua table */
    lua_getfield(L, -1, "extra");
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_pushvalue(L, bias_idx);
    lua_setfield(L, -2, "lua_bias_bridge");
    lua_pop(L, 1);
  }
  return 1;
}

/* model:attention(xs, ys, {layers = {1, ...}, query = "all" | "last" | "last_x" | token}) ->
 * {[layer] = [B, H, Tq, T]}, pred. "last" is the final token (a y token),
 * "last_x" the final x token (the final query of the published analysis),
 * a number is a 1-based token index. */
static int l_attention(lua_State *L) {
  static const char *const opts[] = {"layers", "query", NULL};
  static const char *const queries[] = {"all", "last", "last_x", NULL};
  icl_model *m = icl_lua_check_model(L, 1);
  const icl_llama_cfg *cfg = icl_llama_config(m);
  icl_tensor *xs = icl_lua_check_tensor(L, 2), *ys = icl_lua_check_tensor(L, 3);
  icl_lua_check_opts(L, 4, "model:attention", opts);
  int qtoken = -1, qkind = 0; /* qkind: 0 all, 1 last, 2 last_x, 3 token index */
  if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "query") == LUA_TNUMBER) {
    qtoken = (int)luaL_checkinteger(L, -1) - 1;
    qkind = 3;
    lua_pop(L, 1);
  } else {
    if (!lua_isnoneornil(L, 4)) lua_pop(L, 1);
    qkind = icl_lua_opt_choice(L, 4, "query", "all", queries, "model:attention");
  }
  icl_ctx *ctx = icl_lua_ctx(L);
  char b1[128], b2[128];
  if (xs->ndim != 3 || ys->ndim != 2 || xs->shape[2] != m->n_dims || xs->shape[0] != ys->shape[0] ||
      xs->shape[1] != ys->shape[1] || !icl_is_contiguous(xs) || !icl_is_contiguous(ys) ||
      xs->storage->device != m->device || ys->storage->device != m->device)
    return luaL_error(L, "model:attention: expected contiguous xs [B, N, %d] and ys [B, N] on %s, got %s and %s",
                      (int)m->n_dims, icl_device_name(m->device), ICL_SHAPE_STR(xs, b1), ICL_SHAPE_STR(ys, b2));
  int64_t B = xs->shape[0], N = xs->shape[1], T = 2 * N;
  int row = qkind == 0 ? -1 : qkind == 1 ? (int)T - 1 : qkind == 2 ? (int)T - 2 : qtoken;
  if (row < -1 || row >= T) return luaL_error(L, "model:attention: query token %d out of range 1..%d", row + 1, (int)T);
  int last = row >= 0;
  int nl = 0, layers[256];
  lua_getfield(L, 4, "layers");
  if (lua_istable(L, -1)) {
    int n = (int)lua_rawlen(L, -1);
    for (int i = 0; i < n && nl < 256; i++) {
      lua_rawgeti(L, -1, i + 1);
      lua_Integer l = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
      if (l < 1 || l > cfg->layers)
        return luaL_error(L, "model:attention: layer %d out of range 1..%d", (int)l, (int)cfg->layers);
      layers[nl++] = (int)l;
    }
  } else {
    for (int l = 1; l <= cfg->layers && nl < 256; l++) layers[nl++] = l;
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, nl);
  int res = lua_gettop(L);
  icl_llama_clear_capture(m);
  for (int i = 0; i < nl; i++) {
    int64_t shape[4] = {B, cfg->heads, last ? 1 : T, T};
    icl_tensor *t = icl_tensor_empty(ctx, ICL_F32, m->device, 4, shape);
    if (!t) return icl_lua_raise(L);
    icl_lua_push_tensor(L, t);
    lua_rawseti(L, res, layers[i]);
    icl_lua_check_rc(L, icl_llama_set_capture(ctx, m, layers[i] - 1, icl_tensor_data(t), row));
  }
  int64_t ps[2] = {B, N};
  icl_tensor *pred = icl_tensor_empty(ctx, ICL_F32, m->device, 2, ps);
  int rc = pred ? icl_model_forward(ctx, m, icl_tensor_data(xs), icl_tensor_data(ys), B, N, icl_tensor_data(pred), 0)
                : ctx->errcode;
  icl_llama_clear_capture(m);
  if (rc) {
    icl_tensor_free(ctx, pred);
    return icl_lua_raise(L);
  }
  icl_lua_push_tensor(L, pred);
  return 2;
}

/* {engine = n, published = n, embedding = 32000 * hidden} */
static int l_param_counts(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)icl_params_count(&m->params));
  lua_setfield(L, -2, "engine");
  lua_pushinteger(L, (lua_Integer)icl_llama_published_params(m));
  lua_setfield(L, -2, "published");
  lua_pushinteger(L, (lua_Integer)ICL_LLAMA_VOCAB * m->hidden);
  lua_setfield(L, -2, "embedding");
  return 1;
}

static int l_pe_info(lua_State *L) {
  icl_model *m = icl_lua_check_model(L, 1);
  const icl_llama_cfg *c = icl_llama_config(m);
  double s, ms;
  icl_llama_last_rotation(m, &s, &ms);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, icl_pe_name(&c->pe));
  lua_setfield(L, -2, "type");
  lua_pushnumber(L, c->pe.factor);
  lua_setfield(L, -2, "factor");
  lua_pushinteger(L, (lua_Integer)c->pe.L_train);
  lua_setfield(L, -2, "max_length");
  lua_pushstring(L, c->pe.dyn_yarn == ICL_DYN_YARN_CODE ? "code" : "paper");
  lua_setfield(L, -2, "dynamic_yarn");
  lua_pushnumber(L, s);
  lua_setfield(L, -2, "last_scale");
  lua_pushnumber(L, ms);
  lua_setfield(L, -2, "last_attention_factor");
  lua_pushinteger(L, (lua_Integer)c->layers);
  lua_setfield(L, -2, "layers");
  lua_pushinteger(L, (lua_Integer)c->heads);
  lua_setfield(L, -2, "heads");
  return 1;
}

static const luaL_Reg llama_methods[] = {
    {"attention", l_attention}, {"param_counts", l_param_counts}, {"pe_info", l_pe_info}, {NULL, NULL}};

void icl_lua_open_llama(lua_State *L, int module_idx) {
  icl_lua_register_family(L, module_idx, "llama", l_llama_new, llama_methods);
}
