--- JSON in pure Lua: strict decoding with positions, deterministic encoding.
--
-- json.encode(value, {indent = n}) -> string
--   objects: keys sorted; arrays: tables whose keys are exactly 1..n; an empty table is an
--   object unless it carries json.array's metatable (json.decode gives empty arrays that mark).
--   Numbers: integers as integers; floats with the fewest of 15/16/17 significant digits that
--   read back to the same double (so float32 values, widened to double, round-trip too), and a
--   ".0" when they would otherwise look like integers. NaN and +-Inf are an error, as are
--   cycles, mixed or sparse tables, non-string keys and invalid UTF-8.
-- json.decode(text) -> value   (RFC 8259 only: no comments, trailing commas, NaN, leading zeros;
--   duplicate keys are an error; errors say "line L column C (byte B)"). null becomes json.null.
local json = {}

local ok_core, core = pcall(require, "icl.core")
--- The null value (shared with YAML when the engine is loaded).
json.null = ok_core and core._io and core._io.null or setmetatable({}, {__name = "json.null", __tostring = function() return "null" end})

local array_mt = {__jsontype = "array"}
local object_mt = {__jsontype = "object"}
--- Mark t (default: a new table) as a JSON array / object, for empty tables.
function json.array(t) return setmetatable(t or {}, array_mt) end
function json.object(t) return setmetatable(t or {}, object_mt) end

-- ---- encoding ---------------------------------------------------------------------------------

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

local function encode_string(s, path)
  if not utf8.len(s) then error(string.format("json.encode: string at %s is not valid UTF-8", path), 0) end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

--- Shortest of %.15g/%.16g/%.17g that reads back exactly; integral floats get ".0".
function json.format_number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then return nil end
  local s
  for _, p in ipairs({"%.15g", "%.16g", "%.17g"}) do
    s = string.format(p, x)
    if tonumber(s) == x then break end
  end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

local function kind_of(t, path)
  local mt = getmetatable(t)
  local forced = mt and mt.__jsontype
  local n, count, has_str, has_int = #t, 0, false, false
  for k in pairs(t) do
    count = count + 1
    local tk = math.type(k)
    if tk == "integer" then
      has_int = true
    elseif type(k) == "string" then
      has_str = true
    else
      error(string.format("json.encode: table at %s has a %s key (only strings, or integers 1..n for arrays)", path,
                          tk or type(k)), 0)
    end
  end
  if has_int and has_str then error(string.format("json.encode: table at %s mixes integer and string keys", path), 0) end
  if has_int then
    if n ~= count then error(string.format("json.encode: table at %s is a sparse array (keys are not 1..n)", path), 0) end
    return "array", n
  end
  if count == 0 then return forced == "array" and "array" or "object", 0 end
  if forced == "array" then error(string.format("json.encode: table at %s is marked as an array but has string keys", path), 0) end
  return "object", count
end

