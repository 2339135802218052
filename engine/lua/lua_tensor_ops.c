#include "lua_tensor_ops.h"

#include <math.h>

#include "lua_util.h"
#include "ops/ops.h"

/* a op b where either side may be a number */
static int binary(lua_State *L, icl_binop op) {
  icl_ctx *ctx = icl_lua_ctx(L);
  int ta = icl_lua_is_tensor(L, 1), tb = icl_lua_is_tensor(L, 2);
  if (ta && tb) {
    icl_lua_push_tensor(L, icl_op_binary(ctx, op, icl_lua_check_tensor(L, 1), icl_lua_check_tensor(L, 2)));
  } else if (ta) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      return luaL_error(L, "arithmetic: right operand must be a tensor or a number, got %s", luaL_typename(L, 2));
    icl_lua_push_tensor(L, icl_op_binary_scalar(ctx, op, icl_lua_check_tensor(L, 1), (float)lua_tonumber(L, 2), 0));
  } else {
    if (lua_type(L, 1) != LUA_TNUMBER)
      return luaL_error(L, "arithmetic: left operand must be a tensor or a number, got %s", luaL_typename(L, 1));
    icl_lua_push_tensor(L, icl_op_binary_scalar(ctx, op, icl_lua_check_tensor(L, 2), (float)lua_tonumber(L, 1), 1));
  }
  return 1;
}

#define BIN(name, op) \
  static int name(lua_State *L) { return binary(L, op); }
BIN(m_add, ICL_BIN_ADD)
BIN(m_sub, ICL_BIN_SUB)
BIN(m_mul, ICL_BIN_MUL)
BIN(m_div, ICL_BIN_DIV)
BIN(m_pow, ICL_BIN_POW)
BIN(m_eq, ICL_BIN_EQ)
BIN(m_ne, ICL_BIN_NE)
BIN(m_lt, ICL_BIN_LT)
BIN(m_le, ICL_BIN_LE)
BIN(m_gt, ICL_BIN_GT)
BIN(m_ge, ICL_BIN_GE)
BIN(m_maximum, ICL_BIN_MAX)
BIN(m_minimum, ICL_BIN_MIN)

static int inplace(lua_State *L, icl_binop op) {
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_tensor *a = icl_lua_check_tensor(L, 1);
  int rc;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    float s = (float)lua_tonumber(L, 2);
    switch (op) {
    case ICL_BIN_ADD: rc = icl_op_unary_(ctx, ICL_UN_AFFINE, a, 1.0f, s); break;
    case ICL_BIN_SUB: rc = icl_op_unary_(ctx, ICL_UN_AFFINE, a, 1.0f, -s); break;
    case ICL_BIN_MUL: rc = icl_op_unary_(ctx, ICL_UN_AFFINE, a, s, 0.0f); break;
    default: rc = icl_op_unary_(ctx, ICL_UN_AFFINE, a, 1.0f / s, 0.0f); break;
    }
  } else {
    rc = icl_op_binary_(ctx, op, a, icl_lua_check_tensor(L, 2));
  }
  icl_lua_check_rc(L, rc);
  lua_settop(L, 1);
  return 1;
}

static int m_add_(lua_State *L) { return inplace(L, ICL_BIN_ADD); }
static int m_sub_(lua_State *L) { return inplace(L, ICL_BIN_SUB); }
static int m_mul_(lua_State *L) { return inplace(L, ICL_BIN_MUL); }
static int m_div_(lua_State *L) { return inplace(L, ICL_BIN_DIV); }

static int unary(lua_State *L, icl_unop op, float p0, float p1) {
  icl_lua_push_tensor(L, icl_op_unary(icl_lua_ctx(L), op, icl_lua_check_tensor(L, 1), p0, p1));
  return 1;
}

#define UN(name, op) \
  static int name(lua_State *L) { return unary(L, op, 0, 0); }
UN(m_neg, ICL_UN_NEG)
UN(m_abs, ICL_UN_ABS)
UN(m_sign, ICL_UN_SIGN)
UN(m_exp, ICL_UN_EXP)
UN(m_log, ICL_UN_LOG)
UN(m_sqrt, ICL_UN_SQRT)
UN(m_square, ICL_UN_SQUARE)
UN(m_sin, ICL_UN_SIN)
UN(m_cos, ICL_UN_COS)
UN(m_tanh, ICL_UN_TANH)
UN(m_sigmoid, ICL_UN_SIGMOID)
UN(m_relu, ICL_UN_RELU)
UN(m_silu, ICL_UN_SILU)
UN(m_softplus, ICL_UN_SOFTPLUS)

