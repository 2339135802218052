/* Encoding names, defaults and validation. */
#include "pe.h"

#include <string.h>
#include <strings.h>

icl_pe_cfg icl_pe_defaults(void) {
  icl_pe_cfg c;
  memset(&c, 0, sizeof c);
  c.rot = ICL_ROT_ROPE;
  c.bias = ICL_BIAS_NONE;
  c.theta = 10000.0;
  c.factor = 8.0;
  c.L_train = 102;
  c.dyn_yarn = ICL_DYN_YARN_PAPER;
  c.beta_fast = 32.0;
  c.beta_slow = 1.0;
  c.fire_width = 32;
  c.fire_init_c = 0.1f;
  c.fire_init_L_mult = 1.0f;
  c.fire_L_init = 512.0f;
  c.fire_eps = 1e-6f;
  c.fire_scale_before = 0;
  return c;
}

static const struct {
  const char *name;
  icl_rot_kind rot;
  icl_bias_kind bias;
} names[] = {
    {"rope", ICL_ROT_ROPE, ICL_BIAS_NONE},
    {"none", ICL_ROT_ROPE, ICL_BIAS_NONE},
    {"default", ICL_ROT_ROPE, ICL_BIAS_NONE},
    {"linear", ICL_ROT_LINEAR, ICL_BIAS_NONE},
    {"pi", ICL_ROT_LINEAR, ICL_BIAS_NONE},
    {"dynamic", ICL_ROT_DYNAMIC, ICL_BIAS_NONE},
    {"ntk", ICL_ROT_DYNAMIC, ICL_BIAS_NONE},
    {"yarn", ICL_ROT_YARN, ICL_BIAS_NONE},
    {"dynamic-yarn", ICL_ROT_DYNAMIC_YARN, ICL_BIAS_NONE},
    {"dynamic_yarn", ICL_ROT_DYNAMIC_YARN, ICL_BIAS_NONE},
    {"nope", ICL_ROT_NONE, ICL_BIAS_NONE},
    {"alibi", ICL_ROT_NONE, ICL_BIAS_ALIBI},
    {"fire", ICL_ROT_NONE, ICL_BIAS_FIRE},
    {"lua", ICL_ROT_NONE, ICL_BIAS_CALLBACK},
    {"callback", ICL_ROT_NONE, ICL_BIAS_CALLBACK},
};

int icl_pe_from_name(icl_ctx *ctx, const char *type, icl_pe_cfg *cfg) {
  if (!type) type = "rope";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(type, names[i].name) == 0) {
      cfg->rot = names[i].rot;
      cfg->bias = names[i].bias;
      return ICL_OK;
    }
  return icl_errorf(ctx, ICL_EINVAL,
                    "position encoding: unknown rope_scaling.type '%s' (valid: none, rope, default, linear, dynamic, "
                    "yarn, dynamic-yarn, nope, alibi, fire, lua)",
                    type);
}

const char *icl_pe_name(const icl_pe_cfg *cfg) {
  if (cfg->bias == ICL_BIAS_ALIBI && cfg->rot == ICL_ROT_NONE) return "alibi";
  if (cfg->bias == ICL_BIAS_FIRE && cfg->rot == ICL_ROT_NONE) return "fire";
  if (cfg->bias == ICL_BIAS_CALLBACK && cfg->rot == ICL_ROT_NONE) return "lua";
  switch (cfg->rot) {
  case ICL_ROT_NONE: return cfg->bias == ICL_BIAS_NONE ? "nope" : "bias";
  case ICL_ROT_ROPE: return "rope";
  case ICL_ROT_LINEAR: return "linear";
  case ICL_ROT_DYNAMIC: return "dynamic";
  case ICL_ROT_YARN: return "yarn";
  case ICL_ROT_DYNAMIC_YARN: return "dynamic-yarn";
  }
  return "?";
}

int icl_pe_validate(icl_ctx *ctx, const icl_pe_cfg *c, int64_t heads, int64_t head_dim) {
  if (c->rot != ICL_ROT_NONE) {
    if (head_dim % 2) return icl_errorf(ctx, ICL_EINVAL, "RoPE: head_dim %lld must be even", (long long)head_dim);
    if (!(c->theta > 1)) return icl_errorf(ctx, ICL_EINVAL, "RoPE: rope_theta must be > 1 (got %g)", c->theta);
    if (c->rot != ICL_ROT_ROPE && !(c->factor > 0))
      return icl_errorf(ctx, ICL_EINVAL, "RoPE scaling: factor must be > 0 (got %g)", c->factor);
    if (c->rot == ICL_ROT_DYNAMIC && head_dim <= 2)
      return icl_errorf(ctx, ICL_EINVAL, "dynamic NTK: head_dim must be > 2");
  }
  if (c->L_train <= 0) return icl_errorf(ctx, ICL_EINVAL, "position encoding: max_length must be > 0");
  if (c->bias == ICL_BIAS_FIRE && (c->fire_width <= 0 || !(c->fire_L_init > 0)))
    return icl_errorf(ctx, ICL_EINVAL, "FIRE: mlp width (%d) and init_L (%g) must be positive", c->fire_width,
                      (double)c->fire_L_init);
  if (c->bias == ICL_BIAS_CALLBACK && (!c->callback || !c->callback->forward))
    return icl_errorf(ctx, ICL_EINVAL, "position encoding 'lua': no bias callback given");
  if (heads <= 0) return icl_errorf(ctx, ICL_EINVAL, "attention: heads must be positive");
  return ICL_OK;
}
