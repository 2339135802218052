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
  return require("icl.models." .. fam).build(model_cfg, patch_cfg or {}, opts or {})
end

return setmetatable(model, {__call = function(_, ...) return model.build(...) end})