static int m_clamp(lua_State *L) {
  float lo = lua_isnoneornil(L, 2) ? -INFINITY : (float)luaL_checknumber(L, 2);
  float hi = lua_isnoneornil(L, 3) ? INFINITY : (float)luaL_checknumber(L, 3);
  if (lo > hi) return luaL_error(L, "clamp: min %g is greater than max %g", (double)lo, (double)hi);
  return unary(L, ICL_UN_CLAMP, lo, hi);
}

static int m_unm(lua_State *L) { return unary(L, ICL_UN_NEG, 0, 0); }

/* reductions: t:op() over everything, t:op(dim[, keepdim]) over one dim */
static int reduce(lua_State *L, icl_redop op, const char *name) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int dim = lua_isnoneornil(L, 2) ? ICL_DIM_ALL : icl_lua_dim(L, 2, name, t->ndim, 0);
  int keep = lua_toboolean(L, 3);
  icl_ctx *ctx = icl_lua_ctx(L);
  icl_lua_push_tensor(L, icl_op_reduce(ctx, op, t, dim, keep));
  if (op == ICL_RED_ARGMAX || op == ICL_RED_ARGMIN) {
    /* indices are 1-based in Lua */
    icl_tensor *idx = icl_lua_check_tensor(L, -1);
    icl_tensor *f = icl_op_unary(ctx, ICL_UN_AFFINE, idx, 1.0f, 1.0f);
    icl_tensor *i = f ? icl_to_dtype(ctx, f, ICL_I32) : NULL;
    icl_tensor_free(ctx, f);
    lua_pop(L, 1);
    icl_lua_push_tensor(L, i);
  }
  return 1;
}

#define RED(name, op, s) \
  static int name(lua_State *L) { return reduce(L, op, s); }
RED(m_sum, ICL_RED_SUM, "sum")
RED(m_mean, ICL_RED_MEAN, "mean")
RED(m_var, ICL_RED_VAR, "var")
RED(m_prod, ICL_RED_PROD, "prod")
RED(m_argmax, ICL_RED_ARGMAX, "argmax")
RED(m_argmin, ICL_RED_ARGMIN, "argmin")

/* max/min: elementwise with a tensor or number argument; otherwise a
 * reduction, which over one dim also returns the 1-based indices */
static int maxmin(lua_State *L, int is_max) {
  if (icl_lua_is_tensor(L, 2)) return binary(L, is_max ? ICL_BIN_MAX : ICL_BIN_MIN);
  const char *name = is_max ? "max" : "min";
  lua_settop(L, 3);
  reduce(L, is_max ? ICL_RED_MAX : ICL_RED_MIN, name);
  if (lua_isnil(L, 2)) return 1;
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rotate(L, 1, 3); /* reduce reads args 1..3: put the copies there */
  reduce(L, is_max ? ICL_RED_ARGMAX : ICL_RED_ARGMIN, name);
  /* stack: t dim keep | t dim keep values indices -> return the last two */
  return 2;
}

static int m_max(lua_State *L) { return maxmin(L, 1); }
static int m_min(lua_State *L) { return maxmin(L, 0); }

static int softmax(lua_State *L, int log) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int dim = lua_isnoneornil(L, 2) ? t->ndim - 1 : icl_lua_dim(L, 2, log ? "log_softmax" : "softmax", t->ndim, 0);
  icl_lua_push_tensor(L, icl_op_softmax(icl_lua_ctx(L), t, dim, log));
  return 1;
}

static int m_softmax(lua_State *L) { return softmax(L, 0); }
static int m_log_softmax(lua_State *L) { return softmax(L, 1); }

static int m_matmul(lua_State *L) {
  icl_lua_push_tensor(L, icl_op_matmul(icl_lua_ctx(L), icl_lua_check_tensor(L, 1), icl_lua_check_tensor(L, 2)));
  return 1;
}

