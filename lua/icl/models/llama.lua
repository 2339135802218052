--- The Llama backbone (HF LlamaModel) from configs shaped like the published
-- YAML (configs/base_model/llama/*.yaml and configs/patch/*/*.yaml).
--
--   llama.build(model_cfg, patch_cfg, opts) -> model
--     model_cfg: hidden_size, num_hidden_layers, num_attention_heads,
--                max_length (list: the first entry is the training length in
--                tokens), rope_theta, hidden_act ("silu"), rope_scaling
--     patch_cfg: rope_scaling = {type = ..., factor = ...}; type is one of
--                none/rope/default (RoPE), linear (PI), dynamic (NTK), yarn,
--                dynamic-yarn, nope, alibi, fire, lua; factor defaults to 8.
--                lua_bias = spec for type "lua" (see experiments/pe/).
--     opts:      n_dims, device, seed, initializer_range, intermediate_size,
--                dynamic_yarn ("paper" | "code"), fire_width (32; the
--                published code used max_length), fire_convention ("A" |
--                "B"), fire_init_c, fire_init_L, fire_init_L_multiplier,
--                lua_bias (same as patch_cfg.lua_bias)
local core = require "icl.core"

local llama = {}

--- The published sizes (configs/base_model/llama/*.yaml).
llama.presets = {
  tiny = {type = "decoder", family = "Llama2", max_length = {102}, hidden_size = 256, num_hidden_layers = 2,
          num_attention_heads = 4, hidden_act = "silu", rope_theta = 10000},
  small = {type = "decoder", family = "Llama2", max_length = {102}, hidden_size = 256, num_hidden_layers = 4,
           num_attention_heads = 4, hidden_act = "silu", rope_theta = 10000},
  standard = {type = "decoder", family = "Llama2", max_length = {102}, hidden_size = 256, num_hidden_layers = 16,
              num_attention_heads = 8, hidden_act = "silu", rope_theta = 10000},
  large = {type = "decoder", family = "Llama2", max_length = {102}, hidden_size = 512, num_hidden_layers = 16,
           num_attention_heads = 8, hidden_act = "silu", rope_theta = 10000},
}

--- A copy of a preset's model config.
function llama.preset(name)
  local p = llama.presets[name]
  if not p then error(string.format("llama.preset: unknown preset '%s' (tiny, small, standard, large)", tostring(name)), 2) end
  local c = {}
  for k, v in pairs(p) do c[k] = type(v) == "table" and {table.unpack(v)} or v end
  return c
end

local model_keys = {type = true, family = true, max_length = true, hidden_size = true, num_hidden_layers = true,
                    num_attention_heads = true, hidden_act = true, rope_theta = true, rope_scaling = true,
                    intermediate_size = true, num_key_value_heads = true, name = true,
                    -- HF LlamaConfig keys a validated run table (icl.config) carries
                    rms_norm_eps = true, initializer_range = true, mlp_bias = true, attention_bias = true,
                    vocab_size = true}
local patch_keys = {name = true, rope_scaling = true, lua_bias = true, fire = true, alibi = true,
                    dynamic_yarn_mode = true}
local opt_keys = {n_dims = true, device = true, seed = true, initializer_range = true, intermediate_size = true,
                  dynamic_yarn = true, fire_width = true, fire_convention = true, fire_init_c = true,
                  fire_init_L = true, fire_init_L_multiplier = true, lua_bias = true, rms_norm_eps = true}

local function check_keys(t, allowed, what)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("llama: unknown %s key '%s' (valid: %s)", what, tostring(k), table.concat(names, ", ")), 4)
    end
  end
end

local function scalar(cfg, key, default)
  local v = cfg[key]
  if v == nil then return default end
  if type(v) == "table" then
    error(string.format("llama: '%s' is a list (%s); this is a sweep config: pick one value", key,
                        table.concat(v, ", ")), 4)
  end
  return v
end

function llama.build(model_cfg, patch_cfg, opts)
  patch_cfg, opts = patch_cfg or {}, opts or {}
  check_keys(model_cfg, model_keys, "model config")
  check_keys(patch_cfg, patch_keys, "patch config")
  check_keys(opts, opt_keys, "option")
  for _, k in ipairs({"mlp_bias", "attention_bias"}) do
    if model_cfg[k] then error("llama: " .. k .. " = true is not supported (HF's default, false, is what the study used)", 3) end
  end
  local fire = patch_cfg.fire or {}
  if patch_cfg.alibi and patch_cfg.alibi.bias_max and patch_cfg.alibi.bias_max ~= 8 then
    error("llama: patch.alibi.bias_max must be 8 (the standard slopes)", 3)
  end
  local act = scalar(model_cfg, "hidden_act", "silu")
  if act ~= "silu" then error("llama: hidden_act must be 'silu' (got " .. tostring(act) .. ")", 3) end
  local ml = model_cfg.max_length or 102
  if type(ml) == "table" then ml = ml[1] end
  local kv = model_cfg.num_key_value_heads
  if kv ~= nil and kv ~= model_cfg.num_attention_heads then
    error("llama: grouped-query attention is not supported (num_key_value_heads must equal num_attention_heads)", 3)
  end
  -- the patch's rope_scaling wins over the model config's
  local rs = patch_cfg.rope_scaling or model_cfg.rope_scaling or {}
  local pe = rs.type or rs.rope_type or "rope"
  if type(pe) == "table" then error("llama: rope_scaling.type is a list (sweep config): pick one", 3) end
  local lua_bias = patch_cfg.lua_bias or opts.lua_bias
  if lua_bias and (pe == "none" or pe == "rope" or pe == "default") and not (patch_cfg.rope_scaling or
      model_cfg.rope_scaling) then
    pe = "lua"
  end
  local args = {
    n_dims = opts.n_dims or 20,
    hidden_size = scalar(model_cfg, "hidden_size", 256),
    num_hidden_layers = scalar(model_cfg, "num_hidden_layers", 16),
    num_attention_heads = scalar(model_cfg, "num_attention_heads", 8),
    intermediate_size = opts.intermediate_size or model_cfg.intermediate_size,
    max_length = ml,
    rope_theta = scalar(model_cfg, "rope_theta", 10000),
    pe = pe,
    -- "auto" is the published rule max_length / points / 2 x 8, which is 8
    -- whenever max_length = 2 x points.end (the config's default)
    factor = (rs.factor == nil or rs.factor == "auto") and 8 or rs.factor,
    dynamic_yarn = opts.dynamic_yarn or patch_cfg.dynamic_yarn_mode,
    fire_width = opts.fire_width or (fire.mlp_width == "max_length" and ml or fire.mlp_width),
    fire_convention = opts.fire_convention or (fire.bias_position == "before_scale" and "B" or
                      fire.bias_position and "A" or nil),
    fire_init_c = opts.fire_init_c or fire.init_c,
    fire_init_L = opts.fire_init_L or fire.init_L,
    fire_init_L_multiplier = opts.fire_init_L_multiplier,
    initializer_range = opts.initializer_range or model_cfg.initializer_range,
    rms_norm_eps = opts.rms_norm_eps or model_cfg.rms_norm_eps,
    seed = opts.seed,
    device = opts.device,
    lua_bias = lua_bias,
  }
  local m = core._families.llama(args)
  if lua_bias then llama.init_lua_bias(m, lua_bias, args.num_hidden_layers) end
  return m
end

--- Initialise a Lua bias's parameters: params[i].init is a number (fill), a
-- function(layer, shape) returning a tensor, or nil (zeros).
function llama.init_lua_bias(m, spec, layers)
  local prefix = spec.name or "lua_bias"
  local per_layer = spec.per_layer ~= false
  for _, p in ipairs(spec.params or {}) do
    for l = 1, per_layer and layers or 1 do
      local name = per_layer and string.format("layers.%d.self_attn.%s.%s", l - 1, prefix, p.name)
                   or string.format("%s.%s", prefix, p.name)
      local v = m:get(name)
      if type(p.init) == "number" then
        v:fill(p.init)
      elseif type(p.init) == "function" then
        m:set(name, p.init(l, v:shape()))
      elseif p.init ~= nil then
        error("llama: lua_bias param '" .. p.name .. "': init must be a number or a function", 3)
      end
    end
  end
end

return llama