local function encode(v, out, path, seen, indent, level)
  local tv = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    local s = json.format_number(v)
    if not s then error(string.format("json.encode: %s at %s is not a finite number (JSON has no NaN or Inf)", tostring(v), path), 0) end
    out[#out + 1] = s
  elseif tv == "string" then
    out[#out + 1] = encode_string(v, path)
  elseif tv == "table" then
    if seen[v] then error(string.format("json.encode: table at %s contains itself (cycle)", path), 0) end
    seen[v] = true
    local kind, n = kind_of(v, path)
    local nl, pad, pad_in = "", "", ""
    if indent then
      nl = "\n"
      pad = string.rep(" ", indent * level)
      pad_in = string.rep(" ", indent * (level + 1))
    end
    if kind == "array" then
      if n == 0 then
        out[#out + 1] = "[]"
      else
        out[#out + 1] = "[" .. nl
        for i = 1, n do
          if i > 1 then out[#out + 1] = "," .. nl end
          out[#out + 1] = pad_in
          encode(v[i], out, path .. "[" .. i .. "]", seen, indent, level + 1)
        end
        out[#out + 1] = nl .. pad .. "]"
      end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      if #keys == 0 then
        out[#out + 1] = "{}"
      else
        out[#out + 1] = "{" .. nl
        for i, k in ipairs(keys) do
          if i > 1 then out[#out + 1] = "," .. nl end
          out[#out + 1] = pad_in .. encode_string(k, path) .. (indent and ": " or ":")
          encode(v[k], out, path .. "." .. k, seen, indent, level + 1)
        end
        out[#out + 1] = nl .. pad .. "}"
      end
    end
    seen[v] = nil
  else
    error(string.format("json.encode: cannot encode a %s at %s", tv, path), 0)
  end
end

function json.encode(v, opts)
  if opts ~= nil and type(opts) ~= "table" then error("json.encode: options must be a table", 2) end
  for k in pairs(opts or {}) do
    if k ~= "indent" then error("json.encode: unknown option '" .. tostring(k) .. "' (valid: indent)", 2) end
  end
  local out = {}
  local ok, err = pcall(encode, v, out, "$", {}, opts and opts.indent, 0)
  if not ok then error(err, 2) end
  return table.concat(out)
end

-- ---- decoding ---------------------------------------------------------------------------------

local function decode_error(s, i, msg)
  local line, col = 1, 1
  local last = 1
  for p in s:sub(1, i - 1):gmatch("()\n") do
    line = line + 1
    last = p + 1
  end
  col = i - last + 1
  error(string.format("json.decode: %s at line %d column %d (byte %d)", msg, line, col, i), 0)
end

local function skip_ws(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local decode_value

local function decode_string(s, i)
  -- i at the opening quote
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\%c]', j)
    if not k then decode_error(s, i, "unterminated string") end
    parts[#parts + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then
      j = k + 1
      break
    elseif c == "\\" then
      local e = s:sub(k + 1, k + 1)
      local simple = ({['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"})[e]
      if simple then
        parts[#parts + 1] = simple
        j = k + 2
      elseif e == "u" then
        local hex = s:match("^%x%x%x%x", k + 2)
        if not hex then decode_error(s, k, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        j = k + 6
        if cp >= 0xDC00 and cp <= 0xDFFF then decode_error(s, k, "lone low surrogate in \\u escape") end
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = s:match("^\\u(%x%x%x%x)", j)
          lo = lo and tonumber(lo, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(s, k, "high surrogate without a low surrogate") end
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
          j = j + 6
        end
        parts[#parts + 1] = utf8.char(cp)
      else
        decode_error(s, k, "unknown escape '\\" .. e .. "'")
      end
    else
      decode_error(s, k, "control character in a string")
    end
  end
  local str = table.concat(parts)
  if not utf8.len(str) then decode_error(s, i, "string is not valid UTF-8") end
  return str, j
end

local function decode_number(s, i)
  local int = s:match("^-?[1-9]%d*", i) or s:match("^-?0", i)
  if not int then decode_error(s, i, "bad number") end
  local j = i + #int
  if int:match("^-?0$") and s:match("^%d", j) then decode_error(s, i, "leading zero in a number") end
  local frac = s:match("^%.%d+", j)
  if s:sub(j, j) == "." and not frac then decode_error(s, j, "digit expected after '.'") end
  if frac then j = j + #frac end
  local ex = s:match("^[eE][-+]?%d+", j)
  if s:match("^[eE]", j) and not ex then decode_error(s, j, "digit expected in exponent") end
  if ex then j = j + #ex end
  local text = s:sub(i, j - 1)
  if not frac and not ex then
    local v = math.tointeger(tonumber(text))
    if v and tostring(v) == text then return v, j end
    return tonumber(text .. ".0"), j -- beyond 64-bit: a float
  end
  return tonumber(text), j
end

function decode_value(s, i, depth)
  if depth > 1000 then decode_error(s, i, "nested too deeply") end
  i = skip_ws(s, i)
  local c = s:sub(i, i)
  if c == "" then decode_error(s, i, "unexpected end of input") end
  if c == "{" then
    local obj = {}
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "}" then return json.object(obj), i + 1 end
    while true do
      i = skip_ws(s, i)
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expected a string key") end
      local key, ki = nil, i
      key, i = decode_string(s, i)
      if obj[key] ~= nil then decode_error(s, ki, "duplicate key '" .. key .. "'") end
      i = skip_ws(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      obj[key] = v
      i = skip_ws(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then decode_error(s, i, d == "" and "unterminated object" or "expected ',' or '}'") end
      i = i + 1
    end
  elseif c == "[" then
    local arr, n = {}, 0
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "]" then return json.array(arr), i + 1 end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      arr[n] = v
      i = skip_ws(s, i)
      local d = s:sub(i, i)
      if d == "]" then return json.array(arr), i + 1 end
      if d ~= "," then decode_error(s, i, d == "" and "unterminated array" or "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "-" or c:match("%d") then
    return decode_number(s, i)
  elseif s:sub(i, i + 3) == "true" then
    return true, i + 4
  elseif s:sub(i, i + 4) == "false" then
    return false, i + 5
  elseif s:sub(i, i + 3) == "null" then
    return json.null, i + 4
  end
  decode_error(s, i, "unexpected character '" .. c .. "'")
end

function json.decode(s)
  if type(s) ~= "string" then error("json.decode: expected a string, got " .. type(s), 2) end
  local ok, v, i = pcall(decode_value, s, 1, 0)
  if not ok then error(v, 2) end
  i = skip_ws(s, i)
  if i <= #s then
    local ok2, err = pcall(decode_error, s, i, "unexpected data after the JSON value")
    if not ok2 then error(err, 2) end
  end
  return v
end

return json
