--- Model size presets for sweeps: a size name becomes `--set model.<key>=<value>`
-- overrides on top of the task config. The Llama presets are the published
-- base models (configs/base_model/llama/{tiny,small,standard,large}.yaml);
-- Mamba has only the published standard model. A spec can add or replace
-- presets with `size_presets: {<size>: {llama: [k=v, ...], mamba: [...]}}`.
local sizes = {}

sizes.names = {"tiny", "small", "standard", "large"}

sizes.presets = {
  tiny = {llama = {"model.hidden_size=256", "model.num_hidden_layers=2", "model.num_attention_heads=4"}},
  small = {llama = {"model.hidden_size=256", "model.num_hidden_layers=4", "model.num_attention_heads=4"}},
  standard = {llama = {"model.hidden_size=256", "model.num_hidden_layers=16", "model.num_attention_heads=8"},
              mamba = {"model.hidden_size=256", "model.num_hidden_layers=32", "model.state_size=16"}},
  large = {llama = {"model.hidden_size=512", "model.num_hidden_layers=16", "model.num_attention_heads=8"}},
}

--- which preset family an encoding's config uses
function sizes.family(encoding)
  return encoding == "mamba" and "mamba" or "llama"
end

--- overrides for (size, encoding); `extra` is the spec's size_presets
function sizes.overrides(size, encoding, extra)
  local family = sizes.family(encoding)
  local p = (extra and extra[size]) or sizes.presets[size]
  if not p then
    error(string.format("unknown size '%s' (known: %s; define others under size_presets)", size,
      table.concat(sizes.known(extra), ", ")), 0)
  end
  local list = p[family]
  if not list then
    error(string.format("size '%s' has no %s preset (encoding %s); add size_presets.%s.%s to the spec", size,
      family, encoding, size, family), 0)
  end
  return list
end

function sizes.known(extra)
  local seen, out = {}, {}
  for _, n in ipairs(sizes.names) do seen[n] = true; out[#out + 1] = n end
  local more = {}
  for n in pairs(extra or {}) do if not seen[n] then more[#more + 1] = n end end
  table.sort(more)
  for _, n in ipairs(more) do out[#out + 1] = n end
  return out
end

return sizes
