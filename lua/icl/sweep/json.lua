--- JSON for sweeps. Decoding uses icl.json when this build has it, else
-- dkjson or cjson. Encoding is done here so that the files a sweep writes
-- (summary.json, grid.json, attempts.jsonl) have sorted keys and stable
-- text: two runs of the same sweep give the same bytes.
local json = {}

-- decoding is icl.json's (strict); encoding stays here because sweep files
-- write NaN summaries as null, which icl.json rightly refuses elsewhere
local function find_decoder() return require("icl.json").decode end

function json.decode(text) return find_decoder()(text) end

--- decode a file; nil, message when it is missing or malformed
function json.read(path)
  local text = require("icl.sweep.files").read(path)
  if not text then return nil, path .. ": missing" end
  local ok, v = pcall(json.decode, text)
  if not ok then return nil, path .. ": " .. tostring(v) end
  return v
end

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
                 ["\t"] = "\\t"}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end

local function encode(v, indent, level, out)
  local t = type(v)
  if t == "nil" then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    else
      out[#out + 1] = string.format("%.17g", v)
    end
  elseif t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "table" then
    local nl = indent and ("\n" .. string.rep(indent, level + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, level)) or ""
    local sep = indent and ": " or ":"
    if is_array(v) then
      if #v == 0 then
        out[#out + 1] = "[]"
        return
      end
      -- arrays of scalars stay on one line
      local flat = true
      for _, x in ipairs(v) do if type(x) == "table" then flat = false end end
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = flat and ", " or "," end
        if not flat then out[#out + 1] = nl end
        encode(x, indent, level + 1, out)
      end
      out[#out + 1] = (flat and "" or close) .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("json: object keys must be strings, got " .. type(k), 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl .. quote(k) .. sep
        encode(v[k], indent, level + 1, out)
      end
      out[#out + 1] = close .. "}"
    end
  else
    -- dkjson/cjson null sentinels and the like
    out[#out + 1] = "null"
  end
end

--- encode; opts.indent (string) pretty-prints
function json.encode(v, opts)
  local out = {}
  encode(v, opts and opts.indent, 0, out)
  return table.concat(out)
end

return json