static int m_has_nonfinite(lua_State *L) {
  int bad = 0;
  icl_lua_check_rc(L, icl_op_has_nonfinite(icl_lua_ctx(L), icl_lua_check_tensor(L, 1), &bad));
  lua_pushboolean(L, bad);
  return 1;
}

/* index_select(dim, {i1, i2, ...}) with 1-based indices (repeats allowed) */
static int m_index_select(lua_State *L) {
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  int d = icl_lua_dim(L, 2, "index_select", t->ndim, 0);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, 3);
  int64_t *idx = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, 3, (lua_Integer)i + 1);
    if (!lua_isinteger(L, -1)) return luaL_error(L, "index_select: index %d is not an integer", (int)i + 1);
    idx[i] = lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
  }
  icl_lua_push_tensor(L, icl_op_index_select(icl_lua_ctx(L), t, d, idx, n));
  return 1;
}

/* bootstrap({resamples = 1000, lo = 50, hi = 950, seed = 0}) on a [P, N]
 * matrix -> mean, lo, hi as Lua arrays (1-based lo/hi ranks) */
static int m_bootstrap(lua_State *L) {
  static const char *const opts[] = {"resamples", "lo", "hi", "seed", NULL};
  icl_tensor *t = icl_lua_check_tensor(L, 1);
  icl_lua_check_opts(L, 2, "bootstrap", opts);
  int r = icl_lua_opt_int(L, 2, "resamples", 1000, "bootstrap");
  int lo = icl_lua_opt_int(L, 2, "lo", (int)(0.05 * r), "bootstrap");
  int hi = icl_lua_opt_int(L, 2, "hi", (int)(0.95 * r), "bootstrap");
  int seed = icl_lua_opt_int(L, 2, "seed", 0, "bootstrap");
  if (t->ndim != 2) return luaL_error(L, "bootstrap: expected a [prompts, positions] matrix");
  int64_t n = t->shape[1];
  float *buf = lua_newuserdatauv(L, sizeof(float) * 3 * (size_t)(n ? n : 1), 0);
  icl_lua_check_rc(L, icl_op_bootstrap(icl_lua_ctx(L), t, r, lo, hi, (uint64_t)seed, buf, buf + n, buf + 2 * n));
  for (int k = 0; k < 3; k++) {
    lua_createtable(L, (int)n, 0);
    for (int64_t j = 0; j < n; j++) {
      lua_pushnumber(L, buf[k * n + j]);
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
  }
  return 3;
}

static const luaL_Reg methods[] = {{"index_select", m_index_select}, {"bootstrap", m_bootstrap},
    {"add", m_add},         {"sub", m_sub},         {"mul", m_mul},           {"div", m_div},
    {"pow", m_pow},         {"eq", m_eq},           {"ne", m_ne},             {"lt", m_lt},
    {"le", m_le},           {"gt", m_gt},           {"ge", m_ge},             {"maximum", m_maximum},
    {"minimum", m_minimum}, {"add_", m_add_},       {"sub_", m_sub_},         {"mul_", m_mul_},
    {"div_", m_div_},       {"neg", m_neg},         {"abs", m_abs},           {"sign", m_sign},
    {"exp", m_exp},         {"log", m_log},         {"sqrt", m_sqrt},         {"square", m_square},
    {"sin", m_sin},         {"cos", m_cos},         {"tanh", m_tanh},         {"sigmoid", m_sigmoid},
    {"relu", m_relu},       {"silu", m_silu},       {"softplus", m_softplus}, {"clamp", m_clamp},
    {"sum", m_sum},         {"mean", m_mean},       {"var", m_var},           {"prod", m_prod},
    {"argmax", m_argmax},   {"argmin", m_argmin},   {"max", m_max},           {"min", m_min},
    {"softmax", m_softmax}, {"log_softmax", m_log_softmax}, {"matmul", m_matmul},
    {"has_nonfinite", m_has_nonfinite}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {{"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div},
                                       {"__pow", m_pow}, {"__unm", m_unm}, {NULL, NULL}};

void icl_lua_tensor_ops_register(lua_State *L, int methods_idx) {
  lua_pushvalue(L, methods_idx);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 1);
}

void icl_lua_tensor_ops_metamethods(lua_State *L, int mt_idx) {
  lua_pushvalue(L, mt_idx);
  luaL_setfuncs(L, metamethods, 0);
  lua_pop(L, 1);
}
