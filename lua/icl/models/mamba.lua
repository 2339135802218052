--- Mamba-1 backbone from a published-style config (configs/base_model/mamba/*.yaml):
--   type: ssm, family: Mamba, hidden_size, state_size, num_hidden_layers, max_length: ["inf"]
-- plus HF MambaConfig names where the published files rely on defaults:
--   expand (2), conv_kernel (4), time_step_rank ("auto" = ceil(hidden/16)),
--   layer_norm_epsilon (1e-5), time_step_min/max/floor/scale, rescale_prenorm_residual.
-- A validated run table (icl.config) also carries use_bias (must be false),
-- use_conv_bias (must be true) and vocab_size (HF's unused embedding rows).
-- opts: n_dims (input dimension D, required), device, seed, and
--   T_c: scan states kept every T_c steps for the backward (default 64).
-- Mamba has no position encoding, so a non-empty patch config is an error,
-- except one that says so: rope_scaling.type "none" (or "nope"), as a
-- validated run table has, whose other entries (name, dynamic_yarn_mode and
-- the fire/alibi option defaults) are then ignored.
local core = require "icl.core"

local M = {}

local model_keys = {
  type = true, family = true, hidden_size = true, state_size = true, num_hidden_layers = true,
  max_length = true, expand = true, conv_kernel = true, time_step_rank = true, dt_rank = true,
  layer_norm_epsilon = true, time_step_min = true, time_step_max = true, time_step_floor = true,
  time_step_scale = true, rescale_prenorm_residual = true,
  use_bias = true, use_conv_bias = true, vocab_size = true,
}
local patch_keys = {name = true, rope_scaling = true, dynamic_yarn_mode = true, fire = true, alibi = true}
local opt_keys = {n_dims = true, device = true, seed = true, T_c = true}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return table.concat(ks, ", ")
end

local function check_keys(what, t, allowed)
  for k in pairs(t) do
    if not allowed[k] then
      error(string.format("icl.model (Mamba): unknown %s key '%s' (valid: %s)", what, tostring(k),
                          sorted_keys(allowed)), 4)
    end
  end
end

-- a single integer; a list in a config means a sweep, which the caller must expand first
local function int_of(cfg, key, default)
  local v = cfg[key]
  if v == nil then
    if default == nil then error("icl.model (Mamba): model config needs '" .. key .. "'", 4) end
    return default
  end
  if type(v) == "table" then
    error(string.format("icl.model (Mamba): '%s' is a list (%d values): a sweep; build one model per value",
                        key, #v), 4)
  end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    error(string.format("icl.model (Mamba): '%s' must be an integer, got %s", key, tostring(v)), 4)
  end
  return math.tointeger(v)
end

local function num_of(cfg, key)
  local v = cfg[key]
  if v ~= nil and type(v) ~= "number" then
    error(string.format("icl.model (Mamba): '%s' must be a number, got %s", key, type(v)), 4)
  end
  return v
end

-- max_length: "inf" (or {"inf"}) is the published value; a number is accepted and ignored,
-- since a recurrent model has no maximum length
local function check_max_length(v)
  if v == nil then return end
  if type(v) == "table" then
    if #v ~= 1 then error("icl.model (Mamba): max_length must be one value, e.g. [\"inf\"]", 5) end
    v = v[1]
  end
  if not (v == "inf" or v == math.huge or (type(v) == "number" and v > 0)) then
    error("icl.model (Mamba): max_length must be \"inf\" or a positive number, got " .. tostring(v), 5)
  end
end

function M.build(model_cfg, patch_cfg, opts)
  check_keys("model config", model_cfg, model_keys)
  check_keys("option", opts, opt_keys)
  local rs = patch_cfg.rope_scaling
  local says_none = type(rs) == "table" and (rs.type == "none" or rs.type == "nope")
  if next(patch_cfg) ~= nil and not says_none then
    error("icl.model (Mamba): Mamba has no position encoding, so the patch config must be empty (got keys: " ..
          sorted_keys(patch_cfg) .. ")", 3)
  end
  check_keys("patch config", patch_cfg, patch_keys)
  if model_cfg.use_bias then error("icl.model (Mamba): use_bias = true is not supported (HF's default, false)", 3) end
  if model_cfg.use_conv_bias == false then
    error("icl.model (Mamba): use_conv_bias = false is not supported (HF's default, true)", 3)
  end
  if model_cfg.type ~= nil and model_cfg.type ~= "ssm" then
    error("icl.model (Mamba): type must be 'ssm', got " .. tostring(model_cfg.type), 3)
  end
  check_max_length(model_cfg.max_length)
  if opts.n_dims == nil then error("icl.model (Mamba): opts.n_dims (the input dimension D) is required", 3) end
  local rank = model_cfg.time_step_rank or model_cfg.dt_rank
  if rank == "auto" then rank = nil end
  if rank ~= nil then rank = int_of({time_step_rank = rank}, "time_step_rank") end
  local m = core._families.mamba {
    n_dims = int_of(opts, "n_dims"),
    hidden = int_of(model_cfg, "hidden_size"),
    state = int_of(model_cfg, "state_size", 16),
    layers = int_of(model_cfg, "num_hidden_layers", 32),
    expand = int_of(model_cfg, "expand", 2),
    conv = int_of(model_cfg, "conv_kernel", 4),
    dt_rank = rank,
    chunk = int_of(opts, "T_c", 64),
    eps = num_of(model_cfg, "layer_norm_epsilon"),
    dt_min = num_of(model_cfg, "time_step_min"),
    dt_max = num_of(model_cfg, "time_step_max"),
    dt_init_floor = num_of(model_cfg, "time_step_floor"),
    dt_scale = num_of(model_cfg, "time_step_scale"),
    rescale_prenorm_residual = model_cfg.rescale_prenorm_residual,
    seed = opts.seed and int_of(opts, "seed") or 0,
    device = opts.device,
  }
  local extra = m:extra()
  extra.config = model_cfg
  extra.family = "mamba"
  return m
end

return M
