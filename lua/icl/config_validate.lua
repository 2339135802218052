--- The generic part of config validation: typed leaves, mappings with defaults, sweep lists,
-- positions and error messages ("FILE:LINE: key.path: what is wrong"). config.lua holds the
-- section rules (model families, patch, task) and loading; config_schema.lua the keys.
local yaml = require "icl.yaml"

local V = {}
local NULL = yaml.null

-- ---- small helpers ------------------------------------------------------------------------------

local function join(path, k) return path == "" and k or path .. "." .. k end

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deepcopy(x) end
  return t
end

local function is_seq(t)
  if type(t) ~= "table" then return false end
  local n = #t
  if n == 0 then return false end
  local c = 0
  for _ in pairs(t) do c = c + 1 end
  return c == n
end

local function levenshtein(a, b)
  if #a > 64 or #b > 64 then return math.huge end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function closest(word, candidates)
  local best, bd = nil, math.huge
  for _, c in ipairs(candidates) do
    local d = levenshtein(word:lower(), c:lower())
    if d < bd then best, bd = c, d end
  end
  if best and bd <= math.max(2, math.floor(#word / 3)) then return best end
  return nil
end

local function describe(v)
  if v == nil or v == NULL then return "null" end
  local t = type(v)
  if t == "string" then return string.format("string '%s'", #v > 60 and v:sub(1, 57) .. "..." or v) end
  if t == "number" then return (math.type(v) == "integer" and "integer " or "number ") .. tostring(v) end
  if t == "boolean" then return "boolean " .. tostring(v) end
  if t == "table" then
    if next(v) == nil then return "an empty table" end
    return is_seq(v) and "a list" or "a mapping"
  end
  return "a " .. t
end

local function list_text(t)
  local out = {}
  for i, x in ipairs(t) do out[i] = tostring(x) end
  return table.concat(out, ", ")
end

-- ---- the validation context -------------------------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

local function new_ctx(opts)
  return setmetatable({name = opts.name or "<table>", allow_sweep = opts.allow_sweep, overrides = {},
                       positions = {}, sweep = {}, warnings = {}}, Ctx)
end

--- position of raw[key] (path kp); parent_pos when unknown
function Ctx:pos(raw, key, kp, parent_pos)
  return self.overrides[kp] or yaml.pos(raw, key) or parent_pos or self.name
end

function Ctx:fail(pos, path, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(string.format("%s: %s%s", pos or self.name, path ~= "" and path .. ": " or "", msg), 0)
end

-- ---- validation ---------------------------------------------------------------------------------

local validate

local function check_number(C, sch, v, path, pos, want_int)
  if type(v) == "string" and sch.also then
    for _, a in ipairs(sch.also) do
      if v == a then return v end
    end
  end
  local alt = sch.also and (" or one of: " .. list_text(sch.also)) or ""
  if type(v) ~= "number" then C:fail(pos, path, "expected %s%s, got %s", want_int and "an integer" or "a number", alt, describe(v)) end
  if want_int then
    local i = math.tointeger(v)
    if not i then C:fail(pos, path, "expected an integer%s, got %s", alt, describe(v)) end
    v = i
  else
    if v ~= v then C:fail(pos, path, "expected a number, got NaN") end
    v = v + 0.0
  end
  if sch.min and v < sch.min then C:fail(pos, path, "%s is below the minimum %s", tostring(v), tostring(sch.min)) end
  if sch.max and v > sch.max then C:fail(pos, path, "%s is above the maximum %s", tostring(v), tostring(sch.max)) end
  return v
end

local function check_scalar(C, sch, v, path, pos)
  local t = sch.type
  if t == "int" or t == "number" then return check_number(C, sch, v, path, pos, t == "int") end
  if t == "bool" then
    if type(v) ~= "boolean" then C:fail(pos, path, "expected true or false, got %s", describe(v)) end
    return v
  end
  if t == "string" then
    if type(v) ~= "string" then
      C:fail(pos, path, "expected a string%s, got %s", sch.choices and (" (one of: " .. list_text(sch.choices) .. ")") or "", describe(v))
    end
    if sch.choices then
      for _, c in ipairs(sch.choices) do
        if c == v then return v end
      end
      local near = closest(v, sch.choices)
      C:fail(pos, path, "'%s' is not one of: %s%s", v, list_text(sch.choices), near and string.format(" (did you mean '%s'?)", near) or "")
    end
    return v
  end
  error("config: bad schema type " .. tostring(t))
end

local function validate_max_length(C, v, path, pos, raw_parent)
  if type(v) ~= "table" then v = {v} end
  if not is_seq(v) then C:fail(pos, path, "expected a list of lengths, got %s", describe(v)) end
  local out = {}
  for i, x in ipairs(v) do
    local ip = yaml.pos(raw_parent and raw_parent.max_length, i) or pos
    if x == "inf" then
      out[i] = "inf"
    else
      out[i] = check_number(C, {min = 1}, x, path .. "[" .. i .. "]", ip, true)
    end
  end
  return out
end

local function validate_sweep_params(C, v, path, pos)
  if type(v) ~= "table" or is_seq(v) then C:fail(pos, path, "expected a mapping of parameter names, got %s", describe(v)) end
  local out = {}
  for name, spec in pairs(v) do
    local p, ppos = join(path, name), C:pos(v, name, join(path, name), pos)
    if type(spec) ~= "table" or is_seq(spec) then C:fail(ppos, p, "expected a mapping (values / value / min+max / distribution), got %s", describe(spec)) end
    local allowed = {values = true, value = true, min = true, max = true, distribution = true, mu = true, sigma = true, q = true, probabilities = true}
    local keys = {"values", "value", "min", "max", "distribution", "mu", "sigma", "q", "probabilities"}
    for k in pairs(spec) do
      if not allowed[k] then
        local near = closest(k, keys)
        C:fail(C:pos(spec, k, join(p, k), ppos), join(p, k), "unknown key%s; valid keys: %s", near and string.format(" (did you mean '%s'?)", near) or "", list_text(keys))
      end
    end
    if spec.values ~= nil and not is_seq(spec.values) then C:fail(C:pos(spec, "values", join(p, "values"), ppos), join(p, "values"), "expected a list, got %s", describe(spec.values)) end
    if spec.values == nil and spec.value == nil and spec.distribution == nil and (spec.min == nil or spec.max == nil) then
      C:fail(ppos, p, "needs values, value, distribution, or both min and max")
    end
    for _, k in ipairs({"min", "max"}) do
      if spec[k] ~= nil and type(spec[k]) ~= "number" then C:fail(C:pos(spec, k, join(p, k), ppos), join(p, k), "expected a number, got %s", describe(spec[k])) end
    end
    out[name] = deepcopy(spec)
  end
  return out
end

local function unknown_key(C, pos, path, key, fields)
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  local near = closest(key, names)
  C:fail(pos, join(path, key), "unknown key%s; valid keys: %s", near and string.format(" (did you mean '%s'?)", near) or "",
         list_text(names))
end

--- validate a map against fields/order; finish(out, pos) may fill computed defaults
local function validate_map(C, sch, raw, path, pos, fields, order)
  fields, order = fields or sch.fields, order or sch.order
  if raw == nil or raw == NULL then raw = {} end
  if type(raw) ~= "table" or is_seq(raw) then C:fail(pos, path, "expected a mapping, got %s", describe(raw)) end
  local out = {}
  local keys = {}
  for k in pairs(raw) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = raw[k]
    if type(k) ~= "string" then C:fail(pos, path, "keys must be strings, got %s", describe(k)) end
    local kp = join(path, k)
    local kpos = C:pos(raw, k, kp, pos)
    local fsch = fields[k]
    if not fsch then unknown_key(C, kpos, path, k, fields) end
    if v ~= NULL then
      C.positions[kp] = kpos
      out[k] = validate(C, fsch, v, kp, kpos, raw)
    end
  end
  for _, k in ipairs(order) do
    local fsch = fields[k]
    if out[k] == nil then
      local kp = join(path, k)
      if fsch.required then C:fail(pos, kp, "missing (required)") end
      if fsch.default ~= nil then
        out[k] = deepcopy(fsch.default)
        C.positions[kp] = C.positions[kp] or "default"
      elseif fsch.type == "map" then
        out[k] = validate(C, fsch, {}, kp, pos, raw)
        C.positions[kp] = C.positions[kp] or "default"
      end
    end
  end
  return out
end

function validate(C, sch, v, path, pos, raw_parent)
  local t = sch.type
  if t == "map" then return validate_map(C, sch, v, path, pos) end
  if t == "max_length" then return validate_max_length(C, v, path, pos, raw_parent) end
  if t == "sweep_parameters" then return validate_sweep_params(C, v, path, pos) end
  if t == "list" then
    if type(v) ~= "table" or (next(v) ~= nil and not is_seq(v)) then C:fail(pos, path, "expected a list, got %s", describe(v)) end
    local out = {}
    for i, x in ipairs(v) do out[i] = check_scalar(C, sch.of, x, path .. "[" .. i .. "]", yaml.pos(v, i) or pos) end
    return out
  end
  if type(v) == "table" then
    if not is_seq(v) then C:fail(pos, path, "expected a single value, got %s", describe(v)) end
    if not C.allow_sweep then
      local shown = {}
      for i, x in ipairs(v) do shown[i] = tostring(x) end
      C:fail(pos, path, "is a list of sweep choices [%s]; a run needs one value (pick one with --set %s=%s, or load with {allow_sweep = true} and use config.expand)",
             table.concat(shown, ", "), path, shown[1])
    end
    local out = {}
    for i, x in ipairs(v) do out[i] = check_scalar(C, sch, x, path .. "[" .. i .. "]", yaml.pos(v, i) or pos) end
    C.sweep[#C.sweep + 1] = path
    return out
  end
  return check_scalar(C, sch, v, path, pos)
end


V.join, V.deepcopy, V.is_seq, V.closest, V.describe, V.list_text = join, deepcopy, is_seq, closest, describe, list_text
V.new_ctx, V.check_number, V.check_scalar, V.validate_map, V.validate = new_ctx, check_number, check_scalar, validate_map, validate

return V
