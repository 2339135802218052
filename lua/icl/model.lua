--- Building models from configs shaped like the published YAML.
-- icl.model(model_cfg, patch_cfg, opts) picks the backbone from
-- model_cfg.family ("Llama2"/"llama", "Mamba"/"mamba") and hands the
-- tables to lua/icl/models/<family>.lua, which maps the published keys to
-- the engine's options and calls the C constructor.
local model = {}

local families = {
  llama = "llama", llama2 = "llama", ["llama-2"] = "llama",
  mamba = "mamba",
}

function model.family_of(model_cfg)
  local f = model_cfg and model_cfg.family
  if type(f) ~= "string" then error("icl.model: model config needs a 'family' (Llama2 or Mamba)", 3) end
  local key = families[f:lower()]
  if not key then
    if f:lower():find("gpt") then
      error("icl.model: the GPT-2 backbone is not implemented (the study reports Llama results only); " ..
            "use family Llama2 or Mamba", 3)
    end
    error(string.format("icl.model: unknown family '%s' (valid: Llama2, Mamba)", f), 3)
  end
  return key
end

--- icl.model(model_cfg, patch_cfg, opts) -> model
-- opts: n_dims (input dimension D), device, seed, and family extras.
function model.build(model_cfg, patch_cfg, opts)
  if type(model_cfg) ~= "table" then error("icl.model: expected a model config table", 2) end
  local fam = model.family_of(model_cfg)
  local m = require("icl.models." .. fam).build(model_cfg, patch_cfg or {}, opts or {})
  -- remembered so that model:save can write what rebuilds it
  local extra = m:extra()
  extra.build = {model = model_cfg, patch = patch_cfg or {}, n_dims = (opts or {}).n_dims}
  return m
end

local core = require "icl.core"
local methods = core._model_methods

--- model:save(path): the parameters under their HF names in a safetensors
-- file, with the build config in its metadata (icl.load rebuilds from it).
function methods.save(self, path)
  local json = require "icl.json"
  local tensors = {}
  for _, p in ipairs(self:param_list()) do tensors[p.name] = self:get(p.name) end
  local build = self:extra().build
  if not build then error("model:save: this model was not built by icl.model (no config to save)", 2) end
  require("icl.io").save(path, tensors, {format = "pt", icl_model = json.encode(build)})
end

--- icl.load(path, {device=}) -> model
function model.load(path, opts)
  opts = opts or {}
  local json = require "icl.json"
  local tensors, meta = require("icl.io").load(path, {device = opts.device})
  if not meta or not meta.icl_model then
    error(path .. ": not an icl model file (no icl_model metadata); for a run directory use icl.model.load_run", 2)
  end
  local build = json.decode(meta.icl_model)
  local m = model.build(build.model, build.patch, {n_dims = build.n_dims, device = opts.device})
  for _, p in ipairs(m:param_list()) do
    if not tensors[p.name] then error(path .. ": tensor '" .. p.name .. "' is missing", 2) end
    m:set(p.name, tensors[p.name])
  end
  return m
end

--- The trained model of a run directory: its config plus the newest valid checkpoint.
function model.load_run(run_dir, run, opts)
  opts = opts or {}
  run = run or require("icl.config").load(run_dir .. "/config.yaml")
  local m = model.build(run.model, run.patch, {n_dims = run.task.n_dims, device = opts.device,
                                               seed = run.training.seed})
  local state, tensors, warnings = require("icl.checkpoint").latest(run_dir, {device = opts.device})
  for _, w in ipairs(warnings) do io.stderr:write("warning: " .. w .. "\n") end
  if not state then error(run_dir .. ": no usable checkpoint (train the run first)", 2) end
  for _, p in ipairs(m:param_list()) do m:set(p.name, tensors[p.name]) end
  return m, state
end

return setmetatable(model, {__call = function(_, ...) return model.build(...) end})
