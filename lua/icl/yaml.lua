--- YAML: loading (libyaml, in C: !include, merge keys, typed scalars, positions) and a small
-- emitter for configs. See engine/io/yaml_load.h and docs/config.md ("YAML dialect").
--
--   yaml.load(path, {positions = true, includes = true}) -> value
--   yaml.parse(text, {name = "<string>", positions = true, includes = true}) -> value
--   yaml.null                 the value of null / ~ / empty scalars (also icl.io.null, json.null)
--   yaml.pos(t, key) -> "file:line" where key (or index) of the mapping/sequence t was written
--   yaml.where(t) -> "file:line" where the mapping/sequence t itself starts
--   yaml.dump(value, {order = function(path) -> {keys...} end}) -> text (loads back equal)
-- Positions live in each table's metatable (__icl_pos, __icl_where), invisible to pairs and #.
local core = require "icl.core"
local json = require "icl.json"

local yaml = {}
yaml.null = core._io.null

function yaml.load(path, opts)
  if type(path) ~= "string" then error("yaml.load: path must be a string", 2) end
  local v = core._io.yaml_load(path, opts)
  return v
end

function yaml.parse(text, opts)
  if type(text) ~= "string" then error("yaml.parse: text must be a string", 2) end
  local v = core._io.yaml_parse(text, opts)
  return v
end

function yaml.pos(t, key)
  local mt = type(t) == "table" and getmetatable(t)
  return mt and type(mt.__icl_pos) == "table" and mt.__icl_pos[key] or nil
end

function yaml.where(t)
  local mt = type(t) == "table" and getmetatable(t)
  return mt and mt.__icl_where or nil
end

-- ---- emitter ----------------------------------------------------------------------------------

local reserved = {}
for w in ("null Null NULL true True TRUE false False FALSE yes Yes YES no No NO on On ON off Off OFF y Y n N ~"):gmatch("%S+") do
  reserved[w] = true
end

local function is_plain_safe(s)
  if s == "" or reserved[s] then return false end
  if not s:match("^[A-Za-z_/][A-Za-z0-9_%-%./]*$") then return false end
  if s:match("^[%.%-]") then return false end
  return true
end

local dq_escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ["\0"] = "\\0"}

local function quote(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c) return dq_escapes[c] or string.format("\\x%02x", c:byte()) end) .. '"'
end

local function scalar(v)
  if v == nil or v == yaml.null then return "null" end
  local tv = type(v)
  if tv == "boolean" then return v and "true" or "false" end
  if tv == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v then return ".nan" end
    if v == math.huge then return ".inf" end
    if v == -math.huge then return "-.inf" end
    local s = json.format_number(v)
    if s:find("[eE]") and not s:find("%.") then s = s:gsub("[eE]", ".0e", 1) end
    return s
  end
  if tv == "string" then return is_plain_safe(v) and v or quote(v) end
  error("yaml.dump: cannot write a " .. tv, 0)
end

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local c = 0
  for _ in pairs(t) do c = c + 1 end
  return c == n
end

local function is_scalar(v) return type(v) ~= "table" end

local function sorted_keys(t, path, order)
  local keys, seen = {}, {}
  local pref = order and order(path) or nil
  for _, k in ipairs(pref or {}) do
    if t[k] ~= nil then
      keys[#keys + 1] = k
      seen[k] = true
    end
  end
  local rest = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("yaml.dump: mapping key at " .. (path == "" and "top level" or path) .. " is not a string", 0) end
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

local emit

local function emit_value_after_key(v, lines, indent, path, order, seen)
  -- returns the text after "key:" on the same line, or nil when a block follows
  if is_scalar(v) then return " " .. scalar(v) end
  if next(v) == nil then
    local mt = getmetatable(v)
    return (mt and mt.__jsontype == "array") and " []" or " {}"
  end
  if is_array(v) then
    local all = true
    for _, x in ipairs(v) do all = all and is_scalar(x) end
    if all then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = scalar(x) end
      return " [" .. table.concat(parts, ", ") .. "]"
    end
  end
  return nil
end

function emit(v, lines, indent, path, order, seen)
  if seen[v] then error("yaml.dump: the value at " .. path .. " contains itself", 0) end
  seen[v] = true
  local pad = string.rep(" ", indent)
  if is_array(v) then
    for i, x in ipairs(v) do
      local p = path .. "[" .. i .. "]"
      if is_scalar(x) or next(x) == nil then
        lines[#lines + 1] = pad .. "-" .. emit_value_after_key(x, lines, indent, p, order, seen)
      else
        local sub = {}
        emit(x, sub, 0, p, order, seen)
        for j, l in ipairs(sub) do lines[#lines + 1] = pad .. (j == 1 and "- " or "  ") .. l end
      end
    end
  else
    for _, k in ipairs(sorted_keys(v, path, order)) do
      local p = path == "" and k or path .. "." .. k
      local key = is_plain_safe(k) and k or quote(k)
      local inline = emit_value_after_key(v[k], lines, indent, p, order, seen)
      if inline then
        lines[#lines + 1] = pad .. key .. ":" .. inline
      else
        lines[#lines + 1] = pad .. key .. ":"
        emit(v[k], lines, indent + 2, p, order, seen)
      end
    end
  end
  seen[v] = nil
end

function yaml.dump(v, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "order" then error("yaml.dump: unknown option '" .. tostring(k) .. "' (valid: order)", 2) end
  end
  local ok, res = pcall(function()
    if is_scalar(v) then return scalar(v) .. "\n" end
    if next(v) == nil then return "{}\n" end
    local lines = {}
    emit(v, lines, 0, "", opts.order, {})
    return table.concat(lines, "\n") .. "\n"
  end)
  if not ok then error(res, 2) end
  return res
end

return yaml
